// One worker's external ports: which ports it owns (PortSlice), which of those the config lets
// it hand out (PortMask), which are in use on each pool address and protocol (PortBitmap),
// and how a new mapping picks one (PortAllocator).
//
// Slots number every port the worker owns in 0-65535, whatever the configured range: the range
// and the reserved ports are a mask over the slots, so the range can change while mappings live
// on, without renumbering anything. A port outside a shrunk range keeps its mapping until that
// expires (it drains) and is not handed out again.
//
// Config changes are compiled off the worker (control thread): a new range is a new PortMask,
// a new pool address a new AddressPorts, both built whole before the worker sees them, so the
// worker only swaps a pointer (set_mask, set_addresses): no allocation and nothing the size of
// a table runs on it. Free is "allocatable and not used", computed as a search needs it; no
// bitmap is rewritten when the mask changes.
//
// Finding a free port is a bounded bit scan, never trial and error: each 64-slot word of a
// bitmap has a summary bit per parity saying "this word has an unused slot of this parity", and
// the mask has the same for "allocatable", so a search touches a few summary words and one or
// two bitmap words.
#pragma once

#include "ephemera/hold_down.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/port_blocks.hpp"
#include "ephemera/prefetch.hpp"
#include "ephemera/siphash.hpp"
#include "ephemera/table_memory.hpp"
#include "ephemera/types.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ephemera {

inline constexpr std::uint32_t kNoIndex = 0xffffffffu;

// The ports one worker owns, numbered densely as "slots" in port order. Ownership is by port
// pair (p, p ^ 1), so slot = 2 * pair_rank + (port & 1) and a slot's low bit is its port's
// parity.
class PortSlice {
public:
    static constexpr std::uint16_t kNoRank = 0xffff;

    PortSlice(const Ownership& ownership, WorkerId worker);

    [[nodiscard]] std::uint32_t slot_count() const {
        return static_cast<std::uint32_t>(pair_port_.size() * 2);
    }
    // Slot of a port this worker owns, else nullopt.
    [[nodiscard]] std::optional<std::uint32_t> slot_of(std::uint16_t port) const {
        const std::uint16_t rank = rank_of_pair_[port >> 1];
        if (rank == kNoRank) {
            return std::nullopt;
        }
        return std::uint32_t{rank} * 2 + (port & 1u);
    }
    [[nodiscard]] std::uint16_t port_of(std::uint32_t slot) const {
        return static_cast<std::uint16_t>(pair_port_[slot >> 1] | (slot & 1u));
    }
    // First slot whose port is >= port (slot_count() when none).
    [[nodiscard]] std::uint32_t lower_bound(std::uint16_t port) const;

private:
    std::vector<std::uint16_t> rank_of_pair_; // 32768 entries, kNoRank where not owned
    std::vector<std::uint16_t> pair_port_;    // even port of each owned pair, ascending
};

// x % divisor for 32-bit values without a divide instruction (Lemire, Kaser and Kurz, "Faster
// remainder by direct computation", 2019): exact for every 32-bit x and non-zero divisor. The
// allocator's divisor (the pairs of a port class) changes only with the config, so its
// reciprocal is computed once and each allocation pays two multiplications, not a division.
struct FastModulo {
    FastModulo() = default;
    explicit constexpr FastModulo(std::uint32_t d)
        : divisor(d), reciprocal(~std::uint64_t{0} / d + 1) {}
    [[nodiscard]] constexpr std::uint32_t of(std::uint32_t x) const {
        // The high 64 bits of the 96-bit product (reciprocal * x mod 2^64) * divisor, in halves.
        const std::uint64_t low = reciprocal * x;
        const std::uint64_t high_part = (low >> 32) * divisor;
        const std::uint64_t low_part = ((low & 0xffffffffull) * divisor) >> 32;
        return static_cast<std::uint32_t>((high_part + low_part) >> 32);
    }
    std::uint32_t divisor = 0;
    std::uint64_t reciprocal = 0;
};

