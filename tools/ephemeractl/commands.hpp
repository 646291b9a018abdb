// Runs one ephemeractl command against a running ephemera: connect, send the request, check
// the reply's shape, print it, and turn the outcome into the exit status.
#pragma once

#include "reply_shape.hpp"
#include "request.hpp"
#include "telemetry_client.hpp"

#include <chrono>
#include <string>

namespace ephemeractl {

// Exit statuses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1; // the server answered "refused"
inline constexpr int kExitNoReply = 2; // no connection, or a null or malformed reply
inline constexpr int kExitUsage = 64;  // EX_USAGE: bad command line

struct Command {
    Request request;
    Shape shape;
    std::string empty_text; // for Shape::lines: what to print when the list is empty
};

struct Display {
    bool json = false; // print the reply's data as JSON instead of tables
    bool all = false;  // counters: also print the zeros
};

// How long a single send or receive may take. /ephemera/mappings polls every worker's mailbox
// (up to 500 ms each), so this is generous.
inline constexpr std::chrono::milliseconds kSocketTimeout{30000};

// Connects to `socket_path`, runs `command`, prints to stdout and stderr, and returns the
// exit status.
int run_command(const std::string& socket_path, const Command& command, const Display& display);

// What run_command prints for `reply`, the data of the server's answer to `command`, and the
// exit status that goes with it; no socket (the reply fuzzer calls it, tests/fuzz). May throw
// Json::exception on a shape the checks miss, which run_command reports as malformed.
struct Outcome {
    int status = kExitOk;
    std::string out; // for stdout
    std::string err; // for stderr
};
Outcome render_reply(const Json& reply, const Command& command, const Display& display);

// show logging: /ephemera/logging, then each worker's log_records and log_records_dropped
// (/ephemera/stats for the worker count, /ephemera/worker,N for each, at most
// kLoggingWorkersShown of them); --json prints the logging reply with those added as
// "workers": [{"worker", "log_records", "log_records_dropped"}, ...].
inline constexpr std::size_t kLoggingWorkersShown = 64;
int run_show_logging(const std::string& socket_path, const Display& display);

} // namespace ephemeractl
