// TOML configuration: parse the file with toml++, then check every key, type and value so that
// the dataplane only ever sees a Config that makes sense. The first problem found is refused
// with the file, the dotted key and a reason that says what is wrong and what would be right.
#include "config_parse.hpp"

#include "ephemera/config.hpp"
#include "ephemera/deterministic.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace ephemera {

std::string_view filtering_mode_name(FilteringMode m) {
    switch (m) {
    case FilteringMode::endpoint_independent:
        return "endpoint-independent";
    case FilteringMode::address_dependent:
        return "address";
    case FilteringMode::address_port_dependent:
        break;
    }
    return "address-and-port";
}

std::string_view allocation_mode_name(AllocationMode m) {
    switch (m) {
    case AllocationMode::dynamic:
        return "dynamic";
    case AllocationMode::blocks:
        return "blocks";
    case AllocationMode::deterministic:
        break;
    }
    return "deterministic";
}

std::string_view checksum_offload_name(ChecksumOffloadSetting s) {
    switch (s) {
    case ChecksumOffloadSetting::automatic:
        return "auto";
    case ChecksumOffloadSetting::ipv4:
        return "ipv4";
    case ChecksumOffloadSetting::off:
        break;
    }
    return "off";
}

std::string ConfigError::to_string() const {
    std::string out = file;
    out += ": ";
    if (!key.empty()) {
        out += key;
        out += ": ";
    }
    out += reason;
    return out;
}

namespace {

constexpr std::size_t kMaxPoolAddresses = 65535;
constexpr std::uint32_t kMinPortRangeSize = 64;
constexpr std::int64_t kMaxTimeout = 86400 * 7;
constexpr std::int64_t kMinMaxSessions = 1024;
constexpr std::int64_t kMaxMaxSessions = std::int64_t{1} << 28;
constexpr std::int64_t kMaxPortHoldDown = 3600;
constexpr std::int64_t kMaxPort = 65535;
constexpr std::int64_t kMaxRate = 1000000; // mapping rate and burst, ICMP error rate

} // namespace

