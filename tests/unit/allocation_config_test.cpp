// [pool] mode, [pool.blocks] and [pool.deterministic]: what the parser accepts, every refusal
// (file, dotted key, reason), what may change while running, and which modes ephemera runs.
#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"
#include "ephemera/mode_checks.hpp"

#include "config_expect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>

namespace ephemera {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kSource = "alloc.toml";

const std::string kPorts = R"(
[inside]
port = "net_af_packet0"
gateway = "100.64.0.1"
[outside]
port = "net_af_packet1"
next_hop = "198.18.0.2"
)";

// Four pool addresses and the RFC 7422 port range, then `rest` (more [pool] keys and tables).
std::string pool4(const std::string& rest) {
    return "[pool]\naddresses = [\"198.18.0.10\", \"198.18.0.11\", \"198.18.0.12\", "
           "\"198.18.0.13\"]\nport_range = \"1024-65535\"\n" +
           rest + kPorts;
}

// 1024 subscribers over four addresses: 256 each, 252 ports each.
std::string det(const std::string& det_body, const std::string& pool_extra = "") {
    return pool4(pool_extra + "mode = \"deterministic\"\n[pool.deterministic]\n" + det_body);
}

std::string blocks(const std::string& body) {
    return pool4("mode = \"blocks\"\n[pool.blocks]\n" + body);
}

Config accepted(const std::string& text) {
    return config_test::accepted_from(text, kSource);
}

// ---- pool.mode ---------------------------------------------------------------------------

TEST(AllocationMode, DefaultIsDynamicWithDefaultSettings) {
    const Config c = accepted(pool4(""));
    EXPECT_EQ(c.allocation, AllocationMode::dynamic);
    EXPECT_EQ(c.blocks.block_size, 256u);
    EXPECT_EQ(c.deterministic.min_ports, 1024u);
    EXPECT_EQ(accepted(pool4("mode = \"dynamic\"\n")).allocation, AllocationMode::dynamic);
}

TEST(AllocationMode, RefusesUnknownModeAndWrongType) {
    EXPECT_REFUSED(pool4("mode = \"napt\"\n"), "pool.mode",
                   "unknown allocation mode \"napt\" (expected one of \"dynamic\", \"blocks\", "
                   "\"deterministic\")");
    EXPECT_REFUSED(pool4("mode = 1\n"), "pool.mode", "expected a string, got an integer");
}

TEST(AllocationMode, RefusesAnotherModesTableNamingTheModeInForce) {
    EXPECT_REFUSED(pool4("[pool.blocks]\nblock_size = 128\n"), "pool.blocks",
                   "[pool.blocks] only applies with pool.mode = \"blocks\", but pool.mode is "
                   "\"dynamic\"");
    EXPECT_REFUSED(pool4("mode = \"blocks\"\n[pool.deterministic]\nsubscribers = "
                         "\"100.64.0.0/22\"\n"),
                   "pool.deterministic",
                   "only applies with pool.mode = \"deterministic\", but pool.mode is \"blocks\"");
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/22\"\n[pool.blocks]\nmax_blocks = 2\n"),
                   "pool.blocks", "but pool.mode is \"deterministic\"");
    EXPECT_REFUSED(pool4("blocks = 3\n"), "pool.blocks", "expected a table, got an integer");
}

// ---- [pool.blocks] -------------------------------------------------------------------------

TEST(BlocksConfig, EveryKeyLandsInConfig) {
    const Config c = accepted(blocks("block_size = 512\nmax_blocks = 4\n"
                                     "active_block_timeout = 3600\ninterim = 900\n"
                                     "adaptive = true\nmin_block_size = 128\n"
                                     "max_block_size = 2048\nrecords_per_day = 12\n"));
    EXPECT_EQ(c.allocation, AllocationMode::blocks);
    EXPECT_EQ(c.blocks.block_size, 512u);
    EXPECT_EQ(c.blocks.max_blocks, 4u);
    EXPECT_EQ(c.blocks.active_block_timeout, 3600u);
    EXPECT_EQ(c.blocks.interim, 900u);
    EXPECT_TRUE(c.blocks.adaptive);
    EXPECT_EQ(c.blocks.min_block_size, 128u);
    EXPECT_EQ(c.blocks.max_block_size, 2048u);
    EXPECT_EQ(c.blocks.records_per_day, 12u);
    // The table may be left out: the defaults apply.
    EXPECT_EQ(accepted(pool4("mode = \"blocks\"\n")).blocks.max_blocks, 8u);
}

