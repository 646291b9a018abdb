// The TOML configuration parser: every refusal names the file, the dotted key and a reason;
// everything accepted lands in Config exactly as written, with defaults for what is absent.
#include "ephemera/config.hpp"
#include "ephemera/types.hpp"

#include "config_expect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <variant>

#ifndef EPHEMERA_SOURCE_DIR
#error "EPHEMERA_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

namespace ephemera {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kSource = "test.toml";

// The three required tables, each valid on its own; tests replace one to break it.
const std::string kPool = R"(
[pool]
addresses = ["198.18.0.100"]
)";
const std::string kInside = R"(
[inside]
port = "net_af_packet0"
gateway = "100.64.0.1"
)";
const std::string kOutside = R"(
[outside]
port = "net_af_packet1"
next_hop = "198.18.0.2"
)";

// A valid document with `extra` (whole tables) appended.
std::string with(const std::string& extra) {
    return kPool + kInside + kOutside + extra;
}

// The required tables with [pool]'s body replaced.
std::string with_pool(const std::string& body) {
    return "[pool]\n" + body + kInside + kOutside;
}

// The required tables with [inside]'s body replaced.
std::string with_inside(const std::string& body) {
    return kPool + "[inside]\n" + body + kOutside;
}

// The required tables with [outside]'s body replaced.
std::string with_outside(const std::string& body) {
    return kPool + kInside + "[outside]\n" + body;
}

Config accepted(const std::string& text) {
    return config_test::accepted_from(text, kSource);
}

// ---- ConfigError -------------------------------------------------------------------------

TEST(ConfigError, ToStringIsFileKeyReason) {
    const ConfigError err{"conf/x.toml", "timeouts.udp", "must be at least 120 s"};
    EXPECT_EQ(err.to_string(), "conf/x.toml: timeouts.udp: must be at least 120 s");
}

// ---- unknown keys ------------------------------------------------------------------------

TEST(ConfigRefuses, UnknownTopLevelTable) {
    EXPECT_REFUSED(with("[nat]\nmode = 1\n"), "nat", "unknown key");
}

TEST(ConfigRefuses, UnknownTopLevelKey) {
    EXPECT_REFUSED("workers = 4\n" + with(""), "workers", "unknown key");
}

TEST(ConfigRefuses, UnknownKeyInTimeouts) {
    EXPECT_REFUSED(with("[timeouts]\nudpp = 300\n"), "timeouts.udpp", "unknown key");
}

TEST(ConfigRefuses, UnknownKeyInEveryTable) {
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.100\"]\nports = \"iana\"\n"), "pool.ports",
                   "unknown key");
    EXPECT_REFUSED(with_inside("port = \"a\"\ngateway = \"100.64.0.1\"\nmac = \"x\"\n"),
                   "inside.mac", "unknown key");
    EXPECT_REFUSED(with_outside("port = \"b\"\nnext_hop = \"198.18.0.2\"\nnexthop = \"x\"\n"),
                   "outside.nexthop", "unknown key");
    EXPECT_REFUSED(with("[filtering]\nmod = \"address\"\n"), "filtering.mod", "unknown key");
    EXPECT_REFUSED(with("[limits]\nmax_session = 4096\n"), "limits.max_session", "unknown key");
}

TEST(ConfigRefuses, UnknownKeyInIcmp) {
    EXPECT_REFUSED(with("[icmp]\nunreachable = true\nunreachables = 1\n"), "icmp.unreachables",
                   "unknown key");
    EXPECT_REFUSED(with("[icmp]\nrate = 100\n"), "icmp.rate", "unknown key");
}

// ---- wrong TOML types --------------------------------------------------------------------

TEST(ConfigRefuses, WrongTypeStringForInteger) {
    EXPECT_REFUSED(with("[timeouts]\nudp = \"300\"\n"), "timeouts.udp",
                   "expected an integer, got a string");
}

TEST(ConfigRefuses, WrongTypeFloatForInteger) {
    EXPECT_REFUSED(with("[timeouts]\nicmp = 60.0\n"), "timeouts.icmp",
                   "expected an integer, got a floating-point number");
}

TEST(ConfigRefuses, WrongTypeStringForArray) {
    EXPECT_REFUSED(with_pool("addresses = \"1.2.3.4\"\n"), "pool.addresses", "got a string");
}

TEST(ConfigRefuses, WrongTypeIntegerForString) {
    EXPECT_REFUSED(with_inside("port = 0\ngateway = \"100.64.0.1\"\n"), "inside.port",
                   "expected a string, got an integer");
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.100\"]\nport_range = 49152\n"),
                   "pool.port_range", "expected a string, got an integer");
}

TEST(ConfigRefuses, WrongTypeArrayElementNamedByIndex) {
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.100\", 3325886565]\n"), "pool.addresses[1]",
                   "expected a string, got an integer");
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.100\"]\nreserved = [\"65000\", 65001]\n"),
                   "pool.reserved[1]", "expected a string, got an integer");
}

TEST(ConfigRefuses, WrongTypeForTable) {
    EXPECT_REFUSED("timeouts = 300\n" + with(""), "timeouts", "expected a table, got an integer");
    EXPECT_REFUSED(with("[[limits]]\nmax_sessions = 4096\n"), "limits",
                   "expected a table, got an array");
}

TEST(ConfigRefuses, WrongTypeBooleanAndTable) {
    EXPECT_REFUSED(with("[limits]\nmax_sessions = true\n"), "limits.max_sessions",
                   "expected an integer, got a boolean");
    EXPECT_REFUSED(with("[filtering]\nmode = { name = \"address\" }\n"), "filtering.mode",
                   "expected a string, got a table");
}

// ---- addresses ---------------------------------------------------------------------------

TEST(ConfigRefuses, BadAddress) {
    EXPECT_REFUSED(with_inside("port = \"a\"\ngateway = \"100.64.0.256\"\n"), "inside.gateway",
                   "not an IPv4 address");
    EXPECT_REFUSED(with_outside("port = \"b\"\nnext_hop = \"198.18.0\"\n"), "outside.next_hop",
                   "not an IPv4 address");
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.100\", \"198.018.0.101\"]\n"),
                   "pool.addresses[1]", "not an IPv4 address");
    EXPECT_REFUSED(with_pool("addresses = [\" 198.18.0.100\"]\n"), "pool.addresses[0]",
                   "not an IPv4 address");
    EXPECT_REFUSED(with_pool("addresses = [\"pool.example\"]\n"), "pool.addresses[0]",
                   "not an IPv4 address");
}

TEST(ConfigRefuses, UnusablePoolAddresses) {
    EXPECT_REFUSED(with_pool("addresses = [\"0.0.0.0\"]\n"), "pool.addresses[0]", "unspecified");
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.1\", \"255.255.255.255\"]\n"),
                   "pool.addresses[1]", "broadcast");
    EXPECT_REFUSED(with_pool("addresses = [\"224.0.0.1\"]\n"), "pool.addresses[0]", "multicast");
    EXPECT_REFUSED(with_pool("addresses = [\"239.255.255.255\"]\n"), "pool.addresses[0]",
                   "multicast");
    EXPECT_REFUSED(with_pool("addresses = [\"127.0.0.1\"]\n"), "pool.addresses[0]", "loopback");
    // A prefix is refused if any address it expands to is unusable.
    EXPECT_REFUSED(with_pool("addresses = [\"127.1.0.0/30\"]\n"), "pool.addresses[0]", "loopback");
    EXPECT_REFUSED(with_pool("addresses = [\"224.0.0.0/24\"]\n"), "pool.addresses[0]", "multicast");
}

TEST(ConfigRefuses, UnusableGatewayAndNextHop) {
    EXPECT_REFUSED(with_inside("port = \"a\"\ngateway = \"0.0.0.0\"\n"), "inside.gateway",
                   "unspecified");
    EXPECT_REFUSED(with_outside("port = \"b\"\nnext_hop = \"224.0.0.5\"\n"), "outside.next_hop",
                   "multicast");
}

TEST(ConfigRefuses, NextHopIsAPoolAddress) {
    EXPECT_REFUSED(with_outside("port = \"b\"\nnext_hop = \"198.18.0.100\"\n"), "outside.next_hop",
                   "pool address");
}

TEST(ConfigRefuses, BadCidr) {
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.0.0/15\"]\n"), "pool.addresses[0]",
                   "expected /16 to /32");
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.0/33\"]\n"), "pool.addresses[0]",
                   "expected /16 to /32");
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.0/\"]\n"), "pool.addresses[0]",
                   "bad prefix length");
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.0/3o\"]\n"), "pool.addresses[0]",
                   "bad prefix length");
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.0/030\"]\n"), "pool.addresses[0]",
                   "bad prefix length");
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.300/30\"]\n"), "pool.addresses[0]",
                   "not an IPv4 address or prefix");
}

TEST(ConfigRefuses, CidrWithHostBitsSet) {
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.1/30\"]\n"), "pool.addresses[0]",
                   "host bits set (the prefix starts at 203.0.113.0)");
}

TEST(ConfigRefuses, EmptyPool) {
    EXPECT_REFUSED(with_pool("addresses = []\n"), "pool.addresses", "empty list");
}

TEST(ConfigRefuses, DuplicatePoolAddress) {
    EXPECT_REFUSED(
        with_pool("addresses = [\"198.18.0.100\", \"198.18.0.101\", \"198.18.0.100\"]\n"),
        "pool.addresses[2]",
        "duplicate address 198.18.0.100 (already in "
        "pool.addresses[0])");
}

TEST(ConfigRefuses, DuplicatePoolAddressThroughPrefix) {
    EXPECT_REFUSED(with_pool("addresses = [\"203.0.113.2\", \"203.0.113.0/30\"]\n"),
                   "pool.addresses[1]", "duplicate address 203.0.113.2");
}

