// Session lifecycle with a clock the test drives: expiry at the exact tick, refresh rules,
// the TCP state machine, port hold-down, per-subscriber limits and the ICMP 3/1 that tells a
// subscriber it was refused.
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/icmp_error.hpp"
#include "ephemera/tcp_state.hpp"
#include "ephemera/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace ephemera {
namespace {

using namespace nat_test;

FrameSpec tcp_out(std::uint8_t flags, std::uint16_t sport = 40000) {
    FrameSpec s = inside(test::tcp_spec(kC, sport, kA1, 443));
    s.tcp_flags = flags;
    return s;
}
FrameSpec tcp_in(Endpoint ext, std::uint8_t flags) {
    FrameSpec s = from_outside(Protocol::tcp, {kA1, 443}, ext);
    s.tcp_flags = flags;
    return s;
}

// The wheel hands due ids through a software pipeline: every id gets each prefetch stage, in
// order, before on_due; on_due sees the ids in the order they came due; no more than the
// budget is taken off the wheel, and the rest stay scheduled for the next call. The counts
// cross the pipeline's edges: fewer ids than its depth (kLag = 12), exactly it, one more, and
// more than one chunk (64) at a time.
TEST(TimerWheelPipeline, EveryIdGetsEachStageInOrderBeforeOnDueAndTheBudgetHolds) {
    for (const std::uint32_t due_count : {0u, 1u, 5u, 12u, 13u, 63u, 64u, 65u, 76u, 200u}) {
        SCOPED_TRACE(testing::Message() << due_count << " ids due");
        TimerWheel wheel(1000, 0);
        for (std::uint32_t id = 0; id < due_count; ++id) {
            wheel.schedule(id, 1 + id % 3); // three ticks' worth, in id order within a tick
        }
        std::vector<std::uint32_t> expected;
        for (Tick t = 1; t <= 3; ++t) {
            for (std::uint32_t id = due_count; id-- > 0;) { // a slot's list is newest first
                if (1 + id % 3 == t) {
                    expected.push_back(id);
                }
            }
        }
        std::vector<std::uint32_t> stage_seen(1000, 0);
        std::vector<std::uint32_t> order;
        const std::uint32_t budget = 150;
        const auto prefetch = [&](std::uint32_t id, std::uint32_t stage) {
            ASSERT_EQ(stage_seen[id], stage) << "id " << id;
            stage_seen[id] = stage + 1;
        };
        const auto on_due = [&](std::uint32_t id) {
            ASSERT_EQ(stage_seen[id], TimerWheel::kPrefetchStages) << "id " << id;
            order.push_back(id);
        };
        const std::uint32_t first = wheel.advance(10, budget, prefetch, on_due);
        EXPECT_EQ(first, std::min(due_count, budget));
        EXPECT_EQ(wheel.scheduled(), due_count - first);
        const std::uint32_t second = wheel.advance(10, budget, prefetch, on_due);
        EXPECT_EQ(first + second, due_count);
        EXPECT_EQ(order, expected);
        EXPECT_EQ(wheel.scheduled(), 0u);
    }
}

// RFC 4787 REQ-5: the UDP session lives exactly its timeout after its last outbound packet.
TEST(Lifecycle, UdpExpiresAtTheExactTick) {
    Config config = make_config();
    config.timeouts.udp = 300;
    Nat nat(config);
    const auto ext = nat.send_out(udp_from(kC, 40000, kA1, 53), kT0);
    ASSERT_TRUE(ext.has_value());
    const Tick due = kT0 + sec(300);
    expire_all(nat.translator(), due - 1);
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
    EXPECT_TRUE(nat.send_in(reply_to(udp_from(kC, 40000, kA1, 53), *ext), due - 1));
    expire_all(nat.translator(), due);
    EXPECT_EQ(nat.translator().live_sessions(), 0u);
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.counters().get(Counter::expired_udp), 1u);
    EXPECT_FALSE(nat.send_in(reply_to(udp_from(kC, 40000, kA1, 53), *ext), due));
}