// The helpers config_static.cpp shares (config_parse.hpp), then this file's own.
namespace config_parse {

[[noreturn]] void refuse(std::string key, std::string reason) {
    throw Refusal{std::move(key), std::move(reason)};
}

std::string quoted(std::string_view text) {
    std::string out = "\"";
    out += text;
    out += '"';
    return out;
}

std::string type_phrase(toml::node_type type) {
    switch (type) {
    case toml::node_type::table:
        return "a table";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a floating-point number";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::date:
        return "a date";
    case toml::node_type::time:
        return "a time";
    case toml::node_type::date_time:
        return "a date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

[[noreturn]] void refuse_type(const std::string& key, std::string_view expected,
                              const toml::node& node) {
    refuse(key, "expected " + std::string{expected} + ", got " + type_phrase(node.type()));
}

std::string element_key(std::string_view key, std::size_t index) {
    return std::string{key} + "[" + std::to_string(index) + "]";
}

std::string join_key(std::string_view table, std::string_view key) {
    return std::string{table} + "." + std::string{key};
}

// ---- typed access ------------------------------------------------------------------------

const toml::table* optional_table(const toml::table& root, std::string_view name) {
    const toml::node* node = root.get(name);
    if (node == nullptr) {
        return nullptr;
    }
    const toml::table* table = node->as_table();
    if (table == nullptr) {
        refuse_type(std::string{name}, "a table", *node);
    }
    return table;
}

const toml::table& required_table(const toml::table& root, std::string_view name) {
    const toml::table* table = optional_table(root, name);
    if (table == nullptr) {
        refuse(std::string{name}, "missing required table [" + std::string{name} + "]");
    }
    return *table;
}

void check_known_keys(const toml::table& table, std::string_view table_name,
                      std::initializer_list<std::string_view> known) {
    for (auto&& [key, node] : table) {
        (void)node;
        bool found = false;
        for (std::string_view k : known) {
            found = found || key.str() == k;
        }
        if (!found) {
            refuse(table_name.empty() ? std::string{key.str()} : join_key(table_name, key.str()),
                   "unknown key");
        }
    }
}

std::string string_value(const toml::node& node, const std::string& key) {
    const auto* value = node.as_string();
    if (value == nullptr) {
        refuse_type(key, "a string", node);
    }
    return value->get();
}

std::int64_t integer_value(const toml::node& node, const std::string& key) {
    const auto* value = node.as_integer();
    if (value == nullptr) {
        refuse_type(key, "an integer", node);
    }
    return value->get();
}

bool bool_value(const toml::node& node, const std::string& key) {
    const auto* value = node.as_boolean();
    if (value == nullptr) {
        refuse_type(key, "a boolean", node);
    }
    return value->get();
}

// table.name as an integer in lo..hi, or nothing if absent. `unit` follows hi in the refusal
// ("must be between 0 and 3600 s, got 3601").
std::optional<std::int64_t> optional_integer(const toml::table& table, std::string_view table_name,
                                             std::string_view name, std::int64_t lo,
                                             std::int64_t hi, std::string_view unit) {
    const toml::node* node = table.get(name);
    if (node == nullptr) {
        return std::nullopt;
    }
    const std::string key = join_key(table_name, name);
    const std::int64_t value = integer_value(*node, key);
    if (value < lo || value > hi) {
        refuse(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                        std::string{unit} + ", got " + std::to_string(value));
    }
    return value;
}

// table.name as a boolean, or nothing if absent.
std::optional<bool> optional_bool(const toml::table& table, std::string_view table_name,
                                  std::string_view name) {
    const toml::node* node = table.get(name);
    if (node == nullptr) {
        return std::nullopt;
    }
    return bool_value(*node, join_key(table_name, name));
}

const toml::node& required_key(const toml::table& table, std::string_view table_name,
                               std::string_view name) {
    const toml::node* node = table.get(name);
    if (node == nullptr) {
        refuse(join_key(table_name, name), "missing required key");
    }
    return *node;
}

// ---- addresses ---------------------------------------------------------------------------

// Why an address cannot be used as a pool address, gateway or next hop; empty if it can.
std::string unusable_address_reason(Ipv4Addr addr) {
    const std::uint32_t v = addr.value();
    if (v == 0) {
        return "is the unspecified address 0.0.0.0";
    }
    if (v == 0xffffffffu) {
        return "is the limited broadcast address 255.255.255.255";
    }
    if ((v >> 28) == 0xe) {
        return "is a multicast address (224.0.0.0/4)";
    }
    if ((v >> 24) == 127) {
        return "is a loopback address (127.0.0.0/8)";
    }
    return {};
}

Ipv4Addr address_value(const toml::node& node, const std::string& key) {
    const std::string text = string_value(node, key);
    const auto addr = Ipv4Addr::parse(text);
    if (!addr) {
        refuse(key, quoted(text) + " is not an IPv4 address (expected a dotted quad such as "
                                   "198.18.0.1, without leading zeros)");
    }
    if (const std::string why = unusable_address_reason(*addr); !why.empty()) {
        refuse(key, text + " " + why);
    }
    return *addr;
}

// One pool entry, "a.b.c.d" or "a.b.c.d/len" with len in 16..32, expanded to its addresses:
// every address of a /31 or /32, all but the network and broadcast addresses otherwise.
std::vector<Ipv4Addr> expand_pool_entry(const std::string& text, const std::string& key) {
    const std::size_t slash = text.find('/');
    const std::string_view addr_text = std::string_view{text}.substr(0, slash);
    const auto addr = Ipv4Addr::parse(addr_text);
    if (!addr) {
        refuse(key, quoted(text) +
                        " is not an IPv4 address or prefix (expected a dotted quad such as "
                        "198.18.0.100, or a prefix such as 203.0.113.0/30)");
    }
    if (slash == std::string::npos) {
        if (const std::string why = unusable_address_reason(*addr); !why.empty()) {
            refuse(key, text + " " + why + "; not usable as a public address");
        }
        return {*addr};
    }

    const std::string_view len_text = std::string_view{text}.substr(slash + 1);
    unsigned len = 0;
    bool digits_ok =
        !len_text.empty() && len_text.size() <= 2 && !(len_text.size() == 2 && len_text[0] == '0');
    for (char c : len_text) {
        digits_ok = digits_ok && c >= '0' && c <= '9';
        len = len * 10 + static_cast<unsigned>(c - '0');
    }
    if (!digits_ok) {
        refuse(key, quoted(text) + " has a bad prefix length (expected /16 to /32)");
    }
    if (len < 16 || len > 32) {
        refuse(key, quoted(text) + ": prefix length /" + std::to_string(len) +
                        " is not allowed (expected /16 to /32)");
    }
    const std::uint32_t host_mask = len == 32 ? 0u : (0xffffffffu >> len);
    if ((addr->value() & host_mask) != 0) {
        refuse(key, quoted(text) + " has host bits set (the prefix starts at " +
                        Ipv4Addr{addr->value() & ~host_mask}.to_string() + ")");
    }
    std::uint32_t first = addr->value();
    std::uint32_t last = first | host_mask;
    if (len < 31) {
        ++first; // network address
        --last;  // broadcast address
    }
    std::vector<Ipv4Addr> out;
    out.reserve(last - first + 1);
    for (std::uint32_t v = first;; ++v) {
        if (const std::string why = unusable_address_reason(Ipv4Addr{v}); !why.empty()) {
            refuse(key, quoted(text) + " contains " + Ipv4Addr{v}.to_string() + ", which " + why +
                            "; not usable as a public address");
        }
        out.emplace_back(v);
        if (v == last) {
            break;
        }
    }
    return out;
}

// ---- ports -------------------------------------------------------------------------------

std::string range_text(PortRange r) {
    if (r.lo == r.hi) {
        return std::to_string(r.lo);
    }
    return std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

// A port or port range as written, before bounds checks.
struct PortSpan {
    std::uint32_t lo;
    std::uint32_t hi;
};

// Decimal digits only; anything longer than five digits reads as an out-of-range port.
std::optional<std::uint32_t> parse_port_number(std::string_view text) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    if (text.size() > 5) {
        return 100000;
    }
    std::uint32_t value = 0;
    for (char c : text) {
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    return value;
}

} // namespace config_parse

using namespace config_parse;

namespace {

// "N" (if single_allowed) or "LO-HI": decimal digits only, no signs or spaces.
std::optional<PortSpan> parse_port_span(std::string_view text, bool single_allowed) {
    const std::size_t dash = text.find('-');
    if (dash == std::string_view::npos) {
        if (!single_allowed) {
            return std::nullopt;
        }
        const auto port = parse_port_number(text);
        if (!port) {
            return std::nullopt;
        }
        return PortSpan{*port, *port};
    }
    const auto lo = parse_port_number(text.substr(0, dash));
    const auto hi = parse_port_number(text.substr(dash + 1));
    if (!lo || !hi) {
        return std::nullopt;
    }
    return PortSpan{*lo, *hi};
}

// Bounds shared by port_range and reserved: 1..65535, lo <= hi.
PortRange checked_span(PortSpan span, const std::string& text, const std::string& key) {
    if (span.lo == 0) {
        refuse(key, quoted(text) + ": port 0 is not allowed (ports start at 1)");
    }
    if (span.lo > 65535 || span.hi > 65535) {
        refuse(key, quoted(text) + ": ports must be at most 65535");
    }
    if (span.lo > span.hi) {
        refuse(key, quoted(text) + " is inverted: its low end is above its high end (write " +
                        std::to_string(span.hi) + "-" + std::to_string(span.lo) + ")");
    }
    return PortRange{static_cast<std::uint16_t>(span.lo), static_cast<std::uint16_t>(span.hi)};
}

std::string preset_names() {
    std::string out;
    for (const auto& preset : kPortRangePresets) {
        if (!out.empty()) {
            out += ", ";
        }
        out += preset.name;
    }
    return out;
}

void parse_port_range(const toml::node& node, Config& cfg) {
    const std::string key = "pool.port_range";
    const std::string text = string_value(node, key);
    for (const auto& preset : kPortRangePresets) {
        if (text == preset.name) {
            cfg.port_range = preset.range;
            cfg.port_range_name = text;
            return;
        }
    }
    const auto span = parse_port_span(text, false);
    if (!span) {
        refuse(key, "unknown port range preset " + quoted(text) + " (expected one of " +
                        preset_names() + ", or an explicit \"lo-hi\" such as \"40000-50000\")");
    }
    const PortRange range = checked_span(*span, text, key);
    if (range.size() < kMinPortRangeSize) {
        refuse(key, quoted(text) + " is too small: " + std::to_string(range.size()) +
                        " ports, at least " + std::to_string(kMinPortRangeSize) +
                        " are needed to share among workers");
    }
    cfg.port_range = range;
    cfg.port_range_name = text;
}

void parse_reserved(const toml::node& node, Config& cfg) {
    const std::string key = "pool.reserved";
    const toml::array* array = node.as_array();
    if (array == nullptr) {
        refuse_type(key, "an array", node);
    }
    std::uint32_t reserved_total = 0;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const std::string ekey = element_key(key, i);
        const std::string text = string_value(*array->get(i), ekey);
        const auto span = parse_port_span(text, true);
        if (!span) {
            refuse(ekey,
                   quoted(text) + " is not a port or port range (expected \"55555\" or \"lo-hi\")");
        }
        const PortRange range = checked_span(*span, text, ekey);
        if (!cfg.port_range.contains(range.lo) || !cfg.port_range.contains(range.hi)) {
            refuse(ekey, range_text(range) + " is outside port_range " +
                             range_text(cfg.port_range) + " (" + cfg.port_range_name + ")");
        }
        for (std::size_t j = 0; j < cfg.reserved.size(); ++j) {
            if (cfg.reserved[j].overlaps(range)) {
                refuse(ekey, range_text(range) + " overlaps " + element_key(key, j) + " (" +
                                 range_text(cfg.reserved[j]) + ")");
            }
        }
        cfg.reserved.push_back(range);
        reserved_total += range.size();
    }
    if (reserved_total >= cfg.port_range.size()) {
        refuse(key, "reserved ports cover the whole port_range " + range_text(cfg.port_range) +
                        ": no port left to allocate");
    }
}

// ---- allocation modes --------------------------------------------------------------------

std::string mode_names() {
    std::string out;
    for (AllocationMode m :
         {AllocationMode::dynamic, AllocationMode::blocks, AllocationMode::deterministic}) {
        out += out.empty() ? "" : ", ";
        out += quoted(allocation_mode_name(m));
    }
    return out;
}

void parse_mode(const toml::table& pool, Config& cfg) {
    const toml::node* node = pool.get("mode");
    if (node == nullptr) {
        return;
    }
    const std::string text = string_value(*node, "pool.mode");
    for (AllocationMode m :
         {AllocationMode::dynamic, AllocationMode::blocks, AllocationMode::deterministic}) {
        if (text == allocation_mode_name(m)) {
            cfg.allocation = m;
            return;
        }
    }
    refuse("pool.mode",
           "unknown allocation mode " + quoted(text) + " (expected one of " + mode_names() + ")");
}

// A table of another mode's settings would be ignored; refusing it keeps the file honest.
const toml::table* mode_table(const toml::table& pool, std::string_view name, AllocationMode mode,
                              const Config& cfg) {
    const toml::node* node = pool.get(name);
    if (node == nullptr) {
        return nullptr;
    }
    const std::string key = join_key("pool", name);
    const toml::table* table = node->as_table();
    if (table == nullptr) {
        refuse_type(key, "a table", *node);
    }
    if (cfg.allocation != mode) {
        refuse(key, "[" + key +
                        "] only applies with pool.mode = " + quoted(allocation_mode_name(mode)) +
                        ", but pool.mode is " + quoted(allocation_mode_name(cfg.allocation)));
    }
    return table;
}

// A block size key: a multiple of the granule within the bounds, and with `power_of_two` also a
// power of two (the adaptive sizes halve and double).
std::optional<std::uint32_t> block_size_value(const toml::table& blocks, std::string_view name,
                                              bool power_of_two) {
    const auto v = optional_integer(blocks, "pool.blocks", name, BlocksConfig::kMinBlockSize,
                                    BlocksConfig::kMaxBlockSize, " ports");
    if (!v) {
        return std::nullopt;
    }
    const std::string key = join_key("pool.blocks", name);
    if (*v % BlocksConfig::kGranule != 0) {
        refuse(key, "must be a multiple of " + std::to_string(BlocksConfig::kGranule) + ", got " +
                        std::to_string(*v));
    }
    if (power_of_two && (*v & (*v - 1)) != 0) {
        refuse(key, "must be a power of two (64, 128, 256, 512, 1024, 2048 or 4096), got " +
                        std::to_string(*v));
    }
    return static_cast<std::uint32_t>(*v);
}

constexpr std::int64_t kMaxRecordsPerDay = 86400; // one a second

void parse_blocks(const toml::table& pool, Config& cfg) {
    const toml::table* blocks = mode_table(pool, "blocks", AllocationMode::blocks, cfg);
    if (blocks == nullptr) {
        return;
    }
    check_known_keys(*blocks, "pool.blocks",
                     {"block_size", "max_blocks", "active_block_timeout", "interim", "adaptive",
                      "min_block_size", "max_block_size", "records_per_day"});
    BlocksConfig& b = cfg.blocks;
    if (const auto v = block_size_value(*blocks, "block_size", false)) {
        b.block_size = *v;
    }
    if (b.block_size > cfg.port_range.size()) {
        refuse("pool.blocks.block_size", std::to_string(b.block_size) +
                                             " ports do not fit in port_range " +
                                             range_text(cfg.port_range) + " (" +
                                             std::to_string(cfg.port_range.size()) + " ports)");
    }
    if (const auto v =
            optional_integer(*blocks, "pool.blocks", "max_blocks", 1, BlocksConfig::kMaxBlocks)) {
        b.max_blocks = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*blocks, "pool.blocks", "active_block_timeout", 0,
                                        kMaxTimeout, " s")) {
        b.active_block_timeout = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*blocks, "pool.blocks", "interim", 0, kMaxTimeout, " s")) {
        b.interim = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_bool(*blocks, "pool.blocks", "adaptive")) {
        b.adaptive = *v;
    }
    if (const auto v = block_size_value(*blocks, "min_block_size", true)) {
        b.min_block_size = *v;
    }
    if (const auto v = block_size_value(*blocks, "max_block_size", true)) {
        b.max_block_size = *v;
    }
    if (b.min_block_size > b.max_block_size) {
        refuse("pool.blocks.min_block_size", std::to_string(b.min_block_size) +
                                                 " is above max_block_size (" +
                                                 std::to_string(b.max_block_size) + ")");
    }
    if (const auto v =
            optional_integer(*blocks, "pool.blocks", "records_per_day", 1, kMaxRecordsPerDay)) {
        b.records_per_day = static_cast<std::uint32_t>(*v);
    }
}

// "a.b.c.d/len", len 8..32, no host bits: the subscribers of deterministic mode.
void parse_subscriber_prefix(const toml::node& node, Config& cfg) {
    const std::string key = "pool.deterministic.subscribers";
    const std::string text = string_value(node, key);
    const std::size_t slash = text.find('/');
    const auto addr = Ipv4Addr::parse(std::string_view{text}.substr(0, slash));
    if (!addr || slash == std::string::npos) {
        refuse(key, quoted(text) + " is not an IPv4 prefix (expected a prefix such as "
                                   "100.64.0.0/16)");
    }
    const auto len = parse_port_number(std::string_view{text}.substr(slash + 1));
    const std::string_view len_text = std::string_view{text}.substr(slash + 1);
    if (!len || len_text.size() > 2 || (len_text.size() == 2 && len_text[0] == '0')) {
        refuse(key, quoted(text) + " has a bad prefix length (expected /8 to /32)");
    }
    if (*len < 8 || *len > 32) {
        refuse(key, quoted(text) + ": prefix length /" + std::to_string(*len) +
                        " is not allowed (expected /8 to /32: a shorter prefix is more "
                        "subscribers than any pool can share ports with)");
    }
    const std::uint32_t host_mask = *len == 32 ? 0u : (0xffffffffu >> *len);
    if ((addr->value() & host_mask) != 0) {
        refuse(key, quoted(text) + " has host bits set (the prefix starts at " +
                        Ipv4Addr{addr->value() & ~host_mask}.to_string() + ")");
    }
    const Ipv4Addr last{addr->value() | host_mask};
    if (addr->is_martian() || last.is_martian()) {
        refuse(key, quoted(text) + " reaches into 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/3, "
                                   "which no subscriber can use");
    }
    cfg.deterministic.prefix = *addr;
    cfg.deterministic.prefix_len = static_cast<std::uint8_t>(*len);
}

void parse_deterministic(const toml::table& pool, Config& cfg) {
    const toml::table* det = mode_table(pool, "deterministic", AllocationMode::deterministic, cfg);
    if (cfg.allocation != AllocationMode::deterministic) {
        return;
    }
    if (det == nullptr) {
        refuse("pool.deterministic", "pool.mode = \"deterministic\" needs a "
                                     "[pool.deterministic] table with subscribers = \"PREFIX\"");
    }
    check_known_keys(*det, "pool.deterministic", {"subscribers", "min_ports"});
    // Each subscriber's ports are one run of port_range; a reserved port inside a run would
    // take ports from some subscribers only. Narrowing port_range is the honest way.
    if (!cfg.reserved.empty()) {
        refuse("pool.reserved", "reserved ports are not allowed with pool.mode = "
                                "\"deterministic\": every subscriber holds one run of "
                                "port_range (RFC 7422); narrow port_range instead");
    }
    // RFC 7422 section 2: the well-known ports are not handed to subscribers.
    if (cfg.port_range.lo < 1024) {
        refuse("pool.port_range", range_text(cfg.port_range) +
                                      " reaches below 1024; with pool.mode = "
                                      "\"deterministic\" ports 0-1023 are never "
                                      "assigned (RFC 7422)");
    }
    parse_subscriber_prefix(required_key(*det, "pool.deterministic", "subscribers"), cfg);
    if (const auto v = optional_integer(*det, "pool.deterministic", "min_ports", 1, kMaxPort)) {
        cfg.deterministic.min_ports = static_cast<std::uint32_t>(*v);
    }
    const DeterministicConfig& d = cfg.deterministic;
    const std::uint32_t host_mask = d.prefix_len == 32 ? 0u : (0xffffffffu >> d.prefix_len);
    for (std::size_t i = 0; i < cfg.pool.size(); ++i) {
        if ((cfg.pool[i].value() & ~host_mask) == d.prefix.value()) {
            refuse("pool.deterministic.subscribers",
                   "pool address " + cfg.pool[i].to_string() +
                       " is inside the subscriber prefix; subscribers and pool must not overlap");
        }
    }
    const DeterministicShape s = deterministic_shape(
        d.prefix_len, static_cast<std::uint32_t>(cfg.pool.size()), cfg.port_range);
    if (s.ports_per_subscriber < d.min_ports) {
        refuse("pool.deterministic.min_ports",
               std::to_string(s.subscribers) + " subscribers over " +
                   std::to_string(s.pool_addresses) + " pool addresses is " +
                   std::to_string(s.ratio) + " per address; port_range " +
                   range_text(cfg.port_range) + " has " + std::to_string(s.ports) +
                   " ports, so each subscriber would get " +
                   std::to_string(s.ports_per_subscriber) + ", fewer than min_ports (" +
                   std::to_string(d.min_ports) +
                   "); add pool addresses, widen port_range or lower min_ports");
    }
}

// ---- tables ------------------------------------------------------------------------------

void parse_pool(const toml::table& root, Config& cfg) {
    const toml::table& pool = required_table(root, "pool");
    check_known_keys(pool, "pool",
                     {"addresses", "port_range", "reserved", "mode", "blocks", "deterministic"});

    const std::string key = "pool.addresses";
    const toml::node& addresses_node = required_key(pool, "pool", "addresses");
    const toml::array* addresses = addresses_node.as_array();
    if (addresses == nullptr) {
        refuse_type(key, "an array of strings", addresses_node);
    }
    if (addresses->empty()) {
        refuse(key, "empty list: the pool needs at least one address");
    }
    std::unordered_map<std::uint32_t, std::size_t> first_seen; // address -> entry index
    for (std::size_t i = 0; i < addresses->size(); ++i) {
        const std::string ekey = element_key(key, i);
        const std::string text = string_value(*addresses->get(i), ekey);
        const std::vector<Ipv4Addr> expanded = expand_pool_entry(text, ekey);
        if (cfg.pool.size() + expanded.size() > kMaxPoolAddresses) {
            refuse(ekey, "too many pool addresses: " + std::to_string(cfg.pool.size()) +
                             " before this entry and " + std::to_string(expanded.size()) +
                             " in it; at most " + std::to_string(kMaxPoolAddresses) +
                             " are allowed");
        }
        for (Ipv4Addr addr : expanded) {
            const auto [it, inserted] = first_seen.emplace(addr.value(), i);
            if (!inserted) {
                refuse(ekey, "duplicate address " + addr.to_string() + " (already in " +
                                 element_key(key, it->second) + ")");
            }
            cfg.pool.push_back(addr);
        }
    }

    if (const toml::node* node = pool.get("port_range")) {
        parse_port_range(*node, cfg);
    } else {
        cfg.port_range = kPortRangePresets[0].range;
        cfg.port_range_name = kPortRangePresets[0].name;
    }
    if (const toml::node* node = pool.get("reserved")) {
        parse_reserved(*node, cfg);
    }
    parse_mode(pool, cfg);
    parse_blocks(pool, cfg);
    parse_deterministic(pool, cfg);
}

std::string port_name_value(const toml::table& table, std::string_view table_name) {
    const std::string key = join_key(table_name, "port");
    std::string name = string_value(required_key(table, table_name, "port"), key);
    if (name.empty()) {
        refuse(key, "must not be empty (expected a DPDK device name such as net_af_packet0)");
    }
    return name;
}

// table.checksum_offload, or the default (auto) if absent.
ChecksumOffloadSetting checksum_offload_value(const toml::table& table,
                                              std::string_view table_name) {
    const toml::node* node = table.get("checksum_offload");
    if (node == nullptr) {
        return ChecksumOffloadSetting::automatic;
    }
    const std::string key = join_key(table_name, "checksum_offload");
    const std::string text = string_value(*node, key);
    for (ChecksumOffloadSetting s : {ChecksumOffloadSetting::automatic,
                                     ChecksumOffloadSetting::ipv4, ChecksumOffloadSetting::off}) {
        if (text == checksum_offload_name(s)) {
            return s;
        }
    }
    refuse(key, "unknown checksum offload setting " + quoted(text) +
                    " (expected \"auto\": what the port offers, \"ipv4\": the IPv4 header "
                    "checksum only, or \"off\")");
}

void parse_inside(const toml::table& root, Config& cfg) {
    const toml::table& inside = required_table(root, "inside");
    check_known_keys(inside, "inside", {"port", "gateway", "mtu", "checksum_offload"});
    cfg.inside.port = port_name_value(inside, "inside");
    cfg.inside.gateway = address_value(required_key(inside, "inside", "gateway"), "inside.gateway");
    if (const auto v = optional_integer(inside, "inside", "mtu", kMinMtu, kMaxMtu, " bytes")) {
        cfg.inside.mtu = static_cast<std::uint16_t>(*v);
    }
    cfg.inside.checksum_offload = checksum_offload_value(inside, "inside");
}

void parse_outside(const toml::table& root, Config& cfg) {
    const toml::table& outside = required_table(root, "outside");
    check_known_keys(outside, "outside",
                     {"port", "next_hop", "next_hop_mac", "mtu", "checksum_offload"});
    cfg.outside.port = port_name_value(outside, "outside");
    if (const auto v = optional_integer(outside, "outside", "mtu", kMinMtu, kMaxMtu, " bytes")) {
        cfg.outside.mtu = static_cast<std::uint16_t>(*v);
    }
    cfg.outside.checksum_offload = checksum_offload_value(outside, "outside");
    if (cfg.outside.port == cfg.inside.port) {
        refuse("outside.port", "same port as inside.port (" + quoted(cfg.inside.port) +
                                   "); inside and outside need different ports");
    }
    cfg.outside.next_hop =
        address_value(required_key(outside, "outside", "next_hop"), "outside.next_hop");
    for (Ipv4Addr addr : cfg.pool) {
        if (addr == cfg.outside.next_hop) {
            refuse("outside.next_hop",
                   addr.to_string() + " is a pool address; the next hop must be another host");
        }
    }
    if (const toml::node* node = outside.get("next_hop_mac")) {
        const std::string key = "outside.next_hop_mac";
        const std::string text = string_value(*node, key);
        const auto mac = MacAddr::parse(text);
        if (!mac) {
            refuse(key, quoted(text) + " is not a MAC address (expected six hex pairs separated "
                                       "by ':', such as 02:00:00:00:00:01)");
        }
        if ((mac->bytes[0] & 0x01) != 0) {
            refuse(key, mac->to_string() +
                            " is a multicast or broadcast MAC; the next hop needs a unicast MAC");
        }
        if (*mac == MacAddr{}) {
            refuse(key, "00:00:00:00:00:00 is the all-zero MAC; the next hop needs a real MAC");
        }
        cfg.outside.next_hop_mac = *mac;
    }
}

void parse_timeout(const toml::table& table, std::string_view name, std::uint32_t minimum,
                   std::string_view rfc, std::uint32_t& out) {
    const toml::node* node = table.get(name);
    if (node == nullptr) {
        return;
    }
    const std::string key = join_key("timeouts", name);
    const std::int64_t value = integer_value(*node, key);
    if (value < 0) {
        refuse(key, "must not be negative (got " + std::to_string(value) + ")");
    }
    if (value < minimum) {
        refuse(key, "must be at least " + std::to_string(minimum) + " s (" + std::string{rfc} +
                        "), got " + std::to_string(value));
    }
    if (value > kMaxTimeout) {
        refuse(key, "must be at most " + std::to_string(kMaxTimeout) + " s (7 days), got " +
                        std::to_string(value));
    }
    out = static_cast<std::uint32_t>(value);
}

void parse_timeouts(const toml::table& root, Config& cfg) {
    const toml::table* timeouts = optional_table(root, "timeouts");
    if (timeouts == nullptr) {
        return;
    }
    check_known_keys(
        *timeouts, "timeouts",
        {"udp", "tcp_established", "tcp_transitory", "icmp", "port_hold_down", "inbound_refresh"});
    Timeouts& t = cfg.timeouts;
    parse_timeout(*timeouts, "udp", Timeouts::kMinUdp, "RFC 4787 REQ-5", t.udp);
    parse_timeout(*timeouts, "tcp_established", Timeouts::kMinTcpEstablished, "RFC 5382 REQ-5",
                  t.tcp_established);
    parse_timeout(*timeouts, "tcp_transitory", Timeouts::kMinTcpTransitory, "RFC 5382 REQ-5",
                  t.tcp_transitory);
    parse_timeout(*timeouts, "icmp", Timeouts::kMinIcmp, "RFC 5508 REQ-2", t.icmp);
    // RFC 6888 REQ-8 asks for at least 120 s; shorter is the operator's choice, so only the
    // upper bound is enforced.
    if (const auto v =
            optional_integer(*timeouts, "timeouts", "port_hold_down", 0, kMaxPortHoldDown, " s")) {
        t.port_hold_down = static_cast<std::uint32_t>(*v);
    }
    // RFC 4787 REQ-6: inbound refresh MAY be done.
    if (const auto v = optional_bool(*timeouts, "timeouts", "inbound_refresh")) {
        t.inbound_refresh = *v;
    }
}

void parse_filtering(const toml::table& root, Config& cfg) {
    const toml::table* filtering = optional_table(root, "filtering");
    if (filtering == nullptr) {
        return;
    }
    check_known_keys(*filtering, "filtering", {"mode"});
    const toml::node* node = filtering->get("mode");
    if (node == nullptr) {
        return;
    }
    const std::string text = string_value(*node, "filtering.mode");
    for (FilteringMode m : {FilteringMode::endpoint_independent, FilteringMode::address_dependent,
                            FilteringMode::address_port_dependent}) {
        if (text == filtering_mode_name(m)) {
            cfg.filtering = m;
            return;
        }
    }
    refuse("filtering.mode", "unknown filtering mode " + quoted(text) +
                                 " (expected \"endpoint-independent\", \"address\" or "
                                 "\"address-and-port\")");
}

void parse_limits(const toml::table& root, Config& cfg) {
    Limits& l = cfg.limits;
    const toml::table* limits = optional_table(root, "limits");
    if (limits == nullptr) {
        l.subscriber_sessions = std::min(l.subscriber_sessions, l.max_sessions);
        l.max_subscribers = Limits::default_subscribers(l.max_sessions);
        return;
    }
    check_known_keys(*limits, "limits",
                     {"max_sessions", "max_subscribers", "subscriber_sessions", "subscriber_ports",
                      "subscriber_ports_udp", "subscriber_ports_tcp", "subscriber_ports_icmp",
                      "subscriber_mapping_rate", "subscriber_mapping_burst"});
    const auto max_sessions =
        optional_integer(*limits, "limits", "max_sessions", kMinMaxSessions, kMaxMaxSessions);
    if (max_sessions) {
        l.max_sessions = static_cast<std::uint32_t>(*max_sessions);
    }

    // Subscribers: a table of their own, never larger than the session table.
    if (const toml::node* node = limits->get("max_subscribers")) {
        const std::string key = "limits.max_subscribers";
        const std::int64_t value = integer_value(*node, key);
        if (value < 1 || value > l.max_sessions) {
            refuse(key, "must be between 1 and limits.max_sessions (" +
                            std::to_string(l.max_sessions) + (max_sessions ? "" : ", its default") +
                            "), got " + std::to_string(value));
        }
        l.max_subscribers = static_cast<std::uint32_t>(value);
    } else {
        l.max_subscribers = Limits::default_subscribers(l.max_sessions);
    }

    // RFC 6888 REQ-5: state per subscriber is limited; never above the whole NAT's limit.
    if (const toml::node* node = limits->get("subscriber_sessions")) {
        const std::string key = "limits.subscriber_sessions";
        const std::int64_t value = integer_value(*node, key);
        if (value < 1 || value > l.max_sessions) {
            refuse(key, "must be between 1 and limits.max_sessions (" +
                            std::to_string(l.max_sessions) + (max_sessions ? "" : ", its default") +
                            "), got " + std::to_string(value));
        }
        l.subscriber_sessions = static_cast<std::uint32_t>(value);
    } else {
        // The default never exceeds a smaller max_sessions.
        l.subscriber_sessions = std::min(l.subscriber_sessions, l.max_sessions);
    }

    // RFC 6888 REQ-4: external ports per subscriber, per protocol. The shorthand sets all three;
    // a per-protocol key wins over it wherever it is written.
    if (const auto v = optional_integer(*limits, "limits", "subscriber_ports", 1, kMaxPort)) {
        const auto ports = static_cast<std::uint32_t>(*v);
        l.subscriber_ports_udp = ports;
        l.subscriber_ports_tcp = ports;
        l.subscriber_ports_icmp = ports;
    }
    const std::pair<std::string_view, std::uint32_t*> per_protocol[] = {
        {"subscriber_ports_udp", &l.subscriber_ports_udp},
        {"subscriber_ports_tcp", &l.subscriber_ports_tcp},
        {"subscriber_ports_icmp", &l.subscriber_ports_icmp},
    };
    for (const auto& [name, out] : per_protocol) {
        if (const auto v = optional_integer(*limits, "limits", name, 1, kMaxPort)) {
            *out = static_cast<std::uint32_t>(*v);
        }
    }

    // RFC 6888 REQ-4: new mappings rate-limited per subscriber, as a token bucket.
    const auto rate = optional_integer(*limits, "limits", "subscriber_mapping_rate", 0, kMaxRate);
    if (rate) {
        l.subscriber_mapping_rate = static_cast<std::uint32_t>(*rate);
    }
    if (const toml::node* node = limits->get("subscriber_mapping_burst")) {
        const std::string key = "limits.subscriber_mapping_burst";
        const std::int64_t value = integer_value(*node, key);
        if (value == 0) {
            refuse(key, "must be at least 1: a bucket of 0 would refuse every new mapping (for no "
                        "rate limit, set limits.subscriber_mapping_rate = 0)");
        }
        if (value < 1 || value > kMaxRate) {
            refuse(key, "must be between 1 and " + std::to_string(kMaxRate) + ", got " +
                            std::to_string(value));
        }
        l.subscriber_mapping_burst = static_cast<std::uint32_t>(value);
    } else if (rate && *rate > 0) {
        // One second's worth of mappings. With rate 0 (no limit) the burst is unused and keeps
        // its default, so that it is never 0.
        l.subscriber_mapping_burst = static_cast<std::uint32_t>(*rate);
    }
}

// RFC 6888 REQ-11: what a subscriber is told when no mapping can be made for it.
void parse_icmp(const toml::table& root, Config& cfg) {
    const toml::table* icmp = optional_table(root, "icmp");
    if (icmp == nullptr) {
        return;
    }
    check_known_keys(*icmp, "icmp",
                     {"unreachable", "unreachable_rate", "unsolicited_syn_unreachable"});
    if (const auto v = optional_bool(*icmp, "icmp", "unreachable")) {
        cfg.icmp.unreachable = *v;
    }
    if (const auto v = optional_integer(*icmp, "icmp", "unreachable_rate", 0, kMaxRate, " per s")) {
        cfg.icmp.unreachable_rate = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_bool(*icmp, "icmp", "unsolicited_syn_unreachable")) {
        cfg.icmp.unsolicited_syn_unreachable = *v;
    }
}

// RFC 4787 REQ-14: the per-worker table that lets fragments through (fragments.hpp).
void parse_fragments(const toml::table& root, Config& cfg) {
    const toml::table* fragments = optional_table(root, "fragments");
    if (fragments == nullptr) {
        return;
    }
    check_known_keys(*fragments, "fragments", {"timeout", "max_datagrams", "max_per_datagram"});
    FragmentsConfig& f = cfg.fragments;
    if (const auto v = optional_integer(*fragments, "fragments", "timeout", 1,
                                        FragmentsConfig::kMaxTimeout, " s")) {
        f.timeout = static_cast<std::uint32_t>(*v);
    }
    if (const auto v =
            optional_integer(*fragments, "fragments", "max_datagrams",
                             FragmentsConfig::kMinDatagrams, FragmentsConfig::kMaxDatagrams)) {
        f.max_datagrams = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*fragments, "fragments", "max_per_datagram", 1,
                                        FragmentsConfig::kMaxPerDatagram)) {
        f.max_per_datagram = static_cast<std::uint32_t>(*v);
    }
    if (std::uint64_t{f.max_datagrams} * f.max_per_datagram > FragmentsConfig::kMaxHeld) {
        refuse("fragments.max_per_datagram",
               std::to_string(f.max_per_datagram) + " pieces for each of " +
                   std::to_string(f.max_datagrams) + " datagrams would hold up to " +
                   std::to_string(std::uint64_t{f.max_datagrams} * f.max_per_datagram) +
                   " packet buffers per worker; at most " +
                   std::to_string(FragmentsConfig::kMaxHeld) + " are allowed");
    }
}

