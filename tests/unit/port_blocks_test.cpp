// Port-block allocation (pool.mode = "blocks"), through the translator: which ports a
// subscriber's mappings get, when a block is opened, refused, closed, freed and held down.
// RFC 6888 REQ-4 (port limits per subscriber), REQ-8 (hold-down), REQ-11 (ICMP on refusal),
// REQ-15 (unpredictable ports); RFC 4787 REQ-4 (parity).
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/icmp_error.hpp"

#include <gtest/gtest.h>

#include <set>

namespace ephemera {
namespace {

using namespace nat_test;

Config blocks_config(PortRange range = {1024, 65535}, std::uint32_t block_size = 64,
                     std::uint32_t max_blocks = 8) {
    Config c = make_config({kX}, range);
    c.allocation = AllocationMode::blocks;
    c.blocks.block_size = block_size;
    c.blocks.max_blocks = max_blocks;
    c.limits.subscriber_mapping_rate = 0;
    return c;
}

// `n` UDP flows of `who` from consecutive source ports; their external ports.
std::vector<std::uint16_t> open_flows(Nat& nat, Ipv4Addr who, std::uint16_t first_sport,
                                      std::uint32_t n, Tick now = kT0) {
    std::vector<std::uint16_t> ports;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto e =
            nat.send_out(udp_from(who, static_cast<std::uint16_t>(first_sport + i), kA1, 53), now);
        EXPECT_TRUE(e.has_value()) << "flow " << i;
        if (e) {
            EXPECT_EQ(e->addr, kX);
            ports.push_back(e->port);
        }
    }
    return ports;
}

// With one worker a block is 64 consecutive ports cut at a multiple of 64.
std::uint32_t block_of(std::uint16_t port) {
    return port / 64;
}

TEST(PortBlocks, FirstMappingOpensABlockAndTheNextOnesStayInIt) {
    Nat nat(blocks_config());
    const auto ports = open_flows(nat, kC, 20000, 64);
    ASSERT_EQ(ports.size(), 64u);
    std::set<std::uint16_t> distinct(ports.begin(), ports.end());
    EXPECT_EQ(distinct.size(), 64u);
    for (std::uint16_t p : ports) {
        EXPECT_EQ(block_of(p), block_of(ports[0])) << p;
        EXPECT_GE(p, 1024);
    }
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 1u);
    // The block is full: the 65th flow opens a second block.
    const auto more = open_flows(nat, kC, 30000, 1);
    ASSERT_EQ(more.size(), 1u);
    EXPECT_NE(block_of(more[0]), block_of(ports[0]));
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 2u);
    // Replies reach every mapping (the outside-to-inside index is the dynamic mode's).
    for (std::uint32_t i = 0; i < 64; i += 7) {
        const FrameSpec out = udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53);
        const auto delivered = nat.send_in(reply_to(out, {kX, ports[i]}));
        ASSERT_TRUE(delivered.has_value());
        EXPECT_EQ(*delivered, (Endpoint{kC, static_cast<std::uint16_t>(20000 + i)}));
    }
}

// RFC 4787 REQ-4: parity is kept inside a block as it is over the range.
TEST(PortBlocks, ParityIsKeptInsideTheBlock) {
    Nat nat(blocks_config({1024, 65535}, 256));
    for (std::uint16_t sport = 40000; sport < 40100; ++sport) {
        const auto e = nat.send_out(udp_from(kC, sport, kA1, 53));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->port & 1, sport & 1) << sport;
    }
}

TEST(PortBlocks, SubscribersGetDisjointBlocks) {
    Nat nat(blocks_config());
    const auto a = open_flows(nat, kC, 20000, 10);
    const auto b = open_flows(nat, kC2, 20000, 10);
    ASSERT_EQ(a.size(), 10u);
    ASSERT_EQ(b.size(), 10u);
    EXPECT_NE(block_of(a[0]), block_of(b[0]));
    for (std::uint16_t p : b) {
        EXPECT_EQ(block_of(p), block_of(b[0]));
    }
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 2u);
}

// RFC 6888 REQ-4, REQ-11: past max_blocks the subscriber is refused, told by ICMP 3/1, and
// nobody else's mapping is touched (no eviction).
TEST(PortBlocks, RefusedPastMaxBlocksWithIcmpUnreachable) {
    Config config = blocks_config({1024, 65535}, 64, 2);
    config.inside.gateway = Ipv4Addr{100, 64, 0, 1};
    Nat nat(config);
    nat.set_headroom_for_replies(1500);
    const auto ports = open_flows(nat, kC, 20000, 128);
    ASSERT_EQ(ports.size(), 128u);
    Frame f = test::build_frame(udp_from(kC, 21000, kA1, 53));
    ASSERT_EQ(nat.in2out(f), Verdict::reply);
    EXPECT_EQ(test::ip_dst(f), kC);
    EXPECT_EQ(test::icmp_type(f), kIcmpDestUnreachable);
    EXPECT_EQ(f[test::l4_of(f) + 1], kIcmpHostUnreachable);
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_blocks), 1u);
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 2u);
    EXPECT_EQ(nat.translator().live_mappings(), 128u);
    // Another subscriber is not affected.
    EXPECT_EQ(open_flows(nat, kC2, 20000, 1).size(), 1u);
}

