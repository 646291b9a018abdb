#include "run.hpp"

#include <rte_cycles.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace loadgen {

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

bool stop_requested() {
    return g_stop.load(std::memory_order_relaxed);
}

constexpr double kProbeInterval = 0.1;      // s between readiness probes
constexpr double kPopulateIdle = 1.0;       // s without a new session before populate ends
constexpr std::uint32_t kControlEvery = 16; // loop iterations between looks at the clock

class Controller {
public:
    Controller(Shared& shared, Subscribers& subs)
        : shared_(shared), cfg_(shared.cfg), subs_(subs), hz_(static_cast<double>(shared.tsc_hz)) {
        if (!cfg_.stats_jsonl.empty()) {
            jsonl_ = std::fopen(cfg_.stats_jsonl.c_str(), "w");
            if (jsonl_ == nullptr) {
                std::fprintf(stderr, "ephemera-loadgen: cannot write %s\n",
                             cfg_.stats_jsonl.c_str());
            }
        }
    }
    ~Controller() {
        if (jsonl_ != nullptr) {
            std::fclose(jsonl_);
        }
    }
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    // One look at the clock: moves to the next phase when this one is over. Returns false when
    // the run is done.
    bool step(std::uint64_t now, RunResult& r) {
        const bool stop = stop_requested();
        if (stop && !r.stopped) {
            r.stopped = true;
            const Phase p = phase();
            if (p == Phase::wait_ready || p == Phase::populate || p == Phase::warmup) {
                r.populate.reset(); // a populate phase cut short measured nothing
                enter(Phase::drain, now);
            }
        }
        switch (phase()) {
        case Phase::wait_ready:
            if (subs_.ready() || shared_.probe_seen_outside.load(std::memory_order_relaxed)) {
                r.ready = true;
                peer_pid_ = read_peer_pid();
                r.peer_pid = peer_pid_;
                r.ready_wait_s = seconds(now - phase_start_);
                if (cfg_.populate) {
                    enter(Phase::populate, now);
                    subs_.start_populate(now);
                    r.populate = Window{snap(now), {}, cfg_.new_flow_rate};
                } else {
                    enter_warmup(now);
                }
            } else if (now >= next_probe_) {
                subs_.send_probe();
                next_probe_ = now + cycles(kProbeInterval);
            } else if (now - phase_start_ > cycles(cfg_.ready_timeout_s)) {
                std::fprintf(stderr,
                             "ephemera-loadgen: nothing answered the readiness probe within "
                             "%.0f s\n",
                             cfg_.ready_timeout_s);
                enter(Phase::done, now);
                r.final = snap(now);
                return false;
            }
            break;
        case Phase::populate: {
            if (!subs_.all_new_flows_sent()) {
                break;
            }
            const std::uint64_t established = shared_.sub_stats.get(Stat::in_established);
            const std::uint64_t last_progress =
                std::max(subs_.last_established_tsc(), subs_.last_new_tx_tsc());
            if (established >= cfg_.model.flows() || now - last_progress > cycles(kPopulateIdle) ||
                now - subs_.last_new_tx_tsc() > cycles(cfg_.populate_timeout_s)) {
                r.populate->end = snap(now);
                r.populate_first_tx = subs_.first_tx_tsc();
                r.populate_last_tx = subs_.last_new_tx_tsc();
                r.populate_last_established = subs_.last_established_tsc();
                enter_warmup(now);
            }
            break;
        }
        case Phase::warmup:
            if (now - phase_start_ >= cycles(cfg_.warmup_s)) {
                enter(Phase::measure, now);
                subs_.set_churn(cfg_.churn_rate, now);
                r.measure = Window{snap(now), {}, cfg_.rate_pps};
            }
            break;
        case Phase::measure:
            flood_window(now, r);
            if (now - phase_start_ >= cycles(cfg_.measure_s) || stop) {
                if (r.flood_start && !r.flood_end) {
                    shared_.flooding.store(false, std::memory_order_relaxed);
                    r.flood_end = snap(now);
                }
                r.measure->end = snap(now);
                r.long_lived = subs_.long_lived(now);
                subs_.set_churn(0, now);
                const double secs = seconds(r.measure->end.tsc - r.measure->start.tsc);
                const double replies = static_cast<double>(r.measure->end[Stat::in_ok] -
                                                           r.measure->start[Stat::in_ok]);
                const double rate = cfg_.latency_load * replies / secs;
                if (cfg_.latency_load > 0 && rate > 0 && !stop) {
                    enter(Phase::latency, now);
                    subs_.set_rate(rate, now);
                    r.latency = Window{snap(now), {}, rate};
                } else {
                    enter(Phase::drain, now);
                }
            }
            break;
        case Phase::latency:
            if (now - phase_start_ >= cycles(cfg_.latency_s) || stop) {
                r.latency->end = snap(now);
                enter(Phase::drain, now);
            }
            break;
        case Phase::drain:
            if (now - phase_start_ >= cycles(cfg_.drain_s)) {
                r.final = snap(now);
                enter(Phase::done, now);
                return false;
            }
            break;
        case Phase::done:
            return false;
        }
        if (cfg_.progress && now >= next_progress_) {
            progress(now);
        }
        if (jsonl_ != nullptr && now >= next_record_) {
            record(now);
        }
        return true;
    }

private:
    // Opens and closes the flood's window, measured from the start of the measure phase.
    void flood_window(std::uint64_t now, RunResult& r) {
        if (cfg_.flood.type == FloodType::none) {
            return;
        }
        const std::uint64_t in_phase = now - phase_start_;
        if (!r.flood_start && in_phase >= cycles(cfg_.flood.start_s)) {
            r.flood_start = snap(now);
            shared_.flooding.store(true, std::memory_order_relaxed);
        } else if (r.flood_start && !r.flood_end &&
                   in_phase >= cycles(cfg_.flood.start_s + cfg_.flood.duration_s)) {
            shared_.flooding.store(false, std::memory_order_relaxed);
            r.flood_end = snap(now);
        }
    }
    // One JSON line a second: every counter (cumulative), the phase and the long-lived flows,
    // for a caller that follows a long run (bench/soak.py).
    void record(std::uint64_t now) {
        if (record_start_ == 0) {
            record_start_ = now;
        }
        const Snapshot s = snap(now, false);
        const LongLivedSummary ll = subs_.long_lived(now);
        std::fprintf(jsonl_,
                     "{\"t\": %.3f, \"phase\": \"%s\", \"flooding\": %s, \"long_lived\": "
                     "{\"flows\": %u, \"established\": %u, \"silent\": %u, \"over_gap\": %u, "
                     "\"max_gap_s\": %.3f}, \"counters\": {",
                     seconds(now - record_start_), phase_name(phase()),
                     shared_.flooding.load(std::memory_order_relaxed) ? "true" : "false", ll.flows,
                     ll.established, ll.silent, ll.over_gap, ll.max_gap_s);
        for (std::size_t i = 0; i < kStatCount; ++i) {
            std::fprintf(jsonl_, "%s\"%s\": %llu", i == 0 ? "" : ", ", kStatNames[i].data(),
                         static_cast<unsigned long long>(s.values[i]));
        }
        std::fprintf(jsonl_, "}}\n");
        std::fflush(jsonl_);
        next_record_ = now + cycles(1.0);
    }