TEST(ConfigRefuses, PoolOverflowsItsLimit) {
    // Each /16 gives 65534 addresses; two of them exceed 65535.
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.0/16\", \"198.19.0.0/16\"]\n"),
                   "pool.addresses[1]", "too many pool addresses");
    EXPECT_REFUSED(with_pool("addresses = [\"198.18.0.0/16\", \"203.0.113.0/30\"]\n"),
                   "pool.addresses[1]", "at most 65535");
}

// ---- port range --------------------------------------------------------------------------

std::string pool_with_range(const std::string& range, const std::string& reserved = "") {
    std::string body = "addresses = [\"198.18.0.100\"]\nport_range = \"" + range + "\"\n";
    if (!reserved.empty()) {
        body += "reserved = " + reserved + "\n";
    }
    return with_pool(body);
}

TEST(ConfigRefuses, RangeInverted) {
    EXPECT_REFUSED(pool_with_range("50000-40000"), "pool.port_range", "inverted");
}

TEST(ConfigRefuses, RangePresetUnknown) {
    EXPECT_REFUSED(pool_with_range("openbsd"), "pool.port_range",
                   "unknown port range preset \"openbsd\"");
    EXPECT_REFUSED(pool_with_range("IANA"), "pool.port_range", "unknown port range preset");
    EXPECT_REFUSED(pool_with_range("40000 - 50000"), "pool.port_range",
                   "unknown port range preset");
    EXPECT_REFUSED(pool_with_range("40000"), "pool.port_range", "unknown port range preset");
}

TEST(ConfigRefuses, RangeTooSmall) {
    // 63 ports; 64 is the least that can be shared among workers.
    EXPECT_REFUSED(pool_with_range("40000-40062"), "pool.port_range",
                   "too small: 63 ports, at least 64");
    EXPECT_REFUSED(pool_with_range("40000-40000"), "pool.port_range", "too small");
}

TEST(ConfigRefuses, RangeOutOfBounds) {
    EXPECT_REFUSED(pool_with_range("0-1000"), "pool.port_range", "port 0 is not allowed");
    EXPECT_REFUSED(pool_with_range("60000-65536"), "pool.port_range", "at most 65535");
    EXPECT_REFUSED(pool_with_range("60000-9999999999"), "pool.port_range", "at most 65535");
}

TEST(ConfigRefuses, ReservedOutsideRange) {
    EXPECT_REFUSED(pool_with_range("iana", "[\"65000\", \"1024\"]"), "pool.reserved[1]",
                   "1024 is outside port_range 49152-65535 (iana)");
    // Straddling the low end is outside too.
    EXPECT_REFUSED(pool_with_range("40000-50000", "[\"39990-40010\"]"), "pool.reserved[0]",
                   "outside port_range 40000-50000");
}

TEST(ConfigRefuses, ReservedBadSyntaxOrInverted) {
    EXPECT_REFUSED(pool_with_range("iana", "[\"ssh\"]"), "pool.reserved[0]",
                   "not a port or port range");
    EXPECT_REFUSED(pool_with_range("iana", "[\"65010-65000\"]"), "pool.reserved[0]", "inverted");
}

TEST(ConfigRefuses, ReservedOverlappingEachOther) {
    EXPECT_REFUSED(pool_with_range("iana", "[\"65000-65010\", \"65010\"]"), "pool.reserved[1]",
                   "overlaps pool.reserved[0] (65000-65010)");
    EXPECT_REFUSED(pool_with_range("iana", "[\"60000\", \"65000-65010\", \"64990-65000\"]"),
                   "pool.reserved[2]", "overlaps pool.reserved[1]");
}

TEST(ConfigRefuses, ReservedCoveringTheRange) {
    EXPECT_REFUSED(pool_with_range("40000-40063", "[\"40000-40031\", \"40032-40063\"]"),
                   "pool.reserved", "no port left to allocate");
    EXPECT_REFUSED(pool_with_range("legacy-bsd", "[\"1024-5000\"]"), "pool.reserved",
                   "no port left to allocate");
}

// ---- timeouts: RFC minimums --------------------------------------------------------------

// RFC 4787 REQ-5: a UDP mapping timer MUST NOT expire in less than two minutes.
TEST(ConfigRefuses, UdpTimeoutBelowMinimum_RFC4787_REQ5) {
    EXPECT_REFUSED(with("[timeouts]\nudp = 119\n"), "timeouts.udp",
                   "must be at least 120 s (RFC 4787 REQ-5)");
}

// RFC 5382 REQ-5: the established idle-timeout MUST NOT be less than 2 hours 4 minutes.
TEST(ConfigRefuses, TcpEstablishedTimeoutBelowMinimum_RFC5382_REQ5) {
    EXPECT_REFUSED(with("[timeouts]\ntcp_established = 7439\n"), "timeouts.tcp_established",
                   "must be at least 7440 s (RFC 5382 REQ-5)");
}

// RFC 5382 REQ-5: the transitory idle-timeout MUST NOT be less than 4 minutes.
TEST(ConfigRefuses, TcpTransitoryTimeoutBelowMinimum_RFC5382_REQ5) {
    EXPECT_REFUSED(with("[timeouts]\ntcp_transitory = 60\n"), "timeouts.tcp_transitory",
                   "must be at least 240 s (RFC 5382 REQ-5)");
}

// RFC 5508 REQ-2: an ICMP query mapping MUST NOT expire in less than 60 seconds.
TEST(ConfigRefuses, IcmpTimeoutBelowMinimum_RFC5508_REQ2) {
    EXPECT_REFUSED(with("[timeouts]\nicmp = 30\n"), "timeouts.icmp",
                   "must be at least 60 s (RFC 5508 REQ-2)");
}

TEST(ConfigRefuses, TimeoutZeroOrNegative) {
    EXPECT_REFUSED(with("[timeouts]\nudp = 0\n"), "timeouts.udp", "at least 120 s");
    EXPECT_REFUSED(with("[timeouts]\nicmp = -60\n"), "timeouts.icmp", "must not be negative");
}

TEST(ConfigRefuses, TimeoutTooLarge) {
    EXPECT_REFUSED(with("[timeouts]\ntcp_established = 604801\n"), "timeouts.tcp_established",
                   "must be at most 604800 s (7 days)");
    EXPECT_REFUSED(with("[timeouts]\nudp = 9223372036854775807\n"), "timeouts.udp",
                   "must be at most 604800 s");
}

TEST(ConfigAccepts, TimeoutsAtTheirBounds) {
    const Config minimums = accepted(
        with("[timeouts]\nudp = 120\ntcp_established = 7440\ntcp_transitory = 240\nicmp = 60\n"));
    EXPECT_EQ(minimums.timeouts.udp, Timeouts::kMinUdp);
    EXPECT_EQ(minimums.timeouts.tcp_established, Timeouts::kMinTcpEstablished);
    EXPECT_EQ(minimums.timeouts.tcp_transitory, Timeouts::kMinTcpTransitory);
    EXPECT_EQ(minimums.timeouts.icmp, Timeouts::kMinIcmp);

    const Config maximums = accepted(with("[timeouts]\nudp = 604800\n"));
    EXPECT_EQ(maximums.timeouts.udp, 604800u);
}

// RFC 6888 REQ-8: a freed port SHOULD NOT be reused for at least 120 s; shorter is the operator's
// choice, but more than an hour is refused.
TEST(ConfigRefuses, PortHoldDownTooLarge_RFC6888_REQ8) {
    EXPECT_REFUSED(with("[timeouts]\nport_hold_down = 3601\n"), "timeouts.port_hold_down",
                   "must be between 0 and 3600 s, got 3601");
    EXPECT_REFUSED(with("[timeouts]\nport_hold_down = -1\n"), "timeouts.port_hold_down",
                   "must be between 0 and 3600 s, got -1");
}

TEST(ConfigRefuses, PortHoldDownWrongType_RFC6888_REQ8) {
    EXPECT_REFUSED(with("[timeouts]\nport_hold_down = \"120\"\n"), "timeouts.port_hold_down",
                   "expected an integer, got a string");
    EXPECT_REFUSED(with("[timeouts]\nport_hold_down = 120.0\n"), "timeouts.port_hold_down",
                   "expected an integer, got a floating-point number");
}

TEST(ConfigAccepts, PortHoldDownBelowRecommendationIsTheOperatorsChoice_RFC6888_REQ8) {
    EXPECT_EQ(accepted(with("[timeouts]\nport_hold_down = 0\n")).timeouts.port_hold_down, 0u);
    EXPECT_EQ(accepted(with("[timeouts]\nport_hold_down = 119\n")).timeouts.port_hold_down, 119u);
    EXPECT_EQ(accepted(with("[timeouts]\nport_hold_down = 120\n")).timeouts.port_hold_down, 120u);
    EXPECT_EQ(accepted(with("[timeouts]\nport_hold_down = 3600\n")).timeouts.port_hold_down, 3600u);
}

TEST(ConfigRefuses, InboundRefreshWrongType_RFC4787_REQ6) {
    EXPECT_REFUSED(with("[timeouts]\ninbound_refresh = \"yes\"\n"), "timeouts.inbound_refresh",
                   "expected a boolean, got a string");
    EXPECT_REFUSED(with("[timeouts]\ninbound_refresh = 1\n"), "timeouts.inbound_refresh",
                   "expected a boolean, got an integer");
}

TEST(ConfigAccepts, InboundRefreshBoolean_RFC4787_REQ6) {
    EXPECT_TRUE(accepted(with("[timeouts]\ninbound_refresh = true\n")).timeouts.inbound_refresh);
    EXPECT_FALSE(accepted(with("[timeouts]\ninbound_refresh = false\n")).timeouts.inbound_refresh);
}

