// /ephemera/... commands for DPDK telemetry (dpdk-telemetry.py -f PREFIX). Callbacks run on the
// EAL's telemetry thread: they read only atomics (counters, gauges) and immutable state, and
// get mapping lists from the workers through their mailboxes.
//
// Lifetime: the telemetry thread outlives the App (DPDK 22.11 cannot unregister a command, and
// the thread runs until the process ends). Every callback holds the gate shared while it uses
// the App; TelemetryRegistration::close() takes it exclusively and forgets the App, so a
// command either finishes before the App goes or finds none and answers with an error.
#include "app.hpp"
#include "config_parse.hpp"
#include "pauses.hpp"
#include "port_use.hpp"
#include "subscriber_top.hpp"

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <shared_mutex>
#include <string>
#include <thread>

namespace ephemera {

namespace {

// Telemetry callbacks take no context pointer.
std::shared_mutex g_gate;
App* g_app = nullptr; // guarded by g_gate

using Handler = int (*)(App&, const char* params, rte_tel_data*);

template <Handler handler>
int gated(const char*, const char* params, rte_tel_data* d) {
    std::shared_lock lock(g_gate);
    if (g_app == nullptr) {
        return -1; // stopping: the client gets a null answer
    }
    return handler(*g_app, params, d);
}

void add_counters(rte_tel_data* d, const std::function<std::uint64_t(Counter)>& get) {
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        rte_tel_data_add_dict_u64(d, kCounterNames[i].data(), get(static_cast<Counter>(i)));
    }
}

// Sessions per protocol, subscribers and ports in hold-down: the lifecycle's gauges.
void add_worker_gauges(rte_tel_data* d, const Gauges& g) {
    rte_tel_data_add_dict_u64(d, "live_subscribers", g.subscribers.load(std::memory_order_relaxed));
    rte_tel_data_add_dict_u64(d, "ports_in_hold_down",
                              g.ports_held.load(std::memory_order_relaxed));
    for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
        const std::string key = "live_sessions_" + std::string(protocol_name(p));
        rte_tel_data_add_dict_u64(
            d, key.c_str(),
            g.sessions_by_proto[static_cast<std::size_t>(proto_index(p))].load(
                std::memory_order_relaxed));
    }
}

void add_total_gauges(const App& app, rte_tel_data* d) {
    std::uint64_t subscribers = 0;
    std::uint64_t held = 0;
    std::array<std::uint64_t, kProtocolCount> by_proto{};
    for (const auto& w : app.workers) {
        const Gauges& g = w->gauges();
        subscribers += g.subscribers.load(std::memory_order_relaxed);
        held += g.ports_held.load(std::memory_order_relaxed);
        for (std::size_t p = 0; p < kProtocolCount; ++p) {
            by_proto[p] += g.sessions_by_proto[p].load(std::memory_order_relaxed);
        }
    }
    rte_tel_data_add_dict_u64(d, "live_subscribers", subscribers);
    rte_tel_data_add_dict_u64(d, "ports_in_hold_down", held);
    for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
        const std::string key = "live_sessions_" + std::string(protocol_name(p));
        rte_tel_data_add_dict_u64(d, key.c_str(),
                                  by_proto[static_cast<std::size_t>(proto_index(p))]);
    }
}

int cmd_stats(App& app, const char*, rte_tel_data* d) {
    rte_tel_data_start_dict(d);
    std::uint64_t sessions = 0;
    std::uint64_t mappings = 0;
    for (const auto& w : app.workers) {
        sessions += w->live_sessions();
        mappings += w->live_mappings();
    }
    rte_tel_data_add_dict_u64(d, "workers", app.workers.size());
    rte_tel_data_add_dict_u64(d, "live_sessions", sessions);
    rte_tel_data_add_dict_u64(d, "live_mappings", mappings);
    add_total_gauges(app, d);
    add_pause_totals(d, app);
    add_counters(d, [&app](Counter c) { return counter_total(app, c); });
    return 0;
}

int cmd_worker(App& app, const char* params, rte_tel_data* d) {
    if (params == nullptr || *params == '\0') {
        return -1;
    }
    char* end = nullptr;
    const unsigned long id = std::strtoul(params, &end, 10);
    if (*end != '\0' || id >= app.workers.size()) {
        return -1;
    }
    const Worker& w = *app.workers[id];
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "worker", id);
    rte_tel_data_add_dict_u64(d, "lcore", app.worker_lcores[id]);
    rte_tel_data_add_dict_u64(d, "live_sessions", w.live_sessions());
    rte_tel_data_add_dict_u64(d, "live_mappings", w.live_mappings());
    add_worker_gauges(d, w.gauges());
    rte_tel_data_add_dict_u64(d, "ports_per_address",
                              w.gauges().ports_per_address.load(std::memory_order_relaxed));
    add_pause_gauges(d, w);
    add_counters(d, [&w](Counter c) { return w.counters().get(c); });
    return 0;
}

// "subscriber=A;external=A:P;address=A;limit=N", any subset, in any order.
struct SessionQuery {
    SessionFilter filter;
    std::size_t limit = Mailbox::kMaxSessions;
    std::string error;
};