// One port class of a mask (0-1023 or 1024-65535, RFC 4787 REQ-3a), compiled for the
// allocator's search: the class's allocatable slots alone, and per parity the words that have
// one. A search within the class then needs no test of where the class begins and ends: outside
// it these words are zero.
struct MaskClass {
    std::uint32_t lo = 1, hi = 0; // slot interval (lo even, hi odd), empty when lo > hi
    FastModulo pairs;             // Algorithm 4's positions: the interval's port pairs
    std::vector<std::uint64_t> bits;
    std::array<std::vector<std::uint64_t>, 2> summary;
    std::uint32_t first_summary = 0, last_summary = 0; // the summary words the class spans
    std::uint32_t summary_words = 0;                   // how many: a search's rounds

    [[nodiscard]] bool empty() const { return lo > hi; }
};

// Which slots of a worker's slice the config lets it hand out: in the port range and not
// reserved. Immutable once built; shared by every address and protocol of the worker.
class PortMask {
public:
    // Every slot allocatable (a bitmap on its own, in tests).
    explicit PortMask(std::uint32_t slots);
    PortMask(const PortSlice& slice, PortRange range, std::span<const PortRange> reserved);

    [[nodiscard]] bool allows(std::uint32_t slot) const {
        return (bits_[slot >> 6] >> (slot & 63)) & 1u;
    }
    [[nodiscard]] std::uint64_t word(std::uint32_t w) const { return bits_[w]; }
    [[nodiscard]] std::uint64_t summary(unsigned parity, std::uint32_t sw) const {
        return summary_[parity][sw];
    }
    [[nodiscard]] std::uint32_t slots() const { return slots_; }
    [[nodiscard]] std::uint32_t usable() const { return usable_; }
    // The port class of 0-1023 (system) or of 1024-65535; its slot interval within the range
    // (edge pairs whole) is empty when lo > hi.
    [[nodiscard]] const MaskClass& port_class(bool system) const { return classes_[system]; }
    // Changes with every mask, so a bitmap can tell its free count is stale.
    std::uint64_t generation = 0;

private:
    void summarise();
    void compile_classes();

    std::uint32_t slots_ = 0;
    std::uint32_t usable_ = 0;
    std::vector<std::uint64_t> bits_;                   // bit set = allocatable
    std::array<std::vector<std::uint64_t>, 2> summary_; // per parity: word w has one allocatable
    std::array<MaskClass, 2> classes_;                  // [0] user, [1] system
};

// Slots of one (pool address, protocol) on one worker that are in use (by a mapping, or held
// down after one), with per-parity summaries of the words that still have an unused slot.
class PortBitmap {
public:
    static constexpr std::uint64_t kEvenSlots = 0x5555555555555555ull;
    static constexpr std::uint64_t kOddSlots = 0xaaaaaaaaaaaaaaaaull;
    // The bits of a 64-slot word whose slots have the given parity (0 even, 1 odd).
    static constexpr std::uint64_t slots_of_parity(unsigned parity) {
        return parity != 0 ? kOddSlots : kEvenSlots;
    }

    explicit PortBitmap(std::uint32_t slots);

    [[nodiscard]] bool is_used(std::uint32_t slot) const {
        return (used_[slot >> 6] >> (slot & 63)) & 1u;
    }
    // Free: allocatable under `mask` (every slot without one) and not used.
    [[nodiscard]] bool is_free(std::uint32_t slot, const PortMask* mask = nullptr) const {
        return !is_used(slot) && (mask == nullptr || mask->allows(slot));
    }
    // `mask`: the one in force, which keeps the free count under it current.
    void take(std::uint32_t slot, const PortMask* mask = nullptr);
    // A slot a search under `mask` has just found: unused, and allowed (a search returns only
    // those), so neither is tested again. What every allocation ends with.
    void take_found(std::uint32_t slot, const PortMask& mask) {
        const std::uint32_t w = slot >> 6;
        used_[w] |= 1ull << (slot & 63);
        used_allowed_ += counted_for_ == mask.generation ? 1u : 0u;
        if ((~used_[w] & valid_[w] & slots_of_parity(slot & 1u)) == 0) {
            summary_[slot & 1u][w >> 6] &= ~(1ull << (w & 63));
        }
    }
    void release(std::uint32_t slot, const PortMask* mask = nullptr);
    // Free slots under `mask` (every slot without one). Under a mask, kept as slots are taken
    // and released and counted afresh, once, after the mask changed; without one (tests),
    // counted.
    [[nodiscard]] std::uint32_t free_count(const PortMask* mask = nullptr) const;