// RFC 6888 REQ-8: a block is freed when its last mapping ends, then held down; the only block
// of the range cannot go to anyone else before the hold-down is over.
TEST(PortBlocks, FreedBlockIsHeldDown) {
    Config config = blocks_config({40000, 40063}); // one block
    config.timeouts.udp = 120;
    config.timeouts.port_hold_down = 120;
    config.icmp.unreachable = false;
    Nat nat(config);
    ASSERT_EQ(open_flows(nat, kC, 20000, 3).size(), 3u);
    EXPECT_FALSE(nat.send_out(udp_from(kC2, 20000, kA1, 53)));
    EXPECT_EQ(nat.counters().get(Counter::drop_blocks_exhausted), 1u);

    const Tick freed = kT0 + sec(120);
    expire_all(nat.translator(), freed);
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.counters().get(Counter::blocks_released), 1u);
    EXPECT_EQ(nat.counters().get(Counter::ports_held), 0u); // blocks, not ports, are held
    EXPECT_FALSE(nat.send_out(udp_from(kC2, 20000, kA1, 53), freed + sec(120) - 1));
    EXPECT_EQ(nat.counters().get(Counter::drop_blocks_exhausted), 2u);
    const auto got = nat.send_out(udp_from(kC2, 20000, kA1, 53), freed + sec(120));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(block_of(got->port), block_of(40000));
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 2u);
}

// A port freed inside a live block goes back to the block at once: its holder may take it
// again, and nobody else can.
TEST(PortBlocks, PortReturnsToItsBlockWhileTheBlockLives) {
    Config config = blocks_config({40000, 40063});
    config.timeouts.udp = 120;
    Nat nat(config);
    const auto first = open_flows(nat, kC, 20000, 63);
    ASSERT_EQ(first.size(), 63u);
    // One more keeps the block alive after the first 63 expire.
    const auto keeper = open_flows(nat, kC, 30000, 1, kT0 + sec(60));
    ASSERT_EQ(keeper.size(), 1u);
    expire_all(nat.translator(), kT0 + sec(120));
    EXPECT_EQ(nat.translator().live_mappings(), 1u);
    EXPECT_EQ(nat.counters().get(Counter::blocks_released), 0u);
    const auto again = open_flows(nat, kC, 31000, 63, kT0 + sec(121));
    EXPECT_EQ(again.size(), 63u);
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 1u);
}

// Juniper's active-block-timeout: a block older than the timeout takes no new ports, so its
// record can end; its mappings live on.
TEST(PortBlocks, ActiveBlockTimeoutClosesTheBlockForNewPorts) {
    Config config = blocks_config();
    config.blocks.active_block_timeout = 60;
    config.timeouts.udp = 300;
    Nat nat(config);
    const auto early = open_flows(nat, kC, 20000, 2);
    ASSERT_EQ(early.size(), 2u);
    EXPECT_EQ(block_of(early[1]), block_of(early[0]));
    const auto late = open_flows(nat, kC, 20100, 1, kT0 + sec(60));
    ASSERT_EQ(late.size(), 1u);
    EXPECT_NE(block_of(late[0]), block_of(early[0]));
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 2u);
    const FrameSpec out = udp_from(kC, 20000, kA1, 53);
    EXPECT_TRUE(nat.send_in(reply_to(out, {kX, early[0]}), kT0 + sec(61)).has_value());
}

// With several workers a block is a run of the worker's own slots: every port of it is one
// that this worker owns, so replies need no handoff.
TEST(PortBlocks, BlocksLieInTheWorkersOwnShare) {
    const WorkerId workers = 4;
    const Ownership ownership(workers);
    for (WorkerId w = 0; w < workers; ++w) {
        Nat nat(blocks_config(), workers, w);
        const Ipv4Addr who = nat.owned_subscriber(0);
        std::vector<std::uint16_t> ports;
        for (std::uint16_t i = 0; i < 64; ++i) {
            const auto e =
                nat.send_out(udp_from(who, static_cast<std::uint16_t>(20000 + i), kA1, 53));
            ASSERT_TRUE(e.has_value());
            ports.push_back(e->port);
        }
        const auto [lo, hi] = std::minmax_element(ports.begin(), ports.end());
        for (std::uint16_t p : ports) {
            EXPECT_EQ(ownership.port_owner(kX, p), w) << p;
        }
        // 64 slots of a quarter share span 256 ports.
        EXPECT_LT(*hi - *lo, 256);
        EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 1u);
    }
}

