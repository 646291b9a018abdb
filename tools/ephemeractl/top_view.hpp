// ephemeractl top: subscribers by ports in use and by refusals, from /ephemera/top, redrawn
// every second in a terminal (or once, for scripts).
#pragma once

#include "commands.hpp"
#include "telemetry_client.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace ephemeractl {

struct TopOptions {
    bool once = false;
    std::size_t rows = 20;
    std::string by = "ports"; // or "refusals"
};

// The columns of each top N list in /ephemera/top, after its prefix ("top_ports_",
// "top_refusals_"); the first two are strings, the rest integers.
inline constexpr const char* kTopFields[] = {"subscriber", "pool_address", "udp",      "tcp",
                                             "icmp",       "sessions",     "refusals", "blocks"};

// Why `data` is not a /ephemera/top reply, or nothing when it is.
std::optional<std::string> top_shape_error(const Json& data);

// The view: totals, the top `rows` of the chosen list, and the histograms as bar charts.
std::string format_top(const Json& data, const TopOptions& options);

// Queries /ephemera/top and prints it: once, or every second after clearing the screen until
// Ctrl-C (exit status 0). Exit statuses as run_command's.
int run_top(const std::string& socket_path, const TopOptions& options, const Display& display);

} // namespace ephemeractl