Config check_document(const toml::table& root, std::string source) {
    check_known_keys(root, "",
                     {"pool", "inside", "outside", "timeouts", "filtering", "limits", "icmp",
                      "fragments", "static", "logging", "alarms", "metrics", "ha"});
    Config cfg;
    cfg.source = std::move(source);
    parse_pool(root, cfg);
    parse_inside(root, cfg);
    parse_outside(root, cfg);
    parse_timeouts(root, cfg);
    parse_filtering(root, cfg);
    parse_limits(root, cfg);
    parse_icmp(root, cfg);
    parse_fragments(root, cfg);
    parse_statics(root, cfg); // last: it checks against the pool, gateway and next hop
    parse_logging(root, cfg);
    parse_alarms(root, cfg);
    parse_metrics(root, cfg);
    parse_ha(root, cfg);
    return cfg;
}

// ---- what toml++ reads ----------------------------------------------------------------
//
// toml++ 3.3.0 (Debian 12) reaches undefined behaviour, a __builtin_unreachable in its Unicode
// whitespace test (is_non_ascii_horizontal_whitespace), when it asks whether certain non-ASCII
// characters are whitespace (upstream issues 190 and 295, fixed after 3.3.0). It asks that
// of any character outside strings and comments, and inside a multi-line basic string of the
// first character after a backslash or after a line-ending backslash's whitespace. TOML 1.0
// allows non-ASCII only in strings and comments and wants the file to be UTF-8, so refusing
// everything else first costs no valid config but the last case, which is refused with a
// way around it.

