#include "ephemera/config_edit.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>

namespace ephemera {

namespace {

std::string range_string(PortRange r) {
    return r.lo == r.hi ? std::to_string(r.lo) : std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

// The preset's name when the range is still that preset, so it reads back the same.
std::string range_name(const Config& c) {
    for (const auto& preset : kPortRangePresets) {
        if (preset.name == c.port_range_name && preset.range == c.port_range) {
            return std::string(preset.name);
        }
    }
    return range_string(c.port_range);
}

std::string endpoint_string(Ipv4Addr addr, std::uint16_t port) {
    return port == 0 ? addr.to_string() : addr.to_string() + ":" + std::to_string(port);
}

toml::array statics_array(const std::vector<StaticMapping>& statics) {
    toml::array out;
    for (const StaticMapping& m : statics) {
        toml::table entry{{"external", endpoint_string(m.external, m.external_port)},
                          {"inside", endpoint_string(m.inside, m.inside_port)}};
        if (!m.one_to_one()) {
            entry.insert("protocol", std::string(protocol_name(m.proto)));
        }
        out.push_back(std::move(entry));
    }
    return out;
}

toml::table collector_entry(const LogCollector& c) {
    return toml::table{{"collector", c.address.to_string() + ":" + std::to_string(c.port)},
                       {"transport", std::string(c.tcp ? "tcp" : "udp")}};
}

std::string_view facility_name(std::uint8_t value) {
    switch (value) {
    case 1:
        return "user";
    case 3:
        return "daemon";
    case 4:
        return "auth";
    default:
        break;
    }
    static constexpr std::string_view kLocal[] = {"local0", "local1", "local2", "local3",
                                                  "local4", "local5", "local6", "local7"};
    return value >= 16 && value <= 23 ? kLocal[value - 16] : "local0";
}

toml::table logging_table(const LoggingConfig& log) {
    const auto i64 = [](std::uint32_t v) { return static_cast<std::int64_t>(v); };
    toml::array events;
    for (const std::string& group : logging_event_groups(log.events)) {
        events.push_back(group);
    }
    toml::table t{{"events", events},
                  {"destination", log.destination},
                  {"ring_size", i64(log.ring_size)},
                  {"address_ports_threshold", i64(log.address_ports_threshold)},
                  {"sessions_threshold", i64(log.sessions_threshold)},
                  {"subscriber_ports_threshold", i64(log.subscriber_ports_threshold)}};
    if (!log.syslog.empty()) {
        toml::array syslog;
        for (const SyslogCollector& c : log.syslog) {
            toml::table entry = collector_entry(c);
            entry.insert("facility", std::string(facility_name(c.facility)));
            syslog.push_back(std::move(entry));
        }
        t.insert("syslog", std::move(syslog));
    }
    if (!log.ipfix.empty()) {
        toml::array ipfix;
        for (const IpfixCollector& c : log.ipfix) {
            toml::table entry = collector_entry(c);
            entry.insert("observation_domain", i64(c.observation_domain));
            entry.insert("template_refresh", i64(c.template_refresh));
            ipfix.push_back(std::move(entry));
        }
        t.insert("ipfix", std::move(ipfix));
    }
    if (!log.archive.path.empty()) {
        const ArchiveConfig& a = log.archive;
        toml::table archive{{"path", a.path},
                            {"rotate_size", i64(a.rotate_size)},
                            {"rotate_age", i64(a.rotate_age)},
                            {"retention", i64(a.retention)},
                            {"compress", a.compress}};
        if (!a.hmac_key_file.empty()) {
            archive.insert("hmac_key_file", a.hmac_key_file);
        }
        t.insert("archive", std::move(archive));
    }
    return t;
}

// logging.events on the command line: "mapping,block" (or "none") for the file's array.
std::optional<std::string> events_array_text(std::string_view value) {
    if (value.starts_with('[')) {
        return std::nullopt; // already TOML
    }
    if (value == "none") {
        return "[]";
    }
    std::string out = "[";
    std::size_t from = 0;
    while (from <= value.size()) {
        const std::size_t comma = std::min(value.find(',', from), value.size());
        std::string_view name = value.substr(from, comma - from);
        while (!name.empty() && name.front() == ' ') {
            name.remove_prefix(1);
        }
        while (!name.empty() && name.back() == ' ') {
            name.remove_suffix(1);
        }
        if (name.empty() || name.find_first_of("\\\"") != std::string_view::npos) {
            return std::nullopt; // the parser refuses it as it stands
        }
        out += (out.size() > 1 ? ", \"" : "\"") + std::string(name) + "\"";
        from = comma + 1;
    }
    return out + "]";
}

toml::table to_table(const Config& c) {
    toml::array pool;
    for (Ipv4Addr a : c.pool) {
        pool.push_back(a.to_string());
    }
    toml::array reserved;
    for (PortRange r : c.reserved) {
        reserved.push_back(range_string(r));
    }
    toml::table outside{
        {"port", c.outside.port},
        {"next_hop", c.outside.next_hop.to_string()},
        {"mtu", static_cast<std::int64_t>(c.outside.mtu)},
        {"checksum_offload", std::string(checksum_offload_name(c.outside.checksum_offload))}};
    if (c.outside.next_hop_mac) {
        outside.insert("next_hop_mac", c.outside.next_hop_mac->to_string());
    }
    const auto i64 = [](std::uint32_t v) { return static_cast<std::int64_t>(v); };
    toml::table pool_table{{"addresses", pool},
                           {"port_range", range_name(c)},
                           {"reserved", reserved},
                           {"mode", std::string(allocation_mode_name(c.allocation))}};
    // Only the mode in force has its table: the parser refuses the others.
    if (c.allocation == AllocationMode::blocks) {
        const BlocksConfig& b = c.blocks;
        pool_table.insert("blocks",
                          toml::table{{"block_size", i64(b.block_size)},
                                      {"max_blocks", i64(b.max_blocks)},
                                      {"active_block_timeout", i64(b.active_block_timeout)},
                                      {"interim", i64(b.interim)},
                                      {"adaptive", b.adaptive},
                                      {"min_block_size", i64(b.min_block_size)},
                                      {"max_block_size", i64(b.max_block_size)},
                                      {"records_per_day", i64(b.records_per_day)}});
    }
    if (c.allocation == AllocationMode::deterministic) {
        const DeterministicConfig& d = c.deterministic;
        pool_table.insert(
            "deterministic",
            toml::table{{"subscribers", d.prefix.to_string() + "/" + std::to_string(d.prefix_len)},
                        {"min_ports", i64(d.min_ports)}});
    }
    toml::table root{
        {"pool", pool_table},
        {"inside", toml::table{{"port", c.inside.port},
                               {"gateway", c.inside.gateway.to_string()},
                               {"mtu", static_cast<std::int64_t>(c.inside.mtu)},
                               {"checksum_offload",
                                std::string(checksum_offload_name(c.inside.checksum_offload))}}},
        {"outside", outside},
        {"timeouts", toml::table{{"udp", i64(c.timeouts.udp)},
                                 {"tcp_established", i64(c.timeouts.tcp_established)},
                                 {"tcp_transitory", i64(c.timeouts.tcp_transitory)},
                                 {"icmp", i64(c.timeouts.icmp)},
                                 {"port_hold_down", i64(c.timeouts.port_hold_down)},
                                 {"inbound_refresh", c.timeouts.inbound_refresh}}},
        {"filtering", toml::table{{"mode", std::string(filtering_mode_name(c.filtering))}}},
        {"limits",
         toml::table{{"max_sessions", i64(c.limits.max_sessions)},
                     {"max_subscribers", i64(c.limits.subscribers())},
                     {"subscriber_sessions", i64(c.limits.subscriber_sessions)},
                     {"subscriber_ports_udp", i64(c.limits.subscriber_ports_udp)},
                     {"subscriber_ports_tcp", i64(c.limits.subscriber_ports_tcp)},
                     {"subscriber_ports_icmp", i64(c.limits.subscriber_ports_icmp)},
                     {"subscriber_mapping_rate", i64(c.limits.subscriber_mapping_rate)},
                     {"subscriber_mapping_burst", i64(c.limits.subscriber_mapping_burst)}}},
        {"icmp", toml::table{{"unreachable", c.icmp.unreachable},
                             {"unreachable_rate", i64(c.icmp.unreachable_rate)},
                             {"unsolicited_syn_unreachable", c.icmp.unsolicited_syn_unreachable}}},
        {"fragments", toml::table{{"timeout", i64(c.fragments.timeout)},
                                  {"max_datagrams", i64(c.fragments.max_datagrams)},
                                  {"max_per_datagram", i64(c.fragments.max_per_datagram)}}},
    };
    if (!c.statics.empty()) {
        root.insert("static", statics_array(c.statics)); // [[static]], in order
    }
    root.insert("logging", logging_table(c.logging));
    root.insert("alarms", toml::table{{"pool_ports_high", i64(c.alarms.pool_ports_high)},
                                      {"pool_ports_clear", i64(c.alarms.pool_ports_clear)},
                                      {"forecast_window", i64(c.alarms.forecast_window)}});
    if (c.metrics.enabled()) {
        root.insert("metrics", toml::table{{"listen", c.metrics.address.to_string() + ":" +
                                                          std::to_string(c.metrics.port)}});
    }
    if (!c.ha.state_file.empty() || c.ha.paired() || c.ha.handover()) {
        toml::table ha;
        if (!c.ha.state_file.empty()) {
            ha.insert("state_file", c.ha.state_file);
        }
        if (c.ha.handover()) {
            ha.insert("handover",
                      c.ha.handover_address.to_string() + ":" + std::to_string(c.ha.handover_port));
            if (!c.ha.migrate_hook.empty()) {
                ha.insert("migrate_hook", c.ha.migrate_hook);
                ha.insert("migrate_hook_timeout", i64(c.ha.migrate_hook_timeout_s));
            }
        }
        if (c.ha.paired()) {
            ha.insert("role", c.ha.role == HaRole::active ? "active" : "standby");
            ha.insert("listen",
                      c.ha.listen_address.to_string() + ":" + std::to_string(c.ha.listen_port));
            ha.insert("peer", c.ha.peer_address.to_string() + ":" + std::to_string(c.ha.peer_port));
            ha.insert("dead_interval", i64(c.ha.dead_interval_ms));
            ha.insert("refresh_interval", i64(c.ha.refresh_interval));
        }
        root.insert("ha", std::move(ha));
    }
    return root;
}

// Whether writing `node` out as TOML takes toml++ 3.3.0 into undefined behaviour: deciding
// whether an array fits on one line, its formatter casts log10 of each floating-point element
// to size_t (NaN, infinities and magnitudes under 0.1 do not fit) and negates each negative
// integer (-2^63 overflows). No config key takes a float, nor an integer that large, so a
// value holding one inside an array or table is refused before it is written out.
bool unprintable(const toml::node& node, bool nested) {
    if (const auto* array = node.as_array()) {
        return std::any_of(array->begin(), array->end(),
                           [](const toml::node& e) { return unprintable(e, true); });
    }
    if (const auto* table = node.as_table()) {
        return std::any_of(table->begin(), table->end(),
                           [](const auto& kv) { return unprintable(kv.second, true); });
    }
    const auto* integer = node.as_integer();
    return nested &&
           (node.is_floating_point() ||
            (integer != nullptr && integer->get() == std::numeric_limits<std::int64_t>::min()));
}

std::string serialize(const toml::table& t) {
    std::ostringstream out;
    out << t;
    return out.str();
}

// Reparses the edited table; refusals name the runtime change rather than a file.
std::variant<Config, ConfigError> reparse(const toml::table& t, const Config& current,
                                          std::string what) {
    auto result = parse_config(serialize(t), std::move(what));
    if (auto* cfg = std::get_if<Config>(&result)) {
        cfg->source = current.source; // the file SIGHUP rereads stays the same
    }
    return result;
}

} // namespace

std::string config_to_toml(const Config& config) {
    return serialize(to_table(config));
}

std::variant<Config, ConfigError> edit_config(const Config& current, std::string_view key,
                                              std::string_view value) {
    const std::string what = "runtime change";
    const auto dot = key.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == key.size()) {
        return ConfigError{what, std::string(key), "expected a key of the form table.key"};
    }
    // The mode decides how every port was handed out, and deterministic mode's formula is what
    // past log-free answers rest on: neither may change under live mappings.
    if (key == "pool.mode" || key.starts_with("pool.deterministic.")) {
        return ConfigError{what, std::string(key),
                           "cannot change while running: the allocation mode and its "
                           "deterministic formula are fixed at start (restart ephemera to "
                           "change it)"};
    }
    // Collectors and the archive are arrays of tables and a table of their own: they change
    // in the file, which `ephemeractl reload` (SIGHUP) rereads whole.
    if (key.starts_with("logging.syslog") || key.starts_with("logging.ipfix") ||
        key.starts_with("logging.archive")) {
        return ConfigError{what, std::string(key),
                           "collectors and the archive change in the config file: edit it, then "
                           "ephemeractl reload"};
    }
    if (key == "ha.handover") {
        return ConfigError{what, std::string(key),
                           "cannot change while running: its listener is opened at start "
                           "(restart ephemera to change it)"};
    }
    if (key.starts_with("ha.") && key != "ha.state_file" && key != "ha.migrate_hook" &&
        key != "ha.migrate_hook_timeout") {
        return ConfigError{what, std::string(key),
                           "cannot change while running: the HA pair is set up at start "
                           "(restart the standby first, then the active)"};
    }
    // The listener is opened once, at start, where a port that cannot be bound stops ephemera.
    if (key.starts_with("metrics.")) {
        return ConfigError{what, std::string(key),
                           "cannot change while running: the /metrics listener is opened at "
                           "start (restart ephemera to change it)"};
    }
    std::string events_value;
    if (key == "logging.events") {
        if (auto text = events_array_text(value)) {
            events_value = std::move(*text);
            value = events_value;
        }
    }
    toml::table root = to_table(current);
    toml::table* table = root.get_as<toml::table>(key.substr(0, dot));
    if (table == nullptr) {
        return ConfigError{what, std::string(key), "unknown key"};
    }
    // A key in a nested table ("pool.blocks.max_blocks"): a missing table is created here, so
    // that the parser refuses it for the reason a file would be refused.
    std::size_t from = dot + 1;
    for (std::size_t next = key.find('.', from); next != std::string_view::npos;
         from = next + 1, next = key.find('.', from)) {
        if (next == from || next + 1 == key.size()) {
            return ConfigError{what, std::string(key), "expected a key of the form table.key"};
        }
        const std::string name(key.substr(from, next - from));
        if (table->get(name) == nullptr) {
            table->insert(name, toml::table{});
        }
        table = table->get_as<toml::table>(name);
        if (table == nullptr) {
            return ConfigError{what, std::string(key), "unknown key"};
        }
    }
    if (!is_valid_utf8(value)) {
        return ConfigError{what, std::string(key), "the value is not valid UTF-8"};
    }
    const std::string assignment = "v = " + std::string(value);
    toml::table parsed;
    // A value toml++ must not read (see check_toml_text) is not TOML either: a bare word.
    if (check_toml_text(assignment, what)) {
        parsed = toml::table{{"v", std::string(value)}};
    } else {
        try {
            parsed = toml::parse(assignment);
        } catch (const toml::parse_error&) {
            parsed = toml::table{{"v", std::string(value)}}; // a bare word: a string
        }
    }
    if (unprintable(*parsed.get("v"), false)) {
        return ConfigError{what, std::string(key),
                           "the value holds a floating-point number or -2^63 in an array or "
                           "table; no config key takes one"};
    }
    const std::string leaf(key.substr(from));
    // Shorthands that stand for several keys in a file must replace those keys here.
    if (leaf == "subscriber_ports") {
        for (const char* k :
             {"subscriber_ports_udp", "subscriber_ports_tcp", "subscriber_ports_icmp"}) {
            table->erase(k);
        }
    }
    table->insert_or_assign(leaf, *parsed.get("v"));
    return reparse(root, current, what);
}

std::variant<Config, ConfigError> edit_pool(const Config& current, std::string_view address,
                                            bool add) {
    const std::string what = add ? "pool add" : "pool remove";
    const auto addr = Ipv4Addr::parse(address);
    if (!addr) {
        return ConfigError{what, "pool.addresses", "not an IPv4 address: " + std::string(address)};
    }
    std::vector<Ipv4Addr> pool = current.pool;
    const auto it = std::find(pool.begin(), pool.end(), *addr);
    if (add) {
        if (it != pool.end()) {
            return ConfigError{what, "pool.addresses",
                               addr->to_string() + " is already in the pool"};
        }
        pool.push_back(*addr);
    } else {
        if (it == pool.end()) {
            return ConfigError{what, "pool.addresses", addr->to_string() + " is not in the pool"};
        }
        pool.erase(it);
    }
    Config next = current;
    next.pool = pool;
    return reparse(to_table(next), current, what);
}

std::variant<Config, ConfigError> edit_static(const Config& current, const StaticMapping& entry,
                                              bool add) {
    const std::string what = add ? "static add" : "static remove";
    Config next = current;
    if (add) {
        next.statics.push_back(entry);
    } else {
        // A mapping is named by its external endpoint, which has one owner.
        const auto it =
            std::find_if(next.statics.begin(), next.statics.end(), [&](const StaticMapping& m) {
                return m.one_to_one() == entry.one_to_one() && m.external == entry.external &&
                       (m.one_to_one() ||
                        (m.proto == entry.proto && m.external_port == entry.external_port));
            });
        if (it == next.statics.end()) {
            return ConfigError{what, "static",
                               "no static mapping for " + static_external_text(entry)};
        }
        next.statics.erase(it);
    }
    return reparse(to_table(next), current, what);
}

bool operator==(const Timeouts& a, const Timeouts& b) {
    return a.udp == b.udp && a.tcp_established == b.tcp_established &&
           a.tcp_transitory == b.tcp_transitory && a.icmp == b.icmp &&
           a.port_hold_down == b.port_hold_down && a.inbound_refresh == b.inbound_refresh;
}

std::optional<ConfigError> check_runtime_change(const Config& from, const Config& to) {
    const auto refuse = [&](std::string key) {
        return ConfigError{"runtime change", std::move(key),
                           "cannot change while running (restart ephemera to change it)"};
    };
    if (to.inside.port != from.inside.port) {
        return refuse("inside.port");
    }
    if (to.inside.gateway != from.inside.gateway) {
        return refuse("inside.gateway");
    }
    if (to.outside.port != from.outside.port) {
        return refuse("outside.port");
    }
    // Offloads are a port's configuration: set before it starts.
    if (to.inside.checksum_offload != from.inside.checksum_offload) {
        return refuse("inside.checksum_offload");
    }
    if (to.outside.checksum_offload != from.outside.checksum_offload) {
        return refuse("outside.checksum_offload");
    }
    if (to.outside.next_hop != from.outside.next_hop) {
        return refuse("outside.next_hop");
    }
    if (to.outside.next_hop_mac != from.outside.next_hop_mac) {
        return refuse("outside.next_hop_mac");
    }
    if (to.allocation != from.allocation) {
        return refuse("pool.mode");
    }
    if (to.deterministic.prefix != from.deterministic.prefix ||
        to.deterministic.prefix_len != from.deterministic.prefix_len) {
        return refuse("pool.deterministic.subscribers");
    }
    if (to.deterministic.min_ports != from.deterministic.min_ports) {
        return refuse("pool.deterministic.min_ports");
    }
    // The formula maps every subscriber through the pool and port_range as well.
    if (from.allocation == AllocationMode::deterministic) {
        if (to.pool != from.pool) {
            return refuse("pool.addresses");
        }
        if (to.port_range != from.port_range) {
            return refuse("pool.port_range");
        }
    }
    // New blocks take a new block_size, max_blocks, active_block_timeout or interim; the
    // adaptive sizing keeps per-subscriber history that is sized and scaled at start.
    if (to.blocks.adaptive != from.blocks.adaptive) {
        return refuse("pool.blocks.adaptive");
    }
    if (to.blocks.min_block_size != from.blocks.min_block_size) {
        return refuse("pool.blocks.min_block_size");
    }
    if (to.blocks.max_block_size != from.blocks.max_block_size) {
        return refuse("pool.blocks.max_block_size");
    }
    if (to.blocks.records_per_day != from.blocks.records_per_day) {
        return refuse("pool.blocks.records_per_day");
    }
    if (to.logging.ring_size != from.logging.ring_size) {
        return ConfigError{"runtime change", "logging.ring_size",
                           "cannot change while running: each worker's event ring is sized at "
                           "start (restart ephemera to change it)"};
    }
    {
        if (to.ha.handover_address != from.ha.handover_address ||
            to.ha.handover_port != from.ha.handover_port) {
            return ConfigError{"runtime change", "ha.handover",
                               "cannot change while running: its listener is opened at start "
                               "(restart ephemera to change it)"};
        }
        HaConfig to_pair = to.ha;
        to_pair.state_file = from.ha.state_file;     // read at stop: it may change
        to_pair.migrate_hook = from.ha.migrate_hook; // read when it runs
        to_pair.migrate_hook_timeout_s = from.ha.migrate_hook_timeout_s;
        if (to_pair != from.ha) {
            return ConfigError{"runtime change", "ha",
                               "cannot change while running: the HA pair is set up at start "
                               "(restart the standby first, then the active)"};
        }
    }
    if (to.metrics != from.metrics) {
        return ConfigError{"runtime change", "metrics.listen",
                           "cannot change while running: the /metrics listener is opened at "
                           "start (restart ephemera to change it)"};
    }
    if (to.limits.max_sessions != from.limits.max_sessions) {
        return refuse("limits.max_sessions");
    }
    if (to.limits.subscribers() != from.limits.subscribers()) {
        return refuse("limits.max_subscribers"); // each worker's table is sized at start
    }
    // Each worker's fragment table is sized at start. MTUs may change: workers read them from
    // the config they latch.
    if (to.fragments.timeout != from.fragments.timeout) {
        return refuse("fragments.timeout");
    }
    if (to.fragments.max_datagrams != from.fragments.max_datagrams) {
        return refuse("fragments.max_datagrams");
    }
    if (to.fragments.max_per_datagram != from.fragments.max_per_datagram) {
        return refuse("fragments.max_per_datagram");
    }
    return std::nullopt;
}

} // namespace ephemera
