// Adaptive port-block sizing ([pool.blocks] adaptive = true): the size of a subscriber's next
// block, chosen from what that subscriber has been using, so that a heavy subscriber takes a few
// large blocks and a light one small blocks. Every block is a log record, and the operator states
// how many records per subscriber per day the collectors can store (records_per_day); fixed
// blocks force one size on everyone, either too small for the heavy (many records, then
// refusals at max_blocks) or too large for the light (ports held and never used).
//
// The rule, applied when a subscriber needs a block (its first mapping, or its blocks are full):
//
//  1. Demand. The subscriber's peak of ports in use is kept for the current window and the one
//     before; its demand is the larger of the two. The window is day / records_per_day (clamped
//     to 5 min .. 4 h): at an even pace of records, a block lives about that long, so the size
//     reflects the demand the block will meet, and a peak fades after one to two windows, which
//     is what lets sizes shrink when demand falls.
//  2. Size. At its high-water mark (ports in use reach the demand) the subscriber's demand beyond
//     is unknown: the block matches the ports it already holds, doubling them, so reaching any
//     demand D takes about log2(D / min_block_size) blocks. Below its recent peak, the block
//     covers the gap between what it uses and that peak. Either way the size is rounded up to a
//     power of two in [min_block_size, max_block_size].
//  3. Budget. When the subscriber's blocks are full, a larger block means fewer records; so
//     when its records today run ahead of an even pace (records_per_day spread over the day,
//     one window of slack), or pass half and three quarters of the budget, the size doubles per
//     step of pressure, and once the budget is spent every block is max_block_size. A block
//     opened with no block held (the last one emptied) gets no pressure: its record comes from
//     the subscriber going idle, which a larger block would not have prevented, so enlarging it
//     would only hold ports unused.
//
// The budget is honoured when a subscriber's records come from growth; one whose blocks empty
// and refill many times a day can exceed it whatever the size (docs/allocation.md).
//
// Cost on the packet path: note_ports_in_use is a compare and a store per new mapping. All
// else (window and day rollover, the pressure arithmetic) runs only when a block is opened or
// freed. The day is counted per subscriber from its first record (Tick has no calendar). The
// state lives in the subscriber's entry, so what the rule learnt is lost when the entry goes.
//
// The caller takes a mapping's port from the subscriber's largest block with room (oldest
// first among equals). The small blocks of a ramp then drain and are freed once a large block
// covers the demand, instead of staying under it with the demand hovering at their edge, where
// every crossing would open and free a block (bench/block_sim.cpp measures both).
//
// When the pool address has no free run of the chosen size, the caller halves it down to
// min_block_size before refusing: a smaller block still serves the mapping.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/types.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace ephemera {

struct BlockSizing {
    std::uint8_t min_log2 = 6;  // log2 of min_block_size
    std::uint8_t max_log2 = 12; // log2 of max_block_size
    std::uint16_t records_per_day = 24;
    Tick day = 86400 * kTicksPerSecond;
    Tick window = 3600 * kTicksPerSecond; // how long a peak is remembered (1 to 2 windows)

    static constexpr Tick kMinWindow = 300 * kTicksPerSecond;
    static constexpr Tick kMaxWindow = 4 * 3600 * kTicksPerSecond;

    [[nodiscard]] constexpr std::uint32_t min_size() const { return 1u << min_log2; }
    [[nodiscard]] constexpr std::uint32_t max_size() const { return 1u << max_log2; }
};

// Sizes that are not powers of two are narrowed to the powers of two inside them: the config
// checks keep them multiples of 64 within 64..4096, so the range is never empty.
constexpr BlockSizing make_block_sizing(std::uint32_t min_block_size, std::uint32_t max_block_size,
                                        std::uint32_t records_per_day) {
    BlockSizing s;
    const std::uint32_t lo = std::bit_ceil(std::max(min_block_size, BlocksConfig::kMinBlockSize));
    const std::uint32_t hi = std::bit_floor(std::max(max_block_size, lo));
    s.min_log2 = static_cast<std::uint8_t>(std::countr_zero(lo));
    s.max_log2 = static_cast<std::uint8_t>(std::countr_zero(hi));
    s.records_per_day = static_cast<std::uint16_t>(std::clamp(records_per_day, 1u, 65535u));
    s.window = std::clamp<Tick>(s.day / s.records_per_day, BlockSizing::kMinWindow,
                                BlockSizing::kMaxWindow);
    return s;
}

constexpr BlockSizing make_block_sizing(const BlocksConfig& c) {
    return make_block_sizing(c.min_block_size, c.max_block_size, c.records_per_day);
}

// Per subscriber. Port counts saturate at 65535, far above any size the rule can choose.
struct BlockDemand {
    Tick day_start = 0;          // first record of the subscriber's current day
    Tick window_start = 0;       // start of the current demand window
    std::uint16_t peak = 0;      // most ports in use at once in the current window
    std::uint16_t prev_peak = 0; // most ports in use at once in the window before
    std::uint16_t records = 0;   // records since day_start
    std::uint8_t last_log2 = 0;  // log2 of the last size chosen (0: none yet), for reports
    std::uint8_t reserved_ = 0;
};
static_assert(sizeof(BlockDemand) <= 16);

