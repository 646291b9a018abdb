// What each reply's data must look like before ephemeractl prints it.
#pragma once

#include "telemetry_client.hpp"

#include <optional>
#include <string>

namespace ephemeractl {

// The shape the reply's data must have, which also picks how it is printed.
enum class Shape {
    counters, // flat dict of ints: show stats, show worker N
    settings, // flat dict of strings and ints: show config
    ports,    // dict address -> dict of port counts: show ports
    lines,    // array of strings: mappings, sessions
    action,   // {"result": "ok"|"refused", "message": ...}: set, pool, flush, reload, reset
    pauses,   // dict of equally long int arrays, one per field, in worker order: show pauses
    statics,  // dict of equally long arrays, one per field, in config order: show static
    logging,  // totals, and per sink equally long arrays: show logging
};

// The fields of /ephemera/pauses, each an array with one entry per worker.
inline constexpr const char* kPauseFields[] = {
    "worker",      "longest_iteration_us", "longest_plan_iteration_us", "longest_take_up_us",
    "plans_taken", "pause_window_ms"};

// The fields of /ephemera/static, each an array with one entry per mapping; the ports are
// integers (0 for 1:1), the rest strings. A "total" integer may follow: the mappings there are,
// of which the arrays hold the first.
inline constexpr const char* kStaticFields[] = {"kind",          "protocol", "external",
                                                "external_port", "inside",   "inside_port"};

// The fields of /ephemera/logging: totals (integers), then one array per field with one entry
// per sink, "sink" (its name, a string) first and the counts (integers) after it.
inline constexpr const char* kLoggingTotals[] = {"log_records", "log_records_dropped",
                                                 "records_taken"};
inline constexpr const char* kSinkFields[] = {"sink",          "records_sent", "records_dropped",
                                              "messages_sent", "bytes_sent",   "errors"};

// Why `data` does not have `shape`, or nothing when it does.
std::optional<std::string> shape_error(const Json& data, Shape shape);

// /ephemera/ports as address -> {udp_free, udp_usable, tcp_free, tcp_usable, icmp_free,
// icmp_usable, held, draining}. DPDK 22.11 telemetry cannot nest a dict in a dict, so the server
// may send the same table column-wise: {"address": [A, ...], "udp_free": [n, ...], ...}, one
// array per field, in address order; that form is turned into the first. Anything else comes
// back unchanged, for shape_error to name what is wrong.
Json ports_by_address(const Json& data);

// Whether `data` is a {"result": "refused", "message": ...} dict. Query commands (sessions with
// a filter the server will not take, say) may answer with one instead of their data.
bool is_refusal(const Json& data);

} // namespace ephemeractl