    // First free slot of the given parity in [lo, hi], searching from `start` upwards and
    // wrapping to lo. Precondition: lo <= start <= hi < slots.
    [[nodiscard]] std::optional<std::uint32_t> find_free(std::uint32_t start, unsigned parity,
                                                         std::uint32_t lo, std::uint32_t hi,
                                                         const PortMask* mask = nullptr) const {
        const std::uint32_t slot = find_free_slot(start, parity, lo, hi, mask);
        return slot == kNoSlot ? std::nullopt : std::optional<std::uint32_t>(slot);
    }
    // The same, kNoSlot when there is none: returned in a register (see PackedGrant).
    static constexpr std::uint32_t kNoSlot = 0xffffffffu;
    [[nodiscard]] std::uint32_t find_free_slot(std::uint32_t start, unsigned parity,
                                               std::uint32_t lo, std::uint32_t hi,
                                               const PortMask* mask = nullptr) const;
    // The same over one class of a mask, [c.lo, c.hi]: what allocations search. Precondition:
    // c.lo <= start <= c.hi.
    [[nodiscard]] std::uint32_t find_free_in(const MaskClass& c, std::uint32_t start,
                                             unsigned parity) const;

private:
    [[nodiscard]] std::uint64_t free_word(std::uint32_t w, const PortMask* mask) const {
        return ~used_[w] & (mask == nullptr ? valid_[w] : mask->word(w));
    }
    void update_summary(std::uint32_t word);

    std::uint32_t slots_;
    std::vector<std::uint64_t> used_;                   // bit set = slot used or held
    std::vector<std::uint64_t> valid_;                  // bit set = a slot (the last word's tail)
    std::array<std::vector<std::uint64_t>, 2> summary_; // per parity: word w has an unused one
    // Free count under the mask of generation `counted_for_` (used slots it allows).
    mutable std::uint32_t used_allowed_ = 0;
    mutable std::uint64_t counted_for_ = ~0ull;
};

// All of one pool address's port state on one worker: per protocol, the used slots and the
// outside-to-inside index (external port slot -> mapping), and the ports in hold-down. Built
// whole by whoever adds the address (the control thread at run time), then owned by plans and
// written only by its worker.
struct AddressPorts {
    // `holds`: whether its ports are ever held down (not in deterministic mode, where a port
    // only ever goes back to the subscriber that had it).
    explicit AddressPorts(std::uint32_t slots, bool holds = true);

    std::array<PortBitmap, kProtocolCount> bitmaps;
    RecordVector<std::uint32_t> out2in; // [protocol][slot] -> mapping, kNoIndex when none
    HoldChunks hold_chunks;             // its share of the hold-down queue's capacity
    std::vector<PortBlock> blocks;      // blocks mode: one record per 64-slot granule
    bool donated = false;               // its hold chunks joined the worker's queue
};

struct PortRequest {
    Ipv4Addr inside;
    std::uint16_t inside_port = 0;
    Protocol proto = Protocol::udp;
    std::uint16_t pool_index = 0;
    Ipv4Addr pool_address;
};

struct PortGrant {
    std::uint16_t port = 0;
    bool preserved = false; // the subscriber's own source port was kept (RFC 4787 REQ-3a/4)
};

// A grant or none in one 32-bit register: what the allocator's out-of-line functions return.
// A std::optional<PortGrant> returned from there is built on the stack by byte and half-word
// stores and read back whole, which the CPU cannot forward from its store buffer: a stall on
// every allocation. Unpacked inline, at the caller.
struct PackedGrant {
    static constexpr std::uint32_t kFound = 1u << 31;
    std::uint32_t bits = 0; // 0: none; else kFound | preserved << 16 | port

    static constexpr PackedGrant of(std::uint16_t port, bool preserved) {
        return PackedGrant{kFound | std::uint32_t{preserved} << 16 | port};
    }
    [[nodiscard]] constexpr std::optional<PortGrant> unpack() const {
        if (bits == 0) {
            return std::nullopt;
        }
        return PortGrant{static_cast<std::uint16_t>(bits), ((bits >> 16) & 1u) != 0};
    }
};

