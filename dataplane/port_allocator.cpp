#include "ephemera/port_allocator.hpp"

#include <algorithm>
#include <bit>

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

PortSlice::PortSlice(const Ownership& ownership, WorkerId worker, PortRange range)
    : range_(range), rank_of_pair_(32768, kNoRank) {
    for (std::uint32_t pair = range.lo >> 1; pair <= (range.hi >> 1); ++pair) {
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

PortBitmap::PortBitmap(std::uint32_t slots) : words_((slots + 63) / 64, 0), free_(slots) {
    for (std::uint32_t s = 0; s < slots; ++s) {
        words_[s >> 6] |= 1ull << (s & 63);
    }
    for (auto& summary : summary_) {
        summary.assign((words_.size() + 63) / 64, 0);
    }
    for (std::uint32_t w = 0; w < words_.size(); ++w) {
        update_summary(w);
    }
}

void PortBitmap::update_summary(std::uint32_t word) {
    for (unsigned parity = 0; parity < 2; ++parity) {
        const std::uint64_t bit = 1ull << (word & 63);
        if (words_[word] & parity_mask(parity)) {
            summary_[parity][word >> 6] |= bit;
        } else {
            summary_[parity][word >> 6] &= ~bit;
        }
    }
}

void PortBitmap::take(std::uint32_t slot) {
    if (!is_free(slot)) {
        return;
    }
    words_[slot >> 6] &= ~(1ull << (slot & 63));
    --free_;
    update_summary(slot >> 6);
}

void PortBitmap::release(std::uint32_t slot) {
    if (is_free(slot)) {
        return;
    }
    words_[slot >> 6] |= 1ull << (slot & 63);
    ++free_;
    update_summary(slot >> 6);
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
    if (auto s = first_set(words_, from, std::min(to, wf * 64 + 63), pattern)) {
        return s;
    }
    if (wt > wf + 1) {
        if (auto w = first_set(summary_[parity], wf + 1, wt - 1)) {
            return *w * 64 + static_cast<std::uint32_t>(std::countr_zero(words_[*w] & pattern));
        }
    }
    if (wt > wf) {
        return first_set(words_, wt * 64, to, pattern);
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
    : slice_(ownership, worker, range), secret_(secret) {
    const std::uint32_t slots = slice_.slot_count();
    PortBitmap prototype(slots);
    for (std::uint32_t s = 0; s < slots; ++s) {
        const std::uint16_t port = slice_.port_of(s);
        const bool is_reserved =
            std::any_of(reserved.begin(), reserved.end(),
                        [port](const PortRange& r) { return r.contains(port); });
        if (!range.contains(port) || is_reserved) {
            prototype.take(s);
        }
    }
    usable_ = prototype.free_count();
    bitmaps_.assign(pool_size * kProtocolCount, prototype);

    const std::uint32_t first_user = slice_.lower_bound(1024);
    system_lo_ = 0;
    system_hi_ = first_user == 0 ? 0 : first_user - 1;
    user_lo_ = first_user;
    user_hi_ = slots == 0 ? 0 : slots - 1;
    if (first_user == 0) {
        system_lo_ = 1; // empty interval
    }
    if (first_user >= slots) {
        user_lo_ = 1, user_hi_ = 0;
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
        bitmap(pool_index, proto).release(*slot);
    }
}

} // namespace ephemera
