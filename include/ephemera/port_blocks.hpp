// Port-block allocation (pool.mode = "blocks"): a subscriber's first mapping takes a block of
// ports on its pool address, its later mappings take ports from its blocks, and a block is
// logged once instead of each mapping (RFC 6888 section 4, "port-set" allocation).
//
// A block is a run of consecutive slots of the owning worker's share (port_allocator.hpp), so
// return traffic to any of its ports reaches that worker with no handoff. With one worker its
// ports are consecutive; with W workers they are the ports of a span about W times as long that
// the worker owns (docs/allocation.md shows how to read a block record).
//
// Blocks are cut at multiples of BlocksConfig::kGranule (64) slots. Each 64-slot granule of an
// address has a PortBlock record on its worker (in AddressPorts): whose it is, the block it is
// part of, and, on a block's first granule, the block's size, fill and age. A block in use sits
// on its subscriber's list (SubscriberBlocks), largest first. No bitmap is rewritten when a block
// is taken or freed: the records say which ports may be handed to whom, the port bitmaps which
// ports are in use.
#pragma once

#include "ephemera/block_sizing.hpp"
#include "ephemera/types.hpp"

#include <cstdint>

namespace ephemera {

inline constexpr std::uint32_t kGranuleSlots = 64;
inline constexpr std::uint32_t kNoBlock = 0xffffffffu;
inline constexpr std::uint32_t kNoHolder = 0xffffffffu;

// A block's name on its worker: pool index and first granule.
[[nodiscard]] constexpr std::uint32_t block_ref(std::uint16_t pool_index, std::uint32_t granule) {
    return std::uint32_t{pool_index} << 16 | granule;
}
[[nodiscard]] constexpr std::uint16_t block_pool(std::uint32_t ref) {
    return static_cast<std::uint16_t>(ref >> 16);
}
[[nodiscard]] constexpr std::uint32_t block_granule(std::uint32_t ref) {
    return ref & 0xffffu;
}

// One 64-slot granule of one pool address on one worker.
struct PortBlock {
    std::uint32_t holder = kNoHolder; // subscriber index while a block holds this granule
    std::uint32_t next = kNoBlock;    // first granule only: the holder's next (older) block
    std::uint16_t head = 0;           // first granule of the block this one belongs to
    std::uint16_t granules = 0;       // first granule only: the block's size in granules
    std::uint16_t in_use = 0;         // first granule only: its mappings, every protocol
    std::uint8_t held = 0;            // released and maybe still in hold-down: see free_at
    std::uint8_t interims = 0;        // first granule only: interim records sent (mod 256)
    Tick opened = 0;                  // first granule only: when the block was given
    Tick free_at = 0;                 // while held: the end of its hold-down (RFC 6888 REQ-8)
};

// What a subscriber record keeps of its blocks. The list is in the order ports are taken from
// them: largest first, oldest first among equals, so that with adaptive sizes the small
// blocks of a ramp drain and go once a large one covers the demand (block_sizing.hpp).
struct SubscriberBlocks {
    std::uint32_t first = kNoBlock;
    std::uint8_t count = 0;
    BlockDemand demand; // adaptive sizing only
};

// The blocks mode's policy, in packet-path units (Policy::blocks).
struct BlockPolicy {
    std::uint32_t granules = 4; // block size / kGranuleSlots (fixed sizes)
    std::uint32_t max_blocks = 8;
    Tick active_timeout = 0; // a block this old takes no new ports; 0: never
    bool adaptive = false;   // sizes chosen per subscriber by `sizing`
    BlockSizing sizing;
    // The smallest block this policy opens, in granules (a new subscriber's anchor needs one).
    [[nodiscard]] std::uint32_t smallest() const {
        return adaptive ? sizing.min_size() / kGranuleSlots : granules;
    }
};

// Why a blocks-mode allocation found no port.
enum class BlockRefusal : std::uint8_t {
    none,
    subscriber_blocks, // its blocks are full (or closed) and it holds max_blocks of them
    no_free_block,     // its blocks are full and its pool address has no free block here
};

} // namespace ephemera