// RFC 4787 REQ-8 (address-and-port-dependent filtering) through a mapping whose latest
// session ended first: the packet path looks first at the session a mapping names as its
// latest. Here that one has expired and its table position gone to another subscriber's flow,
// while an older session of the mapping lives on: the older remote is still admitted, the
// ended one refused, and the remote's next packet is admitted too.
TEST(Lifecycle, ApdfAdmitsTheOlderSessionAfterTheMappingsLatestEnded) {
    Config config = make_config({kX}, {49152, 65535}, FilteringMode::address_port_dependent);
    config.timeouts.udp = 120;
    Nat nat(config);
    const FrameSpec to_a1 = udp_from(kC, 40000, kA1, 53);
    const FrameSpec to_a2 = udp_from(kC, 40000, kA2, 53);
    const auto ext = nat.send_out(to_a1, kT0);
    ASSERT_TRUE(ext.has_value());
    ASSERT_EQ(nat.send_out(to_a2, kT0 + sec(10)), ext); // the mapping's latest session
    ASSERT_TRUE(nat.send_out(to_a1, kT0 + sec(60)));    // A1's outlives it: due at 180 s
    expire_all(nat.translator(), kT0 + sec(130));       // A2's ends (due at 130 s)
    ASSERT_EQ(nat.translator().live_sessions(), 1u);
    ASSERT_EQ(nat.translator().live_mappings(), 1u);
    // Another subscriber's new flow takes the freed position (positions are reused last
    // freed first).
    ASSERT_TRUE(nat.send_out(udp_from(kC2, 40000, kA2, 53), kT0 + sec(131)));

    const auto from_a1 = nat.send_in(reply_to(to_a1, *ext), kT0 + sec(132));
    ASSERT_TRUE(from_a1.has_value());
    EXPECT_EQ(*from_a1, (Endpoint{kC, 40000}));
    EXPECT_FALSE(nat.send_in(reply_to(to_a2, *ext), kT0 + sec(133)).has_value());
    EXPECT_TRUE(nat.send_in(reply_to(to_a1, *ext), kT0 + sec(134)).has_value());
    EXPECT_EQ(nat.counters().get(Counter::out2in_translated), 2u);
    EXPECT_EQ(nat.counters().get(Counter::drop_filtered), 1u);
}

// RFC 4787 REQ-6: outbound packets refresh; inbound do not unless configured.
TEST(Lifecycle, OutboundRefreshesInboundOnlyWhenConfigured) {
    for (const bool inbound_refresh : {false, true}) {
        Config config = make_config();
        config.timeouts.udp = 120;
        config.timeouts.inbound_refresh = inbound_refresh;
        Nat nat(config);
        const FrameSpec out = udp_from(kC, 40000, kA1, 53);
        const auto ext = nat.send_out(out, kT0);
        ASSERT_TRUE(ext.has_value());
        ASSERT_TRUE(nat.send_out(out, kT0 + sec(100))); // refresh: due at 100 + 120 s
        ASSERT_TRUE(nat.send_in(reply_to(out, *ext), kT0 + sec(200)));
        expire_all(nat.translator(), kT0 + sec(220) - 1);
        EXPECT_EQ(nat.translator().live_sessions(), 1u) << inbound_refresh;
        expire_all(nat.translator(), kT0 + sec(220));
        EXPECT_EQ(nat.translator().live_sessions(), inbound_refresh ? 1u : 0u);
        expire_all(nat.translator(), kT0 + sec(320));
        EXPECT_EQ(nat.translator().live_sessions(), 0u);
    }
}

