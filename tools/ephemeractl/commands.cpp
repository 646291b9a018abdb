#include "commands.hpp"

#include "format.hpp"
#include "telemetry_client.hpp"

#include <cstdio>
#include <string>

namespace ephemeractl {

namespace {

std::string human(const Json& data, const Command& command, const Display& display) {
    switch (command.shape) {
    case Shape::counters:
        return format_counters(data, display.all);
    case Shape::settings:
        return format_settings(data);
    case Shape::ports:
        return format_ports(data);
    case Shape::lines:
        return format_lines(data, command.empty_text);
    case Shape::pauses:
        return format_pauses(data);
    case Shape::statics:
        return format_statics(data);
    case Shape::action:
        return data.value("message", data["result"].get<std::string>()) + "\n";
    }
    return {};
}

int execute(TelemetryClient& client, const Command& command, const Display& display) {
    const Outcome outcome = render_reply(client.query(command.request), command, display);
    std::fputs(outcome.err.c_str(), stderr);
    std::fputs(outcome.out.c_str(), stdout);
    return outcome.status;
}

} // namespace

Outcome render_reply(const Json& reply, const Command& command, const Display& display) {
    const std::string& name = command.request.command;
    if (reply.is_null()) {
        return {kExitNoReply, "",
                "ephemeractl: " + name +
                    ": no data: the command failed or this ephemera does not know it\n"};
    }
    if (is_refusal(reply)) {
        return {kExitRefused, display.json ? reply.dump(2) + "\n" : "",
                "ephemeractl: refused: " + reply.value("message", std::string("(no message)")) +
                    "\n"};
    }
    const Json data = command.shape == Shape::ports ? ports_by_address(reply) : reply;
    if (const auto why = shape_error(data, command.shape)) {
        return {kExitNoReply, "", "ephemeractl: " + name + ": malformed reply: " + *why + "\n"};
    }
    // --json prints what the server sent, not what it was normalised to.
    return {kExitOk, display.json ? reply.dump(2) + "\n" : human(data, command, display), ""};
}

int run_command(const std::string& socket_path, const Command& command, const Display& display) {
    try {
        TelemetryClient client(socket_path, kSocketTimeout);
        return execute(client, command, display);
    } catch (const TelemetryError& e) {
        std::fprintf(stderr, "ephemeractl: %s\n", e.what());
        return kExitNoReply;
    } catch (const Json::exception& e) {
        // Shapes are checked before printing; this is the backstop for what they miss.
        std::fprintf(stderr, "ephemeractl: %s: malformed reply: %s\n",
                     command.request.command.c_str(), e.what());
        return kExitNoReply;
    }
}

} // namespace ephemeractl