TEST(ConfigAccepts, TimeoutsPartlyGiven) {
    const Config cfg = accepted(with("[timeouts]\nudp = 600\n"));
    EXPECT_EQ(cfg.timeouts.udp, 600u);
    EXPECT_EQ(cfg.timeouts.tcp_established, Timeouts{}.tcp_established);
    EXPECT_EQ(cfg.timeouts.tcp_transitory, Timeouts{}.tcp_transitory);
    EXPECT_EQ(cfg.timeouts.icmp, Timeouts{}.icmp);
}

// ---- filtering, limits, ports ------------------------------------------------------------

TEST(ConfigRefuses, BadFilteringMode) {
    EXPECT_REFUSED(with("[filtering]\nmode = \"full-cone\"\n"), "filtering.mode",
                   "unknown filtering mode \"full-cone\"");
    EXPECT_REFUSED(with("[filtering]\nmode = \"address_dependent\"\n"), "filtering.mode",
                   "unknown filtering mode");
}

TEST(ConfigRefuses, MaxSessionsOutOfRange) {
    EXPECT_REFUSED(with("[limits]\nmax_sessions = 1023\n"), "limits.max_sessions",
                   "between 1024 and 268435456");
    EXPECT_REFUSED(with("[limits]\nmax_sessions = 268435457\n"), "limits.max_sessions",
                   "between 1024 and 268435456");
    EXPECT_REFUSED(with("[limits]\nmax_sessions = -1\n"), "limits.max_sessions",
                   "between 1024 and 268435456");
}

TEST(ConfigAccepts, MaxSessionsAtItsBounds) {
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 1024\n")).limits.max_sessions, 1024u);
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 268435456\n")).limits.max_sessions,
              268435456u);
}

// ---- per-subscriber limits (RFC 6888 REQ-4, REQ-5) ----------------------------------------

TEST(ConfigRefuses, SubscriberSessionsWrongType_RFC6888_REQ5) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_sessions = \"8192\"\n"), "limits.subscriber_sessions",
                   "expected an integer, got a string");
}

TEST(ConfigRefuses, SubscriberSessionsOutOfRange_RFC6888_REQ5) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_sessions = 0\n"), "limits.subscriber_sessions",
                   "must be between 1 and limits.max_sessions (1048576, its default), got 0");
    EXPECT_REFUSED(with("[limits]\nsubscriber_sessions = -5\n"), "limits.subscriber_sessions",
                   "got -5");
}

TEST(ConfigRefuses, SubscriberSessionsAboveMaxSessions_RFC6888_REQ5) {
    EXPECT_REFUSED(with("[limits]\nmax_sessions = 4096\nsubscriber_sessions = 4097\n"),
                   "limits.subscriber_sessions",
                   "must be between 1 and limits.max_sessions (4096), got 4097");
    // The order in the file does not matter.
    EXPECT_REFUSED(with("[limits]\nsubscriber_sessions = 4097\nmax_sessions = 4096\n"),
                   "limits.subscriber_sessions", "limits.max_sessions (4096)");
    EXPECT_REFUSED(with("[limits]\nsubscriber_sessions = 1048577\n"), "limits.subscriber_sessions",
                   "limits.max_sessions (1048576, its default)");
}

TEST(ConfigRefuses, SubscriberPortsWrongType_RFC6888_REQ4) {
    for (const char* name : {"subscriber_ports", "subscriber_ports_udp", "subscriber_ports_tcp",
                             "subscriber_ports_icmp"}) {
        SCOPED_TRACE(name);
        EXPECT_REFUSED(with("[limits]\n" + std::string{name} + " = \"4096\"\n"),
                       "limits." + std::string{name}, "expected an integer, got a string");
        EXPECT_REFUSED(with("[limits]\n" + std::string{name} + " = true\n"),
                       "limits." + std::string{name}, "expected an integer, got a boolean");
    }
}

TEST(ConfigRefuses, SubscriberPortsOutOfRange_RFC6888_REQ4) {
    for (const char* name : {"subscriber_ports", "subscriber_ports_udp", "subscriber_ports_tcp",
                             "subscriber_ports_icmp"}) {
        SCOPED_TRACE(name);
        EXPECT_REFUSED(with("[limits]\n" + std::string{name} + " = 0\n"),
                       "limits." + std::string{name}, "must be between 1 and 65535, got 0");
        EXPECT_REFUSED(with("[limits]\n" + std::string{name} + " = 65536\n"),
                       "limits." + std::string{name}, "must be between 1 and 65535, got 65536");
    }
}

TEST(ConfigRefuses, SubscriberMappingRateWrongType_RFC6888_REQ4) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_rate = 10.5\n"),
                   "limits.subscriber_mapping_rate",
                   "expected an integer, got a floating-point number");
}

TEST(ConfigRefuses, SubscriberMappingRateOutOfRange_RFC6888_REQ4) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_rate = 1000001\n"),
                   "limits.subscriber_mapping_rate", "must be between 0 and 1000000, got 1000001");
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_rate = -1\n"),
                   "limits.subscriber_mapping_rate", "must be between 0 and 1000000, got -1");
}

TEST(ConfigRefuses, SubscriberMappingBurstWrongType_RFC6888_REQ4) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_burst = \"1000\"\n"),
                   "limits.subscriber_mapping_burst", "expected an integer, got a string");
}

TEST(ConfigRefuses, SubscriberMappingBurstZero_RFC6888_REQ4) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_burst = 0\n"),
                   "limits.subscriber_mapping_burst", "must be at least 1");
    // Not even with rate-limiting off: a zero bucket is never meaningful.
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_rate = 0\nsubscriber_mapping_burst = 0\n"),
                   "limits.subscriber_mapping_burst", "must be at least 1");
}

TEST(ConfigRefuses, SubscriberMappingBurstOutOfRange_RFC6888_REQ4) {
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_burst = 1000001\n"),
                   "limits.subscriber_mapping_burst", "must be between 1 and 1000000, got 1000001");
    EXPECT_REFUSED(with("[limits]\nsubscriber_mapping_burst = -1\n"),
                   "limits.subscriber_mapping_burst", "must be between 1 and 1000000, got -1");
}

TEST(ConfigAccepts, SubscriberLimitsDefaults_RFC6888_REQ4) {
    const Limits defaults;
    for (const std::string& text :
         {with(""), with("[limits]\n"), with("[limits]\nmax_sessions = 8192\n")}) {
        SCOPED_TRACE(text);
        const Limits l = accepted(text).limits;
        EXPECT_EQ(l.subscriber_sessions, 8192u);
        EXPECT_EQ(l.subscriber_ports_udp, 4096u);
        EXPECT_EQ(l.subscriber_ports_tcp, 4096u);
        EXPECT_EQ(l.subscriber_ports_icmp, 4096u);
        EXPECT_EQ(l.subscriber_mapping_rate, 1000u);
        EXPECT_EQ(l.subscriber_mapping_burst, 1000u);
        EXPECT_EQ(l.subscriber_sessions, defaults.subscriber_sessions);
        EXPECT_EQ(l.subscriber_mapping_burst, defaults.subscriber_mapping_burst);
    }
}

TEST(ConfigRefuses, MaxSubscribersOutOfRange_RFC6888_REQ5) {
    EXPECT_REFUSED(with("[limits]\nmax_subscribers = 0\n"), "limits.max_subscribers",
                   "must be between 1 and limits.max_sessions (1048576, its default), got 0");
    EXPECT_REFUSED(with("[limits]\nmax_sessions = 4096\nmax_subscribers = 4097\n"),
                   "limits.max_subscribers",
                   "must be between 1 and limits.max_sessions (4096), got 4097");
    EXPECT_REFUSED(with("[limits]\nmax_subscribers = \"many\"\n"), "limits.max_subscribers",
                   "expected an integer, got a string");
}

// The subscriber table is sized by its own limit: by default one subscriber per 16 sessions,
// never fewer than 65536 nor more than max_sessions.
TEST(ConfigAccepts, MaxSubscribersDefaultAndExplicit_RFC6888_REQ5) {
    EXPECT_EQ(accepted(with("")).limits.subscribers(), 65536u);
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 4096\n")).limits.subscribers(), 4096u);
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 16777216\n")).limits.subscribers(), 1048576u);
    EXPECT_EQ(accepted(with("[limits]\nmax_subscribers = 100\n")).limits.subscribers(), 100u);
    EXPECT_EQ(Limits{}.subscribers(), Limits{}.max_sessions); // a Config built in code
}

TEST(ConfigAccepts, SubscriberSessionsDefaultCappedByMaxSessions_RFC6888_REQ5) {
    // An explicit max_sessions below the per-subscriber default caps the default rather than
    // being refused: the default was not the operator's choice.
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 4096\n")).limits.subscriber_sessions, 4096u);
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 1024\n")).limits.subscriber_sessions, 1024u);
}

TEST(ConfigAccepts, SubscriberSessionsAtItsBounds_RFC6888_REQ5) {
    EXPECT_EQ(accepted(with("[limits]\nsubscriber_sessions = 1\n")).limits.subscriber_sessions, 1u);
    EXPECT_EQ(accepted(with("[limits]\nmax_sessions = 4096\nsubscriber_sessions = 4096\n"))
                  .limits.subscriber_sessions,
              4096u);
    EXPECT_EQ(
        accepted(with("[limits]\nsubscriber_sessions = 1048576\n")).limits.subscriber_sessions,
        1048576u);
}

