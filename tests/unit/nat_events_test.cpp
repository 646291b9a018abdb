// NAT event records from the translation core (nat_events.hpp, event_log.hpp): what a worker
// hands the logging thread when a mapping is made or ends, a block is given, released or still
// held, and a new flow is refused. RFC 6888 REQ-12 (logging), RFC 8158 (the events), RFC 7422
// section 2 (why blocks cut log volume).
#include "event_ring.hpp"
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include <gtest/gtest.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <atomic>
#include <string>
#include <vector>

namespace ephemera {
namespace {

using namespace nat_test;
using test::EventRing;

constexpr std::uint64_t kWallMs = 1796464800123ULL; // 2026-12-05T10:00:00.123Z

std::uint32_t bit(NatEventKind k) {
    return 1u << static_cast<unsigned>(k);
}

Config logged(Config c, std::uint32_t events, bool destination = false) {
    c.logging.archive.path = "/nonexistent"; // a sink is on: the workers record
    c.logging.events = events;
    c.logging.destination = destination;
    c.limits.subscriber_mapping_rate = 0;
    return c;
}

const std::uint32_t kMappingEvents =
    bit(NatEventKind::mapping_created) | bit(NatEventKind::mapping_deleted);
const std::uint32_t kBlockEvents = bit(NatEventKind::block_allocated) |
                                   bit(NatEventKind::block_released) |
                                   bit(NatEventKind::block_interim);
const std::uint32_t kRefusalEvents =
    bit(NatEventKind::ports_exhausted) | bit(NatEventKind::quota_exceeded);

TEST(NatEvents, MappingCreatedAndDeletedCarryBothEndpointsAndTheWorkerClock) {
    EventRing ring;
    Nat nat(logged(make_config(), kMappingEvents));
    nat.translator().attach_event_ring(ring.get());
    nat.translator().set_time_ms(kWallMs);
    const auto out = nat.send_out(udp_from(kC, 40000, kA1, 53));
    ASSERT_TRUE(out);
    auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    const NatEvent& e = events[0];
    EXPECT_EQ(e.kind, NatEventKind::mapping_created);
    EXPECT_EQ(e.time_ms, kWallMs);
    EXPECT_EQ(e.proto, 17);
    EXPECT_EQ(Ipv4Addr{e.inside}, kC);
    EXPECT_EQ(e.inside_port, 40000);
    EXPECT_EQ(Ipv4Addr{e.external}, out->addr);
    EXPECT_EQ(e.external_port, out->port);
    EXPECT_EQ(e.remote, 0u) << "destinations are off by default";
    EXPECT_EQ(nat.counters().get(Counter::log_records), 1u);

    // A second flow of the same endpoint reuses the mapping (REQ-1): no record.
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40000, kA2, 53)));
    EXPECT_TRUE(ring.take().empty());

    nat.translator().set_time_ms(kWallMs + 301'000);
    expire_all(nat.translator(), kT0 + sec(301));
    events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, NatEventKind::mapping_deleted);
    EXPECT_EQ(events[0].time_ms, kWallMs + 301'000);
    EXPECT_EQ(events[0].external_port, out->port);
    EXPECT_EQ(events[0].inside_port, 40000);
}

TEST(NatEvents, DestinationOnlyWhenAskedFor) {
    EventRing ring;
    Nat nat(logged(make_config(), kMappingEvents, true));
    nat.translator().attach_event_ring(ring.get());
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40000, kA1, 53)));
    const auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(Ipv4Addr{events[0].remote}, kA1);
    EXPECT_EQ(events[0].remote_port, 53);
}

TEST(NatEvents, NothingIsRecordedWithoutASinkOrForKindsSwitchedOff) {
    EventRing ring;
    Config no_sink = make_config();
    no_sink.logging.events = kMappingEvents;
    Nat nat(no_sink);
    nat.translator().attach_event_ring(ring.get());
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40000, kA1, 53)));
    EXPECT_TRUE(ring.take().empty());
    // Switched on at run time, and only for blocks: dynamic mappings stay unrecorded.
    nat.reconfigure(logged(make_config(), kBlockEvents));
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40001, kA1, 53)));
    EXPECT_TRUE(ring.take().empty());
    nat.reconfigure(logged(make_config(), kMappingEvents));
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40002, kA1, 53)));
    EXPECT_EQ(ring.take().size(), 1u);
}

TEST(NatEvents, AFullRingCountsTheDropAndNeverBlocks) {
    EventRing ring(1024); // holds 1023
    Nat nat(logged(make_config(), kMappingEvents));
    nat.translator().attach_event_ring(ring.get());
    for (std::uint16_t i = 0; i < 1100; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(10000 + i), kA1, 53)));
    }
    EXPECT_EQ(nat.counters().get(Counter::log_records), 1023u);
    EXPECT_EQ(nat.counters().get(Counter::log_records_dropped), 77u);
    EXPECT_EQ(ring.take().size(), 1023u);
}

