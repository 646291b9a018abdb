// ephemeractl whois ADDR:PORT [--at TIME]: which subscriber held a public address and port at a
// given time, from the sources in order: the running ephemera's live table (when its telemetry
// socket answers and TIME falls in its life), the archive (--archive DIR, or the running
// config's logging.archive.path), then the deterministic formula (--config FILE, or the running
// config in pool.mode deterministic). The answer comes with the records that prove it.
#pragma once

#include "commands.hpp"
#include "telemetry_client.hpp"

#include "logging/whois.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace ephemeractl {

struct WhoisCommand {
    std::string endpoint;   // ADDR:PORT, checked by the command line
    std::string at = "now"; // RFC 3339 UTC, as given, or "now"
    std::string proto;      // "", "udp", "tcp" or "icmp"
    std::string archive;    // empty: not consulted
    std::string config_file;
};

// "": fine; else why TIME is not one --at takes (RFC 3339 UTC, or "now").
std::string check_time(std::string_view text);

// One line of /ephemera/sessions: "udp 100.64.0.10:40000 as 198.18.0.10:51234 <->
// 203.0.113.5:53 idle=3s [established|transitory] worker=0".
struct LiveSession {
    std::uint8_t proto = 0;
    std::uint32_t inside = 0; // host byte order
    std::uint16_t inside_port = 0;
    std::uint32_t external = 0;
    std::uint16_t external_port = 0;
    std::uint32_t idle_s = 0;
    unsigned worker = 0;
};
std::optional<LiveSession> parse_session_line(std::string_view line);

// The live table's answer from a /ephemera/sessions reply taken at `now_ms`: each mapping
// (protocol, inside endpoint) whose sessions hold the endpoint, when `q.at_ms` lies between
// its sessions' last packet and now, with those session lines as proof; otherwise a note of
// who holds it now.
ephemera::logging::WhoisResult
live_whois_answer(const Json& reply, const ephemera::logging::WhoisQuery& q, std::uint64_t now_ms);

// Exit 0: answered; 1: nobody held it (or no source could say); 2: the config file refused;
// 64: no source (no running ephemera at `socket_path`, no --archive, no --config).
Outcome run_whois(const WhoisCommand& command, const std::string& socket_path);

} // namespace ephemeractl
