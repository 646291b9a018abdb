// RFC 7422 deterministic NAT: (pool address, port range) = f1(subscriber) and subscriber =
// f2(pool address, port), the two functions an operator must be able to evaluate.
#include "ephemera/deterministic.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace ephemera {
namespace {

std::vector<Ipv4Addr> pool_of(std::uint32_t first, std::uint32_t count) {
    std::vector<Ipv4Addr> out;
    for (std::uint32_t i = 0; i < count; ++i) {
        out.emplace_back(first + i);
    }
    return out;
}

const Ipv4Addr kPoolFirst{198, 18, 0, 10};
const Ipv4Addr kPrefix{100, 64, 0, 0};

// The hand-computed example of docs/allocation.md: 1024 subscribers over 30 addresses (a /27
// without its network and broadcast addresses), ports 1024-65535.
TEST(Deterministic, Rfc7422RatioAndPortsPerSubscriberByHand) {
    const DeterministicShape s = deterministic_shape(22, 30, PortRange{1024, 65535});
    EXPECT_EQ(s.subscribers, 1024u);
    EXPECT_EQ(s.ports, 64512u);
    EXPECT_EQ(s.ratio, 35u);                  // ceil(1024 / 30)
    EXPECT_EQ(s.ports_per_subscriber, 1843u); // floor(64512 / 35)
    EXPECT_EQ(s.pool_addresses_used(), 30u);  // ceil(1024 / 35)

    // 65536 over 4: 16384 per address, 3 ports each.
    const DeterministicShape big = deterministic_shape(16, 4, PortRange{1024, 65535});
    EXPECT_EQ(big.ratio, 16384u);
    EXPECT_EQ(big.ports_per_subscriber, 3u);
    // More subscribers per address than ports: nobody gets a port.
    EXPECT_EQ(deterministic_shape(8, 1, PortRange{1024, 65535}).ports_per_subscriber, 0u);
    // RFC 7422's figure: 4032 ports each from 1024, 1024-5055 for the first subscriber, is a
    // sharing ratio of 16 over 1024-65535.
    const DeterministicShape rfc = deterministic_shape(28, 1, PortRange{1024, 65535});
    EXPECT_EQ(rfc.ratio, 16u);
    EXPECT_EQ(rfc.ports_per_subscriber, 4032u);
    const DeterministicMap rfc_map(kPrefix, 28, {kPoolFirst}, PortRange{1024, 65535});
    EXPECT_EQ(rfc_map.forward(kPrefix)->ports, (PortRange{1024, 5055}));
    // More addresses than the prefix needs: the last ones hold nobody.
    const DeterministicShape sparse = deterministic_shape(28, 6, PortRange{1024, 65535});
    EXPECT_EQ(sparse.ratio, 3u);
    EXPECT_EQ(sparse.pool_addresses_used(), 6u);
    EXPECT_EQ(deterministic_shape(30, 6, PortRange{1024, 65535}).pool_addresses_used(), 4u);
}

TEST(Deterministic, Rfc7422WorkedExampleOfTheDocs) {
    const DeterministicMap map(kPrefix, 22, pool_of(Ipv4Addr(198, 18, 0, 1).value(), 30),
                               PortRange{1024, 65535});
    // 100.64.1.7 is subscriber 263: address 263 / 35 = 7, run 263 % 35 = 18.
    const auto f = map.forward(Ipv4Addr(100, 64, 1, 7));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->pool_address, Ipv4Addr(198, 18, 0, 8));
    EXPECT_EQ(f->pool_index, 7);
    EXPECT_EQ(f->ports, (PortRange{34198, 36040}));
    EXPECT_EQ(map.reverse(Ipv4Addr(198, 18, 0, 8), 35000), Ipv4Addr(100, 64, 1, 7));
    // The last address holds 1024 - 29 * 35 = 9 subscribers.
    const auto last = map.forward(Ipv4Addr(100, 64, 3, 255));
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->pool_index, 29);
    EXPECT_EQ(last->ports, (PortRange{1024 + 8 * 1843, 1024 + 9 * 1843 - 1}));
    const ReverseResult past = map.lookup_reverse(Ipv4Addr(198, 18, 0, 30), 1024 + 9 * 1843);
    EXPECT_FALSE(past.subscriber.has_value());
    EXPECT_EQ(past.miss, ReverseMiss::beyond_prefix);
}

