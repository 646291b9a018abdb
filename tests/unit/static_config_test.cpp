// [[static]]: port forwards and 1:1 mappings. What the parser accepts, every refusal (file,
// dotted key, reason), the round trip, runtime additions and removals, and the command-line
// spelling.
#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"

#include "config_expect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace ephemera {
namespace {

using ::testing::HasSubstr;

constexpr const char* kSource = "static.toml";

// Two pool addresses, the iana range with 60000-60099 reserved, then `rest` ([[static]]
// entries).
std::string with(const std::string& rest, const std::string& pool_extra = "") {
    return "[pool]\naddresses = [\"198.18.0.10\", \"198.18.0.11\"]\nreserved = "
           "[\"60000-60099\"]\n" +
           pool_extra + R"(
[inside]
port = "net_af_packet0"
gateway = "100.64.0.1"
[outside]
port = "net_af_packet1"
next_hop = "198.18.0.2"
)" + rest;
}

std::string forward(const std::string& proto, const std::string& external,
                    const std::string& inside) {
    return "[[static]]\nprotocol = \"" + proto + "\"\nexternal = \"" + external +
           "\"\ninside = \"" + inside + "\"\n";
}

std::string one_to_one(const std::string& external, const std::string& inside) {
    return "[[static]]\nexternal = \"" + external + "\"\ninside = \"" + inside + "\"\n";
}

Config accepted(const std::string& text) {
    return config_test::accepted_from(text, kSource);
}

StaticMapping fwd(Protocol p, Ipv4Addr ext, std::uint16_t ext_port, Ipv4Addr in,
                  std::uint16_t in_port) {
    return StaticMapping{ext, in, ext_port, in_port, p};
}

StaticMapping one(Ipv4Addr ext, Ipv4Addr in) {
    return StaticMapping{ext, in, 0, 0, Protocol::tcp};
}

// ---- accepted ----------------------------------------------------------------------------

TEST(StaticConfig, NoneByDefault) {
    EXPECT_TRUE(accepted(with("")).statics.empty());
}

TEST(StaticConfig, ForwardsBelowAboveAndInReservedAnd1to1InFileOrder) {
    const Config c = accepted(with(forward("tcp", "198.18.0.10:8080", "100.64.0.5:80") +
                                   forward("udp", "198.18.0.11:60050", "100.64.0.6:5060") +
                                   one_to_one("198.18.0.20", "100.64.0.50") +
                                   forward("tcp", "198.18.0.10:22", "100.64.0.5:22")));
    ASSERT_EQ(c.statics.size(), 4u);
    EXPECT_EQ(c.statics[0], fwd(Protocol::tcp, {198, 18, 0, 10}, 8080, {100, 64, 0, 5}, 80));
    EXPECT_EQ(c.statics[1], fwd(Protocol::udp, {198, 18, 0, 11}, 60050, {100, 64, 0, 6}, 5060));
    EXPECT_EQ(c.statics[2], one({198, 18, 0, 20}, {100, 64, 0, 50}));
    EXPECT_TRUE(c.statics[2].one_to_one());
    EXPECT_EQ(c.statics[3].external_port, 22);
}

TEST(StaticConfig, PortsAboveTheRangeAndTheSameEndpointOnAnotherProtocolAreAccepted) {
    // linux: 32768-60999, so 61000 and up are above it.
    const Config c = accepted("[pool]\naddresses = [\"198.18.0.10\"]\nport_range = \"linux\"\n" +
                              with("").substr(with("").find("[inside]")) +
                              forward("tcp", "198.18.0.10:61000", "100.64.0.5:80") +
                              forward("udp", "198.18.0.10:61000", "100.64.0.5:80") +
                              forward("tcp", "198.18.0.10:1", "100.64.0.5:81"));
    EXPECT_EQ(c.statics.size(), 3u);
}

TEST(StaticConfig, SubscriberSpaceInsideAddressesAreAccepted) {
    // RFC 6598 shared address space, and any unicast address the inside may use.
    const Config c = accepted(with(one_to_one("198.18.0.20", "100.127.255.254") +
                                   forward("tcp", "198.18.0.10:80", "10.1.2.3:80") +
                                   forward("tcp", "198.18.0.10:81", "192.168.1.1:80")));
    EXPECT_EQ(c.statics.size(), 3u);
}

