// [[static]]: port forwards and 1:1 mappings. Each entry is checked on its own (spelling,
// addresses, where its port lies), then against the entries before it: an external endpoint
// has one owner, and an inside endpoint one external endpoint (RFC 4787 REQ-1), so that the
// mapping a static entry pins is the one every flow of its inside endpoint uses.
#include "config_parse.hpp"

#include "ephemera/config.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace ephemera {

namespace {

// "A.B.C.D" (port 0) or "A.B.C.D:PORT" with PORT in 1..65535; nullopt for anything else, with
// `why` saying what is wrong when it is the port.
struct Endpoint {
    Ipv4Addr addr;
    std::uint16_t port = 0;
};

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& why) {
    const std::size_t colon = text.find(':');
    const auto addr = Ipv4Addr::parse(text.substr(0, colon));
    if (!addr) {
        return std::nullopt;
    }
    if (colon == std::string_view::npos) {
        return Endpoint{*addr, 0};
    }
    const auto port = config_parse::parse_port_number(text.substr(colon + 1));
    if (!port) {
        return std::nullopt;
    }
    if (*port == 0 || *port > 65535) {
        why = "port must be 1 to 65535";
        return std::nullopt;
    }
    return Endpoint{*addr, static_cast<std::uint16_t>(*port)};
}

std::string endpoint_text(Ipv4Addr addr, std::uint16_t port) {
    return port == 0 ? addr.to_string() : addr.to_string() + ":" + std::to_string(port);
}

std::optional<Protocol> protocol_named(std::string_view name) {
    if (name == "tcp") {
        return Protocol::tcp;
    }
    if (name == "udp") {
        return Protocol::udp;
    }
    return std::nullopt;
}

// An endpoint of one protocol as one number, for the uniqueness maps.
std::uint64_t endpoint_key(Ipv4Addr addr, Protocol proto, std::uint16_t port) {
    return (std::uint64_t{addr.value()} << 24) |
           (std::uint64_t{static_cast<std::uint8_t>(proto)} << 16) | port;
}

} // namespace

std::string static_external_text(const StaticMapping& m) {
    if (m.one_to_one()) {
        return m.external.to_string();
    }
    return std::string(protocol_name(m.proto)) + " " + endpoint_text(m.external, m.external_port);
}

std::string static_mapping_text(const StaticMapping& m) {
    return static_external_text(m) + " " + endpoint_text(m.inside, m.inside_port);
}

std::variant<StaticMapping, ConfigError> parse_static_spec(std::string_view text,
                                                           bool with_inside) {
    const auto refused = [&](std::string reason) {
        return ConfigError{"runtime change", "static", std::move(reason)};
    };
    std::vector<std::string_view> words;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t end = std::min(text.find(' ', i), text.size());
        if (end > i) {
            words.push_back(text.substr(i, end - i));
        }
        i = end + 1;
    }
    const std::string usage =
        with_inside ? "expected \"tcp|udp EXTERNAL:PORT INSIDE:PORT\" or \"EXTERNAL INSIDE\" (1:1)"
                    : "expected \"tcp|udp EXTERNAL:PORT\" or \"EXTERNAL\" (1:1)";
    StaticMapping m;
    std::size_t next = 0;
    if (!words.empty()) {
        if (const auto proto = protocol_named(words[0])) {
            m.proto = *proto;
            next = 1;
        } else if (words[0].find_first_of(".:") == std::string_view::npos) {
            return refused("unknown protocol " + config_parse::quoted(words[0]) + " (" + usage +
                           ")");
        }
    }
    const bool forward = next == 1;
    const std::size_t wanted = next + (with_inside ? 2 : 1);
    if (words.size() != wanted) {
        return refused(usage);
    }
    std::string why;
    const auto external = parse_endpoint(words[next], why);
    if (!external) {
        return refused(std::string(words[next]) + ": " + (why.empty() ? usage : why));
    }
    if (forward != (external->port != 0)) {
        return refused(std::string(words[next]) + ": " +
                       (forward ? "a port forward needs a port"
                                : "a port forward starts with its protocol, tcp or udp") +
                       " (" + usage + ")");
    }
    m.external = external->addr;
    m.external_port = external->port;
    if (with_inside) {
        const auto inside = parse_endpoint(words[next + 1], why);
        if (!inside) {
            return refused(std::string(words[next + 1]) + ": " + (why.empty() ? usage : why));
        }
        if (forward != (inside->port != 0)) {
            return refused(std::string(words[next + 1]) + ": " +
                           (forward ? "a port forward needs a port" : "1:1 takes no port") + " (" +
                           usage + ")");
        }
        m.inside = inside->addr;
        m.inside_port = inside->port;
    }
    return m;
}

