// ephemeractl plan: the refusal rate the pool gives its subscribers at their peak, and the pool
// size, ports per address or block size that would keep it under a target (planner.hpp). The
// distribution of ports in use per subscriber comes from /ephemera/top or a histogram file;
// the pool from /ephemera/config and /ephemera/ports, or from the command line.
#pragma once

#include "commands.hpp"
#include "planner.hpp"
#include "telemetry_client.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace ephemeractl {

struct PlanCommand {
    double target = 0.001;
    std::string histogram_file; // empty: ask the running ephemera
    // Offline (with histogram_file) these describe the pool; pool_size and ports_per_address
    // are then required.
    std::optional<std::uint32_t> pool_size;
    std::optional<std::uint32_t> ports_per_address;
    std::uint32_t workers = 1;
    std::string mode = "dynamic"; // or "blocks"
    std::uint32_t block_size = 256;
    std::uint32_t max_blocks = 8;
};

// The distribution of a /ephemera/top reply or a histogram file: "subscribers", "ports_le"
// (bucket upper bounds; one beyond 65535, an open last bucket, is taken as 65535) and
// "ports_count" (subscribers per bucket, same length). Fills
// setup.demand and setup.subscribers, or says what is wrong.
std::string read_histogram(const Json& data, planner::Setup& setup);

// The pool of a /ephemera/config reply (pool_addresses, workers, pool_mode, block_size,
// max_blocks, port_range) and, when not null, a /ephemera/ports reply (the usable ports per
// address: the fewest of any address and protocol, so reserved ports count). Says what is
// wrong, or why the mode cannot be planned (deterministic).
std::string read_pool(const Json& config, const Json& ports, planner::Setup& setup);

// The report of a plan: text lines, or the same as JSON.
std::string format_plan(const planner::Setup& setup, const planner::Plan& plan, bool json);

// Reads the file or asks the running ephemera, plans, prints; returns the exit status.
Outcome run_plan(const std::string& socket_path, const PlanCommand& command,
                 const Display& display);

} // namespace ephemeractl
