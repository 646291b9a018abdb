// The running process: config, ports, workers and the state they share. main() builds it,
// the control loop and the telemetry commands read it.
#pragma once

#include "../dataplane/ports.hpp"
#include "../dataplane/worker.hpp"

#include "runtime.hpp"

#include "ephemera/config.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace ephemera {

struct App {
    Config config;
    WorkerShared shared;
    MempoolPtr mbufs;
    std::unique_ptr<Ports> ports;
    // rte_flow rules on the outside port; declared after `ports`, so removed before it stops.
    std::unique_ptr<OutsideFlowSteering> steering;
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<unsigned> worker_lcores;
    std::mutex mailbox_lock; // one telemetry request at a time
    std::unique_ptr<Runtime> runtime;
    rte_rcu_qsbr* qsbr_memory = nullptr; // freed at exit, after the workers stopped
};

// Registers the /ephemera/... telemetry commands over `app` (which must outlive the EAL).
void register_telemetry(App& app);

// Counter totals and per-worker blocks: printed at exit, written as JSON on request.
std::uint64_t counter_total(const App& app, Counter c);
void print_stats(const App& app);
bool write_stats_json(const App& app, const std::string& path);

// Runs until SIGINT or SIGTERM: learns the next hop's MAC from the workers' ARP events.
void run_control_loop(App& app);

} // namespace ephemera