    Phase phase() const { return shared_.phase.load(std::memory_order_relaxed); }
    // The peer's pid, from the file the caller wrote after starting it (0 if none).
    int read_peer_pid() const {
        if (cfg_.peer_pid_file.empty()) {
            return 0;
        }
        int pid = 0;
        if (FILE* f = std::fopen(cfg_.peer_pid_file.c_str(), "r")) {
            if (std::fscanf(f, "%d", &pid) != 1) {
                pid = 0;
            }
            std::fclose(f);
        }
        return pid;
    }
    double seconds(std::uint64_t c) const { return static_cast<double>(c) / hz_; }
    std::uint64_t cycles(double s) const { return static_cast<std::uint64_t>(s * hz_); }
    // Phase boundaries read the CPU times too (a few /proc reads); progress lines do not, so
    // the loop never stalls on /proc/PID/task once a second.
    Snapshot snap(std::uint64_t now, bool with_cpu = true) const {
        return take_snapshot(shared_.sub_stats, shared_.srv_stats, now, with_cpu, peer_pid_);
    }
    void enter(Phase p, std::uint64_t now) {
        shared_.phase.store(p, std::memory_order_relaxed);
        phase_start_ = now;
    }
    void enter_warmup(std::uint64_t now) {
        enter(Phase::warmup, now);
        subs_.set_rate(cfg_.rate_pps, now);
    }
    // One line a second: rates since the last line.
    void progress(std::uint64_t now) {
        const Snapshot s = snap(now, false);
        if (last_.tsc != 0) {
            const double secs = seconds(s.tsc - last_.tsc);
            const auto mpps = [&](Stat st) {
                return static_cast<double>(s[st] - last_[st]) / secs / 1e6;
            };
            std::uint64_t errors = 0;
            for (std::size_t i = 0; i < kStatCount; ++i) {
                if (is_mistranslation(static_cast<Stat>(i))) {
                    errors += s.values[i];
                }
            }
            std::printf("[%7.1f s] %-8s sent %6.3f Mpps  out %6.3f  back %6.3f  established %llu"
                        "  mistranslated %llu\n",
                        seconds(now - run_start_), phase_name(phase()), mpps(Stat::sub_tx),
                        mpps(Stat::out_ok), mpps(Stat::in_ok),
                        static_cast<unsigned long long>(s[Stat::in_established]),
                        static_cast<unsigned long long>(errors));
            std::fflush(stdout);
        } else {
            run_start_ = now;
        }
        last_ = s;
        next_progress_ = now + cycles(1.0);
    }

