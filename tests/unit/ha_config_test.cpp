// [ha]: the state file kept across a restart, as the parser takes it or refuses it (file, key,
// reason), and its round trip through a runtime edit.
#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"

#include "config_expect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace ephemera {
namespace {

constexpr const char* kSource = "ha.toml";

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

std::string state_file_in(const std::string& path) {
    return with("[ha]\nstate_file = \"" + path + "\"\n");
}

std::string temp_dir() {
    return std::filesystem::temp_directory_path().string();
}

TEST(HaConfig, OffWhenAbsent) {
    const Config c = config_test::accepted_from(with(""), kSource);
    EXPECT_TRUE(c.ha.state_file.empty());
    EXPECT_THAT(describe_config(c), ::testing::HasSubstr("sessions:    lost at restart"));
    EXPECT_TRUE(config_test::accepted_from(with("[ha]\n"), kSource).ha.state_file.empty());
}

TEST(HaConfig, StateFileInAnExistingDirectory) {
    const std::string path = temp_dir() + "/ephemera-ha-test.state";
    const Config c = config_test::accepted_from(state_file_in(path), kSource);
    EXPECT_EQ(c.ha.state_file, path);
    EXPECT_THAT(describe_config(c), ::testing::HasSubstr("kept across a restart in " + path));
    // A bare name is a file in the directory ephemera starts in.
    EXPECT_EQ(config_test::accepted_from(state_file_in("sessions.state"), kSource).ha.state_file,
              "sessions.state");
}

TEST(HaConfig, WhatCannotBeWrittenIsRefused) {
    EXPECT_REFUSED(state_file_in("/nonexistent-dir/sessions.state"), "ha.state_file",
                   "the directory \"/nonexistent-dir\" does not exist");
    EXPECT_REFUSED(state_file_in(temp_dir()), "ha.state_file", "is a directory");
    EXPECT_REFUSED(state_file_in(temp_dir() + "/"), "ha.state_file", "must name a file");
    EXPECT_REFUSED(state_file_in(""), "ha.state_file", "must name a file");
    EXPECT_REFUSED(with("[ha]\nstate_file = 3\n"), "ha.state_file", "string");
    EXPECT_REFUSED(with("[ha]\npeers = \"198.18.0.9\"\n"), "ha.peers", "unknown key");
}

TEST(HaConfig, RoundTripsThroughEdits) {
    const std::string path = temp_dir() + "/ephemera-ha-test.state";
    const Config c = config_test::accepted_from(state_file_in(path), kSource);
    EXPECT_EQ(config_test::edit_applied(c, "timeouts.udp", "900").ha, c.ha);
    // Read when ephemera stops, so it may change while it runs.
    const std::string other = temp_dir() + "/other.state";
    EXPECT_EQ(config_test::edit_applied(c, "ha.state_file", "\"" + other + "\"").ha.state_file,
              other);
    EXPECT_FALSE(check_runtime_change(c, config_test::accepted_from(state_file_in(other), kSource))
                     .has_value());
    const ConfigError e =
        config_test::edit_refused(c, "ha.state_file", "\"/nonexistent-dir/x.state\"");
    EXPECT_EQ(e.key, "ha.state_file");
}

std::string pair(const std::string& extra = "") {
    return with("[ha]\nrole = \"standby\"\nlisten = \"198.19.255.2:5880\"\n"
                "peer = \"198.19.255.1:5880\"\n" +
                extra);
}

TEST(HaConfig, APairsEndsAndTimes) {
    const Config c = config_test::accepted_from(pair(), kSource);
    EXPECT_TRUE(c.ha.paired());
    EXPECT_EQ(c.ha.role, HaRole::standby);
    EXPECT_EQ(c.ha.listen_address.to_string(), "198.19.255.2");
    EXPECT_EQ(c.ha.listen_port, 5880);
    EXPECT_EQ(c.ha.peer_address.to_string(), "198.19.255.1");
    EXPECT_EQ(c.ha.dead_interval_ms, 1000u);
    EXPECT_EQ(c.ha.refresh_interval, 10u);
    EXPECT_THAT(describe_config(c),
                ::testing::HasSubstr("ha:          standby at start, sync on 198.19.255.2:5880, "
                                     "peer 198.19.255.1:5880, takeover after 1000 ms"));
    const Config t =
        config_test::accepted_from(pair("dead_interval = 300\nrefresh_interval = 2\n"), kSource);
    EXPECT_EQ(t.ha.dead_interval_ms, 300u);
    EXPECT_EQ(t.ha.refresh_interval, 2u);
    EXPECT_FALSE(config_test::accepted_from(with(""), kSource).ha.paired());
}

TEST(HaConfig, APairThatCannotWorkIsRefused) {
    EXPECT_REFUSED(with("[ha]\nrole = \"primary\"\n"), "ha.role", "is not a role");
    EXPECT_REFUSED(with("[ha]\nrole = \"active\"\npeer = \"198.19.255.1:5880\"\n"), "ha.listen",
                   "missing required key");
    EXPECT_REFUSED(with("[ha]\nrole = \"active\"\nlisten = \"198.19.255.1:5880\"\n"), "ha.peer",
                   "missing required key");
    EXPECT_REFUSED(with("[ha]\nrole = \"active\"\nlisten = \"198.19.255.1:5880\"\n"
                        "peer = \"198.19.255.1:5880\"\n"),
                   "ha.peer", "is ha.listen itself");
    EXPECT_REFUSED(with("[ha]\nrole = \"active\"\nlisten = \"198.19.255.1\"\n"
                        "peer = \"198.19.255.2:5880\"\n"),
                   "ha.listen", "is not ADDRESS:PORT");
    EXPECT_REFUSED(with("[ha]\nrole = \"active\"\nlisten = \"0.0.0.0:5880\"\n"
                        "peer = \"198.19.255.2:5880\"\n"),
                   "ha.listen", "not a unicast address");
    EXPECT_REFUSED(pair("dead_interval = 50\n"), "ha.dead_interval", "100");
    EXPECT_REFUSED(pair("refresh_interval = 31\n"), "ha.refresh_interval", "30");
    EXPECT_REFUSED(with("[ha]\nlisten = \"198.19.255.1:5880\"\n"), "ha.listen", "needs ha.role");
}

TEST(HaConfig, APairIsSetUpAtStartOnly) {
    const Config c = config_test::accepted_from(pair(), kSource);
    // It survives edits of other keys.
    EXPECT_EQ(config_test::edit_applied(c, "timeouts.udp", "900").ha, c.ha);
    const ConfigError e = config_test::edit_refused(c, "ha.role", "\"active\"");
    EXPECT_EQ(e.key, "ha.role");
    EXPECT_THAT(e.reason, ::testing::HasSubstr("set up at start"));
    const Config moved =
        config_test::accepted_from(with("[ha]\nrole = \"standby\"\nlisten = \"198.19.255.2:5880\"\n"
                                        "peer = \"198.19.255.9:5880\"\n"),
                                   kSource);
    const auto refusal = check_runtime_change(c, moved);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->key, "ha");
}

