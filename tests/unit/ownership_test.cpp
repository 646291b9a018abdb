// Who owns what: external ports by bucket (bits 1..6 of the port), subscribers by a hash of the
// inside address. Checked exhaustively over all 65536 ports for 1..8 workers.
#include "ephemera/ownership.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

namespace ephemera {
namespace {

constexpr WorkerId kMaxTestedWorkers = 8;

TEST(Ownership, EveryPortHasExactlyOneOwnerInRange) {
    for (WorkerId workers = 1; workers <= kMaxTestedWorkers; ++workers) {
        const Ownership own(workers);
        ASSERT_EQ(own.workers(), workers);
        for (std::uint32_t port = 0; port <= 0xffff; ++port) {
            const WorkerId owner = own.port_owner(Ipv4Addr{}, static_cast<std::uint16_t>(port));
            ASSERT_LT(owner, workers) << "port " << port << ", " << workers << " workers";
        }
    }
}

TEST(Ownership, OwnerDoesNotDependOnPoolAddress) {
    const Ownership own(5);
    for (std::uint32_t port = 0; port <= 0xffff; port += 7) {
        const auto p = static_cast<std::uint16_t>(port);
        const WorkerId owner = own.port_owner(Ipv4Addr{198, 18, 0, 1}, p);
        ASSERT_EQ(own.port_owner(Ipv4Addr{198, 19, 255, 254}, p), owner) << port;
        ASSERT_EQ(own.port_owner(Ipv4Addr{}, p), owner) << port;
    }
}

// RFC 4787 REQ-4: a worker must be able to keep parity, so p and p ^ 1 share an owner.
TEST(Ownership, ParityTwinsShareTheOwner) {
    for (WorkerId workers = 1; workers <= kMaxTestedWorkers; ++workers) {
        const Ownership own(workers);
        for (std::uint32_t port = 0; port <= 0xffff; ++port) {
            const auto p = static_cast<std::uint16_t>(port);
            ASSERT_EQ(own.port_owner(Ipv4Addr{}, p),
                      own.port_owner(Ipv4Addr{}, static_cast<std::uint16_t>(p ^ 1)))
                << "port " << port << ", " << workers << " workers";
        }
    }
}

// Hardware steering matches the port under the mask 0x007e: the owner may depend on nothing
// else.
TEST(Ownership, OwnerIsAFunctionOfMaskedBitsOnly) {
    for (WorkerId workers = 1; workers <= kMaxTestedWorkers; ++workers) {
        const Ownership own(workers);
        std::map<unsigned, WorkerId> by_masked;
        for (std::uint32_t port = 0; port <= 0xffff; ++port) {
            const auto p = static_cast<std::uint16_t>(port);
            const unsigned masked = p & 0x7eu;
            const WorkerId owner = own.port_owner(Ipv4Addr{}, p);
            const auto [it, inserted] = by_masked.emplace(masked, owner);
            ASSERT_EQ(it->second, owner) << "port " << port << " and another port with the same "
                                         << "bits 1..6 have different owners";
            ASSERT_EQ(Ownership::bucket_of(p), masked >> 1);
            ASSERT_EQ(own.bucket_owner(Ownership::bucket_of(p)), owner);
        }
        EXPECT_EQ(by_masked.size(), 64u);
    }
}

TEST(Ownership, BucketsSpreadWithinOneOfEven) {
    for (WorkerId workers = 1; workers <= Ownership::kMaxWorkers; ++workers) {
        const Ownership own(workers);
        std::vector<unsigned> buckets(workers, 0);
        for (unsigned b = 0; b < Ownership::kBuckets; ++b) {
            ASSERT_LT(own.bucket_owner(b), workers);
            ++buckets[own.bucket_owner(b)];
        }
        const auto [lo, hi] = std::minmax_element(buckets.begin(), buckets.end());
        EXPECT_LE(*hi - *lo, 1u) << workers << " workers";
        EXPECT_GE(*lo, 1u) << workers << " workers: a worker owns no bucket";

        // In ports: counts differ by at most one bucket's worth (65536 / 64).
        if (workers <= kMaxTestedWorkers) {
            std::vector<std::uint32_t> ports(workers, 0);
            for (std::uint32_t port = 0; port <= 0xffff; ++port) {
                ++ports[own.port_owner(Ipv4Addr{}, static_cast<std::uint16_t>(port))];
            }
            const auto [plo, phi] = std::minmax_element(ports.begin(), ports.end());
            EXPECT_LE(*phi - *plo, 65536u / Ownership::kBuckets) << workers << " workers";
        }
    }
}

// Every 128-port block holds every bucket, so any range of >= 128 ports gives every worker a
// share, whatever the range's position.
TEST(Ownership, EveryAlignedBlockOf128PortsCoversAllBuckets) {
    const Ownership own(8);
    for (std::uint32_t base = 0; base <= 0xffff; base += 128) {
        std::vector<unsigned> seen(8, 0);
        for (std::uint32_t p = base; p < base + 128; ++p) {
            ++seen[own.port_owner(Ipv4Addr{}, static_cast<std::uint16_t>(p))];
        }
        for (unsigned w = 0; w < 8; ++w) {
            ASSERT_EQ(seen[w], 16u) << "block " << base << ", worker " << w;
        }
    }
}

TEST(Ownership, WorkerCountIsClamped) {
    EXPECT_EQ(Ownership(0).workers(), 1);
    EXPECT_EQ(Ownership(Ownership::kMaxWorkers).workers(), Ownership::kMaxWorkers);
    EXPECT_EQ(Ownership(1000).workers(), Ownership::kMaxWorkers);
}

TEST(Ownership, SubscriberOwnerIsStable) {
    const Ownership a(4);
    const Ownership b(4);
    for (std::uint32_t i = 0; i < 10000; ++i) {
        const Ipv4Addr addr{(100u << 24 | 64u << 16) + i * 37};
        const WorkerId owner = a.subscriber_owner(addr);
        ASSERT_LT(owner, 4);
        ASSERT_EQ(a.subscriber_owner(addr), owner);
        ASSERT_EQ(b.subscriber_owner(addr), owner);
        ASSERT_EQ(owner, Ownership::subscriber_hash(addr) % 4);
    }
}

TEST(Ownership, SubscriberOwnerSpreadsConsecutiveAddresses) {
    for (WorkerId workers : {2, 3, 4, 8}) {
        const Ownership own(workers);
        std::vector<unsigned> count(workers, 0);
        const std::uint32_t base = Ipv4Addr{100, 64, 0, 0}.value();
        constexpr unsigned kAddresses = 10000;
        for (std::uint32_t i = 0; i < kAddresses; ++i) {
            ++count[own.subscriber_owner(Ipv4Addr{base + i})];
        }
        const double even = double{kAddresses} / workers;
        for (WorkerId w = 0; w < workers; ++w) {
            EXPECT_GE(count[w], even * 0.9) << "worker " << w << " of " << workers;
            EXPECT_LE(count[w], even * 1.1) << "worker " << w << " of " << workers;
        }
    }
}

TEST(Ownership, SubscriberOwnerWithOneWorkerIsZero) {
    const Ownership own(1);
    for (std::uint32_t i = 0; i < 1000; ++i) {
        ASSERT_EQ(own.subscriber_owner(Ipv4Addr{i * 7919u}), 0);
    }
}

} // namespace
} // namespace ephemera
