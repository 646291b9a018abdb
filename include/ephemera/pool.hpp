// The pool of public addresses: index <-> address, and a lookup fast enough for every outside
// packet (an open-addressing table at most 1/4 full, so a probe sequence is short).
#pragma once

#include "ephemera/types.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace ephemera {

inline constexpr std::uint16_t kNoPool = 0xffff;

class PoolIndex {
public:
    explicit PoolIndex(std::span<const Ipv4Addr> addresses);

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
    [[nodiscard]] std::size_t size() const { return addresses_.size(); }
    [[nodiscard]] std::span<const Ipv4Addr> addresses() const { return addresses_; }

private:
    struct Slot {
        Ipv4Addr address;
        std::uint16_t index = kNoPool;
    };
    static std::uint32_t hash(Ipv4Addr a) { return (a.value() * 0x9e3779b1u) >> 7; }

    std::vector<Ipv4Addr> addresses_;
    std::vector<Slot> slots_;
    std::uint32_t mask_ = 0;
};

} // namespace ephemera