// One character: its code point and its length in bytes; length 0 when the bytes at `i` are
// not UTF-8 (a stray continuation byte, a truncated or overlong sequence, a surrogate, or
// beyond U+10FFFF).
struct Utf8Char {
    char32_t code_point = 0;
    std::size_t length = 0;
};

Utf8Char decode_utf8(std::string_view text, std::size_t i) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
        return {lead, 1};
    }
    std::size_t length = 0;
    char32_t code_point = 0;
    char32_t smallest = 0; // below this the sequence is overlong
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
        code_point = lead & 0x1fu;
        smallest = 0x80;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        code_point = lead & 0x0fu;
        smallest = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        code_point = lead & 0x07u;
        smallest = 0x10000;
    } else {
        return {};
    }
    if (text.size() - i < length) {
        return {};
    }
    for (std::size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(text[i + k]);
        if ((next & 0xc0u) != 0x80u) {
            return {};
        }
        code_point = code_point << 6 | (next & 0x3fu);
    }
    if (code_point < smallest || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
        return {};
    }
    return {code_point, length};
}

std::string code_point_name(char32_t c) {
    char text[16];
    std::snprintf(text, sizeof text, "U+%04X", static_cast<unsigned>(c));
    return text;
}

std::string position_text(std::size_t line, std::size_t column) {
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// How many of `quote` start at text[i], at most `limit`.
std::size_t quotes_at(std::string_view text, std::size_t i, char quote, std::size_t limit) {
    std::size_t n = 0;
    while (n < limit && i + n < text.size() && text[i + n] == quote) {
        ++n;
    }
    return n;
}

// What a line-ending backslash skips (TOML: whitespace and newlines; toml++ also takes VT
// and FF for line breaks).
constexpr bool is_ascii_space(char32_t c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

constexpr bool is_bare_key_char(char32_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

// Where, outside strings and comments, the text stands in TOML's structure: enough to tell
// whether a quote opens a string for toml++. toml++ reads a string only where a key or a value
// starts; anywhere else (7"...", -["...", x{"...") it reads the quote and what follows as
// part of a malformed bare value, up to the next value terminator, asking its whitespace test
// about every character. Whatever toml++ would refuse leaves this in `value`, so that no later
// quote on the line opens a string: text past an error is never taken for a string.
class TomlShape {
public:
    [[nodiscard]] bool opens_string() const {
        return mode_ == Mode::key_start || mode_ == Mode::value_start;
    }
    [[nodiscard]] bool opens_key() const { return mode_ == Mode::key_start; }
    // A string that opened here has closed: a key, or a value, is complete.
    void string_closed(bool was_key) { mode_ = was_key ? Mode::key_end : Mode::value_end; }

    // One ASCII character outside strings and comments.
    void step(char32_t ch) {
        const Open top = open_.empty() ? Open::none : open_.back();
        if (ch == '\n') {
            // Headers and inline tables end with their line (or the document is in error).
            while (!open_.empty() && open_.back() != Open::array) {
                open_.pop_back();
            }
            if (open_.empty()) {
                mode_ = Mode::key_start;
            } else if (mode_ == Mode::value) {
                mode_ = Mode::value_end;
            }
            return;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            mode_ = mode_ == Mode::key     ? Mode::key_end
                    : mode_ == Mode::value ? Mode::value_end
                                           : mode_;
            return;
        }
        if (mode_ == Mode::value && ch != ']' && ch != '}' && ch != ',') {
            return; // still the same bare value: '=', '[', '{' and quotes are part of it
        }
        switch (ch) {
        case '=':
            mode_ = mode_ == Mode::key || mode_ == Mode::key_end ? Mode::value_start : Mode::value;
            return;
        case '.':
            mode_ = mode_ == Mode::key || mode_ == Mode::key_end ? Mode::key_start : Mode::value;
            return;
        case '[':
            if (mode_ == Mode::key_start && open_.empty()) {
                open_.push_back(Open::header); // [table]
                header_named_ = false;
            } else if (mode_ == Mode::key_start && top == Open::header && !header_named_) {
                // [[array of tables]]
            } else if (mode_ == Mode::value_start) {
                open_.push_back(Open::array);
            } else {
                mode_ = Mode::value;
            }
            return;
        case ']':
            if (top == Open::array) {
                open_.pop_back();
                mode_ = Mode::value_end;
            } else if (top == Open::header && (mode_ == Mode::key || mode_ == Mode::key_end)) {
                open_.pop_back();
                mode_ = Mode::value_end; // nothing but a comment may follow
            } else {
                mode_ = Mode::value_end;
            }
            return;
        case '{':
            if (mode_ == Mode::value_start) {
                open_.push_back(Open::inline_table);
                mode_ = Mode::key_start;
            } else {
                mode_ = Mode::value;
            }
            return;
        case '}':
            if (top == Open::inline_table) {
                open_.pop_back();
            }
            mode_ = Mode::value_end;
            return;
        case ',':
            if (top == Open::array && mode_ != Mode::value_start) {
                mode_ = Mode::value_start;
            } else if (top == Open::inline_table &&
                       (mode_ == Mode::value || mode_ == Mode::value_end)) {
                mode_ = Mode::key_start;
            } else {
                mode_ = Mode::value_end;
            }
            return;
        default:
            break;
        }
        if ((mode_ == Mode::key_start || mode_ == Mode::key) && is_bare_key_char(ch)) {
            mode_ = Mode::key;
        } else {
            mode_ = Mode::value; // a bare value, or what toml++ refuses
        }
        header_named_ = top == Open::header;
    }

private:
    enum class Mode { key_start, key, key_end, value_start, value, value_end };
    enum class Open : char { none, header, array, inline_table };

    Mode mode_ = Mode::key_start;
    std::vector<Open> open_; // headers, arrays and inline tables open here, innermost last
    bool header_named_ = false;
};

} // namespace

bool is_valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const Utf8Char c = decode_utf8(text, i);
        if (c.length == 0) {
            return false;
        }
        i += c.length;
    }
    return true;
}