TEST(StaticConfig, DeterministicModeTakesForwardsOutsideItsRange) {
    const Config c =
        accepted("[pool]\naddresses = [\"198.18.0.10\"]\nport_range = \"2048-65535\"\nmode = "
                 "\"deterministic\"\n[pool.deterministic]\nsubscribers = \"100.64.0.0/27\"\n" +
                 with("").substr(with("").find("[inside]")) +
                 forward("tcp", "198.18.0.10:1024", "100.64.0.5:80") +
                 one_to_one("198.18.0.20", "100.64.0.50"));
    EXPECT_EQ(c.statics.size(), 2u);
    EXPECT_REFUSED("[pool]\naddresses = [\"198.18.0.10\"]\nport_range = \"2048-65535\"\nmode = "
                   "\"deterministic\"\n[pool.deterministic]\nsubscribers = \"100.64.0.0/27\"\n" +
                       with("").substr(with("").find("[inside]")) +
                       forward("tcp", "198.18.0.10:4000", "100.64.0.5:80"),
                   "static[0].external",
                   "port 4000 lies in the dynamic range 2048-65535 (pool.port_range), handed "
                   "out to subscribers; use a port outside it");
}

TEST(StaticConfig, DescribeCountsAndListsThem) {
    const Config c = accepted(with(forward("tcp", "198.18.0.10:8080", "100.64.0.5:80") +
                                   forward("udp", "198.18.0.10:53", "100.64.0.6:53") +
                                   one_to_one("198.18.0.20", "100.64.0.50")));
    const std::string text = describe_config(c);
    EXPECT_THAT(text, HasSubstr("static:      2 port forwards, 1 1:1\n"));
    EXPECT_THAT(text, HasSubstr("tcp 198.18.0.10:8080 -> 100.64.0.5:80\n"));
    EXPECT_THAT(text, HasSubstr("198.18.0.20 -> 100.64.0.50\n"));
    EXPECT_THAT(describe_config(accepted(with(""))), HasSubstr("static:      none\n"));
}

// ---- refused: spelling -------------------------------------------------------------------

TEST(StaticConfig, RefusesWrongShapesAndUnknownKeys) {
    EXPECT_REFUSED("static = 3\n" + with(""), "static",
                   "expected an array of tables ([[static]]), got an integer");
    EXPECT_REFUSED(with("[static]\nexternal = \"198.18.0.20\"\n"), "static",
                   "expected an array of tables ([[static]]), got a table");
    EXPECT_REFUSED("static = [1]\n" + with(""), "static[0]", "expected a table, got an integer");
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "100.64.0.50") + "port = 5\n"), "static[0].port",
                   "unknown key");
    EXPECT_REFUSED(with("[[static]]\ninside = \"100.64.0.50\"\n"), "static[0].external",
                   "missing required key");
    EXPECT_REFUSED(with("[[static]]\nexternal = \"198.18.0.20\"\n"), "static[0].inside",
                   "missing required key");
    EXPECT_REFUSED(with("[[static]]\nexternal = 5\ninside = \"100.64.0.50\"\n"),
                   "static[0].external", "expected a string, got an integer");
}

TEST(StaticConfig, RefusesMalformedEndpoints) {
    EXPECT_REFUSED(with(one_to_one("198.18.0", "100.64.0.50")), "static[0].external",
                   "\"198.18.0\" (expected \"A.B.C.D:PORT\" for a port forward");
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "100.64.0.050")), "static[0].inside",
                   "\"100.64.0.050\" (expected");
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:0", "100.64.0.5:80")), "static[0].external",
                   "\"198.18.0.10:0\": port must be 1 to 65535");
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:80", "100.64.0.5:65536")), "static[0].inside",
                   "\"100.64.0.5:65536\": port must be 1 to 65535");
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:8x", "100.64.0.5:80")), "static[0].external",
                   "\"198.18.0.10:8x\" (expected");
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:", "100.64.0.5:80")), "static[0].external",
                   "(expected");
}

