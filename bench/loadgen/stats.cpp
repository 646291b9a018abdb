#include "stats.hpp"

#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <string>

namespace loadgen {

namespace {

bool read_schedstat(const std::string& path, std::uint64_t& run, std::uint64_t& wait) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return false;
    }
    unsigned long long r = 0;
    unsigned long long w = 0;
    const bool ok = std::fscanf(f, "%llu %llu", &r, &w) == 2;
    std::fclose(f);
    run = r;
    wait = w;
    return ok;
}

} // namespace

CpuTimes read_cpu_times(int peer_pid) {
    CpuTimes c;
    read_schedstat("/proc/thread-self/schedstat", c.self_run_ns, c.self_wait_ns);
    if (peer_pid <= 0) {
        return c;
    }
    const std::string task = "/proc/" + std::to_string(peer_pid) + "/task";
    DIR* dir = opendir(task.c_str());
    if (dir == nullptr) {
        return c;
    }
    while (const dirent* e = readdir(dir)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        const std::string base = task + "/" + e->d_name;
        char comm[32] = {};
        if (FILE* f = std::fopen((base + "/comm").c_str(), "r")) {
            if (std::fgets(comm, sizeof comm, f) == nullptr) {
                comm[0] = '\0';
            }
            std::fclose(f);
        }
        std::uint64_t run = 0;
        std::uint64_t wait = 0;
        if (std::strncmp(comm, "rte-worker", 10) == 0 &&
            read_schedstat(base + "/schedstat", run, wait)) {
            c.peer_run_ns += run;
            c.peer_wait_ns += wait;
            ++c.peer_threads;
        }
    }
    closedir(dir);
    return c;
}

Snapshot take_snapshot(const Stats& subscribers, const Stats& servers, std::uint64_t tsc,
                       bool with_cpu, int peer_pid) {
    Snapshot s;
    s.tsc = tsc;
    if (with_cpu) {
        s.cpu = read_cpu_times(peer_pid);
    }
    for (std::size_t i = 0; i < kStatCount; ++i) {
        const auto stat = static_cast<Stat>(i);
        s.values[i] = subscribers.get(stat) + servers.get(stat);
    }
    for (std::size_t b = 0; b < Histogram::kBuckets; ++b) {
        s.rtt[b] = subscribers.latency.get(b);
        s.oneway[b] = servers.latency.get(b);
    }
    return s;
}

Percentiles percentiles(const std::array<std::uint64_t, Histogram::kBuckets>& end,
                        const std::array<std::uint64_t, Histogram::kBuckets>& start,
                        std::uint64_t tsc_hz) {
    Percentiles p;
    std::array<std::uint64_t, Histogram::kBuckets> d{};
    std::size_t last = 0;
    for (std::size_t b = 0; b < Histogram::kBuckets; ++b) {
        d[b] = end[b] - start[b];
        p.count += d[b];
        if (d[b] != 0) {
            last = b;
        }
    }
    if (p.count == 0) {
        return p;
    }
    // A bucket is reported by its midpoint: within 3 % of any value in it.
    const auto us = [tsc_hz](std::size_t b) {
        const double lo = static_cast<double>(Histogram::lower_bound(b));
        const double hi = static_cast<double>(Histogram::lower_bound(b + 1));
        return (lo + hi) / 2 * 1e6 / static_cast<double>(tsc_hz);
    };
    const auto at = [&](double q) {
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(p.count - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t b = 0; b < Histogram::kBuckets; ++b) {
            seen += d[b];
            if (seen >= rank) {
                return us(b);
            }
        }
        return us(last);
    };
    p.p50_us = at(0.50);
    p.p90_us = at(0.90);
    p.p99_us = at(0.99);
    p.p999_us = at(0.999);
    p.max_us = us(last);
    return p;
}

} // namespace loadgen
