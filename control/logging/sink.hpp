// A sink takes NAT events from the logging thread and sends or stores them: an IPFIX exporter,
// a syslog sender, the archive. The logging thread (logging_thread.hpp) drains the workers'
// rings and hands each batch to every sink that is on; a sink never blocks that thread. What a
// sink cannot send or queue it counts as dropped, so a slow or absent collector costs only its
// own records, never another sink's or a worker's.
#pragma once

#include "ephemera/nat_event.hpp"

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

namespace ephemera::logging {

// One sink's figures at one moment, as telemetry and the metrics show them.
struct SinkReport {
    std::string name;
    std::uint64_t records_sent = 0;
    std::uint64_t records_dropped = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t errors = 0;
};

// Read by telemetry from another thread; written by the logging thread only.
struct SinkStats {
    std::atomic<std::uint64_t> records_sent{0};    // handed to the transport (or written)
    std::atomic<std::uint64_t> records_dropped{0}; // lost here: backlog full, send failed
    std::atomic<std::uint64_t> messages_sent{0};   // datagrams, framed messages or blocks
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::uint64_t> errors{0}; // send or connect failures, file errors

    void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
};

class Sink {
public:
    virtual ~Sink() = default;
    Sink() = default;
    Sink(const Sink&) = delete;
    Sink& operator=(const Sink&) = delete;

    // "syslog udp 198.18.0.2:514", "ipfix tcp 198.18.0.2:4739", "archive /var/log/ephemera".
    [[nodiscard]] virtual std::string name() const = 0;
    // Takes a batch of records, in the order they happened on each worker. Never blocks.
    virtual void write(std::span<const NatEvent> events, std::uint64_t now_ms) = 0;
    // Called on every pass of the logging thread, with or without records (at least every
    // 100 ms): sends what is queued, reconnects, resends templates, seals and rotates files.
    virtual void poll(std::uint64_t now_ms) = 0;
    // Called once before the sink is destroyed (stop or reconfiguration): send or write what is
    // still queued, within `deadline_ms`.
    virtual void flush(std::uint64_t deadline_ms) { (void)deadline_ms; }

    [[nodiscard]] const SinkStats& stats() const { return stats_; }

protected:
    SinkStats stats_;
};

} // namespace ephemera::logging