TEST(StaticConfig, RefusesMixingPortsAndProtocolRules) {
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:8080", "100.64.0.5")), "static[0].inside",
                   "has no port but external has one; a port forward gives both ports, a 1:1 "
                   "mapping neither");
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "100.64.0.5:80")), "static[0].external",
                   "has no port but inside has one");
    EXPECT_REFUSED(with(one_to_one("198.18.0.10:8080", "100.64.0.5:80")), "static[0].protocol",
                   "missing required key (a port forward needs protocol = \"tcp\" or \"udp\")");
    EXPECT_REFUSED(with(forward("icmp", "198.18.0.10:8080", "100.64.0.5:80")), "static[0].protocol",
                   "unknown protocol \"icmp\" (expected \"tcp\" or \"udp\")");
    EXPECT_REFUSED(with(forward("TCP", "198.18.0.10:8080", "100.64.0.5:80")), "static[0].protocol",
                   "unknown protocol \"TCP\"");
    EXPECT_REFUSED(with("[[static]]\nprotocol = \"tcp\"\nexternal = \"198.18.0.20\"\ninside = "
                        "\"100.64.0.50\"\n"),
                   "static[0].protocol",
                   "a 1:1 mapping (no ports) covers every protocol; remove protocol");
}

// ---- refused: addresses ------------------------------------------------------------------

TEST(StaticConfig, RefusesMartianAddresses) {
    EXPECT_REFUSED(with(one_to_one("127.0.0.5", "100.64.0.50")), "static[0].external",
                   "127.0.0.5 is a loopback address (127.0.0.0/8)");
    EXPECT_REFUSED(with(one_to_one("0.0.0.0", "100.64.0.50")), "static[0].external",
                   "is the unspecified address");
    EXPECT_REFUSED(with(one_to_one("240.0.0.1", "100.64.0.50")), "static[0].external",
                   "240.0.0.1 is in 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/3, which no outside host "
                   "can reach");
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "224.0.0.5")), "static[0].inside",
                   "224.0.0.5 is in 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/3, which no inside host "
                   "can use");
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:53", "0.1.2.3:53")), "static[0].inside",
                   "0.1.2.3 is in 0.0.0.0/8");
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:53", "100.64.0.1:53")), "static[0].inside",
                   "100.64.0.1 is inside.gateway, ephemera's own address");
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "198.18.0.11")), "static[0].inside",
                   "198.18.0.11 is a pool address (pool.addresses), an outside address");
}

TEST(StaticConfig, RefusesAForwardOffThePool) {
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.99:8080", "100.64.0.5:80")), "static[0].external",
                   "198.18.0.99 is not a pool address (pool.addresses)");
}

TEST(StaticConfig, RefusesAForwardPortInTheDynamicRange) {
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:50000", "100.64.0.5:80")), "static[0].external",
                   "port 50000 lies in the dynamic range 49152-65535 (pool.port_range), handed "
                   "out to subscribers; use a port outside it or in pool.reserved");
    // Both ends of the range, and right next to a reserved range.
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:49152", "100.64.0.5:80")), "static[0].external",
                   "port 49152 lies in the dynamic range");
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:65535", "100.64.0.5:80")), "static[0].external",
                   "port 65535 lies in the dynamic range");
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:59999", "100.64.0.5:80")), "static[0].external",
                   "port 59999 lies in the dynamic range");
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:60100", "100.64.0.5:80")), "static[0].external",
                   "port 60100 lies in the dynamic range");
    // The ends of the reserved range itself are fine.
    EXPECT_EQ(accepted(with(forward("udp", "198.18.0.10:60000", "100.64.0.5:80") +
                            forward("udp", "198.18.0.10:60099", "100.64.0.5:81") +
                            forward("udp", "198.18.0.10:49151", "100.64.0.5:82")))
                  .statics.size(),
              3u);
}

TEST(StaticConfig, Refuses1to1OnAPoolAddressTheGatewayOrTheNextHop) {
    EXPECT_REFUSED(with(one_to_one("198.18.0.11", "100.64.0.50")), "static[0].external",
                   "198.18.0.11 is a pool address (pool.addresses), whose ports are handed out to "
                   "subscribers; a 1:1 address must be outside the pool");
    EXPECT_REFUSED(with(one_to_one("100.64.0.1", "100.64.0.50")), "static[0].external",
                   "100.64.0.1 is inside.gateway");
    EXPECT_REFUSED(with(one_to_one("198.18.0.2", "100.64.0.50")), "static[0].external",
                   "198.18.0.2 is outside.next_hop");
}

// ---- refused: uniqueness -----------------------------------------------------------------