// RFC 7857 section 7: an inbound packet that creates no session refreshes nothing, even
// with inbound refresh on and endpoint-independent filtering letting it through.
TEST(Lifecycle, InboundWithoutSessionRefreshesNothing) {
    Config config = make_config();
    config.timeouts.udp = 120;
    config.timeouts.inbound_refresh = true;
    Nat nat(config);
    const auto ext = nat.send_out(udp_from(kC, 40000, kA1, 53), kT0);
    ASSERT_TRUE(ext.has_value());
    EXPECT_TRUE(nat.send_in(from_outside(Protocol::udp, {kA2, 9999}, *ext), kT0 + sec(100)));
    expire_all(nat.translator(), kT0 + sec(120));
    EXPECT_EQ(nat.translator().live_sessions(), 0u);
}

// RFC 7857 section 2 / RFC 5382 REQ-5: a SYN seen one way only is transitory (240 s); a SYN
// each way is established (7440 s); FIN each way or RST brings it back to transitory.
TEST(Lifecycle, TcpStatesChooseTheTimeout) {
    Config config = make_config();
    struct Case {
        const char* name;
        std::vector<std::pair<bool, std::uint8_t>> packets; // (outbound, flags)
        std::uint32_t lives;                                // seconds after the last packet
        Counter cause;
    };
    using namespace tcp_flag;
    const std::vector<Case> cases = {
        {"syn only", {{true, syn}}, 240, Counter::expired_tcp_transitory},
        {"handshake",
         {{true, syn}, {false, syn | ack}, {true, ack}},
         7440,
         Counter::expired_tcp_established},
        {"simultaneous open (RFC 5382 REQ-2)",
         {{true, syn}, {false, syn}},
         7440,
         Counter::expired_tcp_established},
        {"fin both ways",
         {{true, syn}, {false, syn | ack}, {true, fin | ack}, {false, fin | ack}},
         240,
         Counter::expired_tcp_transitory},
        {"fin one way stays established",
         {{true, syn}, {false, syn | ack}, {true, fin | ack}},
         7440,
         Counter::expired_tcp_established},
        {"rst out",
         {{true, syn}, {false, syn | ack}, {true, rst}},
         240,
         Counter::expired_tcp_transitory},
        {"rst in",
         {{true, syn}, {false, syn | ack}, {false, rst}},
         240,
         Counter::expired_tcp_transitory},
        {"traffic after rst",
         {{true, syn}, {false, syn | ack}, {false, rst}, {true, ack}},
         7440,
         Counter::expired_tcp_established},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        Nat nat(config);
        std::optional<Endpoint> ext;
        Tick now = kT0;
        for (const auto& [outbound, flags] : c.packets) {
            now += sec(1);
            if (outbound) {
                ext = nat.send_out(tcp_out(flags), now);
                ASSERT_TRUE(ext.has_value());
            } else {
                ASSERT_TRUE(nat.send_in(tcp_in(*ext, flags), now).has_value());
            }
        }
        // Outbound packets refresh; the timeout counts from the last outbound one.
        Tick last_out = kT0;
        for (std::size_t i = 0; i < c.packets.size(); ++i) {
            if (c.packets[i].first) {
                last_out = kT0 + sec(static_cast<std::uint32_t>(i + 1));
            }
        }
        expire_all(nat.translator(), last_out + sec(c.lives) - 1);
        EXPECT_EQ(nat.translator().live_sessions(), 1u);
        expire_all(nat.translator(), last_out + sec(c.lives));
        EXPECT_EQ(nat.translator().live_sessions(), 0u);
        EXPECT_EQ(nat.counters().get(c.cause), 1u);
    }
}

