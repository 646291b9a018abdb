#include "pool_watch.hpp"

#include <cstdio>

namespace ephemera::alarms {
namespace {

std::uint64_t window_ms(const AlarmsConfig& c) {
    return std::uint64_t{c.forecast_window} * 1000;
}

std::array<Watermark, kProtocolCount> watermarks_for(const AlarmsConfig& c) {
    return {Watermark(c.pool_ports_high, c.pool_ports_clear),
            Watermark(c.pool_ports_high, c.pool_ports_clear),
            Watermark(c.pool_ports_high, c.pool_ports_clear)};
}

std::array<ExhaustionForecast, kProtocolCount> forecasts_for(const AlarmsConfig& c) {
    return {ExhaustionForecast(window_ms(c)), ExhaustionForecast(window_ms(c)),
            ExhaustionForecast(window_ms(c))};
}

Forecast forecast_of(Ipv4Addr address, Protocol p, PortUse use, const ExhaustionForecast& f) {
    return {address, p, use, f.ports_per_second(), f.seconds_to_exhaustion()};
}

} // namespace

PortUse PortUseTable::total(Protocol p) const {
    PortUse sum;
    for (std::size_t a = 0; a < addresses.size(); ++a) {
        sum += at(a, p);
    }
    return sum;
}

PoolWatch::PoolWatch(const AlarmsConfig& config)
    : config_(config), watermarks_(watermarks_for(config)), pool_forecasts_(forecasts_for(config)) {
    state_.config = config;
}

void PoolWatch::configure(const AlarmsConfig& config) {
    if (config == config_) {
        return;
    }
    // Raised under the old lines: still raised, until a sample finds use at or below the new
    // clear line (or the alarm switched off); so every raise is followed by one clear.
    std::array<Watermark, kProtocolCount> next = watermarks_for(config);
    for (std::size_t p = 0; p < kProtocolCount; ++p) {
        next[p].carry_over(watermarks_[p].raised());
    }
    watermarks_ = next;
    if (config.forecast_window != config_.forecast_window) {
        pool_forecasts_ = forecasts_for(config);
        address_forecasts_.clear();
        addresses_.clear();
    }
    config_ = config;
    state_.config = config;
}

std::vector<AlarmChange> PoolWatch::sample(std::uint64_t now_ms, const PortUseTable& table) {
    std::vector<AlarmChange> changes;
    state_.time_ms = now_ms;
    state_.pool.clear();
    for (std::size_t p = 0; p < kProtocolCount; ++p) {
        const Protocol proto = kWatchedProtocols[p];
        const PortUse use = table.total(proto);
        const Watermark::Change change = watermarks_[p].update(use);
        if (change == Watermark::Change::raised) {
            changes.push_back({proto, true, use, watermarks_[p].high()});
        } else if (change == Watermark::Change::cleared) {
            changes.push_back({proto, false, use, watermarks_[p].clear()});
        }
        state_.raised[p] = watermarks_[p].raised();
        pool_forecasts_[p].add(now_ms, use);
        state_.pool.push_back(forecast_of(Ipv4Addr{}, proto, use, pool_forecasts_[p]));
    }
    // The pool changed: each address's series starts again (cheap, and a removed address
    // must not keep a forecast).
    if (table.addresses != addresses_) {
        addresses_ = table.addresses;
        address_forecasts_.assign(addresses_.size() * kProtocolCount,
                                  ExhaustionForecast(window_ms(config_)));
    }
    state_.addresses.clear();
    for (std::size_t a = 0; a < addresses_.size(); ++a) {
        for (const Protocol proto : kWatchedProtocols) {
            const std::size_t at =
                a * kProtocolCount + static_cast<std::size_t>(proto_index(proto));
            address_forecasts_[at].add(now_ms, table.use[at]);
            state_.addresses.push_back(
                forecast_of(addresses_[a], proto, table.use[at], address_forecasts_[at]));
        }
    }
    return changes;
}

std::string describe(const AlarmChange& c) {
    char line[160];
    std::snprintf(line, sizeof line, "pool %s ports %s: %llu of %llu in use (%u %%, %s at %u %%)",
                  std::string(protocol_name(c.proto)).c_str(), c.raised ? "HIGH" : "cleared",
                  static_cast<unsigned long long>(c.use.used),
                  static_cast<unsigned long long>(c.use.usable), c.use.percent(),
                  c.raised ? "raised" : "cleared", c.threshold);
    return line;
}

NatEvent threshold_event(const AlarmChange& c, std::uint64_t now_ms) {
    NatEvent e;
    e.time_ms = now_ms;
    e.kind = NatEventKind::threshold_reached;
    e.threshold = c.raised ? NatThreshold::address_pool_high : NatThreshold::address_pool_low;
    e.proto = static_cast<std::uint8_t>(c.proto);
    e.value = c.threshold;
    return e;
}

} // namespace ephemera::alarms