SessionQuery parse_session_query(const char* params) {
    SessionQuery q;
    std::string text = params == nullptr ? "" : params;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find(';', start), text.size());
        const std::string part = text.substr(start, end - start);
        start = end + 1;
        const auto eq = part.find('=');
        const std::string key = part.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : part.substr(eq + 1);
        if (key == "subscriber" || key == "address") {
            const auto a = Ipv4Addr::parse(value);
            if (!a) {
                q.error = key + ": not an IPv4 address: " + value;
                return q;
            }
            (key == "subscriber" ? q.filter.subscriber : q.filter.external) = *a;
        } else if (key == "external") {
            const auto colon = value.rfind(':');
            const auto a = Ipv4Addr::parse(value.substr(0, colon));
            char* tail = nullptr;
            const unsigned long port =
                colon == std::string::npos ? 0 : std::strtoul(value.c_str() + colon + 1, &tail, 10);
            if (!a || colon == std::string::npos || *tail != '\0' || port > 65535) {
                q.error = "external: expected ADDRESS:PORT, got " + value;
                return q;
            }
            q.filter.external = *a;
            q.filter.external_port = static_cast<std::uint16_t>(port);
        } else if (key == "limit") {
            q.limit = std::strtoul(value.c_str(), nullptr, 10);
        } else if (!key.empty()) {
            q.error = "unknown filter " + key + " (subscriber, external, address, limit)";
            return q;
        }
    }
    return q;
}

void result_dict(rte_tel_data* d, const ChangeResult& r) {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "result", r.ok ? "ok" : "refused");
    rte_tel_data_add_dict_string(d, "message",
                                 r.message.substr(0, RTE_TEL_MAX_STRING_LEN - 1).c_str());
}

// Lists live mappings, at most `limit` (telemetry arrays hold 512 entries).
int cmd_mappings(App& app, const char* params, rte_tel_data* d) {
    std::size_t limit = 256;
    if (params != nullptr && *params != '\0') {
        limit = std::strtoul(params, nullptr, 10);
    }
    limit = std::min<std::size_t>(limit, RTE_TEL_MAX_ARRAY_ENTRIES);
    std::lock_guard guard(app.mailbox_lock);
    if (!ask_workers(app, Mailbox::Kind::mappings)) {
        return -1;
    }
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    for (auto& w : app.workers) {
        const Mailbox& box = w->mailbox();
        for (std::size_t i = 0; i < box.mapping_count && limit > 0; ++i, --limit) {
            const MappingView& m = box.mappings[i];
            const std::string line =
                std::string(protocol_name(m.proto)) + " " + m.inside.to_string() + ":" +
                std::to_string(m.inside_port) + " -> " + m.external.to_string() + ":" +
                std::to_string(m.external_port) + " sessions=" + std::to_string(m.sessions) +
                " worker=" + std::to_string(w->id());
            rte_tel_data_add_array_string(d, line.c_str());
        }
    }
    return 0;
}

// Sessions matching a filter, one line each.
int cmd_sessions(App& app, const char* params, rte_tel_data* d) {
    const SessionQuery q = parse_session_query(params);
    if (!q.error.empty()) {
        result_dict(d, {false, q.error});
        return 0;
    }
    std::lock_guard guard(app.mailbox_lock);
    if (!ask_workers(app, Mailbox::Kind::sessions, q.filter, q.limit)) {
        return -1;
    }
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    std::size_t limit = std::min<std::size_t>(q.limit, RTE_TEL_MAX_ARRAY_ENTRIES);
    for (auto& w : app.workers) {
        for (const SessionView& s : w->mailbox().sessions) {
            if (limit-- == 0) {
                return 0;
            }
            std::string line = std::string(protocol_name(s.proto)) + " " + s.inside.to_string() +
                               ":" + std::to_string(s.inside_port) + " as " +
                               s.external.to_string() + ":" + std::to_string(s.external_port) +
                               " <-> " + s.remote.to_string() + ":" +
                               std::to_string(s.remote_port) +
                               " idle=" + std::to_string(s.idle / kTicksPerSecond) + "s";
            if (s.proto == Protocol::tcp) {
                line += s.established ? " established" : " transitory";
            }
            line += " worker=" + std::to_string(w->id());
            rte_tel_data_add_array_string(d, line.c_str());
        }
    }
    return 0;
}

// Blocks in use, one string each: "ADDRESS FIRST-LAST ports=N in_use=M subscriber=A age=Ts
// [closed] worker=W". FIRST-LAST is the block's span; with several workers it holds only the
// worker's own ports of that span (docs/allocation.md).
int cmd_blocks(App& app, const char* params, rte_tel_data* d) {
    const SessionQuery q = parse_session_query(params);
    if (!q.error.empty() || q.filter.external) {
        result_dict(d,
                    {false, q.error.empty() ? "blocks takes subscriber=A and limit=N" : q.error});
        return 0;
    }
    if (app.config.allocation != AllocationMode::blocks) {
        result_dict(d, {false, "pool.mode is " +
                                   std::string(allocation_mode_name(app.config.allocation)) +
                                   ": there are no port blocks"});
        return 0;
    }
    std::lock_guard guard(app.mailbox_lock);
    if (!ask_workers(app, Mailbox::Kind::blocks, q.filter, q.limit)) {
        return -1;
    }
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    std::size_t limit = std::min<std::size_t>(q.limit, RTE_TEL_MAX_ARRAY_ENTRIES);
    for (auto& w : app.workers) {
        for (const BlockView& b : w->mailbox().blocks) {
            if (limit-- == 0) {
                return 0;
            }
            std::string line = b.address.to_string() + " " + std::to_string(b.first_port) + "-" +
                               std::to_string(b.last_port) + " ports=" + std::to_string(b.ports) +
                               " in_use=" + std::to_string(b.in_use) +
                               " subscriber=" + b.subscriber.to_string() +
                               " age=" + std::to_string(b.age / kTicksPerSecond) + "s";
            if (b.closed) {
                line += " closed";
            }
            line += " worker=" + std::to_string(w->id());
            rte_tel_data_add_array_string(d, line.c_str());
        }
    }
    return 0;
}