// First and last subscriber of a /16 over 16 addresses: 4096 per address, 15 ports each.
TEST(Deterministic, Rfc7422FirstAndLastSubscriberOfASlash16) {
    const DeterministicMap map(kPrefix, 16, pool_of(kPoolFirst.value(), 16),
                               PortRange{1024, 65535});
    EXPECT_EQ(map.ratio(), 4096u);
    EXPECT_EQ(map.ports_per_subscriber(), 15u);
    const auto first = map.forward(kPrefix);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->pool_address, kPoolFirst);
    EXPECT_EQ(first->pool_index, 0);
    EXPECT_EQ(first->ports, (PortRange{1024, 1038}));
    const auto second = map.forward(Ipv4Addr(100, 64, 0, 1));
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->ports, (PortRange{1039, 1053}));
    const auto last = map.forward(Ipv4Addr(100, 64, 255, 255));
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->pool_address, Ipv4Addr(198, 18, 0, 25));
    EXPECT_EQ(last->pool_index, 15);
    EXPECT_EQ(last->ports, (PortRange{1024 + 4095 * 15, 1024 + 4096 * 15 - 1}));
    // Subscriber 4096 starts the second address at the offset.
    const auto next = map.forward(Ipv4Addr(100, 64, 16, 0));
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->pool_index, 1);
    EXPECT_EQ(next->ports.lo, 1024);
}

TEST(Deterministic, ForwardOfAnAddressOutsideThePrefixIsNothing) {
    const DeterministicMap map(kPrefix, 16, pool_of(kPoolFirst.value(), 16),
                               PortRange{1024, 65535});
    EXPECT_FALSE(map.forward(Ipv4Addr(100, 63, 255, 255)).has_value());
    EXPECT_FALSE(map.forward(Ipv4Addr(100, 65, 0, 0)).has_value());
    EXPECT_FALSE(map.forward(Ipv4Addr(0, 0, 0, 0)).has_value());
    EXPECT_FALSE(map.forward(Ipv4Addr(255, 255, 255, 255)).has_value());
}

// RFC 7422: f2(f1(x)) = x for every subscriber and every port of its range, over a /20 whose
// ratio leaves an unassigned tail; and every other port of the pool belongs to nobody.
TEST(Deterministic, Rfc7422ForwardReverseRoundTripOverASlash20) {
    const PortRange range{2000, 61999}; // 60000 ports
    const DeterministicMap map(Ipv4Addr(100, 64, 16, 0), 20, pool_of(kPoolFirst.value(), 7), range);
    ASSERT_EQ(map.ratio(), 586u);                // ceil(4096 / 7)
    ASSERT_EQ(map.ports_per_subscriber(), 102u); // floor(60000 / 586)
    std::vector<std::vector<bool>> held(7, std::vector<bool>(65536, false));
    for (std::uint32_t v = 0; v < 4096; ++v) {
        const Ipv4Addr inside{Ipv4Addr(100, 64, 16, 0).value() + v};
        const auto f = map.forward(inside);
        ASSERT_TRUE(f.has_value()) << inside.to_string();
        ASSERT_EQ(f->ports.size(), 102u);
        ASSERT_TRUE(range.contains(f->ports.lo) && range.contains(f->ports.hi));
        for (std::uint32_t p = f->ports.lo; p <= f->ports.hi; ++p) {
            const auto back = map.reverse(f->pool_address, static_cast<std::uint16_t>(p));
            ASSERT_EQ(back, inside) << f->pool_address.to_string() << ":" << p;
            ASSERT_FALSE(held[f->pool_index][p]) << "port held twice";
            held[f->pool_index][p] = true;
        }
    }
    for (std::uint16_t a = 0; a < 7; ++a) {
        for (std::uint32_t p = 0; p < 65536; ++p) {
            if (!held[a][p]) {
                ASSERT_FALSE(
                    map.reverse(Ipv4Addr{kPoolFirst.value() + a}, static_cast<std::uint16_t>(p))
                        .has_value())
                    << a << ":" << p;
            }
        }
    }
}

