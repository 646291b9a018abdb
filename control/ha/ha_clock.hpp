// The clocks the sync and hand-over threads report by: Unix time in ms for what an operator
// reads, and steady-clock differences in ms for how long something took.
#pragma once

#include <chrono>
#include <cstdint>

namespace ephemera::ha {

inline std::uint64_t unix_ms_now() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

inline std::uint64_t ms_between(std::chrono::steady_clock::time_point a,
                                std::chrono::steady_clock::time_point b) {
    return b > a ? static_cast<std::uint64_t>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count())
                 : 0;
}

} // namespace ephemera::ha
