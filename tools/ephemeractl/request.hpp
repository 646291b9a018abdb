// What ephemeractl asks the server: the telemetry request strings, and the client-side checks
// on the arguments that go into them. Pure functions, no socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ephemeractl {

// One telemetry request: "<command>" or "<command>,<params>". The reply carries `command` as
// its only key.
struct Request {
    std::string command; // e.g. "/ephemera/worker"
    std::string params;  // empty: nothing after the command, not even the comma

    [[nodiscard]] std::string wire() const {
        return params.empty() ? command : command + "," + params;
    }
};

// DPDK 22.11 reads a request into a 1024-byte buffer; longer ones would be cut.
inline constexpr std::size_t kMaxRequestLen = 1023;

// Argument checks. Each returns an empty string when `text` is valid, else the reason, worded
// to follow the value in a message ("300.1.1.1: ...").
std::string check_ipv4(std::string_view text);     // dotted quad, no leading zeros
std::string check_endpoint(std::string_view text); // ADDR:PORT, port 0-65535
std::string check_positive(std::string_view text); // decimal integer >= 1
std::string check_index(std::string_view text);    // decimal integer >= 0 (a worker number)
std::string check_set_key(std::string_view text);  // dotted config key, e.g. timeouts.udp
std::string check_set_value(std::string_view text);

struct SessionQuery {
    std::optional<std::string> subscriber; // ADDR
    std::optional<std::string> external;   // ADDR:PORT
    std::optional<std::uint32_t> limit;
};

struct FlushFilter {
    std::optional<std::string> subscriber; // ADDR
    std::optional<std::string> external;   // ADDR:PORT
    std::optional<std::string> address;    // pool ADDR
    [[nodiscard]] bool empty() const { return !subscriber && !external && !address; }
};

Request config_request();
Request stats_request();
Request ports_request();
Request worker_request(std::uint32_t worker);
Request mappings_request(std::optional<std::uint32_t> limit);
Request sessions_request(const SessionQuery& query);
// Port blocks in use (blocks mode): query.external is not used.
Request blocks_request(const SessionQuery& query);
Request set_request(std::string_view key, std::string_view value);
Request pool_request(bool add, std::string_view address);
// The static mappings (no parameter), or one added or removed: `spec` in the command line's
// spelling, "tcp A:P I:P" or "A I" to add, "tcp A:P" or "A" to remove (parse_static_spec).
Request statics_request();
Request static_request(bool add, std::string_view spec);
Request flush_request(const FlushFilter& filter);
Request reload_request();
Request pauses_request();
Request logging_request();
Request alarms_request();
Request pauses_reset_request();

} // namespace ephemeractl