// A blocks-mode allocation: the port, or why there is none, and whether it opened a block.
struct BlockGrant {
    std::optional<PortGrant> grant;
    BlockRefusal refusal = BlockRefusal::none;
    std::uint32_t opened = kNoBlock; // the block it opened, if it did
};

// Blocks of one pool address on one worker, for telemetry.
struct BlockCounts {
    std::uint32_t in_use = 0;
    std::uint32_t held = 0; // released, in hold-down
    std::uint32_t free = 0; // of the configured size, that could be given now
};

// RFC 6056 Algorithm 4's two keyed functions of (inside address, pool address, protocol): the
// offset F and the table index G.
struct Alg4Seed {
    std::uint32_t offset = 0;
    std::uint32_t index = 0;
};

// Both come from one keyed hash of the subscriber and its pool address, the "port key", which
// the subscriber's record keeps (a new mapping then costs no SipHash), turned per protocol by a
// rotation (udp 0, tcp 21, icmp 42 bits). The key is a keyed hash's output: each rotation of it
// is as unpredictable to an outsider as the key itself. A mixer on top would add nothing (any
// public bijection: whoever learnt one protocol's seed would learn the key, and so the others'),
// only its multiplications on every allocation's critical path.
[[nodiscard]] constexpr Alg4Seed alg4_seed(std::uint64_t port_key, Protocol proto) {
    const std::uint64_t h = std::rotl(port_key, 21 * static_cast<int>(proto_index(proto)));
    return Alg4Seed{static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(h >> 32)};
}

// How many blocks of `granules` the mask's range (ports 1024 and up) has room for on one
// worker: the config check that every worker can give at least one.
[[nodiscard]] std::uint32_t blocks_that_fit(const PortMask& mask, std::uint32_t granules);

class PortAllocator {
public:
    // Without a plan: the allocator builds and owns its mask and `pool_size` addresses (tests,
    // benchmarks, and the first plan's compile).
    PortAllocator(const Ownership& ownership, WorkerId worker, PortRange range,
                  std::span<const PortRange> reserved, std::size_t pool_size, SipKey secret);

    // Keeps the inside port when it is free (owned, in range, not reserved, unused);
    // otherwise picks by RFC 6056 Algorithm 4 (double-hash), preferring the inside port's
    // class (0-1023 or 1024-65535; RFC 4787 REQ-3a) and then its parity (REQ-4), and taking
    // the other class or parity only when the preferred one has no free port. nullopt: this
    // pool address has no free port on this worker.
    // `port_key`: port_key(request.inside, request.pool_address), as the subscriber keeps it.
    std::optional<PortGrant> allocate(const PortRequest& request, std::uint64_t port_key) {
        return allocate_packed(request, port_key).unpack();
    }
    std::optional<PortGrant> allocate(const PortRequest& request) {
        return allocate(request, port_key(request.inside, request.pool_address));
    }
    // Deterministic mode: the same choice within the subscriber's own run of ports.
    std::optional<PortGrant> allocate_in_range(const PortRequest& request, std::uint64_t port_key,
                                               PortRange range) {
        return allocate_in_range_packed(request, port_key, range).unpack();
    }
    [[nodiscard]] std::uint64_t port_key(Ipv4Addr inside, Ipv4Addr pool_address) const;
    void release(std::uint16_t pool_index, Protocol proto, std::uint16_t port);
    // Takes exactly `port` (a restored mapping keeps its external port): false when this
    // worker does not own it, the range or a reservation excludes it, or it is in use.
    bool claim(std::uint16_t pool_index, Protocol proto, std::uint16_t port);