int cmd_flush(App& app, const char* params, rte_tel_data* d) {
    const SessionQuery q = parse_session_query(params);
    if (!q.error.empty() || (!q.filter.subscriber && !q.filter.external)) {
        result_dict(d, {false, q.error.empty() ? "flush needs a filter: subscriber=A, "
                                                 "external=A:P or address=A"
                                               : q.error});
        return 0;
    }
    std::lock_guard guard(app.mailbox_lock);
    if (!ask_workers(app, Mailbox::Kind::flush, q.filter, 0, std::chrono::milliseconds(10000))) {
        return -1;
    }
    std::uint64_t flushed = 0;
    for (auto& w : app.workers) {
        flushed += w->mailbox().flushed;
    }
    result_dict(d, {true, "flushed " + std::to_string(flushed) + " sessions"});
    rte_tel_data_add_dict_u64(d, "flushed", flushed);
    return 0;
}

// Port use per pool address, summed over workers, as columns (telemetry names may not hold
// the dots of an address): "address" lists the pool, and "udp_free", "udp_usable",
// "tcp_free", "tcp_usable", "icmp_free", "icmp_usable", "held", "draining" are arrays in
// the same order.
int cmd_ports(App& app, const char*, rte_tel_data* d) {
    std::lock_guard guard(app.mailbox_lock);
    if (!ask_workers(app, Mailbox::Kind::ports)) {
        return -1;
    }
    // Every worker knows the same addresses in the same order (they took the same configs).
    const Mailbox& first = app.workers.front()->mailbox();
    const std::size_t shown =
        std::min<std::size_t>(first.addresses.size(), RTE_TEL_MAX_ARRAY_ENTRIES);
    const auto column = [&](const char* name, auto value_of) {
        rte_tel_data* c = rte_tel_data_alloc();
        rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
        for (std::size_t a = 0; a < shown; ++a) {
            rte_tel_data_add_array_u64(c, value_of(a));
        }
        rte_tel_data_add_dict_container(d, name, c, 0);
    };
    rte_tel_data_start_dict(d);
    rte_tel_data* addresses = rte_tel_data_alloc();
    rte_tel_data_start_array(addresses, RTE_TEL_STRING_VAL);
    for (std::size_t a = 0; a < shown; ++a) {
        rte_tel_data_add_array_string(addresses, first.addresses[a].to_string().c_str());
    }
    rte_tel_data_add_dict_container(d, "address", addresses, 0);
    const std::optional<alarms::PortUseTable> table = port_use_from_mailboxes(app);
    if (!table) {
        return -1; // a pool change between the workers' answers: ask again
    }
    const alarms::PortUseTable& use = *table;
    for (Protocol p : alarms::kWatchedProtocols) {
        const std::string name(protocol_name(p));
        column((name + "_free").c_str(), [&](std::size_t a) {
            const alarms::PortUse& u = use.at(a, p);
            return u.used < u.usable ? u.usable - u.used : 0;
        });
        column((name + "_usable").c_str(), [&](std::size_t a) { return use.at(a, p).usable; });
    }
    // Held ports are counted per worker, not per address: their total stands on the first.
    std::uint64_t held_total = 0;
    for (auto& w : app.workers) {
        held_total += w->gauges().ports_held.load(std::memory_order_relaxed);
    }
    column("held", [&](std::size_t a) { return a == 0 ? held_total : 0; });
    column("draining", [&](std::size_t a) { return first.active[a] ? 0u : 1u; });
    if (app.config.allocation == AllocationMode::blocks) {
        const auto blocks = [&](const char* name, auto field) {
            column(name, [&](std::size_t a) {
                std::uint64_t n = 0;
                for (auto& w : app.workers) {
                    n += field(w->mailbox().block_counts[a]);
                }
                return n;
            });
        };
        blocks("blocks_in_use", [](const BlockCounts& c) { return c.in_use; });
        blocks("blocks_held", [](const BlockCounts& c) { return c.held; });
        blocks("blocks_free", [](const BlockCounts& c) { return c.free; });
    }
    return 0;
}

// One top N list as columns, one array per field, largest first: PREFIX_subscriber,
// PREFIX_pool_address (strings), PREFIX_udp, _tcp, _icmp (ports in use), _sessions,
// _refusals, _blocks (integers).
void add_top_list(rte_tel_data* d, const std::string& prefix,
                  const TopList<SubscriberSummary::kTop>& top) {
    const auto strings = [&](const char* field, auto value_of) {
        rte_tel_data* c = rte_tel_data_alloc();
        rte_tel_data_start_array(c, RTE_TEL_STRING_VAL);
        for (const SubscriberSample& s : top) {
            rte_tel_data_add_array_string(c, value_of(s).to_string().c_str());
        }
        rte_tel_data_add_dict_container(d, (prefix + field).c_str(), c, 0);
    };
    const auto numbers = [&](const char* field, auto value_of) {
        rte_tel_data* c = rte_tel_data_alloc();
        rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
        for (const SubscriberSample& s : top) {
            rte_tel_data_add_array_u64(c, value_of(s));
        }
        rte_tel_data_add_dict_container(d, (prefix + field).c_str(), c, 0);
    };
    strings("subscriber", [](const SubscriberSample& s) { return s.subscriber; });
    strings("pool_address", [](const SubscriberSample& s) { return s.pool_address; });
    numbers("udp", [](const SubscriberSample& s) { return s.ports[0]; });
    numbers("tcp", [](const SubscriberSample& s) { return s.ports[1]; });
    numbers("icmp", [](const SubscriberSample& s) { return s.ports[2]; });
    numbers("sessions", [](const SubscriberSample& s) { return s.sessions; });
    numbers("refusals", [](const SubscriberSample& s) { return s.refusals; });
    numbers("blocks", [](const SubscriberSample& s) { return s.blocks; });
}

void add_u64_array(rte_tel_data* d, const char* name, std::size_t n, auto value_of) {
    rte_tel_data* c = rte_tel_data_alloc();
    rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
    for (std::size_t i = 0; i < n; ++i) {
        rte_tel_data_add_array_u64(c, value_of(i));
    }
    rte_tel_data_add_dict_container(d, name, c, 0);
}

