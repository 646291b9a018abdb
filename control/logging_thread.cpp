#include "logging_thread.hpp"

#include "logging/archive_format.hpp"
#include "logging/archive_writer.hpp"
#include "logging/ipfix_sink.hpp"
#include "logging/syslog_sink.hpp"
#include "logging/transport.hpp"

#include "ephemera/deterministic.hpp"
#include "ephemera/nat_events.hpp"

#include <rte_ring_elem.h>

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>

namespace ephemera {

namespace {

// Records taken from one ring per pass: enough to keep up with a worker making millions of
// mappings a second at one pass a millisecond, small enough that one busy worker cannot
// starve the others' rings.
constexpr unsigned kBurst = 512;
constexpr auto kIdleSleep = std::chrono::milliseconds(1);
constexpr std::size_t kFullPass = kBurst / 2;
constexpr std::uint64_t kStopFlushMs = 1000;

logging::CollectorAddress collector_of(const LogCollector& c) {
    return logging::CollectorAddress{c.address, c.port};
}

logging::TransportKind kind_of(const LogCollector& c) {
    return c.tcp ? logging::TransportKind::tcp : logging::TransportKind::udp;
}

// The sinks of `log`, as recipes the logging thread runs once the sinks they replace are gone:
// an archive opened here, on the control thread, would read its chain end from (and queue for
// compression) the file the old archive is still writing. What can be checked without opening
// anything (the HMAC key file) is read here, so that its warning reaches the operator.
std::vector<SinkFactory> sink_factories(const LoggingConfig& log,
                                        std::vector<std::string>& warnings) {
    std::vector<SinkFactory> sinks;
    // The archive first: whois reads it, so it is the one sink that must see every record.
    if (!log.archive.path.empty()) {
        const ArchiveConfig& a = log.archive;
        logging::ArchiveOptions o;
        o.directory = a.path;
        o.rotate_bytes = std::uint64_t{a.rotate_size} << 20;
        o.rotate_age_ms = std::uint64_t{a.rotate_age} * 1000;
        o.retention_ms = std::uint64_t{a.retention} * 86'400'000;
        o.compress = a.compress;
        if (!a.hmac_key_file.empty()) {
            if (auto key = logging::read_key_file(a.hmac_key_file)) {
                o.hmac_key = std::move(*key);
            } else {
                warnings.push_back("archive key " + a.hmac_key_file +
                                   " cannot be read: the archive is chained without an HMAC");
            }
        }
        sinks.emplace_back([o = std::move(o)]() -> std::unique_ptr<logging::Sink> {
            return std::make_unique<logging::ArchiveSink>(o, unix_ms_now());
        });
    }
    for (const auto& c : log.syslog) {
        logging::SyslogOptions o;
        o.transport = kind_of(c);
        o.collector = collector_of(c);
        o.facility = c.facility;
        sinks.emplace_back([o]() -> std::unique_ptr<logging::Sink> {
            return std::make_unique<logging::SyslogSink>(o);
        });
    }
    for (const auto& c : log.ipfix) {
        logging::IpfixSinkOptions o;
        o.transport = kind_of(c);
        o.collector =
            std::string(logging::transport_name(o.transport)) + ' ' + collector_of(c).to_string();
        o.observation_domain = c.observation_domain;
        o.template_refresh_ms = std::uint64_t{c.template_refresh} * 1000;
        const logging::CollectorAddress to = collector_of(c);
        sinks.emplace_back([o, to]() -> std::unique_ptr<logging::Sink> {
            return std::make_unique<logging::IpfixSink>(
                o, logging::Transport::open(o.transport, to, std::size_t{4} << 20));
        });
    }
    return sinks;
}

NatEvent static_event(const StaticMapping& m, bool added, std::uint64_t now_ms) {
    NatEvent e;
    e.time_ms = now_ms;
    e.kind = added ? NatEventKind::static_added : NatEventKind::static_removed;
    e.proto = m.one_to_one() ? 0 : static_cast<std::uint8_t>(m.proto);
    e.inside = m.inside.value();
    e.inside_port = m.inside_port;
    e.external = m.external.value();
    e.external_port = m.external_port;
    return e;
}

bool same_formula(const Config& a, const Config& b) {
    return a.allocation == b.allocation && a.pool == b.pool && a.port_range == b.port_range &&
           a.deterministic.prefix == b.deterministic.prefix &&
           a.deterministic.prefix_len == b.deterministic.prefix_len;
}

bool logs(const LoggingConfig& log, NatEventKind kind) {
    return log.any_sink() && (log.events >> static_cast<unsigned>(kind) & 1u) != 0;
}

} // namespace

std::uint64_t unix_ms_now() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

LoggingThread::LoggingThread(std::vector<rte_ring*> rings) : rings_(std::move(rings)) {}

LoggingThread::~LoggingThread() {
    stop();
}

std::vector<std::string> LoggingThread::configure(const Config& config, const Config* previous) {
    std::vector<std::string> warnings;
    const std::uint64_t now = unix_ms_now();
    std::vector<NatEvent> events;
    const LoggingConfig& log = config.logging;
    if (logs(log, NatEventKind::static_added)) {
        for (const auto& m : config.statics) {
            if (previous == nullptr || std::find(previous->statics.begin(), previous->statics.end(),
                                                 m) == previous->statics.end()) {
                events.push_back(static_event(m, true, now));
            }
        }
        if (previous != nullptr) {
            for (const auto& m : previous->statics) {
                if (std::find(config.statics.begin(), config.statics.end(), m) ==
                    config.statics.end()) {
                    events.push_back(static_event(m, false, now));
                }
            }
        }
    }
    if (config.allocation == AllocationMode::deterministic &&
        logs(log, NatEventKind::deterministic_formula) &&
        (previous == nullptr || !same_formula(config, *previous) ||
         previous->logging != config.logging)) {
        events.push_back(formula_event(DeterministicMap(config), now));
    }
    // Events and destination are the workers' business (their plans): the sinks, their
    // connections and the archive's open file stay as they are when only those change.
    const bool new_sinks = previous == nullptr || previous->logging.syslog != log.syslog ||
                           previous->logging.ipfix != log.ipfix ||
                           previous->logging.archive != log.archive;
    std::vector<SinkFactory> sinks;
    if (new_sinks) {
        sinks = sink_factories(log, warnings);
    }
    const std::lock_guard lock(handover_lock_);
    control_events_.insert(control_events_.end(), events.begin(), events.end());
    control_kinds_ = log.any_sink() ? log.events : 0;
    if (new_sinks) {
        pending_sinks_ = std::move(sinks);
        sinks_pending_ = true;
    }
    return warnings;
}

void LoggingThread::post(const NatEvent& event) {
    const std::lock_guard lock(handover_lock_);
    if ((control_kinds_ >> static_cast<unsigned>(event.kind) & 1u) != 0) {
        control_events_.push_back(event);
    }
}

void LoggingThread::start() {
    stop_.store(false, std::memory_order_relaxed);
    thread_ = std::thread([this] { run(); });
    // Named, so that top -H and perf show which thread the logging costs are on.
    pthread_setname_np(thread_.native_handle(), "eph-logging");
}

void LoggingThread::stop() {
    if (!thread_.joinable()) {
        return;
    }
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
}

void LoggingThread::take_handover(std::vector<NatEvent>& events) {
    std::vector<SinkFactory> next;
    bool replace = false;
    {
        const std::lock_guard lock(handover_lock_);
        events.insert(events.end(), control_events_.begin(), control_events_.end());
        control_events_.clear();
        if (sinks_pending_) {
            next = std::move(pending_sinks_);
            pending_sinks_.clear();
            sinks_pending_ = false;
            replace = true;
        }
    }
    if (!replace) {
        return;
    }
    // What the old sinks still queue goes out before they close (a collector that moved gets
    // nothing new from them); they are gone, their archive file sealed and closed, before the
    // new ones open anything.
    std::vector<std::unique_ptr<logging::Sink>> retired;
    {
        const std::lock_guard report(report_lock_);
        retired = std::move(sinks_);
        sinks_.clear();
    }
    for (auto& s : retired) {
        s->flush(unix_ms_now() + 200);
    }
    retired.clear();
    std::vector<std::unique_ptr<logging::Sink>> opened;
    for (const SinkFactory& make : next) {
        opened.push_back(make());
    }
    const std::lock_guard report(report_lock_);
    sinks_ = std::move(opened);
}

std::size_t LoggingThread::drain(std::vector<NatEvent>& batch) {
    std::size_t taken = 0;
    for (rte_ring* ring : rings_) {
        const std::size_t at = batch.size();
        batch.resize(at + kBurst);
        const unsigned n = rte_ring_sc_dequeue_burst_elem(ring, batch.data() + at, sizeof(NatEvent),
                                                          kBurst, nullptr);
        batch.resize(at + n);
        taken += n;
    }
    taken_.store(taken_.load(std::memory_order_relaxed) + taken, std::memory_order_relaxed);
    return taken;
}

void LoggingThread::run() {
    std::vector<NatEvent> batch;
    batch.reserve(kBurst * (rings_.size() + 1));
    bool stopping = false;
    while (true) {
        stopping = stop_.load(std::memory_order_relaxed);
        batch.clear();
        take_handover(batch);
        // On the way out, every ring is drained to the end (the workers have stopped).
        std::size_t taken = 0;
        do {
            taken = drain(batch);
        } while (stopping && taken != 0 && batch.size() < kBurst * 64);
        const std::uint64_t now = unix_ms_now();
        for (auto& sink : sinks_) {
            if (!batch.empty()) {
                sink->write(batch, now);
            }
            sink->poll(now);
        }
        if (stopping && taken == 0) {
            break;
        }
        // A short pass is followed by a pause, so that the next one finds a fuller batch: at a
        // million records a second the sinks then write a thousand records per system call
        // rather than a few, and a quiet NAT costs this thread a wake-up a millisecond.
        if (taken < kFullPass) {
            std::this_thread::sleep_for(kIdleSleep);
        }
    }
    for (auto& sink : sinks_) {
        sink->flush(unix_ms_now() + kStopFlushMs);
    }
}

std::vector<SinkReport> LoggingThread::report() const {
    std::vector<SinkReport> out;
    const std::lock_guard lock(report_lock_);
    for (const auto& s : sinks_) {
        const auto& st = s->stats();
        out.push_back({s->name(), st.records_sent.load(std::memory_order_relaxed),
                       st.records_dropped.load(std::memory_order_relaxed),
                       st.messages_sent.load(std::memory_order_relaxed),
                       st.bytes_sent.load(std::memory_order_relaxed),
                       st.errors.load(std::memory_order_relaxed)});
    }
    return out;
}

} // namespace ephemera