    Shared& shared_;
    const RunConfig& cfg_;
    Subscribers& subs_;
    double hz_;
    std::uint64_t phase_start_ = rte_rdtsc();
    std::uint64_t next_probe_ = 0;
    std::uint64_t next_progress_ = 0;
    std::uint64_t run_start_ = 0;
    std::uint64_t next_record_ = 0;
    std::uint64_t record_start_ = 0;
    std::FILE* jsonl_ = nullptr;
    int peer_pid_ = 0;
    Snapshot last_;
};

} // namespace

void request_stop() {
    g_stop.store(true, std::memory_order_relaxed);
}

RunResult run_phases(Shared& shared, Subscribers& subscribers, Servers* inline_servers) {
    RunResult result;
    Controller control(shared, subscribers);
    std::uint32_t iteration = 0;
    bool moved_last = false;
    std::uint64_t busy = 0;
    std::uint64_t idle = 0;
    std::uint64_t prev = rte_rdtsc();
    for (;;) {
        const std::uint64_t now = rte_rdtsc();
        // How much of the loop does work: near 100 % means the generator, not the peer, sets
        // the pace (or that another process took this CPU: the TSC runs on meanwhile).
        (moved_last ? busy : idle) += now - prev;
        prev = now;
        std::uint32_t moved = subscribers.poll(now);
        if (inline_servers != nullptr) {
            moved += inline_servers->poll(now);
        }
        moved_last = moved != 0;
        if (++iteration % kControlEvery == 0) {
            shared.sub_stats.add(Stat::loop_busy_cycles, busy);
            shared.sub_stats.add(Stat::loop_idle_cycles, idle);
            busy = 0;
            idle = 0;
            if (!control.step(now, result)) {
                break;
            }
        }
    }
    return result;
}

} // namespace loadgen
