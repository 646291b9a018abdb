#include "plan_command.hpp"

#include "format.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

namespace ephemeractl {

namespace {

using planner::Mode;
using planner::Setup;

const Request kTopRequest{"/ephemera/top", {}};

bool is_count(const Json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
}

std::optional<std::uint64_t> field(const Json& data, const char* key) {
    const auto it = data.find(key);
    if (it == data.end() || !is_count(*it)) {
        return std::nullopt;
    }
    return it->get<std::uint64_t>();
}

// "name (lo-hi)" as /ephemera/config writes port_range: hi - lo + 1 ports.
std::optional<std::uint32_t> range_size(const Json& config) {
    const auto it = config.find("port_range");
    if (it == config.end() || !it->is_string()) {
        return std::nullopt;
    }
    const std::string text = it->get<std::string>();
    unsigned lo = 0;
    unsigned hi = 0;
    const std::size_t open = text.rfind('(');
    if (open == std::string::npos || std::sscanf(text.c_str() + open, "(%u-%u)", &lo, &hi) != 2 ||
        lo > hi || hi > 65535) {
        return std::nullopt;
    }
    return hi - lo + 1;
}

// The fewest usable ports of any address and protocol (udp, tcp) in a /ephemera/ports reply,
// row-wise ({address: {...}}) or column-wise ({"udp_usable": [...], ...}).
std::optional<std::uint32_t> fewest_usable(const Json& ports) {
    if (!ports.is_object()) {
        return std::nullopt;
    }
    std::uint64_t fewest = std::numeric_limits<std::uint64_t>::max();
    const auto consider = [&](const Json& v) {
        if (is_count(v)) {
            fewest = std::min(fewest, v.get<std::uint64_t>());
        }
    };
    for (const char* key : {"udp_usable", "tcp_usable"}) {
        if (const auto column = ports.find(key); column != ports.end() && column->is_array()) {
            std::for_each(column->begin(), column->end(), consider);
        }
    }
    for (const auto& [name, row] : ports.items()) {
        if (row.is_object()) {
            for (const char* key : {"udp_usable", "tcp_usable"}) {
                if (const auto v = row.find(key); v != row.end()) {
                    consider(*v);
                }
            }
        }
    }
    if (fewest == 0 || fewest > planner::kMaxPortsPerAddress) {
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(fewest);
}

std::string percent(double rate) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.3f%%", rate * 100.0);
    return text;
}

std::string compared(std::uint32_t needed, std::uint32_t now) {
    if (needed == now) {
        return " (as now)";
    }
    return needed > now ? " (" + std::to_string(needed - now) + " more than now)"
                        : " (" + std::to_string(now - needed) + " fewer than now)";
}

Json plan_json(const Setup& s, const planner::Plan& plan) {
    Json data{{"subscribers", s.subscribers},
              {"pool_size", s.pool_size},
              {"ports_per_address", s.ports_per_address},
              {"workers", s.workers},
              {"pool_mode", s.mode == Mode::blocks ? "blocks" : "dynamic"}};
    if (s.mode == Mode::blocks) {
        data["block_size"] = s.block_size;
        data["max_blocks"] = s.max_blocks;
    }
    const auto or_null = [](const std::optional<std::uint32_t>& v) {
        return v ? Json(*v) : Json(nullptr);
    };
    data["target"] = plan.target;
    data["refusal_rate"] = plan.current;
    data["meets_target"] = plan.current <= plan.target;
    if (s.mode == Mode::blocks) {
        data["beyond_max_blocks"] = plan.beyond_max_blocks;
    }
    data["pool_size_needed"] = or_null(plan.pool_size);
    data["ports_per_address_needed"] = or_null(plan.ports_per_address);
    if (s.mode == Mode::blocks) {
        Json options = Json::array();
        for (const planner::BlockOption& o : plan.blocks) {
            options.push_back({{"block_size", o.block_size},
                               {"max_blocks", or_null(o.max_blocks)},
                               {"refusal_rate", o.refusal_rate},
                               {"pool_size_needed", or_null(o.pool_size)}});
        }
        data["block_options"] = std::move(options);
    }
    return data;
}

Outcome usage(const std::string& why) {
    return {kExitUsage, "", "ephemeractl: plan: " + why + "\n"};
}

Outcome no_reply(const std::string& why) {
    return {kExitNoReply, "", "ephemeractl: plan: " + why + "\n"};
}

} // namespace

std::string read_histogram(const Json& data, Setup& setup) {
    if (!data.is_object()) {
        return "not a JSON object";
    }
    const auto le = data.find("ports_le");
    const auto count = data.find("ports_count");
    if (le == data.end() || !le->is_array() || count == data.end() || !count->is_array()) {
        return "no ports_le and ports_count arrays";
    }
    if (le->size() != count->size()) {
        return "ports_le has " + std::to_string(le->size()) + " entries and ports_count " +
               std::to_string(count->size()) + ": they must match";
    }
    const auto subscribers = field(data, "subscribers");
    if (!subscribers) {
        return "no subscribers count";
    }
    setup.demand.clear();
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < le->size(); ++i) {
        const Json& bound = (*le)[i];
        const Json& n = (*count)[i];
        if (!is_count(bound) || !is_count(n)) {
            return "ports_le and ports_count must hold non-negative integers (entry " +
                   std::to_string(i) + ")";
        }
        // No subscriber holds more than an address's ports on one protocol: an open last
        // bucket (a bound beyond that) is taken at that.
        setup.demand.push_back({static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                    bound.get<std::uint64_t>(), planner::kMaxPortsPerAddress)),
                                n.get<std::uint64_t>()});
        total += n.get<std::uint64_t>();
    }
    // The count and the buckets are read at slightly different times: take the larger.
    setup.subscribers = std::max(*subscribers, total);
    if (setup.subscribers == 0) {
        return "no subscribers: nothing to plan";
    }
    return {};
}

