#include "pool_trend.hpp"

#include <algorithm>

namespace ephemera::alarms {

Watermark::Change Watermark::update(PortUse use) {
    if (high_ == 0) {
        // Switched off while raised: cleared once, so that no alarm is left hanging.
        const bool was = raised_;
        raised_ = false;
        return was ? Change::cleared : Change::none;
    }
    const std::uint32_t percent = use.percent();
    if (!raised_ && percent >= high_) {
        raised_ = true;
        return Change::raised;
    }
    if (raised_ && percent <= clear_) {
        raised_ = false;
        return Change::cleared;
    }
    return Change::none;
}

void ExhaustionForecast::add(std::uint64_t time_ms, PortUse use) {
    if (!samples_.empty() && time_ms < samples_.back().time_ms) {
        samples_.clear();
    }
    // A pool that grew or shrank changes what "exhausted" means: the old line no longer
    // describes this pool.
    if (use.usable != usable_) {
        samples_.clear();
        usable_ = use.usable;
    }
    newest_used_ = static_cast<double>(use.used);
    const std::uint64_t spacing = window_ms_ / kMaxSamples;
    if (!samples_.empty() && time_ms - samples_.back().time_ms < spacing) {
        return;
    }
    samples_.push_back({time_ms, newest_used_});
    const auto first_kept = std::find_if(samples_.begin(), samples_.end(), [&](const Sample& s) {
        return time_ms - s.time_ms <= window_ms_;
    });
    samples_.erase(samples_.begin(), first_kept);
}

std::optional<ExhaustionForecast::Line> ExhaustionForecast::fit() const {
    if (samples_.size() < kMinSamples ||
        (samples_.back().time_ms - samples_.front().time_ms) * 10 < window_ms_) {
        return std::nullopt;
    }
    // Times relative to the first sample, in seconds: small sums, no loss of precision.
    const double t0 = static_cast<double>(samples_.front().time_ms);
    const auto seconds = [&](const Sample& s) {
        return (static_cast<double>(s.time_ms) - t0) / 1000.0;
    };
    double st = 0;
    double su = 0;
    for (const Sample& s : samples_) {
        st += seconds(s);
        su += s.used;
    }
    const double n = static_cast<double>(samples_.size());
    const double mt = st / n;
    const double mu = su / n;
    double stt = 0;
    double stu = 0;
    for (const Sample& s : samples_) {
        const double dt = seconds(s) - mt;
        stt += dt * dt;
        stu += dt * (s.used - mu);
    }
    const double slope = stt == 0 ? 0.0 : stu / stt;
    return Line{slope, mu + slope * (seconds(samples_.back()) - mt)};
}

std::optional<double> ExhaustionForecast::ports_per_second() const {
    const auto line = fit();
    return line ? std::optional<double>(line->slope) : std::nullopt;
}

std::optional<double> ExhaustionForecast::seconds_to_exhaustion() const {
    if (usable_ != 0 && newest_used_ >= static_cast<double>(usable_)) {
        return 0.0;
    }
    const auto line = fit();
    if (!line || line->slope <= 0) {
        return std::nullopt;
    }
    // From the line, not from the newest sample: one noisy sample does not move the forecast.
    const double left = static_cast<double>(usable_) - line->at_newest;
    return std::max(0.0, left / line->slope);
}

} // namespace ephemera::alarms