std::optional<ConfigError> check_toml_text(std::string_view text, const std::string& source) {
    enum class In { code, comment, basic, literal, multi_basic, multi_literal };
    In in = In::code;
    bool escaped = false;      // in a string: the previous character was an escaping '\'
    bool line_escaped = false; // in a multi-line basic string: after a line-ending '\'
    bool key_string = false;   // the string being read is a key
    TomlShape shape;
    std::size_t line = 1;
    std::size_t column = 1;
    std::size_t i = text.starts_with("\xef\xbb\xbf") ? 3 : 0; // a byte order mark: toml++ skips it
    while (i < text.size()) {
        const Utf8Char c = decode_utf8(text, i);
        if (c.length == 0) {
            char byte[8];
            std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[i]));
            return ConfigError{source, "(encoding)",
                               position_text(line, column) + ": byte " + byte +
                                   " is not valid UTF-8; a TOML file must be UTF-8"};
        }
        const char32_t ch = c.code_point;
        std::size_t length = c.length; // bytes this step consumes
        if (ch >= 0x80 && in == In::code) {
            return ConfigError{source, "(syntax)",
                               "TOML syntax error at " + position_text(line, column) +
                                   ": non-ASCII character " + code_point_name(ch) +
                                   " outside a string or comment (keys, numbers, booleans and "
                                   "dates are ASCII; text goes in quotes)"};
        }
        if (ch >= 0x80 && in == In::multi_basic && (escaped || line_escaped)) {
            return ConfigError{
                source, "(syntax)",
                position_text(line, column) + ": non-ASCII character " + code_point_name(ch) +
                    " right after a backslash or a line-ending backslash in a "
                    "multi-line string is refused (toml++ 3.3.0 misreads it); "
                    "write it as \\u" +
                    code_point_name(ch).substr(2) + " or put an ASCII character before it"};
        }
        switch (in) {
        case In::code:
            if (ch == '#') {
                in = In::comment;
            } else if ((ch == '"' || ch == '\'') && shape.opens_string()) {
                const bool multi = quotes_at(text, i, static_cast<char>(ch), 3) == 3;
                in = ch == '"' ? (multi ? In::multi_basic : In::basic)
                               : (multi ? In::multi_literal : In::literal);
                key_string = shape.opens_key();
                length = multi ? 3 : 1;
            } else {
                shape.step(ch);
            }
            break;
        case In::comment:
            if (ch == '\n') {
                in = In::code;
                shape.step(ch);
            }
            break;
        case In::basic:
            if (escaped) {
                escaped = false;
            } else if (ch == '\\') {
                escaped = true;
            } else if (ch == '"') {
                in = In::code;
                shape.string_closed(key_string);
            } else if (ch == '\n') {
                in = In::code; // unterminated: toml++ reads no further
                shape.step(ch);
            }
            break;
        case In::literal:
            if (ch == '\'') {
                in = In::code;
                shape.string_closed(key_string);
            } else if (ch == '\n') {
                in = In::code;
                shape.step(ch);
            }
            break;
        case In::multi_basic:
            if (escaped) {
                escaped = false;
                line_escaped = is_ascii_space(ch);
                break;
            }
            if (line_escaped && is_ascii_space(ch)) {
                break;
            }
            line_escaped = false;
            if (ch == '\\') {
                escaped = true;
            } else if (quotes_at(text, i, '"', 3) == 3) {
                length = quotes_at(text, i, '"', 5); // up to two quotes belong to the string
                in = In::code;
                shape.string_closed(key_string);
            }
            break;
        case In::multi_literal:
            if (quotes_at(text, i, '\'', 3) == 3) {
                length = quotes_at(text, i, '\'', 5);
                in = In::code;
                shape.string_closed(key_string);
            }
            break;
        }
        if (ch == '\n') {
            ++line;
            column = 1;
        } else {
            column += length == c.length ? 1 : length; // quotes are one column each
        }
        i += length;
    }
    return std::nullopt;
}

