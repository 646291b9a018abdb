// Port-block allocation over a worker's port bitmaps (port_blocks.hpp). Everything here runs on
// the slow path: once per new mapping, and a scan of the address's granules once per new block.
#include "ephemera/port_allocator.hpp"

#include <algorithm>

namespace ephemera {

namespace {

// Tick arithmetic wraps; a hold-down is far shorter than half the wrap.
bool reached(Tick now, Tick at) {
    return static_cast<std::int32_t>(now - at) >= 0;
}

// Where blocks of `granules` may lie: whole granules inside the range's slots of ports
// 1024-65535 (a block never takes system ports), cut from the first one.
struct Grid {
    std::uint32_t first = 0; // granule
    std::uint32_t count = 0; // blocks
};

Grid grid_of(const PortMask& mask, std::uint32_t granules) {
    const MaskClass& user = mask.port_class(false);
    if (user.empty() || granules == 0) {
        return {};
    }
    const std::uint32_t first = (user.lo + kGranuleSlots - 1) / kGranuleSlots;
    const std::uint32_t end = (user.hi + 1) / kGranuleSlots;
    return end <= first ? Grid{first, 0} : Grid{first, (end - first) / granules};
}

bool granule_free(const PortBlock& g, Tick now) {
    return g.holder == kNoHolder && (g.held == 0 || reached(now, g.free_at));
}

// Free to give: every granule free, and some slot of it allocatable (a reserved range can
// cover a whole block). A granule is one word of the mask.
bool block_free(const AddressPorts& a, const PortMask& mask, std::uint32_t first,
                std::uint32_t granules, Tick now) {
    std::uint64_t allowed = 0;
    for (std::uint32_t g = first; g < first + granules; ++g) {
        if (!granule_free(a.blocks[g], now)) {
            return false;
        }
        allowed |= mask.word(g);
    }
    return allowed != 0;
}

} // namespace

std::uint32_t blocks_that_fit(const PortMask& mask, std::uint32_t granules) {
    return grid_of(mask, granules).count;
}

std::uint32_t PortAllocator::open_block(std::uint16_t pool_index, std::uint32_t granules,
                                        std::uint32_t subscriber, std::uint64_t port_key,
                                        Tick now) {
    AddressPorts& a = *addresses_[pool_index];
    const Grid grid = grid_of(*mask_, granules);
    if (grid.count == 0) {
        return kNoBlock;
    }
    // Which block a subscriber gets is as hard to guess as its ports (RFC 6888 REQ-15): a
    // keyed start, mixed afresh for each block it opens (a counter moving the start on by one,
    // as Algorithm 4 does for ports, would put a subscriber's blocks side by side, so that one
    // block would tell where the next lies), then the first free one after it.
    const Alg4Seed seed = alg4_seed(port_key, Protocol::icmp);
    std::uint32_t& counter = alg4_table_[seed.index % kAlg4TableSize];
    const std::uint32_t start = mix32(seed.offset ^ (counter++ * 0x9e3779b9u)) % grid.count;
    for (std::uint32_t i = 0; i < grid.count; ++i) {
        const std::uint32_t k = start + i < grid.count ? start + i : start + i - grid.count;
        const std::uint32_t first = grid.first + k * granules;
        if (!block_free(a, *mask_, first, granules, now)) {
            continue;
        }
        for (std::uint32_t g = first; g < first + granules; ++g) {
            a.blocks[g] = PortBlock{};
            a.blocks[g].holder = subscriber;
            a.blocks[g].head = static_cast<std::uint16_t>(first);
        }
        PortBlock& head = a.blocks[first];
        head.granules = static_cast<std::uint16_t>(granules);
        head.opened = now;
        head.interims = 0;
        return first;
    }
    return kNoBlock;
}

bool PortAllocator::claim_in_block(std::uint16_t pool_index, Protocol proto, std::uint16_t port,
                                   std::uint32_t head, std::uint32_t granules, Tick opened,
                                   std::uint32_t subscriber, SubscriberBlocks& blocks, Tick now) {
    AddressPorts& a = *addresses_[pool_index];
    const auto slot = slice_.slot_of(port);
    if (!slot || granules == 0 || head + granules > a.blocks.size() ||
        *slot / kGranuleSlots < head || *slot / kGranuleSlots >= head + granules) {
        return false;
    }
    PortBlock& first = a.blocks[head];
    const bool own = first.holder == subscriber && first.head == head && first.granules == granules;
    if (!own) {
        for (std::uint32_t g = head; g < head + granules; ++g) {
            if (!granule_free(a.blocks[g], now)) {
                return false;
            }
        }
    }
    PortBitmap& bits = bitmap(pool_index, proto);
    if (!bits.is_free(*slot, mask_)) {
        return false;
    }
    if (!own) {
        for (std::uint32_t g = head; g < head + granules; ++g) {
            a.blocks[g] = PortBlock{};
            a.blocks[g].holder = subscriber;
            a.blocks[g].head = static_cast<std::uint16_t>(head);
        }
        first.granules = static_cast<std::uint16_t>(granules);
        first.opened = opened;
        link(blocks, block_ref(pool_index, head));
    }
    bits.take(*slot, mask_);
    ++first.in_use;
    return true;
}

std::optional<PortGrant> PortAllocator::take_in_block(const PortRequest& req, Alg4Seed seed,
                                                      std::uint32_t granule,
                                                      std::uint32_t granules) {
    PortBitmap& bits = bitmap(req.pool_index, req.proto);
    const std::uint32_t lo = granule * kGranuleSlots;
    const std::uint32_t hi = lo + granules * kGranuleSlots - 1;
    if (const auto slot = slice_.slot_of(req.inside_port);
        slot && *slot >= lo && *slot <= hi && bits.is_free(*slot, mask_)) {
        bits.take(*slot, mask_);
        return PortGrant{req.inside_port, true};
    }
    const unsigned parity = req.inside_port & 1u;
    std::uint32_t& counter = alg4_table_[seed.index % kAlg4TableSize];
    const std::uint32_t pairs = granules * kGranuleSlots / 2;
    const std::uint32_t start = lo + (seed.offset + counter++) % pairs * 2 + parity;
    auto slot = bits.find_free(start, parity, lo, hi, mask_);
    if (!slot) {
        slot = bits.find_free(start, parity ^ 1u, lo, hi, mask_);
    }
    if (!slot) {
        return std::nullopt;
    }
    bits.take(*slot, mask_);
    return PortGrant{slice_.port_of(*slot), false};
}

BlockGrant PortAllocator::allocate_in_blocks(const PortRequest& req, std::uint64_t port_key,
                                             SubscriberBlocks& blocks, std::uint32_t subscriber,
                                             const BlockPolicy& policy, std::uint32_t ports_in_use,
                                             Tick now) {
    const Alg4Seed seed = alg4_seed(port_key, req.proto);
    for (std::uint32_t ref = blocks.first; ref != kNoBlock;) {
        PortBlock& b = addresses_[block_pool(ref)]->blocks[block_granule(ref)];
        const bool closed =
            policy.active_timeout != 0 && reached(now, b.opened + policy.active_timeout);
        if (block_pool(ref) == req.pool_index && !closed) {
            if (auto grant = take_in_block(req, seed, block_granule(ref), b.granules)) {
                ++b.in_use;
                if (policy.adaptive) {
                    note_ports_in_use(blocks.demand, ports_in_use + 1);
                }
                return BlockGrant{grant, BlockRefusal::none, kNoBlock};
            }
        }
        ref = b.next;
    }
    if (blocks.count >= policy.max_blocks) {
        return BlockGrant{std::nullopt, BlockRefusal::subscriber_blocks, kNoBlock};
    }
    std::uint32_t granules = policy.granules;
    if (policy.adaptive) {
        granules = next_block_size(policy.sizing, blocks.demand, ports_in_use, now) / kGranuleSlots;
    }
    std::uint32_t first = open_block(req.pool_index, granules, subscriber, port_key, now);
    // A smaller block still serves the mapping: halve the adaptive size before refusing.
    while (first == kNoBlock && policy.adaptive && granules > policy.smallest()) {
        granules /= 2;
        first = open_block(req.pool_index, granules, subscriber, port_key, now);
    }
    if (first == kNoBlock) {
        return BlockGrant{std::nullopt, BlockRefusal::no_free_block, kNoBlock};
    }
    const std::uint32_t ref = block_ref(req.pool_index, first);
    link(blocks, ref);
    PortBlock& b = addresses_[req.pool_index]->blocks[first];
    // A new block has an allocatable slot (block_free), and nothing of it is in use.
    auto grant = take_in_block(req, seed, first, granules);
    ++b.in_use;
    if (policy.adaptive) {
        note_block_opened(policy.sizing, blocks.demand, granules * kGranuleSlots, now);
        note_ports_in_use(blocks.demand, ports_in_use + 1);
    }
    return BlockGrant{grant, BlockRefusal::none, ref};
}

// Into the subscriber's list after every block at least as large: the newest of its size.
void PortAllocator::link(SubscriberBlocks& blocks, std::uint32_t ref) {
    PortBlock& b = addresses_[block_pool(ref)]->blocks[block_granule(ref)];
    std::uint32_t* at = &blocks.first;
    while (*at != kNoBlock) {
        PortBlock& other = addresses_[block_pool(*at)]->blocks[block_granule(*at)];
        if (other.granules < b.granules) {
            break;
        }
        at = &other.next;
    }
    b.next = *at;
    *at = ref;
    ++blocks.count;
}

std::uint32_t PortAllocator::release_in_block(std::uint16_t pool_index, Protocol proto,
                                              std::uint16_t port, SubscriberBlocks& blocks,
                                              const BlockPolicy& policy, std::uint32_t ports_in_use,
                                              Tick now, Tick hold_down) {
    const auto slot = slice_.slot_of(port);
    if (!slot) {
        return kNoBlock;
    }
    bitmap(pool_index, proto).release(*slot, mask_);
    AddressPorts& a = *addresses_[pool_index];
    const std::uint32_t first = a.blocks[*slot / kGranuleSlots].head;
    PortBlock& b = a.blocks[first];
    if (b.holder == kNoHolder || b.in_use == 0 || --b.in_use > 0) {
        return kNoBlock;
    }
    // Unlink it: a subscriber holds at most BlocksConfig::kMaxBlocks.
    const std::uint32_t ref = block_ref(pool_index, first);
    for (std::uint32_t* at = &blocks.first; *at != kNoBlock;) {
        if (*at == ref) {
            *at = b.next;
            break;
        }
        at = &addresses_[block_pool(*at)]->blocks[block_granule(*at)].next;
    }
    --blocks.count;
    const std::uint32_t granules = b.granules;
    for (std::uint32_t g = first; g < first + granules; ++g) {
        a.blocks[g].holder = kNoHolder;
        a.blocks[g].held = hold_down != 0 ? 1 : 0;
        a.blocks[g].free_at = now + hold_down;
    }
    if (policy.adaptive) {
        note_block_freed(policy.sizing, blocks.demand, ports_in_use, now);
    }
    return ref;
}

bool PortAllocator::has_free_block(std::uint16_t pool_index, std::uint32_t granules,
                                   Tick now) const {
    const AddressPorts& a = *addresses_[pool_index];
    const Grid grid = grid_of(*mask_, granules);
    for (std::uint32_t k = 0; k < grid.count; ++k) {
        if (block_free(a, *mask_, grid.first + k * granules, granules, now)) {
            return true;
        }
    }
    return false;
}

BlockCounts PortAllocator::block_counts(std::uint16_t pool_index, std::uint32_t granules,
                                        Tick now) const {
    const AddressPorts& a = *addresses_[pool_index];
    BlockCounts counts;
    for (std::uint32_t g = 0; g < a.blocks.size(); ++g) {
        const PortBlock& b = a.blocks[g];
        if (b.holder != kNoHolder && b.head == g) {
            ++counts.in_use;
        } else if (b.holder == kNoHolder && b.head == g && b.held != 0 &&
                   !reached(now, b.free_at)) {
            ++counts.held;
        }
    }
    const Grid grid = grid_of(*mask_, granules);
    for (std::uint32_t k = 0; k < grid.count; ++k) {
        counts.free += block_free(a, *mask_, grid.first + k * granules, granules, now) ? 1 : 0;
    }
    return counts;
}

std::pair<std::uint16_t, std::uint16_t> PortAllocator::block_span(std::uint32_t ref) const {
    const PortBlock& b = block(ref);
    const std::uint32_t lo = block_granule(ref) * kGranuleSlots;
    const std::uint32_t hi = lo + std::uint32_t{b.granules} * kGranuleSlots - 1;
    return {slice_.port_of(lo), slice_.port_of(std::min(hi, slice_.slot_count() - 1))};
}

} // namespace ephemera
