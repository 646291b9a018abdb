// What a run measured, as JSON (for bench/load-run.sh) and as a short table.
#pragma once

#include "run.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace loadgen {

struct ReportContext {
    std::string in_port;
    std::string out_port;
    std::string in_socket;
    std::string out_socket;
    std::string pool;
    std::string port_range;
};

nlohmann::json make_report(const RunConfig& cfg, const RunResult& r, std::uint64_t tsc_hz,
                           const ReportContext& ctx);
void print_report(const nlohmann::json& j);

// Mistranslations over the whole run (every reason that must stay at zero).
std::uint64_t mistranslations(const Snapshot& s);

} // namespace loadgen
