// ephemeractl det: RFC 7422's two functions for an operator, forward (who is this subscriber
// on the outside) and reverse (which subscriber held this pool address and port), computed
// from a config file (offline, e.g. an archived one) or from the running ephemera's
// /ephemera/config reply. No state is consulted: deterministic mode needs none.
#pragma once

#include "commands.hpp"
#include "telemetry_client.hpp"

#include "ephemera/config.hpp"
#include "ephemera/deterministic.hpp"

#include <optional>
#include <string>
#include <variant>

namespace ephemeractl {

struct DetCommand {
    bool reverse = false;
    std::string argument;    // ADDR (forward) or ADDR:PORT (reverse), as given
    std::string config_file; // empty: ask the running ephemera
};

// The map of a config, or why there is none (not in deterministic mode).
std::variant<ephemera::DeterministicMap, std::string>
det_map_from_config(const ephemera::Config& config);
// The map of a /ephemera/config reply, or why there is none (another mode, missing or
// malformed fields).
std::variant<ephemera::DeterministicMap, std::string> det_map_from_reply(const Json& reply);

// The answer for `command` from `map`: exit status, stdout and stderr.
Outcome det_answer(const ephemera::DeterministicMap& map, const DetCommand& command,
                   const Display& display);

// Loads the map (file or socket), answers, prints; returns the exit status.
int run_det(const std::string& socket_path, const DetCommand& command, const Display& display);

} // namespace ephemeractl
