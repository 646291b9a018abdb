// [ha] (docs/ha.md): the sessions kept across a restart, and the active/standby pair. Only what
// can be checked before the EAL starts is checked here: the state file's directory exists,
// the sync link's addresses are well formed and not the same; whether the listen address can
// be bound is for start-up to say.
#include "config_parse.hpp"

#include <unistd.h>

#include <filesystem>

namespace ephemera::config_parse {

namespace {

void parse_state_file(const toml::table& ha, Config& cfg) {
    const toml::node* node = ha.get("state_file");
    if (node == nullptr) {
        return;
    }
    const std::string key = "ha.state_file";
    const std::string path = string_value(*node, key);
    if (path.empty() || path.back() == '/') {
        refuse(key, config_parse::quoted(path) +
                        " must name a file, e.g. \"/var/lib/ephemera/sessions.state\"");
    }
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        refuse(key, config_parse::quoted(path) + ": the directory " +
                        config_parse::quoted(parent.string()) +
                        " does not exist (the state is written there when ephemera stops)");
    }
    if (std::filesystem::is_directory(path, ec)) {
        refuse(key, config_parse::quoted(path) + " is a directory; name a file in it");
    }
    cfg.ha.state_file = path;
}

// "ADDRESS:PORT" of one end of the sync link.
std::pair<Ipv4Addr, std::uint16_t> endpoint(const toml::table& ha, std::string_view name) {
    const std::string key = join_key("ha", name);
    const toml::node* node = ha.get(name);
    if (node == nullptr) {
        refuse(key, "missing required key: with ha.role set, both ends of the sync link are "
                    "needed, as ADDRESS:PORT, e.g. \"192.0.2.1:5880\"");
    }
    const std::string text = string_value(*node, key);
    const auto colon = text.rfind(':');
    const auto address = colon == std::string::npos
                             ? std::nullopt
                             : Ipv4Addr::parse(std::string_view(text).substr(0, colon));
    const auto port = colon == std::string::npos
                          ? std::nullopt
                          : parse_port_number(std::string_view(text).substr(colon + 1));
    if (!address || !port || *port == 0 || *port > 65535) {
        refuse(key, config_parse::quoted(text) + " is not ADDRESS:PORT with a dotted IPv4 "
                                                 "address and a port 1..65535");
    }
    if (address->value() == 0 || address->is_martian()) {
        refuse(key, config_parse::quoted(text) + ": " + address->to_string() +
                        " is not a unicast address of a host");
    }
    return {*address, static_cast<std::uint16_t>(*port)};
}

} // namespace

void parse_ha(const toml::table& root, Config& cfg) {
    const toml::table* ha = optional_table(root, "ha");
    if (ha == nullptr) {
        return;
    }
    check_known_keys(*ha, "ha",
                     {"state_file", "role", "listen", "peer", "dead_interval", "refresh_interval",
                      "handover", "migrate_hook", "migrate_hook_timeout"});
    parse_state_file(*ha, cfg);
    const toml::node* role = ha->get("role");
    if (ha->get("handover") != nullptr) {
        if (role != nullptr) {
            refuse("ha.handover", "is for unpaired scale-out boxes: a box with ha.role fails "
                                  "over to its standby instead");
        }
        std::tie(cfg.ha.handover_address, cfg.ha.handover_port) = endpoint(*ha, "handover");
    }
    if (const toml::node* hook = ha->get("migrate_hook")) {
        const std::string path = string_value(*hook, "ha.migrate_hook");
        if (!cfg.ha.handover()) {
            refuse("ha.migrate_hook", "needs ha.handover: only a box that hands subscribers "
                                      "over runs it");
        }
        if (path.empty() || path.front() != '/' || ::access(path.c_str(), X_OK) != 0) {
            refuse("ha.migrate_hook", config_parse::quoted(path) +
                                          " is not an executable file named by its full path");
        }
        cfg.ha.migrate_hook = path;
    }
    if (ha->get("migrate_hook_timeout") != nullptr && cfg.ha.migrate_hook.empty()) {
        refuse("ha.migrate_hook_timeout", "needs ha.migrate_hook: it bounds how long the hook "
                                          "runs");
    }
    if (const auto v = optional_integer(*ha, "ha", "migrate_hook_timeout", 1,
                                        HaConfig::kMaxMigrateHookTimeout, " s")) {
        cfg.ha.migrate_hook_timeout_s = static_cast<std::uint32_t>(*v);
    }
    if (role == nullptr) {
        for (const char* key : {"listen", "peer", "dead_interval", "refresh_interval"}) {
            if (ha->get(key) != nullptr) {
                refuse(join_key("ha", key), "needs ha.role (\"active\" or \"standby\"): the "
                                            "pair's keys mean nothing without it");
            }
        }
        return;
    }
    const std::string role_text = string_value(*role, "ha.role");
    if (role_text == "active") {
        cfg.ha.role = HaRole::active;
    } else if (role_text == "standby") {
        cfg.ha.role = HaRole::standby;
    } else {
        refuse("ha.role", config_parse::quoted(role_text) +
                              " is not a role: \"active\" (forwards at start) or \"standby\" "
                              "(takes over when the active falls silent)");
    }
    std::tie(cfg.ha.listen_address, cfg.ha.listen_port) = endpoint(*ha, "listen");
    std::tie(cfg.ha.peer_address, cfg.ha.peer_port) = endpoint(*ha, "peer");
    if (cfg.ha.listen_address == cfg.ha.peer_address && cfg.ha.listen_port == cfg.ha.peer_port) {
        refuse("ha.peer", "is ha.listen itself: the peer is the other box's listen address");
    }
    if (const auto v = optional_integer(*ha, "ha", "dead_interval", HaConfig::kMinDeadInterval,
                                        HaConfig::kMaxDeadInterval, " ms")) {
        cfg.ha.dead_interval_ms = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*ha, "ha", "refresh_interval", 1,
                                        HaConfig::kMaxRefreshInterval, " s")) {
        cfg.ha.refresh_interval = static_cast<std::uint32_t>(*v);
    }
}

std::string describe_ha(const Config& cfg) {
    std::string out = cfg.ha.state_file.empty()
                          ? "sessions:    lost at restart (no ha.state_file)\n"
                          : "sessions:    kept across a restart in " + cfg.ha.state_file + "\n";
    if (cfg.ha.paired()) {
        out += std::string("ha:          ") +
               (cfg.ha.role == HaRole::active ? "active" : "standby") + " at start, sync on " +
               cfg.ha.listen_address.to_string() + ":" + std::to_string(cfg.ha.listen_port) +
               ", peer " + cfg.ha.peer_address.to_string() + ":" +
               std::to_string(cfg.ha.peer_port) + ", takeover after " +
               std::to_string(cfg.ha.dead_interval_ms) + " ms of silence, refresh every " +
               std::to_string(cfg.ha.refresh_interval) + " s\n";
    }
    if (cfg.ha.handover()) {
        out += "hand-over:   takes drained boxes' sessions on " +
               cfg.ha.handover_address.to_string() + ":" + std::to_string(cfg.ha.handover_port) +
               "; `ephemeractl drain --to PEER` hands this box's over\n";
    }
    return out;
}

} // namespace ephemera::config_parse
