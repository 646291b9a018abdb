// The parser's building blocks that config.cpp shares with config_static.cpp: refusals, typed
// access to toml++ nodes, and the address and port checks every table gets. Internal to the
// config library.
#pragma once

#include "ephemera/config.hpp"

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace ephemera::config_parse {

// Thrown by the checks and turned into a ConfigError by parse_config. Exceptions keep the
// checks linear; nothing here is on a packet path.
struct Refusal {
    std::string key;
    std::string reason;
};

[[noreturn]] void refuse(std::string key, std::string reason);
[[noreturn]] void refuse_type(const std::string& key, std::string_view expected,
                              const toml::node& node);

std::string quoted(std::string_view text);
std::string element_key(std::string_view key, std::size_t index);   // "key[index]"
std::string join_key(std::string_view table, std::string_view key); // "table.key"

void check_known_keys(const toml::table& table, std::string_view table_name,
                      std::initializer_list<std::string_view> known);
std::string string_value(const toml::node& node, const std::string& key);
std::int64_t integer_value(const toml::node& node, const std::string& key);
bool bool_value(const toml::node& node, const std::string& key);
const toml::table* optional_table(const toml::table& root, std::string_view name);
// table.name as an integer in lo..hi, or nothing if absent. `unit` follows hi in the refusal.
std::optional<std::int64_t> optional_integer(const toml::table& table, std::string_view table_name,
                                             std::string_view name, std::int64_t lo,
                                             std::int64_t hi, std::string_view unit = {});
std::optional<bool> optional_bool(const toml::table& table, std::string_view table_name,
                                  std::string_view name);

// Why an address cannot be used as a pool address, gateway or next hop; empty if it can.
std::string unusable_address_reason(Ipv4Addr addr);

std::string range_text(PortRange r); // "N" or "LO-HI"
// Decimal digits only; anything longer than five digits reads as an out-of-range port.
std::optional<std::uint32_t> parse_port_number(std::string_view text);

// [[static]] into cfg.statics, checked against the rest of cfg (config_static.cpp).
void parse_statics(const toml::table& root, Config& cfg);
// [logging] into cfg.logging (config_logging.cpp).
void parse_logging(const toml::table& root, Config& cfg);
std::string describe_logging(const Config& cfg);
// [alarms] into cfg.alarms (config_alarms.cpp).
void parse_alarms(const toml::table& root, Config& cfg);
std::string describe_alarms(const Config& cfg);
// [ha] into cfg.ha (config_ha.cpp).
void parse_ha(const toml::table& root, Config& cfg);
std::string describe_ha(const Config& cfg);
// [metrics] into cfg.metrics (config_metrics.cpp).
void parse_metrics(const toml::table& root, Config& cfg);
std::string describe_metrics(const Config& cfg);

// The statics' lines of describe_config(), each ending in '\n'.
std::string describe_statics(const Config& cfg);

} // namespace ephemera::config_parse