namespace {

ConfigError syntax_error(const toml::parse_error& err, std::string source) {
    const auto& where = err.source().begin;
    return ConfigError{std::move(source), "(syntax)",
                       "TOML syntax error at line " + std::to_string(where.line) + ", column " +
                           std::to_string(where.column) + ": " + std::string{err.description()}};
}

// Pool addresses as comma-separated runs: "198.18.0.100-198.18.0.101, 203.0.113.1".
std::string pool_runs(const std::vector<Ipv4Addr>& pool) {
    std::string out;
    std::size_t i = 0;
    while (i < pool.size()) {
        std::size_t j = i;
        while (j + 1 < pool.size() && pool[j + 1].value() == pool[j].value() + 1) {
            ++j;
        }
        if (!out.empty()) {
            out += ", ";
        }
        out += pool[i].to_string();
        if (j != i) {
            out += '-';
            out += pool[j].to_string();
        }
        i = j + 1;
    }
    return out;
}

std::string describe_allocation(const Config& config) {
    std::string out{allocation_mode_name(config.allocation)};
    switch (config.allocation) {
    case AllocationMode::dynamic:
        return out + ": one port per new mapping";
    case AllocationMode::blocks: {
        const BlocksConfig& b = config.blocks;
        out += ": " + std::to_string(b.block_size) + "-port blocks, at most " +
               std::to_string(b.max_blocks) + " per subscriber, active block timeout " +
               (b.active_block_timeout == 0 ? std::string{"none"}
                                            : std::to_string(b.active_block_timeout) + " s") +
               ", interim records " +
               (b.interim == 0 ? std::string{"none"} : "every " + std::to_string(b.interim) + " s");
        if (b.adaptive) {
            out += ", adaptive sizes " + std::to_string(b.min_block_size) + "-" +
                   std::to_string(b.max_block_size) + " within " +
                   std::to_string(b.records_per_day) + " records per subscriber per day";
        }
        return out;
    }
    case AllocationMode::deterministic:
        break;
    }
    const DeterministicConfig& d = config.deterministic;
    const DeterministicShape s = deterministic_shape(
        d.prefix_len, static_cast<std::uint32_t>(config.pool.size()), config.port_range);
    return out + " (RFC 7422): subscribers " + d.prefix.to_string() + "/" +
           std::to_string(d.prefix_len) + ", " + std::to_string(s.ratio) + " per pool address (" +
           std::to_string(s.pool_addresses_used()) + " of " + std::to_string(s.pool_addresses) +
           " addresses used), " + std::to_string(s.ports_per_subscriber) +
           " ports each (min_ports " + std::to_string(d.min_ports) + ")";
}

} // namespace

