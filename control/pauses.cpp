#include "pauses.hpp"

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace ephemera {

namespace {

constexpr auto kResetTimeout = std::chrono::milliseconds(2000);

std::uint64_t cycles_to(std::uint64_t cycles, double per_second) {
    return static_cast<std::uint64_t>(static_cast<double>(cycles) * per_second /
                                      static_cast<double>(rte_get_tsc_hz()));
}

struct PauseFigures {
    std::uint64_t longest_us;
    std::uint64_t longest_plan_us;
    std::uint64_t longest_take_up_us;
    std::uint64_t plans;
    std::uint64_t window_ms;
};

PauseFigures figures(const Worker& worker) {
    const PauseMeter& m = worker.gauges().pauses;
    const std::uint64_t start = m.window_start();
    const std::uint64_t now = rte_rdtsc();
    return {cycles_to(m.longest(), 1e6), cycles_to(m.longest_with_plan(), 1e6),
            cycles_to(m.longest_take_up(), 1e6), m.plans(),
            start == 0 || now < start ? 0 : cycles_to(now - start, 1e3)};
}

void add_figures(rte_tel_data* d, const PauseFigures& f) {
    rte_tel_data_add_dict_u64(d, "longest_iteration_us", f.longest_us);
    rte_tel_data_add_dict_u64(d, "longest_plan_iteration_us", f.longest_plan_us);
    rte_tel_data_add_dict_u64(d, "longest_take_up_us", f.longest_take_up_us);
    rte_tel_data_add_dict_u64(d, "plans_taken", f.plans);
    rte_tel_data_add_dict_u64(d, "pause_window_ms", f.window_ms);
}

// Restarts every worker's window; waits until each has (it does so at the end of its
// current loop iteration).
std::string reset_all(App& app) {
    std::lock_guard guard(app.pause_lock);
    std::vector<std::uint32_t> tickets;
    for (auto& w : app.workers) {
        tickets.push_back(w->pause_meter().request_reset());
    }
    const auto deadline = std::chrono::steady_clock::now() + kResetTimeout;
    for (std::size_t i = 0; i < app.workers.size(); ++i) {
        while (!app.workers[i]->gauges().pauses.reset_honoured(tickets[i])) {
            if (std::chrono::steady_clock::now() > deadline) {
                return "worker " + std::to_string(i) + " did not restart its window within " +
                       std::to_string(kResetTimeout.count()) + " ms";
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
    }
    return {};
}

} // namespace

void add_pause_gauges(rte_tel_data* d, const Worker& worker) {
    add_figures(d, figures(worker));
}

void add_pause_totals(rte_tel_data* d, const App& app) {
    PauseFigures total{0, 0, 0, 0, std::numeric_limits<std::uint64_t>::max()};
    for (const auto& w : app.workers) {
        const PauseFigures f = figures(*w);
        total.longest_us = std::max(total.longest_us, f.longest_us);
        total.longest_plan_us = std::max(total.longest_plan_us, f.longest_plan_us);
        total.longest_take_up_us = std::max(total.longest_take_up_us, f.longest_take_up_us);
        total.plans += f.plans;
        total.window_ms = std::min(total.window_ms, f.window_ms);
    }
    if (app.workers.empty()) {
        total.window_ms = 0;
    }
    add_figures(d, total);
}

int pauses_command(App& app, const char* params, rte_tel_data* d) {
    const std::string text = params == nullptr ? "" : params;
    if (text == "reset") {
        const std::string failure = reset_all(app);
        rte_tel_data_start_dict(d);
        rte_tel_data_add_dict_string(d, "result", failure.empty() ? "ok" : "refused");
        const std::string message =
            failure.empty() ? "pause windows restarted on " + std::to_string(app.workers.size()) +
                                  (app.workers.size() == 1 ? " worker" : " workers")
                            : failure;
        rte_tel_data_add_dict_string(d, "message", message.c_str());
        return 0;
    }
    if (!text.empty()) {
        rte_tel_data_start_dict(d);
        rte_tel_data_add_dict_string(d, "result", "refused");
        rte_tel_data_add_dict_string(d, "message", "expected no parameter, or reset");
        return 0;
    }
    std::vector<PauseFigures> all;
    for (const auto& w : app.workers) {
        all.push_back(figures(*w));
    }
    rte_tel_data_start_dict(d);
    const auto column = [&](const char* name, auto value_of) {
        rte_tel_data* c = rte_tel_data_alloc();
        rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
        for (std::size_t w = 0; w < all.size() && w < RTE_TEL_MAX_ARRAY_ENTRIES; ++w) {
            rte_tel_data_add_array_u64(c, value_of(w));
        }
        rte_tel_data_add_dict_container(d, name, c, 0);
    };
    column("worker", [](std::size_t w) { return w; });
    column("longest_iteration_us", [&](std::size_t w) { return all[w].longest_us; });
    column("longest_plan_iteration_us", [&](std::size_t w) { return all[w].longest_plan_us; });
    column("longest_take_up_us", [&](std::size_t w) { return all[w].longest_take_up_us; });
    column("plans_taken", [&](std::size_t w) { return all[w].plans; });
    column("pause_window_ms", [&](std::size_t w) { return all[w].window_ms; });
    return 0;
}

} // namespace ephemera
