#include "app.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

namespace ephemera {

std::uint64_t counter_total(const App& app, Counter c) {
    std::uint64_t total = 0;
    for (const auto& w : app.workers) {
        total += w->counters().get(c);
    }
    return total;
}

namespace {

nlohmann::json counters_json(const CounterBlock& block) {
    nlohmann::json j = nlohmann::json::object();
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        j[std::string(kCounterNames[i])] = block.get(static_cast<Counter>(i));
    }
    return j;
}

} // namespace

void print_stats(const App& app) {
    std::printf("\n%-28s %14s", "counter", "total");
    for (const auto& w : app.workers) {
        std::printf(" %12s%u", "worker", static_cast<unsigned>(w->id()));
    }
    std::printf("\n");
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        const auto c = static_cast<Counter>(i);
        const std::uint64_t total = counter_total(app, c);
        if (total == 0) {
            continue; // a wall of zeros hides what happened
        }
        std::printf("%-28s %14llu", kCounterNames[i].data(),
                    static_cast<unsigned long long>(total));
        for (const auto& w : app.workers) {
            std::printf(" %13llu", static_cast<unsigned long long>(w->counters().get(c)));
        }
        std::printf("\n");
    }
    std::fflush(stdout);
}

bool write_stats_json(const App& app, const std::string& path) {
    nlohmann::json j;
    nlohmann::json totals = nlohmann::json::object();
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        totals[std::string(kCounterNames[i])] = counter_total(app, static_cast<Counter>(i));
    }
    j["totals"] = totals;
    nlohmann::json workers = nlohmann::json::array();
    for (const auto& w : app.workers) {
        nlohmann::json wj = counters_json(w->counters());
        wj["worker"] = w->id();
        wj["live_sessions"] = w->translator().live_sessions();
        wj["live_mappings"] = w->translator().live_mappings();
        workers.push_back(wj);
    }
    j["workers"] = workers;
    std::ofstream out(path);
    out << j.dump(2) << "\n";
    return static_cast<bool>(out);
}

} // namespace ephemera