std::variant<Config, ConfigError> parse_config(std::string_view toml_text, std::string source) {
    // Every way in (the file at start, --check-config, SIGHUP, runtime edits) comes here first.
    if (auto refused = check_toml_text(toml_text, source)) {
        return *std::move(refused);
    }
    try {
#if TOML_EXCEPTIONS
        toml::table root;
        try {
            root = toml::parse(toml_text, std::string_view{source});
        } catch (const toml::parse_error& err) {
            return syntax_error(err, std::move(source));
        }
#else
        toml::parse_result parsed = toml::parse(toml_text, std::string_view{source});
        if (!parsed) {
            return syntax_error(parsed.error(), std::move(source));
        }
        const toml::table& root = parsed.table();
#endif
        return check_document(root, source);
    } catch (Refusal& r) {
        return ConfigError{std::move(source), std::move(r.key), std::move(r.reason)};
    }
}

std::variant<Config, ConfigError> load_config_file(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return ConfigError{path, "(file)", std::string{"cannot open: "} + std::strerror(errno)};
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const std::size_t n = std::fread(buf, 1, sizeof buf, file);
        text.append(buf, n);
        if (n < sizeof buf) {
            break;
        }
    }
    const bool failed = std::ferror(file) != 0;
    const int read_errno = errno;
    std::fclose(file);
    if (failed) {
        return ConfigError{path, "(file)",
                           std::string{"cannot read: "} + std::strerror(read_errno)};
    }
    return parse_config(text, path);
}