TEST(ConfigAccepts, SubscriberPortsShorthandSetsEveryProtocol_RFC6888_REQ4) {
    const Limits l = accepted(with("[limits]\nsubscriber_ports = 2000\n")).limits;
    EXPECT_EQ(l.subscriber_ports_udp, 2000u);
    EXPECT_EQ(l.subscriber_ports_tcp, 2000u);
    EXPECT_EQ(l.subscriber_ports_icmp, 2000u);

    const Limits low = accepted(with("[limits]\nsubscriber_ports = 1\n")).limits;
    EXPECT_EQ(low.subscriber_ports_icmp, 1u);
    const Limits high = accepted(with("[limits]\nsubscriber_ports = 65535\n")).limits;
    EXPECT_EQ(high.subscriber_ports_udp, 65535u);
}

TEST(ConfigAccepts, SubscriberPortsOverrideWinsAfterShorthand_RFC6888_REQ4) {
    const Limits l =
        accepted(with("[limits]\nsubscriber_ports = 2000\nsubscriber_ports_tcp = 500\n")).limits;
    EXPECT_EQ(l.subscriber_ports_udp, 2000u);
    EXPECT_EQ(l.subscriber_ports_tcp, 500u);
    EXPECT_EQ(l.subscriber_ports_icmp, 2000u);
}

TEST(ConfigAccepts, SubscriberPortsOverrideWinsBeforeShorthand_RFC6888_REQ4) {
    const Limits l = accepted(with("[limits]\nsubscriber_ports_udp = 65535\n"
                                   "subscriber_ports_icmp = 10\nsubscriber_ports = 2000\n"))
                         .limits;
    EXPECT_EQ(l.subscriber_ports_udp, 65535u);
    EXPECT_EQ(l.subscriber_ports_tcp, 2000u);
    EXPECT_EQ(l.subscriber_ports_icmp, 10u);
}

TEST(ConfigAccepts, SubscriberPortsOverrideWithoutShorthand_RFC6888_REQ4) {
    const Limits l = accepted(with("[limits]\nsubscriber_ports_icmp = 64\n")).limits;
    EXPECT_EQ(l.subscriber_ports_udp, Limits{}.subscriber_ports_udp);
    EXPECT_EQ(l.subscriber_ports_tcp, Limits{}.subscriber_ports_tcp);
    EXPECT_EQ(l.subscriber_ports_icmp, 64u);
}

TEST(ConfigAccepts, SubscriberMappingBurstDefaultsToTheRate_RFC6888_REQ4) {
    const Limits l = accepted(with("[limits]\nsubscriber_mapping_rate = 50\n")).limits;
    EXPECT_EQ(l.subscriber_mapping_rate, 50u);
    EXPECT_EQ(l.subscriber_mapping_burst, 50u);

    const Limits max = accepted(with("[limits]\nsubscriber_mapping_rate = 1000000\n")).limits;
    EXPECT_EQ(max.subscriber_mapping_burst, 1000000u);
}

TEST(ConfigAccepts, SubscriberMappingBurstGivenWins_RFC6888_REQ4) {
    const Limits l = accepted(with("[limits]\nsubscriber_mapping_burst = 5\n"
                                   "subscriber_mapping_rate = 50\n"))
                         .limits;
    EXPECT_EQ(l.subscriber_mapping_rate, 50u);
    EXPECT_EQ(l.subscriber_mapping_burst, 5u);

    const Limits burst_only = accepted(with("[limits]\nsubscriber_mapping_burst = 1\n")).limits;
    EXPECT_EQ(burst_only.subscriber_mapping_rate, Limits{}.subscriber_mapping_rate);
    EXPECT_EQ(burst_only.subscriber_mapping_burst, 1u);
}

TEST(ConfigAccepts, SubscriberMappingRateZeroMeansNoLimit_RFC6888_REQ4) {
    // The burst is unused without a rate; it keeps its default rather than becoming 0.
    const Limits l = accepted(with("[limits]\nsubscriber_mapping_rate = 0\n")).limits;
    EXPECT_EQ(l.subscriber_mapping_rate, 0u);
    EXPECT_EQ(l.subscriber_mapping_burst, Limits{}.subscriber_mapping_burst);
}

// ---- icmp (RFC 6888 REQ-11) --------------------------------------------------------------

TEST(ConfigRefuses, IcmpUnreachableWrongType_RFC6888_REQ11) {
    EXPECT_REFUSED(with("[icmp]\nunreachable = \"true\"\n"), "icmp.unreachable",
                   "expected a boolean, got a string");
    EXPECT_REFUSED(with("[icmp]\nunreachable = 0\n"), "icmp.unreachable",
                   "expected a boolean, got an integer");
}

TEST(ConfigRefuses, IcmpUnreachableRateWrongType_RFC6888_REQ11) {
    EXPECT_REFUSED(with("[icmp]\nunreachable_rate = false\n"), "icmp.unreachable_rate",
                   "expected an integer, got a boolean");
}

TEST(ConfigRefuses, IcmpUnreachableRateOutOfRange_RFC6888_REQ11) {
    EXPECT_REFUSED(with("[icmp]\nunreachable_rate = 1000001\n"), "icmp.unreachable_rate",
                   "must be between 0 and 1000000 per s, got 1000001");
    EXPECT_REFUSED(with("[icmp]\nunreachable_rate = -1\n"), "icmp.unreachable_rate",
                   "must be between 0 and 1000000 per s, got -1");
}

TEST(ConfigRefuses, UnsolicitedSynUnreachableWrongType_RFC5382_REQ4) {
    EXPECT_REFUSED(with("[icmp]\nunsolicited_syn_unreachable = \"yes\"\n"),
                   "icmp.unsolicited_syn_unreachable", "expected a boolean, got a string");
}

TEST(ConfigAccepts, UnsolicitedSynUnreachable_RFC5382_REQ4) {
    EXPECT_FALSE(accepted(with("")).icmp.unsolicited_syn_unreachable); // REQ-4a: silent
    EXPECT_TRUE(accepted(with("[icmp]\nunsolicited_syn_unreachable = true\n"))
                    .icmp.unsolicited_syn_unreachable);
}

TEST(ConfigRefuses, IcmpNotATable) {
    EXPECT_REFUSED("icmp = true\n" + with(""), "icmp", "expected a table, got a boolean");
}

TEST(ConfigAccepts, IcmpDefaults_RFC6888_REQ11) {
    for (const std::string& text : {with(""), with("[icmp]\n")}) {
        const Config cfg = accepted(text);
        EXPECT_TRUE(cfg.icmp.unreachable);
        EXPECT_EQ(cfg.icmp.unreachable_rate, 100u);
    }
}

TEST(ConfigAccepts, IcmpValues_RFC6888_REQ11) {
    const Config off = accepted(with("[icmp]\nunreachable = false\n"));
    EXPECT_FALSE(off.icmp.unreachable);
    EXPECT_EQ(off.icmp.unreachable_rate, 100u);

    const Config on = accepted(with("[icmp]\nunreachable = true\nunreachable_rate = 0\n"));
    EXPECT_TRUE(on.icmp.unreachable);
    EXPECT_EQ(on.icmp.unreachable_rate, 0u);

    EXPECT_EQ(accepted(with("[icmp]\nunreachable_rate = 1000000\n")).icmp.unreachable_rate,
              1000000u);
}

TEST(ConfigRefuses, SameInsideAndOutsidePort) {
    EXPECT_REFUSED(with_outside("port = \"net_af_packet0\"\nnext_hop = \"198.18.0.2\"\n"),
                   "outside.port", "same port as inside.port");
}

TEST(ConfigRefuses, EmptyPortName) {
    EXPECT_REFUSED(with_inside("port = \"\"\ngateway = \"100.64.0.1\"\n"), "inside.port",
                   "must not be empty");
}

// ---- required tables and keys ------------------------------------------------------------

TEST(ConfigRefuses, MissingRequiredTable) {
    EXPECT_REFUSED(kInside + kOutside, "pool", "missing required table [pool]");
    EXPECT_REFUSED(kPool + kOutside, "inside", "missing required table [inside]");
    EXPECT_REFUSED(kPool + kInside, "outside", "missing required table [outside]");
    EXPECT_REFUSED("", "pool", "missing required table");
}

TEST(ConfigRefuses, MissingRequiredKey) {
    EXPECT_REFUSED(with_pool("port_range = \"iana\"\n"), "pool.addresses", "missing required key");
    EXPECT_REFUSED(with_inside("gateway = \"100.64.0.1\"\n"), "inside.port",
                   "missing required key");
    EXPECT_REFUSED(with_inside("port = \"a\"\n"), "inside.gateway", "missing required key");
    EXPECT_REFUSED(with_outside("next_hop = \"198.18.0.2\"\n"), "outside.port",
                   "missing required key");
    EXPECT_REFUSED(with_outside("port = \"b\"\n"), "outside.next_hop", "missing required key");
}

// ---- MAC ---------------------------------------------------------------------------------

std::string outside_with_mac(const std::string& mac) {
    return with_outside("port = \"b\"\nnext_hop = \"198.18.0.2\"\nnext_hop_mac = \"" + mac +
                        "\"\n");
}

TEST(ConfigRefuses, BadMac) {
    for (const char* bad :
         {"02:00:00:00:00", "02:00:00:00:00:01:02", "02-00-00-00-00-01", "0g:00:00:00:00:01",
          "2:00:00:00:00:01", "02:00:00:00:00:1", "0200.0000.0001", ""}) {
        SCOPED_TRACE(bad);
        EXPECT_REFUSED(outside_with_mac(bad), "outside.next_hop_mac", "not a MAC address");
    }
}