// Subscribers by port use, merged over the workers (`ephemeractl top`):
// "subscribers" (with state), "ports_sum"; the histogram of each subscriber's ports in its
// busiest protocol as "ports_le" (upper bounds 0, 1, 2, 4, ..., 65536) and "ports_count"
// (subscribers per bucket, not cumulative); the top N by ports ("top_ports_*") and by
// refusals ("top_refusals_*"), columns as add_top_list lists them. In blocks mode also
// "subscribers_with_blocks" and the block fill histogram "block_fill_le_percent" (10, 20,
// ..., 100) and "block_fill_count".
int cmd_top(App& app, const char*, rte_tel_data* d) {
    std::optional<SubscriberSummary> summary;
    {
        std::lock_guard guard(app.mailbox_lock);
        summary = gather_subscribers(app, std::chrono::milliseconds(2000));
    }
    if (!summary) {
        return -1;
    }
    const SubscriberSummary& s = *summary;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "subscribers", s.subscribers);
    rte_tel_data_add_dict_u64(d, "ports_sum", s.ports_sum);
    add_u64_array(d, "ports_le", SubscriberSummary::kPortBuckets,
                  [](std::size_t i) { return SubscriberSummary::port_bound(i); });
    add_u64_array(d, "ports_count", SubscriberSummary::kPortBuckets,
                  [&](std::size_t i) { return s.ports_histogram[i]; });
    add_top_list(d, "top_ports_", s.by_ports());
    add_top_list(d, "top_refusals_", s.by_refusals());
    if (app.config.allocation == AllocationMode::blocks) {
        rte_tel_data_add_dict_u64(d, "subscribers_with_blocks", s.with_blocks);
        add_u64_array(d, "block_fill_le_percent", SubscriberSummary::kFillBuckets,
                      [](std::size_t i) { return (i + 1) * 10; });
        add_u64_array(d, "block_fill_count", SubscriberSummary::kFillBuckets,
                      [&](std::size_t i) { return s.fill_histogram[i]; });
    }
    return 0;
}

int cmd_set(App& app, const char* params, rte_tel_data* d) {
    const std::string text = params == nullptr ? "" : params;
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
        result_dict(d, {false, "expected KEY=VALUE, e.g. timeouts.udp=600"});
        return 0;
    }
    result_dict(d, app.runtime->set(text.substr(0, eq), text.substr(eq + 1)));
    return 0;
}

int cmd_pool(App& app, const char* params, rte_tel_data* d) {
    const std::string text = params == nullptr ? "" : params;
    if (text.rfind("add=", 0) == 0) {
        result_dict(d, app.runtime->pool_add(text.substr(4)));
    } else if (text.rfind("remove=", 0) == 0) {
        result_dict(d, app.runtime->pool_remove(text.substr(7)));
    } else {
        result_dict(d, {false, "expected add=ADDRESS or remove=ADDRESS"});
    }
    return 0;
}

// The static mappings in config order, as columns (telemetry cannot nest a dict in an array):
// "kind" ("forward" or "1:1"), "protocol" ("tcp", "udp"; "any" for 1:1), "external",
// "external_port", "inside", "inside_port" (ports 0 for 1:1), and "total", the number of
// mappings. A reply holds 16 KiB, so only the first kStaticsShown are listed.
constexpr std::size_t kStaticsShown = 200;

void list_statics(const Config& c, rte_tel_data* d) {
    const std::size_t shown = std::min(c.statics.size(), kStaticsShown);
    rte_tel_data_start_dict(d);
    const auto strings = [&](const char* name, auto text_of) {
        rte_tel_data* column = rte_tel_data_alloc();
        rte_tel_data_start_array(column, RTE_TEL_STRING_VAL);
        for (std::size_t i = 0; i < shown; ++i) {
            rte_tel_data_add_array_string(column, std::string(text_of(c.statics[i])).c_str());
        }
        rte_tel_data_add_dict_container(d, name, column, 0);
    };
    const auto numbers = [&](const char* name, auto value_of) {
        rte_tel_data* column = rte_tel_data_alloc();
        rte_tel_data_start_array(column, RTE_TEL_U64_VAL);
        for (std::size_t i = 0; i < shown; ++i) {
            rte_tel_data_add_array_u64(column, value_of(c.statics[i]));
        }
        rte_tel_data_add_dict_container(d, name, column, 0);
    };
    strings("kind", [](const StaticMapping& m) { return m.one_to_one() ? "1:1" : "forward"; });
    strings("protocol", [](const StaticMapping& m) {
        return m.one_to_one() ? std::string_view("any") : protocol_name(m.proto);
    });
    strings("external", [](const StaticMapping& m) { return m.external.to_string(); });
    numbers("external_port", [](const StaticMapping& m) { return m.external_port; });
    strings("inside", [](const StaticMapping& m) { return m.inside.to_string(); });
    numbers("inside_port", [](const StaticMapping& m) { return m.inside_port; });
    rte_tel_data_add_dict_u64(d, "total", c.statics.size());
}

// No parameter: the list. add=SPEC or remove=SPEC in the command line's spelling
// (parse_static_spec), at most some 40 characters, far below a request's 1024 bytes.
int cmd_static(App& app, const char* params, rte_tel_data* d) {
    const std::string text = params == nullptr ? "" : params;
    if (text.empty()) {
        list_statics(app.runtime->current(), d);
    } else if (text.rfind("add=", 0) == 0) {
        result_dict(d, app.runtime->static_add(text.substr(4)));
    } else if (text.rfind("remove=", 0) == 0) {
        result_dict(d, app.runtime->static_remove(text.substr(7)));
    } else {
        result_dict(d, {false, "expected nothing (the list), add=SPEC or remove=SPEC"});
    }
    return 0;
}

