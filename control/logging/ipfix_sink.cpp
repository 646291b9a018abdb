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

// UDP: templates before the first data and again every refresh period, so that a collector
// that restarts learns them within a period. TCP: the transport writes them first on every new
// connection (its greeting), ahead of whatever waited for the collector; the data sequence
// runs on across connections, since queued messages already carry their numbers.
void IpfixSink::templates_if_due(std::uint64_t now_ms) {
    if (options_.transport == TransportKind::tcp) {
        if (!templates_sent_ || !transport_->connected()) {
            transport_->set_greeting(encoder_.templates_message(export_time(now_ms)));
            templates_sent_ = true;
        }
        return;
    }
    const bool refresh = now_ms - templates_at_ms_ >= options_.template_refresh_ms;
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
    spans_.clear();
    for (const auto& m : messages_) {
        spans_.emplace_back(m.bytes);
    }
    sent_.assign(spans_.size(), 0);
    transport_->send_batch(spans_, sent_);
    for (std::size_t i = 0; i < messages_.size(); ++i) {
        const IpfixMessage& m = messages_[i];
        if (sent_[i] != 0) {
            stats_.add(stats_.messages_sent);
            stats_.add(stats_.bytes_sent, m.bytes.size());
            stats_.add(stats_.records_sent, m.records);
        } else {
            stats_.add(stats_.records_dropped, m.records);
        }
    }
}

void IpfixSink::poll(std::uint64_t now_ms) {
    templates_if_due(now_ms); // the greeting first: this poll may connect
    transport_->poll(now_ms);
    // The transport's own failures: connects and sends, and broken connections (a message
    // half-written on one is lost with its records, which the collector sees as a sequence
    // gap; this side counts the broken connection).
    const std::uint64_t errors = transport_->errors();
    stats_.add(stats_.errors, errors - errors_seen_);
    errors_seen_ = errors;
}

} // namespace ephemera::logging