std::string describe_config(const Config& config) {
    std::string out;
    const auto line = [&out](std::string_view label, const std::string& text) {
        out += label;
        out += text;
        out += '\n';
    };
    line("config:      ", config.source);
    line("pool:        ", std::to_string(config.pool.size()) +
                              (config.pool.size() == 1 ? " address: " : " addresses: ") +
                              pool_runs(config.pool));

    std::uint32_t reserved_total = 0;
    std::string reserved;
    for (const PortRange& r : config.reserved) {
        reserved += reserved.empty() ? "" : ", ";
        reserved += range_text(r);
        reserved_total += r.size();
    }
    std::string range = config.port_range_name;
    if (config.port_range_name != range_text(config.port_range)) {
        range += " (" + range_text(config.port_range) + ")";
    }
    range += ", " + std::to_string(config.port_range.size()) + " ports";
    line("port range:  ", range);
    line("reserved:    ", reserved.empty()
                              ? std::string{"none"}
                              : reserved + " (" + std::to_string(reserved_total) + " ports), " +
                                    std::to_string(config.port_range.size() - reserved_total) +
                                    " ports left to allocate per address");
    line("allocation:  ", describe_allocation(config));
    line("inside:      ", "port " + config.inside.port + ", gateway " +
                              config.inside.gateway.to_string() + ", checksum offload " +
                              std::string{checksum_offload_name(config.inside.checksum_offload)});
    line("outside:     ",
         "port " + config.outside.port + ", next hop " + config.outside.next_hop.to_string() +
             (config.outside.next_hop_mac ? " at " + config.outside.next_hop_mac->to_string()
                                          : std::string{" (MAC learned by ARP)"}) +
             ", checksum offload " +
             std::string{checksum_offload_name(config.outside.checksum_offload)});
    const Timeouts& t = config.timeouts;
    line("timeouts:    ", "udp " + std::to_string(t.udp) + " s, tcp established " +
                              std::to_string(t.tcp_established) + " s, tcp transitory " +
                              std::to_string(t.tcp_transitory) + " s, icmp " +
                              std::to_string(t.icmp) + " s, port hold-down " +
                              std::to_string(t.port_hold_down) + " s, inbound refresh " +
                              (t.inbound_refresh ? "on" : "off"));
    line("filtering:   ", std::string{filtering_mode_name(config.filtering)});
    const Limits& l = config.limits;
    line("limits:      ",
         "max_sessions " + std::to_string(l.max_sessions) + ", max_subscribers " +
             std::to_string(l.subscribers()) + "; per subscriber " +
             std::to_string(l.subscriber_sessions) + " sessions, ports udp " +
             std::to_string(l.subscriber_ports_udp) + " tcp " +
             std::to_string(l.subscriber_ports_tcp) + " icmp " +
             std::to_string(l.subscriber_ports_icmp) + ", " +
             (l.subscriber_mapping_rate == 0
                  ? std::string{"new mappings not rate-limited"}
                  : std::to_string(l.subscriber_mapping_rate) + " new mappings/s (burst " +
                        std::to_string(l.subscriber_mapping_burst) + ")"));
    const IcmpConfig& icmp = config.icmp;
    line("icmp:        ", !icmp.unreachable ? std::string{"unreachable (3/1) off"}
                          : icmp.unreachable_rate == 0
                              ? std::string{"unreachable (3/1) on, but rate 0: never sent"}
                              : "unreachable (3/1) on, at most " +
                                    std::to_string(icmp.unreachable_rate) + " per s per worker");
    line("inbound SYN: ", icmp.unsolicited_syn_unreachable
                              ? "unsolicited: held 6 s, then ICMP 3/3 unless the inside opened it"
                              : "unsolicited: dropped silently");
    out += describe_statics(config);
    out += describe_logging(config);
    out += describe_alarms(config);
    out += describe_metrics(config);
    out += describe_ha(config);
    return out;
}

} // namespace ephemera
