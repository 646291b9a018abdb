#include "ephemera/held_syn.hpp"

#include <algorithm>
#include <bit>

namespace ephemera {

HeldSyns::HeldSyns(std::uint32_t capacity) {
    const std::uint32_t size = std::bit_ceil(std::clamp<std::uint32_t>(capacity, 1, 1u << 15));
    ring_.resize(size);
    live_slot_.assign(size, 0);
    next_.assign(size, kNone);
    bucket_.assign(size * 2, kNone); // chains stay short: at most half the buckets are used
    mask_ = size - 1;
}

std::uint32_t HeldSyns::bucket_of(const HeldSynKey& k) const {
    std::uint64_t h =
        (std::uint64_t{k.external_addr} << 32 | k.remote_addr) * 0x9e3779b97f4a7c15ull;
    h ^= (std::uint64_t{k.external_port} << 16 | k.remote_port) * 0xc2b2ae3d27d4eb4full;
    return static_cast<std::uint32_t>(h >> 40) & (mask_ * 2 + 1);
}

void HeldSyns::unlink(std::uint32_t slot) {
    std::uint16_t* link = &bucket_[bucket_of(ring_[slot].key)];
    while (*link != kNone && *link != slot) {
        link = &next_[*link];
    }
    if (*link == slot) {
        *link = next_[slot];
    }
    next_[slot] = kNone;
    if (live_slot_[slot] != 0) {
        live_slot_[slot] = 0;
        --live_;
    }
}

bool HeldSyns::hold(const HeldSynKey& key, std::span<const std::uint8_t> frame,
                    std::uint16_t ip_total_len, Tick due) {
    bool kept_all = true;
    if (used_ == ring_.size()) {
        kept_all = live_slot_[head_] == 0;
        unlink(head_);
        head_ = (head_ + 1) & mask_;
        --used_;
    }
    const std::uint32_t slot = (head_ + used_) & mask_;
    ++used_;
    HeldSyn& h = ring_[slot];
    h.key = key;
    h.due = due;
    h.ip_total_len = ip_total_len;
    h.frame_len = static_cast<std::uint8_t>(std::min(frame.size(), HeldSyn::kMaxFrame));
    std::copy_n(frame.begin(), h.frame_len, h.frame.begin());
    const std::uint32_t b = bucket_of(key);
    next_[slot] = bucket_[b];
    bucket_[b] = static_cast<std::uint16_t>(slot);
    live_slot_[slot] = 1;
    ++live_;
    return kept_all;
}

bool HeldSyns::cancel(const HeldSynKey& key) {
    bool found = false;
    for (std::uint16_t s = bucket_[bucket_of(key)]; s != kNone; s = next_[s]) {
        if (live_slot_[s] != 0 && ring_[s].key == key) {
            live_slot_[s] = 0; // stays in the ring (and its chain) until its turn comes
            --live_;
            found = true;
        }
    }
    return found;
}

std::optional<HeldSyn> HeldSyns::take_due(Tick now) {
    while (used_ != 0) {
        const std::uint32_t slot = head_;
        HeldSyn& h = ring_[slot];
        const bool live = live_slot_[slot] != 0;
        if (live && static_cast<std::int32_t>(now - h.due) < 0) {
            return std::nullopt; // the oldest live one is not due: none is
        }
        unlink(slot);
        head_ = (head_ + 1) & mask_;
        --used_;
        if (live) {
            return h;
        }
    }
    return std::nullopt;
}

} // namespace ephemera
