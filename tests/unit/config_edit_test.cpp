// Runtime configuration changes: the running config round-trips through TOML, and one key is
// changed with every check a config file gets.
#include "ephemera/config_edit.hpp"

#include "config_expect.hpp"

#include <gtest/gtest.h>

namespace ephemera {
namespace {

const char* const kBase = R"(
[pool]
addresses = ["198.18.0.100", "198.18.0.101"]
port_range = "linux"
reserved = ["40000-40010", "50000"]
[inside]
port = "net_af_packet0"
gateway = "100.64.0.1"
[outside]
port = "net_af_packet1"
next_hop = "198.18.0.2"
next_hop_mac = "02:00:00:00:00:fe"
mtu = 1400
checksum_offload = "ipv4"
[timeouts]
udp = 600
inbound_refresh = true
[filtering]
mode = "address"
[limits]
max_sessions = 100000
subscriber_ports_tcp = 77
[icmp]
unreachable_rate = 5
[fragments]
timeout = 7
[[static]]
protocol = "udp"
external = "198.18.0.101:5060"
inside = "100.64.0.5:5060"
[[static]]
external = "198.18.0.20"
inside = "100.64.0.50"
)";

Config base() {
    auto parsed = parse_config(kBase, "base.toml");
    EXPECT_TRUE(std::holds_alternative<Config>(parsed));
    return std::get<Config>(parsed);
}

Config changed(const Config& c, std::string_view key, std::string_view value) {
    return config_test::edit_applied(c, key, value);
}
ConfigError refused(const Config& c, std::string_view key, std::string_view value) {
    return config_test::edit_refused(c, key, value);
}

TEST(ConfigEdit, RoundTripKeepsEveryField) {
    const Config c = base();
    auto again = parse_config(config_to_toml(c), "again");
    ASSERT_TRUE(std::holds_alternative<Config>(again)) << std::get<ConfigError>(again).to_string();
    const Config& r = std::get<Config>(again);
    EXPECT_EQ(r.pool, c.pool);
    EXPECT_EQ(r.port_range, c.port_range);
    EXPECT_EQ(r.port_range_name, "linux");
    EXPECT_EQ(r.reserved, c.reserved);
    EXPECT_EQ(r.inside.port, c.inside.port);
    EXPECT_EQ(r.inside.gateway, c.inside.gateway);
    EXPECT_EQ(r.outside.next_hop, c.outside.next_hop);
    EXPECT_EQ(r.outside.next_hop_mac, c.outside.next_hop_mac);
    EXPECT_TRUE(r.timeouts == c.timeouts);
    EXPECT_EQ(r.filtering, c.filtering);
    EXPECT_EQ(r.limits.max_sessions, c.limits.max_sessions);
    EXPECT_EQ(r.limits.subscribers(), c.limits.subscribers());
    EXPECT_EQ(r.limits.subscriber_ports_tcp, 77u);
    EXPECT_EQ(r.limits.subscriber_ports_udp, c.limits.subscriber_ports_udp);
    EXPECT_EQ(r.icmp.unreachable_rate, 5u);
    EXPECT_EQ(r.inside.mtu, c.inside.mtu);
    EXPECT_EQ(r.outside.mtu, 1400);
    EXPECT_EQ(r.inside.checksum_offload, ChecksumOffloadSetting::automatic);
    EXPECT_EQ(r.outside.checksum_offload, ChecksumOffloadSetting::ipv4);
    EXPECT_EQ(r.fragments.timeout, 7u);
    EXPECT_EQ(r.fragments.max_datagrams, c.fragments.max_datagrams);
    EXPECT_EQ(r.fragments.max_per_datagram, c.fragments.max_per_datagram);
    EXPECT_EQ(r.statics.size(), 2u);
    EXPECT_EQ(r.statics, c.statics);
}

TEST(ConfigEdit, ChangesOneKey) {
    const Config c = base();
    EXPECT_EQ(changed(c, "timeouts.udp", "900").timeouts.udp, 900u);
    EXPECT_EQ(changed(c, "filtering.mode", "address-and-port").filtering,
              FilteringMode::address_port_dependent);
    EXPECT_EQ(changed(c, "filtering.mode", "\"endpoint-independent\"").filtering,
              FilteringMode::endpoint_independent);
    const Config iana = changed(changed(c, "pool.reserved", "[]"), "pool.port_range", "iana");
    EXPECT_EQ(iana.port_range, (PortRange{49152, 65535}));
    EXPECT_EQ(iana.port_range_name, "iana");
    const Config ranged =
        changed(changed(c, "pool.reserved", "[]"), "pool.port_range", "20000-30000");
    EXPECT_EQ(ranged.port_range, (PortRange{20000, 30000}));
    EXPECT_FALSE(changed(c, "timeouts.inbound_refresh", "false").timeouts.inbound_refresh);
    const Config ports = changed(c, "limits.subscriber_ports", "123");
    EXPECT_EQ(ports.limits.subscriber_ports_udp, 123u);
    EXPECT_EQ(ports.limits.subscriber_ports_tcp, 123u); // the shorthand replaces overrides
    EXPECT_EQ(changed(c, "icmp.unreachable", "false").icmp.unreachable, false);
    EXPECT_EQ(changed(c, "timeouts.udp", "900").source, c.source);
}

// A runtime change is refused for the same reasons as a file, naming the key.
TEST(ConfigEdit, RefusesWhatAFileWouldBeRefusedFor) {
    const Config c = base();
    const ConfigError low = refused(c, "timeouts.udp", "30");
    EXPECT_EQ(low.key, "timeouts.udp");
    EXPECT_NE(low.reason.find("RFC 4787"), std::string::npos) << low.reason;
    EXPECT_EQ(refused(c, "timeouts.udpp", "300").key, "timeouts.udpp");
    EXPECT_EQ(refused(c, "nosuch.key", "1").key, "nosuch.key");
    EXPECT_EQ(refused(c, "timeouts", "1").key, "timeouts");
    EXPECT_EQ(refused(c, "filtering.mode", "sometimes").key, "filtering.mode");
    EXPECT_EQ(refused(c, "pool.port_range", "60000-50000").key, "pool.port_range");
    // Reserved ports outside the new range.
    EXPECT_EQ(refused(c, "pool.port_range", "50001-60000").key, "pool.reserved[0]");
    EXPECT_EQ(refused(c, "limits.subscriber_sessions", "200000").key, "limits.subscriber_sessions");
    EXPECT_EQ(refused(c, "timeouts.udp", "\"soon\"").key, "timeouts.udp");
}

TEST(ConfigEdit, ValuesToml330MisreadsAreBareWordsAndInvalidUtf8IsRefused) {
    const Config c = base();
    // Not TOML (non-ASCII outside quotes, or right after a multi-line string's line-ending
    // backslash): taken as a string, as other bare words are, and refused for what it says.
    EXPECT_NE(refused(c, "filtering.mode", "addr\xc3\xa9ss").reason.find("unknown filtering mode"),
              std::string::npos);
    EXPECT_NE(refused(c, "timeouts.udp", "600\xc2\xa0").reason.find("expected an integer"),
              std::string::npos);
    EXPECT_NE(
        refused(c, "filtering.mode", "\"\"\"\\\n\xc2\xa7\"\"\"").reason.find("unknown filtering"),
        std::string::npos);
    // Non-ASCII in a quoted value is TOML.
    EXPECT_NE(refused(c, "filtering.mode", "\"\xc2\xa7\"").reason.find("\"\xc2\xa7\""),
              std::string::npos);
    const ConfigError bad = refused(c, "filtering.mode", "addr\xe9ss");
    EXPECT_EQ(bad.key, "filtering.mode");
    EXPECT_EQ(bad.reason, "the value is not valid UTF-8");
}

// Found by tests/fuzz (fuzz-config): toml++ 3.3.0 reaches undefined behaviour writing out an
// array that holds NaN, an infinity, a float under 0.1 or -2^63 (its one-line test). A value
// holding a float or -2^63 inside an array or table is refused before it is written.
TEST(ConfigEdit, FloatsInArraysAreRefusedBeforeTheyAreWrittenOut) {
    const Config c = base();
    for (const char* value : {"[nan]", "[1e-5]", "[\"198.18.0.9\", inf]", "[[0.01]]",
                              "[-9223372036854775808]", "{a = [0.05]}", "[1.5]"}) {
        const ConfigError e = refused(c, "pool.addresses", value);
        EXPECT_EQ(e.key, "pool.addresses") << value;
        EXPECT_NE(e.reason.find("floating-point number or -2^63"), std::string::npos)
            << value << ": " << e.reason;
    }
    // Outside an array a float is written out safely and refused for what it is, as a file's.
    EXPECT_NE(refused(c, "timeouts.udp", "1e-300").reason.find("expected an integer"),
              std::string::npos);
    EXPECT_NE(refused(c, "timeouts.udp", "nan").reason.find("expected an integer"),
              std::string::npos);
}

const char* const kLogging = R"(
[logging]
events = ["mapping", "static", "threshold"]
ring_size = 4096
address_ports_threshold = 95
sessions_threshold = 70
subscriber_ports_threshold = 0
[[logging.syslog]]
collector = "192.0.2.10"
transport = "tcp"
facility = "local3"
[[logging.ipfix]]
collector = "192.0.2.11:9995"
observation_domain = 7
template_refresh = 30
[logging.archive]
path = "/var/log/ephemera/archive"
rotate_size = 16
retention = 30
compress = false
)";