TEST(ConfigRefuses, MulticastBroadcastOrZeroMac) {
    EXPECT_REFUSED(outside_with_mac("ff:ff:ff:ff:ff:ff"), "outside.next_hop_mac",
                   "multicast or broadcast");
    EXPECT_REFUSED(outside_with_mac("01:00:5E:00:00:01"), "outside.next_hop_mac",
                   "01:00:5e:00:00:01 is a multicast or broadcast MAC");
    EXPECT_REFUSED(outside_with_mac("00:00:00:00:00:00"), "outside.next_hop_mac", "all-zero");
}

TEST(ConfigAccepts, StaticNextHopMac) {
    const Config cfg = accepted(outside_with_mac("02:AB:cd:00:00:01"));
    ASSERT_TRUE(cfg.outside.next_hop_mac.has_value());
    EXPECT_EQ(cfg.outside.next_hop_mac->to_string(), "02:ab:cd:00:00:01");
}

// ---- syntax and files --------------------------------------------------------------------

TEST(ConfigRefuses, SyntaxErrorWithLineAndColumn) {
    const std::string text = "[pool]\naddresses = [\"198.18.0.100\"\nport_range = \"iana\"\n";
    auto result = parse_config(text, kSource);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(err->key, "(syntax)");
    EXPECT_THAT(err->reason, HasSubstr("syntax error at line 3, column"));
    EXPECT_THAT(err->to_string(), StartsWith("test.toml: (syntax): "));
}

TEST(ConfigRefuses, SyntaxErrorDuplicateKey) {
    const std::string text = kPool + kInside + kOutside + "[timeouts]\nudp = 300\nudp = 400\n";
    auto result = parse_config(text, kSource);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(err->key, "(syntax)");
    // kPool, kInside and kOutside take 11 lines; the second udp is on line 14.
    EXPECT_THAT(err->reason, HasSubstr("line 14"));
}

TEST(ConfigRefuses, UnreadableFile) {
    const std::string path = ::testing::TempDir() + "ephemera-config-test-does-not-exist.toml";
    auto result = load_config_file(path);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(err->file, path);
    EXPECT_EQ(err->key, "(file)");
    EXPECT_THAT(err->reason, HasSubstr("No such file or directory"));
    EXPECT_THAT(err->to_string(), StartsWith(path + ": (file): "));
}

TEST(ConfigRefuses, DirectoryIsNotAConfigFile) {
    const std::string path = EPHEMERA_SOURCE_DIR "/conf";
    auto result = load_config_file(path);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(err->key, "(file)");
    EXPECT_THAT(err->reason, HasSubstr("Is a directory"));
}

TEST(ConfigRefuses, ErrorInLoadedFileNamesThePath) {
    const std::string path = ::testing::TempDir() + "ephemera-config-test-bad.toml";
    {
        std::ofstream out(path);
        out << with("[timeouts]\nudp = 10\n");
    }
    auto result = load_config_file(path);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(err->to_string(), path + ": timeouts.udp: " + err->reason);
}

// ---- encoding: what toml++ is never given ------------------------------------------------
// toml++ 3.3.0 reaches undefined behaviour (an unreachable branch of its Unicode whitespace
// test) on some non-ASCII characters outside strings and comments, and after a line-ending
// backslash in a multi-line string (upstream issues 190 and 295). Such text is refused before
// toml++ sees it, with ephemera's own words, so these tests also show toml++ was not asked.

// The refusal of `text`; fails the test when it is accepted.
ConfigError refusal_of(const std::string& text) {
    auto result = parse_config(text, kSource);
    if (const auto* err = std::get_if<ConfigError>(&result)) {
        return *err;
    }
    ADD_FAILURE() << "accepted:\n" << text;
    return {};
}

TEST(ConfigRefuses, InvalidUtf8NamesLineAndColumn) {
    // kPool, kInside and kOutside take 11 lines; the extra text starts on line 12.
    const ConfigError err = refusal_of(with("# caf\xe9 in Latin-1\n"));
    EXPECT_EQ(err.key, "(encoding)");
    EXPECT_THAT(err.reason, HasSubstr("line 12, column 6: byte 0xE9 is not valid UTF-8"));
    EXPECT_THAT(err.to_string(), StartsWith("test.toml: (encoding): line 12"));
}

TEST(ConfigRefuses, EveryKindOfInvalidUtf8EvenInStringsAndComments) {
    for (const std::string bad : {
             "\x80",             // a continuation byte with no lead
             "\xc3",             // a lead byte and no continuation
             "\xc0\xaf",         // overlong '/'
             "\xe0\x80\xaf",     // overlong, three bytes
             "\xed\xa0\x80",     // a UTF-16 surrogate, U+D800
             "\xf4\x90\x80\x80", // beyond U+10FFFF
             "\xff",             // never in UTF-8
         }) {
        SCOPED_TRACE(testing::PrintToString(bad));
        EXPECT_EQ(refusal_of(with("# " + bad + "\n")).key, "(encoding)");
        EXPECT_EQ(refusal_of(with_inside("port = \"" + bad + "\"\ngateway = \"100.64.0.1\"\n")).key,
                  "(encoding)");
        EXPECT_EQ(refusal_of(with("[timeouts]\nudp = 300" + bad)).key, "(encoding)");
    }
}

TEST(ConfigRefuses, NonAsciiInABareKey) {
    const ConfigError err = refusal_of(with("[timeouts]\nud\xc3\xa9 = 300\n"));
    EXPECT_EQ(err.key, "(syntax)");
    EXPECT_THAT(err.reason, HasSubstr("line 13, column 3: non-ASCII character U+00E9 outside a "
                                      "string or comment"));
}

TEST(ConfigRefuses, NonAsciiOutsideStringsAndComments) {
    // U+00A7 is the character of upstream issue 190, U+032A of issue 295; U+00A0 and U+3000
    // are Unicode spaces, which TOML does not take for whitespace; U+FEFF is a byte order mark
    // anywhere but at the start.
    for (const std::string ch :
         {"\xc2\xa7", "\xcc\xaa", "\xc2\xa0", "\xe3\x80\x80", "\xef\xbb\xbf", "\xf0\x9f\x98\x80"}) {
        SCOPED_TRACE(testing::PrintToString(ch));
        EXPECT_THAT(refusal_of(with(ch)).reason, HasSubstr("line 12, column 1: non-ASCII"));
        EXPECT_THAT(refusal_of(with("[timeouts]\nudp = 300" + ch + "\n")).reason,
                    HasSubstr("line 13, column 10: non-ASCII"));
        EXPECT_THAT(refusal_of(with("[timeouts]" + ch + "\n")).reason,
                    HasSubstr("line 12, column 11: non-ASCII"));
        EXPECT_THAT(refusal_of(" " + ch + "\n" + with("")).reason,
                    HasSubstr("line 1, column 2: non-ASCII"));
        // After a string or a comment ends, the text is outside again.
        EXPECT_THAT(refusal_of(with("[inside]\nport = \"a\"" + ch + "\n")).reason,
                    HasSubstr("line 13, column 11: non-ASCII"));
        EXPECT_THAT(refusal_of(with("# note\n" + ch + "\n")).reason,
                    HasSubstr("line 13, column 1: non-ASCII"));
    }
}

TEST(ConfigRefuses, NonAsciiAfterALineEndingBackslashInAMultiLineString) {
    // Upstream issue 190: valid TOML, but toml++ 3.3.0 asks its broken whitespace test about
    // the first character after the backslash's whitespace. The refusal says how to write it.
    const ConfigError err =
        refusal_of(with_inside("port = \"\"\"\\\n  \xc2\xa7\"\"\"\ngateway = \"100.64.0.1\"\n"));
    EXPECT_EQ(err.key, "(syntax)");
    EXPECT_THAT(err.reason, HasSubstr("line 6, column 3: non-ASCII character U+00A7 right after "
                                      "a backslash or a line-ending backslash"));
    EXPECT_THAT(err.reason, HasSubstr("write it as \\u00A7"));
    // A backslash right before it, in a multi-line string, is asked about the same way.
    EXPECT_EQ(
        refusal_of(with_inside("port = \"\"\"x\\\xc2\xa7\"\"\"\ngateway = \"100.64.0.1\"\n")).key,
        "(syntax)");
    EXPECT_EQ(refusal_of(with_inside("port = \"\"\"\\\r\n\t\n\xc2\xa7\"\"\"\n")).key, "(syntax)");
}

TEST(ConfigRefuses, NonAsciiAfterAQuoteThatOpensNoString) {
    // toml++ reads a string only where a key or a value starts; a quote inside a malformed
    // value (7"...", -["...", x{"...") it reads as part of that value, asking its whitespace
    // test about what follows: such a quote opens no string here either. Found by tests/fuzz
    // (fuzz-config, the second through a runtime edit's value).
    for (const std::string text :
         {"udp = 300\"\xcc\xaa\"\n", "udp = 3.0\"\xcc\xaa\"\n", "udp = \"a\"\"\xcc\xaa\"\n",
          "udp = true'\xcc\xaa'\n", "ud\"\xcc\xaa\" = 3\n", "udp =-[\"\xcc\xaa\"]\n",
          "udp = x{\"\xcc\xaa\"}\n", "udp = 1=\"\xcc\xaa\"\n", "udp = [\n  1=\"\xcc\xaa\"]\n",
          "udp = [1 \"\xcc\xaa\"]\n", "udp = {a = 1 \"\xcc\xaa\"}\n"}) {
        SCOPED_TRACE(testing::PrintToString(text));
        const ConfigError err = refusal_of(with("[timeouts]\n" + text));
        EXPECT_EQ(err.key, "(syntax)");
        EXPECT_THAT(err.reason, HasSubstr("non-ASCII character U+032A outside a string"));
    }
}

