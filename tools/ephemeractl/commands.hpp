// Runs one ephemeractl command against a running ephemera: connect, send the request, check
// the reply's shape, print it, and turn the outcome into the exit status.
#pragma once

#include "reply_shape.hpp"
#include "request.hpp"

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

} // namespace ephemeractl
