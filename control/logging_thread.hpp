// The logging thread: the one consumer of every worker's NAT event ring (event_log.hpp). It runs
// on the control side, never on a worker lcore, drains the rings in bursts and hands each batch
// to every sink that is on (IPFIX, syslog, the archive: control/logging/). Each sink keeps its
// own backlog and drop count, so a slow collector costs only its own records.
//
// The control thread adds its own events (static mappings added or removed, the deterministic
// formula in force, the pool alarms' threshold events) and replaces the sinks when [logging]
// changes; both go through a small mutex-guarded hand-over that the thread takes once a pass, off
// every packet path.
#pragma once

#include "logging/sink.hpp"

#include "ephemera/config.hpp"
#include "ephemera/nat_event.hpp"

#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ephemera {

using logging::SinkReport;

// Opens one sink; run on the logging thread (see LoggingThread::take_handover).
using SinkFactory = std::function<std::unique_ptr<logging::Sink>()>;

class LoggingThread {
public:
    // `rings`: one per worker, created by main(); the thread dequeues from them only.
    explicit LoggingThread(std::vector<rte_ring*> rings);
    ~LoggingThread();
    LoggingThread(const LoggingThread&) = delete;
    LoggingThread& operator=(const LoggingThread&) = delete;

    // Builds the sinks of `config` (the thread takes them up on its next pass) and records what
    // changed from `previous` (nullptr at start): static mappings added and removed, and the
    // deterministic formula when it is new or changed. Returns a warning per sink that could
    // not be opened (an archive directory that cannot be created); never refuses.
    std::vector<std::string> configure(const Config& config, const Config* previous);
    // A control-side event (a pool alarm's threshold event): sent with the next pass when the
    // config in force logs its kind, else dropped here.
    void post(const NatEvent& event);
    void start();
    // Drains the rings once more, flushes the sinks (up to a second) and joins.
    void stop();

    [[nodiscard]] std::vector<SinkReport> report() const;
    [[nodiscard]] std::uint64_t records_taken() const {
        return taken_.load(std::memory_order_relaxed);
    }

private:
    void run();
    // Takes new sinks and control events; returns the control events to send.
    void take_handover(std::vector<NatEvent>& events);
    std::size_t drain(std::vector<NatEvent>& batch);

    std::vector<rte_ring*> rings_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> taken_{0};

    mutable std::mutex handover_lock_;
    std::vector<NatEvent> control_events_;   // guarded
    std::uint32_t control_kinds_ = 0;        // guarded: kinds post() takes
    std::vector<SinkFactory> pending_sinks_; // guarded
    bool sinks_pending_ = false;             // guarded
    // Owned by the thread; read under report_lock_ by report().
    mutable std::mutex report_lock_;
    std::vector<std::unique_ptr<logging::Sink>> sinks_;
};

// Unix time in milliseconds now (the control side's clock; workers keep theirs from the TSC).
std::uint64_t unix_ms_now();

} // namespace ephemera