TEST(ConfigAccepts, NonAsciiInStringsWhereverTomlPutsThem) {
    // Strings as values, array elements, inline-table values, quoted and dotted keys, after
    // comments and on continuation lines: all reach the parser, and the key checks refuse
    // what this config does not know.
    for (const std::string text :
         {"x = \"\xc3\xa9\"\n", "x=\"\xc3\xa9\"\n", "x = [\"a\", \"\xc3\xa9\"]\n",
          "x = [\n  # \xc3\xa9\n  \"\xc3\xa9\",\n  [ '\xc3\xa9' ],\n]\n",
          "x = {a = 1, b = \"\xc3\xa9\", c = [\"\xc3\xa9\"]}\n", "\"\xc3\xa9\" = 1\n",
          "x.\"\xc3\xa9\" = 1\n", "x . '\xc3\xa9' . y = 1\n",
          "x = 1979-05-27 07:32:00 # \xc3\xa9\n", "x = \"\"\"\n\xc3\xa9\n\"\"\"\n"}) {
        SCOPED_TRACE(testing::PrintToString(text));
        const ConfigError err = refusal_of(with("[timeouts]\n" + text));
        EXPECT_NE(err.key, "(syntax)") << err.to_string();
        EXPECT_THAT(err.reason, HasSubstr("unknown key"));
    }
    EXPECT_REFUSED(with("[\"tim\xc3\xa9outs\" . x]\nudp = 300\n"), "tim\xc3\xa9outs",
                   "unknown key");
}

TEST(ConfigAccepts, NonAsciiInStringsAndComments) {
    const Config cfg =
        accepted("# caf\xc3\xa9, \xc2\xa7 and \xe3\x80\x80 in a comment\n" + kPool +
                 "[inside]\nport = \"net_\xc2\xa7\"  # \xcc\xaa\ngateway = '100.64.0.1'\n" +
                 "[outside]\nport = '''\xc2\xa0x\xc2\xa7'''\nnext_hop = \"198.18.0.2\"\n");
    EXPECT_EQ(cfg.inside.port, "net_\xc2\xa7");
    EXPECT_EQ(cfg.outside.port, "\xc2\xa0x\xc2\xa7");
    // A multi-line basic string may hold non-ASCII anywhere but right after a backslash or its
    // whitespace; escapes and quotes inside strings do not end them.
    const Config ml = accepted(with_inside(
        "port = \"\"\"a\\\n  b\xc2\xa7\\\"\"\xc2\xa7\"\"\"\ngateway = \"100.64.0.1\"\n"));
    EXPECT_EQ(ml.inside.port, "ab\xc2\xa7\"\"\xc2\xa7");
    const Config escaped =
        accepted(with_inside("port = \"\\\"\xc2\xa7\\\\\"\ngateway = \"100.64.0.1\"\n"));
    EXPECT_EQ(escaped.inside.port, "\"\xc2\xa7\\");
    // Quoted keys are strings too: this one reaches the key checks.
    EXPECT_REFUSED(with("[\"tim\xc3\xa9outs\"]\nudp = 300\n"), "tim\xc3\xa9outs", "unknown key");
}

// toml++ 3.3.0 reaches a debug assertion on these (fixed upstream after 3.3.0, PR 301; found
// by tests/fuzz). Debian's library is built without assertions and with GCC, where the
// assumption behind it is a no-op: the parser refuses them as syntax errors, which this shows.
TEST(ConfigRefuses, TableHeaderThatDoesNotStartWithAKey) {
    for (const std::string header : {"[%", "[[[a]]]", "[ [a]]", "[\t=", "s =[}"}) {
        SCOPED_TRACE(testing::PrintToString(header));
        const ConfigError err = refusal_of(with(header + "\n"));
        EXPECT_EQ(err.key, "(syntax)");
        EXPECT_THAT(err.reason, HasSubstr("line 12, column "));
    }
}

TEST(ConfigAccepts, LeadingByteOrderMark) {
    const Config cfg = accepted("\xef\xbb\xbf" + with(""));
    EXPECT_EQ(cfg.pool.size(), 1u);
}

TEST(ConfigRefuses, NonAsciiInALoadedFileNamesThePath) {
    const std::string path = ::testing::TempDir() + "ephemera-config-test-latin1.toml";
    {
        std::ofstream out(path, std::ios::binary);
        out << with("[timeouts]\nudp = 300 # 300 s \xb1 0\n");
    }
    auto result = load_config_file(path);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr);
    EXPECT_THAT(err->to_string(), StartsWith(path + ": (encoding): line 13, column 19: byte 0xB1"));
}

// ---- accepted configurations -------------------------------------------------------------

TEST(ConfigAccepts, DemoConfigLoads) {
    const std::string path = EPHEMERA_SOURCE_DIR "/conf/demo.toml";
    auto result = load_config_file(path);
    if (const auto* err = std::get_if<ConfigError>(&result)) {
        FAIL() << err->to_string();
    }
    const Config& cfg = std::get<Config>(result);
    EXPECT_EQ(cfg.source, path);
    ASSERT_EQ(cfg.pool.size(), 2u);
    EXPECT_EQ(cfg.pool[0], Ipv4Addr(198, 18, 0, 100));
    EXPECT_EQ(cfg.pool[1], Ipv4Addr(198, 18, 0, 101));
    EXPECT_EQ(cfg.port_range, (PortRange{49152, 65535}));
    EXPECT_EQ(cfg.port_range_name, "iana");
    ASSERT_EQ(cfg.reserved.size(), 1u);
    EXPECT_EQ(cfg.reserved[0], (PortRange{65000, 65010}));
    EXPECT_EQ(cfg.inside.port, "net_af_packet0");
    EXPECT_EQ(cfg.inside.gateway, Ipv4Addr(100, 64, 0, 1));
    EXPECT_EQ(cfg.outside.port, "net_af_packet1");
    EXPECT_EQ(cfg.outside.next_hop, Ipv4Addr(198, 18, 0, 2));
    EXPECT_FALSE(cfg.outside.next_hop_mac.has_value());
    EXPECT_EQ(cfg.timeouts.udp, 300u);
    EXPECT_EQ(cfg.timeouts.tcp_established, 7440u);
    EXPECT_EQ(cfg.timeouts.tcp_transitory, 240u);
    EXPECT_EQ(cfg.timeouts.icmp, 60u);
    EXPECT_EQ(cfg.filtering, FilteringMode::endpoint_independent);
    EXPECT_EQ(cfg.limits.max_sessions, 262144u);
    EXPECT_EQ(cfg.timeouts.port_hold_down, 120u);
    EXPECT_FALSE(cfg.timeouts.inbound_refresh);
    EXPECT_EQ(cfg.limits.subscriber_sessions, 8192u);
    EXPECT_EQ(cfg.limits.subscriber_ports_udp, 4096u);
    EXPECT_EQ(cfg.limits.subscriber_ports_tcp, 4096u);
    EXPECT_EQ(cfg.limits.subscriber_ports_icmp, 4096u);
    EXPECT_EQ(cfg.limits.subscriber_mapping_rate, 1000u);
    EXPECT_EQ(cfg.limits.subscriber_mapping_burst, 1000u);
    EXPECT_TRUE(cfg.icmp.unreachable);
    EXPECT_EQ(cfg.icmp.unreachable_rate, 100u);
}

TEST(ConfigAccepts, DefaultsApplied) {
    const Config cfg = accepted(kPool + kInside + kOutside);
    EXPECT_EQ(cfg.source, kSource);
    EXPECT_EQ(cfg.port_range, (PortRange{49152, 65535}));
    EXPECT_EQ(cfg.port_range_name, "iana");
    EXPECT_TRUE(cfg.reserved.empty());
    EXPECT_FALSE(cfg.outside.next_hop_mac.has_value());
    const Timeouts defaults;
    EXPECT_EQ(cfg.timeouts.udp, defaults.udp);
    EXPECT_EQ(cfg.timeouts.tcp_established, defaults.tcp_established);
    EXPECT_EQ(cfg.timeouts.tcp_transitory, defaults.tcp_transitory);
    EXPECT_EQ(cfg.timeouts.icmp, defaults.icmp);
    EXPECT_EQ(cfg.filtering, FilteringMode::endpoint_independent);
    EXPECT_EQ(cfg.limits.max_sessions, Limits{}.max_sessions);
    // RFC 6888 REQ-8: the hold-down default is the 120 s the RFC asks for.
    EXPECT_EQ(cfg.timeouts.port_hold_down, 120u);
    // RFC 4787 REQ-6: inbound refresh is optional and off unless asked for.
    EXPECT_FALSE(cfg.timeouts.inbound_refresh);
    EXPECT_EQ(cfg.limits.subscriber_sessions, Limits{}.subscriber_sessions);
    EXPECT_EQ(cfg.limits.subscriber_ports_udp, Limits{}.subscriber_ports_udp);
    EXPECT_EQ(cfg.limits.subscriber_ports_tcp, Limits{}.subscriber_ports_tcp);
    EXPECT_EQ(cfg.limits.subscriber_ports_icmp, Limits{}.subscriber_ports_icmp);
    EXPECT_EQ(cfg.limits.subscriber_mapping_rate, Limits{}.subscriber_mapping_rate);
    EXPECT_EQ(cfg.limits.subscriber_mapping_burst, Limits{}.subscriber_mapping_burst);
    EXPECT_EQ(cfg.icmp.unreachable, IcmpConfig{}.unreachable);
    EXPECT_EQ(cfg.icmp.unreachable_rate, IcmpConfig{}.unreachable_rate);
}

