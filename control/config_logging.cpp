// [logging]: which NAT events are recorded and where they go (docs/logging.md). Checked like the
// rest of the file: a malformed collector, an unknown event group or transport, a ring size that
// is not a power of two, or an archive key file that cannot be read is refused with its key.
// A collector that does not answer is not: the logging thread warns and counts (sinks report
// their errors in telemetry), since a collector's outage must never keep subscribers offline.
#include "config_parse.hpp"

#include "ephemera/nat_event.hpp"

#include <fstream>

namespace ephemera {
namespace config_parse {
namespace {

struct EventGroup {
    std::string_view name;
    std::uint32_t kinds;
};

constexpr std::uint32_t bit(NatEventKind k) {
    return 1u << static_cast<unsigned>(k);
}

// What the operator switches on or off, by what it is for rather than record by record.
constexpr EventGroup kEventGroups[] = {
    {"mapping", bit(NatEventKind::mapping_created) | bit(NatEventKind::mapping_deleted)},
    {"block", bit(NatEventKind::block_allocated) | bit(NatEventKind::block_released) |
                  bit(NatEventKind::block_interim)},
    {"static", bit(NatEventKind::static_added) | bit(NatEventKind::static_removed)},
    {"deterministic", bit(NatEventKind::deterministic_formula)},
    {"exhaustion", bit(NatEventKind::ports_exhausted) | bit(NatEventKind::quota_exceeded)},
    {"threshold", bit(NatEventKind::threshold_reached)},
};

std::string group_names() {
    std::string out;
    for (const auto& g : kEventGroups) {
        out += out.empty() ? "" : ", ";
        out += g.name;
    }
    return out;
}

std::uint32_t group_bits(std::string_view name) {
    for (const auto& g : kEventGroups) {
        if (g.name == name) {
            return g.kinds;
        }
    }
    return 0;
}

// Per-mapping records are what port blocks and the deterministic formula exist to avoid, so
// each mode logs by default what identifies a subscriber in it.
std::uint32_t default_events(AllocationMode mode) {
    const std::uint32_t common =
        group_bits("static") | group_bits("exhaustion") | group_bits("threshold");
    switch (mode) {
    case AllocationMode::blocks:
        return common | group_bits("block");
    case AllocationMode::deterministic:
        return common | group_bits("deterministic");
    case AllocationMode::dynamic:
        break;
    }
    return common | group_bits("mapping");
}

std::uint8_t facility_value(std::string_view name, const std::string& key) {
    static constexpr std::pair<std::string_view, std::uint8_t> kFacilities[] = {
        {"user", 1},    {"daemon", 3},  {"auth", 4},    {"local0", 16},
        {"local1", 17}, {"local2", 18}, {"local3", 19}, {"local4", 20},
        {"local5", 21}, {"local6", 22}, {"local7", 23}};
    for (const auto& [n, v] : kFacilities) {
        if (n == name) {
            return v;
        }
    }
    refuse(key, "unknown syslog facility " + quoted(name) +
                    "; use user, daemon, auth or local0 to local7");
}

// "A.B.C.D:PORT" or "A.B.C.D" (then the transport's well-known port).
LogCollector collector_value(const toml::table& t, const std::string& table_key,
                             std::uint16_t udp_port, std::uint16_t tcp_port) {
    LogCollector c;
    if (const toml::node* node = t.get("transport")) {
        const std::string key = join_key(table_key, "transport");
        const std::string kind = string_value(*node, key);
        if (kind != "udp" && kind != "tcp") {
            refuse(key, "unknown transport " + quoted(kind) + "; use udp or tcp");
        }
        c.tcp = kind == "tcp";
    }
    const std::string key = join_key(table_key, "collector");
    const toml::node* node = t.get("collector");
    if (node == nullptr) {
        refuse(key, "missing required key: the collector's ADDRESS or ADDRESS:PORT");
    }
    const std::string text = string_value(*node, key);
    const auto colon = text.find(':');
    const auto address = Ipv4Addr::parse(std::string_view(text).substr(0, colon));
    if (!address) {
        refuse(key, quoted(text) + " is not ADDRESS or ADDRESS:PORT (dotted IPv4)");
    }
    c.address = *address;
    c.port = c.tcp ? tcp_port : udp_port;
    if (colon != std::string::npos) {
        const auto port = parse_port_number(std::string_view(text).substr(colon + 1));
        if (!port || *port == 0 || *port > 65535) {
            refuse(key, quoted(text) + ": the port must be 1..65535");
        }
        c.port = static_cast<std::uint16_t>(*port);
    }
    // A collector may be on this host (127.0.0.1: a local rsyslogd or collector), but never
    // "this network", multicast, class E or broadcast: nothing answers there over TCP, and a
    // datagram there is not a collector's.
    const std::uint32_t first = c.address.value() >> 24;
    if (first == 0 || first >= 224) {
        refuse(key, quoted(text) + ": not a unicast address a collector can have");
    }
    return c;
}

const toml::array* optional_array(const toml::table& t, std::string_view name,
                                  const std::string& key) {
    const toml::node* node = t.get(name);
    if (node == nullptr) {
        return nullptr;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr) {
        refuse_type(key, "an array", *node);
    }
    return array;
}

// Array of tables: [[logging.syslog]] and [[logging.ipfix]].
template <typename F>
void each_collector(const toml::table& logging, std::string_view name, F&& f) {
    const std::string key = join_key("logging", name);
    const toml::array* array = optional_array(logging, name, key);
    if (array == nullptr) {
        return;
    }
    if (array->size() > LoggingConfig::kMaxCollectors) {
        refuse(key, std::to_string(array->size()) + " collectors; at most " +
                        std::to_string(LoggingConfig::kMaxCollectors) + " are allowed");
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
        const std::string entry = element_key(key, i);
        const toml::table* t = (*array)[i].as_table();
        if (t == nullptr) {
            refuse_type(entry, "a table", (*array)[i]);
        }
        f(*t, entry);
    }
}

void parse_archive(const toml::table& logging, LoggingConfig& log) {
    const toml::node* node = logging.get("archive");
    if (node == nullptr) {
        return;
    }
    const toml::table* t = node->as_table();
    if (t == nullptr) {
        refuse_type("logging.archive", "a table", *node);
    }
    check_known_keys(
        *t, "logging.archive",
        {"path", "rotate_size", "rotate_age", "retention", "compress", "hmac_key_file"});
    ArchiveConfig& a = log.archive;
    const toml::node* path = t->get("path");
    if (path == nullptr) {
        refuse("logging.archive.path", "missing required key: the archive's directory");
    }
    a.path = string_value(*path, "logging.archive.path");
    if (a.path.empty()) {
        refuse("logging.archive.path", "must name a directory");
    }
    if (const auto v = optional_integer(*t, "logging.archive", "rotate_size", 1, 4096, " MiB")) {
        a.rotate_size = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*t, "logging.archive", "rotate_age", 60, 86400 * 7, " s")) {
        a.rotate_age = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*t, "logging.archive", "retention", 1, 3650, " days")) {
        a.retention = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_bool(*t, "logging.archive", "compress")) {
        a.compress = *v;
    }
    if (const toml::node* key = t->get("hmac_key_file")) {
        a.hmac_key_file = string_value(*key, "logging.archive.hmac_key_file");
        std::ifstream in(a.hmac_key_file, std::ios::binary);
        char first = 0;
        if (!in || !in.get(first)) {
            refuse("logging.archive.hmac_key_file",
                   quoted(a.hmac_key_file) + " cannot be read or is empty");
        }
    }
}

} // namespace

