#include "gather.hpp"

#include "../app.hpp"

#include <rte_cycles.h>

#include <vector>

namespace ephemera::metrics {

namespace {

WorkerSnapshot worker_snapshot(const Worker& w) {
    WorkerSnapshot out;
    out.id = w.id();
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        out.counters[i] = w.counters().get(static_cast<Counter>(i));
    }
    const Gauges& g = w.gauges();
    out.sessions = g.sessions.load(std::memory_order_relaxed);
    out.mappings = g.mappings.load(std::memory_order_relaxed);
    out.subscribers = g.subscribers.load(std::memory_order_relaxed);
    out.ports_in_hold_down = g.ports_held.load(std::memory_order_relaxed);
    out.ports_per_address = g.ports_per_address.load(std::memory_order_relaxed);
    for (std::size_t p = 0; p < kProtocolCount; ++p) {
        out.sessions_by_protocol[p] = g.sessions_by_proto[p].load(std::memory_order_relaxed);
    }
    out.longest_iteration_seconds =
        static_cast<double>(g.pauses.longest()) / static_cast<double>(rte_get_tsc_hz());
    out.plans_taken = g.pauses.plans();
    return out;
}

// As /ephemera/ports counts them (telemetry.cpp): each worker owns its share of an address,
// except in deterministic mode, where every worker numbers every port, so the range counts
// once and the ports in use add up. The caller holds app.mailbox_lock.
bool port_use(App& app, std::vector<PortUse>& out) {
    std::vector<Mailbox*> boxes;
    for (auto& w : app.workers) {
        boxes.push_back(&w->mailbox());
    }
    if (boxes.empty() ||
        !ask_all(boxes, {Mailbox::Kind::ports, SessionFilter{}, 0}, kPortUseTimeout)) {
        return false;
    }
    const Mailbox& first = app.workers.front()->mailbox();
    // A pool change between two workers' answers leaves them listing different addresses:
    // this scrape then has no port figures rather than mixed ones.
    for (auto& w : app.workers) {
        const Mailbox& box = w->mailbox();
        if (box.addresses != first.addresses ||
            box.free_ports.size() != first.addresses.size() * kProtocolCount) {
            return false;
        }
    }
    const bool shared_range = app.shared.ownership.by_subscriber();
    for (std::size_t a = 0; a < first.addresses.size(); ++a) {
        PortUse use;
        use.address = first.addresses[a].to_string();
        use.draining = first.active[a] == 0;
        for (std::size_t p = 0; p < kProtocolCount; ++p) {
            std::uint64_t used = 0;
            std::uint64_t usable = 0;
            for (auto& w : app.workers) {
                const Mailbox& box = w->mailbox();
                const std::uint32_t free = box.free_ports[a * kProtocolCount + p];
                used += box.usable_ports - free;
                usable += box.usable_ports;
            }
            use.usable[p] = shared_range ? first.usable_ports : usable;
            use.used[p] = std::min(used, use.usable[p]);
        }
        out.push_back(std::move(use));
    }
    return true;
}

} // namespace

Snapshot gather(App& app) {
    Snapshot s;
    for (const auto& w : app.workers) {
        s.workers.push_back(worker_snapshot(*w));
    }
    {
        std::lock_guard guard(app.mailbox_lock); // one mailbox requester at a time
        s.ports_known = port_use(app, s.ports);
        if (!s.ports_known) {
            s.ports.clear();
        }
    }
    if (app.logging) {
        s.log_records_taken = app.logging->records_taken();
        for (const SinkReport& r : app.logging->report()) {
            s.sinks.push_back({r.name, r.records_sent, r.records_dropped, r.messages_sent,
                               r.bytes_sent, r.errors});
        }
    }
    if (app.steering) {
        s.outside_steering = std::string(steering_name(app.steering->plan().mode));
        s.flow_rules = app.steering->plan().installed_count;
    }
    if (app.ports) {
        s.inside_steering = std::string(steering_name(app.ports->inside_steering().mode));
    }
    return s;
}

} // namespace ephemera::metrics
