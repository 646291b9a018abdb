#include "ephemera/port_allocator.hpp"

#include <algorithm>
#include <bit>
#include <tuple>

namespace ephemera {

namespace {

// Bits from..to (inclusive, 0..63) of a word.
constexpr std::uint64_t bits_between(unsigned from, unsigned to) {
    const std::uint64_t upto = to == 63 ? ~0ull : (1ull << (to + 1)) - 1;
    return upto & (~0ull << from);
}

constexpr std::uint32_t words_for(std::uint32_t bits) {
    return (bits + 63) / 64;
}

// Bit i set for every slot i < slots: the valid bits of a bitmap of `slots`.
std::vector<std::uint64_t> all_slots(std::uint32_t slots) {
    std::vector<std::uint64_t> bits(words_for(slots), ~0ull);
    if (slots % 64 != 0) {
        bits.back() = (1ull << (slots % 64)) - 1;
    }
    return bits;
}

// Slot interval of the ports [from, to] (both even-aligned outward), empty (1, 0) when none.
std::pair<std::uint32_t, std::uint32_t> interval(const PortSlice& slice, std::uint32_t from,
                                                 std::uint32_t to) {
    if (from > to) {
        return {1, 0};
    }
    const std::uint32_t lo = slice.lower_bound(static_cast<std::uint16_t>(from));
    const std::uint32_t end =
        to >= 0xffff ? slice.slot_count() : slice.lower_bound(static_cast<std::uint16_t>(to + 1));
    return end == 0 || lo >= end ? std::pair<std::uint32_t, std::uint32_t>{1, 0}
                                 : std::pair<std::uint32_t, std::uint32_t>{lo, end - 1};
}

std::uint64_t next_generation() {
    static std::uint64_t generation = 0; // masks are built on one thread at a time
    return ++generation;
}

} // namespace

// ---- PortSlice ------------------------------------------------------------------------------

PortSlice::PortSlice(const Ownership& ownership, WorkerId worker) : rank_of_pair_(32768, kNoRank) {
    for (std::uint32_t pair = 0; pair < 32768; ++pair) {
        const auto even = static_cast<std::uint16_t>(pair << 1);
        if (ownership.by_subscriber() || ownership.port_owner(Ipv4Addr{}, even) == worker) {
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

// ---- PortMask -------------------------------------------------------------------------------

PortMask::PortMask(std::uint32_t slots)
    : generation(next_generation()), slots_(slots), usable_(slots), bits_(all_slots(slots)) {
    // One class over every slot, as if all were system ports: tests address slots directly.
    classes_[1].lo = 0;
    classes_[1].hi = slots == 0 ? 0 : slots - 1;
    summarise();
    compile_classes();
}

PortMask::PortMask(const PortSlice& slice, PortRange range, std::span<const PortRange> reserved)
    : generation(next_generation()), slots_(slice.slot_count()), bits_(words_for(slots_), 0) {
    // Algorithm 4 counts its positions within the range (by whole port pairs), not over every
    // slot: a narrow range inside 0-65535 must not make the first port after a gap the likely
    // choice (RFC 6888 REQ-15: ports hard to guess).
    const std::uint32_t lo = range.lo & ~1u;
    const std::uint32_t hi = range.hi | 1u;
    std::tie(classes_[1].lo, classes_[1].hi) =
        interval(slice, lo, std::min<std::uint32_t>(hi, 1023));
    std::tie(classes_[0].lo, classes_[0].hi) =
        interval(slice, std::max<std::uint32_t>(lo, 1024), hi);
    for (std::uint32_t s = 0; s < slots_; ++s) {
        const std::uint16_t port = slice.port_of(s);
        const bool is_reserved =
            std::any_of(reserved.begin(), reserved.end(),
                        [port](const PortRange& r) { return r.contains(port); });
        if (range.contains(port) && !is_reserved) {
            bits_[s >> 6] |= 1ull << (s & 63);
            ++usable_;
        }
    }
    summarise();
    compile_classes();
}

void PortMask::summarise() {
    for (unsigned parity = 0; parity < 2; ++parity) {
        summary_[parity].assign(words_for(static_cast<std::uint32_t>(bits_.size())), 0);
        for (std::uint32_t w = 0; w < bits_.size(); ++w) {
            if (bits_[w] & PortBitmap::slots_of_parity(parity)) {
                summary_[parity][w >> 6] |= 1ull << (w & 63);
            }
        }
    }
}

void PortMask::compile_classes() {
    for (MaskClass& c : classes_) {
        c.bits.assign(bits_.size(), 0);
        for (unsigned parity = 0; parity < 2; ++parity) {
            c.summary[parity].assign(words_for(static_cast<std::uint32_t>(bits_.size())), 0);
        }
        if (c.empty()) {
            continue;
        }
        c.pairs = FastModulo((c.hi - c.lo) / 2 + 1);
        const std::uint32_t wl = c.lo >> 6;
        const std::uint32_t wh = c.hi >> 6;
        for (std::uint32_t w = wl; w <= wh; ++w) {
            std::uint64_t in_class = bits_[w];
            if (w == wl) {
                in_class &= ~0ull << (c.lo & 63);
            }
            if (w == wh) {
                in_class &= bits_between(0, c.hi & 63);
            }
            c.bits[w] = in_class;
            for (unsigned parity = 0; parity < 2; ++parity) {
                if (in_class & PortBitmap::slots_of_parity(parity)) {
                    c.summary[parity][w >> 6] |= 1ull << (w & 63);
                }
            }
        }
        c.first_summary = wl >> 6;
        c.last_summary = wh >> 6;
        c.summary_words = c.last_summary - c.first_summary + 1;
    }
}

// ---- PortBitmap -----------------------------------------------------------------------------

PortBitmap::PortBitmap(std::uint32_t slots)
    : slots_(slots), used_(words_for(slots), 0), valid_(all_slots(slots)) {
    for (auto& summary : summary_) {
        summary.assign(words_for(static_cast<std::uint32_t>(used_.size())), 0);
    }
    for (std::uint32_t w = 0; w < used_.size(); ++w) {
        update_summary(w);
    }
}

// Branch-free: whether a word still has an unused slot flips unpredictably as ports come and go.
void PortBitmap::update_summary(std::uint32_t word) {
    const std::uint64_t unused = ~used_[word] & valid_[word];
    const std::uint64_t bit = 1ull << (word & 63);
    for (unsigned parity = 0; parity < 2; ++parity) {
        const std::uint64_t has = (unused & slots_of_parity(parity)) != 0 ? bit : 0;
        std::uint64_t& summary = summary_[parity][word >> 6];
        summary = (summary & ~bit) | has;
    }
}

// Taking or releasing a slot can change only its own parity's summary bit: taking clears it
// when the slot was the word's last unused one of that parity, releasing sets it.
void PortBitmap::take(std::uint32_t slot, const PortMask* mask) {
    const std::uint32_t w = slot >> 6;
    const std::uint64_t bit = 1ull << (slot & 63);
    if ((used_[w] & bit) == 0) {
        used_[w] |= bit;
        if (mask != nullptr && counted_for_ == mask->generation && mask->allows(slot)) {
            ++used_allowed_;
        }
        const unsigned parity = slot & 1u;
        if ((~used_[w] & valid_[w] & slots_of_parity(parity)) == 0) {
            summary_[parity][w >> 6] &= ~(1ull << (w & 63));
        }
    }
}

void PortBitmap::release(std::uint32_t slot, const PortMask* mask) {
    const std::uint32_t w = slot >> 6;
    const std::uint64_t bit = 1ull << (slot & 63);
    if (used_[w] & bit) {
        used_[w] &= ~bit;
        if (mask != nullptr && counted_for_ == mask->generation) {
            used_allowed_ -= mask->allows(slot) ? 1 : 0;
        } else {
            counted_for_ = ~0ull; // counted under another mask, or none: count again
        }
        summary_[slot & 1u][w >> 6] |= 1ull << (w & 63);
    }
}

std::uint32_t PortBitmap::free_count(const PortMask* mask) const {
    if (mask == nullptr) { // tests only: not kept up on every take and release
        std::uint32_t used = 0;
        for (const std::uint64_t word : used_) {
            used += static_cast<std::uint32_t>(std::popcount(word));
        }
        return slots_ - used;
    }
    if (counted_for_ != mask->generation) {
        used_allowed_ = 0;
        for (std::uint32_t w = 0; w < used_.size(); ++w) {
            used_allowed_ += static_cast<std::uint32_t>(std::popcount(used_[w] & mask->word(w)));
        }
        counted_for_ = mask->generation;
    }
    return mask->usable() - used_allowed_;
}

// One pass over the words of [lo, hi], circular from the start word: that word's bits from
// `start` up, then the words after it (found through the summaries: unused here and
// allocatable in the mask) up to hi's, then lo's word up to the start word again. A summary
// hit can still be a word whose unused slots the mask does not allow, or that lie outside
// [lo, hi] in an edge word: then the scan goes on to the next candidate. Cost: one summary
// word per 64 bitmap words, never a slot at a time.
std::uint32_t PortBitmap::find_free_slot(std::uint32_t start, unsigned parity, std::uint32_t lo,
                                         std::uint32_t hi, const PortMask* mask) const {
    const std::uint64_t pattern = slots_of_parity(parity);
    const std::uint32_t ws = start >> 6;
    const std::uint32_t wl = lo >> 6;
    const std::uint32_t wh = hi >> 6;
    const auto free_in = [&](std::uint32_t w) {
        std::uint64_t m = free_word(w, mask) & pattern;
        if (w == wl) {
            m &= ~0ull << (lo & 63);
        }
        if (w == wh) {
            m &= bits_between(0, hi & 63);
        }
        return m;
    };
    if (const std::uint64_t m = free_in(ws) & (~0ull << (start & 63)); m != 0) {
        return ws * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
    }
    const std::uint32_t sl = wl >> 6;
    const std::uint32_t sh = wh >> 6;
    const auto candidates_at = [&](std::uint32_t sw) {
        std::uint64_t c = summary_[parity][sw];
        if (mask != nullptr) {
            c &= mask->summary(parity, sw);
        }
        if (sw == sl) {
            c &= ~0ull << (wl & 63);
        }
        if (sw == sh) {
            c &= bits_between(0, wh & 63);
        }
        return c;
    };
    const std::uint32_t s0 = ws >> 6;
    std::uint32_t sw = s0;
    std::uint64_t candidates = candidates_at(sw) & ~bits_between(0, ws & 63); // after ws
    bool last_round = false;
    for (;;) {
        while (candidates != 0) {
            const std::uint32_t w =
                sw * 64 + static_cast<std::uint32_t>(std::countr_zero(candidates));
            if (const std::uint64_t m = free_in(w); m != 0) {
                return w * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
            }
            candidates &= candidates - 1;
        }
        if (last_round) {
            return kNoSlot;
        }
        sw = sw == sh ? sl : sw + 1;
        candidates = candidates_at(sw);
        if (sw == s0) { // back where it began: the words up to the start word, that one included
            candidates &= bits_between(0, ws & 63);
            last_round = true;
        }
    }
}

// find_free_slot's pass, over one class of a mask: the class's own words and summaries are zero
// outside it, so no word or summary word needs its edges cut.
std::uint32_t PortBitmap::find_free_in(const MaskClass& c, std::uint32_t start,
                                       unsigned parity) const {
    const std::uint64_t pattern = slots_of_parity(parity);
    const std::uint64_t* used = used_.data();
    const std::uint64_t* allowed = c.bits.data();
    const std::uint32_t ws = start >> 6;
    if (const std::uint64_t m = ~used[ws] & allowed[ws] & pattern & (~0ull << (start & 63));
        m != 0) {
        return ws * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
    }
    const std::uint64_t* unused_in = summary_[parity].data();
    const std::uint64_t* allowed_in = c.summary[parity].data();
    const std::uint32_t rounds = c.summary_words;
    std::uint32_t sw = ws >> 6;
    std::uint64_t candidates = unused_in[sw] & allowed_in[sw] & ((~0ull << (ws & 63)) << 1);
    for (std::uint32_t round = 0;;) {
        while (candidates != 0) {
            const std::uint32_t w =
                sw * 64 + static_cast<std::uint32_t>(std::countr_zero(candidates));
            if (const std::uint64_t m = ~used[w] & allowed[w] & pattern; m != 0) {
                return w * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
            }
            candidates &= candidates - 1;
        }
        if (++round > rounds) {
            return kNoSlot;
        }
        sw = sw == c.last_summary ? c.first_summary : sw + 1;
        candidates = unused_in[sw] & allowed_in[sw];
        if (round == rounds) [[unlikely]] { // back at the start: the words up to the start word
            candidates &= ~((~0ull << (ws & 63)) << 1);
        }
    }
}

// ---- AddressPorts ---------------------------------------------------------------------------

AddressPorts::AddressPorts(std::uint32_t slots, bool holds)
    : bitmaps{PortBitmap(slots), PortBitmap(slots), PortBitmap(slots)},
      out2in(kProtocolCount * std::size_t{slots}, kNoIndex),
      hold_chunks(holds ? kProtocolCount * std::size_t{slots} : 0),
      blocks((slots + kGranuleSlots - 1) / kGranuleSlots) {}

// ---- PortAllocator --------------------------------------------------------------------------

PortAllocator::PortAllocator(const Ownership& ownership, WorkerId worker, PortRange range,
                             std::span<const PortRange> reserved, std::size_t pool_size,
                             SipKey secret)
    : slice_(ownership, worker), secret_(secret) {
    set_range(range, reserved);
    for (std::size_t a = 0; a < pool_size; ++a) {
        add_address();
    }
}

void PortAllocator::set_range(PortRange range, std::span<const PortRange> reserved) {
    own_masks_.push_back(std::make_unique<PortMask>(slice_, range, reserved));
    mask_ = own_masks_.back().get();
}

void PortAllocator::add_address() {
    own_addresses_.push_back(std::make_unique<AddressPorts>(slice_.slot_count()));
    own_address_list_.push_back(own_addresses_.back().get());
    own_out2in_list_.push_back(own_addresses_.back()->out2in.data());
    set_addresses(own_address_list_, own_out2in_list_);
}

void PortAllocator::set_addresses(std::span<AddressPorts* const> addresses,
                                  std::span<std::uint32_t* const> out2in) {
    addresses_ = addresses;
    out2in_ = out2in;
    // A new address's ports can be held: its chunks join the queue (a splice each). By flag,
    // not by index: a former 1:1 address joining the pool gets new port state at its old index.
    for (AddressPorts* a : addresses_) {
        if (!a->donated) {
            hold_.donate(a->hold_chunks);
            a->donated = true;
        }
    }
}

bool PortAllocator::is_free(std::uint16_t pool_index, Protocol proto, std::uint16_t port) const {
    const auto slot = slice_.slot_of(port);
    return slot && bitmap(pool_index, proto).is_free(*slot, mask_);
}

bool PortAllocator::has_free(std::uint16_t pool_index, Protocol proto) const {
    const PortBitmap& bits = bitmap(pool_index, proto);
    for (unsigned parity : {0u, 1u}) {
        for (const bool system : {false, true}) {
            const MaskClass& c = mask_->port_class(system);
            if (!c.empty() && bits.find_free_in(c, c.lo, parity) != PortBitmap::kNoSlot) {
                return true;
            }
        }
    }
    return false;
}

std::uint64_t PortAllocator::port_key(Ipv4Addr inside, Ipv4Addr pool_address) const {
    constexpr std::uint64_t kPortKeyDomain = 0x616c6734; // "alg4": this use of the secret
    const std::uint64_t who = std::uint64_t{inside.value()} << 32 | pool_address.value();
    return siphash_2x64(secret_, who, kPortKeyDomain);
}

PackedGrant PortAllocator::allocate_packed(const PortRequest& req, std::uint64_t port_key) {
    PortBitmap& bits = bitmap(req.pool_index, req.proto);
    if (const auto slot = slice_.slot_of(req.inside_port); slot && bits.is_free(*slot, mask_)) {
        bits.take_found(*slot, *mask_);
        return PackedGrant::of(req.inside_port, true);
    }

    // Class (REQ-3a) first, then parity (REQ-4): both are RECOMMENDED, and a mapping in the
    // other class or parity beats no mapping while the range still has ports.
    const bool system_class = req.inside_port < 1024;
    const unsigned parity = req.inside_port & 1u;
    const Alg4Seed seed = alg4_seed(port_key, req.proto);
    std::uint32_t slot = PortBitmap::kNoSlot;
    for (const bool in_class : {true, false}) {
        slot = search_class(bits, seed, parity, mask_->port_class(in_class == system_class));
        if (slot != PortBitmap::kNoSlot) {
            break;
        }
    }
    if (slot == PortBitmap::kNoSlot) {
        return PackedGrant{};
    }
    bits.take_found(slot, *mask_);
    return PackedGrant::of(slice_.port_of(slot), false);
}

PackedGrant PortAllocator::allocate_in_range_packed(const PortRequest& req, std::uint64_t port_key,
                                                    PortRange range) {
    PortBitmap& bits = bitmap(req.pool_index, req.proto);
    if (const auto slot = slice_.slot_of(req.inside_port);
        slot && range.contains(req.inside_port) && bits.is_free(*slot, mask_)) {
        bits.take_found(*slot, *mask_);
        return PackedGrant::of(req.inside_port, true);
    }
    // An owned end of the run is its own slot; only an unowned one needs the binary search
    // over the slice, which costs more than the rest of the allocation when every port is
    // owned (deterministic mode) and the ends always are.
    const auto lo_slot = slice_.slot_of(range.lo);
    const auto hi_slot = slice_.slot_of(range.hi);
    const std::uint32_t lo = lo_slot ? *lo_slot : slice_.lower_bound(range.lo);
    const std::uint32_t end = hi_slot              ? *hi_slot + 1
                              : range.hi == 0xffff ? slice_.slot_count()
                                                   : slice_.lower_bound(range.hi + 1);
    if (lo >= end) {
        return PackedGrant{};
    }
    const std::uint32_t slot =
        search(bits, alg4_seed(port_key, req.proto), req.inside_port & 1u, lo, end - 1);
    if (slot == PortBitmap::kNoSlot) {
        return PackedGrant{};
    }
    bits.take_found(slot, *mask_);
    return PackedGrant::of(slice_.port_of(slot), false);
}

// Algorithm 4 over one port class, with the class's reciprocal compiled with the mask: the
// first free slot of the parity from the start, else of the other parity.
std::uint32_t PortAllocator::search_class(const PortBitmap& bits, Alg4Seed seed, unsigned parity,
                                          const MaskClass& c) {
    if (c.empty()) {
        return PortBitmap::kNoSlot;
    }
    const std::uint32_t start = alg4_start(seed, parity, c.lo, c.hi, c.pairs);
    if (const std::uint32_t slot = bits.find_free_in(c, start, parity);
        slot != PortBitmap::kNoSlot) {
        return slot;
    }
    return bits.find_free_in(c, start, parity ^ 1u);
}

// The same over any slot interval [lo, hi].
std::uint32_t PortAllocator::search(const PortBitmap& bits, Alg4Seed seed, unsigned parity,
                                    std::uint32_t lo, std::uint32_t hi) {
    if (lo > hi) {
        return PortBitmap::kNoSlot;
    }
    if (const std::uint32_t pairs = (hi - lo) / 2 + 1; pairs != pairs_divisor_.divisor) {
        pairs_divisor_ = FastModulo(pairs); // another interval than the last: a new reciprocal
    }
    const std::uint32_t start = alg4_start(seed, parity, lo, hi, pairs_divisor_);
    if (const std::uint32_t slot = bits.find_free_slot(start, parity, lo, hi, mask_);
        slot != PortBitmap::kNoSlot) {
        return slot;
    }
    return bits.find_free_slot(start, parity ^ 1u, lo, hi, mask_);
}

void PortAllocator::release(std::uint16_t pool_index, Protocol proto, std::uint16_t port) {
    if (const auto slot = slice_.slot_of(port)) {
        bitmap(pool_index, proto).release(*slot, mask_);
    }
}

bool PortAllocator::claim(std::uint16_t pool_index, Protocol proto, std::uint16_t port) {
    const auto slot = slice_.slot_of(port);
    PortBitmap& bits = bitmap(pool_index, proto);
    if (!slot || !bits.is_free(*slot, mask_)) {
        return false;
    }
    bits.take(*slot, mask_);
    return true;
}

void PortAllocator::hold_slot(std::uint16_t pool_index, Protocol proto, std::uint32_t slot,
                              Tick release_at) {
    hold_.push(HeldPort{slot << 2 | static_cast<std::uint32_t>(proto_index(proto)), pool_index, 0,
                        release_at});
}

std::uint32_t PortAllocator::release_held(Tick now, std::uint32_t budget) {
    return hold_.release_due(now, budget, [this](const HeldPort& p) {
        addresses_[p.pool_index]->bitmaps[p.slot_and_proto & 3].release(p.slot_and_proto >> 2,
                                                                        mask_);
    });
}

} // namespace ephemera
