// [ha] (docs/ha.md): where the sessions are kept across a restart. Only what can be checked
// before the EAL starts is checked here: the path's form and that its directory exists.
#include "config_parse.hpp"

#include <filesystem>

namespace ephemera::config_parse {

void parse_ha(const toml::table& root, Config& cfg) {
    const toml::table* ha = optional_table(root, "ha");
    if (ha == nullptr) {
        return;
    }
    check_known_keys(*ha, "ha", {"state_file"});
    const toml::node* node = ha->get("state_file");
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

std::string describe_ha(const Config& cfg) {
    if (cfg.ha.state_file.empty()) {
        return "sessions:    lost at restart (no ha.state_file)\n";
    }
    return "sessions:    kept across a restart in " + cfg.ha.state_file + "\n";
}

} // namespace ephemera::config_parse
