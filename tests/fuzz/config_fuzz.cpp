// libFuzzer target: the TOML config parser and the runtime edit path (control/config.cpp,
// control/config_edit.cpp), with toml++ compiled in and checked by the sanitizers (the fuzz
// build uses toml++ header-only, see meson.build).
//
// The input is a config file. Its first line is also read as a runtime change, "KEY VALUE" (the
// value runs to the end of the input, so it may span lines), applied to a fixed valid config
// and, when the input parses, to that config too: the way ephemeractl set and pool add/remove
// reach the parser.
//
// Checked besides the sanitizers: nothing throws; every refusal names a file and a reason; an
// accepted config (from the file or from an edit) is written out as TOML and read back to the
// same text (config_edit.hpp promises an equal Config); check_runtime_change never throws.
#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

using namespace ephemera;

namespace {

[[noreturn]] void violated(const std::string& what) {
    std::fprintf(stderr, "config fuzz: invariant violated: %s\n", what.c_str());
    std::abort();
}

const char* const kBase = R"(
[pool]
addresses = ["198.18.0.100", "198.18.0.101", "203.0.113.0/30"]
port_range = "linux"
reserved = ["40000-40010", "50000"]
[inside]
port = "net_ring0"
gateway = "100.64.0.1"
[outside]
port = "net_ring1"
next_hop = "198.18.0.2"
[filtering]
mode = "address"
[limits]
max_sessions = 4096
subscriber_ports = 16
[icmp]
unsolicited_syn_unreachable = true
[fragments]
max_datagrams = 64
)";

const Config& base() {
    static const Config config = [] {
        auto parsed = parse_config(kBase, "base.toml");
        if (const auto* e = std::get_if<ConfigError>(&parsed)) {
            violated("the base config is refused: " + e->to_string());
        }
        return std::get<Config>(std::move(parsed));
    }();
    return config;
}

void check_refusal(const ConfigError& e) {
    if (e.file.empty() || e.reason.empty()) {
        violated("a refusal without a file or a reason: " + e.to_string());
    }
}

// An accepted config reads back from its own TOML as the same config.
void check_round_trip(const Config& config) {
    const std::string text = config_to_toml(config);
    auto again = parse_config(text, config.source);
    if (const auto* e = std::get_if<ConfigError>(&again)) {
        violated("config_to_toml wrote what parse_config refuses: " + e->to_string() + "\n" + text);
    }
    if (config_to_toml(std::get<Config>(again)) != text) {
        violated("config_to_toml does not round-trip:\n" + text);
    }
    (void)describe_config(config);
}

void check_result(const std::variant<Config, ConfigError>& result, const Config* running) {
    if (const auto* e = std::get_if<ConfigError>(&result)) {
        check_refusal(*e);
        return;
    }
    const Config& config = std::get<Config>(result);
    check_round_trip(config);
    if (running != nullptr) {
        if (const auto refusal = check_runtime_change(*running, config)) {
            check_refusal(*refusal);
        }
    }
}

void edit(const Config& running, std::string_view key, std::string_view value) {
    check_result(edit_config(running, key, value), &running);
    check_result(edit_pool(running, value, true), &running);
    check_result(edit_pool(running, value, false), &running);
    for (const bool with_inside : {true, false}) {
        const auto spec = parse_static_spec(value, with_inside);
        if (const auto* entry = std::get_if<StaticMapping>(&spec)) {
            check_result(edit_static(running, *entry, with_inside), &running);
        } else {
            check_refusal(std::get<ConfigError>(spec));
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_config(text, "fuzz.toml");
    check_result(parsed, nullptr);

    // The first line as "KEY VALUE"; the value runs on to the end of the input.
    const std::size_t line_end = text.find('\n');
    const std::size_t space = text.find(' ');
    if (space != std::string_view::npos && space < line_end) {
        const std::string_view key = text.substr(0, space);
        const std::string_view value = text.substr(space + 1);
        edit(base(), key, value);
        if (const auto* config = std::get_if<Config>(&parsed)) {
            edit(*config, key, value);
        }
    }
    return 0;
}