Config with_logging() {
    auto parsed = parse_config(std::string(kBase) + kLogging, "logging.toml");
    EXPECT_TRUE(std::holds_alternative<Config>(parsed))
        << std::get<ConfigError>(parsed).to_string();
    return std::get<Config>(parsed);
}

// [logging] is part of the running config: every other change keeps it as it was.
TEST(ConfigEdit, RoundTripKeepsLogging) {
    const Config c = with_logging();
    auto again = parse_config(config_to_toml(c), "again");
    ASSERT_TRUE(std::holds_alternative<Config>(again)) << std::get<ConfigError>(again).to_string();
    EXPECT_EQ(std::get<Config>(again).logging, c.logging);
    EXPECT_EQ(changed(c, "timeouts.udp", "900").logging, c.logging);
    const Config plain = base(); // no [logging]: the mode's default events, no sink
    EXPECT_EQ(changed(plain, "timeouts.udp", "900").logging, plain.logging);
}

TEST(ConfigEdit, LoggingEventsAndDestinationChangeAtRunTime) {
    const Config c = with_logging();
    const Config on = changed(c, "logging.destination", "true");
    EXPECT_TRUE(on.logging.destination);
    EXPECT_FALSE(check_runtime_change(c, on).has_value());
    EXPECT_FALSE(changed(on, "logging.destination", "false").logging.destination);

    const Config groups = changed(c, "logging.events", "block,exhaustion");
    EXPECT_EQ(logging_event_groups(groups.logging.events),
              (std::vector<std::string>{"block", "exhaustion"}));
    EXPECT_FALSE(check_runtime_change(c, groups).has_value());
    EXPECT_EQ(groups.logging.syslog, c.logging.syslog); // the sinks stay
    EXPECT_EQ(groups.logging.archive, c.logging.archive);
    EXPECT_EQ(logging_event_groups(changed(c, "logging.events", "deterministic").logging.events),
              (std::vector<std::string>{"deterministic"}));
    EXPECT_EQ(logging_event_groups(
                  changed(c, "logging.events", "[\"mapping\", \"block\"]").logging.events),
              (std::vector<std::string>{"mapping", "block"}));
    EXPECT_EQ(changed(c, "logging.events", "none").logging.events, 0u);

    // Checked as the file is.
    const ConfigError group = refused(c, "logging.events", "mapping,flows");
    EXPECT_EQ(group.key, "logging.events[1]");
    EXPECT_NE(group.reason.find("unknown event group \"flows\""), std::string::npos)
        << group.reason;
    EXPECT_EQ(refused(c, "logging.events", "mapping,,block").key, "logging.events");
    EXPECT_EQ(refused(c, "logging.destination", "sometimes").key, "logging.destination");
    EXPECT_EQ(refused(c, "logging.nosuch", "1").key, "logging.nosuch");
}