std::string read_pool(const Json& config, const Json& ports, Setup& setup) {
    if (!config.is_object()) {
        return "malformed /ephemera/config reply: not an object";
    }
    const auto pool = field(config, "pool_addresses");
    const auto workers = field(config, "workers");
    if (!pool || *pool == 0 || *pool > planner::kMaxPoolSize || !workers || *workers == 0) {
        return "malformed /ephemera/config reply: pool_addresses or workers missing or bad";
    }
    setup.pool_size = static_cast<std::uint32_t>(*pool);
    setup.workers =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(*workers, planner::kMaxWorkers));
    const auto mode = config.find("pool_mode");
    const std::string mode_name =
        mode != config.end() && mode->is_string() ? mode->get<std::string>() : "dynamic";
    if (mode_name == "deterministic") {
        return "the pool is in deterministic mode: every subscriber has a fixed share of ports "
               "whatever the others use, so there is no shared pool to plan (see ephemeractl "
               "det)";
    }
    if (mode_name == "blocks") {
        const auto size = field(config, "block_size");
        const auto max = field(config, "max_blocks");
        if (!size || *size == 0 || *size > 65535 || !max || *max == 0 || *max > 65535) {
            return "malformed /ephemera/config reply: block_size or max_blocks missing or bad";
        }
        setup.mode = Mode::blocks;
        setup.block_size = static_cast<std::uint32_t>(*size);
        setup.max_blocks = static_cast<std::uint32_t>(*max);
    } else if (mode_name != "dynamic") {
        return "unknown pool_mode \"" + mode_name + "\"";
    }
    if (const auto usable = fewest_usable(ports)) {
        setup.ports_per_address = *usable;
    } else if (const auto range = range_size(config)) {
        setup.ports_per_address = *range;
    } else {
        return "malformed /ephemera/config reply: no port_range, and no usable ports from "
               "/ephemera/ports";
    }
    return {};
}

