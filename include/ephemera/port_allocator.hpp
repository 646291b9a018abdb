// One worker's external ports: which ports of the dynamic range it owns (PortSlice), which of
// those are free on each pool address and protocol (PortBitmap), and how a new mapping picks one
// (PortAllocator).
//
// Finding a free port is a bounded bit scan, never trial and error: each 64-port word of the
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
#include <vector>

namespace ephemera {

// The ports of [range] that one worker owns, numbered densely as "slots". Ownership is by port
// pair (p, p ^ 1), so slot = 2 * pair_rank + (port & 1) and a slot's low bit is its port's
// parity. A pair cut by the range's edge keeps both slots; the slot outside the range, and every
// reserved port, is marked never-free in the bitmaps.
class PortSlice {
public:
    static constexpr std::uint16_t kNoRank = 0xffff;

    PortSlice(const Ownership& ownership, WorkerId worker, PortRange range);

    [[nodiscard]] std::uint32_t slot_count() const {
        return static_cast<std::uint32_t>(pair_port_.size() * 2);
    }
    [[nodiscard]] PortRange range() const { return range_; }
    // Slot of a port this worker owns within the range, else nullopt.
    [[nodiscard]] std::optional<std::uint32_t> slot_of(std::uint16_t port) const {
        if (!range_.contains(port)) {
            return std::nullopt;
        }
        const std::uint16_t rank = rank_of_pair_[port >> 1];
        if (rank == kNoRank) {
            return std::nullopt;
        }
        return std::uint32_t{rank} * 2 + (port & 1u);
    }
    [[nodiscard]] std::uint16_t port_of(std::uint32_t slot) const {
        return static_cast<std::uint16_t>(pair_port_[slot >> 1] | (slot & 1u));
    }
    // First slot whose port is >= port (slot_count() when none): slots are in port order.
    [[nodiscard]] std::uint32_t lower_bound(std::uint16_t port) const;

private:
    PortRange range_;
    std::vector<std::uint16_t> rank_of_pair_; // 32768 entries, kNoRank where not owned
    std::vector<std::uint16_t> pair_port_;    // even port of each owned pair, ascending
};

// Free slots of one (pool address, protocol) on one worker.
class PortBitmap {
public:
    explicit PortBitmap(std::uint32_t slots);

    [[nodiscard]] bool is_free(std::uint32_t slot) const {
        return (words_[slot >> 6] >> (slot & 63)) & 1u;
    }
    void take(std::uint32_t slot);
    void release(std::uint32_t slot);
    [[nodiscard]] std::uint32_t free_count() const { return free_; }

    // First free slot of the given parity in [lo, hi], searching from `start` upwards and
    // wrapping to lo. Precondition: lo <= start <= hi < slots.
    [[nodiscard]] std::optional<std::uint32_t> find_free(std::uint32_t start, unsigned parity,
                                                         std::uint32_t lo, std::uint32_t hi) const;

private:
    [[nodiscard]] std::optional<std::uint32_t> first_free_in(std::uint32_t from, std::uint32_t to,
                                                             unsigned parity) const;
    void update_summary(std::uint32_t word);

    std::vector<std::uint64_t> words_;                  // bit set = slot free
    std::array<std::vector<std::uint64_t>, 2> summary_; // per parity: bit w = word w has a free one
    std::uint32_t free_ = 0;
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

    // Keeps the inside port when it is free and in this worker's slice; otherwise picks by
    // RFC 6056 Algorithm 4 (double-hash), preferring the inside port's class (0-1023 or
    // 1024-65535; RFC 4787 REQ-3a) and then its parity (REQ-4), and taking the other class or
    // parity only when the preferred one has no free port. nullopt: this pool address has no
    // free port on this worker.
    std::optional<PortGrant> allocate(const PortRequest& request);
    void release(std::uint16_t pool_index, Protocol proto, std::uint16_t port);

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
        bitmaps_[location / slice_.slot_count()].release(location % slice_.slot_count());
    }
    [[nodiscard]] std::size_t locations() const { return bitmaps_.size() * slice_.slot_count(); }

    [[nodiscard]] const PortSlice& slice() const { return slice_; }
    [[nodiscard]] bool owns(std::uint16_t port) const { return slice_.slot_of(port).has_value(); }
    [[nodiscard]] bool is_free(std::uint16_t pool_index, Protocol proto, std::uint16_t port) const;
    [[nodiscard]] std::uint32_t free_ports(std::uint16_t pool_index, Protocol proto) const {
        return bitmap(pool_index, proto).free_count();
    }
    // Ports this worker can ever hand out on one address and protocol.
    [[nodiscard]] std::uint32_t usable_ports() const { return usable_; }

private:
    [[nodiscard]] const PortBitmap& bitmap(std::uint16_t pool_index, Protocol proto) const {
        return bitmaps_[pool_index * kProtocolCount + static_cast<std::size_t>(proto_index(proto))];
    }
    PortBitmap& bitmap(std::uint16_t pool_index, Protocol proto) {
        return bitmaps_[pool_index * kProtocolCount + static_cast<std::size_t>(proto_index(proto))];
    }

    std::optional<std::uint32_t> search(const PortBitmap& bits, std::uint64_t who,
                                        std::uint64_t what, unsigned parity, std::uint32_t lo,
                                        std::uint32_t hi);

    static constexpr std::size_t kAlg4TableSize = 1024;

    PortSlice slice_;
    SipKey secret_;
    std::uint32_t usable_ = 0;
    // Slot intervals of the two port classes; empty when hi < lo.
    std::uint32_t system_lo_ = 0, system_hi_ = 0; // ports 0-1023
    std::uint32_t user_lo_ = 0, user_hi_ = 0;     // ports 1024-65535
    std::vector<PortBitmap> bitmaps_;             // [pool_index][protocol]
    std::array<std::uint32_t, kAlg4TableSize> alg4_table_{};
};

} // namespace ephemera