TEST(ConfigEdit, LoggingRingSizeNeedsARestart) {
    const Config c = with_logging();
    const Config bigger = changed(c, "logging.ring_size", "8192");
    const auto refusal = check_runtime_change(c, bigger);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->key, "logging.ring_size");
    EXPECT_NE(refusal->reason.find("sized at start"), std::string::npos) << refusal->reason;
    EXPECT_EQ(refused(c, "logging.ring_size", "3000").key, "logging.ring_size"); // as a file
}

TEST(ConfigEdit, CollectorsAndArchiveChangeInTheFile) {
    const Config c = with_logging();
    for (const char* key : {"logging.syslog", "logging.ipfix", "logging.archive",
                            "logging.archive.path", "logging.archive.retention"}) {
        const ConfigError e = refused(c, key, "1");
        EXPECT_EQ(e.key, key);
        EXPECT_NE(e.reason.find("ephemeractl reload"), std::string::npos) << e.reason;
    }
}

TEST(ConfigEdit, PoolAddAndRemove) {
    const Config c = base();
    auto added = edit_pool(c, "198.18.0.102", true);
    ASSERT_TRUE(std::holds_alternative<Config>(added));
    EXPECT_EQ(std::get<Config>(added).pool.size(), 3u);
    EXPECT_EQ(std::get<Config>(added).pool.back(), (Ipv4Addr{198, 18, 0, 102}));
    auto removed = edit_pool(c, "198.18.0.100", false);
    ASSERT_TRUE(std::holds_alternative<Config>(removed));
    EXPECT_EQ(std::get<Config>(removed).pool, (std::vector<Ipv4Addr>{{198, 18, 0, 101}}));

    EXPECT_TRUE(std::holds_alternative<ConfigError>(edit_pool(c, "198.18.0.100", true)));
    EXPECT_TRUE(std::holds_alternative<ConfigError>(edit_pool(c, "198.18.0.99", false)));
    EXPECT_TRUE(std::holds_alternative<ConfigError>(edit_pool(c, "198.18.0", true)));
    EXPECT_TRUE(std::holds_alternative<ConfigError>(edit_pool(c, "127.0.0.1", true)));
    auto last = edit_pool(std::get<Config>(removed), "198.18.0.101", false);
    ASSERT_TRUE(std::holds_alternative<ConfigError>(last)); // an empty pool is refused
    EXPECT_EQ(std::get<ConfigError>(last).key, "pool.addresses");
}