TEST(ConfigAccepts, EmptyOptionalTablesKeepDefaults) {
    const Config cfg = accepted(with("[timeouts]\n[filtering]\n[limits]\n[icmp]\n"));
    EXPECT_EQ(cfg.timeouts.udp, Timeouts{}.udp);
    EXPECT_EQ(cfg.timeouts.port_hold_down, Timeouts{}.port_hold_down);
    EXPECT_EQ(cfg.filtering, FilteringMode::endpoint_independent);
    EXPECT_EQ(cfg.limits.max_sessions, Limits{}.max_sessions);
    EXPECT_EQ(cfg.limits.subscriber_sessions, Limits{}.subscriber_sessions);
    EXPECT_EQ(cfg.icmp.unreachable_rate, IcmpConfig{}.unreachable_rate);
}

TEST(ConfigAccepts, EachPresetMapsToItsRange) {
    for (const auto& preset : kPortRangePresets) {
        SCOPED_TRACE(std::string{preset.name});
        const Config cfg = accepted(pool_with_range(std::string{preset.name}));
        EXPECT_EQ(cfg.port_range, preset.range);
        EXPECT_EQ(cfg.port_range_name, preset.name);
    }
    EXPECT_EQ(accepted(pool_with_range("iana")).port_range, (PortRange{49152, 65535}));
    EXPECT_EQ(accepted(pool_with_range("linux")).port_range, (PortRange{32768, 60999}));
    EXPECT_EQ(accepted(pool_with_range("freebsd")).port_range, (PortRange{10000, 65535}));
    EXPECT_EQ(accepted(pool_with_range("legacy-bsd")).port_range, (PortRange{1024, 5000}));
}

TEST(ConfigAccepts, ExplicitRange) {
    const Config cfg = accepted(pool_with_range("40000-50000"));
    EXPECT_EQ(cfg.port_range, (PortRange{40000, 50000}));
    EXPECT_EQ(cfg.port_range_name, "40000-50000");

    EXPECT_EQ(accepted(pool_with_range("40000-40063")).port_range.size(), 64u);
    EXPECT_EQ(accepted(pool_with_range("1-65535")).port_range, (PortRange{1, 65535}));
}

TEST(ConfigAccepts, ReservedSinglePortsAndRanges) {
    const Config cfg =
        accepted(pool_with_range("iana", "[\"65000-65010\", \"55555\", \"49152\", \"65535\"]"));
    ASSERT_EQ(cfg.reserved.size(), 4u);
    EXPECT_EQ(cfg.reserved[0], (PortRange{65000, 65010}));
    EXPECT_EQ(cfg.reserved[1], (PortRange{55555, 55555}));
    EXPECT_EQ(cfg.reserved[2], (PortRange{49152, 49152}));
    EXPECT_EQ(cfg.reserved[3], (PortRange{65535, 65535}));

    // All but one port reserved still leaves something to allocate.
    EXPECT_EQ(accepted(pool_with_range("40000-40063", "[\"40000-40062\"]")).reserved.size(), 1u);
    EXPECT_TRUE(accepted(pool_with_range("iana", "[]")).reserved.empty());
}

TEST(ConfigAccepts, CidrExpansion) {
    // Shorter than /31: network and broadcast addresses excluded.
    const Config slash30 = accepted(with_pool("addresses = [\"203.0.113.0/30\"]\n"));
    ASSERT_EQ(slash30.pool.size(), 2u);
    EXPECT_EQ(slash30.pool[0], Ipv4Addr(203, 0, 113, 1));
    EXPECT_EQ(slash30.pool[1], Ipv4Addr(203, 0, 113, 2));

    // /31 (RFC 3021) and /32: every address.
    const Config slash31 = accepted(with_pool("addresses = [\"203.0.113.4/31\"]\n"));
    ASSERT_EQ(slash31.pool.size(), 2u);
    EXPECT_EQ(slash31.pool[0], Ipv4Addr(203, 0, 113, 4));
    EXPECT_EQ(slash31.pool[1], Ipv4Addr(203, 0, 113, 5));
    const Config slash32 = accepted(with_pool("addresses = [\"203.0.113.9/32\"]\n"));
    ASSERT_EQ(slash32.pool.size(), 1u);
    EXPECT_EQ(slash32.pool[0], Ipv4Addr(203, 0, 113, 9));

    const Config slash24 = accepted(with_pool("addresses = [\"203.0.113.0/24\"]\n"));
    ASSERT_EQ(slash24.pool.size(), 254u);
    EXPECT_EQ(slash24.pool.front(), Ipv4Addr(203, 0, 113, 1));
    EXPECT_EQ(slash24.pool.back(), Ipv4Addr(203, 0, 113, 254));

    // The largest prefix allowed, /16, fits under the 65535-address limit.
    const Config slash16 = accepted(with_pool("addresses = [\"203.0.0.0/16\"]\n"));
    ASSERT_EQ(slash16.pool.size(), 65534u);
    EXPECT_EQ(slash16.pool.front(), Ipv4Addr(203, 0, 0, 1));
    EXPECT_EQ(slash16.pool.back(), Ipv4Addr(203, 0, 255, 254));
}

TEST(ConfigAccepts, PoolKeepsFileOrderAcrossNonContiguousEntries) {
    const Config cfg = accepted(
        with_pool("addresses = [\"198.18.0.101\", \"203.0.113.0/30\", \"198.18.0.100\"]\n"));
    ASSERT_EQ(cfg.pool.size(), 4u);
    EXPECT_EQ(cfg.pool[0], Ipv4Addr(198, 18, 0, 101));
    EXPECT_EQ(cfg.pool[1], Ipv4Addr(203, 0, 113, 1));
    EXPECT_EQ(cfg.pool[2], Ipv4Addr(203, 0, 113, 2));
    EXPECT_EQ(cfg.pool[3], Ipv4Addr(198, 18, 0, 100));
}

TEST(ConfigAccepts, EachFilteringMode) {
    EXPECT_EQ(accepted(with("[filtering]\nmode = \"endpoint-independent\"\n")).filtering,
              FilteringMode::endpoint_independent);
    EXPECT_EQ(accepted(with("[filtering]\nmode = \"address\"\n")).filtering,
              FilteringMode::address_dependent);
    EXPECT_EQ(accepted(with("[filtering]\nmode = \"address-and-port\"\n")).filtering,
              FilteringMode::address_port_dependent);
}

TEST(FilteringModeName, NamesAreTheConfigSpellings) {
    EXPECT_EQ(filtering_mode_name(FilteringMode::endpoint_independent), "endpoint-independent");
    EXPECT_EQ(filtering_mode_name(FilteringMode::address_dependent), "address");
    EXPECT_EQ(filtering_mode_name(FilteringMode::address_port_dependent), "address-and-port");
}

TEST(DescribeConfig, SummarisesTheDemoConfig) {
    auto result = load_config_file(EPHEMERA_SOURCE_DIR "/conf/demo.toml");
    ASSERT_TRUE(std::holds_alternative<Config>(result));
    const std::string text = describe_config(std::get<Config>(result));
    EXPECT_THAT(text, HasSubstr("2 addresses: 198.18.0.100-198.18.0.101"));
    EXPECT_THAT(text, HasSubstr("iana (49152-65535), 16384 ports"));
    EXPECT_THAT(text, HasSubstr("65000-65010 (11 ports), 16373 ports left"));
    EXPECT_THAT(text, HasSubstr("port net_af_packet0, gateway 100.64.0.1"));
    EXPECT_THAT(text, HasSubstr("port net_af_packet1, next hop 198.18.0.2 (MAC learned by ARP)"));
    EXPECT_THAT(text, HasSubstr("udp 300 s, tcp established 7440 s, tcp transitory 240 s, "
                                "icmp 60 s"));
    EXPECT_THAT(text, HasSubstr("endpoint-independent"));
    EXPECT_THAT(text, HasSubstr("max_sessions 262144"));
    EXPECT_THAT(text, HasSubstr("icmp 60 s, port hold-down 120 s, inbound refresh off\n"));
    EXPECT_THAT(text, HasSubstr("limits:      max_sessions 262144, max_subscribers 65536; per "
                                "subscriber 8192 sessions, "
                                "ports udp 4096 tcp 4096 icmp 4096, 1000 new mappings/s "
                                "(burst 1000)\n"));
    EXPECT_THAT(text,
                HasSubstr("icmp:        unreachable (3/1) on, at most 100 per s per worker\n"));
    EXPECT_EQ(text.back(), '\n');
}

TEST(DescribeConfig, NewKeysAsGiven) {
    const Config cfg = accepted(with("[timeouts]\nport_hold_down = 30\ninbound_refresh = true\n"
                                     "[limits]\nmax_sessions = 4096\nsubscriber_ports = 100\n"
                                     "subscriber_ports_tcp = 200\nsubscriber_mapping_rate = 20\n"
                                     "[icmp]\nunreachable = false\n"));
    const std::string text = describe_config(cfg);
    EXPECT_THAT(text, HasSubstr("port hold-down 30 s, inbound refresh on\n"));
    EXPECT_THAT(text, HasSubstr("per subscriber 4096 sessions, ports udp 100 tcp 200 icmp 100, "
                                "20 new mappings/s (burst 20)\n"));
    EXPECT_THAT(text, HasSubstr("icmp:        unreachable (3/1) off\n"));

    const Config unlimited =
        accepted(with("[limits]\nsubscriber_mapping_rate = 0\n[icmp]\nunreachable_rate = 0\n"));
    const std::string text2 = describe_config(unlimited);
    EXPECT_THAT(text2, HasSubstr(", new mappings not rate-limited\n"));
    EXPECT_THAT(text2, HasSubstr("unreachable (3/1) on, but rate 0: never sent\n"));
}

