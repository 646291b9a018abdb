#include "ephemera/port_allocator.hpp"

#include <algorithm>
#include <bit>
#include <tuple>

namespace ephemera {

namespace {

constexpr std::uint64_t kEvenSlots = 0x5555555555555555ull;
constexpr std::uint64_t kOddSlots = 0xaaaaaaaaaaaaaaaaull;
constexpr std::uint64_t parity_mask(unsigned parity) {
    return parity ? kOddSlots : kEvenSlots;
}

// Bits from..to (inclusive, 0..63) of a word.
constexpr std::uint64_t bits_between(unsigned from, unsigned to) {
    const std::uint64_t upto = to == 63 ? ~0ull : (1ull << (to + 1)) - 1;
    return upto & (~0ull << from);
}

// First set bit in [from, to] of a bit vector, or nullopt.
std::optional<std::uint32_t> first_set(const std::vector<std::uint64_t>& bits, std::uint32_t from,
                                       std::uint32_t to, std::uint64_t pattern = ~0ull) {
    if (from > to) {
        return std::nullopt;
    }
    const std::uint32_t wf = from >> 6;
    const std::uint32_t wt = to >> 6;
    for (std::uint32_t w = wf; w <= wt; ++w) {
        std::uint64_t m = bits[w] & pattern;
        if (w == wf || w == wt) {
            m &= bits_between(w == wf ? from & 63 : 0, w == wt ? to & 63 : 63);
        }
        if (m != 0) {
            return w * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
        }
    }
    return std::nullopt;
}

} // namespace

PortSlice::PortSlice(const Ownership& ownership, WorkerId worker) : rank_of_pair_(32768, kNoRank) {
    for (std::uint32_t pair = 0; pair < 32768; ++pair) {
        const auto even = static_cast<std::uint16_t>(pair << 1);
        if (ownership.port_owner(Ipv4Addr{}, even) == worker) {
            rank_of_pair_[pair] = static_cast<std::uint16_t>(pair_port_.size());
            pair_port_.push_back(even);
        }
    }
}

std::uint32_t PortSlice::lower_bound(std::uint16_t port) const {
    const auto it = std::lower_bound(pair_port_.begin(), pair_port_.end(),
                                     static_cast<std::uint16_t>(port & ~1u));
    auto slot = static_cast<std::uint32_t>(it - pair_port_.begin()) * 2;
    if (it != pair_port_.end() && *it == (port & ~1u) && (port & 1u)) {
        ++slot;
    }
    return slot;
}

PortBitmap::PortBitmap(std::uint32_t slots)
    : free_((slots + 63) / 64, 0), used_((slots + 63) / 64, 0), free_count_(slots) {
    for (std::uint32_t s = 0; s < slots; ++s) {
        free_[s >> 6] |= 1ull << (s & 63);
    }
    for (auto& summary : summary_) {
        summary.assign((free_.size() + 63) / 64, 0);
    }
    for (std::uint32_t w = 0; w < free_.size(); ++w) {
        update_summary(w);
    }
}

void PortBitmap::update_summary(std::uint32_t word) {
    for (unsigned parity = 0; parity < 2; ++parity) {
        const std::uint64_t bit = 1ull << (word & 63);
        if (free_[word] & parity_mask(parity)) {
            summary_[parity][word >> 6] |= bit;
        } else {
            summary_[parity][word >> 6] &= ~bit;
        }
    }
}

void PortBitmap::take(std::uint32_t slot) {
    const std::uint64_t bit = 1ull << (slot & 63);
    if (free_[slot >> 6] & bit) {
        free_[slot >> 6] &= ~bit;
        --free_count_;
        update_summary(slot >> 6);
    }
    used_[slot >> 6] |= bit;
}

void PortBitmap::release(std::uint32_t slot, bool allocatable) {
    const std::uint64_t bit = 1ull << (slot & 63);
    used_[slot >> 6] &= ~bit;
    if (allocatable && !(free_[slot >> 6] & bit)) {
        free_[slot >> 6] |= bit;
        ++free_count_;
        update_summary(slot >> 6);
    }
}

void PortBitmap::refresh(const std::vector<std::uint64_t>& allocatable) {
    free_count_ = 0;
    for (std::uint32_t w = 0; w < free_.size(); ++w) {
        free_[w] = allocatable[w] & ~used_[w];
        free_count_ += static_cast<std::uint32_t>(std::popcount(free_[w]));
        update_summary(w);
    }
}

std::optional<std::uint32_t> PortBitmap::first_free_in(std::uint32_t from, std::uint32_t to,
                                                       unsigned parity) const {
    if (from > to) {
        return std::nullopt;
    }
    const std::uint64_t pattern = parity_mask(parity);
    const std::uint32_t wf = from >> 6;
    const std::uint32_t wt = to >> 6;
    // The edge words need masking to [from, to]; whole words between them are found through
    // the summary, so a search costs O(words / 64), not O(slots).
    if (auto s = first_set(free_, from, std::min(to, wf * 64 + 63), pattern)) {
        return s;
    }
    if (wt > wf + 1) {
        if (auto w = first_set(summary_[parity], wf + 1, wt - 1)) {
            return *w * 64 + static_cast<std::uint32_t>(std::countr_zero(free_[*w] & pattern));
        }
    }
    if (wt > wf) {
        return first_set(free_, wt * 64, to, pattern);
    }
    return std::nullopt;
}

std::optional<std::uint32_t> PortBitmap::find_free(std::uint32_t start, unsigned parity,
                                                   std::uint32_t lo, std::uint32_t hi) const {
    if (auto s = first_free_in(start, hi, parity)) {
        return s;
    }
    if (start > lo) {
        return first_free_in(lo, start - 1, parity);
    }
    return std::nullopt;
}

PortAllocator::PortAllocator(const Ownership& ownership, WorkerId worker, PortRange range,
                             std::span<const PortRange> reserved, std::size_t pool_size,
                             SipKey secret)
    : slice_(ownership, worker), secret_(secret), allocatable_((slice_.slot_count() + 63) / 64, 0),
      bitmaps_(pool_size * kProtocolCount, PortBitmap(slice_.slot_count())) {
    set_range(range, reserved);
}

// Slot interval of the ports [from, to] (both even-aligned outward), empty when from > to.
std::pair<std::uint32_t, std::uint32_t> PortAllocator::interval(std::uint32_t from,
                                                                std::uint32_t to) const {
    if (from > to) {
        return {1, 0};
    }
    const std::uint32_t lo = slice_.lower_bound(static_cast<std::uint16_t>(from));
    const std::uint32_t end =
        to >= 0xffff ? slice_.slot_count() : slice_.lower_bound(static_cast<std::uint16_t>(to + 1));
    return end == 0 || lo >= end ? std::pair<std::uint32_t, std::uint32_t>{1, 0}
                                 : std::pair<std::uint32_t, std::uint32_t>{lo, end - 1};
}

void PortAllocator::set_range(PortRange range, std::span<const PortRange> reserved) {
    // Algorithm 4 counts its positions within the range (by whole port pairs), not over every
    // slot: a narrow range inside 0-65535 must not make the first port after a gap the likely
    // choice (RFC 6888 REQ-15: ports hard to guess).
    const std::uint32_t lo = range.lo & ~1u;
    const std::uint32_t hi = range.hi | 1u;
    std::tie(system_lo_, system_hi_) = interval(lo, std::min<std::uint32_t>(hi, 1023));
    std::tie(user_lo_, user_hi_) = interval(std::max<std::uint32_t>(lo, 1024), hi);

    std::fill(allocatable_.begin(), allocatable_.end(), 0);
    usable_ = 0;
    for (std::uint32_t s = 0; s < slice_.slot_count(); ++s) {
        const std::uint16_t port = slice_.port_of(s);
        const bool is_reserved =
            std::any_of(reserved.begin(), reserved.end(),
                        [port](const PortRange& r) { return r.contains(port); });
        if (range.contains(port) && !is_reserved) {
            allocatable_[s >> 6] |= 1ull << (s & 63);
            ++usable_;
        }
    }
    for (PortBitmap& bits : bitmaps_) {
        bits.refresh(allocatable_);
    }
}

void PortAllocator::add_address() {
    for (std::size_t p = 0; p < kProtocolCount; ++p) {
        bitmaps_.emplace_back(slice_.slot_count());
        bitmaps_.back().refresh(allocatable_);
    }
}

bool PortAllocator::is_free(std::uint16_t pool_index, Protocol proto, std::uint16_t port) const {
    const auto slot = slice_.slot_of(port);
    return slot && bitmap(pool_index, proto).is_free(*slot);
}

std::optional<PortGrant> PortAllocator::allocate(const PortRequest& req) {
    PortBitmap& bits = bitmap(req.pool_index, req.proto);
    if (bits.free_count() == 0) {
        return std::nullopt;
    }
    if (const auto slot = slice_.slot_of(req.inside_port); slot && bits.is_free(*slot)) {
        bits.take(*slot);
        return PortGrant{req.inside_port, true};
    }

    // Class (REQ-3a) first, then parity (REQ-4): both are RECOMMENDED, and a mapping in the
    // other class or parity beats no mapping while the range still has ports.
    const bool system_class = req.inside_port < 1024;
    const unsigned parity = req.inside_port & 1u;
    const std::uint64_t who = std::uint64_t{req.inside.value()} << 32 | req.pool_address.value();
    const std::uint64_t what = std::uint64_t{static_cast<std::uint8_t>(req.proto)};
    std::optional<std::uint32_t> slot;
    for (const bool in_class : {true, false}) {
        const bool system = in_class == system_class;
        slot = search(bits, who, what, parity, system ? system_lo_ : user_lo_,
                      system ? system_hi_ : user_hi_);
        if (slot) {
            break;
        }
    }
    if (!slot) {
        return std::nullopt;
    }
    bits.take(*slot);
    return PortGrant{slice_.port_of(*slot), false};
}

// RFC 6056 Algorithm 4 over slots [lo, hi]: offset = F(addresses, secret), plus a counter from
// a table indexed by G(addresses, secret). Positions are counted in port pairs so the parity
// bit is ours to set; the bitmap then finds the first free slot from there.
std::optional<std::uint32_t> PortAllocator::search(const PortBitmap& bits, std::uint64_t who,
                                                   std::uint64_t what, unsigned parity,
                                                   std::uint32_t lo, std::uint32_t hi) {
    if (lo > hi) {
        return std::nullopt;
    }
    const std::uint64_t f = siphash_2x64(secret_, who, what);
    const std::uint64_t g = siphash_2x64(secret_, who, what | 1ull << 8);
    std::uint32_t& counter = alg4_table_[g % kAlg4TableSize];
    const std::uint32_t pairs = (hi - lo) / 2 + 1;
    const auto start_pair = static_cast<std::uint32_t>((f + counter) % pairs);
    ++counter;
    const std::uint32_t start = std::clamp((lo & ~1u) + start_pair * 2 + parity, lo, hi);
    if (auto slot = bits.find_free(start, parity, lo, hi)) {
        return slot;
    }
    return bits.find_free(start, parity ^ 1u, lo, hi);
}

void PortAllocator::release(std::uint16_t pool_index, Protocol proto, std::uint16_t port) {
    if (const auto slot = slice_.slot_of(port)) {
        bitmap(pool_index, proto).release(*slot, is_allocatable_slot(*slot));
    }
}

} // namespace ephemera
