// /ephemera/... commands for DPDK telemetry (dpdk-telemetry.py -f PREFIX). Callbacks run on the
// EAL's telemetry thread: they read only atomics (counters, gauges) and immutable state, and
// get mapping lists from the workers through their mailboxes.
#include "app.hpp"

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

namespace ephemera {

namespace {

App* g_app = nullptr; // telemetry callbacks take no context pointer

void add_counters(rte_tel_data* d, const std::function<std::uint64_t(Counter)>& get) {
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        rte_tel_data_add_dict_u64(d, kCounterNames[i].data(), get(static_cast<Counter>(i)));
    }
}

int cmd_stats(const char*, const char*, rte_tel_data* d) {
    rte_tel_data_start_dict(d);
    std::uint64_t sessions = 0;
    std::uint64_t mappings = 0;
    for (const auto& w : g_app->workers) {
        sessions += w->live_sessions();
        mappings += w->live_mappings();
    }
    rte_tel_data_add_dict_u64(d, "workers", g_app->workers.size());
    rte_tel_data_add_dict_u64(d, "live_sessions", sessions);
    rte_tel_data_add_dict_u64(d, "live_mappings", mappings);
    add_counters(d, [](Counter c) { return counter_total(*g_app, c); });
    return 0;
}

int cmd_worker(const char*, const char* params, rte_tel_data* d) {
    if (params == nullptr || *params == '\0') {
        return -1;
    }
    char* end = nullptr;
    const unsigned long id = std::strtoul(params, &end, 10);
    if (*end != '\0' || id >= g_app->workers.size()) {
        return -1;
    }
    const Worker& w = *g_app->workers[id];
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "worker", id);
    rte_tel_data_add_dict_u64(d, "lcore", g_app->worker_lcores[id]);
    rte_tel_data_add_dict_u64(d, "live_sessions", w.live_sessions());
    rte_tel_data_add_dict_u64(d, "live_mappings", w.live_mappings());
    rte_tel_data_add_dict_u64(d, "ports_per_address", w.translator().ports().usable_ports());
    add_counters(d, [&w](Counter c) { return w.counters().get(c); });
    return 0;
}

// Asks every worker for its mappings and lists them, newest table order, at most `limit`.
int cmd_mappings(const char*, const char* params, rte_tel_data* d) {
    std::size_t limit = 256;
    if (params != nullptr && *params != '\0') {
        limit = std::strtoul(params, nullptr, 10);
    }
    limit = std::min<std::size_t>(limit, RTE_TEL_MAX_ARRAY_ENTRIES);
    rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
    std::lock_guard guard(g_app->mailbox_lock);
    for (auto& w : g_app->workers) {
        Mailbox& box = w->mailbox();
        const std::uint32_t ticket = box.requested.load(std::memory_order_relaxed) + 1;
        box.requested.store(ticket, std::memory_order_release);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
        while (box.served.load(std::memory_order_acquire) != ticket) {
            if (std::chrono::steady_clock::now() > deadline) {
                return -1; // a worker that does not answer is a finding in itself
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
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

int cmd_config(const char*, const char*, rte_tel_data* d) {
    const Config& c = g_app->config;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "file", c.source.c_str());
    rte_tel_data_add_dict_u64(d, "pool_addresses", c.pool.size());
    rte_tel_data_add_dict_string(d, "pool_first", c.pool.front().to_string().c_str());
    rte_tel_data_add_dict_string(d, "pool_last", c.pool.back().to_string().c_str());
    const std::string range = c.port_range_name + " (" + std::to_string(c.port_range.lo) + "-" +
                              std::to_string(c.port_range.hi) + ")";
    rte_tel_data_add_dict_string(d, "port_range", range.c_str());
    rte_tel_data_add_dict_string(d, "filtering",
                                 std::string(filtering_mode_name(c.filtering)).c_str());
    rte_tel_data_add_dict_u64(d, "timeout_udp", c.timeouts.udp);
    rte_tel_data_add_dict_u64(d, "timeout_tcp_established", c.timeouts.tcp_established);
    rte_tel_data_add_dict_u64(d, "timeout_tcp_transitory", c.timeouts.tcp_transitory);
    rte_tel_data_add_dict_u64(d, "timeout_icmp", c.timeouts.icmp);
    rte_tel_data_add_dict_u64(d, "max_sessions", c.limits.max_sessions);
    rte_tel_data_add_dict_string(d, "inside_port", g_app->ports->inside().name.c_str());
    rte_tel_data_add_dict_string(d, "inside_mac", g_app->ports->inside().mac.to_string().c_str());
    rte_tel_data_add_dict_string(d, "inside_gateway", c.inside.gateway.to_string().c_str());
    rte_tel_data_add_dict_string(d, "outside_port", g_app->ports->outside().name.c_str());
    rte_tel_data_add_dict_string(d, "outside_mac", g_app->ports->outside().mac.to_string().c_str());
    rte_tel_data_add_dict_string(d, "next_hop", c.outside.next_hop.to_string().c_str());
    const std::uint64_t nh = g_app->shared.next_hop_mac.load(std::memory_order_acquire);
    rte_tel_data_add_dict_string(
        d, "next_hop_mac", (nh & kMacKnown) ? unpack_mac(nh).to_string().c_str() : "unresolved");
    rte_tel_data_add_dict_u64(d, "workers", g_app->workers.size());
    // Steering, fixed at start.
    const OutsideSteeringPlan& steering = g_app->steering->plan();
    rte_tel_data_add_dict_string(d, "outside_steering",
                                 std::string(steering_name(steering.mode)).c_str());
    rte_tel_data_add_dict_string(
        d, "inside_steering",
        std::string(steering_name(g_app->ports->inside_steering().mode)).c_str());
    rte_tel_data_add_dict_u64(d, "flow_rules", steering.installed_count);
    return 0;
}

} // namespace

void register_telemetry(App& app) {
    g_app = &app;
    rte_telemetry_register_cmd("/ephemera/stats", cmd_stats,
                               "Counter totals over all workers, live sessions and mappings");
    rte_telemetry_register_cmd("/ephemera/worker", cmd_worker,
                               "One worker's counters and gauges. Parameters: int worker_id");
    rte_telemetry_register_cmd("/ephemera/mappings", cmd_mappings,
                               "Live translations, one string each. Parameters: int max (<=512)");
    rte_telemetry_register_cmd("/ephemera/config", cmd_config,
                               "The running configuration, ports and next hop");
}

} // namespace ephemera
