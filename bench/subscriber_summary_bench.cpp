// ephemera-summary-bench: the cost of `ephemeractl top` and the subscriber metrics
// (subscriber_summary.hpp) at a million subscribers.
//
//   walk/S     a worker's walk over S subscriber records into a summary, as
//              Translator::walk_subscribers does it (records in a plain array here, addresses
//              from the index: the rte_hash key fetch is only for the few that enter a top N).
//              Reported per subscriber; a housekeeping's step is Mailbox::kSubscriberStep of them.
//   merge/W    the control thread's merge of W workers' full summaries (two top 20 lists and
//              the histograms each): the per-scrape cost on top of the workers' walks.
//
// Ports per subscriber follow a skewed draw (most hold a few, a tail holds thousands), so the
// top N keeps changing early in a walk, as on a real table.
#include "ephemera/subscriber_sample.hpp"

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace ephemera {
namespace {

std::vector<Subscriber> population(std::uint32_t n) {
    std::vector<Subscriber> records(n);
    std::mt19937 rng(42);
    std::exponential_distribution<double> ports(1.0 / 24);
    for (std::uint32_t i = 0; i < n; ++i) {
        Subscriber& s = records[i];
        s = Subscriber{};
        if (i % 8 == 7) {
            continue; // a free record of the table
        }
        s.ports[0] = static_cast<std::uint32_t>(ports(rng));
        s.ports[1] = static_cast<std::uint32_t>(ports(rng)) / 2;
        s.mappings = s.ports[0] + s.ports[1] + 1;
        s.sessions = s.mappings;
        s.refusals = rng() % 64 == 0 ? rng() % 100 : 0;
    }
    return records;
}

// Translator::walk_subscribers' loop body, over a plain array.
void walk(const std::vector<Subscriber>& records, SubscriberSummary& out) {
    for (std::uint32_t i = 0; i < records.size(); ++i) {
        std::optional<SubscriberSample> s = sample_of(records[i]);
        if (!s) {
            continue;
        }
        if (out.admits(s->most_ports(), s->refusals)) {
            s->subscriber = Ipv4Addr{0x64400000u + i};
        }
        out.add(*s);
    }
}

void BM_Walk(benchmark::State& state) {
    const auto records = population(static_cast<std::uint32_t>(state.range(0)));
    for (auto _ : state) {
        SubscriberSummary sum;
        walk(records, sum);
        benchmark::DoNotOptimize(sum);
    }
    state.counters["ns_per_subscriber"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(records.size()),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Walk)->Arg(1 << 16)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_Merge(benchmark::State& state) {
    const auto workers = static_cast<std::size_t>(state.range(0));
    const auto records = population(1'000'000 / static_cast<std::uint32_t>(workers));
    std::vector<SubscriberSummary> parts(workers);
    for (SubscriberSummary& p : parts) {
        walk(records, p);
    }
    for (auto _ : state) {
        SubscriberSummary merged;
        for (const SubscriberSummary& p : parts) {
            merged.merge(p);
        }
        benchmark::DoNotOptimize(merged);
    }
}
BENCHMARK(BM_Merge)->DenseRange(2, 8, 2)->Unit(benchmark::kNanosecond);

} // namespace
} // namespace ephemera

BENCHMARK_MAIN();