// RFC 6888 REQ-8: a freed port is not handed out for the hold-down time, even when it is the
// last port and a new flow has to be refused for want of it.
TEST(Lifecycle, PortHoldDownUnderExhaustion) {
    Config config = make_config({kX}, {40000, 40063}); // 64 ports
    config.timeouts.udp = 120;
    config.timeouts.port_hold_down = 120;
    config.icmp.unreachable = false;
    Nat nat(config);
    std::vector<Endpoint> ext;
    for (std::uint16_t i = 0; i < 64; ++i) {
        const auto e = nat.send_out(udp_from(kC, static_cast<std::uint16_t>(30000 + i), kA1, 53),
                                    i == 0 ? kT0 : kT0 + sec(60));
        ASSERT_TRUE(e.has_value()) << i;
        ext.push_back(*e);
    }
    // The first mapping expires at T0+120 s; its port is held until T0+240 s.
    const Tick freed = kT0 + sec(120);
    expire_all(nat.translator(), freed);
    EXPECT_EQ(nat.translator().live_mappings(), 63u);
    EXPECT_EQ(nat.translator().ports_held(), 1u);
    const FrameSpec newcomer = udp_from(kC2, 31000, kA1, 53);
    EXPECT_FALSE(nat.send_out(newcomer, freed + 1));
    expire_all(nat.translator(), freed + sec(120) - 1);
    EXPECT_FALSE(nat.send_out(newcomer, freed + sec(120) - 1));
    EXPECT_EQ(nat.counters().get(Counter::drop_ports_exhausted), 2u);
    // Once the hold-down is over the port comes back, to the next one who asks. (The other
    // 63 mappings expired at T0+180 s and are held too by now: count only the first.)
    expire_all(nat.translator(), freed + sec(120));
    const auto got = nat.send_out(newcomer, freed + sec(120));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->port, ext[0].port);
    EXPECT_EQ(nat.counters().get(Counter::ports_held), 64u);
    EXPECT_EQ(nat.counters().get(Counter::ports_returned), 1u);
}

// Expiry work is bounded per call, however many sessions come due at once.
TEST(Lifecycle, ExpiryWorkIsBoundedPerCall) {
    Config config = make_config();
    config.timeouts.udp = 120;
    config.timeouts.port_hold_down = 0;
    Nat nat(config);
    for (std::uint16_t i = 0; i < 100; ++i) {
        ASSERT_TRUE(
            nat.send_out(udp_from(kC, static_cast<std::uint16_t>(50000 + 2 * i), kA1, 53), kT0));
    }
    const Tick due = kT0 + sec(120);
    EXPECT_EQ(nat.translator().expire(due, 10), 10u);
    EXPECT_EQ(nat.translator().live_sessions(), 90u);
    EXPECT_EQ(nat.translator().expire(due, 1000), 90u);
    EXPECT_EQ(nat.translator().live_sessions(), 0u);
    EXPECT_EQ(nat.translator().expire(due, 1000), 0u);
}

// RFC 6888 REQ-4: external ports per subscriber and protocol are limited; other protocols
// and other subscribers are not affected; nothing existing is removed.
TEST(Lifecycle, SubscriberPortLimitPerProtocol) {
    Config config = make_config();
    config.limits.subscriber_ports_udp = 3;
    config.icmp.unreachable = false;
    Nat nat(config);
    for (std::uint16_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(50000 + i), kA1, 53)));
    }
    EXPECT_FALSE(nat.send_out(udp_from(kC, 50003, kA1, 53)));
    EXPECT_TRUE(nat.send_out(udp_from(kC, 50000, kA2, 53))); // a session on an existing mapping
    EXPECT_TRUE(nat.send_out(tcp_out(tcp_flag::syn)));
    EXPECT_TRUE(nat.send_out(udp_from(kC2, 50003, kA1, 53)));
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_ports), 1u);
    EXPECT_EQ(nat.translator().live_mappings(), 5u);
}

// RFC 6888 REQ-5: sessions per subscriber are limited.
TEST(Lifecycle, SubscriberSessionLimit) {
    Config config = make_config();
    config.limits.subscriber_sessions = 2;
    config.icmp.unreachable = false;
    Nat nat(config);
    EXPECT_TRUE(nat.send_out(udp_from(kC, 50000, kA1, 53)));
    EXPECT_TRUE(nat.send_out(udp_from(kC, 50000, kA2, 53)));
    EXPECT_FALSE(nat.send_out(udp_from(kC, 50000, kA1, 54)));
    EXPECT_FALSE(nat.send_out(udp_from(kC, 50002, kA1, 53)));
    EXPECT_TRUE(nat.send_out(udp_from(kC2, 50000, kA1, 53)));
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_sessions), 2u);
}