TEST(StaticConfig, RefusesTheSameExternalEndpointTwice) {
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:8080", "100.64.0.5:80") +
                        forward("tcp", "198.18.0.10:8080", "100.64.0.6:80")),
                   "static[1].external",
                   "tcp 198.18.0.10:8080: same external endpoint as static[0]");
    EXPECT_REFUSED(
        with(one_to_one("198.18.0.20", "100.64.0.50") + one_to_one("198.18.0.20", "100.64.0.51")),
        "static[1].external", "198.18.0.20: same external address as the 1:1 mapping static[0]");
}

TEST(StaticConfig, RefusesAForwardOnAnAddressA1to1Owns) {
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "100.64.0.50") +
                        forward("tcp", "198.18.0.20:8080", "100.64.0.6:80")),
                   "static[1].external",
                   "198.18.0.20 is the external address of the 1:1 mapping static[0], which "
                   "owns every port of it");
}

// RFC 4787 REQ-1 (endpoint-independent mapping): an inside endpoint has one external endpoint,
// so a static entry can pin it only once.
TEST(StaticConfig, RefusesTheSameInsideEndpointTwice) {
    EXPECT_REFUSED(with(forward("tcp", "198.18.0.10:8080", "100.64.0.5:80") +
                        forward("tcp", "198.18.0.11:8080", "100.64.0.5:80")),
                   "static[1].inside",
                   "tcp 100.64.0.5:80: same inside endpoint as static[0]; an inside endpoint has "
                   "one external endpoint (RFC 4787 REQ-1)");
    EXPECT_REFUSED(
        with(one_to_one("198.18.0.20", "100.64.0.50") + one_to_one("198.18.0.21", "100.64.0.50")),
        "static[1].inside", "100.64.0.50 already has the 1:1 mapping static[0]");
}

TEST(StaticConfig, RefusesAForwardAndA1to1ForTheSameInsideAddress) {
    EXPECT_REFUSED(with(one_to_one("198.18.0.20", "100.64.0.50") +
                        forward("udp", "198.18.0.10:53", "100.64.0.50:53")),
                   "static[1].inside",
                   "100.64.0.50 has the 1:1 mapping static[0], which already covers every port");
    EXPECT_REFUSED(with(forward("udp", "198.18.0.10:53", "100.64.0.50:53") +
                        one_to_one("198.18.0.20", "100.64.0.50")),
                   "static[1].inside",
                   "100.64.0.50 has the port forward static[0]; a 1:1 mapping would cover its "
                   "ports too");
}

TEST(StaticConfig, RefusesMoreThanTheCaps) {
    std::string many;
    for (std::size_t i = 0; i <= kMaxStatics; ++i) {
        many += "[[static]]\n";
    }
    EXPECT_REFUSED(with(many), "static", "65537 static mappings; at most 65536 are allowed");

    std::string ones;
    for (std::size_t i = 0; i <= kMaxOneToOne; ++i) {
        const std::string n = std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
        ones += one_to_one("203.0." + n, "100.65." + n);
    }
    EXPECT_REFUSED(with(ones), "static[1024]",
                   "more than 1024 1:1 mappings; each 1:1 address costs the dataplane "
                   "per-address port state");
}

// ---- round trip and runtime changes ------------------------------------------------------

const std::string kThree = with(forward("tcp", "198.18.0.10:8080", "100.64.0.5:80") +
                                one_to_one("198.18.0.20", "100.64.0.50") +
                                forward("udp", "198.18.0.11:60001", "100.64.0.6:5060"));

TEST(StaticConfig, RoundTripKeepsThemInOrder) {
    const Config c = accepted(kThree);
    const std::string text = config_to_toml(c);
    EXPECT_THAT(text, HasSubstr("[[static]]"));
    const Config again = accepted(text);
    EXPECT_EQ(again.statics, c.statics);
    EXPECT_EQ(config_to_toml(again), text);
    // None written, none read.
    EXPECT_THAT(config_to_toml(accepted(with(""))), ::testing::Not(HasSubstr("[[static]]")));
}

Config edited(const Config& c, const StaticMapping& m, bool add) {
    auto r = edit_static(c, m, add);
    if (const auto* e = std::get_if<ConfigError>(&r)) {
        ADD_FAILURE() << e->to_string();
        return c;
    }
    return std::get<Config>(std::move(r));
}