namespace block_sizing_detail {

constexpr std::uint16_t saturate16(std::uint32_t n) {
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(n, 0xffff));
}

// Moves the demand window on. Windows pass unseen while no block is opened or freed, and the
// peak of such a stretch may be from its start or its end: it is halved per window beyond the
// first, so that a steady heavy subscriber keeps most of it and an idle one loses it.
constexpr void roll(const BlockSizing& cfg, BlockDemand& d, std::uint32_t in_use, Tick now) {
    const Tick age = now - d.window_start;
    if (age < cfg.window) {
        return;
    }
    const Tick windows = age / cfg.window;
    d.prev_peak = windows > 16 ? 0 : static_cast<std::uint16_t>(d.peak >> (windows - 1));
    d.peak = saturate16(in_use);
    d.window_start = now;
}

constexpr void roll_day(const BlockSizing& cfg, BlockDemand& d, Tick now) {
    if (d.records != 0 && now - d.day_start >= cfg.day) {
        d.records = 0;
    }
}

// Doublings the budget asks for on a block opened because the subscriber's blocks are full.
constexpr std::uint32_t pressure(const BlockSizing& cfg, const BlockDemand& d, Tick now) {
    const std::uint64_t r = d.records;
    const std::uint64_t budget = cfg.records_per_day;
    if (r >= budget) {
        return cfg.max_log2 - cfg.min_log2; // spent: as few further records as possible
    }
    std::uint32_t p = 0;
    if (4 * r >= 3 * budget) {
        p = 2;
    } else if (2 * r >= budget) {
        p = 1;
    }
    // Ahead of an even pace: one doubling per factor of two ahead of it.
    const std::uint64_t elapsed = r == 0 ? 0 : now - d.day_start;
    const std::uint64_t allowed = budget * (elapsed + cfg.window); // records * ticks of a day
    const std::uint64_t spent = r * cfg.day;
    if (spent >= allowed) {
        const auto ahead = static_cast<std::uint32_t>(std::bit_width(spent / allowed));
        p = std::max(p, ahead);
    }
    return p;
}

} // namespace block_sizing_detail

// Per new mapping (or per port taken): keeps the window's peak.
constexpr void note_ports_in_use(BlockDemand& d, std::uint32_t ports_in_use) {
    const std::uint16_t n = block_sizing_detail::saturate16(ports_in_use);
    if (n > d.peak) {
        d.peak = n;
    }
}

// The size of the subscriber's next block; ports_in_use_now counts the ports its mappings hold
// in the blocks it has (0 when it has none). Pure but for the window rollover: calling it
// without opening the block records nothing.
constexpr std::uint32_t next_block_size(const BlockSizing& cfg, BlockDemand& d,
                                        std::uint32_t ports_in_use_now, Tick now) {
    using namespace block_sizing_detail;
    roll(cfg, d, ports_in_use_now, now);
    roll_day(cfg, d, now);
    const std::uint32_t demand = std::max(d.peak, d.prev_peak);
    const std::uint32_t want =
        ports_in_use_now >= demand ? ports_in_use_now : demand - ports_in_use_now;
    const std::uint32_t bounded = std::clamp(want, cfg.min_size(), cfg.max_size());
    std::uint32_t log2 = static_cast<std::uint32_t>(std::countr_zero(std::bit_ceil(bounded)));
    if (ports_in_use_now != 0) {
        log2 += pressure(cfg, d, now);
    }
    return 1u << std::min<std::uint32_t>(log2, cfg.max_log2);
}

// A block of `size` ports was opened: one record.
constexpr void note_block_opened(const BlockSizing& cfg, BlockDemand& d, std::uint32_t size,
                                 Tick now) {
    block_sizing_detail::roll_day(cfg, d, now);
    if (d.records == 0) {
        d.day_start = now;
    }
    if (d.records != 0xffff) {
        ++d.records;
    }
    d.last_log2 = static_cast<std::uint8_t>(std::countr_zero(std::bit_ceil(size)));
}

// A record that is not a block allocation (an interim record, or the end of a block closed by
// active_block_timeout when it is logged apart): it spends the same budget.
constexpr void note_record(const BlockSizing& cfg, BlockDemand& d, Tick now) {
    const std::uint8_t last = d.last_log2;
    note_block_opened(cfg, d, 1, now);
    d.last_log2 = last;
}

// A block was freed (its last mapping ended): a chance to move the demand window on, so that a
// subscriber whose demand fell is seen to have fallen by its next block.
constexpr void note_block_freed(const BlockSizing& cfg, BlockDemand& d,
                                std::uint32_t ports_in_use_now, Tick now) {
    block_sizing_detail::roll(cfg, d, ports_in_use_now, now);
}

} // namespace ephemera