    // ---- port blocks (port_blocks.cpp; pool.mode = "blocks") ----
    // A port for `request` from the subscriber's blocks on request.pool_index (largest first,
    // skipping closed ones), opening a new block there when they are full and the subscriber
    // holds fewer than policy.max_blocks. Within a block the inside port is kept when free,
    // otherwise a slot of its parity is picked as Algorithm 4 does over the whole range.
    // `ports_in_use`: the most ports the subscriber holds in one protocol (adaptive sizing).
    BlockGrant allocate_in_blocks(const PortRequest& request, std::uint64_t port_key,
                                  SubscriberBlocks& blocks, std::uint32_t subscriber,
                                  const BlockPolicy& policy, std::uint32_t ports_in_use, Tick now);
    // The mapping on `port` ended. The port goes back to its block at once (only its holder
    // can take it again, so nothing needs attributing); a block left with no mapping leaves
    // the subscriber and is held down for `hold_down`. Returns the block freed, else kNoBlock.
    std::uint32_t release_in_block(std::uint16_t pool_index, Protocol proto, std::uint16_t port,
                                   SubscriberBlocks& blocks, const BlockPolicy& policy,
                                   std::uint32_t ports_in_use, Tick now, Tick hold_down);
    // A session coming back (restore): `port` of `proto` for `subscriber`, in the block of
    // `granules` from granule `head` that held it where it was, given at `opened`. The block
    // becomes the subscriber's when every granule is free, or is its own already (an earlier
    // session of the block came first); the port is taken and the block's use counted. False
    // when the granules are another's, the block's shape differs, or the port is taken.
    bool claim_in_block(std::uint16_t pool_index, Protocol proto, std::uint16_t port,
                        std::uint32_t head, std::uint32_t granules, Tick opened,
                        std::uint32_t subscriber, SubscriberBlocks& blocks, Tick now);
    // Some block of `granules` is free on the address (a scan: a new subscriber's anchor).
    [[nodiscard]] bool has_free_block(std::uint16_t pool_index, std::uint32_t granules,
                                      Tick now) const;
    [[nodiscard]] BlockCounts block_counts(std::uint16_t pool_index, std::uint32_t granules,
                                           Tick now) const;
    [[nodiscard]] const PortBlock& block(std::uint32_t ref) const {
        return addresses_[block_pool(ref)]->blocks[block_granule(ref)];
    }
    PortBlock& block_record(std::uint32_t ref) {
        return addresses_[block_pool(ref)]->blocks[block_granule(ref)];
    }
    // The ports of block `ref`, lowest and highest (its span: with several workers the block
    // holds only the ones this worker owns).
    [[nodiscard]] std::pair<std::uint16_t, std::uint16_t> block_span(std::uint32_t ref) const;

    // ---- config, compiled elsewhere and swapped in (O(1), no allocation) ----
    // The mask and the addresses must outlive their use here (a plan holds them).
    void set_mask(const PortMask* mask) { mask_ = mask; }
    // `out2in`: each address's out2in.data(), by pool index (the packet path reads the index
    // through it, one load shorter than through the AddressPorts).
    void set_addresses(std::span<AddressPorts* const> addresses,
                       std::span<std::uint32_t* const> out2in);
    [[nodiscard]] const PortMask& mask() const { return *mask_; }

    // ---- the same, built and kept here (tests; not for a running worker) ----
    void set_range(PortRange range, std::span<const PortRange> reserved);
    void add_address();

    [[nodiscard]] std::size_t addresses() const { return addresses_.size(); }
    [[nodiscard]] AddressPorts& address(std::uint16_t pool_index) {
        return *addresses_[pool_index];
    }

    // The outside-to-inside index entry of a port this worker owns.
    [[nodiscard]] std::uint32_t& out2in(std::uint16_t pool_index, Protocol proto,
                                        std::uint32_t slot) {
        return out2in_[pool_index]
                      [static_cast<std::size_t>(proto_index(proto)) * slice_.slot_count() + slot];
    }

    void prefetch_out2in(std::uint16_t pool_index, Protocol proto, std::uint16_t port) const {
        if (const auto slot = slice_.slot_of(port); slot && pool_index < out2in_.size()) {
            prefetch(&out2in_[pool_index]
                             [static_cast<std::size_t>(proto_index(proto)) * slice_.slot_count() +
                              *slot]);
        }
    }

    // Hold-down (RFC 6888 REQ-8): the port stays used until `release_at`.
    void hold(std::uint16_t pool_index, Protocol proto, std::uint16_t port, Tick release_at) {
        hold_slot(pool_index, proto, *slice_.slot_of(port), release_at);
    }
    // The same for the slot of an owned port (the caller has it at hand).
    void hold_slot(std::uint16_t pool_index, Protocol proto, std::uint32_t slot, Tick release_at);
    // Returns ports whose hold-down is over, at most `budget`; how many.
    std::uint32_t release_held(Tick now, std::uint32_t budget);
    [[nodiscard]] std::size_t ports_held() const { return hold_.size(); }

