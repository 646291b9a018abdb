// How a collector sink reaches its collector: UDP datagrams, or a TCP stream (RFC 6587 octet
// counting for syslog, RFC 7011 section 10.4 for IPFIX) where the operator asks for no loss.
// Sockets are non-blocking: a TCP transport keeps a bounded backlog of bytes while the
// connection is down or slow and reconnects with backoff; what does not fit is refused, and
// the sink counts it as dropped.
#pragma once

#include "ephemera/types.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera::logging {

enum class TransportKind : std::uint8_t { udp, tcp };

struct CollectorAddress {
    Ipv4Addr address;
    std::uint16_t port = 0;
    [[nodiscard]] std::string to_string() const; // "198.18.0.2:514"
    // "A.B.C.D:PORT"; nullopt: not that form.
    static std::optional<CollectorAddress> parse(std::string_view text);
};

class Transport {
public:
    virtual ~Transport() = default;

    // One message: a datagram (UDP) or a run of bytes already framed (TCP). Returns false when
    // it was not sent or queued (send error, backlog full): the caller counts the drop.
    virtual bool send(std::span<const std::uint8_t> message) = 0;
    // Several messages at once, for a pass's batch: UDP hands them to the kernel with one
    // sendmmsg, TCP queues them all and writes once; a message costs its bytes, not a system
    // call. sent[i] is 1 when messages[i] was sent or queued, else 0 (sent.size() ==
    // messages.size()).
    virtual void send_batch(std::span<const std::span<const std::uint8_t>> messages,
                            std::span<std::uint8_t> sent) {
        for (std::size_t i = 0; i < messages.size(); ++i) {
            sent[i] = send(messages[i]) ? 1 : 0;
        }
    }
    // Flushes the backlog, reconnects when the backoff allows. Called on every pass.
    virtual void poll(std::uint64_t now_ms) = 0;
    // UDP: always true. TCP: a connection is up.
    [[nodiscard]] virtual bool connected() const = 0;
    // Connections made so far (UDP: 1). A sink that sees this grow knows the stream is new:
    // an IPFIX exporter sends its templates first (RFC 7011 section 8.1).
    [[nodiscard]] virtual std::uint64_t connections() const = 0;
    [[nodiscard]] virtual std::uint64_t errors() const = 0;
    // Bytes written first on every new connection, before anything queued (TCP; UDP ignores
    // them). An IPFIX exporter's templates: RFC 7011 section 8 wants them before any data on
    // a connection, and what was queued while the collector was away goes out after them.
    virtual void set_greeting(std::vector<std::uint8_t> bytes) { (void)bytes; }
    // Bytes queued and not yet written (TCP); 0 for UDP.
    [[nodiscard]] virtual std::size_t backlog() const = 0;
    // Messages send() took and the connection then lost half written (TCP): the rest of such a
    // message is discarded, so that the next connection starts on a message boundary. A sink
    // counts them as dropped.
    [[nodiscard]] virtual std::uint64_t messages_cut() const { return 0; }

    // A UDP or TCP transport to `to`. `backlog_bytes` bounds what a TCP transport queues.
    static std::unique_ptr<Transport> open(TransportKind kind, CollectorAddress to,
                                           std::size_t backlog_bytes);
};

std::string_view transport_name(TransportKind kind); // "udp", "tcp"

} // namespace ephemera::logging
