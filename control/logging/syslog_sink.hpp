// The syslog sink: each NAT event as one RFC 5424 message (syslog_format.hpp) to a collector,
// a datagram each over UDP or octet-counted (RFC 6587) over TCP.
#pragma once

#include "sink.hpp"
#include "syslog_format.hpp"
#include "transport.hpp"

#include <memory>

namespace ephemera::logging {

struct SyslogOptions {
    TransportKind transport = TransportKind::udp;
    CollectorAddress collector;
    int facility = kSyslogLocal0;
    std::string hostname;                 // empty: local_hostname()
    std::size_t backlog_bytes = 1U << 20; // TCP: what waits while the collector is away
};

class SyslogSink final : public Sink {
public:
    explicit SyslogSink(const SyslogOptions& options);

    [[nodiscard]] std::string name() const override;
    void write(std::span<const NatEvent> events, std::uint64_t now_ms) override;
    void poll(std::uint64_t now_ms) override;
    // Polls until the backlog is written or the wall clock (Unix ms) reaches `deadline_ms`.
    void flush(std::uint64_t deadline_ms) override;

    [[nodiscard]] const Transport& transport() const { return *transport_; }

private:
    // The transport's own counts (failed sends and connects, messages cut by a broken
    // connection) into the sink's stats, which telemetry reads.
    void take_transport_counts();

    TransportKind kind_;
    CollectorAddress collector_;
    SyslogFormatter formatter_;
    // Reused for every message, so that steady state allocates nothing.
    std::string message_;
    std::string batch_;             // a pass's messages, framed for TCP, back to back
    std::vector<std::size_t> ends_; // where each ends in batch_
    std::vector<std::span<const std::uint8_t>> spans_;
    std::vector<std::uint8_t> sent_; // 1: sent or queued (Transport::send_batch)
    std::unique_ptr<Transport> transport_;
    std::uint64_t errors_seen_ = 0;
    std::uint64_t cut_seen_ = 0;
};

} // namespace ephemera::logging