TEST(BlocksConfig, RefusesBlockSizeOutsideBoundsOrNotAMultipleOf64) {
    EXPECT_REFUSED(blocks("block_size = 32\n"), "pool.blocks.block_size",
                   "must be between 64 and 4096 ports, got 32");
    EXPECT_REFUSED(blocks("block_size = 8192\n"), "pool.blocks.block_size",
                   "must be between 64 and 4096 ports, got 8192");
    EXPECT_REFUSED(blocks("block_size = 100\n"), "pool.blocks.block_size",
                   "must be a multiple of 64, got 100");
    // 192 is a multiple of 64 without being a power of two: fine for a fixed size.
    EXPECT_EQ(accepted(blocks("block_size = 192\n")).blocks.block_size, 192u);
}

TEST(BlocksConfig, RefusesBlockLargerThanPortRange) {
    EXPECT_REFUSED("[pool]\naddresses = [\"198.18.0.10\"]\nport_range = \"40000-40999\"\n"
                   "mode = \"blocks\"\n[pool.blocks]\nblock_size = 2048\n" +
                       kPorts,
                   "pool.blocks.block_size",
                   "2048 ports do not fit in port_range 40000-40999 (1000 ports)");
}

TEST(BlocksConfig, RefusesMaxBlocksOutside1To64) {
    EXPECT_REFUSED(blocks("max_blocks = 0\n"), "pool.blocks.max_blocks",
                   "must be between 1 and 64, got 0");
    EXPECT_REFUSED(blocks("max_blocks = 65\n"), "pool.blocks.max_blocks",
                   "must be between 1 and 64, got 65");
}

TEST(BlocksConfig, RefusesTimeoutsBeyondSevenDaysOrNegative) {
    EXPECT_REFUSED(blocks("active_block_timeout = 604801\n"), "pool.blocks.active_block_timeout",
                   "must be between 0 and 604800 s, got 604801");
    EXPECT_REFUSED(blocks("interim = -1\n"), "pool.blocks.interim",
                   "must be between 0 and 604800 s, got -1");
    EXPECT_REFUSED(blocks("interim = \"1h\"\n"), "pool.blocks.interim",
                   "expected an integer, got a string");
}

TEST(BlocksConfig, RefusesAdaptiveSizesNotPowersOfTwoOrInverted) {
    EXPECT_REFUSED(blocks("min_block_size = 192\n"), "pool.blocks.min_block_size",
                   "must be a power of two");
    EXPECT_REFUSED(blocks("max_block_size = 96\n"), "pool.blocks.max_block_size",
                   "must be a multiple of 64, got 96");
    EXPECT_REFUSED(blocks("max_block_size = 8192\n"), "pool.blocks.max_block_size",
                   "must be between 64 and 4096 ports, got 8192");
    EXPECT_REFUSED(blocks("min_block_size = 1024\nmax_block_size = 512\n"),
                   "pool.blocks.min_block_size", "1024 is above max_block_size (512)");
    EXPECT_REFUSED(blocks("adaptive = 1\n"), "pool.blocks.adaptive",
                   "expected a boolean, got an integer");
}

TEST(BlocksConfig, RefusesRecordsPerDayBelowOneAndUnknownKeys) {
    EXPECT_REFUSED(blocks("records_per_day = 0\n"), "pool.blocks.records_per_day",
                   "must be between 1 and 86400, got 0");
    EXPECT_REFUSED(blocks("blocksize = 64\n"), "pool.blocks.blocksize", "unknown key");
}

// ---- [pool.deterministic] ------------------------------------------------------------------