void parse_logging(const toml::table& root, Config& cfg) {
    LoggingConfig& log = cfg.logging;
    log.events = default_events(cfg.allocation);
    const toml::table* logging = optional_table(root, "logging");
    if (logging == nullptr) {
        return;
    }
    check_known_keys(*logging, "logging",
                     {"events", "destination", "ring_size", "syslog", "ipfix", "archive",
                      "address_ports_threshold", "sessions_threshold",
                      "subscriber_ports_threshold"});
    if (const toml::array* events = optional_array(*logging, "events", "logging.events")) {
        log.events = 0;
        for (std::size_t i = 0; i < events->size(); ++i) {
            const std::string key = element_key("logging.events", i);
            const std::string name = string_value((*events)[i], key);
            const std::uint32_t bits = group_bits(name);
            if (bits == 0) {
                refuse(key, "unknown event group " + quoted(name) + "; use " + group_names());
            }
            log.events |= bits;
        }
    }
    if (const auto v = optional_bool(*logging, "logging", "destination")) {
        log.destination = *v;
    }
    if (const auto v = optional_integer(*logging, "logging", "ring_size", LoggingConfig::kMinRing,
                                        LoggingConfig::kMaxRing, " records")) {
        if ((*v & (*v - 1)) != 0) {
            refuse("logging.ring_size", "must be a power of two, got " + std::to_string(*v));
        }
        log.ring_size = static_cast<std::uint32_t>(*v);
    }
    if (const auto v =
            optional_integer(*logging, "logging", "address_ports_threshold", 0, 100, " %")) {
        log.address_ports_threshold = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*logging, "logging", "sessions_threshold", 0, 100, " %")) {
        log.sessions_threshold = static_cast<std::uint32_t>(*v);
    }
    if (const auto v =
            optional_integer(*logging, "logging", "subscriber_ports_threshold", 0, 100, " %")) {
        log.subscriber_ports_threshold = static_cast<std::uint32_t>(*v);
    }
    each_collector(*logging, "syslog", [&](const toml::table& t, const std::string& key) {
        check_known_keys(t, key, {"collector", "transport", "facility"});
        SyslogCollector c;
        static_cast<LogCollector&>(c) = collector_value(t, key, 514, 601);
        if (const toml::node* f = t.get("facility")) {
            const std::string fkey = join_key(key, "facility");
            c.facility = facility_value(string_value(*f, fkey), fkey);
        }
        log.syslog.push_back(c);
    });
    each_collector(*logging, "ipfix", [&](const toml::table& t, const std::string& key) {
        check_known_keys(t, key,
                         {"collector", "transport", "observation_domain", "template_refresh"});
        IpfixCollector c;
        static_cast<LogCollector&>(c) = collector_value(t, key, 4739, 4739);
        if (const auto v = optional_integer(t, key, "observation_domain", 0, 0xffffffffLL)) {
            c.observation_domain = static_cast<std::uint32_t>(*v);
        }
        if (const auto v = optional_integer(t, key, "template_refresh", 1, 86400, " s")) {
            c.template_refresh = static_cast<std::uint32_t>(*v);
        }
        log.ipfix.push_back(c);
    });
    parse_archive(*logging, log);
}

