// The subscriber summary (include/ephemera/subscriber_summary.hpp): ranking, ties, merging and
// the histogram buckets, with no tables and no EAL.
#include "ephemera/subscriber_summary.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace ephemera {
namespace {

SubscriberSample sample(std::uint32_t address, std::uint32_t udp, std::uint32_t refusals = 0,
                        std::uint32_t tcp = 0) {
    SubscriberSample s;
    s.subscriber = Ipv4Addr{address};
    s.pool_address = Ipv4Addr{198, 18, 0, 1};
    s.ports = {udp, tcp, 0};
    s.sessions = udp + tcp;
    s.refusals = refusals;
    return s;
}

std::vector<std::uint32_t> addresses(const TopList<SubscriberSummary::kTop>& top) {
    std::vector<std::uint32_t> out;
    for (const SubscriberSample& s : top) {
        out.push_back(s.subscriber.value());
    }
    return out;
}

TEST(SubscriberSummary, RanksByBusiestProtocolLargestFirst) {
    SubscriberSummary sum;
    sum.add(sample(1, 5));
    sum.add(sample(2, 50));
    sum.add(sample(3, 1, 0, 70)); // tcp is its busiest protocol
    sum.add(sample(4, 0));        // no ports: counted, never listed
    EXPECT_EQ(addresses(sum.by_ports()), (std::vector<std::uint32_t>{3, 2, 1}));
    EXPECT_EQ(sum.subscribers, 4u);
    EXPECT_EQ(sum.ports_sum, 125u);
    EXPECT_EQ(sum.by_refusals().size(), 0u);
}

TEST(SubscriberSummary, KeepsTheTopNAndBreaksTiesByLowerAddress) {
    SubscriberSummary sum;
    for (std::uint32_t a = 100; a > 0; --a) {
        sum.add(sample(a, 7, a % 3));
    }
    ASSERT_EQ(sum.by_ports().size(), SubscriberSummary::kTop);
    for (std::size_t i = 0; i < SubscriberSummary::kTop; ++i) {
        EXPECT_EQ(sum.by_ports()[i].subscriber.value(), i + 1);
    }
    // Refusals 2 (2, 5, 8, ..., 98) outrank 1; among them the lower addresses.
    const auto refused = addresses(sum.by_refusals());
    ASSERT_EQ(refused.size(), SubscriberSummary::kTop);
    EXPECT_EQ(refused.front(), 2u);
    EXPECT_EQ(refused.back(), 2u + 3 * (SubscriberSummary::kTop - 1));
    EXPECT_EQ(sum.by_refusals()[SubscriberSummary::kTop - 1].refusals, 2u);
    EXPECT_TRUE(sum.admits(7, 0)); // a tie: decided by its address
    EXPECT_FALSE(sum.admits(6, 1));
    EXPECT_TRUE(sum.admits(8, 0));
    EXPECT_TRUE(sum.admits(0, 3));
}

TEST(SubscriberSummary, PortBucketEdges) {
    EXPECT_EQ(SubscriberSummary::port_bucket(0), 0u);
    EXPECT_EQ(SubscriberSummary::port_bucket(1), 1u);
    EXPECT_EQ(SubscriberSummary::port_bucket(2), 2u);
    EXPECT_EQ(SubscriberSummary::port_bucket(3), 3u);
    EXPECT_EQ(SubscriberSummary::port_bucket(4), 3u);
    EXPECT_EQ(SubscriberSummary::port_bucket(5), 4u);
    EXPECT_EQ(SubscriberSummary::port_bucket(32768), 16u);
    EXPECT_EQ(SubscriberSummary::port_bucket(32769), 17u);
    EXPECT_EQ(SubscriberSummary::port_bucket(65535), 17u);
    EXPECT_EQ(SubscriberSummary::port_bucket(65536), 17u);
    for (std::uint32_t v : {0u, 1u, 2u, 3u, 4u, 5u, 100u, 1024u, 1025u, 65535u}) {
        const std::size_t b = SubscriberSummary::port_bucket(v);
        EXPECT_LE(v, SubscriberSummary::port_bound(b)) << v;
        if (b > 0) {
            EXPECT_GT(v, SubscriberSummary::port_bound(b - 1)) << v;
        }
    }
    EXPECT_EQ(SubscriberSummary::port_bound(SubscriberSummary::kPortBuckets - 1), 65536u);
}

TEST(SubscriberSummary, FillBucketEdges) {
    EXPECT_EQ(SubscriberSummary::fill_bucket(0, 256), 0u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(1, 256), 0u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(10, 100), 0u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(11, 100), 1u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(50, 100), 4u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(99, 100), 9u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(100, 100), 9u);
    EXPECT_EQ(SubscriberSummary::fill_bucket(5, 0), 0u);

    SubscriberSummary sum;
    SubscriberSample s = sample(1, 64);
    s.blocks = 1;
    s.block_ports = 256;
    sum.add(s);
    sum.add(sample(2, 3)); // no blocks: not in the fill histogram
    EXPECT_EQ(sum.with_blocks, 1u);
    EXPECT_EQ(sum.fill_histogram[2], 1u); // 25 %
    EXPECT_DOUBLE_EQ(sum.fill_sum, 0.25);
}

TEST(SubscriberSummary, MergeEqualsOneSummaryOfTheUnion) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::uint32_t> ports(0, 300);
    std::uniform_int_distribution<std::uint32_t> refusals(0, 4);
    std::vector<SubscriberSample> all;
    for (std::uint32_t a = 1; a <= 5000; ++a) {
        all.push_back(sample(a, ports(rng), refusals(rng), ports(rng)));
    }
    SubscriberSummary whole;
    std::vector<SubscriberSummary> parts(4);
    for (const SubscriberSample& s : all) {
        whole.add(s);
        parts[s.subscriber.value() % parts.size()].add(s);
    }
    SubscriberSummary merged;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        merged.merge(*it);
    }
    EXPECT_EQ(addresses(merged.by_ports()), addresses(whole.by_ports()));
    EXPECT_EQ(addresses(merged.by_refusals()), addresses(whole.by_refusals()));
    EXPECT_EQ(merged.ports_histogram, whole.ports_histogram);
    EXPECT_EQ(merged.subscribers, whole.subscribers);
    EXPECT_EQ(merged.ports_sum, whole.ports_sum);

    std::vector<SubscriberSample> sorted = all;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
        return a.most_ports() != b.most_ports() ? a.most_ports() > b.most_ports()
                                                : a.subscriber < b.subscriber;
    });
    for (std::size_t i = 0; i < SubscriberSummary::kTop; ++i) {
        EXPECT_EQ(merged.by_ports()[i].subscriber, sorted[i].subscriber);
    }
}

TEST(SubscriberSummary, StaysBoundedUnderAMillionSubscribers) {
    SubscriberSummary sum;
    std::mt19937 rng(11);
    std::uniform_int_distribution<std::uint32_t> ports(0, 65535);
    for (std::uint32_t a = 0; a < 1'000'000; ++a) {
        sum.add(sample(a, ports(rng) >> (a % 16), a % 5));
    }
    EXPECT_EQ(sum.subscribers, 1'000'000u);
    EXPECT_EQ(sum.by_ports().size(), SubscriberSummary::kTop);
    EXPECT_EQ(sum.by_refusals().size(), SubscriberSummary::kTop);
    EXPECT_EQ(sum.ports_histogram.size(), SubscriberSummary::kPortBuckets);
    std::uint64_t counted = 0;
    for (const std::uint64_t c : sum.ports_histogram) {
        counted += c;
    }
    EXPECT_EQ(counted, 1'000'000u);
    // Fixed size: no storage grows with the subscribers.
    static_assert(sizeof(SubscriberSummary) < 4096);
}

} // namespace
} // namespace ephemera