// NAT event logging: what the workers handed over and lost (their rings), and per sink what
// went out and what was lost there, as columns (one entry per sink).
int cmd_logging(App& app, const char*, rte_tel_data* d) {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "log_records", counter_total(app, Counter::log_records));
    rte_tel_data_add_dict_u64(d, "log_records_dropped",
                              counter_total(app, Counter::log_records_dropped));
    rte_tel_data_add_dict_u64(d, "records_taken", app.logging->records_taken());
    const std::vector<SinkReport> sinks = app.logging->report();
    rte_tel_data* names = rte_tel_data_alloc();
    rte_tel_data_start_array(names, RTE_TEL_STRING_VAL);
    for (const auto& s : sinks) {
        rte_tel_data_add_array_string(names, s.name.c_str());
    }
    rte_tel_data_add_dict_container(d, "sink", names, 0);
    const auto column = [&](const char* name, std::uint64_t SinkReport::*field) {
        rte_tel_data* c = rte_tel_data_alloc();
        rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
        for (const auto& s : sinks) {
            rte_tel_data_add_array_u64(c, s.*field);
        }
        rte_tel_data_add_dict_container(d, name, c, 0);
    };
    column("records_sent", &SinkReport::records_sent);
    column("records_dropped", &SinkReport::records_dropped);
    column("messages_sent", &SinkReport::messages_sent);
    column("bytes_sent", &SinkReport::bytes_sent);
    column("errors", &SinkReport::errors);
    return 0;
}

// One line per protocol: "1800 of 2000 ports in use (90 %), alarm raised, +5.0 ports/s,
// exhausted in about 40 s". A flat dict, so that `ephemeractl show alarms` lists it as it
// lists the config.
std::string forecast_text(const alarms::Forecast& f) {
    char text[96];
    if (!f.ports_per_second) {
        return "no trend yet";
    }
    if (!f.seconds_to_exhaustion) {
        std::snprintf(text, sizeof text, "%+.1f ports/s, not running out", *f.ports_per_second);
    } else {
        std::snprintf(text, sizeof text, "%+.1f ports/s, exhausted in about %.0f s",
                      *f.ports_per_second, *f.seconds_to_exhaustion);
    }
    return text;
}

// The HA pair (docs/ha.md): this box's role, the sync link, the stream's counts, failovers.
// Telemetry strings hold 127 characters.
void add_dict_text(rte_tel_data* d, const char* key, const std::string& value) {
    rte_tel_data_add_dict_string(d, key, value.substr(0, 127).c_str());
}

// The last hand-over between scale-out boxes (control/ha/handover.hpp), under "handover_".
void add_handover(const App& app, rte_tel_data* d) {
    if (app.handover == nullptr) {
        return;
    }
    const ha::HandoverReport r = app.handover->report();
    const auto text = [d](const char* key, const std::string& value) {
        add_dict_text(d, key, value);
    };
    text("handover_state", r.state);
    text("handover_direction", r.direction);
    text("handover_peer", r.peer);
    text("handover_error", r.error);
    text("handover_adopted", r.adopted);
    rte_tel_data_add_dict_u64(d, "handover_records_sent", r.records_sent);
    rte_tel_data_add_dict_u64(d, "handover_records_received", r.records_received);
    rte_tel_data_add_dict_u64(d, "handover_applied", r.applied);
    rte_tel_data_add_dict_u64(d, "handover_refused", r.refused);
    rte_tel_data_add_dict_u64(d, "handover_silent_ms", r.silent_ms);
    rte_tel_data_add_dict_u64(d, "handover_finished_unix_ms", r.finished_unix_ms);
    text("handover_subscribers", r.subscribers);
    text("handover_hook", r.hook);
    rte_tel_data_add_dict_u64(d, "handovers_in", r.handovers_in);
    rte_tel_data_add_dict_u64(d, "handovers_out", r.handovers_out);
    rte_tel_data_add_dict_u64(d, "migrations_out", r.migrations_out);
    // Moved subscribers' ports held here for the replies the routers still send here.
    rte_tel_data_add_dict_u64(d, "ports_forwarded",
                              counter_total(app, Counter::ports_forwarded) -
                                  counter_total(app, Counter::forwards_ended));
    std::string moved;
    for (const Config::SubscriberMove& m : app.runtime->current().moved_subscribers) {
        if (!moved.empty()) {
            moved += ' ';
        }
        moved += m.prefix.to_string();
        moved += '/';
        moved += std::to_string(m.length);
        moved += m.moved ? " to " : " moving to ";
        moved += m.peer;
    }
    text("moved_subscribers", moved);
}

int cmd_ha(App& app, const char*, rte_tel_data* d) {
    rte_tel_data_start_dict(d);
    if (app.sync == nullptr) {
        rte_tel_data_add_dict_string(d, "role", "none");
        rte_tel_data_add_dict_string(d, "message", "no ha.role in the config: not a pair");
        add_handover(app, d);
        return 0;
    }
    const ha::HaReport r = app.sync->report();
    const auto text = [d](const char* key, const std::string& value) {
        add_dict_text(d, key, value);
    };
    text("role", r.role);
    text("peer", r.peer);
    rte_tel_data_add_dict_u64(d, "peer_connected", r.peer_connected ? 1 : 0);
    rte_tel_data_add_dict_u64(d, "in_sync", r.in_sync ? 1 : 0);
    text("refused", r.refused);
    text("last_error", r.last_error);
    rte_tel_data_add_dict_u64(d, "records_sent", r.records_sent);
    rte_tel_data_add_dict_u64(d, "records_received", r.records_received);
    rte_tel_data_add_dict_u64(d, "records_applied",
                              counter_total(app, Counter::ha_records_applied));
    rte_tel_data_add_dict_u64(d, "records_refused",
                              counter_total(app, Counter::ha_records_refused));
    rte_tel_data_add_dict_u64(d, "records_dropped",
                              counter_total(app, Counter::ha_records_dropped));
    rte_tel_data_add_dict_u64(d, "records_discarded", r.records_discarded);
    rte_tel_data_add_dict_u64(d, "sequence_gaps", r.sequence_gaps);
    rte_tel_data_add_dict_u64(d, "lag_records", r.lag_records);
    rte_tel_data_add_dict_u64(d, "last_heard_ms_ago", r.last_heard_ms_ago);
    rte_tel_data_add_dict_u64(d, "sync_bytes_sent", r.sync_bytes_sent);
    rte_tel_data_add_dict_u64(d, "sync_bytes_received", r.sync_bytes_received);
    rte_tel_data_add_dict_u64(d, "pairings", r.pairings);
    rte_tel_data_add_dict_u64(d, "bulk_rounds", r.bulk_rounds);
    rte_tel_data_add_dict_u64(d, "failovers", r.failovers);
    rte_tel_data_add_dict_u64(d, "split_brains", r.split_brains);
    rte_tel_data_add_dict_u64(d, "last_failover_unix_ms", r.last_failover_unix_ms);
    text("last_failover_reason", r.last_failover_reason);
    return 0;
}

