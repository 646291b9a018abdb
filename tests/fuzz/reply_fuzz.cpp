// libFuzzer target: what ephemeractl makes of the messages a telemetry server sends
// (tools/ephemeractl: the greeting, the reply to each command, its shape checks and its
// tables), everything run_command does after the socket.
//
// Input: byte 0 picks the command (and so the shape the reply must have), byte 1 the display
// (bit 0 --json, bit 1 --all) and whether the rest is the whole message (bit 2) or the data
// only, which the target wraps as {"<command>": DATA} so that most inputs reach the checks.
//
// Checked besides the sanitizers: only TelemetryError and, as run_command's backstop,
// Json::exception escape; the exit status is one of 0, 1, 2; status 0 prints whole lines and
// nothing on stderr; any other status says why on stderr.
#include "../../tools/ephemeractl/commands.hpp"
#include "../../tools/ephemeractl/request.hpp"
#include "../../tools/ephemeractl/telemetry_client.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace ephemeractl;

namespace {

[[noreturn]] void violated(const std::string& what) {
    std::fprintf(stderr, "reply fuzz: invariant violated: %s\n", what.c_str());
    std::abort();
}

// Every command ephemeractl sends, with the shape main.cpp gives it.
Command command_for(std::uint8_t selector) {
    switch (selector % 14) {
    case 0:
        return {stats_request(), Shape::counters, {}};
    case 1:
        return {worker_request(selector / 13), Shape::counters, {}};
    case 2:
        return {config_request(), Shape::settings, {}};
    case 3:
        return {ports_request(), Shape::ports, {}};
    case 4:
        return {mappings_request(std::nullopt), Shape::lines, "no live mappings"};
    case 5:
        return {sessions_request(SessionQuery{"100.64.0.11", std::nullopt, 10}), Shape::lines,
                "no matching sessions"};
    case 6:
        return {set_request("timeouts.udp", "600"), Shape::action, {}};
    case 7:
        return {pool_request(true, "198.18.0.102"), Shape::action, {}};
    case 8:
        return {flush_request(FlushFilter{"100.64.0.11", std::nullopt, std::nullopt}),
                Shape::action,
                {}};
    case 9:
        return {reload_request(), Shape::action, {}};
    case 10:
        return {statics_request(), Shape::statics, {}};
    case 11:
        return {static_request(true, "tcp 198.18.0.10:8080 100.64.0.5:80"), Shape::action, {}};
    case 12:
        return {logging_request(), Shape::logging, {}};
    default:
        return {mappings_request(5), Shape::lines, "no live mappings"};
    }
}

void check(const Outcome& o) {
    if (o.status != kExitOk && o.status != kExitRefused && o.status != kExitNoReply) {
        violated("exit status " + std::to_string(o.status));
    }
    if (o.status == kExitOk) {
        if (!o.err.empty()) {
            violated("status 0 with stderr: " + o.err);
        }
        if (!o.out.empty() && o.out.back() != '\n') {
            violated("output does not end in a whole line: " + o.out);
        }
    } else if (o.err.empty()) {
        violated("status " + std::to_string(o.status) + " without a reason on stderr");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const Command command = command_for(data[0]);
    Display display;
    display.json = (data[1] & 1) != 0;
    display.all = (data[1] & 2) != 0;
    const std::string body(reinterpret_cast<const char*>(data + 2), size - 2);
    const std::string message =
        (data[1] & 4) != 0 ? body : "{\"" + command.request.command + "\":" + body + "}";

    try {
        const Greeting greeting = parse_greeting(body, "fuzz.sock");
        if (greeting.max_output_len == 0) {
            violated("a greeting gave max_output_len 0");
        }
    } catch (const TelemetryError&) {
    }
    try {
        check(render_reply(parse_reply(message, command.request.command), command, display));
    } catch (const TelemetryError&) {
    } catch (const Json::exception&) {
    }
    return 0;
}