// RFC 6888 REQ-4 (RECOMMENDED rate limit): a token bucket per subscriber, refilled over time.
TEST(Lifecycle, SubscriberMappingRateLimit) {
    Config config = make_config();
    config.limits.subscriber_mapping_rate = 2; // per second
    config.limits.subscriber_mapping_burst = 3;
    config.icmp.unreachable = false;
    Nat nat(config);
    std::uint16_t port = 50000;
    int granted = 0;
    for (int i = 0; i < 5; ++i) {
        granted += nat.send_out(udp_from(kC, port++, kA1, 53), kT0).has_value();
    }
    EXPECT_EQ(granted, 3);
    EXPECT_FALSE(nat.send_out(udp_from(kC, port++, kA1, 53), kT0 + sec(1) / 2 - 1));
    EXPECT_TRUE(nat.send_out(udp_from(kC, port++, kA1, 53), kT0 + sec(1) / 2));
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_rate), 3u);
}

// RFC 6888 REQ-11: a refused subscriber gets ICMP 3/1 from the gateway, quoting its packet,
// with every checksum right; at most icmp.unreachable_rate of them per second.
TEST(Lifecycle, RefusalAnswersWithIcmpUnreachable) {
    Config config = make_config();
    config.inside.gateway = Ipv4Addr{100, 64, 0, 1};
    config.limits.subscriber_ports_udp = 1;
    config.icmp.unreachable_rate = 2;
    Nat nat(config);
    nat.set_headroom_for_replies(1500);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 50000, kA1, 53)));
    const Frame original = test::build_frame(udp_from(kC, 50002, kA1, 53));
    Frame f = original;
    ASSERT_EQ(nat.in2out(f), Verdict::reply);
    EXPECT_EQ(test::mac_dst(f), kCMac);
    EXPECT_EQ(test::mac_src(f), kInsidePortMac);
    EXPECT_EQ(test::ip_src(f), config.inside.gateway);
    EXPECT_EQ(test::ip_dst(f), kC);
    EXPECT_EQ(test::ip_proto(f), 1);
    EXPECT_EQ(test::icmp_type(f), kIcmpDestUnreachable);
    EXPECT_EQ(f[test::l4_of(f) + 1], kIcmpHostUnreachable);
    EXPECT_TRUE(test::checksums_verify(f));
    // The quote is the original IP packet, unchanged.
    const std::size_t quote_at = test::l4_of(f) + 8;
    const std::size_t ip_len = original.size() - 14;
    ASSERT_GE(f.size(), quote_at + ip_len);
    EXPECT_TRUE(std::equal(original.begin() + 14, original.end(), f.begin() + quote_at));
    // The rate: two per second, then silence until the bucket refills.
    Frame again = original;
    EXPECT_EQ(nat.in2out(again), Verdict::reply);
    again = original;
    EXPECT_EQ(nat.in2out(again), Verdict::drop);
    EXPECT_EQ(again, original);
    EXPECT_EQ(nat.counters().get(Counter::icmp_unreachable_sent), 2u);
    EXPECT_EQ(nat.counters().get(Counter::icmp_unreachable_rate_limited), 1u);
    again = original;
    EXPECT_EQ(nat.in2out(again, kT0 + sec(1)), Verdict::reply);
}