int cmd_alarms(App& app, const char*, rte_tel_data* d) {
    const alarms::WatchState s = app.pool_alarms->state();
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "pool_ports_high", s.config.pool_ports_high);
    rte_tel_data_add_dict_u64(d, "pool_ports_clear", s.config.pool_ports_clear);
    rte_tel_data_add_dict_u64(d, "forecast_window_s", s.config.forecast_window);
    rte_tel_data_add_dict_u64(d, "alarm_changes", app.pool_alarms->changes());
    for (const alarms::Forecast& f : s.pool) {
        const std::size_t p = static_cast<std::size_t>(proto_index(f.proto));
        const std::string line = std::to_string(f.use.used) + " of " +
                                 std::to_string(f.use.usable) + " ports in use (" +
                                 std::to_string(f.use.percent()) + " %), " +
                                 (s.raised[p] ? "ALARM raised, " : "no alarm, ") + forecast_text(f);
        rte_tel_data_add_dict_string(d, std::string(protocol_name(f.proto)).c_str(), line.c_str());
    }
    // Per protocol, the pool address that runs out first: paired pooling ties a subscriber to
    // one address, so that address's subscribers are refused before the pool is full.
    for (const Protocol p : alarms::kWatchedProtocols) {
        const alarms::Forecast* soonest = nullptr;
        for (const alarms::Forecast& f : s.addresses) {
            if (f.proto == p && f.seconds_to_exhaustion &&
                (soonest == nullptr ||
                 *f.seconds_to_exhaustion < *soonest->seconds_to_exhaustion)) {
                soonest = &f;
            }
        }
        const std::string key = "soonest_" + std::string(protocol_name(p));
        const std::string line =
            soonest == nullptr ? std::string("no address running out")
                               : soonest->address.to_string() + ": " + forecast_text(*soonest);
        rte_tel_data_add_dict_string(d, key.c_str(), line.c_str());
    }
    return 0;
}

// "ADDRESS:PORT": the peer's ha.handover address.
int cmd_drain(App& app, const char* params, rte_tel_data* d) {
    if (app.handover == nullptr) {
        result_dict(d, {false, "no ha.handover in the config: this box cannot hand its sessions "
                               "over"});
        return 0;
    }
    const std::string_view text = params != nullptr ? params : "";
    const auto colon = text.rfind(':');
    const auto address =
        colon == std::string_view::npos ? std::nullopt : Ipv4Addr::parse(text.substr(0, colon));
    const auto port = colon == std::string_view::npos
                          ? std::nullopt
                          : config_parse::parse_port_number(text.substr(colon + 1));
    if (!address || !port || *port == 0 || *port > 65535) {
        result_dict(d, {false, "give the peer's ha.handover as ADDRESS:PORT, not \"" +
                                   std::string(text) + "\""});
        return 0;
    }
    result_dict(d, app.handover->drain_to(*address, static_cast<std::uint16_t>(*port)));
    return 0;
}

// "PREFIX/LENGTH ADDRESS:PORT": the subscribers, and the peer's ha.handover address.
int cmd_migrate(App& app, const char* params, rte_tel_data* d) {
    if (app.handover == nullptr) {
        result_dict(d, {false, "no ha.handover in the config: this box cannot move subscribers"});
        return 0;
    }
    const std::string text = params != nullptr ? params : "";
    // PREFIX/LENGTH, a space, ADDRESS:PORT.
    const auto space = text.find(' ');
    const std::string subscribers = text.substr(0, space);
    const std::string peer = space == std::string::npos ? std::string() : text.substr(space + 1);
    const auto slash = subscribers.find('/');
    const auto colon = peer.rfind(':');
    std::optional<Ipv4Addr> prefix;
    std::optional<std::uint32_t> length;
    std::optional<Ipv4Addr> address;
    std::optional<std::uint32_t> port;
    if (slash != std::string::npos && colon != std::string::npos) {
        prefix = Ipv4Addr::parse(std::string_view(subscribers).substr(0, slash));
        length = config_parse::parse_port_number(std::string_view(subscribers).substr(slash + 1));
        address = Ipv4Addr::parse(std::string_view(peer).substr(0, colon));
        port = config_parse::parse_port_number(std::string_view(peer).substr(colon + 1));
    }
    if (!prefix || !length || *length > 32 || !address || !port || *port == 0 || *port > 65535) {
        result_dict(d, {false, "give the subscribers as PREFIX/LENGTH and the peer's ha.handover "
                               "as ADDRESS:PORT, not \"" +
                                   text + "\""});
        return 0;
    }
    result_dict(d, app.handover->migrate_to(*prefix, static_cast<std::uint8_t>(*length), *address,
                                            static_cast<std::uint16_t>(*port)));
    return 0;
}

