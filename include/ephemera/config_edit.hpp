// Changing a running configuration. Every change goes through the same parser and checks as
// a config file: the running Config is written out as TOML, the one key is changed, and the
// result is parsed again, so a runtime change is refused for exactly the reasons (and with
// the same words) a file would be.
#pragma once

#include "ephemera/config.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace ephemera {

// The config as TOML that parse_config() reads back to an equal Config.
std::string config_to_toml(const Config& config);

// `current` with one key ("timeouts.udp", "filtering.mode", "pool.port_range", ...) set to
// `value`; a key of a nested table has two dots ("pool.blocks.max_blocks"). pool.mode and
// pool.deterministic.* are refused outright: they need a restart. The value is TOML ("600", "true",
// "\"address\"", "[\"1.2.3.4\"]"); a bare word that is not valid TOML is taken as a string, so
// `filtering.mode address` works. logging.events also takes the groups comma-separated
// ("mapping,block", or "none"); logging.syslog, logging.ipfix and logging.archive.* are
// refused: collectors and the archive change in the file (reload). metrics.* is refused: it
// needs a restart.
std::variant<Config, ConfigError> edit_config(const Config& current, std::string_view key,
                                              std::string_view value);

// The pool with one address added or removed.
std::variant<Config, ConfigError> edit_pool(const Config& current, std::string_view address,
                                            bool add);

// The config with one static mapping added, or the one with this external endpoint removed
// (a forward: protocol, address and port; 1:1: its external address). An addition is refused
// for exactly the reasons a [[static]] entry of the file would be.
std::variant<Config, ConfigError> edit_static(const Config& current, const StaticMapping& entry,
                                              bool add);

// Refuses what cannot change while traffic flows: the ports, addresses and next hop the
// dataplane was started with, the table sizes (limits.max_sessions, logging.ring_size), the
// /metrics listener (metrics.listen), the allocation mode, and in deterministic mode everything
// its formula reads (the subscriber prefix, min_ports, the pool and port_range). Static
// mappings may change in every mode.
// nullopt: allowed.
std::optional<ConfigError> check_runtime_change(const Config& from, const Config& to);

bool operator==(const Timeouts& a, const Timeouts& b);

} // namespace ephemera