// RFC 6888 REQ-15: which block a subscriber gets depends on the secret.
TEST(PortBlocks, BlockChoiceIsKeyed) {
    std::set<std::uint32_t> firsts;
    for (std::uint64_t k = 1; k <= 8; ++k) {
        Nat nat(blocks_config(), 1, 0, SipKey{k * 0x9e3779b97f4a7c15ull, k});
        const auto p = open_flows(nat, kC, 20000, 1);
        ASSERT_EQ(p.size(), 1u);
        firsts.insert(block_of(p[0]));
    }
    EXPECT_GE(firsts.size(), 6u);
}

TEST(PortBlocks, TelemetryCountsBlocks) {
    Config config = blocks_config({40000, 40000 + 4 * 64 - 1});
    config.timeouts.udp = 120;
    config.timeouts.port_hold_down = 120;
    Nat nat(config);
    ASSERT_EQ(open_flows(nat, kC, 20000, 1).size(), 1u);
    ASSERT_EQ(open_flows(nat, kC2, 20000, 1, kT0 + sec(10)).size(), 1u);
    BlockCounts c = nat.translator().ports().block_counts(0, 1, kT0 + sec(10));
    EXPECT_EQ(c.in_use, 2u);
    EXPECT_EQ(c.held, 0u);
    EXPECT_EQ(c.free, 2u);
    expire_all(nat.translator(), kT0 + sec(120));
    c = nat.translator().ports().block_counts(0, 1, kT0 + sec(120));
    EXPECT_EQ(c.in_use, 1u);
    EXPECT_EQ(c.held, 1u);
    EXPECT_EQ(c.free, 2u);
}

// block_size and max_blocks change at run time (ephemeractl set) and apply to new blocks: the
// live ones stay whole and keep their mappings, a subscriber above a lowered max_blocks is
// refused its next block and drains, and its list keeps the larger block first.
TEST(PortBlocks, RuntimeBlockSizeAndMaxBlocksApplyToNewBlocks) {
    Config config = blocks_config({1024, 65535}, 64, 4);
    config.timeouts.udp = 120;
    config.icmp.unreachable = false;
    Nat nat(config);
    const auto small = open_flows(nat, kC, 20000, 64);
    ASSERT_EQ(small.size(), 64u);

    config.blocks.block_size = 128;
    nat.reconfigure(config);
    const auto large = open_flows(nat, kC, 21000, 128);
    ASSERT_EQ(large.size(), 128u);
    for (std::uint16_t p : large) {
        EXPECT_EQ(p / 128, large[0] / 128) << p; // one block of 128, cut at a multiple of 128
        EXPECT_NE(block_of(p), block_of(small[0])) << p;
    }
    EXPECT_EQ(nat.counters().get(Counter::blocks_opened), 2u);
    auto sub = nat.translator().find_subscriber(kC);
    ASSERT_TRUE(sub.has_value());
    EXPECT_EQ(sub->record->blocks.count, 2u);
    EXPECT_EQ(nat.translator().ports().block(sub->record->blocks.first).granules, 2u);

    config.blocks.max_blocks = 1;
    nat.reconfigure(config);
    EXPECT_FALSE(nat.send_out(udp_from(kC, 22000, kA1, 53)));
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_blocks), 1u);
    EXPECT_EQ(nat.translator().live_mappings(), 192u);

    expire_all(nat.translator(), kT0 + sec(120));
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.counters().get(Counter::blocks_released), 2u);
    EXPECT_FALSE(nat.translator().find_subscriber(kC).has_value());
    const auto again = open_flows(nat, kC, 23000, 1, kT0 + sec(121));
    ASSERT_EQ(again.size(), 1u);
    sub = nat.translator().find_subscriber(kC);
    ASSERT_TRUE(sub.has_value());
    EXPECT_EQ(sub->record->blocks.count, 1u);
    EXPECT_EQ(nat.translator().ports().block(sub->record->blocks.first).granules, 2u);
}