Config blocks_logged(std::uint32_t max_blocks = 8) {
    Config c = make_config({kX}, {1024, 65535});
    c.allocation = AllocationMode::blocks;
    c.blocks.block_size = 64;
    c.blocks.max_blocks = max_blocks;
    c.blocks.interim = 60;
    return logged(c, kBlockEvents | kMappingEvents | kRefusalEvents);
}

// RFC 6888 section 4: in blocks mode one record per block, not per mapping.
TEST(NatEvents, BlockAllocatedInterimAndReleasedNameTheSpan) {
    EventRing ring;
    Config config = blocks_logged();
    config.logging.events = kBlockEvents;
    Nat nat(config);
    nat.translator().attach_event_ring(ring.get());
    nat.translator().set_time_ms(kWallMs);
    std::vector<std::uint16_t> ports;
    for (std::uint16_t i = 0; i < 10; ++i) {
        const auto e = nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53));
        ASSERT_TRUE(e);
        ports.push_back(e->port);
    }
    auto events = ring.take();
    ASSERT_EQ(events.size(), 1u) << "ten mappings, one block, one record";
    const NatEvent b = events[0]; // a copy: `events` is taken again below
    EXPECT_EQ(b.kind, NatEventKind::block_allocated);
    EXPECT_EQ(Ipv4Addr{b.inside}, kC);
    EXPECT_EQ(Ipv4Addr{b.external}, kX);
    EXPECT_EQ(b.ports, 64);
    EXPECT_EQ(b.last_port - b.first_port, 63);
    EXPECT_EQ(b.first_port % 64, 0);
    for (std::uint16_t p : ports) {
        EXPECT_GE(p, b.first_port);
        EXPECT_LE(p, b.last_port);
    }

    // Held past the interim period: the block's record again, once per period.
    nat.translator().set_time_ms(kWallMs + 61'000);
    // 1008 granules on the address: one call with this budget walks all of them, some twice.
    nat.translator().log_interim(kT0 + sec(61), 2048);
    events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, NatEventKind::block_interim);
    EXPECT_EQ(events[0].first_port, b.first_port);
    EXPECT_EQ(events[0].time_ms, kWallMs + 61'000);

    expire_all(nat.translator(), kT0 + sec(400));
    events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, NatEventKind::block_released);
    EXPECT_EQ(events[0].first_port, b.first_port);
    EXPECT_EQ(events[0].last_port, b.last_port);
}

TEST(NatEvents, WithSeveralWorkersABlockRecordSaysWhoseShareItIs) {
    EventRing ring;
    Config config = blocks_logged();
    config.logging.events = kBlockEvents;
    Nat nat(config, 2, 0);
    nat.translator().attach_event_ring(ring.get());
    const Ipv4Addr who = nat.owned_subscriber(0);
    const auto e = nat.send_out(udp_from(who, 20000, kA1, 53));
    ASSERT_TRUE(e);
    const auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].value, 2u) << "worker count: the span holds this worker's ports only";
    EXPECT_EQ(events[0].worker, 0);
    EXPECT_EQ(events[0].ports, 64);
    EXPECT_GT(events[0].last_port - events[0].first_port, 63) << "strided over two shares";
    EXPECT_GE(e->port, events[0].first_port);
    EXPECT_LE(e->port, events[0].last_port);
}

// RFC 8158 natQuotaExceededEvent: a subscriber past max_blocks; once a second at most.
TEST(NatEvents, RefusalsAreRecordedAtMostOncePerSecondPerReason) {
    EventRing ring;
    Nat nat(blocks_logged(1));
    nat.translator().attach_event_ring(ring.get());
    nat.translator().set_time_ms(kWallMs);
    for (std::uint16_t i = 0; i < 64; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    ring.take();
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30000, kA1, 53)));
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30001, kA1, 53)));
    auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, NatEventKind::quota_exceeded);
    EXPECT_EQ(events[0].quota, NatQuota::max_entries_per_user);
    EXPECT_EQ(events[0].value, 1u) << "the limit: max_blocks";
    EXPECT_EQ(Ipv4Addr{events[0].inside}, kC);
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_blocks), 2u);
    nat.translator().set_time_ms(kWallMs + 1000);
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30002, kA1, 53)));
    EXPECT_EQ(ring.take().size(), 1u);
}

