// [metrics]: where the Prometheus /metrics listener is opened (docs/metrics.md). Only the
// spelling is checked here; whether the port can be bound is for start-up to say.
#include "config_parse.hpp"

namespace ephemera::config_parse {

void parse_metrics(const toml::table& root, Config& cfg) {
    const toml::table* metrics = optional_table(root, "metrics");
    if (metrics == nullptr) {
        return;
    }
    check_known_keys(*metrics, "metrics", {"listen"});
    const std::string key = "metrics.listen";
    const toml::node* node = metrics->get("listen");
    if (node == nullptr) {
        refuse(key, "missing required key: ADDRESS:PORT to serve /metrics on, e.g. "
                    "\"127.0.0.1:9469\" (leave [metrics] out to switch it off)");
    }
    const std::string text = string_value(*node, key);
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
        refuse(key, quoted(text) + " is not ADDRESS:PORT, e.g. \"127.0.0.1:9469\"");
    }
    const auto address = Ipv4Addr::parse(std::string_view(text).substr(0, colon));
    if (!address) {
        refuse(key, quoted(text) + ": " + quoted(text.substr(0, colon)) +
                        " is not a dotted IPv4 address");
    }
    const auto port = parse_port_number(std::string_view(text).substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) {
        refuse(key, quoted(text) + ": the port must be 1..65535");
    }
    // 0.0.0.0 listens on every address; multicast, class E and broadcast cannot be listened on.
    if ((address->value() >> 24) >= 224) {
        refuse(key, quoted(text) + ": " + address->to_string() +
                        " is not a unicast address this host can listen on");
    }
    cfg.metrics.address = *address;
    cfg.metrics.port = static_cast<std::uint16_t>(*port);
}

std::string describe_metrics(const Config& cfg) {
    if (!cfg.metrics.enabled()) {
        return "metrics:     off\n";
    }
    return "metrics:     http://" + cfg.metrics.address.to_string() + ":" +
           std::to_string(cfg.metrics.port) + "/metrics\n";
}

} // namespace ephemera::config_parse