TEST(DescribeConfig, ExplicitRangeStaticMacAndNoReserved) {
    const Config cfg = accepted(with_pool(
        "addresses = [\"203.0.113.0/30\", \"198.18.0.9\"]\nport_range = \"40000-50000\"\n"));
    const std::string text = describe_config(cfg);
    EXPECT_THAT(text, HasSubstr("3 addresses: 203.0.113.1-203.0.113.2, 198.18.0.9"));
    EXPECT_THAT(text, HasSubstr("40000-50000, 10001 ports"));
    EXPECT_THAT(text, HasSubstr("reserved:    none"));

    const Config with_mac = accepted(outside_with_mac("02:00:00:00:00:01"));
    EXPECT_THAT(describe_config(with_mac), HasSubstr("next hop 198.18.0.2 at 02:00:00:00:00:01"));
}

// ---- Ipv4Addr and MacAddr text forms -----------------------------------------------------

TEST(Ipv4AddrParse, AcceptsDottedQuads) {
    EXPECT_EQ(Ipv4Addr::parse("198.18.0.1"), Ipv4Addr(198, 18, 0, 1));
    EXPECT_EQ(Ipv4Addr::parse("0.0.0.0"), Ipv4Addr(0, 0, 0, 0));
    EXPECT_EQ(Ipv4Addr::parse("255.255.255.255"), Ipv4Addr(255, 255, 255, 255));
    EXPECT_EQ(Ipv4Addr::parse("10.0.100.200"), Ipv4Addr(10, 0, 100, 200));
}

TEST(Ipv4AddrParse, RefusesEverythingElse) {
    for (const char* bad :
         {"", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "256.0.0.1", "1.2.3.256",
          "01.2.3.4", "1.2.3.00", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "+1.2.3.4", "0x1.2.3.4",
          "1.2.3.4/32", "1234.1.1.1", "a.b.c.d", "16909060"}) {
        EXPECT_FALSE(Ipv4Addr::parse(bad).has_value()) << '"' << bad << '"';
    }
}

TEST(Ipv4AddrToString, IsCanonicalDottedQuad) {
    EXPECT_EQ(Ipv4Addr(198, 18, 0, 1).to_string(), "198.18.0.1");
    EXPECT_EQ(Ipv4Addr(0, 0, 0, 0).to_string(), "0.0.0.0");
    EXPECT_EQ(Ipv4Addr(255, 255, 255, 255).to_string(), "255.255.255.255");
    EXPECT_EQ(Ipv4Addr{0xC6120064u}.to_string(), "198.18.0.100");
}

TEST(MacAddrParse, AcceptsEitherCase) {
    const auto mac = MacAddr::parse("02:Ab:cD:EF:00:9f");
    ASSERT_TRUE(mac.has_value());
    const MacAddr expected{{0x02, 0xab, 0xcd, 0xef, 0x00, 0x9f}};
    EXPECT_EQ(*mac, expected);
    EXPECT_EQ(mac->to_string(), "02:ab:cd:ef:00:9f");
}

TEST(MacAddrParse, RefusesEverythingElse) {
    for (const char* bad :
         {"", "02:00:00:00:00", "02:00:00:00:00:01:", "02-00-00-00-00-01", "02:00:00:00:00:0g",
          "2:0:0:0:0:1", "020000000001", "02:00:00:00:00:001", " 02:00:00:00:00:01",
          "02:00:00:00:00:01 ", "02::00:00:00:00:01"}) {
        EXPECT_FALSE(MacAddr::parse(bad).has_value()) << '"' << bad << '"';
    }
}

TEST(MacAddrToString, IsLowerCaseColonSeparated) {
    const MacAddr mac{{0xff, 0x0a, 0xb0, 0x00, 0x01, 0xfe}};
    EXPECT_EQ(mac.to_string(), "ff:0a:b0:00:01:fe");
    EXPECT_EQ(MacAddr{}.to_string(), "00:00:00:00:00:00");
}

} // namespace
} // namespace ephemera

namespace ephemera {
namespace {

// ---- MTU (RFC 4787 REQ-13) and fragments (REQ-14) --------------------------------------------

const std::string kInsideBody = "port = \"net_a\"\ngateway = \"100.64.0.1\"\n";
const std::string kOutsideBody = "port = \"net_b\"\nnext_hop = \"198.18.0.2\"\n";

TEST(ConfigAccepts, MtuAndFragmentDefaultsAndBounds) {
    const Config d = accepted(with(""));
    EXPECT_EQ(d.inside.mtu, 1500);
    EXPECT_EQ(d.outside.mtu, 1500);
    EXPECT_EQ(d.fragments.timeout, 5u);
    EXPECT_EQ(d.fragments.max_datagrams, 256u);
    EXPECT_EQ(d.fragments.max_per_datagram, 8u);
    const Config lo = accepted(kPool + "[inside]\n" + kInsideBody + "mtu = 576\n[outside]\n" +
                               kOutsideBody + "mtu = 9000\n" +
                               "[fragments]\ntimeout = 1\nmax_datagrams = 16\n"
                               "max_per_datagram = 1\n");
    EXPECT_EQ(lo.inside.mtu, 576);
    EXPECT_EQ(lo.outside.mtu, 9000);
    EXPECT_EQ(lo.fragments.timeout, 1u);
    EXPECT_EQ(lo.fragments.max_datagrams, 16u);
    EXPECT_EQ(lo.fragments.max_per_datagram, 1u);
}

TEST(ConfigRefuses, InsideMtuOutOfRange) {
    EXPECT_REFUSED(with_inside(kInsideBody + "mtu = 575\n"), "inside.mtu",
                   "must be between 576 and 9000 bytes, got 575");
}

TEST(ConfigRefuses, OutsideMtuOutOfRange) {
    EXPECT_REFUSED(with_outside(kOutsideBody + "mtu = 9001\n"), "outside.mtu",
                   "must be between 576 and 9000 bytes, got 9001");
}

TEST(ConfigRefuses, FragmentTimeoutOutOfRange) {
    EXPECT_REFUSED(with("[fragments]\ntimeout = 0\n"), "fragments.timeout",
                   "must be between 1 and 60 s, got 0");
    EXPECT_REFUSED(with("[fragments]\ntimeout = 61\n"), "fragments.timeout", "got 61");
}

TEST(ConfigRefuses, FragmentMaxDatagramsOutOfRange) {
    EXPECT_REFUSED(with("[fragments]\nmax_datagrams = 15\n"), "fragments.max_datagrams",
                   "must be between 16 and 65536, got 15");
}

TEST(ConfigRefuses, FragmentMaxPerDatagramOutOfRange) {
    EXPECT_REFUSED(with("[fragments]\nmax_per_datagram = 0\n"), "fragments.max_per_datagram",
                   "must be between 1 and 64, got 0");
}

TEST(ConfigRefuses, FragmentsWouldHoldTooManyBuffers) {
    EXPECT_REFUSED(with("[fragments]\nmax_datagrams = 65536\nmax_per_datagram = 2\n"),
                   "fragments.max_per_datagram", "at most 16384 are allowed");
}

TEST(ConfigRefuses, UnknownKeyInFragments) {
    EXPECT_REFUSED(with("[fragments]\nmax_fragments = 4\n"), "fragments.max_fragments",
                   "unknown key");
}

// ---- checksum offload per port -------------------------------------------------------------

TEST(ConfigAccepts, ChecksumOffloadDefaultsToAutoOnBothPorts) {
    const Config d = accepted(with(""));
    EXPECT_EQ(d.inside.checksum_offload, ChecksumOffloadSetting::automatic);
    EXPECT_EQ(d.outside.checksum_offload, ChecksumOffloadSetting::automatic);
}

TEST(ConfigAccepts, ChecksumOffloadPerPort) {
    const Config c =
        accepted(kPool + "[inside]\n" + kInsideBody + "checksum_offload = \"off\"\n[outside]\n" +
                 kOutsideBody + "checksum_offload = \"ipv4\"\n");
    EXPECT_EQ(c.inside.checksum_offload, ChecksumOffloadSetting::off);
    EXPECT_EQ(c.outside.checksum_offload, ChecksumOffloadSetting::ipv4);
    EXPECT_EQ(accepted(with_outside(kOutsideBody + "checksum_offload = \"auto\"\n"))
                  .outside.checksum_offload,
              ChecksumOffloadSetting::automatic);
    EXPECT_THAT(describe_config(c), HasSubstr("gateway 100.64.0.1, checksum offload off\n"));
    EXPECT_THAT(describe_config(c), HasSubstr("(MAC learned by ARP), checksum offload ipv4\n"));
}

TEST(ConfigRefuses, UnknownChecksumOffloadSetting) {
    EXPECT_REFUSED(with_outside(kOutsideBody + "checksum_offload = \"on\"\n"),
                   "outside.checksum_offload",
                   "unknown checksum offload setting \"on\" (expected \"auto\"");
    EXPECT_REFUSED(with_inside(kInsideBody + "checksum_offload = \"Off\"\n"),
                   "inside.checksum_offload", "unknown checksum offload setting \"Off\"");
}

TEST(ConfigRefuses, ChecksumOffloadThatIsNotAString) {
    EXPECT_REFUSED(with_inside(kInsideBody + "checksum_offload = false\n"),
                   "inside.checksum_offload", "expected a string, got a boolean");
}

TEST(ChecksumOffloadName, NamesAreTheConfigSpellings) {
    EXPECT_EQ(checksum_offload_name(ChecksumOffloadSetting::automatic), "auto");
    EXPECT_EQ(checksum_offload_name(ChecksumOffloadSetting::ipv4), "ipv4");
    EXPECT_EQ(checksum_offload_name(ChecksumOffloadSetting::off), "off");
}

} // namespace
} // namespace ephemera