// A long packet's quote stops where the ICMP datagram reaches 576 bytes (RFC 1812 4.3.2.3).
TEST(Lifecycle, IcmpErrorQuoteIsBoundedTo576Bytes) {
    Config config = make_config();
    config.limits.subscriber_ports_udp = 1;
    Nat nat(config);
    nat.set_headroom_for_replies(1500);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 50000, kA1, 53)));
    FrameSpec big = udp_from(kC, 50002, kA1, 53);
    big.payload.assign(1200, 0x5a);
    Frame f = test::build_frame(big);
    ASSERT_EQ(nat.in2out(f), Verdict::reply);
    EXPECT_EQ(f.size(), 14u + kIcmpErrorMaxIpLen);
    EXPECT_EQ(test::get16(f, 16), kIcmpErrorMaxIpLen); // IP total length
    EXPECT_TRUE(test::checksums_verify(f));
}

} // namespace
} // namespace ephemera

namespace ephemera {
namespace {

using namespace nat_test;

// ---- live reconfiguration -------------------------------------------------------------------

// A shrunk range drains: the mapping on a port leaving the range keeps working both ways, new
// mappings come only from the new range, and the old port is not handed out again after its
// mapping expires.
TEST(Reconfigure, ShrinkingTheRangeDrainsItsPorts) {
    Config config = make_config({kX}, {49152, 65535});
    config.timeouts.port_hold_down = 0;
    Nat nat(config);
    const FrameSpec old_flow = udp_from(kC, 50000, kA1, 53);
    const auto ext = nat.send_out(old_flow);
    ASSERT_TRUE(ext.has_value());
    ASSERT_EQ(ext->port, 50000); // preserved

    Config shrunk = config;
    shrunk.port_range = {40000, 40999};
    nat.reconfigure(shrunk);
    EXPECT_TRUE(nat.send_out(old_flow));
    EXPECT_EQ(nat.send_in(reply_to(old_flow, *ext)), (Endpoint{kC, 50000}));
    for (std::uint16_t p = 0; p < 50; ++p) {
        const auto e = nat.send_out(udp_from(kC2, static_cast<std::uint16_t>(30000 + p), kA1, 53));
        ASSERT_TRUE(e.has_value());
        EXPECT_TRUE(e->port >= 40000 && e->port <= 40999) << e->port;
    }
    EXPECT_EQ(nat.translator().ports().usable_ports(), 1000u);
    expire_all(nat.translator(), 16 + sec(config.timeouts.udp));
    EXPECT_FALSE(nat.translator().ports().is_free(0, Protocol::udp, 50000));
    // Back to the old range: the port is free again.
    nat.reconfigure(config);
    EXPECT_TRUE(nat.translator().ports().is_free(0, Protocol::udp, 50000));
}

// A removed pool address drains: its mappings keep working, nothing new is made there, and
// subscribers anchored to it move to an address still in the pool for their next mapping.
TEST(Reconfigure, RemovedPoolAddressDrains) {
    const Ipv4Addr x2{kX.value() + 1};
    Config config = make_config({kX, x2});
    Nat nat(config);
    const FrameSpec first = udp_from(kC, 50000, kA1, 53);
    const auto ext = nat.send_out(first);
    ASSERT_TRUE(ext.has_value());

    Config smaller = config;
    smaller.pool = {ext->addr == kX ? x2 : kX};
    nat.reconfigure(smaller);
    EXPECT_TRUE(nat.translator().is_pool_address(ext->addr)); // return traffic still arrives
    EXPECT_EQ(nat.send_in(reply_to(first, *ext)), (Endpoint{kC, 50000}));
    EXPECT_EQ(nat.send_out(first), ext); // the existing mapping is kept
    const auto next = nat.send_out(udp_from(kC, 50002, kA1, 53));
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->addr, smaller.pool[0]);
    for (std::uint32_t i = 0; i < 20; ++i) {
        const auto e = nat.send_out(
            udp_from(Ipv4Addr{(100u << 24) | (64u << 16) | (1u << 8) | i}, 50000, kA1, 53));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->addr, smaller.pool[0]);
    }
    // Added back, it is the same address with the same index, open for mappings again.
    nat.reconfigure(config);
    EXPECT_TRUE(nat.translator().is_active(nat.translator().pool().find(ext->addr)));
    EXPECT_EQ(nat.translator().pool().size(), 2u);
}

