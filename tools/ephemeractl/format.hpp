// Human-readable renderings of telemetry data. Each function takes data whose shape the caller
// has checked (see commands.cpp) and returns whole lines, each ending in '\n'.
#pragma once

#include "telemetry_client.hpp"

#include <string>
#include <vector>

namespace ephemeractl {

enum class Align { left, right };

struct Column {
    std::string header; // empty for every column: no header line
    Align align;
};

using Row = std::vector<std::string>;

// Columns two spaces apart, each as wide as its widest cell; no trailing spaces.
std::string render_table(const std::vector<Column>& columns, const std::vector<Row>& rows);

// The keys of the per-protocol port counts in each /ephemera/ports entry.
inline constexpr const char* kPortProtocols[] = {"udp", "tcp", "icmp"};

// A flat dict of counters (show stats, show worker N) as "name  value" lines, values aligned
// on the right. Zero counters are left out unless `all`; gauges (live_*, workers,
// ports_in_hold_down, ...) are always shown. A last line says how many zeros were hidden.
std::string format_counters(const Json& counters, bool all);

// A flat dict of settings (show config) as "key  value" lines, strings without quotes.
std::string format_settings(const Json& settings);

// /ephemera/ports: one row per pool address (and a total row when there are several) with
// used/usable and utilisation per protocol, where used = usable - free, then held and draining.
std::string format_ports(const Json& ports);

// Utilisation of `used` out of `usable` as "12.3%", "-" when nothing is usable.
std::string format_utilisation(long long used, long long usable);

// /ephemera/pauses: one row per worker (longest iteration, longest that took up a config
// change, longest spent taking one up, plans taken, window length), and an "all" row with the
// maxima, the plan total and the shortest window when there are several workers.
std::string format_pauses(const Json& pauses);

// /ephemera/static: one row per mapping (kind, protocol, external, inside; a port forward's
// endpoints with their ports), "no static mappings" when there are none, and a last line when
// the reply holds only the first of them.
std::string format_statics(const Json& statics);

// /ephemera/logging: the records the workers handed over and dropped, then one row per sink
// (records sent and dropped, messages, bytes, errors), "no sinks" when logging is off. When
// `workers` is an array of {"worker", "log_records", "log_records_dropped"} dicts, a table of
// them follows.
std::string format_logging(const Json& logging, const Json& workers);

// An array of strings (mappings, sessions), one per line; `empty_text` when there are none.
std::string format_lines(const Json& lines, const std::string& empty_text);

} // namespace ephemeractl