int cmd_reload(App& app, const char*, rte_tel_data* d) {
    result_dict(d, app.runtime->reload());
    return 0;
}

// The allocation mode and its settings. In deterministic mode the reply carries everything the
// formula reads, so ephemeractl det computes from it what ephemera does: the port range's ends
// and the pool in file order, as runs ("A" or "A-B"; telemetry arrays hold 512 entries).
void add_allocation(rte_tel_data* d, const Config& c) {
    rte_tel_data_add_dict_string(d, "pool_mode",
                                 std::string(allocation_mode_name(c.allocation)).c_str());
    if (c.allocation == AllocationMode::blocks) {
        const BlocksConfig& b = c.blocks;
        rte_tel_data_add_dict_u64(d, "block_size", b.block_size);
        rte_tel_data_add_dict_u64(d, "max_blocks", b.max_blocks);
        rte_tel_data_add_dict_u64(d, "active_block_timeout", b.active_block_timeout);
        rte_tel_data_add_dict_u64(d, "interim", b.interim);
        rte_tel_data_add_dict_string(d, "adaptive", b.adaptive ? "on" : "off");
        rte_tel_data_add_dict_u64(d, "min_block_size", b.min_block_size);
        rte_tel_data_add_dict_u64(d, "max_block_size", b.max_block_size);
        rte_tel_data_add_dict_u64(d, "records_per_day", b.records_per_day);
        return;
    }
    if (c.allocation != AllocationMode::deterministic) {
        return;
    }
    const std::string prefix =
        c.deterministic.prefix.to_string() + "/" + std::to_string(c.deterministic.prefix_len);
    rte_tel_data_add_dict_string(d, "det_subscribers", prefix.c_str());
    rte_tel_data_add_dict_u64(d, "det_min_ports", c.deterministic.min_ports);
    rte_tel_data_add_dict_u64(d, "port_range_lo", c.port_range.lo);
    rte_tel_data_add_dict_u64(d, "port_range_hi", c.port_range.hi);
    rte_tel_data* runs = rte_tel_data_alloc();
    if (runs == nullptr) {
        return;
    }
    rte_tel_data_start_array(runs, RTE_TEL_STRING_VAL);
    bool complete = true;
    for (std::size_t i = 0; i < c.pool.size();) {
        std::size_t j = i;
        while (j + 1 < c.pool.size() && c.pool[j + 1].value() == c.pool[j].value() + 1) {
            ++j;
        }
        std::string run = c.pool[i].to_string();
        if (j != i) {
            run += '-';
            run += c.pool[j].to_string();
        }
        complete = complete && rte_tel_data_add_array_string(runs, run.c_str()) == 0;
        i = j + 1;
    }
    if (!complete) {
        rte_tel_data_free(runs); // ephemeractl then asks for --config
        return;
    }
    if (rte_tel_data_add_dict_container(d, "det_pool", runs, 0) != 0) {
        rte_tel_data_free(runs);
    }
}

// [logging]: the groups logged, and where records go. A telemetry string holds 127
// characters: a collector list or an archive path longer than that is left out rather than
// cut (ephemeractl whois takes the archive path from here).
void add_logging(rte_tel_data* d, const LoggingConfig& log) {
    std::string events;
    for (const std::string& group : logging_event_groups(log.events)) {
        events += events.empty() ? group : "," + group;
    }
    rte_tel_data_add_dict_string(d, "logging_events", events.empty() ? "none" : events.c_str());
    rte_tel_data_add_dict_string(d, "logging_destination", log.destination ? "on" : "off");
    rte_tel_data_add_dict_u64(d, "logging_ring_size", log.ring_size);
    const auto collectors = [&](const char* name, const auto& list) {
        std::string text;
        for (const LogCollector& c : list) {
            text += text.empty() ? "" : " ";
            text += std::string(c.tcp ? "tcp:" : "udp:") + c.address.to_string() + ":" +
                    std::to_string(c.port);
        }
        if (text.size() < RTE_TEL_MAX_STRING_LEN) {
            rte_tel_data_add_dict_string(d, name, text.empty() ? "none" : text.c_str());
        }
    };
    collectors("logging_syslog", log.syslog);
    collectors("logging_ipfix", log.ipfix);
    if (log.archive.path.size() < RTE_TEL_MAX_STRING_LEN) {
        rte_tel_data_add_dict_string(d, "logging_archive",
                                     log.archive.path.empty() ? "none" : log.archive.path.c_str());
    }
}