ConfigError edit_refused(const Config& c, const StaticMapping& m, bool add) {
    auto r = edit_static(c, m, add);
    EXPECT_TRUE(std::holds_alternative<ConfigError>(r)) << static_mapping_text(m);
    return std::holds_alternative<ConfigError>(r) ? std::get<ConfigError>(r) : ConfigError{};
}

TEST(StaticConfig, EditAddsAndRemoves) {
    const Config c = accepted(kThree);
    const Config added =
        edited(c, fwd(Protocol::tcp, {198, 18, 0, 11}, 443, {100, 64, 0, 7}, 443), true);
    ASSERT_EQ(added.statics.size(), 4u);
    EXPECT_EQ(added.statics.back().external_port, 443);
    EXPECT_EQ(added.source, c.source);
    EXPECT_EQ(edited(added, one({198, 18, 0, 21}, {100, 64, 0, 51}), true).statics.size(), 5u);

    // Removal names the external endpoint only; the inside part is not looked at.
    const Config removed =
        edited(c, fwd(Protocol::tcp, {198, 18, 0, 10}, 8080, {0, 0, 0, 0}, 0), false);
    ASSERT_EQ(removed.statics.size(), 2u);
    EXPECT_EQ(removed.statics[0], c.statics[1]);
    EXPECT_EQ(removed.statics[1], c.statics[2]);
    const Config no_1to1 = edited(c, one({198, 18, 0, 20}, {}), false);
    EXPECT_EQ(no_1to1.statics.size(), 2u);
    EXPECT_TRUE(edited(edited(no_1to1, c.statics[0], false), c.statics[2], false).statics.empty());
}

TEST(StaticConfig, EditRefusesWhatTheFileWouldAndUnknownRemovals) {
    const Config c = accepted(kThree);
    ConfigError e =
        edit_refused(c, fwd(Protocol::tcp, {198, 18, 0, 10}, 50000, {100, 64, 0, 9}, 80), true);
    EXPECT_EQ(e.file, "static add");
    EXPECT_EQ(e.key, "static[3].external");
    EXPECT_THAT(e.reason, HasSubstr("port 50000 lies in the dynamic range 49152-65535"));
    e = edit_refused(c, fwd(Protocol::tcp, {198, 18, 0, 10}, 8080, {100, 64, 0, 9}, 80), true);
    EXPECT_THAT(e.reason, HasSubstr("same external endpoint as static[0]"));
    e = edit_refused(c, one({198, 18, 0, 10}, {100, 64, 0, 9}), true);
    EXPECT_THAT(e.reason, HasSubstr("has the port forward static[0]"));

    e = edit_refused(c, fwd(Protocol::udp, {198, 18, 0, 10}, 8080, {}, 0), false);
    EXPECT_EQ(e.file, "static remove");
    EXPECT_EQ(e.key, "static");
    EXPECT_EQ(e.reason, "no static mapping for udp 198.18.0.10:8080");
    e = edit_refused(c, one({198, 18, 0, 10}, {}), false);
    EXPECT_EQ(e.reason, "no static mapping for 198.18.0.10");
}

TEST(StaticConfig, PoolAndRangeEditsThatStrandAForwardAreRefused) {
    const Config c = accepted(kThree);
    EXPECT_TRUE(std::holds_alternative<ConfigError>(edit_pool(c, "198.18.0.10", false)));
    auto r = edit_config(c, "pool.port_range", "\"1024-65535\"");
    ASSERT_TRUE(std::holds_alternative<ConfigError>(r));
    EXPECT_EQ(std::get<ConfigError>(r).key, "static[0].external");
}

TEST(StaticConfig, MayChangeWhileRunningInEveryMode) {
    const Config c = accepted(kThree);
    const Config added = edited(c, one({198, 18, 0, 21}, {100, 64, 0, 51}), true);
    EXPECT_FALSE(check_runtime_change(c, added).has_value());
    EXPECT_FALSE(check_runtime_change(added, c).has_value());

    const std::string det =
        "[pool]\naddresses = [\"198.18.0.10\"]\nport_range = \"2048-65535\"\nmode = "
        "\"deterministic\"\n[pool.deterministic]\nsubscribers = \"100.64.0.0/27\"\n" +
        with("").substr(with("").find("[inside]"));
    const Config d = accepted(det);
    const Config d2 =
        edited(d, fwd(Protocol::udp, {198, 18, 0, 10}, 1500, {100, 64, 0, 5}, 1500), true);
    EXPECT_FALSE(check_runtime_change(d, d2).has_value());

    const Config b =
        accepted(with(forward("tcp", "198.18.0.10:8080", "100.64.0.5:80"), "mode = \"blocks\"\n"));
    EXPECT_FALSE(check_runtime_change(b, edited(b, b.statics[0], false)).has_value());
}

