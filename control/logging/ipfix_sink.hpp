// The IPFIX exporter: NAT events to one collector over UDP or TCP (RFC 7011, RFC 8158).
//
// Templates go first: over UDP before the first data and again every refresh period, since a
// collector that starts (or restarts) later has no other way to learn them (RFC 7011 section
// 8.4); over TCP as the transport's greeting, written first on every new connection ahead of
// what waited for the collector. The sequence number runs on across connections: queued
// messages already carry their numbers (docs/logging.md, "What is not done yet").
// Records whose send fails are counted as dropped and still take their sequence numbers, so the
// collector sees the gap.
#pragma once

#include "ipfix_encoder.hpp"
#include "sink.hpp"
#include "transport.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ephemera::logging {

struct IpfixSinkOptions {
    std::string collector; // "udp 198.18.0.2:4739", for name()
    TransportKind transport = TransportKind::udp;
    std::uint32_t observation_domain = 0;
    std::uint64_t template_refresh_ms = 60000; // UDP only
    std::size_t max_message_bytes = kIpfixUdpMessageBytes;
};

class IpfixSink final : public Sink {
public:
    IpfixSink(IpfixSinkOptions options, std::unique_ptr<Transport> transport);

    [[nodiscard]] std::string name() const override { return "ipfix " + options_.collector; }
    void write(std::span<const NatEvent> events, std::uint64_t now_ms) override;
    void poll(std::uint64_t now_ms) override;

private:
    // Sends the templates when they are due; the next call tries again if the send failed.
    void templates_if_due(std::uint64_t now_ms);
    bool send(std::span<const std::uint8_t> bytes);

    IpfixSinkOptions options_;
    std::unique_ptr<Transport> transport_;
    IpfixEncoder encoder_;
    std::vector<IpfixMessage> messages_; // one batch; kept so its capacity is reused
    std::vector<std::span<const std::uint8_t>> spans_;
    std::vector<std::uint8_t> sent_; // 1: sent or queued (Transport::send_batch)
    std::uint64_t errors_seen_ = 0;
    bool templates_sent_ = false;
    std::uint64_t templates_at_ms_ = 0;
};

} // namespace ephemera::logging