std::string describe_logging(const Config& cfg) {
    const LoggingConfig& log = cfg.logging;
    if (!log.any_sink()) {
        return "logging:     off (no collector, no archive)\n";
    }
    std::string groups;
    for (const auto& g : kEventGroups) {
        if ((log.events & g.kinds) != 0) {
            groups += groups.empty() ? "" : ",";
            groups += g.name;
        }
    }
    std::string out =
        "logging:     events " + (groups.empty() ? std::string{"none"} : groups) +
        ((log.events & group_bits("threshold")) != 0
             ? " (watermarks: address ports " + std::to_string(log.address_ports_threshold) +
                   " %, subscriber ports " + std::to_string(log.subscriber_ports_threshold) +
                   " %, sessions " + std::to_string(log.sessions_threshold) + " %)"
             : std::string{}) +
        (log.destination ? " with destinations" : "") + ", ring " + std::to_string(log.ring_size) +
        " records per worker\n";
    for (const auto& c : log.syslog) {
        out += "  syslog " + std::string(c.tcp ? "tcp " : "udp ") + c.address.to_string() + ':' +
               std::to_string(c.port) + '\n';
    }
    for (const auto& c : log.ipfix) {
        out += "  ipfix  " + std::string(c.tcp ? "tcp " : "udp ") + c.address.to_string() + ':' +
               std::to_string(c.port) + ", templates every " + std::to_string(c.template_refresh) +
               " s\n";
    }
    if (!log.archive.path.empty()) {
        out += "  archive " + log.archive.path + ", rotated at " +
               std::to_string(log.archive.rotate_size) + " MiB or " +
               std::to_string(log.archive.rotate_age) + " s, kept " +
               std::to_string(log.archive.retention) + " days" +
               (log.archive.hmac_key_file.empty() ? "" : ", HMAC") + '\n';
    }
    return out;
}

} // namespace config_parse

std::vector<std::string> logging_event_groups(std::uint32_t events) {
    std::vector<std::string> out;
    for (const auto& g : config_parse::kEventGroups) {
        if ((events & g.kinds) == g.kinds) {
            out.emplace_back(g.name);
        }
    }
    return out;
}

} // namespace ephemera
