// Adaptive block sizing (block_sizing.hpp): sizes stay powers of two within bounds, a light
// subscriber keeps the smallest blocks, a heavy one reaches its demand in a few blocks, the
// record budget holds over a day of growth and decline, and sizes shrink once demand falls.
#include "ephemera/block_sizing.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace ephemera {
namespace {

constexpr Tick kMinute = 60 * kTicksPerSecond;
constexpr Tick kHour = 3600 * kTicksPerSecond;

// A subscriber's blocks as a stack: its newest block is the first to drain (mappings fill the
// oldest blocks first), so it is freed once demand has fitted in the blocks below it for as
// long as its last mappings live.
struct StackModel {
    explicit StackModel(const BlockSizing& c, std::uint32_t max = 8, std::uint32_t fixed = 0)
        : cfg(c), max_blocks(max), fixed_size(fixed) {}

    BlockSizing cfg;
    std::uint32_t max_blocks;
    std::uint32_t fixed_size; // 0: adaptive
    BlockDemand demand;
    std::vector<std::uint32_t> blocks;
    std::vector<std::uint32_t> sizes_chosen;
    std::uint32_t capacity = 0;
    std::uint32_t records = 0;
    std::uint64_t refused_minutes = 0;
    Tick below_since = 0; // since when demand has fitted under the top block
    bool below = false;

    static constexpr Tick kDrain = 10 * 60 * kTicksPerSecond;

