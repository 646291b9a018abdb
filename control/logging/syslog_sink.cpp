#include "syslog_sink.hpp"

#include <unistd.h>

#include <chrono>
#include <thread>

namespace ephemera::logging {
namespace {

std::uint64_t unix_now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

} // namespace

SyslogSink::SyslogSink(const SyslogOptions& options)
    : kind_(options.transport), collector_(options.collector),
      formatter_(SyslogHeader{options.facility,
                              options.hostname.empty() ? local_hostname() : options.hostname,
                              static_cast<std::uint32_t>(::getpid())}),
      transport_(Transport::open(options.transport, options.collector, options.backlog_bytes)) {}

std::string SyslogSink::name() const {
    return "syslog " + std::string(transport_name(kind_)) + ' ' + collector_.to_string();
}

void SyslogSink::write(std::span<const NatEvent> events, std::uint64_t now_ms) {
    (void)now_ms; // each message carries its event's own time
    // The batch's messages side by side in one buffer, then one send_batch: one system call a
    // pass rather than one a record.
    batch_.clear();
    ends_.clear();
    for (const NatEvent& e : events) {
        message_.clear();
        formatter_.append(message_, e);
        if (kind_ == TransportKind::tcp) {
            append_octet_counted(batch_, message_);
        } else {
            batch_ += message_;
        }
        ends_.push_back(batch_.size());
    }
    spans_.clear();
    std::size_t begin = 0;
    for (const std::size_t end : ends_) {
        spans_.emplace_back(reinterpret_cast<const std::uint8_t*>(batch_.data()) + begin,
                            end - begin);
        begin = end;
    }
    sent_.assign(spans_.size(), 0);
    transport_->send_batch(spans_, sent_);
    for (std::size_t i = 0; i < spans_.size(); ++i) {
        if (sent_[i] != 0) {
            stats_.add(stats_.records_sent);
            stats_.add(stats_.messages_sent);
            stats_.add(stats_.bytes_sent, spans_[i].size());
        } else {
            stats_.add(stats_.records_dropped);
        }
    }
    take_transport_counts();
}

void SyslogSink::poll(std::uint64_t now_ms) {
    transport_->poll(now_ms);
    take_transport_counts();
}

void SyslogSink::flush(std::uint64_t deadline_ms) {
    for (;;) {
        const std::uint64_t now = unix_now_ms();
        poll(now);
        if (transport_->backlog() == 0 || now >= deadline_ms) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void SyslogSink::take_transport_counts() {
    const std::uint64_t errors = transport_->errors();
    const std::uint64_t cut = transport_->messages_cut();
    stats_.add(stats_.errors, errors - errors_seen_);
    stats_.add(stats_.records_dropped, cut - cut_seen_);
    errors_seen_ = errors;
    cut_seen_ = cut;
}

} // namespace ephemera::logging
