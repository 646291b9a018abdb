// The pool of public addresses: index <-> address, and a lookup fast enough for every outside
// packet (an open-addressing table at most 1/4 full, so a probe sequence is short).
#pragma once

#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace ephemera {

inline constexpr std::uint16_t kNoPool = 0xffff;

class PoolIndex {
public:
    explicit PoolIndex(std::span<const Ipv4Addr> addresses);

    // False when `a` is surely not a pool address: one bit test, for the packet path's
    // "is this a pool address?" of every packet (a subscriber's destination, say).
    [[nodiscard]] bool may_contain(Ipv4Addr a) const {
        const std::uint32_t bit = hash(a) & (kFilterBits - 1);
        return (filter_[bit >> 6] >> (bit & 63)) & 1u;
    }
    [[nodiscard]] std::uint16_t find_fast(Ipv4Addr a) const {
        return may_contain(a) ? find(a) : kNoPool;
    }
    [[nodiscard]] std::uint16_t find(Ipv4Addr a) const {
        std::uint32_t i = hash(a) & mask_;
        while (true) {
            const Slot& s = slots_[i];
            if (s.index == kNoPool || s.address == a) {
                return s.index;
            }
            i = (i + 1) & mask_;
        }
    }
    [[nodiscard]] Ipv4Addr address(std::uint16_t index) const { return addresses_[index]; }
    // The same, as it lies on the wire (network order), for rewrites.
    [[nodiscard]] std::uint32_t wire_address(std::uint16_t index) const { return wire_[index]; }
    [[nodiscard]] std::size_t size() const { return addresses_.size(); }
    [[nodiscard]] std::span<const Ipv4Addr> addresses() const { return addresses_; }

private:
    struct Slot {
        Ipv4Addr address;
        std::uint16_t index = kNoPool;
    };
    static std::uint32_t hash(Ipv4Addr a) { return (a.value() * 0x9e3779b1u) >> 7; }

    static constexpr std::uint32_t kFilterBits = 4096;

    std::vector<Ipv4Addr> addresses_;
    std::vector<std::uint32_t> wire_;
    std::vector<Slot> slots_;
    std::uint32_t mask_ = 0;
    std::array<std::uint64_t, kFilterBits / 64> filter_{};
};

} // namespace ephemera