TEST(Reconfigure, AddedPoolAddressServes) {
    Config config = make_config({kX});
    Nat nat(config);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 50000, kA1, 53)));
    const Ipv4Addr added{198, 18, 7, 7};
    Config bigger = config;
    bigger.pool.push_back(added);
    nat.reconfigure(bigger);
    ASSERT_TRUE(nat.translator().is_pool_address(added));
    const std::uint16_t index = nat.translator().pool().find(added);
    EXPECT_EQ(nat.translator().ports().free_ports(index, Protocol::udp),
              nat.translator().ports().usable_ports());
    std::set<Ipv4Addr> used;
    for (std::uint32_t i = 0; i < 64; ++i) {
        const auto e = nat.send_out(
            udp_from(Ipv4Addr{(100u << 24) | (64u << 16) | (2u << 8) | i}, 50000, kA1, 53));
        ASSERT_TRUE(e.has_value());
        used.insert(e->addr);
    }
    EXPECT_TRUE(used.count(added)) << "new subscribers are anchored to the new address too";
    // Replies to a mapping on the new address come back.
    const FrameSpec on_added = [&] {
        for (std::uint32_t i = 0;; ++i) {
            const FrameSpec s =
                udp_from(Ipv4Addr{(100u << 24) | (64u << 16) | (3u << 8) | i}, 50000, kA1, 53);
            const auto e = nat.send_out(s);
            if (e && e->addr == added) {
                return s;
            }
        }
    }();
    const auto ext = nat.send_out(on_added);
    EXPECT_EQ(nat.send_in(reply_to(on_added, *ext)), (Endpoint{on_added.src, 50000}));
}

// A shorter timeout applies to the sessions that already exist (they are rescheduled).
TEST(Reconfigure, ShorterTimeoutReachesExistingSessions) {
    Config config = make_config();
    config.timeouts.udp = 600;
    Nat nat(config);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 50000, kA1, 53), kT0));
    Config shorter = config;
    shorter.timeouts.udp = 120;
    nat.reconfigure(shorter);
    EXPECT_TRUE(nat.translator().rescanning());
    expire_all(nat.translator(), kT0 + sec(120) - 1);
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
    expire_all(nat.translator(), kT0 + sec(120));
    EXPECT_EQ(nat.translator().live_sessions(), 0u);
    EXPECT_FALSE(nat.translator().rescanning());
}

// Switching to address-dependent filtering counts the permissions of existing sessions, so
// their remotes keep reaching them (RFC 4787 REQ-8) and others are refused.
TEST(Reconfigure, SwitchToAddressDependentFilteringKeepsExistingPeers) {
    Config config = make_config();
    Nat nat(config);
    const FrameSpec out = udp_from(kC, 50000, kA1, 53);
    const auto ext = nat.send_out(out);
    ASSERT_TRUE(ext.has_value());
    Config adf = config;
    adf.filtering = FilteringMode::address_dependent;
    nat.reconfigure(adf);
    // Until every existing session's permission is counted, the old mode stays in force.
    EXPECT_EQ(nat.translator().filtering(), FilteringMode::endpoint_independent);
    EXPECT_TRUE(nat.send_in(from_outside(Protocol::udp, {kA2, 53}, *ext)));
    expire_all(nat.translator(), kT0);
    EXPECT_EQ(nat.translator().filtering(), FilteringMode::address_dependent);
    EXPECT_TRUE(nat.send_in(from_outside(Protocol::udp, {kA1, 9999}, *ext)));
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA2, 53}, *ext)));
    // And back: endpoint-independent admits everyone again.
    nat.reconfigure(config);
    EXPECT_TRUE(nat.send_in(from_outside(Protocol::udp, {kA2, 53}, *ext)));
}

} // namespace
} // namespace ephemera