std::string format_plan(const Setup& s, const planner::Plan& plan, bool json) {
    if (json) {
        return plan_json(s, plan).dump(2) + "\n";
    }
    Json lines;
    lines["subscribers"] = s.subscribers;
    lines["pool"] = std::to_string(s.pool_size) + " addresses, " +
                    std::to_string(s.ports_per_address) + " ports each, " +
                    std::to_string(s.workers) + (s.workers == 1 ? " worker" : " workers");
    lines["mode"] = s.mode == Mode::dynamic
                        ? std::string("dynamic")
                        : "blocks of " + std::to_string(s.block_size) + ", at most " +
                              std::to_string(s.max_blocks) + " per subscriber";
    lines["target"] = percent(plan.target) + " of subscribers refused at the peak";
    lines["refused now"] =
        percent(plan.current) +
        (plan.current <= plan.target ? " (meets the target)" : " (over the target)");
    if (s.mode == Mode::blocks) {
        lines["beyond max_blocks"] = percent(plan.beyond_max_blocks) + " need more than " +
                                     std::to_string(s.block_size * s.max_blocks) +
                                     " ports, refused whatever the pool";
    }
    lines["pool size"] = plan.pool_size ? std::to_string(*plan.pool_size) + " addresses" +
                                              compared(*plan.pool_size, s.pool_size)
                                        : std::string("none: not even 65535 addresses meet it");
    if (plan.ports_per_address) {
        const std::uint32_t n = *plan.ports_per_address;
        lines["ports per address"] = std::to_string(n) + compared(n, s.ports_per_address) +
                                     ", e.g. port_range \"" + std::to_string(65536 - n) +
                                     "-65535\" plus any reserved ports";
    } else {
        lines["ports per address"] =
            "none: not even 65535 ports per address meet it with this pool";
    }
    std::string text = format_settings(lines);
    if (s.mode == Mode::blocks) {
        // Per block size: the max_blocks that meets the target with this pool (and the rate
        // there), and the pool that would meet it otherwise.
        text += "\nblock_size  max_blocks  refused at it  pool size\n";
        for (const planner::BlockOption& o : plan.blocks) {
            char row[128];
            std::snprintf(row, sizeof(row), "%-10u  %-10s  %-13s  %s%s\n", o.block_size,
                          o.max_blocks ? std::to_string(*o.max_blocks).c_str() : "none",
                          percent(o.refusal_rate).c_str(),
                          o.pool_size ? std::to_string(*o.pool_size).c_str() : "none",
                          o.block_size == s.block_size ? "  (block_size now)" : "");
            text += row;
        }
    }
    return text;
}

Outcome run_plan(const std::string& socket_path, const PlanCommand& command,
                 const Display& display) {
    Setup setup;
    if (!command.histogram_file.empty()) {
        std::ifstream in(command.histogram_file);
        if (!in) {
            return usage(command.histogram_file + ": cannot read it");
        }
        std::stringstream buffer;
        buffer << in.rdbuf();
        const Json data = Json::parse(buffer.str(), nullptr, false);
        if (data.is_discarded()) {
            return usage(command.histogram_file + ": not JSON");
        }
        if (const std::string why = read_histogram(data, setup); !why.empty()) {
            return usage(command.histogram_file + ": " + why);
        }
        if (!command.pool_size || !command.ports_per_address) {
            return usage("with --histogram, give --pool-size and --ports-per-address");
        }
        setup.pool_size = *command.pool_size;
        setup.ports_per_address = *command.ports_per_address;
        setup.workers = command.workers;
        setup.mode = command.mode == "blocks" ? Mode::blocks : Mode::dynamic;
        setup.block_size = command.block_size;
        setup.max_blocks = command.max_blocks;
    } else {
        try {
            TelemetryClient client(socket_path, kSocketTimeout);
            const Json top = client.query(kTopRequest);
            if (top.is_null()) {
                return no_reply(kTopRequest.command +
                                ": no data: this ephemera does not give the distribution of "
                                "ports per subscriber (use --histogram FILE)");
            }
            if (const std::string why = read_histogram(top, setup); !why.empty()) {
                return no_reply("malformed " + kTopRequest.command + " reply: " + why);
            }
            const Json config = client.query(config_request());
            if (config.is_null()) {
                return no_reply(config_request().command + ": no data: the command failed");
            }
            const Json ports = client.query(ports_request());
            if (const std::string why = read_pool(config, ports, setup); !why.empty()) {
                return {why.starts_with("malformed") ? kExitNoReply : kExitRefused, "",
                        "ephemeractl: plan: " + why + "\n"};
            }
        } catch (const TelemetryError& e) {
            return no_reply(e.what());
        }
    }
    if (const std::string why = planner::check(setup); !why.empty()) {
        return usage(why);
    }
    const planner::Plan plan = planner::make_plan(setup, command.target);
    return {kExitOk, format_plan(setup, plan, display.json), ""};
}

} // namespace ephemeractl