    void step(std::uint32_t want, Tick now) {
        while (!blocks.empty() && want <= capacity - blocks.back()) {
            if (!below) {
                below = true;
                below_since = now;
            }
            if (now - below_since < kDrain) {
                break;
            }
            capacity -= blocks.back();
            blocks.pop_back();
            note_block_freed(cfg, demand, std::min(want, capacity), now);
        }
        if (blocks.empty() || want > capacity - blocks.back()) {
            below = false;
        }
        while (want > capacity) {
            if (blocks.size() == max_blocks) {
                ++refused_minutes;
                break;
            }
            const std::uint32_t size =
                fixed_size != 0 ? fixed_size : next_block_size(cfg, demand, capacity, now);
            note_block_opened(cfg, demand, size, now);
            sizes_chosen.push_back(size);
            blocks.push_back(size);
            capacity += size;
            ++records;
            note_ports_in_use(demand, std::min(want, capacity));
        }
        note_ports_in_use(demand, std::min(want, capacity));
    }
};

bool valid_size(const BlockSizing& cfg, std::uint32_t s) {
    return std::has_single_bit(s) && s >= cfg.min_size() && s <= cfg.max_size();
}

TEST(BlockSizing, FromConfigNarrowsToPowersOfTwo) {
    BlocksConfig c;
    c.min_block_size = 192;
    c.max_block_size = 3008;
    c.records_per_day = 48;
    constexpr BlockSizing defaults = make_block_sizing(BlocksConfig{});
    static_assert(defaults.min_size() == 64 && defaults.max_size() == 4096);
    static_assert(defaults.window == kHour); // a day over 24 records
    const BlockSizing s = make_block_sizing(c);
    EXPECT_EQ(s.min_size(), 256u);
    EXPECT_EQ(s.max_size(), 2048u);
    EXPECT_EQ(s.window, kHour / 2);
    EXPECT_EQ(make_block_sizing(64, 4096, 1).window, BlockSizing::kMaxWindow);
    EXPECT_EQ(make_block_sizing(64, 4096, 10000).window, BlockSizing::kMinWindow);
}

TEST(BlockSizing, AlwaysAPowerOfTwoWithinBounds) {
    std::mt19937 rng(7);
    for (const BlockSizing cfg : {make_block_sizing(64, 4096, 24), make_block_sizing(128, 1024, 4),
                                  make_block_sizing(256, 256, 100)}) {
        BlockDemand d;
        Tick now = 0;
        for (int i = 0; i < 20000; ++i) {
            now += rng() % (2 * kHour);
            const std::uint32_t in_use = rng() % 70000;
            note_ports_in_use(d, rng() % 70000);
            const std::uint32_t s = next_block_size(cfg, d, i % 5 == 0 ? 0 : in_use, now);
            ASSERT_TRUE(valid_size(cfg, s)) << s;
            if (rng() % 2 == 0) {
                note_block_opened(cfg, d, s, now);
            } else {
                note_block_freed(cfg, d, in_use, now);
            }
        }
    }
}

TEST(BlockSizing, SteadyLightSubscriberStaysAtTheMinimum) {
    StackModel m(make_block_sizing(BlocksConfig{}));
    std::mt19937 rng(1);
    for (Tick t = 0; t < 24 * kHour; t += kMinute) {
        m.step(20 + rng() % 40, t); // 20..59 ports
    }
    ASSERT_FALSE(m.sizes_chosen.empty());
    for (const std::uint32_t s : m.sizes_chosen) {
        EXPECT_EQ(s, 64u);
    }
    EXPECT_EQ(m.records, 1u);
}

TEST(BlockSizing, HeavySubscriberCoversItsDemandInAFewBlocks) {
    StackModel m(make_block_sizing(BlocksConfig{}));
    m.step(3000, 5 * kHour);
    EXPECT_GE(m.capacity, 3000u);
    EXPECT_LE(m.records, 5u);
    EXPECT_EQ(m.refused_minutes, 0u);
    // Fixed blocks of the smallest size cannot reach it at all.
    StackModel fixed(make_block_sizing(BlocksConfig{}), 8, 64);
    fixed.step(3000, 5 * kHour);
    EXPECT_EQ(fixed.capacity, 512u);
    EXPECT_EQ(fixed.refused_minutes, 1u);
}

// A day of a heavy subscriber: demand follows the evening peak between 100 and 3000 ports,
// with minute-to-minute noise that keeps pushing it across block boundaries.
std::uint32_t diurnal(Tick t, std::mt19937& rng) {
    const double hour = static_cast<double>(t) / kHour;
    const double shape = 0.5 + 0.5 * std::cos((hour - 21.0) / 24.0 * 2.0 * 3.14159265358979);
    const double noise = 0.85 + 0.3 * static_cast<double>(rng() % 1000) / 1000.0;
    return static_cast<std::uint32_t>((100.0 + 2900.0 * shape * shape) * noise);
}

TEST(BlockSizing, RecordBudgetHoldsOverADay) {
    for (const std::uint32_t budget : {8u, 24u, 96u}) {
        StackModel m(make_block_sizing(64, 4096, budget));
        std::mt19937 rng(3);
        for (Tick t = 0; t < 24 * kHour; t += kMinute) {
            m.step(diurnal(t, rng), t);
        }
        EXPECT_LE(m.records, budget) << "budget " << budget;
        EXPECT_EQ(m.refused_minutes, 0u);
    }
    // The same day with fixed blocks of the default size is over the default budget.
    StackModel fixed(make_block_sizing(BlocksConfig{}), 64, 256);
    std::mt19937 rng(3);
    for (Tick t = 0; t < 24 * kHour; t += kMinute) {
        fixed.step(diurnal(t, rng), t);
    }
    EXPECT_GT(fixed.records, 24u);
}

TEST(BlockSizing, SizesShrinkWhenDemandFalls) {
    const BlockSizing cfg = make_block_sizing(BlocksConfig{});
    StackModel m(cfg);
    for (Tick t = 0; t < 2 * kHour; t += kMinute) {
        m.step(3000, t);
    }
    // Right after the busy hours, a subscriber that comes back from idle gets a block that
    // covers its recent peak.
    BlockDemand busy = m.demand;
    EXPECT_GE(next_block_size(cfg, busy, 0, 2 * kHour), 2048u);
    // Two windows of light use later the peak is forgotten and the next block is small.
    for (Tick t = 2 * kHour; t < 5 * kHour; t += kMinute) {
        m.step(40, t);
    }
    EXPECT_EQ(m.blocks.size(), 1u);
    BlockDemand quiet = m.demand;
    EXPECT_EQ(next_block_size(cfg, quiet, 0, 5 * kHour), 64u);
}

TEST(BlockSizing, BudgetPressureGrowsBlocksOpenedWhenFull) {
    const BlockSizing cfg = make_block_sizing(BlocksConfig{});
    BlockDemand d;
    note_ports_in_use(d, 64);
    EXPECT_EQ(next_block_size(cfg, d, 64, 0), 64u); // no records yet: no pressure
    for (int i = 0; i < 12; ++i) {
        note_block_opened(cfg, d, 64, 0);
    }
    EXPECT_GT(next_block_size(cfg, d, 64, 0), 64u); // half the budget in the first hour
    for (int i = 0; i < 12; ++i) {
        note_block_opened(cfg, d, 64, 0);
    }
    EXPECT_EQ(next_block_size(cfg, d, 64, 0), 4096u); // spent
    // Not when the subscriber holds no block: its last one emptied, size would not have helped.
    EXPECT_EQ(next_block_size(cfg, d, 0, 0), 64u);
    // A new day resets the count.
    note_block_opened(cfg, d, 64, cfg.day);
    EXPECT_EQ(d.records, 1u);
}

} // namespace
} // namespace ephemera