TEST(DeterministicConfig, PrefixAndMinPortsLandInConfig) {
    const Config c = accepted(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 200\n"));
    EXPECT_EQ(c.allocation, AllocationMode::deterministic);
    EXPECT_EQ(c.deterministic.prefix, Ipv4Addr(100, 64, 0, 0));
    EXPECT_EQ(c.deterministic.prefix_len, 22);
    EXPECT_EQ(c.deterministic.min_ports, 200u);
    EXPECT_EQ(accepted(det("subscribers = \"100.64.0.0/26\"\n")).deterministic.min_ports, 1024u);
}

TEST(DeterministicConfig, RefusesModeWithoutItsTable) {
    EXPECT_REFUSED(pool4("mode = \"deterministic\"\n"), "pool.deterministic",
                   "pool.mode = \"deterministic\" needs a [pool.deterministic] table");
    EXPECT_REFUSED(det("min_ports = 100\n"), "pool.deterministic.subscribers",
                   "missing required key");
}

TEST(DeterministicConfig, RefusesMalformedPrefixes) {
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0\"\n"), "pool.deterministic.subscribers",
                   "\"100.64.0.0\" is not an IPv4 prefix");
    EXPECT_REFUSED(det("subscribers = \"100.64.0/16\"\n"), "pool.deterministic.subscribers",
                   "is not an IPv4 prefix");
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/\"\n"), "pool.deterministic.subscribers",
                   "has a bad prefix length (expected /8 to /32)");
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/016\"\n"), "pool.deterministic.subscribers",
                   "has a bad prefix length");
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/x\"\n"), "pool.deterministic.subscribers",
                   "has a bad prefix length");
    EXPECT_REFUSED(det("subscribers = \"100.0.0.0/7\"\n"), "pool.deterministic.subscribers",
                   "prefix length /7 is not allowed (expected /8 to /32");
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/33\"\n"), "pool.deterministic.subscribers",
                   "prefix length /33 is not allowed");
    EXPECT_REFUSED(det("subscribers = 1\n"), "pool.deterministic.subscribers",
                   "expected a string, got an integer");
}

TEST(DeterministicConfig, RefusesHostBitsAndUnusableAddresses) {
    EXPECT_REFUSED(det("subscribers = \"100.64.1.7/22\"\n"), "pool.deterministic.subscribers",
                   "\"100.64.1.7/22\" has host bits set (the prefix starts at 100.64.0.0)");
    EXPECT_REFUSED(det("subscribers = \"127.0.0.0/22\"\n"), "pool.deterministic.subscribers",
                   "which no subscriber can use");
    EXPECT_REFUSED(det("subscribers = \"224.0.0.0/22\"\n"), "pool.deterministic.subscribers",
                   "which no subscriber can use");
}

TEST(DeterministicConfig, RefusesPoolAddressInsideThePrefix) {
    EXPECT_REFUSED(det("subscribers = \"198.18.0.0/22\"\n"), "pool.deterministic.subscribers",
                   "pool address 198.18.0.10 is inside the subscriber prefix");
}

TEST(DeterministicConfig, RefusesMinPortsOutside1To65535) {
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 0\n"),
                   "pool.deterministic.min_ports", "must be between 1 and 65535, got 0");
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 65536\n"),
                   "pool.deterministic.min_ports", "must be between 1 and 65535, got 65536");
}

// RFC 7422 section 2: each subscriber gets a fixed block; the reason gives every number the
// operator needs to fix the file.
TEST(DeterministicConfig, Rfc7422RefusesTooFewPortsPerSubscriberGivingTheNumbers) {
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/16\"\n"), "pool.deterministic.min_ports",
                   "65536 subscribers over 4 pool addresses is 16384 per address; port_range "
                   "1024-65535 has 64512 ports, so each subscriber would get 3, fewer than "
                   "min_ports (1024)");
    // 1024 over 4: 256 per address, 64512 / 256 = 252 ports each.
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 253\n"),
                   "pool.deterministic.min_ports", "would get 252, fewer than min_ports (253)");
    EXPECT_EQ(accepted(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 252\n")).allocation,
              AllocationMode::deterministic);
    // More subscribers per address than ports: nobody gets any.
    EXPECT_REFUSED(det("subscribers = \"100.0.0.0/8\"\nmin_ports = 1\n"),
                   "pool.deterministic.min_ports", "would get 0, fewer than min_ports (1)");
}

// RFC 7422 section 2: reserved ports are removed from the range, at least 0-1023; here the
// low end of port_range is the offset, and there is no other way to reserve a port.
TEST(DeterministicConfig, Rfc7422RefusesReservedPortsAndTheWellKnownPorts) {
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/26\"\n", "reserved = [\"5000\"]\n"),
                   "pool.reserved",
                   "reserved ports are not allowed with pool.mode = \"deterministic\"");
    EXPECT_REFUSED("[pool]\naddresses = [\"198.18.0.10\"]\nport_range = \"1000-65535\"\n"
                   "mode = \"deterministic\"\n[pool.deterministic]\nsubscribers = "
                   "\"100.64.0.0/30\"\n" +
                       kPorts,
                   "pool.port_range", "1000-65535 reaches below 1024");
}

TEST(DeterministicConfig, RefusesUnknownKeys) {
    EXPECT_REFUSED(det("subscribers = \"100.64.0.0/22\"\nratio = 4\n"), "pool.deterministic.ratio",
                   "unknown key");
}

