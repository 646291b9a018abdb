// One day of port-block allocation for a synthetic subscriber population, comparing fixed
// block sizes with the adaptive rule of include/ephemera/block_sizing.hpp (the header itself,
// so the figures follow the rule as the dataplane runs it). Seeded and deterministic: each
// subscriber draws from its own generator, so the figures do not depend on the thread count.
//
// Population: most subscribers peak at tens of ports in use (lognormal), a few at thousands
// (Pareto). Each follows a residential day (low at 04:00, high at 21:00) shifted by up to
// 1.5 h either way. Flows arrive as a Poisson process whose rate gives that concurrency; a
// flow's port is held for its duration (lognormal, heavy-tailed) plus the idle timeout that
// follows it (TCP transitory 240 s or UDP 300 s, the defaults).
//
// Block model: a mapping takes a port from the subscriber's largest block with one free, the
// oldest among equals (so with fixed sizes, the oldest), skipping blocks closed by
// active_block_timeout; when there is none it opens a block, up to max_blocks,
// else the mapping is refused. A block is freed when its last mapping ends and its ports are
// then held down for 120 s. Each block opened is one log record. The simulation starts 3 h
// before the day it reports, so the day begins with blocks in place.
//
// Usage: ephemera-block-sim [--seed N] [--subscribers N] [--max-blocks N]
//                           [--active-block-timeout S] [--records-per-day N] [--threads N]
#include "population.hpp"

#include "ephemera/block_sizing.hpp"
#include "ephemera/config.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using ephemera::BlockDemand;
using ephemera::BlockSizing;
using ephemera::Tick;
namespace population = ephemera::population;

constexpr std::int64_t kMs = 1000;
constexpr std::int64_t kWarmup = 3 * 3600 * kMs;
constexpr std::int64_t kDay = 24 * 3600 * kMs;
constexpr std::int64_t kEnd = kWarmup + kDay;
constexpr std::int64_t kHoldDown = 120 * kMs;

struct Options {
    std::uint64_t seed = 1;
    std::uint32_t subscribers = 10000;
    std::uint32_t max_blocks = 8;
    std::uint32_t active_block_timeout = 0; // s
    std::uint32_t records_per_day = 24;
    std::uint32_t threads = 2;
};

struct Policy {
    std::string name;
    std::uint32_t fixed_size; // 0: adaptive
};

// One subscriber's flows, as a time-sorted list of events: time_ms << 25 | flow << 1 | arrival.
// Departures sort before arrivals of the same millisecond: the port is free first.
struct Workload {
    std::vector<std::uint64_t> events;
    double peak_concurrency = 0;
};

constexpr int kFlowBits = 24;

void generate(std::uint64_t seed, std::uint32_t id, Workload& w) {
    std::mt19937_64 rng(population::splitmix(seed * 0x100000001b3ull + id));
    const population::Shape shape = population::draw_shape(rng);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    const double peak = shape.peak;
    w.peak_concurrency = peak;
    const double shift = shape.shift;
    std::lognormal_distribution<double> duration(std::log(5.0), 2.0);
    const double max_rate = peak / population::kMeanHold; // flows per s at peak
    std::exponential_distribution<double> gap(max_rate);
    w.events.clear();
    std::uint64_t flow = 0;
    double t = 0; // s since the simulation start
    const double end = static_cast<double>(kEnd) / kMs;
    for (;;) {
        t += gap(rng);
        if (t >= end) {
            break;
        }
        const double hour = (t - static_cast<double>(kWarmup) / kMs) / 3600.0 - shift;
        if (uni(rng) >= population::profile(hour)) {
            continue; // thinning: the rate follows the day's profile
        }
        const double hold = std::min(duration(rng), 6 * 3600.0) + (uni(rng) < 0.7 ? 240 : 300);
        if (flow >= (1ull << kFlowBits)) {
            break;
        }
        const auto start = static_cast<std::uint64_t>(t * kMs);
        const auto stop = static_cast<std::uint64_t>((t + hold) * kMs);
        w.events.push_back(start << (kFlowBits + 1) | flow << 1 | 1);
        if (stop < static_cast<std::uint64_t>(kEnd)) {
            w.events.push_back(stop << (kFlowBits + 1) | flow << 1);
        }
        ++flow;
    }
    // Background: most subscribers keep a few long-lived connections (push notification,
    // messaging, VPN) open day and night, one after another with a short gap; a tenth have
    // none (devices off), and their blocks empty whenever their traffic pauses.
    const int background = uni(rng) < 0.1 ? 0 : 1 + static_cast<int>(uni(rng) * 3);
    std::lognormal_distribution<double> long_lived(std::log(3600.0), 1.0);
    std::exponential_distribution<double> pause(1.0 / 30);
    for (int c = 0; c < background; ++c) {
        for (double at = uni(rng) * 3600; at < end && flow < (1ull << kFlowBits); ++flow) {
            const double stop_at = at + long_lived(rng);
            w.events.push_back(static_cast<std::uint64_t>(at * kMs) << (kFlowBits + 1) | flow << 1 |
                               1);
            if (stop_at < end) {
                w.events.push_back(static_cast<std::uint64_t>(stop_at * kMs) << (kFlowBits + 1) |
                                   flow << 1);
            }
            at = stop_at + pause(rng);
        }
    }
    std::sort(w.events.begin(), w.events.end());
}

