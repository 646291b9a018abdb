// [logging]: what the parser accepts, each mode's default events, and every refusal with file,
// key and reason (docs/logging.md). A collector that does not answer is never a refusal: that
// is for the logging thread to count.
#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"
#include "ephemera/nat_event.hpp"

#include "config_expect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <variant>

namespace ephemera {
namespace {

constexpr const char* kSource = "logging.toml";

std::string with(const std::string& rest, const std::string& pool_extra = "") {
    return "[pool]\naddresses = [\"198.18.0.10\"]\n" + pool_extra + R"(
[inside]
port = "net_af_packet0"
gateway = "100.64.0.1"
[outside]
port = "net_af_packet1"
next_hop = "198.18.0.2"
)" + rest;
}

constexpr std::uint32_t bit(NatEventKind k) {
    return 1u << static_cast<unsigned>(k);
}

bool logs(const Config& c, NatEventKind k) {
    return (c.logging.events & bit(k)) != 0;
}

TEST(LoggingConfig, OffWithoutASinkAndEachModeLogsWhatIdentifiesASubscriber) {
    const Config dynamic = config_test::accepted_from(with(""), kSource);
    EXPECT_FALSE(dynamic.logging.any_sink());
    EXPECT_TRUE(logs(dynamic, NatEventKind::mapping_created));
    EXPECT_FALSE(logs(dynamic, NatEventKind::block_allocated));
    EXPECT_TRUE(logs(dynamic, NatEventKind::quota_exceeded));
    EXPECT_TRUE(logs(dynamic, NatEventKind::threshold_reached));
    EXPECT_FALSE(dynamic.logging.destination);
    EXPECT_EQ(dynamic.logging.ring_size, 65536u);

    // RFC 6888 section 4 / RFC 7422: blocks and the formula exist so that mappings need no log.
    const Config blocks = config_test::accepted_from(with("", "mode = \"blocks\"\n"), kSource);
    EXPECT_FALSE(logs(blocks, NatEventKind::mapping_created));
    EXPECT_TRUE(logs(blocks, NatEventKind::block_allocated));
    EXPECT_TRUE(logs(blocks, NatEventKind::block_interim));
    const Config det = config_test::accepted_from(
        with("", "mode = \"deterministic\"\nport_range = \"1024-65535\"\n"
                 "[pool.deterministic]\nsubscribers = \"100.64.0.0/27\"\n"),
        kSource);
    EXPECT_FALSE(logs(det, NatEventKind::mapping_created));
    EXPECT_TRUE(logs(det, NatEventKind::deterministic_formula));
}

TEST(LoggingConfig, CollectorsTransportsAndTheArchive) {
    const Config c = config_test::accepted_from(with(R"(
[logging]
events = ["mapping", "static"]
destination = true
ring_size = 16384
sessions_threshold = 0
[[logging.syslog]]
collector = "127.0.0.1"
[[logging.syslog]]
collector = "198.18.250.2:6514"
transport = "tcp"
facility = "local3"
[[logging.ipfix]]
collector = "198.18.250.3"
transport = "tcp"
observation_domain = 7
template_refresh = 30
[logging.archive]
path = "/var/log/ephemera"
rotate_size = 16
retention = 30
)"),
                                                kSource);
    const LoggingConfig& log = c.logging;
    EXPECT_TRUE(log.any_sink());
    EXPECT_EQ(log.events, bit(NatEventKind::mapping_created) | bit(NatEventKind::mapping_deleted) |
                              bit(NatEventKind::static_added) | bit(NatEventKind::static_removed));
    EXPECT_TRUE(log.destination);
    EXPECT_EQ(log.ring_size, 16384u);
    EXPECT_EQ(log.sessions_threshold, 0u);
    EXPECT_EQ(log.address_ports_threshold, 90u);
    ASSERT_EQ(log.syslog.size(), 2u);
    EXPECT_EQ(log.syslog[0].address, Ipv4Addr(127, 0, 0, 1)) << "a collector on this host";
    EXPECT_EQ(log.syslog[0].port, 514) << "UDP syslog's port when none is given";
    EXPECT_FALSE(log.syslog[0].tcp);
    EXPECT_EQ(log.syslog[0].facility, 16);
    EXPECT_EQ(log.syslog[1].port, 6514);
    EXPECT_TRUE(log.syslog[1].tcp);
    EXPECT_EQ(log.syslog[1].facility, 19);
    ASSERT_EQ(log.ipfix.size(), 1u);
    EXPECT_EQ(log.ipfix[0].port, 4739);
    EXPECT_TRUE(log.ipfix[0].tcp);
    EXPECT_EQ(log.ipfix[0].observation_domain, 7u);
    EXPECT_EQ(log.ipfix[0].template_refresh, 30u);
    EXPECT_EQ(log.archive.path, "/var/log/ephemera");
    EXPECT_EQ(log.archive.rotate_size, 16u);
    EXPECT_EQ(log.archive.rotate_age, 3600u);
    EXPECT_EQ(log.archive.retention, 30u);
    EXPECT_TRUE(log.archive.compress);
    EXPECT_THAT(describe_config(c), ::testing::HasSubstr("syslog tcp 198.18.250.2:6514"));
}

TEST(LoggingConfig, RefusalsNameTheKey) {
    EXPECT_REFUSED(with("[logging]\nlevel = 3\n"), "logging.level", "unknown key");
    EXPECT_REFUSED(with("[logging]\nevents = [\"mappings\"]\n"), "logging.events[0]",
                   "unknown event group \"mappings\"; use mapping, block");
    EXPECT_REFUSED(with("[logging]\nring_size = 5000\n"), "logging.ring_size",
                   "must be a power of two, got 5000");
    EXPECT_REFUSED(with("[logging]\nring_size = 512\n"), "logging.ring_size",
                   "must be between 1024 and");
    EXPECT_REFUSED(with("[logging]\naddress_ports_threshold = 101\n"),
                   "logging.address_ports_threshold", "must be between 0 and 100");
    EXPECT_REFUSED(with("[[logging.syslog]]\ncollector = \"collector.example:514\"\n"),
                   "logging.syslog[0].collector", "is not ADDRESS or ADDRESS:PORT");
    EXPECT_REFUSED(with("[[logging.syslog]]\ncollector = \"198.18.250.2:0\"\n"),
                   "logging.syslog[0].collector", "the port must be 1..65535");
    EXPECT_REFUSED(with("[[logging.syslog]]\ntransport = \"tcp\"\n"), "logging.syslog[0].collector",
                   "missing required key");
    EXPECT_REFUSED(with("[[logging.ipfix]]\ncollector = \"198.18.250.2\"\ntransport = \"sctp\"\n"),
                   "logging.ipfix[0].transport", "unknown transport \"sctp\"; use udp or tcp");
    EXPECT_REFUSED(with("[[logging.syslog]]\ncollector = \"198.18.250.2\"\nfacility = \"kern\"\n"),
                   "logging.syslog[0].facility", "unknown syslog facility \"kern\"");
    EXPECT_REFUSED(with("[[logging.ipfix]]\ncollector = \"224.0.0.1\"\n"),
                   "logging.ipfix[0].collector", "\"224.0.0.1\": not a unicast address");
    EXPECT_REFUSED(with("[[logging.syslog]]\ncollector = \"0.0.0.0:514\"\n"),
                   "logging.syslog[0].collector", "not a unicast address");
    EXPECT_REFUSED(with("[logging.archive]\ncompress = true\n"), "logging.archive.path",
                   "missing required key");
    EXPECT_REFUSED(with("[logging.archive]\npath = \"/tmp/a\"\nhmac_key_file = "
                        "\"/nonexistent/ephemera.key\"\n"),
                   "logging.archive.hmac_key_file", "cannot be read or is empty");
    std::string many;
    for (int i = 0; i < 9; ++i) {
        many += "[[logging.syslog]]\ncollector = \"198.18.250.2\"\n";
    }
    EXPECT_REFUSED(with(many), "logging.syslog", "9 collectors; at most 8");
}

// [alarms]: the pool-wide port use watermark (natThresholdEvent 1 and 2) and the forecast.
TEST(AlarmsConfig, DefaultsAndAHighLineAloneBringsTheClearLineWithIt) {
    const Config plain = config_test::accepted_from(with(""), kSource);
    EXPECT_EQ(plain.alarms.pool_ports_high, 90u);
    EXPECT_EQ(plain.alarms.pool_ports_clear, 80u);
    EXPECT_EQ(plain.alarms.forecast_window, 900u);
    const Config low =
        config_test::accepted_from(with("[alarms]\npool_ports_high = 50\n"), kSource);
    EXPECT_EQ(low.alarms.pool_ports_high, 50u);
    EXPECT_EQ(low.alarms.pool_ports_clear, 40u);
    const Config off = config_test::accepted_from(with("[alarms]\npool_ports_high = 0\n"), kSource);
    EXPECT_EQ(off.alarms.pool_ports_high, 0u);
    const Config set = config_test::accepted_from(
        with("[alarms]\npool_ports_high = 95\npool_ports_clear = 70\nforecast_window = 60\n"),
        kSource);
    EXPECT_EQ(set.alarms.pool_ports_clear, 70u);
    EXPECT_EQ(set.alarms.forecast_window, 60u);
    // Written out and read back (the path every runtime change takes) it is the same.
    const auto round = edit_config(set, "alarms.pool_ports_high", "96");
    ASSERT_TRUE(std::holds_alternative<Config>(round));
    EXPECT_EQ(std::get<Config>(round).alarms.pool_ports_high, 96u);
    EXPECT_EQ(std::get<Config>(round).alarms.pool_ports_clear, 70u);
    EXPECT_EQ(std::get<Config>(round).alarms.forecast_window, 60u);
}

TEST(AlarmsConfig, RefusalsNameTheKey) {
    EXPECT_REFUSED(with("[alarms]\npool_ports_high = 80\npool_ports_clear = 80\n"),
                   "alarms.pool_ports_clear",
                   "must be below alarms.pool_ports_high (80 %), got 80 %");
    EXPECT_REFUSED(with("[alarms]\npool_ports_high = 101\n"), "alarms.pool_ports_high",
                   "must be between 0 and 100");
    EXPECT_REFUSED(with("[alarms]\nforecast_window = 5\n"), "alarms.forecast_window",
                   "must be between 10 and");
    EXPECT_REFUSED(with("[alarms]\nport_high = 5\n"), "alarms.port_high", "unknown key");
    const Config running = config_test::accepted_from(with(""), kSource);
    const auto refused = edit_config(running, "alarms.pool_ports_high", "70");
    ASSERT_TRUE(std::holds_alternative<ConfigError>(refused));
    EXPECT_EQ(std::get<ConfigError>(refused).key, "alarms.pool_ports_clear");
}

} // namespace
} // namespace ephemera
