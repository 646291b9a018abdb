#include "ipfix_sink.hpp"

#include <utility>

namespace ephemera::logging {
namespace {

std::uint32_t export_time(std::uint64_t now_ms) {
    return static_cast<std::uint32_t>(now_ms / 1000);
}

} // namespace

IpfixSink::IpfixSink(IpfixSinkOptions options, std::unique_ptr<Transport> transport)
    : options_(std::move(options)), transport_(std::move(transport)),
      encoder_(options_.observation_domain) {}

bool IpfixSink::send(std::span<const std::uint8_t> bytes) {
    if (!transport_->send(bytes)) {
        return false;
    }
    stats_.add(stats_.messages_sent);
    stats_.add(stats_.bytes_sent, bytes.size());
    return true;
}

void IpfixSink::templates_if_due(std::uint64_t now_ms) {
    const std::uint64_t connections = transport_->connections();
    if (connections != connections_seen_) {
        // Records queued before the first connection go out on it, numbered from 0 already.
        if (options_.transport == TransportKind::tcp && connections_seen_ != 0) {
            encoder_.reset_sequence();
        }
        connections_seen_ = connections;
        templates_sent_ = false;
    }
    const bool refresh = options_.transport == TransportKind::udp &&
                         now_ms - templates_at_ms_ >= options_.template_refresh_ms;
    if (templates_sent_ && !refresh) {
        return;
    }
    if (send(encoder_.templates_message(export_time(now_ms)))) {
        templates_sent_ = true;
        templates_at_ms_ = now_ms;
    } else {
        stats_.add(stats_.errors);
    }
}

void IpfixSink::write(std::span<const NatEvent> events, std::uint64_t now_ms) {
    templates_if_due(now_ms);
    messages_.clear();
    encoder_.data_messages(events, export_time(now_ms), options_.max_message_bytes, messages_);
    for (const auto& m : messages_) {
        if (send(m.bytes)) {
            stats_.add(stats_.records_sent, m.records);
        } else {
            stats_.add(stats_.records_dropped, m.records);
        }
    }
}

void IpfixSink::poll(std::uint64_t now_ms) {
    transport_->poll(now_ms);
    templates_if_due(now_ms);
}

} // namespace ephemera::logging
