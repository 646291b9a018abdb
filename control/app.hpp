// The running process: config, ports, workers and the state they share. main() builds it,
// the control loop and the telemetry commands read it.
#pragma once

#include "../dataplane/ports.hpp"
#include "../dataplane/worker.hpp"

#include "ha/handover.hpp"
#include "ha/sync_thread.hpp"
#include "logging_thread.hpp"
#include "pool_alarms.hpp"
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
    std::vector<PlanCompiler> plan_compilers; // one per worker, for Runtime
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<unsigned> worker_lcores;
    std::mutex mailbox_lock; // one telemetry request at a time
    std::mutex pause_lock;   // one pause-window reset at a time
    std::unique_ptr<Runtime> runtime;
    std::unique_ptr<LoggingThread> logging;  // NAT events to collectors and the archive
    std::unique_ptr<PoolAlarms> pool_alarms; // pool port use watermarks and forecasts
    std::unique_ptr<ha::SyncThread> sync;    // the HA pair's sync link (ha.role set)
    std::unique_ptr<ha::Handover> handover;  // draining scale-out boxes (ha.handover set)
    rte_rcu_qsbr* qsbr_memory = nullptr;     // freed at exit, after the workers stopped
};

// The /ephemera/... telemetry commands, served over `app` until close() (or destruction):
// after that they answer with an error, so the App may go while clients still ask.
class [[nodiscard]] TelemetryRegistration {
public:
    TelemetryRegistration() = default;
    TelemetryRegistration(const TelemetryRegistration&) = delete;
    TelemetryRegistration& operator=(const TelemetryRegistration&) = delete;
    ~TelemetryRegistration() { close(); }
    // Waits for commands in progress to finish; idempotent.
    void close();
};
TelemetryRegistration register_telemetry(App& app);

// SIGINT and SIGTERM stop the control loop, SIGHUP reloads the config. Installed before
// anything starts, so a signal during start-up is taken once the control loop runs.
void install_signal_handlers();

// Counter totals and per-worker blocks: printed at exit, written as JSON on request.
std::uint64_t counter_total(const App& app, Counter c);
void print_stats(const App& app);
bool write_stats_json(const App& app, const std::string& path);

// Runs until SIGINT or SIGTERM: learns the next hop's MAC from the workers' ARP events.
void run_control_loop(App& app);

} // namespace ephemera