int cmd_config(App& app, const char*, rte_tel_data* d) {
    const Config c = app.runtime->current();
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "file", c.source.c_str());
    rte_tel_data_add_dict_u64(d, "pool_addresses", c.pool.size());
    rte_tel_data_add_dict_string(d, "pool_first", c.pool.front().to_string().c_str());
    rte_tel_data_add_dict_string(d, "pool_last", c.pool.back().to_string().c_str());
    const std::string range = c.port_range_name + " (" + std::to_string(c.port_range.lo) + "-" +
                              std::to_string(c.port_range.hi) + ")";
    rte_tel_data_add_dict_string(d, "port_range", range.c_str());
    add_allocation(d, c);
    rte_tel_data_add_dict_string(d, "filtering",
                                 std::string(filtering_mode_name(c.filtering)).c_str());
    rte_tel_data_add_dict_u64(d, "timeout_udp", c.timeouts.udp);
    rte_tel_data_add_dict_u64(d, "timeout_tcp_established", c.timeouts.tcp_established);
    rte_tel_data_add_dict_u64(d, "timeout_tcp_transitory", c.timeouts.tcp_transitory);
    rte_tel_data_add_dict_u64(d, "timeout_icmp", c.timeouts.icmp);
    rte_tel_data_add_dict_u64(d, "max_sessions", c.limits.max_sessions);
    rte_tel_data_add_dict_string(d, "inside_port", app.ports->inside().name.c_str());
    rte_tel_data_add_dict_string(d, "inside_mac", app.ports->inside().mac.to_string().c_str());
    rte_tel_data_add_dict_string(d, "inside_gateway", c.inside.gateway.to_string().c_str());
    rte_tel_data_add_dict_string(d, "inside_checksum_offload",
                                 app.ports->inside_tx_checksums().describe().c_str());
    rte_tel_data_add_dict_string(d, "outside_port", app.ports->outside().name.c_str());
    rte_tel_data_add_dict_string(d, "outside_mac", app.ports->outside().mac.to_string().c_str());
    rte_tel_data_add_dict_string(d, "outside_checksum_offload",
                                 app.ports->outside_tx_checksums().describe().c_str());
    rte_tel_data_add_dict_string(d, "next_hop", c.outside.next_hop.to_string().c_str());
    const std::uint64_t nh = app.shared.next_hop_mac.load(std::memory_order_acquire);
    rte_tel_data_add_dict_string(
        d, "next_hop_mac", (nh & kMacKnown) ? unpack_mac(nh).to_string().c_str() : "unresolved");
    rte_tel_data_add_dict_u64(d, "workers", app.workers.size());
    // Steering, fixed at start.
    const OutsideSteeringPlan& steering = app.steering->plan();
    rte_tel_data_add_dict_string(d, "outside_steering",
                                 std::string(steering_name(steering.mode)).c_str());
    rte_tel_data_add_dict_string(
        d, "inside_steering",
        std::string(steering_name(app.ports->inside_steering().mode)).c_str());
    rte_tel_data_add_dict_u64(d, "flow_rules", steering.installed_count);
    add_logging(d, c.logging);
    const std::string metrics =
        c.metrics.enabled() ? c.metrics.address.to_string() + ":" + std::to_string(c.metrics.port)
                            : std::string("off");
    rte_tel_data_add_dict_string(d, "metrics_listen", metrics.c_str());
    return 0;
}

} // namespace

TelemetryRegistration register_telemetry(App& app) {
    {
        std::unique_lock lock(g_gate);
        g_app = &app;
    }
    rte_telemetry_register_cmd("/ephemera/stats", gated<cmd_stats>,
                               "Counter totals over all workers, live sessions and mappings");
    rte_telemetry_register_cmd("/ephemera/worker", gated<cmd_worker>,
                               "One worker's counters and gauges. Parameters: int worker_id");
    rte_telemetry_register_cmd("/ephemera/mappings", gated<cmd_mappings>,
                               "Live translations, one string each. Parameters: int max (<=512)");
    rte_telemetry_register_cmd("/ephemera/sessions", gated<cmd_sessions>,
                               "Live sessions. Parameters: subscriber=A;external=A:P;address=A;"
                               "limit=N (any subset)");
    rte_telemetry_register_cmd("/ephemera/blocks", gated<cmd_blocks>,
                               "Port blocks in use. Parameters: subscriber=A;limit=N (any subset)");
    rte_telemetry_register_cmd("/ephemera/top", gated<cmd_top>,
                               "Subscribers by ports in use and by refusals: top N and "
                               "histograms. No parameters");
    rte_telemetry_register_cmd("/ephemera/ports", gated<cmd_ports>,
                               "Free and usable external ports per pool address and protocol");
    rte_telemetry_register_cmd("/ephemera/set", gated<cmd_set>,
                               "Change one config key while running. Parameters: KEY=VALUE");
    rte_telemetry_register_cmd("/ephemera/pool", gated<cmd_pool>,
                               "Add or remove a pool address. Parameters: add=A or remove=A");
    rte_telemetry_register_cmd("/ephemera/static", gated<cmd_static>,
                               "Static mappings. Parameters: none (the list), add=tcp A:P I:P, "
                               "add=A I (1:1), remove=tcp A:P or remove=A");
    rte_telemetry_register_cmd("/ephemera/flush", gated<cmd_flush>,
                               "Delete sessions. Parameters: subscriber=A;external=A:P;address=A");
    rte_telemetry_register_cmd("/ephemera/logging", gated<cmd_logging>,
                               "NAT event logging: records handed over and dropped, per sink "
                               "sent, dropped and errors");
    rte_telemetry_register_cmd("/ephemera/alarms", gated<cmd_alarms>,
                               "Pool port use alarms and the forecast time to exhaustion, per "
                               "protocol");
    rte_telemetry_register_cmd("/ephemera/ha", gated<cmd_ha>,
                               "The HA pair: role, sync link, records streamed and applied, "
                               "failovers");
    rte_telemetry_register_cmd("/ephemera/drain", gated<cmd_drain>,
                               "Hand every session to a scale-out peer and fall silent. "
                               "Parameter: the peer's ha.handover ADDRESS:PORT");
    rte_telemetry_register_cmd("/ephemera/migrate", gated<cmd_migrate>,
                               "Move subscribers and their sessions to a scale-out peer. "
                               "Parameters: PREFIX/LENGTH ADDRESS:PORT");
    rte_telemetry_register_cmd("/ephemera/reload", gated<cmd_reload>,
                               "Reread the config file (as SIGHUP does)");
    // Help texts hold fewer than 128 characters, or the command is not registered.
    rte_telemetry_register_cmd("/ephemera/pauses", gated<pauses_command>,
                               "Longest loop iteration per worker since the window was reset. "
                               "Parameters: none, or reset");
    rte_telemetry_register_cmd("/ephemera/config", gated<cmd_config>,
                               "The running configuration, ports and next hop");
    return TelemetryRegistration{};
}

void TelemetryRegistration::close() {
    std::unique_lock lock(g_gate); // waits for commands in progress
    g_app = nullptr;
}

} // namespace ephemera
