// One worker's external ports: which ports it owns (PortSlice), which of those the config lets
// it hand out and which are free on each pool address and protocol (PortBitmap), and how a new
// mapping picks one (PortAllocator).
//
// Slots number every port the worker owns in 0-65535, whatever the configured range: the range
// and the reserved ports are a mask over the slots ("allocatable"), so the range can change
// while mappings live on, without renumbering anything. A port outside a shrunk range keeps
// its mapping until that expires (it drains) and is not handed out again.
//
// Finding a free port is a bounded bit scan, never trial and error: each 64-port word of a
// bitmap has a summary bit per parity saying "this word has a free port of this parity", so a
// search touches at most a few summary words and one or two bitmap words.
#pragma once

#include "ephemera/ownership.hpp"
#include "ephemera/siphash.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ephemera {

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

// Ports of one (pool address, protocol) on one worker: which are used (by a mapping, or held
// down after one), and which are free (allocatable and not used), with the summaries.
class PortBitmap {
public:
    // All `slots` start free; refresh() applies an allocatable mask.
    explicit PortBitmap(std::uint32_t slots);

    [[nodiscard]] bool is_free(std::uint32_t slot) const {
        return (free_[slot >> 6] >> (slot & 63)) & 1u;
    }
    [[nodiscard]] bool is_used(std::uint32_t slot) const {
        return (used_[slot >> 6] >> (slot & 63)) & 1u;
    }
    void take(std::uint32_t slot);
    // The slot is no longer used; it becomes free if it is allocatable.
    void release(std::uint32_t slot, bool allocatable = true);
    // free = allocatable & ~used, everywhere (after the range or reserved ports changed).
    void refresh(const std::vector<std::uint64_t>& allocatable);
    [[nodiscard]] std::uint32_t free_count() const { return free_count_; }

    // First free slot of the given parity in [lo, hi], searching from `start` upwards and
    // wrapping to lo. Precondition: lo <= start <= hi < slots.
    [[nodiscard]] std::optional<std::uint32_t> find_free(std::uint32_t start, unsigned parity,
                                                         std::uint32_t lo, std::uint32_t hi) const;

private:
    [[nodiscard]] std::optional<std::uint32_t> first_free_in(std::uint32_t from, std::uint32_t to,
                                                             unsigned parity) const;
    void update_summary(std::uint32_t word);

    std::vector<std::uint64_t> free_;                   // bit set = slot free
    std::vector<std::uint64_t> used_;                   // bit set = slot used or held
    std::array<std::vector<std::uint64_t>, 2> summary_; // per parity: bit w = word w has a free one
    std::uint32_t free_count_ = 0;
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

class PortAllocator {
public:
    PortAllocator(const Ownership& ownership, WorkerId worker, PortRange range,
                  std::span<const PortRange> reserved, std::size_t pool_size, SipKey secret);

    // Keeps the inside port when it is free (owned, in range, not reserved, unused);
    // otherwise picks by RFC 6056 Algorithm 4 (double-hash), preferring the inside port's
    // class (0-1023 or 1024-65535; RFC 4787 REQ-3a) and then its parity (REQ-4), and taking
    // the other class or parity only when the preferred one has no free port. nullopt: this
    // pool address has no free port on this worker.
    std::optional<PortGrant> allocate(const PortRequest& request);
    void release(std::uint16_t pool_index, Protocol proto, std::uint16_t port);

    // A new range and reserved ports: ports leaving the range stay with their mappings but are
    // not handed out again; ports entering it become free where unused.
    void set_range(PortRange range, std::span<const PortRange> reserved);
    // Room for one more pool address (its index is the old size()).
    void add_address();
    [[nodiscard]] std::size_t addresses() const { return bitmaps_.size() / kProtocolCount; }

    // A port's place among all of this worker's (address, protocol, port) slots, compact
    // enough for the hold-down queue; release_location() frees it.
    [[nodiscard]] std::uint32_t location(std::uint16_t pool_index, Protocol proto,
                                         std::uint16_t port) const {
        return (std::uint32_t{pool_index} * kProtocolCount +
                static_cast<std::uint32_t>(proto_index(proto))) *
                   slice_.slot_count() +
               *slice_.slot_of(port);
    }
    void release_location(std::uint32_t location) {
        const std::uint32_t slot = location % slice_.slot_count();
        bitmaps_[location / slice_.slot_count()].release(slot, is_allocatable_slot(slot));
    }
    [[nodiscard]] std::size_t locations() const { return bitmaps_.size() * slice_.slot_count(); }

    [[nodiscard]] const PortSlice& slice() const { return slice_; }
    [[nodiscard]] bool owns(std::uint16_t port) const { return slice_.slot_of(port).has_value(); }
    [[nodiscard]] bool is_allocatable(std::uint16_t port) const {
        const auto slot = slice_.slot_of(port);
        return slot && is_allocatable_slot(*slot);
    }
    [[nodiscard]] bool is_free(std::uint16_t pool_index, Protocol proto, std::uint16_t port) const;
    [[nodiscard]] std::uint32_t free_ports(std::uint16_t pool_index, Protocol proto) const {
        return bitmap(pool_index, proto).free_count();
    }
    // Ports this worker may hand out on one address and protocol (range minus reserved).
    [[nodiscard]] std::uint32_t usable_ports() const { return usable_; }

private:
    [[nodiscard]] const PortBitmap& bitmap(std::uint16_t pool_index, Protocol proto) const {
        return bitmaps_[pool_index * kProtocolCount + static_cast<std::size_t>(proto_index(proto))];
    }
    PortBitmap& bitmap(std::uint16_t pool_index, Protocol proto) {
        return bitmaps_[pool_index * kProtocolCount + static_cast<std::size_t>(proto_index(proto))];
    }
    [[nodiscard]] bool is_allocatable_slot(std::uint32_t slot) const {
        return (allocatable_[slot >> 6] >> (slot & 63)) & 1u;
    }
    [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> interval(std::uint32_t from,
                                                                   std::uint32_t to) const;
    std::optional<std::uint32_t> search(const PortBitmap& bits, std::uint64_t who,
                                        std::uint64_t what, unsigned parity, std::uint32_t lo,
                                        std::uint32_t hi);

    static constexpr std::size_t kAlg4TableSize = 1024;

    PortSlice slice_;
    SipKey secret_;
    std::vector<std::uint64_t> allocatable_; // bit set = in range and not reserved
    std::uint32_t usable_ = 0;
    // Slot intervals of the two port classes within the range (edge pairs whole); empty when
    // hi < lo.
    std::uint32_t system_lo_ = 0, system_hi_ = 0; // ports 0-1023
    std::uint32_t user_lo_ = 0, user_hi_ = 0;     // ports 1024-65535
    std::vector<PortBitmap> bitmaps_;             // [pool_index][protocol]
    std::array<std::uint32_t, kAlg4TableSize> alg4_table_{};
};

} // namespace ephemera
