#include "pool_alarms.hpp"

#include "app.hpp"
#include "port_use.hpp"

#include <cstdio>

namespace ephemera {

void PoolAlarms::configure(const AlarmsConfig& config) {
    const std::lock_guard guard(lock_);
    watch_.configure(config);
}

void PoolAlarms::tick(App& app, std::uint64_t now_ms) {
    if (last_sample_ms_ != 0 && now_ms >= last_sample_ms_ &&
        now_ms - last_sample_ms_ < kIntervalMs) {
        return;
    }
    last_sample_ms_ = now_ms;
    std::optional<alarms::PortUseTable> table;
    {
        std::unique_lock mailboxes(app.mailbox_lock, std::try_to_lock);
        if (!mailboxes.owns_lock()) {
            return;
        }
        table = gather_port_use(app, std::chrono::milliseconds(500));
    }
    if (!table) {
        return;
    }
    std::vector<alarms::AlarmChange> changes;
    {
        const std::lock_guard guard(lock_);
        changes = watch_.sample(now_ms, *table);
    }
    for (const alarms::AlarmChange& c : changes) {
        std::printf("ephemera: alarm: %s\n", alarms::describe(c).c_str());
        if (app.logging != nullptr) {
            app.logging->post(alarms::threshold_event(c, now_ms));
        }
        changes_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!changes.empty()) {
        std::fflush(stdout);
    }
}

alarms::WatchState PoolAlarms::state() const {
    const std::lock_guard guard(lock_);
    return watch_.state();
}

} // namespace ephemera
