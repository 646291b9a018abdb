// A client of DPDK's telemetry v2 socket (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2):
// unix SOCK_SEQPACKET; on connect the server sends one JSON greeting
// {"version":..., "pid":..., "max_output_len": N}, then answers each request string
// "<command>[,<params>]" with one message {"<command>": <data>}, data null when the command
// failed or does not exist.
#pragma once

#include "request.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace ephemeractl {

using Json = nlohmann::ordered_json; // keeps the server's key order for display

// Anything that keeps a request from getting a well-formed reply: no socket, a refused
// connection, a timeout, a truncated or non-JSON message. what() is a full sentence.
class TelemetryError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Owns one file descriptor; closes it on destruction.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    ~UniqueFd();

    [[nodiscard]] int get() const { return fd_; }
    int release() noexcept;

private:
    int fd_ = -1;
};

std::string socket_path_for_prefix(const std::string& prefix);

// DPDK's reply size when the greeting does not say.
inline constexpr std::size_t kDefaultMaxOutputLen = 16384;

// What the client makes of the messages it receives, apart from the socket (and fuzzed as
// such, tests/fuzz). Both throw TelemetryError naming `path` or `command`.
struct Greeting {
    Json json;
    std::size_t max_output_len; // the greeting's, or kDefaultMaxOutputLen when it gives none
};
Greeting parse_greeting(const std::string& text, const std::string& path);
// The data of the reply `text` to `command`: the message must be {"<command>": data}.
Json parse_reply(const std::string& text, const std::string& command);

class TelemetryClient {
public:
    // Connects and reads the greeting. Throws TelemetryError.
    TelemetryClient(const std::string& socket_path, std::chrono::milliseconds timeout);

    // Sends `request` and returns the data of its reply (possibly null). Throws
    // TelemetryError when the reply is not one JSON object keyed by the command.
    Json query(const Request& request);

    [[nodiscard]] const Json& greeting() const { return greeting_; }
    [[nodiscard]] std::size_t max_output_len() const { return max_output_len_; }

private:
    // One message of at most `capacity` bytes; `what` and `limit_note` word the errors.
    std::string receive(std::size_t capacity, const std::string& what,
                        const std::string& limit_note);

    std::string path_;
    UniqueFd fd_;
    Json greeting_;
    std::size_t max_output_len_ = kDefaultMaxOutputLen;
};

} // namespace ephemeractl
