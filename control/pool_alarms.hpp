// The pool alarms of a running process: once a second the control loop asks the workers for
// their port use (the same request as `ephemeractl show ports`), feeds the PoolWatch, and for
// every alarm raised or cleared prints a line and hands a NAT threshold event to the logging
// thread. Telemetry and the metrics read the watch's state under the same lock.
#pragma once

#include "alarms/pool_watch.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>

namespace ephemera {

struct App;

class PoolAlarms {
public:
    static constexpr std::uint64_t kIntervalMs = 1000;

    explicit PoolAlarms(const AlarmsConfig& config) : watch_(config) {}

    // From Runtime::publish: the thresholds or the window changed.
    void configure(const AlarmsConfig& config);
    // From the control loop, as often as it likes: samples once per interval. A telemetry
    // command holding the workers' mailboxes makes it skip that second rather than wait.
    void tick(App& app, std::uint64_t now_ms);

    [[nodiscard]] alarms::WatchState state() const;
    // Alarm changes (raised or cleared) since start.
    [[nodiscard]] std::uint64_t changes() const { return changes_.load(std::memory_order_relaxed); }

private:
    mutable std::mutex lock_;
    alarms::PoolWatch watch_; // guarded by lock_
    std::uint64_t last_sample_ms_ = 0;
    std::atomic<std::uint64_t> changes_{0};
};

} // namespace ephemera
