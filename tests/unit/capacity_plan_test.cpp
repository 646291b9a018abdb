// ephemeractl plan's planner against synthetic populations of 100,000 subscribers: its
// recommendations are checked by a simulation written here apart from it (the exact
// population shuffled, each subscriber put on an address and worker at random, the refusal
// rule applied per bin), so that a mistake in the planner's sampling, scaling or search shows.
#include "planner.hpp"

#include "../../bench/population.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <vector>

namespace {

using ephemeractl::planner::Bucket;
using ephemeractl::planner::Mode;
using PoolSetup = ephemeractl::planner::Setup;

constexpr std::size_t kSubscribers = 100'000;
constexpr double kTarget = 0.001;

// Residential: bench/population.hpp's peaks (98.5 % lognormal around 24, 1.5 % Pareto from
// 500), the heavy tail that makes refusals rare and clustered.
std::vector<std::uint32_t> residential(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint32_t> demand(kSubscribers);
    for (auto& d : demand) {
        d = static_cast<std::uint32_t>(std::ceil(ephemera::population::draw_shape(rng).peak));
    }
    return demand;
}

// Geometric with mean `mean`: a light tail.
std::vector<std::uint32_t> geometric(double mean, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::geometric_distribution<std::uint32_t> g(1.0 / mean);
    std::vector<std::uint32_t> demand(kSubscribers);
    for (auto& d : demand) {
        d = g(rng) + 1;
    }
    return demand;
}

// One bucket per distinct demand: the planner sees the population exactly.
std::vector<Bucket> exact(const std::vector<std::uint32_t>& demand) {
    std::map<std::uint32_t, std::uint64_t> count;
    for (std::uint32_t d : demand) {
        ++count[d];
    }
    std::vector<Bucket> buckets;
    for (const auto& [d, n] : count) {
        buckets.push_back({d, n});
    }
    return buckets;
}

// Power-of-two upper bounds, as /ephemera/top gives them.
std::vector<Bucket> bucketed(const std::vector<std::uint32_t>& demand) {
    std::map<std::uint32_t, std::uint64_t> count;
    for (std::uint32_t d : demand) {
        ++count[std::bit_ceil(d)];
    }
    std::vector<Bucket> buckets;
    for (const auto& [d, n] : count) {
        buckets.push_back({d, n});
    }
    return buckets;
}

// The independent check: `rounds` times, the population in a random order, each subscriber on
// a random (address, worker) bin, which refuses it when its ports (or blocks) do not fit and
// is then spent. The rate, and its standard error from the spread between rounds.
struct Simulated {
    double rate;
    double error;
};

Simulated simulate(const std::vector<std::uint32_t>& demand, const PoolSetup& s, int rounds,
                   std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::size_t bins = std::size_t{s.pool_size} * s.workers;
    const std::uint64_t share = s.ports_per_address / s.workers;
    std::uniform_int_distribution<std::size_t> pick(0, bins - 1);
    std::vector<std::uint32_t> order = demand;
    double sum = 0;
    double sum_squares = 0;
    for (int r = 0; r < rounds; ++r) {
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<std::uint64_t> ports(bins, share);
        std::vector<std::uint64_t> blocks(bins, share / s.block_size);
        std::vector<bool> spent(bins, false);
        std::uint64_t refused = 0;
        for (std::uint32_t d : order) {
            const std::size_t b = pick(rng);
            if (d == 0) {
                continue;
            }
            if (s.mode == Mode::dynamic) {
                if (spent[b] || d > ports[b]) {
                    spent[b] = true;
                    ++refused;
                } else {
                    ports[b] -= d;
                }
                continue;
            }
            const std::uint64_t need = (d + s.block_size - 1) / s.block_size;
            if (spent[b]) {
                ++refused;
            } else if (need > s.max_blocks) {
                blocks[b] -= std::min<std::uint64_t>(blocks[b], s.max_blocks);
                ++refused;
            } else if (need > blocks[b]) {
                spent[b] = true;
                ++refused;
            } else {
                blocks[b] -= need;
            }
        }
        const double rate = static_cast<double>(refused) / static_cast<double>(order.size());
        sum += rate;
        sum_squares += rate * rate;
    }
    const double mean = sum / rounds;
    const double variance = std::max(0.0, sum_squares / rounds - mean * mean);
    return {mean, std::sqrt(variance / (rounds - 1))};
}

PoolSetup setup_for(const std::vector<std::uint32_t>& demand, std::uint32_t pool,
                    std::uint32_t ports, std::uint32_t workers) {
    PoolSetup s;
    s.demand = exact(demand);
    s.subscribers = demand.size();
    s.pool_size = pool;
    s.ports_per_address = ports;
    s.workers = workers;
    return s;
}

constexpr int kRounds = 100;

// Under the target at `fits`, over it at `short_of` (one address or one step fewer), each
// within two standard errors of this simulation: its own sampling error, not the planner's.
void expect_tight(const std::vector<std::uint32_t>& demand, PoolSetup fits, PoolSetup short_of,
                  std::uint64_t seed) {
    const Simulated at = simulate(demand, fits, kRounds, seed);
    const Simulated below = simulate(demand, short_of, kRounds, seed);
    EXPECT_LE(at.rate, kTarget + 2 * at.error)
        << fits.pool_size << " addresses x " << fits.ports_per_address << " ports";
    EXPECT_GT(below.rate, kTarget - 2 * below.error)
        << short_of.pool_size << " addresses x " << short_of.ports_per_address << " ports";
}

void expect_tight_pool(const std::vector<std::uint32_t>& demand, PoolSetup s) {
    const auto pool = ephemeractl::planner::min_pool_size(s, kTarget);
    ASSERT_TRUE(pool.has_value());
    PoolSetup fewer = s;
    s.pool_size = *pool;
    fewer.pool_size = *pool - 1;
    expect_tight(demand, s, fewer, 7);
}

TEST(CapacityPlan, PoolSizeIsTightForGeometricDemandDynamic) {
    const auto demand = geometric(40, 1);
    expect_tight_pool(demand, setup_for(demand, 50, 64512, 1));
}

TEST(CapacityPlan, PoolSizeIsTightForResidentialDemandDynamic) {
    const auto demand = residential(2);
    expect_tight_pool(demand, setup_for(demand, 50, 64512, 2));
}

TEST(CapacityPlan, PoolSizeIsTightForBlocks) {
    const auto demand = geometric(40, 3);
    PoolSetup s = setup_for(demand, 50, 64512, 2);
    s.mode = Mode::blocks;
    s.block_size = 64;
    s.max_blocks = 8;
    expect_tight_pool(demand, s);
}

TEST(CapacityPlan, PortsPerAddressWithinOneStep) {
    for (const bool blocks : {false, true}) {
        const auto demand = geometric(30, 4);
        PoolSetup s = setup_for(demand, 150, 64512, 2);
        if (blocks) {
            s.mode = Mode::blocks;
            s.block_size = 64;
            s.max_blocks = 8;
        }
        const auto ports = ephemeractl::planner::min_ports_per_address(s, kTarget);
        ASSERT_TRUE(ports.has_value()) << (blocks ? "blocks" : "dynamic");
        const std::uint32_t step = ephemeractl::planner::port_step(s);
        EXPECT_EQ(*ports % step, 0u);
        PoolSetup fewer = s;
        s.ports_per_address = *ports;
        fewer.ports_per_address = *ports - step;
        expect_tight(demand, s, fewer, 11);
    }
}

TEST(CapacityPlan, BucketUpperBoundsAreConservative) {
    const auto demand = residential(5);
    PoolSetup s = setup_for(demand, 50, 64512, 2);
    s.demand = bucketed(demand);
    const auto pool = ephemeractl::planner::min_pool_size(s, kTarget);
    ASSERT_TRUE(pool.has_value());
    s.pool_size = *pool;
    const Simulated real = simulate(demand, s, kRounds, 13);
    EXPECT_LE(real.rate, kTarget + 2 * real.error);
}

TEST(CapacityPlan, MoreDemandNeverNeedsFewerAddresses) {
    const auto base = geometric(20, 6);
    for (const Mode mode : {Mode::dynamic, Mode::blocks}) {
        std::optional<std::uint32_t> previous;
        for (const double scale : {1.0, 1.5, 2.0, 3.0}) {
            std::vector<std::uint32_t> demand = base;
            for (auto& d : demand) {
                d = static_cast<std::uint32_t>(std::ceil(d * scale));
            }
            PoolSetup s = setup_for(demand, 10, 64512, 2);
            s.mode = mode;
            s.block_size = 64;
            s.max_blocks = 64;
            // The same random numbers for every scale (the planner's fixed seed), and fewer of
            // them: monotonicity needs no precision.
            ephemeractl::planner::Simulation quick;
            quick.min_draws = 2'000'000;
            quick.max_draws = 8'000'000;
            const auto pool = ephemeractl::planner::min_pool_size(s, kTarget, quick);
            ASSERT_TRUE(pool.has_value());
            if (previous) {
                EXPECT_GE(*pool, *previous) << "scale " << scale;
            }
            previous = pool;
        }
    }
}

TEST(CapacityPlan, CurrentRateMatchesTheSimulation) {
    const auto demand = residential(8);
    const PoolSetup s = setup_for(demand, 120, 64512, 2);
    const double planned = ephemeractl::planner::refusal_rate(s);
    const Simulated simulated = simulate(demand, s, kRounds, 17);
    EXPECT_GT(simulated.rate, 0.0);
    EXPECT_NEAR(planned, simulated.rate, 3 * simulated.error + 0.05 * simulated.rate);
}

TEST(CapacityPlan, LargePopulationsAreSimulatedOnASampleOfAddresses) {
    // 20 million subscribers on 14,000 addresses: the planner simulates a sample of the
    // addresses with as many subscribers each, drawn from the histogram. The same mix at 100,000
    // subscribers on 70 addresses, simulated whole here, must give the same rate.
    const auto demand = geometric(40, 9);
    PoolSetup small = setup_for(demand, 70, 64512, 2);
    const Simulated whole = simulate(demand, small, kRounds, 19);
    PoolSetup large = small;
    for (auto& b : large.demand) {
        b.count *= 200;
    }
    large.subscribers = small.subscribers * 200;
    large.pool_size = small.pool_size * 200;
    const double sampled = ephemeractl::planner::refusal_rate(large);
    EXPECT_GT(whole.rate, 0.0);
    EXPECT_NEAR(sampled, whole.rate, 3 * whole.error + 0.1 * whole.rate);
}

TEST(CapacityPlan, BlocksRefuseSubscribersBeyondMaxBlocks) {
    // Every subscriber needs 3 blocks of 64; at most 2 refuses all of them whatever the pool.
    PoolSetup s;
    s.demand = {{150, 1000}};
    s.subscribers = 1000;
    s.pool_size = 100;
    s.ports_per_address = 64512;
    s.mode = Mode::blocks;
    s.block_size = 64;
    s.max_blocks = 2;
    EXPECT_DOUBLE_EQ(ephemeractl::planner::refusal_rate(s), 1.0);
    EXPECT_FALSE(ephemeractl::planner::min_pool_size(s, kTarget).has_value());
    EXPECT_EQ(ephemeractl::planner::min_max_blocks(s, kTarget), 3u);
}

TEST(CapacityPlan, SubscribersWithoutDemandAreNeverRefused) {
    PoolSetup s;
    s.demand = {{100, 10}};
    s.subscribers = 1000; // 990 hold no port at the peak
    s.pool_size = 1;
    s.ports_per_address = 1000;
    // 10 x 100 ports fill the one address exactly: nobody is refused.
    EXPECT_EQ(ephemeractl::planner::refusal_rate(s), 0.0);
    s.ports_per_address = 999;
    // Now the last of the ten is refused: 1 in 1000 subscribers.
    EXPECT_NEAR(ephemeractl::planner::refusal_rate(s), 0.001, 1e-9);
}

TEST(CapacityPlan, ChecksRefuseUnplannableSetups) {
    PoolSetup s;
    EXPECT_FALSE(ephemeractl::planner::check(s).empty()); // no subscribers
    s.demand = {{10, 5}};
    EXPECT_TRUE(ephemeractl::planner::check(s).empty());
    s.pool_size = 0;
    EXPECT_FALSE(ephemeractl::planner::check(s).empty());
}

} // namespace
