#include "det.hpp"

#include "format.hpp"

#include <cstdio>
#include <string_view>

namespace ephemeractl {

namespace {

using ephemera::DeterministicMap;
using ephemera::Ipv4Addr;
using ephemera::PortRange;

std::string range_text(PortRange r) {
    return std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

std::string prefix_text(const DeterministicMap& map) {
    return map.prefix().to_string() + "/" + std::to_string(map.prefix_len());
}

// "a.b.c.d/len" as the server writes it.
std::optional<std::pair<Ipv4Addr, std::uint8_t>> parse_prefix(std::string_view text) {
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    const auto addr = Ipv4Addr::parse(text.substr(0, slash));
    const std::string_view len_text = text.substr(slash + 1);
    unsigned len = 0;
    if (!addr || len_text.empty() || len_text.size() > 2) {
        return std::nullopt;
    }
    for (char c : len_text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        len = len * 10 + static_cast<unsigned>(c - '0');
    }
    if (len < 8 || len > 32) {
        return std::nullopt;
    }
    return std::pair{*addr, static_cast<std::uint8_t>(len)};
}

// Subscribers a map with this shape has room for, so that a malformed reply cannot make a map
// whose arithmetic the parser would have refused.
bool usable_shape(const ephemera::DeterministicShape& s) {
    return s.pool_addresses >= 1 && s.pool_addresses <= 65535 && s.ports_per_subscriber >= 1;
}

Outcome miss(const std::string& what, const std::string& why, const Json& data,
             const Display& display) {
    return {kExitRefused, display.json ? data.dump(2) + "\n" : "",
            "ephemeractl: " + what + ": " + why + "\n"};
}

} // namespace

std::variant<DeterministicMap, std::string> det_map_from_config(const ephemera::Config& config) {
    if (config.allocation != ephemera::AllocationMode::deterministic) {
        return "the pool is not in deterministic mode (pool.mode is \"" +
               std::string(ephemera::allocation_mode_name(config.allocation)) +
               "\"): no formula maps its subscribers";
    }
    return DeterministicMap(config);
}

std::variant<DeterministicMap, std::string> det_map_from_reply(const Json& reply) {
    if (!reply.is_object()) {
        return "malformed /ephemera/config reply: not an object";
    }
    const auto mode = reply.find("pool_mode");
    if (mode == reply.end() || !mode->is_string()) {
        return "this ephemera's /ephemera/config reply has no pool_mode: it predates "
               "deterministic mode, so it runs dynamic allocation";
    }
    if (*mode != "deterministic") {
        return "the pool is not in deterministic mode (pool.mode is \"" + mode->get<std::string>() +
               "\"): no formula maps its subscribers";
    }
    const auto prefix_it = reply.find("det_subscribers");
    const auto lo = reply.find("port_range_lo");
    const auto hi = reply.find("port_range_hi");
    const auto runs = reply.find("det_pool");
    if (runs == reply.end()) {
        return "the reply lists no pool (more runs than a telemetry array holds); use "
               "--config FILE";
    }
    if (prefix_it == reply.end() || !prefix_it->is_string() || lo == reply.end() ||
        !lo->is_number_unsigned() || hi == reply.end() || !hi->is_number_unsigned() ||
        !runs->is_array()) {
        return "malformed /ephemera/config reply: det_subscribers, port_range_lo, "
               "port_range_hi or det_pool missing or of the wrong type";
    }
    const auto prefix = parse_prefix(prefix_it->get<std::string>());
    const auto lo_value = lo->get<std::uint64_t>();
    const auto hi_value = hi->get<std::uint64_t>();
    if (!prefix || lo_value == 0 || lo_value > hi_value || hi_value > 65535) {
        return "malformed /ephemera/config reply: bad det_subscribers or port range";
    }
    std::vector<Ipv4Addr> pool;
    for (const Json& run : *runs) {
        if (!run.is_string()) {
            return "malformed /ephemera/config reply: a det_pool entry is not a string";
        }
        const std::string text = run.get<std::string>();
        const std::size_t dash = text.find('-');
        const auto first = Ipv4Addr::parse(std::string_view(text).substr(0, dash));
        const auto last = dash == std::string::npos
                              ? first
                              : Ipv4Addr::parse(std::string_view(text).substr(dash + 1));
        if (!first || !last || *last < *first ||
            pool.size() + (last->value() - first->value()) >= 65535) {
            return "malformed /ephemera/config reply: bad det_pool entry \"" + text + "\"";
        }
        for (std::uint32_t v = first->value();; ++v) {
            pool.emplace_back(v);
            if (v == last->value()) {
                break;
            }
        }
    }
    const PortRange range{static_cast<std::uint16_t>(lo_value),
                          static_cast<std::uint16_t>(hi_value)};
    if (!usable_shape(ephemera::deterministic_shape(
            prefix->second, static_cast<std::uint32_t>(pool.size()), range))) {
        return "malformed /ephemera/config reply: its pool and port range give no subscriber "
               "a port";
    }
    return DeterministicMap(prefix->first, prefix->second, std::move(pool), range);
}

Outcome det_answer(const DeterministicMap& map, const DetCommand& command, const Display& display) {
    if (!command.reverse) {
        const auto inside = Ipv4Addr::parse(command.argument);
        if (!inside) {
            return {kExitUsage, "", "ephemeractl: " + command.argument + ": not an IPv4 address\n"};
        }
        const auto f = map.forward(*inside);
        if (!f) {
            Json data{{"subscriber", inside->to_string()},
                      {"pool_address", nullptr},
                      {"reason", "outside the subscriber prefix " + prefix_text(map)}};
            return miss(inside->to_string(),
                        "not a subscriber: outside the subscriber prefix " + prefix_text(map), data,
                        display);
        }
        Json data{{"subscriber", inside->to_string()},
                  {"pool_address", f->pool_address.to_string()},
                  {"ports", range_text(f->ports)},
                  {"port_count", f->ports.size()},
                  {"pool_index", f->pool_index},
                  {"ratio", map.ratio()},
                  {"ports_per_subscriber", map.ports_per_subscriber()}};
        return {kExitOk, display.json ? data.dump(2) + "\n" : format_settings(data), ""};
    }
    const std::size_t colon = command.argument.rfind(':');
    const auto address = Ipv4Addr::parse(std::string_view(command.argument).substr(0, colon));
    unsigned long port = 65536;
    if (colon != std::string::npos) {
        const std::string port_text = command.argument.substr(colon + 1);
        if (!port_text.empty() && port_text.size() <= 5 &&
            port_text.find_first_not_of("0123456789") == std::string::npos) {
            port = std::stoul(port_text);
        }
    }
    if (!address || port > 65535) {
        return {kExitUsage, "",
                "ephemeractl: " + command.argument +
                    ": want ADDR:PORT, such as 198.18.0.10:12345\n"};
    }
    const auto p = static_cast<std::uint16_t>(port);
    const ephemera::ReverseResult r = map.lookup_reverse(*address, p);
    const std::string endpoint = address->to_string() + ":" + std::to_string(p);
    if (!r.subscriber) {
        std::string why(ephemera::reverse_miss_text(r.miss));
        if (r.miss == ephemera::ReverseMiss::outside_port_range ||
            r.miss == ephemera::ReverseMiss::unassigned_port) {
            const PortRange range = map.port_range();
            const std::uint32_t assigned =
                static_cast<std::uint32_t>(map.ratio()) * map.ports_per_subscriber();
            why += " (ports " +
                   range_text(
                       PortRange{range.lo, static_cast<std::uint16_t>(range.lo + assigned - 1)}) +
                   " of port_range " + range_text(range) + " are assigned)";
        }
        Json data{{"pool_address", address->to_string()},
                  {"port", p},
                  {"subscriber", nullptr},
                  {"reason", why}};
        return miss(endpoint, "no subscriber holds it: " + why, data, display);
    }
    const auto f = map.forward(*r.subscriber);
    Json data{{"pool_address", address->to_string()},
              {"port", p},
              {"subscriber", r.subscriber->to_string()},
              {"ports", range_text(f->ports)}};
    return {kExitOk, display.json ? data.dump(2) + "\n" : format_settings(data), ""};
}

int run_det(const std::string& socket_path, const DetCommand& command, const Display& display) {
    std::variant<DeterministicMap, std::string> map = std::string{};
    if (!command.config_file.empty()) {
        auto config = ephemera::load_config_file(command.config_file);
        if (const auto* e = std::get_if<ephemera::ConfigError>(&config)) {
            std::fprintf(stderr, "ephemeractl: config refused: %s\n", e->to_string().c_str());
            return kExitNoReply;
        }
        map = det_map_from_config(std::get<ephemera::Config>(config));
    } else {
        try {
            TelemetryClient client(socket_path, kSocketTimeout);
            const Json reply = client.query(config_request());
            if (reply.is_null()) {
                std::fprintf(stderr, "ephemeractl: %s: no data: the command failed\n",
                             config_request().command.c_str());
                return kExitNoReply;
            }
            map = det_map_from_reply(reply);
        } catch (const TelemetryError& e) {
            std::fprintf(stderr, "ephemeractl: %s\n", e.what());
            return kExitNoReply;
        }
    }
    if (const auto* why = std::get_if<std::string>(&map)) {
        const bool malformed = why->starts_with("malformed");
        std::fprintf(stderr, "ephemeractl: det: %s\n", why->c_str());
        return malformed ? kExitNoReply : kExitRefused;
    }
    const Outcome outcome = det_answer(std::get<DeterministicMap>(map), command, display);
    std::fputs(outcome.err.c_str(), stderr);
    std::fputs(outcome.out.c_str(), stdout);
    return outcome.status;
}

} // namespace ephemeractl
