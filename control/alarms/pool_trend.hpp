// Port use over time, seen from the control side: a watermark with hysteresis (an alarm that
// is raised once and cleared once, not on every sample near the line) and a forecast of when
// the ports run out at the current trend. Pure arithmetic on samples, so that tests can feed
// synthetic series with a test clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ephemera::alarms {

struct PortUse {
    std::uint64_t used = 0;
    std::uint64_t usable = 0;

    // Whole percent, rounded down; 0 when nothing is usable.
    [[nodiscard]] std::uint32_t percent() const {
        return usable == 0 ? 0 : static_cast<std::uint32_t>(used * 100 / usable);
    }
    PortUse& operator+=(const PortUse& o) {
        used += o.used;
        usable += o.usable;
        return *this;
    }
};

// Raised when use reaches `high` percent, cleared when it is back at or below `clear`: the gap
// between the two keeps a use that hovers at the line from raising an alarm a second.
class Watermark {
public:
    enum class Change : std::uint8_t { none, raised, cleared };

    // high 0: never raised. clear < high (the config refuses anything else).
    Watermark(std::uint32_t high, std::uint32_t clear) : high_(high), clear_(clear) {}

    Change update(PortUse use);
    // A watermark that replaces a raised one (new thresholds) starts raised.
    void carry_over(bool raised) { raised_ = raised; }
    [[nodiscard]] bool raised() const { return raised_; }
    [[nodiscard]] std::uint32_t high() const { return high_; }
    [[nodiscard]] std::uint32_t clear() const { return clear_; }

private:
    std::uint32_t high_;
    std::uint32_t clear_;
    bool raised_ = false;
};

// Least-squares line through the samples of the last `window_ms` (ports in use against time);
// the time to exhaustion is where that line reaches the usable ports. A falling or flat trend
// has none: the ports do not run out. A window of samples, not an average of rates, so that
// one burst of churn neither raises nor hides the trend for long.
class ExhaustionForecast {
public:
    // Fewer samples than this, or spanning less than a tenth of the window, give no forecast:
    // two points a second apart are a rate, not a trend.
    static constexpr std::size_t kMinSamples = 5;
    // Samples kept per window at most: a sample closer than window/kMaxSamples to the last one
    // kept is skipped, so that a series costs the same memory whatever the sampling rate (one
    // series per pool address and protocol, for pools of thousands of addresses).
    static constexpr std::size_t kMaxSamples = 120;

    explicit ExhaustionForecast(std::uint64_t window_ms) : window_ms_(window_ms) {}

    // Samples come in time order; a sample older than the newest (a clock step back) starts
    // the series again.
    void add(std::uint64_t time_ms, PortUse use);
    void reset() { samples_.clear(); }

    // Ports per second the line rises by (negative: falling); nullopt: too few samples.
    [[nodiscard]] std::optional<double> ports_per_second() const;
    // Seconds from the newest sample until used == usable on the line; nullopt: not rising,
    // or too few samples. 0 when already exhausted.
    [[nodiscard]] std::optional<double> seconds_to_exhaustion() const;
    [[nodiscard]] std::size_t samples() const { return samples_.size(); }

private:
    struct Sample {
        std::uint64_t time_ms;
        double used;
    };
    struct Line {
        double slope;     // ports per second
        double at_newest; // the line's value at the newest kept sample
    };
    [[nodiscard]] std::optional<Line> fit() const;

    std::uint64_t window_ms_;
    std::vector<Sample> samples_; // oldest first, at most one window
    std::uint64_t usable_ = 0;    // of the newest sample
    double newest_used_ = 0;      // the newest sample, kept or not
};

} // namespace ephemera::alarms