// Adaptive sizing (block_sizing.hpp): a subscriber that keeps filling its blocks gets larger
// ones, so 1,000 flows take a handful of blocks rather than the 16 of fixed 64-port blocks;
// a light one stays at the minimum.
TEST(PortBlocks, AdaptiveSizesGrowWithDemand) {
    Config config = blocks_config({1024, 65535}, 64, 16);
    config.blocks.adaptive = true;
    config.blocks.min_block_size = 64;
    config.blocks.max_block_size = 1024;
    Nat nat(config);
    EXPECT_EQ(open_flows(nat, kC, 20000, 1000).size(), 1000u);
    EXPECT_LE(nat.counters().get(Counter::blocks_opened), 6u);
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_blocks), 0u);
    EXPECT_EQ(open_flows(nat, kC2, 20000, 10).size(), 10u);
    const auto c = nat.translator().ports().block_counts(0, 1, kT0);
    EXPECT_LE(c.in_use, 7u);
}

// Adaptive sizing with the address nearly full: a smaller block still serves the mapping.
TEST(PortBlocks, AdaptiveSizeHalvesWhenNoLargeBlockIsFree) {
    Config config = blocks_config({40000, 40000 + 6 * 64 - 1}, 64, 16); // 384 ports
    config.blocks.adaptive = true;
    config.blocks.min_block_size = 64;
    config.blocks.max_block_size = 4096;
    Nat nat(config);
    EXPECT_EQ(open_flows(nat, kC, 20000, 300).size(), 300u);
    EXPECT_EQ(nat.counters().get(Counter::drop_blocks_exhausted), 0u);
}

// RFC 6888 REQ-15: a subscriber's next block is not the one beside its last.
TEST(PortBlocks, SuccessiveBlocksAreNotSideBySide) {
    Nat nat(blocks_config({1024, 65535}, 64, 16));
    const auto ports = open_flows(nat, kC, 20000, 64 * 8);
    ASSERT_EQ(ports.size(), 64u * 8);
    std::vector<std::uint32_t> blocks;
    for (std::size_t i = 0; i < ports.size(); i += 64) {
        blocks.push_back(block_of(ports[i]));
    }
    std::set<std::uint32_t> distinct(blocks.begin(), blocks.end());
    EXPECT_EQ(distinct.size(), 8u);
    int adjacent = 0;
    for (std::size_t i = 1; i < blocks.size(); ++i) {
        adjacent += blocks[i] == blocks[i - 1] + 1 ? 1 : 0;
    }
    EXPECT_LE(adjacent, 1) << "blocks opened in a row lie side by side";
}

} // namespace
} // namespace ephemera

namespace ephemera {
namespace {

using namespace nat_test;

// The subscriber summary a worker builds for `ephemeractl top`: a walk in bounded steps over
// its subscriber records, ranking by ports and by refusals, with each one's block fill.
TEST(PortBlocks, SubscriberWalkSummarisesPortsRefusalsAndBlockFill) {
    Nat nat(blocks_config({1024, 65535}, 64, 2));
    ASSERT_EQ(open_flows(nat, kC, 20000, 100).size(), 100u);
    ASSERT_EQ(open_flows(nat, kC2, 20000, 3).size(), 3u);
    // C's two blocks hold 128 ports: 30 more flows, 2 of them refused.
    for (std::uint16_t i = 0; i < 30; ++i) {
        nat.send_out(udp_from(kC, static_cast<std::uint16_t>(21000 + i), kA1, 53));
    }
    SubscriberSummary sum;
    std::uint32_t cursor = 0;
    std::uint32_t steps = 0;
    while (!nat.translator().walk_subscribers(cursor, 64, sum)) {
        ++steps;
    }
    EXPECT_GT(steps, 1u); // a table of more than 64 records takes several steps
    EXPECT_EQ(sum.subscribers, 2u);
    ASSERT_EQ(sum.by_ports().size(), 2u);
    EXPECT_EQ(sum.by_ports()[0].subscriber, kC);
    EXPECT_EQ(sum.by_ports()[0].pool_address, kX);
    EXPECT_EQ(sum.by_ports()[0].ports[0], 128u);
    EXPECT_EQ(sum.by_ports()[0].blocks, 2u);
    EXPECT_EQ(sum.by_ports()[0].block_ports, 128u);
    EXPECT_EQ(sum.by_ports()[1].subscriber, kC2);
    ASSERT_EQ(sum.by_refusals().size(), 1u);
    EXPECT_EQ(sum.by_refusals()[0].subscriber, kC);
    EXPECT_EQ(sum.by_refusals()[0].refusals, 2u);
    EXPECT_EQ(sum.ports_histogram[SubscriberSummary::port_bucket(128)], 1u);
    EXPECT_EQ(sum.ports_histogram[SubscriberSummary::port_bucket(3)], 1u);
    EXPECT_EQ(sum.with_blocks, 2u);
    EXPECT_EQ(sum.fill_histogram[9], 1u); // C: 128 of 128
    EXPECT_EQ(sum.fill_histogram[0], 1u); // C2: 3 of 64
}

} // namespace
} // namespace ephemera