// ---- the command-line spelling ------------------------------------------------------------

StaticMapping spec(std::string_view text, bool with_inside = true) {
    auto r = parse_static_spec(text, with_inside);
    if (const auto* e = std::get_if<ConfigError>(&r)) {
        ADD_FAILURE() << text << ": " << e->to_string();
        return {};
    }
    return std::get<StaticMapping>(r);
}

std::string spec_refused(std::string_view text, bool with_inside = true) {
    auto r = parse_static_spec(text, with_inside);
    EXPECT_TRUE(std::holds_alternative<ConfigError>(r)) << text;
    if (const auto* e = std::get_if<ConfigError>(&r)) {
        EXPECT_EQ(e->key, "static");
        return e->reason;
    }
    return {};
}

TEST(StaticSpec, ParsesForwardsAnd1to1) {
    EXPECT_EQ(spec("tcp 198.18.0.10:8080 100.64.0.5:80"),
              fwd(Protocol::tcp, {198, 18, 0, 10}, 8080, {100, 64, 0, 5}, 80));
    EXPECT_EQ(spec("udp  198.18.0.10:53 100.64.0.5:53 "),
              fwd(Protocol::udp, {198, 18, 0, 10}, 53, {100, 64, 0, 5}, 53));
    EXPECT_EQ(spec("198.18.0.20 100.64.0.50"), one({198, 18, 0, 20}, {100, 64, 0, 50}));
    EXPECT_EQ(spec("tcp 198.18.0.10:8080", false),
              fwd(Protocol::tcp, {198, 18, 0, 10}, 8080, {}, 0));
    EXPECT_EQ(spec("198.18.0.20", false), one({198, 18, 0, 20}, {}));
}

TEST(StaticSpec, WritesWhatItReads) {
    for (const char* text : {"tcp 198.18.0.10:8080 100.64.0.5:80", "udp 198.18.0.10:53 10.0.0.1:53",
                             "198.18.0.20 100.64.0.50"}) {
        EXPECT_EQ(static_mapping_text(spec(text)), text);
    }
    EXPECT_EQ(static_external_text(spec("udp 198.18.0.10:53 10.0.0.1:53")), "udp 198.18.0.10:53");
    EXPECT_EQ(static_external_text(spec("198.18.0.20 100.64.0.50")), "198.18.0.20");
}

TEST(StaticSpec, RefusesMalformedSpecs) {
    EXPECT_THAT(spec_refused(""), HasSubstr("expected \"tcp|udp EXTERNAL:PORT INSIDE:PORT\""));
    EXPECT_THAT(spec_refused("icmp 198.18.0.10:1 100.64.0.5:1"),
                HasSubstr("unknown protocol \"icmp\""));
    EXPECT_THAT(spec_refused("tcp 198.18.0.10:8080"), HasSubstr("expected"));
    EXPECT_THAT(spec_refused("tcp 198.18.0.10:8080 100.64.0.5:80 extra"), HasSubstr("expected"));
    EXPECT_THAT(spec_refused("tcp 198.18.0.10 100.64.0.5"),
                HasSubstr("198.18.0.10: a port forward needs a port"));
    EXPECT_THAT(spec_refused("198.18.0.10:80 100.64.0.5:80"),
                HasSubstr("a port forward starts with its protocol, tcp or udp"));
    EXPECT_THAT(spec_refused("tcp 198.18.0.10:8080 100.64.0.5"),
                HasSubstr("100.64.0.5: a port forward needs a port"));
    EXPECT_THAT(spec_refused("tcp 198.18.0.10:0 100.64.0.5:80"),
                HasSubstr("198.18.0.10:0: port must be 1 to 65535"));
    EXPECT_THAT(spec_refused("198.18.0.300 100.64.0.5"), HasSubstr("expected"));
    EXPECT_THAT(spec_refused("198.18.0.20 100.64.0.50", false), HasSubstr("expected"));
    EXPECT_THAT(spec_refused("tcp", false), HasSubstr("expected \"tcp|udp EXTERNAL:PORT\""));
}

} // namespace
} // namespace ephemera