struct Result {
    std::uint32_t records = 0; // blocks opened during the day
    std::uint32_t refused = 0; // mappings refused during the day
    std::uint32_t flows = 0;   // mappings asked for during the day
    std::uint32_t peak_blocks = 0;
    bool refused_any = false; // in the warm-up too
    double held = 0;          // port-seconds in blocks
    double used = 0;          // port-seconds in use
    double needed = 0;        // port-seconds the flows asked for, refused or not
    double held_down = 0;     // port-seconds of freed blocks in hold-down
};

struct Block {
    std::uint32_t size = 0;
    std::uint32_t used = 0;
    std::int64_t opened = 0;
};

struct Sweep {
    std::vector<Block> slots;
    std::vector<std::uint32_t> order; // live slots, oldest first
    std::vector<std::uint32_t> free_slots;
    std::vector<std::uint8_t> flow_slot; // 0xff: refused or not in a block
};

Tick to_tick(std::int64_t ms) {
    return static_cast<Tick>(ms * ephemera::kTicksPerSecond / kMs);
}

Result run(const Workload& w, const Policy& p, const BlockSizing& cfg, std::uint32_t max_blocks,
           std::int64_t active_timeout, Sweep& s) {
    Result r;
    s.slots.clear();
    s.order.clear();
    s.free_slots.clear();
    s.flow_slot.assign(w.events.size(), 0xff); // at least as many events as flows
    BlockDemand demand;
    std::uint32_t capacity = 0;
    std::uint32_t in_use = 0;
    std::uint32_t asked = 0;
    std::int64_t last = 0;
    std::uint64_t held = 0; // port-milliseconds, summed in integers on the hot loop
    std::uint64_t used = 0;
    std::uint64_t needed = 0;
    const auto account = [&](std::int64_t now) {
        const std::int64_t from = std::max(last, kWarmup);
        if (now > from) {
            const auto dt = static_cast<std::uint64_t>(now - from);
            held += capacity * dt;
            used += in_use * dt;
            needed += asked * dt;
        }
        last = now;
    };
    for (const std::uint64_t e : w.events) {
        const auto now = static_cast<std::int64_t>(e >> (kFlowBits + 1));
        const std::uint32_t flow = (e >> 1) & ((1u << kFlowBits) - 1);
        account(now);
        const bool in_day = now >= kWarmup;
        if ((e & 1) == 0) {
            --asked;
            const std::uint8_t slot = s.flow_slot[flow];
            if (slot == 0xff) {
                continue;
            }
            --in_use;
            Block& b = s.slots[slot];
            if (--b.used == 0) {
                capacity -= b.size;
                const std::int64_t from = std::max(now, kWarmup);
                const std::int64_t to = std::min(now + kHoldDown, kEnd);
                if (to > from) {
                    r.held_down += b.size * static_cast<double>(to - from) / kMs;
                }
                s.order.erase(std::find(s.order.begin(), s.order.end(), slot));
                s.free_slots.push_back(slot);
                ephemera::note_block_freed(cfg, demand, in_use, to_tick(now));
            }
            continue;
        }
        ++asked;
        r.flows += in_day;
        std::uint32_t slot = 0xff;
        std::uint32_t best = 0;
        for (const std::uint32_t o : s.order) {
            const Block& b = s.slots[o];
            if (b.size > best && b.used < b.size &&
                (active_timeout == 0 || now - b.opened < active_timeout)) {
                slot = o;
                best = b.size;
            }
        }
        if (slot == 0xff) {
            if (s.order.size() >= max_blocks) {
                r.refused += in_day;
                r.refused_any = true;
                continue;
            }
            const Tick tick = to_tick(now);
            const std::uint32_t size = p.fixed_size != 0
                                           ? p.fixed_size
                                           : ephemera::next_block_size(cfg, demand, in_use, tick);
            ephemera::note_block_opened(cfg, demand, size, tick);
            if (s.free_slots.empty()) {
                s.slots.push_back({});
                s.free_slots.push_back(static_cast<std::uint32_t>(s.slots.size() - 1));
            }
            slot = s.free_slots.back();
            s.free_slots.pop_back();
            s.slots[slot] = Block{size, 0, now};
            s.order.push_back(slot);
            capacity += size;
            r.records += in_day;
            r.peak_blocks = std::max(r.peak_blocks, static_cast<std::uint32_t>(s.order.size()));
        }
        ++s.slots[slot].used;
        s.flow_slot[flow] = static_cast<std::uint8_t>(slot);
        ++in_use;
        ephemera::note_ports_in_use(demand, in_use);
    }
    account(kEnd);
    r.held = static_cast<double>(held) / kMs;
    r.used = static_cast<double>(used) / kMs;
    r.needed = static_cast<double>(needed) / kMs;
    return r;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

std::uint32_t parse(const char* s) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v > 0xffffffffUL) {
        std::fprintf(stderr, "not a number: %s\n", s);
        std::exit(2);
    }
    return static_cast<std::uint32_t>(v);
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        const std::uint32_t v = parse(argv[++i]);
        if (a == "--seed") {
            o.seed = v;
        } else if (a == "--subscribers") {
            o.subscribers = v;
        } else if (a == "--max-blocks") {
            o.max_blocks = v;
        } else if (a == "--active-block-timeout") {
            o.active_block_timeout = v;
        } else if (a == "--records-per-day") {
            o.records_per_day = v;
        } else if (a == "--threads") {
            o.threads = std::max(v, 1u);
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (o.max_blocks == 0 || o.max_blocks > ephemera::BlocksConfig::kMaxBlocks ||
        o.records_per_day == 0 || o.subscribers == 0) {
        std::fprintf(stderr, "max-blocks 1..64, records-per-day and subscribers above 0\n");
        return 2;
    }
    ephemera::BlocksConfig bc;
    bc.adaptive = true;
    bc.max_blocks = o.max_blocks;
    bc.records_per_day = o.records_per_day;
    const BlockSizing cfg = ephemera::make_block_sizing(bc);
    const std::vector<Policy> policies = {
        {"fixed 64", 64},     {"fixed 256", 256},       {"fixed 512", 512},
        {"fixed 4096", 4096}, {"adaptive 64..4096", 0},
    };
    const std::size_t np = policies.size();
    // Per subscriber and policy: the run at max_blocks, then one with blocks unbounded (the
    // max_blocks each policy would need to refuse nothing).
    std::vector<Result> limited(o.subscribers * np);
    std::vector<Result> unbounded(o.subscribers * np);
    std::vector<double> peaks(o.subscribers);
    std::atomic<std::uint32_t> next{0};
    const std::int64_t active_timeout = std::int64_t{o.active_block_timeout} * kMs;
    const auto worker = [&] {
        Workload w;
        Sweep s;
        for (std::uint32_t id; (id = next.fetch_add(1)) < o.subscribers;) {
            generate(o.seed, id, w);
            peaks[id] = w.peak_concurrency;
            for (std::size_t k = 0; k < np; ++k) {
                const Result r = run(w, policies[k], cfg, o.max_blocks, active_timeout, s);
                limited[id * np + k] = r;
                // Without a refusal, unbounded blocks would have run the same course.
                unbounded[id * np + k] =
                    r.refused_any ? run(w, policies[k], cfg, 250, active_timeout, s) : r;
            }
        }
    };
    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < o.threads; ++t) {
        threads.emplace_back(worker);
    }
    for (auto& t : threads) {
        t.join();
    }

    double flows = 0;
    double needed = 0;
    for (std::uint32_t id = 0; id < o.subscribers; ++id) {
        flows += limited[id * np].flows;
        needed += limited[id * np].needed;
    }
    const double day_s = static_cast<double>(kDay) / kMs;
    std::printf("Population: %u subscribers, seed %llu, %.1f M mappings in the day, %.0f ports "
                "in use on average (%.1f per subscriber); peak concurrency per subscriber: "
                "median %.0f, p99 %.0f, max %.0f.\n",
                o.subscribers, static_cast<unsigned long long>(o.seed), flows / 1e6, needed / day_s,
                needed / day_s / o.subscribers, percentile(peaks, 0.5), percentile(peaks, 0.99),
                percentile(peaks, 1.0));
    std::printf("Blocks: max_blocks %u, hold-down 120 s, active_block_timeout %u s; adaptive: "
                "records_per_day %u.\n\n",
                o.max_blocks, o.active_block_timeout, o.records_per_day);
    std::printf("| policy | records/sub/day mean | p99 | max | subs over %u | refused flows "
                "(%%) | subs refused | max_blocks needed p99 / max |\n",
                o.records_per_day);
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t k = 0; k < np; ++k) {
        std::vector<double> rec;
        std::vector<double> need_blocks;
        double refused = 0;
        std::uint32_t over = 0;
        std::uint32_t subs_refused = 0;
        for (std::uint32_t id = 0; id < o.subscribers; ++id) {
            const Result& r = limited[id * np + k];
            rec.push_back(r.records);
            need_blocks.push_back(unbounded[id * np + k].peak_blocks);
            refused += r.refused;
            over += r.records > o.records_per_day;
            subs_refused += r.refused != 0;
        }
        double mean = 0;
        for (const double x : rec) {
            mean += x;
        }
        mean /= static_cast<double>(rec.size());
        std::printf("| %s | %.2f | %.0f | %.0f | %u (%.2f %%) | %.0f (%.3f %%) | %u | %.0f / "
                    "%.0f |\n",
                    policies[k].name.c_str(), mean, percentile(rec, 0.99), percentile(rec, 1.0),
                    over, 100.0 * over / o.subscribers, refused, 100.0 * refused / flows,
                    subs_refused, percentile(need_blocks, 0.99), percentile(need_blocks, 1.0));
    }
    std::printf("\nPorts, time-averaged over the day (held: in blocks; wasted: held, not in use; "
                "held down: freed blocks waiting 120 s; needed: what the flows asked for):\n\n");
    std::printf("| policy | held | wasted | wasted per sub mean | p99 | held down | held / "
                "needed | pool addresses held |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t k = 0; k < np; ++k) {
        double held = 0;
        double used = 0;
        double down = 0;
        std::vector<double> waste;
        for (std::uint32_t id = 0; id < o.subscribers; ++id) {
            const Result& r = limited[id * np + k];
            held += r.held;
            used += r.used;
            down += r.held_down;
            waste.push_back((r.held - r.used) / day_s);
        }
        // A pool address offers 64512 ports (1024..65535).
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.1f |\n",
                    policies[k].name.c_str(), held / day_s, (held - used) / day_s,
                    (held - used) / day_s / o.subscribers, percentile(waste, 0.99), down / day_s,
                    held / needed, (held + down) / day_s / 64512.0);
    }
    return 0;
}
