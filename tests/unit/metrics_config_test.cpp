// [metrics]: the listener's address as the parser takes it or refuses it (file, key, reason),
// its round trip through a runtime edit, and that it needs a restart to change.
#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"

#include "config_expect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace ephemera {
namespace {

constexpr const char* kSource = "metrics.toml";

std::string with(const std::string& rest) {
    return R"([pool]
addresses = ["198.18.0.10"]
[inside]
port = "net_af_packet0"
gateway = "100.64.0.1"
[outside]
port = "net_af_packet1"
next_hop = "198.18.0.2"
)" + rest;
}

TEST(MetricsConfig, OffWhenAbsent) {
    const Config c = config_test::accepted_from(with(""), kSource);
    EXPECT_FALSE(c.metrics.enabled());
    EXPECT_THAT(describe_config(c), ::testing::HasSubstr("metrics:     off\n"));
}

TEST(MetricsConfig, ListenAddressAndPort) {
    const Config c =
        config_test::accepted_from(with("[metrics]\nlisten = \"127.0.0.1:9469\"\n"), kSource);
    ASSERT_TRUE(c.metrics.enabled());
    EXPECT_EQ(c.metrics.address.to_string(), "127.0.0.1");
    EXPECT_EQ(c.metrics.port, 9469);
    EXPECT_THAT(describe_config(c),
                ::testing::HasSubstr("metrics:     http://127.0.0.1:9469/metrics\n"));
    const Config any =
        config_test::accepted_from(with("[metrics]\nlisten = \"0.0.0.0:9100\"\n"), kSource);
    EXPECT_EQ(any.metrics.address.to_string(), "0.0.0.0");
}

TEST(MetricsConfig, MalformedListenIsRefused) {
    EXPECT_REFUSED(with("[metrics]\n"), "metrics.listen", "missing required key");
    EXPECT_REFUSED(with("[metrics]\nlisten = 9469\n"), "metrics.listen", "string");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"127.0.0.1\"\n"), "metrics.listen",
                   "is not ADDRESS:PORT");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"localhost:9469\"\n"), "metrics.listen",
                   "not a dotted IPv4 address");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"127.0.0.1:0\"\n"), "metrics.listen",
                   "the port must be 1..65535");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"127.0.0.1:65536\"\n"), "metrics.listen",
                   "the port must be 1..65535");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"127.0.0.1:x\"\n"), "metrics.listen",
                   "the port must be 1..65535");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"239.1.1.1:9469\"\n"), "metrics.listen",
                   "not a unicast address");
    EXPECT_REFUSED(with("[metrics]\nlisten = \"127.0.0.1:9469\"\nport = 1\n"), "metrics.port",
                   "unknown key");
}

TEST(MetricsConfig, RoundTripsAndNeedsARestart) {
    const Config c =
        config_test::accepted_from(with("[metrics]\nlisten = \"127.0.0.1:9469\"\n"), kSource);
    // Every other change keeps the listener as it was.
    const Config edited = config_test::edit_applied(c, "timeouts.udp", "900");
    EXPECT_EQ(edited.metrics, c.metrics);
    const Config off = config_test::accepted_from(with(""), kSource);
    EXPECT_FALSE(config_test::edit_applied(off, "timeouts.udp", "900").metrics.enabled());

    const ConfigError e = config_test::edit_refused(c, "metrics.listen", "\"127.0.0.1:9470\"");
    EXPECT_EQ(e.key, "metrics.listen");
    EXPECT_THAT(e.reason, ::testing::HasSubstr("restart ephemera"));

    // A reloaded file with another listener is refused the same way.
    const Config moved =
        config_test::accepted_from(with("[metrics]\nlisten = \"127.0.0.1:9470\"\n"), kSource);
    const auto refusal = check_runtime_change(c, moved);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->key, "metrics.listen");
    EXPECT_FALSE(check_runtime_change(c, edited).has_value());
}

} // namespace
} // namespace ephemera