TEST(Deterministic, ReverseSaysWhyNobodyHoldsAPort) {
    // 1024 over 4: 256 per address, 252 ports each, 64512 - 256 * 252 = 0 tail; use a range
    // with a tail: 1024-65534 has 64511 ports, 251 each, tail 64511 - 64256 = 255 ports.
    const DeterministicMap map(kPrefix, 22, pool_of(kPoolFirst.value(), 4), PortRange{1024, 65534});
    ASSERT_EQ(map.ports_per_subscriber(), 251u);
    const Ipv4Addr a0 = kPoolFirst;
    EXPECT_EQ(map.lookup_reverse(a0, 1023).miss, ReverseMiss::outside_port_range); // below offset
    EXPECT_EQ(map.lookup_reverse(a0, 0).miss, ReverseMiss::outside_port_range);
    EXPECT_EQ(map.lookup_reverse(a0, 65535).miss, ReverseMiss::outside_port_range);
    EXPECT_EQ(map.lookup_reverse(a0, 1024 + 256 * 251).miss, ReverseMiss::unassigned_port);
    EXPECT_EQ(map.lookup_reverse(a0, 65534).miss, ReverseMiss::unassigned_port);
    EXPECT_EQ(map.reverse(a0, 1024 + 256 * 251 - 1), Ipv4Addr(100, 64, 0, 255));
    EXPECT_EQ(map.lookup_reverse(Ipv4Addr(198, 18, 0, 9), 2000).miss,
              ReverseMiss::not_pool_address);
    EXPECT_EQ(map.lookup_reverse(Ipv4Addr(198, 18, 0, 14), 2000).miss,
              ReverseMiss::not_pool_address);
    EXPECT_EQ(map.lookup_reverse(a0, 2000).miss, ReverseMiss::none);

    // A /30 over 8 addresses: one subscriber each on the first four, the rest unused.
    const DeterministicMap sparse(kPrefix, 30, pool_of(kPoolFirst.value(), 8),
                                  PortRange{1024, 65535});
    EXPECT_EQ(sparse.ratio(), 1u);
    EXPECT_EQ(sparse.reverse(Ipv4Addr{kPoolFirst.value() + 3}, 65535), Ipv4Addr(100, 64, 0, 3));
    EXPECT_EQ(sparse.lookup_reverse(Ipv4Addr{kPoolFirst.value() + 4}, 2000).miss,
              ReverseMiss::pool_address_unused);
}

TEST(Deterministic, PoolOrderIsFileOrder) {
    const std::vector<Ipv4Addr> pool{Ipv4Addr(203, 0, 113, 9), Ipv4Addr(198, 18, 0, 1)};
    const DeterministicMap map(kPrefix, 31, pool, PortRange{1024, 65535});
    EXPECT_EQ(map.forward(kPrefix)->pool_address, Ipv4Addr(203, 0, 113, 9));
    EXPECT_EQ(map.forward(Ipv4Addr(100, 64, 0, 1))->pool_address, Ipv4Addr(198, 18, 0, 1));
    EXPECT_EQ(map.reverse(Ipv4Addr(198, 18, 0, 1), 5000), Ipv4Addr(100, 64, 0, 1));
}

TEST(Deterministic, BuiltFromAConfig) {
    Config c;
    c.pool = pool_of(kPoolFirst.value(), 4);
    c.port_range = PortRange{1024, 65535};
    c.allocation = AllocationMode::deterministic;
    c.deterministic.prefix = kPrefix;
    c.deterministic.prefix_len = 22;
    const DeterministicMap map(c);
    EXPECT_EQ(map.ratio(), 256u);
    EXPECT_EQ(map.ports_per_subscriber(), 252u);
    EXPECT_EQ(map.forward(Ipv4Addr(100, 64, 3, 255))->pool_address, Ipv4Addr(198, 18, 0, 13));
}

} // namespace
} // namespace ephemera
