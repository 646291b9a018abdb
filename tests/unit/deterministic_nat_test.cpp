// Deterministic NAT (RFC 7422) through the translator: every mapping of a subscriber leaves from
// the pool address and within the port run that the formula gives it, reverse() names the
// subscriber of every port a server saw, and the owner of a port is its subscriber's worker.
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/deterministic.hpp"

#include <gtest/gtest.h>

#include <set>

namespace ephemera {
namespace {

using namespace nat_test;

// 100.64.0.0/22 (1024 subscribers) over 4 addresses, ports 1024-65535: 256 subscribers per
// address, 252 ports each.
Config det_config() {
    Config c = make_config(pool_of(4), {1024, 65535});
    c.allocation = AllocationMode::deterministic;
    c.deterministic.prefix = Ipv4Addr{100, 64, 0, 0};
    c.deterministic.prefix_len = 22;
    c.deterministic.min_ports = 1;
    c.limits.subscriber_mapping_rate = 0;
    c.icmp.unreachable = false;
    return c;
}

TEST(DeterministicNat, Rfc7422MappingsLieInTheSubscribersRun) {
    const Config config = det_config();
    const DeterministicMap det(config);
    ASSERT_EQ(det.ports_per_subscriber(), 252u);
    Nat nat(config);
    for (const Ipv4Addr who : {kC, kC2, Ipv4Addr{100, 64, 3, 255}}) {
        const auto range = det.forward(who);
        ASSERT_TRUE(range.has_value());
        std::set<std::uint16_t> ports;
        for (std::uint16_t i = 0; i < 40; ++i) {
            const auto e =
                nat.send_out(udp_from(who, static_cast<std::uint16_t>(30000 + i), kA1, 53));
            ASSERT_TRUE(e.has_value()) << who.to_string() << " flow " << i;
            EXPECT_EQ(e->addr, range->pool_address);
            EXPECT_TRUE(range->ports.contains(e->port)) << e->port;
            EXPECT_EQ(det.reverse(e->addr, e->port), who);
            ports.insert(e->port);
        }
        EXPECT_EQ(ports.size(), 40u);
    }
}

// The run is the subscriber's whole allowance: the 253rd flow is refused, and nobody else's
// run is touched.
TEST(DeterministicNat, RunExhaustedIsRefused) {
    Nat nat(det_config());
    for (std::uint16_t i = 0; i < 252; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)))
            << i;
    }
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30000, kA1, 53)));
    EXPECT_EQ(nat.counters().get(Counter::drop_ports_exhausted), 1u);
    EXPECT_TRUE(nat.send_out(udp_from(kC2, 30000, kA1, 53)));
}

TEST(DeterministicNat, SubscriberOutsideThePrefixIsRefused) {
    Nat nat(det_config());
    FrameSpec s = udp_from(kC, 30000, kA1, 53);
    s.src = Ipv4Addr{100, 65, 0, 1};
    EXPECT_FALSE(nat.send_out(s));
    EXPECT_EQ(nat.counters().get(Counter::drop_not_deterministic), 1u);
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
}

// The port returns at once when its mapping ends: only its subscriber can take it again, so
// there is nothing to hold down (RFC 6888 REQ-8's reason does not arise).
TEST(DeterministicNat, PortsReturnAtOnceToTheirSubscriber) {
    Config config = det_config();
    config.timeouts.udp = 120;
    config.timeouts.port_hold_down = 120;
    Nat nat(config);
    for (std::uint16_t i = 0; i < 252; ++i) {
        ASSERT_TRUE(nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53)));
    }
    while (nat.translator().expire(kT0 + sec(120), 1000) != 0) {
    }
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.translator().ports_held(), 0u);
    EXPECT_TRUE(nat.send_out(udp_from(kC, 40000, kA1, 53), kT0 + sec(121)));
}

TEST(DeterministicNat, RepliesReachTheSubscriberAndStrangersDoNot) {
    Nat nat(det_config());
    const FrameSpec out = udp_from(kC, 30000, kA1, 53);
    const auto ext = nat.send_out(out);
    ASSERT_TRUE(ext.has_value());
    const auto delivered = nat.send_in(reply_to(out, *ext));
    ASSERT_TRUE(delivered.has_value());
    EXPECT_EQ(*delivered, (Endpoint{kC, 30000}));
    // Another port of the same run, with no mapping on it.
    const std::uint16_t other = ext->port == 1024 + 10 * 252 ? ext->port + 2 : 1024 + 10 * 252;
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 53}, {ext->addr, other})));
    EXPECT_EQ(nat.counters().get(Counter::drop_no_mapping), 1u);
}

// With several workers the owner of a port is the worker of the subscriber that holds it, so
// a worker allocates only ports it owns (debug builds assert it as the mapping is made).
TEST(DeterministicNat, PortOwnerIsTheSubscribersWorker) {
    const Config config = det_config();
    const WorkerId workers = 4;
    const Ownership ownership = Ownership::for_config(config, workers);
    ASSERT_TRUE(ownership.by_subscriber());
    for (WorkerId w = 0; w < workers; ++w) {
        Nat nat(config, workers, w);
        for (std::uint32_t k = 0; k < 3; ++k) {
            const Ipv4Addr who = nat.owned_subscriber(k);
            const auto e = nat.send_out(udp_from(who, 30000, kA1, 53));
            ASSERT_TRUE(e.has_value());
            EXPECT_EQ(ownership.port_owner(e->addr, e->port), w);
            EXPECT_EQ(ownership.subscriber_owner(who), w);
        }
    }
}

} // namespace
} // namespace ephemera
