// The synthetic residential population bench/block_sim.cpp and bench/log_volume.cpp share: the
// day's profile of concurrency, and how each subscriber's peak and timing are drawn. One model,
// so that the block sizing figures and the log volume figures describe the same subscribers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

namespace ephemera::population {

// Share of peak concurrency per hour of the day (residential access, evening peak).
inline constexpr double kProfile[24] = {0.55, 0.40, 0.28, 0.20, 0.17, 0.18, 0.25, 0.38,
                                        0.50, 0.58, 0.62, 0.65, 0.68, 0.67, 0.66, 0.68,
                                        0.72, 0.78, 0.85, 0.92, 0.98, 1.00, 0.92, 0.75};

inline double profile(double hour) {
    hour = std::fmod(hour + 48.0, 24.0);
    const int h = static_cast<int>(hour);
    const double f = hour - h;
    return kProfile[h] * (1.0 - f) + kProfile[(h + 1) % 24] * f;
}

inline std::uint64_t splitmix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Port holding time: flow duration (median 5 s, heavy tail) plus the idle timeout, on average.
inline constexpr double kMeanHold = 5.0 * 7.389056 + 0.7 * 240 + 0.3 * 300; // e^(2^2/2) = e^2

struct Shape {
    double peak;  // ports in use at the subscriber's busiest
    double shift; // hours its day is shifted by
};

// Peak ports in use: 98.5 % light (median 24), 1.5 % heavy (Pareto from 500, capped); the
// draws in this order, so that a seed gives the same population everywhere.
inline Shape draw_shape(std::mt19937_64& rng) {
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    double peak;
    if (uni(rng) < 0.985) {
        peak = std::lognormal_distribution<double>(std::log(24.0), 0.8)(rng);
    } else {
        peak = std::min(6000.0, 500.0 / std::pow(1.0 - uni(rng), 1.0 / 1.2));
    }
    peak = std::max(peak, 1.0);
    const double shift = (uni(rng) - 0.5) * 3.0;
    return {peak, shift};
}

} // namespace ephemera::population
