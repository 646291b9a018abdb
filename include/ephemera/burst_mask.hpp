// A burst's packets as a 64-bit mask (bit i: packet i), what the stages hand each other:
// which packets are slow, candidates, looked up, refused.
#pragma once

#include <bit>
#include <cstdint>

namespace ephemera {

constexpr std::uint64_t burst_bit(std::uint32_t i) {
    return std::uint64_t{1} << i;
}

// Calls f(i) for every set bit of `mask`, lowest first (burst order). A stage that needs only
// some of a burst walks them alone, with no test per packet it skips.
template <typename F>
constexpr void for_each_bit(std::uint64_t mask, F&& f) {
    while (mask != 0) {
        f(static_cast<std::uint32_t>(std::countr_zero(mask)));
        mask &= mask - 1;
    }
}

} // namespace ephemera
