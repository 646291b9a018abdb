// The pool's port use, watched once a second by the control loop: per protocol, a pool-wide
// watermark alarm (raised at alarms.pool_ports_high percent, cleared at pool_ports_clear) and
// a forecast of the time to exhaustion, pool-wide and per address (paired pooling ties each
// subscriber to one address, so one address can run out while the pool still has room).
// An alarm change is a log line and a NAT threshold event (RFC 8158 natThresholdEvent 1 when
// raised, 2 when cleared); the state is what telemetry and the metrics show.
#pragma once

#include "pool_trend.hpp"

#include "ephemera/config.hpp"
#include "ephemera/nat_event.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace ephemera::alarms {

inline constexpr std::array<Protocol, kProtocolCount> kWatchedProtocols = {
    Protocol::udp, Protocol::tcp, Protocol::icmp};

// Port use per pool address and protocol, from the workers (gather_port_use in app.hpp).
struct PortUseTable {
    std::vector<Ipv4Addr> addresses;
    std::vector<PortUse> use;   // [address * kProtocolCount + proto_index]
    std::vector<bool> draining; // per address: being removed, takes no new mappings

    [[nodiscard]] const PortUse& at(std::size_t address, Protocol p) const {
        return use[address * kProtocolCount + static_cast<std::size_t>(proto_index(p))];
    }
    [[nodiscard]] PortUse total(Protocol p) const;
};

struct AlarmChange {
    Protocol proto = Protocol::udp;
    bool raised = false; // false: cleared
    PortUse use;
    std::uint32_t threshold = 0; // the watermark crossed, in percent
};

struct Forecast {
    Ipv4Addr address; // 0.0.0.0: the whole pool
    Protocol proto = Protocol::udp;
    PortUse use;
    std::optional<double> ports_per_second;
    std::optional<double> seconds_to_exhaustion; // nullopt: not running out at this trend
};

struct WatchState {
    std::uint64_t time_ms = 0; // of the last sample; 0: none yet
    AlarmsConfig config;
    std::array<bool, kProtocolCount> raised{};
    std::vector<Forecast> pool;      // one per protocol
    std::vector<Forecast> addresses; // per address and protocol, in pool order
};

class PoolWatch {
public:
    explicit PoolWatch(const AlarmsConfig& config);

    // New thresholds or window: a raised alarm stays raised until use is at or below the new
    // clear line; the forecasts start again when the window changes.
    void configure(const AlarmsConfig& config);
    std::vector<AlarmChange> sample(std::uint64_t now_ms, const PortUseTable& table);
    [[nodiscard]] const WatchState& state() const { return state_; }

private:
    AlarmsConfig config_;
    std::array<Watermark, kProtocolCount> watermarks_;
    std::array<ExhaustionForecast, kProtocolCount> pool_forecasts_;
    std::vector<ExhaustionForecast> address_forecasts_; // like PortUseTable::use
    std::vector<Ipv4Addr> addresses_;                   // whom address_forecasts_ are of
    WatchState state_;
};

// The log line and the NAT event of an alarm change.
std::string describe(const AlarmChange& change);
NatEvent threshold_event(const AlarmChange& change, std::uint64_t now_ms);

} // namespace ephemera::alarms