TEST(ConfigEdit, WhatCannotChangeWhileRunning) {
    const Config c = base();
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"inside.port", "net_x"},
             {"inside.gateway", "100.64.0.2"},
             {"outside.port", "net_y"},
             {"outside.next_hop", "198.18.0.3"},
             {"outside.next_hop_mac", "02:00:00:00:00:fd"},
             {"limits.max_sessions", "200000"},
             {"limits.max_subscribers", "50000"},
             {"fragments.timeout", "9"},
             {"fragments.max_datagrams", "512"},
             {"fragments.max_per_datagram", "4"},
             {"inside.checksum_offload", "off"},
             {"outside.checksum_offload", "auto"}}) {
        const Config next = changed(c, key, value);
        const auto refusal = check_runtime_change(c, next);
        ASSERT_TRUE(refusal.has_value()) << key;
        EXPECT_EQ(refusal->key, key);
    }
    EXPECT_FALSE(check_runtime_change(c, changed(c, "timeouts.udp", "900")).has_value());
    EXPECT_FALSE(check_runtime_change(c, changed(c, "outside.mtu", "1400")).has_value());
    EXPECT_FALSE(check_runtime_change(c, changed(c, "inside.mtu", "9000")).has_value());
    EXPECT_FALSE(check_runtime_change(c, changed(c, "pool.port_range", "32768-50000")).has_value());
}

} // namespace
} // namespace ephemera