    [[nodiscard]] const PortSlice& slice() const { return slice_; }
    [[nodiscard]] bool owns(std::uint16_t port) const { return slice_.slot_of(port).has_value(); }
    [[nodiscard]] bool is_allocatable(std::uint16_t port) const {
        const auto slot = slice_.slot_of(port);
        return slot && mask_->allows(*slot);
    }
    [[nodiscard]] bool is_free(std::uint16_t pool_index, Protocol proto, std::uint16_t port) const;
    // Some port free on this address and protocol: a short scan, for the packet path.
    [[nodiscard]] bool has_free(std::uint16_t pool_index, Protocol proto) const;
    // How many: counted (telemetry and tests).
    [[nodiscard]] std::uint32_t free_ports(std::uint16_t pool_index, Protocol proto) const {
        return bitmap(pool_index, proto).free_count(mask_);
    }
    // Ports this worker may hand out on one address and protocol (range minus reserved).
    [[nodiscard]] std::uint32_t usable_ports() const { return mask_->usable(); }

private:
    PackedGrant allocate_packed(const PortRequest& request, std::uint64_t port_key);
    PackedGrant allocate_in_range_packed(const PortRequest& request, std::uint64_t port_key,
                                         PortRange range);
    [[nodiscard]] const PortBitmap& bitmap(std::uint16_t pool_index, Protocol proto) const {
        return addresses_[pool_index]->bitmaps[static_cast<std::size_t>(proto_index(proto))];
    }
    PortBitmap& bitmap(std::uint16_t pool_index, Protocol proto) {
        return addresses_[pool_index]->bitmaps[static_cast<std::size_t>(proto_index(proto))];
    }
    // RFC 6056 Algorithm 4's start in slots [lo, hi]: offset = F(addresses, secret), plus a
    // counter from a table indexed by G(addresses, secret), which moves on. Positions are
    // counted in port pairs (`pairs` reduces modulo the interval's) so the parity bit is ours
    // to set. Inline: on every allocation's critical path.
    [[gnu::always_inline]] std::uint32_t alg4_start(Alg4Seed seed, unsigned parity,
                                                    std::uint32_t lo, std::uint32_t hi,
                                                    const FastModulo& pairs) {
        std::uint32_t& counter = alg4_table_[seed.index % kAlg4TableSize];
        const std::uint32_t start_pair = pairs.of(seed.offset + counter);
        ++counter;
        return std::clamp((lo & ~1u) + start_pair * 2 + parity, lo, hi);
    }
    // A free slot by Algorithm 4 within a port class of the mask, or PortBitmap::kNoSlot.
    std::uint32_t search_class(const PortBitmap& bits, Alg4Seed seed, unsigned parity,
                               const MaskClass& c);
    // The same over any slot interval [lo, hi] (deterministic runs, blocks).
    std::uint32_t search(const PortBitmap& bits, Alg4Seed seed, unsigned parity, std::uint32_t lo,
                         std::uint32_t hi);
    // Blocks: a free block's first granule, claimed for `subscriber`, or kNoBlock.
    std::uint32_t open_block(std::uint16_t pool_index, std::uint32_t granules,
                             std::uint32_t subscriber, std::uint64_t port_key, Tick now);
    void link(SubscriberBlocks& blocks, std::uint32_t ref);
    std::optional<PortGrant> take_in_block(const PortRequest& request, Alg4Seed seed,
                                           std::uint32_t granule, std::uint32_t granules);

    static constexpr std::size_t kAlg4TableSize = 1024;

    PortSlice slice_;
    SipKey secret_;
    const PortMask* mask_ = nullptr;
    std::span<AddressPorts* const> addresses_;
    std::span<std::uint32_t* const> out2in_;
    std::array<std::uint32_t, kAlg4TableSize> alg4_table_{};
    FastModulo pairs_divisor_; // search()'s, for the interval it last searched
    HoldDownQueue hold_;

    // What set_range() and add_address() built (unused under a plan).
    std::vector<std::unique_ptr<PortMask>> own_masks_;
    std::vector<std::unique_ptr<AddressPorts>> own_addresses_;
    std::vector<AddressPorts*> own_address_list_;
    std::vector<std::uint32_t*> own_out2in_list_;
};

} // namespace ephemera