TEST(NatEvents, PortsExhaustedNamesThePoolAddress) {
    EventRing ring;
    Config c = logged(make_config({kX}, {1024, 1087}), kRefusalEvents);
    c.limits.subscriber_ports_udp = 65535;
    c.timeouts.port_hold_down = 0;
    Nat nat(c);
    nat.translator().attach_event_ring(ring.get());
    std::uint32_t made = 0;
    for (std::uint16_t i = 0; i < 64; ++i) {
        made += nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)) ? 1 : 0;
    }
    EXPECT_EQ(made, 64u);
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30000, kA1, 53)));
    const auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, NatEventKind::ports_exhausted);
    EXPECT_EQ(Ipv4Addr{events[0].external}, kX);
    EXPECT_EQ(events[0].proto, 17);
}

} // namespace
} // namespace ephemera

namespace ephemera {
namespace {

using namespace nat_test;
using test::EventRing;

// RFC 8158 natThresholdEvent 3: a pool address's ports (this worker's share) crossed the
// watermark. Reported once, and again only after use fell 5 points under it.
TEST(NatEvents, AddressPortWatermarkIsReportedOnceWithHysteresis) {
    EventRing ring;
    Config c = logged(make_config({kX}, {1024, 1123}), bit(NatEventKind::threshold_reached));
    c.logging.address_ports_threshold = 50;
    c.limits.subscriber_ports_udp = 65535;
    c.timeouts.port_hold_down = 0;
    Nat nat(c);
    nat.translator().attach_event_ring(ring.get());
    // 100 ports: the 50th mapping crosses 50 %.
    for (std::uint16_t i = 0; i < 49; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    EXPECT_TRUE(ring.take().empty());
    ASSERT_TRUE(nat.send_out(udp_from(kC, 20049, kA1, 53)));
    auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, NatEventKind::threshold_reached);
    EXPECT_EQ(events[0].threshold, NatThreshold::address_port_high);
    EXPECT_EQ(Ipv4Addr{events[0].external}, kX);
    EXPECT_EQ(events[0].proto, 17);
    EXPECT_EQ(events[0].value, 50u);
    for (std::uint16_t i = 50; i < 60; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    EXPECT_TRUE(ring.take().empty()) << "still above: no second report";
    // TCP is counted apart: its ports are another set.
    FrameSpec syn = test::tcp_spec(kC, 20000, kA1, 80);
    ASSERT_TRUE(nat.send_out(syn));
    EXPECT_TRUE(ring.take().empty());
}

// natThresholdEvent 4: a subscriber's ports of one protocol reached the watermark of its limit
// (RFC 6888 REQ-4's per-subscriber limit, seen coming before it refuses).
TEST(NatEvents, SubscriberPortWatermarkNamesTheSubscriber) {
    EventRing ring;
    Config c = logged(make_config(), bit(NatEventKind::threshold_reached));
    c.limits.subscriber_ports_udp = 10;
    c.logging.subscriber_ports_threshold = 80;
    c.logging.address_ports_threshold = 0;
    Nat nat(c);
    nat.translator().attach_event_ring(ring.get());
    for (std::uint16_t i = 0; i < 7; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    EXPECT_TRUE(ring.take().empty());
    ASSERT_TRUE(nat.send_out(udp_from(kC, 20007, kA1, 53))); // 8 of 10
    auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].threshold, NatThreshold::address_port_per_user_high);
    EXPECT_EQ(Ipv4Addr{events[0].inside}, kC);
    EXPECT_EQ(Ipv4Addr{events[0].external}, kX);
    EXPECT_EQ(events[0].proto, 17);
    EXPECT_EQ(events[0].value, 80u);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 20008, kA1, 53)));
    EXPECT_TRUE(ring.take().empty()) << "reported once";
    // Another subscriber has its own watermark.
    for (std::uint16_t i = 0; i < 8; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC2, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(Ipv4Addr{events[0].inside}, kC2);
}

TEST(NatEvents, SessionTableWatermark) {
    EventRing ring;
    Config c = logged(make_config({kX}, {49152, 65535}, FilteringMode::endpoint_independent, 1024),
                      bit(NatEventKind::threshold_reached));
    c.logging.sessions_threshold = 10;
    Nat nat(c);
    nat.translator().attach_event_ring(ring.get());
    const std::uint32_t crossing = (nat.translator().max_sessions() * 10 + 99) / 100; // 10 %
    for (std::uint32_t i = 0; i + 1 < crossing; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    EXPECT_TRUE(ring.take().empty());
    ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + crossing), kA1, 53)));
    const auto events = ring.take();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].threshold, NatThreshold::global_mapping_high);
    EXPECT_EQ(events[0].value, 10u);
}

} // namespace
} // namespace ephemera
