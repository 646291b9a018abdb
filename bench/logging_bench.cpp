// ephemera-logging-bench: the logging thread's cost per NAT event record in each sink's
// encoding, at the rate a loaded NAT produces them (about a million records a second).
//
// What is measured (each a Google Benchmark; one iteration is one batch of 512 records, the
// items_per_second and per_record counters are per record):
//   archive_line     append_record into one reused buffer: the archive's text
//   syslog_message   SyslogFormatter::append into one reused buffer, UDP form (no framing)
//   ipfix_data       IpfixEncoder::data_messages over the batch, 1400-byte messages
//   archive_write    ArchiveSink::write of the batch into a temporary directory: formatting,
//                    write(2) to the page cache, SHA-256 of each sealed block (1024 records),
//                    file rotation at 64 MiB; no compression, no hmac
//
// Records. A pool of 64K mapping_created / mapping_deleted records, udp and tcp, from
// subscribers across 100.64.0.0/16 on 256 pool addresses, ports drawn across 1024-65535, half
// with a remote endpoint (logging.destination on) and some static. Time advances 1 ms every 64
// records, so the timestamp's calendar changes second every 64K records or so, as it would at a
// million records a second spread over a few workers' batches.
#include "logging/archive_format.hpp"
#include "logging/archive_writer.hpp"
#include "logging/ipfix_encoder.hpp"
#include "logging/syslog_format.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

namespace lg = ephemera::logging;
using ephemera::Ipv4Addr;
using ephemera::NatEvent;
using ephemera::NatEventKind;

constexpr std::size_t kBatch = 512;
constexpr std::size_t kPool = 64 * 1024;
constexpr std::uint64_t kStartMs = 1796464800123ULL; // 2026-12-05T10:00:00.123Z

std::vector<NatEvent> make_events() {
    std::mt19937_64 rng(42);
    std::vector<NatEvent> out(kPool);
    for (std::size_t i = 0; i < kPool; ++i) {
        NatEvent& e = out[i];
        e.time_ms = kStartMs + i / 64;
        e.kind = rng() % 2 == 0 ? NatEventKind::mapping_created : NatEventKind::mapping_deleted;
        e.proto = rng() % 3 == 0 ? 6 : 17;
        e.worker = static_cast<std::uint16_t>(rng() % 4);
        e.inside = Ipv4Addr(100, 64, 0, 0).value() + static_cast<std::uint32_t>(rng() % 65536);
        e.inside_port = static_cast<std::uint16_t>(1024 + rng() % 64512);
        e.external = Ipv4Addr(198, 18, 0, 0).value() + static_cast<std::uint32_t>(rng() % 256);
        e.external_port = static_cast<std::uint16_t>(1024 + rng() % 64512);
        if (rng() % 2 == 0) {
            e.remote = Ipv4Addr(203, 0, 0, 0).value() + static_cast<std::uint32_t>(rng() % 65536);
            e.remote_port = rng() % 4 == 0 ? 53 : 443;
        }
        if (rng() % 64 == 0) {
            e.flags = NatEvent::kStaticMapping;
        }
    }
    return out;
}

const std::vector<NatEvent>& pool() {
    static const std::vector<NatEvent> events = make_events();
    return events;
}

// The next batch of the pool, wrapping around.
std::span<const NatEvent> next_batch(std::size_t& at) {
    const std::span<const NatEvent> b(pool().data() + at, kBatch);
    at = (at + kBatch) % kPool;
    return b;
}

void per_record(benchmark::State& state) {
    const auto records = static_cast<double>(state.iterations() * kBatch);
    state.SetItemsProcessed(static_cast<std::int64_t>(records));
    // Seconds per record: the console prints it with its unit ("131.7ns").
    state.counters["per_record"] = benchmark::Counter(
        static_cast<double>(kBatch),
        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void archive_line(benchmark::State& state) {
    std::string out;
    std::size_t at = 0;
    for (auto _ : state) {
        out.clear();
        for (const NatEvent& e : next_batch(at)) {
            lg::append_record(out, e);
        }
        benchmark::DoNotOptimize(out.data());
    }
    per_record(state);
}
BENCHMARK(archive_line);

void syslog_message(benchmark::State& state) {
    const lg::SyslogFormatter formatter(lg::SyslogHeader{lg::kSyslogLocal0, "nat1", 4242});
    std::string out;
    std::size_t at = 0;
    for (auto _ : state) {
        for (const NatEvent& e : next_batch(at)) {
            out.clear();
            formatter.append(out, e);
            benchmark::DoNotOptimize(out.data());
        }
    }
    per_record(state);
}
BENCHMARK(syslog_message);

void ipfix_data(benchmark::State& state) {
    lg::IpfixEncoder encoder(1);
    std::vector<lg::IpfixMessage> out;
    std::size_t at = 0;
    for (auto _ : state) {
        out.clear();
        const auto b = next_batch(at);
        encoder.data_messages(b, static_cast<std::uint32_t>(b.front().time_ms / 1000),
                              lg::kIpfixUdpMessageBytes, out);
        benchmark::DoNotOptimize(out.data());
    }
    per_record(state);
}
BENCHMARK(ipfix_data);

void archive_write(benchmark::State& state) {
    std::string dir = (std::filesystem::temp_directory_path() / "ephemera-logging-bench.XXXXXX");
    if (::mkdtemp(dir.data()) == nullptr) {
        state.SkipWithError("mkdtemp failed");
        return;
    }
    {
        lg::ArchiveOptions o;
        o.directory = dir;
        o.compress = false;
        lg::ArchiveSink sink(o, kStartMs);
        std::size_t at = 0;
        for (auto _ : state) {
            const auto b = next_batch(at);
            sink.write(b, b.front().time_ms);
        }
        if (sink.stats().records_dropped.load() != 0) {
            state.SkipWithError("the archive dropped records");
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    per_record(state);
}
BENCHMARK(archive_write);

} // namespace

BENCHMARK_MAIN();