namespace config_parse {

namespace {

// One side of an entry: its address and port (0: none), refused when it is not a string of
// that form.
Endpoint endpoint_value(const toml::table& entry, const std::string& entry_key,
                        std::string_view name) {
    const std::string key = join_key(entry_key, name);
    const toml::node* node = entry.get(name);
    if (node == nullptr) {
        refuse(key, "missing required key (a static mapping needs external and inside)");
    }
    const std::string text = string_value(*node, key);
    std::string why;
    const auto endpoint = parse_endpoint(text, why);
    if (!endpoint) {
        refuse(key, quoted(text) + (why.empty() ? "" : ": " + why) +
                        " (expected \"A.B.C.D:PORT\" for a port forward, such as "
                        "\"198.18.0.10:8080\", or \"A.B.C.D\" for 1:1)");
    }
    return *endpoint;
}

// The port forward's external port must be one that no subscriber is handed: outside the
// dynamic part of port_range.
void check_forward_port(const Config& cfg, std::uint16_t port, const std::string& key) {
    if (!cfg.port_range.contains(port)) {
        return;
    }
    for (const PortRange& r : cfg.reserved) {
        if (r.contains(port)) {
            return;
        }
    }
    // Deterministic mode refuses pool.reserved, so there the way out is below or above.
    refuse(key,
           "port " + std::to_string(port) + " lies in the dynamic range " +
               range_text(cfg.port_range) +
               " (pool.port_range), handed out to subscribers; use a port outside it" +
               (cfg.allocation == AllocationMode::deterministic ? "" : " or in pool.reserved"));
}

bool is_pool_address(const Config& cfg, Ipv4Addr addr) {
    return std::find(cfg.pool.begin(), cfg.pool.end(), addr) != cfg.pool.end();
}

// Who holds what so far, by entry index, to name both entries of a conflict.
struct Owners {
    std::unordered_map<std::uint64_t, std::size_t> external_endpoint; // forwards
    std::unordered_map<std::uint64_t, std::size_t> inside_endpoint;   // forwards
    std::unordered_map<std::uint32_t, std::size_t> forward_external;  // first forward per address
    std::unordered_map<std::uint32_t, std::size_t> forward_inside;    // first forward per address
    std::unordered_map<std::uint32_t, std::size_t> one_to_one_external;
    std::unordered_map<std::uint32_t, std::size_t> one_to_one_inside;
};

std::string entry_name(std::size_t index) {
    return element_key("static", index);
}

template <typename Map, typename Key>
const std::size_t* find_owner(const Map& map, Key key) {
    const auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
}

void check_forward(const Config& cfg, const StaticMapping& m, std::size_t i, Owners& owners) {
    const std::string ext_key = join_key(entry_name(i), "external");
    const std::string in_key = join_key(entry_name(i), "inside");
    const std::string ext = static_external_text(m);
    const std::string in =
        std::string(protocol_name(m.proto)) + " " + endpoint_text(m.inside, m.inside_port);
    if (const auto* j = find_owner(owners.one_to_one_external, m.external.value())) {
        refuse(ext_key, m.external.to_string() + " is the external address of the 1:1 mapping " +
                            entry_name(*j) + ", which owns every port of it");
    }
    if (!is_pool_address(cfg, m.external)) {
        refuse(ext_key, m.external.to_string() + " is not a pool address (pool.addresses)");
    }
    check_forward_port(cfg, m.external_port, ext_key);
    if (const auto* j = find_owner(owners.external_endpoint,
                                   endpoint_key(m.external, m.proto, m.external_port))) {
        refuse(ext_key, ext + ": same external endpoint as " + entry_name(*j));
    }
    if (const auto* j = find_owner(owners.one_to_one_inside, m.inside.value())) {
        refuse(in_key, m.inside.to_string() + " has the 1:1 mapping " + entry_name(*j) +
                           ", which already covers every port of it");
    }
    if (const auto* j =
            find_owner(owners.inside_endpoint, endpoint_key(m.inside, m.proto, m.inside_port))) {
        refuse(in_key, in + ": same inside endpoint as " + entry_name(*j) +
                           "; an inside endpoint has one external endpoint (RFC 4787 REQ-1)");
    }
    owners.external_endpoint.emplace(endpoint_key(m.external, m.proto, m.external_port), i);
    owners.inside_endpoint.emplace(endpoint_key(m.inside, m.proto, m.inside_port), i);
    owners.forward_external.emplace(m.external.value(), i);
    owners.forward_inside.emplace(m.inside.value(), i);
}

void check_one_to_one(const Config& cfg, const StaticMapping& m, std::size_t i, Owners& owners) {
    const std::string ext_key = join_key(entry_name(i), "external");
    const std::string in_key = join_key(entry_name(i), "inside");
    const std::string ext = m.external.to_string();
    if (const auto* j = find_owner(owners.one_to_one_external, m.external.value())) {
        refuse(ext_key, ext + ": same external address as the 1:1 mapping " + entry_name(*j));
    }
    if (const auto* j = find_owner(owners.forward_external, m.external.value())) {
        refuse(ext_key, ext + " has the port forward " + entry_name(*j) +
                            "; a 1:1 mapping owns its external address whole");
    }
    if (is_pool_address(cfg, m.external)) {
        refuse(ext_key, ext + " is a pool address (pool.addresses), whose ports are handed out "
                              "to subscribers; a 1:1 address must be outside the pool");
    }
    if (m.external == cfg.inside.gateway) {
        refuse(ext_key, ext + " is inside.gateway, ephemera's own address");
    }
    if (m.external == cfg.outside.next_hop) {
        refuse(ext_key, ext + " is outside.next_hop, another host");
    }
    if (const auto* j = find_owner(owners.one_to_one_inside, m.inside.value())) {
        refuse(in_key, m.inside.to_string() + " already has the 1:1 mapping " + entry_name(*j));
    }
    if (const auto* j = find_owner(owners.forward_inside, m.inside.value())) {
        refuse(in_key, m.inside.to_string() + " has the port forward " + entry_name(*j) +
                           "; a 1:1 mapping would cover its ports too");
    }
    owners.one_to_one_external.emplace(m.external.value(), i);
    owners.one_to_one_inside.emplace(m.inside.value(), i);
}

StaticMapping parse_entry(const toml::node& node, std::size_t i, const Config& cfg) {
    const std::string key = entry_name(i);
    const toml::table* entry = node.as_table();
    if (entry == nullptr) {
        refuse_type(key, "a table", node);
    }
    check_known_keys(*entry, key, {"protocol", "external", "inside"});
    const Endpoint external = endpoint_value(*entry, key, "external");
    const Endpoint inside = endpoint_value(*entry, key, "inside");
    const std::string ext_key = join_key(key, "external");
    const std::string in_key = join_key(key, "inside");
    if ((external.port == 0) != (inside.port == 0)) {
        refuse(external.port == 0 ? ext_key : in_key,
               "has no port but " + std::string(external.port == 0 ? "inside" : "external") +
                   " has one; a port forward gives both ports, a 1:1 mapping neither");
    }
    StaticMapping m;
    m.external = external.addr;
    m.inside = inside.addr;
    m.external_port = external.port;
    m.inside_port = inside.port;

    const toml::node* proto = entry->get("protocol");
    const std::string proto_key = join_key(key, "protocol");
    if (m.one_to_one()) {
        if (proto != nullptr) {
            refuse(proto_key, "a 1:1 mapping (no ports) covers every protocol; remove protocol");
        }
    } else {
        if (proto == nullptr) {
            refuse(proto_key, "missing required key (a port forward needs protocol = \"tcp\" or "
                              "\"udp\")");
        }
        const std::string text = string_value(*proto, proto_key);
        const auto p = protocol_named(text);
        if (!p) {
            refuse(proto_key,
                   "unknown protocol " + quoted(text) + " (expected \"tcp\" or \"udp\")");
        }
        m.proto = *p;
    }

    if (const std::string why = unusable_address_reason(m.external); !why.empty()) {
        refuse(ext_key, m.external.to_string() + " " + why);
    }
    if (m.external.is_martian()) {
        refuse(ext_key, m.external.to_string() +
                            " is in 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/3, which no outside "
                            "host can reach");
    }
    // Subscribers' own addresses (100.64.0.0/10 among them) are fine; martian ones the
    // dataplane drops as sources.
    if (m.inside.is_martian()) {
        refuse(in_key, m.inside.to_string() +
                           " is in 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/3, which no inside "
                           "host can use");
    }
    if (m.inside == cfg.inside.gateway) {
        refuse(in_key, m.inside.to_string() + " is inside.gateway, ephemera's own address");
    }
    if (is_pool_address(cfg, m.inside)) {
        refuse(in_key, m.inside.to_string() +
                           " is a pool address (pool.addresses), an outside address; inside "
                           "names an inside host");
    }
    return m;
}

} // namespace

void parse_statics(const toml::table& root, Config& cfg) {
    const toml::node* node = root.get("static");
    if (node == nullptr) {
        return;
    }
    const toml::array* entries = node->as_array();
    if (entries == nullptr) {
        refuse_type("static", "an array of tables ([[static]])", *node);
    }
    if (entries->size() > kMaxStatics) {
        refuse("static", std::to_string(entries->size()) + " static mappings; at most " +
                             std::to_string(kMaxStatics) + " are allowed");
    }
    Owners owners;
    std::size_t one_to_one = 0;
    for (std::size_t i = 0; i < entries->size(); ++i) {
        const StaticMapping m = parse_entry(*entries->get(i), i, cfg);
        if (m.one_to_one()) {
            if (++one_to_one > kMaxOneToOne) {
                refuse(entry_name(i), "more than " + std::to_string(kMaxOneToOne) +
                                          " 1:1 mappings; each 1:1 address costs the dataplane "
                                          "per-address port state");
            }
            check_one_to_one(cfg, m, i, owners);
        } else {
            check_forward(cfg, m, i, owners);
        }
        cfg.statics.push_back(m);
    }
}

std::string describe_statics(const Config& cfg) {
    if (cfg.statics.empty()) {
        return "static:      none\n";
    }
    std::size_t one_to_one = 0;
    for (const StaticMapping& m : cfg.statics) {
        one_to_one += m.one_to_one() ? 1 : 0;
    }
    const std::size_t forwards = cfg.statics.size() - one_to_one;
    std::string out = "static:      " + std::to_string(forwards) +
                      (forwards == 1 ? " port forward, " : " port forwards, ") +
                      std::to_string(one_to_one) + " 1:1\n";
    // The whole list can be 65536 lines; the summary shows where it starts.
    constexpr std::size_t kListed = 16;
    for (std::size_t i = 0; i < cfg.statics.size() && i < kListed; ++i) {
        const StaticMapping& m = cfg.statics[i];
        out += "             " + static_external_text(m) + " -> " +
               endpoint_text(m.inside, m.inside_port) + "\n";
    }
    if (cfg.statics.size() > kListed) {
        out += "             ... and " + std::to_string(cfg.statics.size() - kListed) + " more\n";
    }
    return out;
}

} // namespace config_parse

} // namespace ephemera