TEST(DeterministicConfig, DescribeShowsTheFormulasNumbers) {
    const std::string text =
        describe_config(accepted(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 252\n")));
    EXPECT_THAT(text, HasSubstr("allocation:  deterministic (RFC 7422): subscribers "
                                "100.64.0.0/22, 256 per pool address (4 of 4 addresses used), "
                                "252 ports each (min_ports 252)\n"));
    EXPECT_THAT(describe_config(accepted(pool4(""))),
                HasSubstr("allocation:  dynamic: one port per new mapping\n"));
    EXPECT_THAT(describe_config(accepted(blocks("interim = 60\n"))),
                HasSubstr("allocation:  blocks: 256-port blocks, at most 8 per subscriber, "
                          "active block timeout none, interim records every 60 s\n"));
}

// ---- modes the dataplane runs --------------------------------------------------------------

// A block every worker's share can hold at least once, or a refusal naming the size key.
TEST(ModeChecks, BlocksMustFitEveryWorkersShare) {
    Config c = accepted(blocks(""));
    c.port_range = {60000, 61023}; // 1024 ports: 256 slots per worker with 4 workers
    c.reserved.clear();
    c.blocks.block_size = 256;
    EXPECT_FALSE(check_blocks_fit(c, 1).has_value());
    EXPECT_FALSE(check_blocks_fit(c, 2).has_value());
    const auto refusal = check_blocks_fit(c, 8);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->key, "pool.blocks.block_size");
    EXPECT_THAT(refusal->reason, HasSubstr("a block of 256 ports does not fit in worker"));
    EXPECT_THAT(refusal->reason, HasSubstr("with 8 workers"));
    c.blocks.adaptive = true;
    c.blocks.min_block_size = 64;
    EXPECT_FALSE(check_blocks_fit(c, 8).has_value());
    c.allocation = AllocationMode::dynamic;
    c.blocks.adaptive = false;
    EXPECT_FALSE(check_blocks_fit(c, 8).has_value());
}

// ---- runtime edits -------------------------------------------------------------------------

Config edited(const Config& c, std::string_view key, std::string_view value) {
    return config_test::edit_applied(c, key, value);
}
using config_test::edit_refused;

TEST(AllocationEdit, RoundTripKeepsModeAndSettings) {
    const Config b = accepted(blocks("block_size = 128\nmax_blocks = 3\ninterim = 30\n"
                                     "adaptive = true\nmin_block_size = 64\n"
                                     "max_block_size = 1024\nrecords_per_day = 6\n"));
    auto again = parse_config(config_to_toml(b), "again");
    ASSERT_TRUE(std::holds_alternative<Config>(again)) << std::get<ConfigError>(again).to_string();
    const Config& b2 = std::get<Config>(again);
    EXPECT_EQ(b2.allocation, AllocationMode::blocks);
    EXPECT_EQ(b2.blocks.block_size, 128u);
    EXPECT_EQ(b2.blocks.max_blocks, 3u);
    EXPECT_EQ(b2.blocks.interim, 30u);
    EXPECT_TRUE(b2.blocks.adaptive);
    EXPECT_EQ(b2.blocks.max_block_size, 1024u);
    EXPECT_EQ(b2.blocks.records_per_day, 6u);

    const Config d = accepted(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 200\n"));
    auto again_d = parse_config(config_to_toml(d), "again");
    ASSERT_TRUE(std::holds_alternative<Config>(again_d))
        << std::get<ConfigError>(again_d).to_string();
    EXPECT_EQ(std::get<Config>(again_d).deterministic.prefix, Ipv4Addr(100, 64, 0, 0));
    EXPECT_EQ(std::get<Config>(again_d).deterministic.prefix_len, 22);
    EXPECT_EQ(std::get<Config>(again_d).deterministic.min_ports, 200u);
}

TEST(AllocationEdit, ModeAndDeterministicSettingsNeedARestart) {
    const Config dyn = accepted(pool4(""));
    for (const auto& [key, value] : {std::pair{"pool.mode", "blocks"},
                                     std::pair{"pool.deterministic.subscribers", "100.64.0.0/24"},
                                     std::pair{"pool.deterministic.min_ports", "10"}}) {
        const ConfigError e = edit_refused(dyn, key, value);
        EXPECT_EQ(e.key, key);
        EXPECT_THAT(e.reason, HasSubstr("restart ephemera"));
    }
    // A reload of a file with another mode, or another formula, is refused as well.
    const Config d = accepted(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 100\n"));
    const auto from_file = [](const std::string& text) {
        return std::get<Config>(parse_config(text, kSource));
    };
    EXPECT_EQ(check_runtime_change(dyn, accepted(blocks(""))).value().key, "pool.mode");
    EXPECT_EQ(check_runtime_change(
                  d, from_file(det("subscribers = \"100.64.4.0/22\"\nmin_ports = 100\n")))
                  .value()
                  .key,
              "pool.deterministic.subscribers");
    EXPECT_EQ(
        check_runtime_change(d, from_file(det("subscribers = \"100.64.0.0/22\"\nmin_ports = 50\n")))
            .value()
            .key,
        "pool.deterministic.min_ports");
    // The formula reads the pool and port_range too.
    const auto pool_changed = check_runtime_change(d, edited(d, "pool.port_range", "2048-65535"));
    ASSERT_TRUE(pool_changed.has_value());
    EXPECT_EQ(pool_changed->key, "pool.port_range");
    auto removed = edit_pool(d, "198.18.0.13", false);
    ASSERT_TRUE(std::holds_alternative<Config>(removed));
    EXPECT_EQ(check_runtime_change(d, std::get<Config>(removed)).value().key, "pool.addresses");
    // In dynamic mode the pool still changes freely.
    auto added = edit_pool(dyn, "198.18.0.14", true);
    ASSERT_TRUE(std::holds_alternative<Config>(added));
    EXPECT_FALSE(check_runtime_change(dyn, std::get<Config>(added)).has_value());
}

TEST(AllocationEdit, BlocksSettingsThatNewBlocksTakeMayChange) {
    const Config b = accepted(blocks(""));
    for (const auto& [key, value, check] :
         {std::tuple{"pool.blocks.max_blocks", "16", &BlocksConfig::max_blocks},
          std::tuple{"pool.blocks.active_block_timeout", "600",
                     &BlocksConfig::active_block_timeout},
          std::tuple{"pool.blocks.interim", "300", &BlocksConfig::interim},
          std::tuple{"pool.blocks.block_size", "512", &BlocksConfig::block_size}}) {
        const Config next = edited(b, key, value);
        EXPECT_EQ(next.blocks.*check, static_cast<std::uint32_t>(std::stoul(value))) << key;
        EXPECT_FALSE(check_runtime_change(b, next).has_value()) << key;
    }
    for (const auto& [key, value] :
         {std::pair{"pool.blocks.adaptive", "true"}, std::pair{"pool.blocks.min_block_size", "128"},
          std::pair{"pool.blocks.max_block_size", "1024"},
          std::pair{"pool.blocks.records_per_day", "48"}}) {
        const auto refusal = check_runtime_change(b, edited(b, key, value));
        ASSERT_TRUE(refusal.has_value()) << key;
        EXPECT_EQ(refusal->key, key);
        EXPECT_THAT(refusal->reason, HasSubstr("restart ephemera"));
    }
}

TEST(AllocationEdit, BlocksEditsGetTheFilesChecks) {
    const Config b = accepted(blocks(""));
    ConfigError e = edit_refused(b, "pool.blocks.max_blocks", "65");
    EXPECT_EQ(e.file, "runtime change");
    EXPECT_EQ(e.key, "pool.blocks.max_blocks");
    EXPECT_EQ(e.reason, "must be between 1 and 64, got 65");
    e = edit_refused(b, "pool.blocks.block_size", "100");
    EXPECT_EQ(e.key, "pool.blocks.block_size");
    EXPECT_EQ(e.reason, "must be a multiple of 64, got 100");
    e = edit_refused(b, "pool.blocks.interim", "700000");
    EXPECT_EQ(e.key, "pool.blocks.interim");
    e = edit_refused(b, "pool.blocks.nope", "1");
    EXPECT_EQ(e.key, "pool.blocks.nope");
    EXPECT_EQ(e.reason, "unknown key");
    // Blocks settings of a pool in another mode: refused as the file would be.
    e = edit_refused(accepted(pool4("")), "pool.blocks.max_blocks", "4");
    EXPECT_EQ(e.key, "pool.blocks");
    EXPECT_THAT(e.reason, HasSubstr("but pool.mode is \"dynamic\""));
    e = edit_refused(b, "pool..max_blocks", "4");
    EXPECT_EQ(e.reason, "expected a key of the form table.key");
}

} // namespace
} // namespace ephemera