std::string handover(const std::string& extra = "") {
    return with("[ha]\nhandover = \"198.19.1.1:5890\"\n" + extra);
}

TEST(HaConfig, AScaleOutBoxsHandoverAddressAndHook) {
    const Config c = config_test::accepted_from(handover(), kSource);
    EXPECT_TRUE(c.ha.handover());
    EXPECT_FALSE(c.ha.paired());
    EXPECT_EQ(c.ha.handover_address.to_string(), "198.19.1.1");
    EXPECT_EQ(c.ha.handover_port, 5890);
    EXPECT_TRUE(c.ha.migrate_hook.empty());
    EXPECT_THAT(describe_config(c), ::testing::HasSubstr("hand-over:   takes drained boxes' "
                                                         "sessions on 198.19.1.1:5890"));
    const Config h =
        config_test::accepted_from(handover("migrate_hook = \"/bin/true\"\n"), kSource);
    EXPECT_EQ(h.ha.migrate_hook, "/bin/true");
    EXPECT_EQ(h.ha.migrate_hook_timeout_s, 10u);
    EXPECT_EQ(config_test::accepted_from(handover("migrate_hook = \"/bin/true\"\n"
                                                  "migrate_hook_timeout = 60\n"),
                                         kSource)
                  .ha.migrate_hook_timeout_s,
              60u);
    EXPECT_FALSE(config_test::accepted_from(with(""), kSource).ha.handover());
}

TEST(HaConfig, AHandoverThatCannotWorkIsRefused) {
    EXPECT_REFUSED(pair("handover = \"198.19.1.1:5890\"\n"), "ha.handover",
                   "for unpaired scale-out boxes");
    EXPECT_REFUSED(with("[ha]\nhandover = \"198.19.1.1\"\n"), "ha.handover", "is not ADDRESS:PORT");
    EXPECT_REFUSED(with("[ha]\nmigrate_hook = \"/bin/true\"\n"), "ha.migrate_hook",
                   "needs ha.handover");
    EXPECT_REFUSED(handover("migrate_hook = \"true\"\n"), "ha.migrate_hook",
                   "not an executable file named by its full path");
    EXPECT_REFUSED(handover("migrate_hook = \"/nonexistent/hook\"\n"), "ha.migrate_hook",
                   "not an executable file");
    EXPECT_REFUSED(handover("migrate_hook_timeout = 60\n"), "ha.migrate_hook_timeout",
                   "needs ha.migrate_hook");
    EXPECT_REFUSED(handover("migrate_hook = \"/bin/true\"\nmigrate_hook_timeout = 0\n"),
                   "ha.migrate_hook_timeout", "600");
    EXPECT_REFUSED(handover("migrate_hook = \"/bin/true\"\nmigrate_hook_timeout = 601\n"),
                   "ha.migrate_hook_timeout", "600");
}

// What hand-overs took over is runtime state (Config::adopted_pool and the rest), never in a
// file; the keys themselves survive every edit, and the listener is opened at start only.
TEST(HaConfig, HandoverKeysSurviveEditsAndTheListenerIsSetAtStart) {
    const Config c =
        config_test::accepted_from(handover("migrate_hook = \"/bin/true\"\n"), kSource);
    EXPECT_EQ(config_test::edit_applied(c, "timeouts.udp", "900").ha, c.ha);
    EXPECT_EQ(config_test::edit_applied(c, "ha.migrate_hook", "\"/bin/false\"").ha.migrate_hook,
              "/bin/false");
    EXPECT_EQ(
        config_test::edit_applied(c, "ha.migrate_hook_timeout", "30").ha.migrate_hook_timeout_s,
        30u);
    const ConfigError e = config_test::edit_refused(c, "ha.handover", "\"198.19.1.1:5891\"");
    EXPECT_EQ(e.key, "ha.handover");
    EXPECT_THAT(e.reason, ::testing::HasSubstr("opened at start"));
}

} // namespace
} // namespace ephemera
