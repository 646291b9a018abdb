// [alarms]: the pool-wide port use watermark and the exhaustion forecast's window
// (control/alarms/pool_watch.hpp, docs/metrics.md). A clear line at or above the high one would
// raise and clear the alarm on the same sample, so it is refused.
#include "config_parse.hpp"

namespace ephemera::config_parse {

void parse_alarms(const toml::table& root, Config& cfg) {
    const toml::table* alarms = optional_table(root, "alarms");
    if (alarms == nullptr) {
        return;
    }
    AlarmsConfig& a = cfg.alarms;
    check_known_keys(*alarms, "alarms", {"pool_ports_high", "pool_ports_clear", "forecast_window"});
    if (const auto v = optional_integer(*alarms, "alarms", "pool_ports_high", 0, 100, " %")) {
        a.pool_ports_high = static_cast<std::uint32_t>(*v);
    }
    if (const auto v = optional_integer(*alarms, "alarms", "pool_ports_clear", 0, 99, " %")) {
        a.pool_ports_clear = static_cast<std::uint32_t>(*v);
    } else if (a.pool_ports_high != 0 && a.pool_ports_clear >= a.pool_ports_high) {
        // Only the high line was given: the default clear line follows it down.
        a.pool_ports_clear = a.pool_ports_high > 10 ? a.pool_ports_high - 10 : 0;
    }
    if (a.pool_ports_high != 0 && a.pool_ports_clear >= a.pool_ports_high) {
        refuse("alarms.pool_ports_clear", "must be below alarms.pool_ports_high (" +
                                              std::to_string(a.pool_ports_high) + " %), got " +
                                              std::to_string(a.pool_ports_clear) + " %");
    }
    if (const auto v = optional_integer(*alarms, "alarms", "forecast_window",
                                        AlarmsConfig::kMinWindow, AlarmsConfig::kMaxWindow, " s")) {
        a.forecast_window = static_cast<std::uint32_t>(*v);
    }
}

std::string describe_alarms(const Config& cfg) {
    const AlarmsConfig& a = cfg.alarms;
    const std::string window =
        ", exhaustion forecast over " + std::to_string(a.forecast_window) + " s\n";
    if (a.pool_ports_high == 0) {
        return "alarms:      pool port use: off" + window;
    }
    return "alarms:      pool port use high at " + std::to_string(a.pool_ports_high) +
           " %, cleared at " + std::to_string(a.pool_ports_clear) + " %" + window;
}

} // namespace ephemera::config_parse
