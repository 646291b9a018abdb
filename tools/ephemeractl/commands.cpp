#include "commands.hpp"

#include "format.hpp"
#include "telemetry_client.hpp"

#include <algorithm>
#include <cstdint>
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
    case Shape::logging:
        return format_logging(data, Json());
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

namespace {

// Each worker's share of the records, or an empty array when a reply does not say (an older
// ephemera, a worker that went away): the totals stand without it.
Json logging_workers(TelemetryClient& client) {
    Json workers = Json::array();
    const Json stats = client.query(stats_request());
    if (!stats.is_object() || !stats.contains("workers") ||
        !stats["workers"].is_number_unsigned()) {
        return workers;
    }
    const auto count =
        std::min<std::uint64_t>(stats["workers"].get<std::uint64_t>(), kLoggingWorkersShown);
    for (std::uint32_t w = 0; w < count; ++w) {
        const Json one = client.query(worker_request(w));
        if (!one.is_object() || !one.contains("log_records") ||
            !one.contains("log_records_dropped") || !one["log_records"].is_number_unsigned() ||
            !one["log_records_dropped"].is_number_unsigned()) {
            return Json::array();
        }
        workers.push_back(Json{{"worker", w},
                               {"log_records", one["log_records"]},
                               {"log_records_dropped", one["log_records_dropped"]}});
    }
    return workers;
}

} // namespace

int run_show_logging(const std::string& socket_path, const Display& display) {
    const Command command{logging_request(), Shape::logging, {}};
    try {
        TelemetryClient client(socket_path, kSocketTimeout);
        const Json reply = client.query(command.request);
        Outcome outcome = render_reply(reply, command, display);
        if (outcome.status == kExitOk) {
            const Json workers = logging_workers(client);
            if (display.json) {
                Json data = reply;
                data["workers"] = workers;
                outcome.out = data.dump(2) + "\n";
            } else {
                outcome.out = format_logging(reply, workers);
            }
        }
        std::fputs(outcome.err.c_str(), stderr);
        std::fputs(outcome.out.c_str(), stdout);
        return outcome.status;
    } catch (const TelemetryError& e) {
        std::fprintf(stderr, "ephemeractl: %s\n", e.what());
        return kExitNoReply;
    } catch (const Json::exception& e) {
        std::fprintf(stderr, "ephemeractl: %s: malformed reply: %s\n",
                     command.request.command.c_str(), e.what());
        return kExitNoReply;
    }
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
