#include "runtime.hpp"

#include "app.hpp"

#include "ephemera/config_edit.hpp"
#include "ephemera/mode_checks.hpp"

#include <algorithm>

namespace ephemera {

Runtime::Runtime(App& app) : app_(app), current_(app.config) {}

Config Runtime::current() const {
    std::lock_guard guard(lock_);
    return current_;
}

ChangeResult Runtime::set(std::string_view key, std::string_view value) {
    std::lock_guard guard(lock_);
    return publish(edit_config(current_, key, value),
                   std::string(key) + " = " + std::string(value));
}

ChangeResult Runtime::pool_add(std::string_view address) {
    std::lock_guard guard(lock_);
    return publish(edit_pool(current_, address, true), "pool add " + std::string(address));
}

ChangeResult Runtime::pool_remove(std::string_view address) {
    std::lock_guard guard(lock_);
    return publish(edit_pool(current_, address, false), "pool remove " + std::string(address));
}

ChangeResult Runtime::static_add(std::string_view spec) {
    return static_change(spec, true);
}

ChangeResult Runtime::static_remove(std::string_view spec) {
    return static_change(spec, false);
}

// A remove names only the external endpoint (parse_static_spec without the inside part).
ChangeResult Runtime::static_change(std::string_view spec, bool add) {
    std::lock_guard guard(lock_);
    auto entry = parse_static_spec(spec, add);
    if (auto* error = std::get_if<ConfigError>(&entry)) {
        return publish(std::move(*error), {});
    }
    const StaticMapping& m = std::get<StaticMapping>(entry);
    return publish(edit_static(current_, m, add), add ? "static add " + static_mapping_text(m)
                                                      : "static remove " + static_external_text(m));
}

ChangeResult Runtime::adopt(const std::vector<Ipv4Addr>& pool, bool answered,
                            std::optional<Ipv4Addr> gateway) {
    std::lock_guard guard(lock_);
    Config next = current_;
    for (const Ipv4Addr a : pool) {
        const auto known =
            std::find_if(next.adopted_pool.begin(), next.adopted_pool.end(),
                         [a](const Config::AdoptedAddress& x) { return x.address == a; });
        if (known != next.adopted_pool.end()) {
            known->answered = known->answered || answered;
        } else {
            next.adopted_pool.push_back({a, answered});
        }
    }
    if (gateway && std::find(next.adopted_gateways.begin(), next.adopted_gateways.end(),
                             *gateway) == next.adopted_gateways.end()) {
        next.adopted_gateways.push_back(*gateway);
    }
    return publish(std::move(next),
                   answered ? "adoption of a drained box's addresses"
                            : "adoption of a drained box's pool (quiet)",
                   /*keep_adoption=*/false);
}

ChangeResult Runtime::move_subscribers(const Config::SubscriberMove& move, bool remove) {
    std::lock_guard guard(lock_);
    Config next = current_;
    auto& moves = next.moved_subscribers;
    const auto same = [&move](const Config::SubscriberMove& m) {
        return m.prefix == move.prefix && m.length == move.length;
    };
    moves.erase(std::remove_if(moves.begin(), moves.end(), same), moves.end());
    if (!remove) {
        moves.push_back(move);
    }
    return publish(std::move(next),
                   (remove       ? "return of "
                    : move.moved ? "move of "
                                 : "hold of ") +
                       move.prefix.to_string() + "/" + std::to_string(move.length),
                   /*keep_adoption=*/false);
}

ChangeResult Runtime::reload() {
    std::lock_guard guard(lock_);
    return publish(load_config_file(current_.source), "reload of " + current_.source);
}

namespace {

// Key and reason first: telemetry strings hold 127 characters, and a long file name must not
// push the reason out of them.
std::string refusal_text(const ConfigError& e) {
    std::string text = e.key + ": " + e.reason;
    if (e.file != "runtime change") {
        text += " (" + e.file + ")";
    }
    return text;
}

} // namespace

ChangeResult Runtime::publish(std::variant<Config, ConfigError> next, std::string what,
                              bool keep_adoption) {
    if (const auto* error = std::get_if<ConfigError>(&next)) {
        return {false, refusal_text(*error)};
    }
    if (keep_adoption) {
        // Not in any file: what hand-overs took over stays through edits and reloads.
        std::get<Config>(next).adopted_pool = current_.adopted_pool;
        std::get<Config>(next).adopted_gateways = current_.adopted_gateways;
        std::get<Config>(next).moved_subscribers = current_.moved_subscribers;
    }
    auto config = std::make_shared<const Config>(std::move(std::get<Config>(next)));
    if (const auto refusal = check_runtime_change(current_, *config)) {
        return {false, refusal_text(*refusal)};
    }
    if (const auto refusal = check_blocks_fit(*config, app_.shared.workers)) {
        return {false, refusal_text(*refusal)};
    }
    // Control compiles, workers apply: each worker's plan is built here, whole (new addresses'
    // port state, the range's mask), so a worker only swaps pointers to take it.
    std::vector<std::unique_ptr<WorkerPlan>> plans;
    for (std::size_t w = 0; w < app_.plan_compilers.size(); ++w) {
        plans.push_back(app_.plan_compilers[w].compile(config, app_.shared.plans.newest(w)));
    }
    // Returns once every worker has latched its new plan; the plans replaced go here.
    app_.shared.plans.publish(std::move(plans));
    if (app_.logging != nullptr) {
        app_.logging->configure(*config, &current_);
    }
    if (app_.pool_alarms != nullptr) {
        app_.pool_alarms->configure(config->alarms);
    }
    current_ = *config;
    return {true, "applied " + what};
}

} // namespace ephemera
