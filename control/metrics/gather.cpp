#include "gather.hpp"

#include "../app.hpp"
#include "../port_use.hpp"
#include "../subscriber_top.hpp"

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

// As /ephemera/ports counts them (port_use.hpp). The caller holds app.mailbox_lock.
bool port_use(App& app, std::vector<PortUse>& out) {
    const std::optional<alarms::PortUseTable> table = gather_port_use(app, kPortUseTimeout);
    if (!table) {
        return false;
    }
    for (std::size_t a = 0; a < table->addresses.size(); ++a) {
        PortUse use;
        use.address = table->addresses[a].to_string();
        use.draining = table->draining[a];
        for (const Protocol p : alarms::kWatchedProtocols) {
            const auto at = static_cast<std::size_t>(proto_index(p));
            use.used[at] = table->at(a, p).used;
            use.usable[at] = table->at(a, p).usable;
        }
        out.push_back(std::move(use));
    }
    return true;
}

void add_alarms(const PoolAlarms& alarms, Snapshot& s) {
    const alarms::WatchState state = alarms.state();
    s.alarms_sampled = state.time_ms != 0;
    s.alarm_changes = alarms.changes();
    for (const alarms::Forecast& f : state.pool) {
        s.pool_forecasts.push_back({f.proto,
                                    state.raised[static_cast<std::size_t>(proto_index(f.proto))],
                                    f.ports_per_second, f.seconds_to_exhaustion});
    }
    for (const alarms::Forecast& f : state.addresses) {
        if (f.seconds_to_exhaustion) {
            s.address_forecasts.push_back(
                {f.address.to_string(), f.proto, *f.seconds_to_exhaustion});
        }
    }
}

std::vector<TopSubscriber> top_list(const TopList<SubscriberSummary::kTop>& top) {
    std::vector<TopSubscriber> out;
    for (const SubscriberSample& s : top) {
        out.push_back(
            {s.subscriber.to_string(), s.pool_address.to_string(), s.most_ports(), s.refusals});
    }
    return out;
}

// The workers' subscriber summaries, merged (the caller holds app.mailbox_lock).
void add_subscribers(App& app, Snapshot& s) {
    const std::optional<SubscriberSummary> summary = gather_subscribers(app, kSubscribersTimeout);
    s.subscribers_known = summary.has_value();
    if (!summary) {
        return;
    }
    Histogram& ports = s.subscriber_ports;
    for (std::size_t i = 0; i < SubscriberSummary::kPortBuckets; ++i) {
        ports.bounds.push_back(SubscriberSummary::port_bound(i));
        ports.counts.push_back(summary->ports_histogram[i]);
    }
    ports.sum = static_cast<double>(summary->ports_sum);
    ports.count = summary->subscribers;
    if (app.config.allocation == AllocationMode::blocks) {
        Histogram fill;
        for (std::size_t i = 0; i < SubscriberSummary::kFillBuckets; ++i) {
            fill.bounds.push_back(static_cast<double>(i + 1) / 10);
            fill.counts.push_back(summary->fill_histogram[i]);
        }
        fill.sum = summary->fill_sum;
        fill.count = summary->with_blocks;
        s.block_fill = std::move(fill);
    }
    s.top_by_ports = top_list(summary->by_ports());
    s.top_by_refusals = top_list(summary->by_refusals());
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
        add_subscribers(app, s);
    }
    if (app.logging) {
        s.log_records_taken = app.logging->records_taken();
        s.sinks = app.logging->report();
    }
    if (app.pool_alarms) {
        add_alarms(*app.pool_alarms, s);
    }
    if (app.sync) {
        const ha::HaReport r = app.sync->report();
        s.ha = HaSnapshot{r.role == "active",     r.peer_connected,      r.in_sync,
                          r.records_sent,         r.records_received,    r.records_discarded,
                          r.sequence_gaps,        r.lag_records,         r.last_heard_ms_ago,
                          r.sync_bytes_sent,      r.sync_bytes_received, r.pairings,
                          r.bulk_rounds,          r.failovers,           r.split_brains,
                          r.last_failover_unix_ms};
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
