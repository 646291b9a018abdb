// Policy and limits: the configuration in the units the packet path uses (ticks, per-worker
// shares, token rates), and the token buckets that rate-limit new mappings and the ICMP errors
// a worker originates. Built by the control thread (part of a WorkerPlan, worker_plan.hpp);
// a worker only reads it.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/port_blocks.hpp"
#include "ephemera/types.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace ephemera {

struct Policy {
    FilteringMode filtering = FilteringMode::endpoint_independent;
    std::array<Tick, kProtocolCount> timeout{}; // UDP, TCP established, ICMP (by ProtoIndex)
    Tick tcp_transitory = 0;
    Tick hold_down = 0;
    bool inbound_refresh = false;
    std::uint32_t max_sessions = 0;    // this worker's share
    std::uint32_t max_subscribers = 0; // this worker's share (its table is sized by it)
    std::uint32_t subscriber_sessions = 0;
    std::array<std::uint32_t, kProtocolCount> subscriber_ports{};
    std::uint32_t mapping_rate = 0;  // tokens (1/kTicksPerSecond mapping) added per tick
    std::uint32_t mapping_burst = 0; // bucket depth in tokens
    bool icmp_unreachable = true;
    std::uint32_t icmp_rate = 0;      // tokens per tick
    std::uint32_t icmp_burst = 0;     // bucket depth in tokens
    Ipv4Addr gateway;                 // source of the ICMP errors we send inside
    std::uint16_t inside_mtu = 1500;  // largest IP packet out of the inside port
    std::uint16_t outside_mtu = 1500; // ... and out of the outside port (RFC 4787 REQ-13)
    bool syn_unreachable = false;     // RFC 5382 REQ-4: 3/3 for unsolicited SYNs after the hold
    AllocationMode allocation = AllocationMode::dynamic;
    BlockPolicy blocks; // allocation == blocks
    // NAT event logging (event_log.hpp): bit per NatEventKind, 0 when no sink is on.
    std::uint32_t log_events = 0;
    bool log_destination = false;
    Tick block_interim = 0;                     // between interim records of a held block; 0: none
    std::uint8_t port_threshold = 0;            // percent of an address's ports in use; 0: none
    std::uint8_t session_threshold = 0;         // percent of the session table; 0: none
    std::uint8_t subscriber_port_threshold = 0; // percent of a subscriber's port limit

    static Policy from(const Config& config, WorkerId workers);

    [[nodiscard]] Tick timeout_of(Protocol proto) const {
        return timeout[static_cast<std::size_t>(proto_index(proto))];
    }
    [[nodiscard]] std::uint16_t mtu_towards(bool outside) const {
        return outside ? outside_mtu : inside_mtu;
    }
    // True when some timeout is shorter than in `before`: sessions must be rescheduled.
    [[nodiscard]] bool shortens_timeouts(const Policy& before) const;
};

// A token bucket counting in 1/kTicksPerSecond of an item, so that a rate per second is a rate
// per tick. rate == 0 means unlimited.
struct TokenBucket {
    std::uint32_t tokens = 0;
    Tick refilled_at = 0;

    // Adds what the ticks since the last refill earned; true (and one item's tokens spent)
    // when the bucket holds enough.
    bool take(Tick now, std::uint32_t rate, std::uint32_t burst) {
        if (rate == 0) {
            return true;
        }
        const std::uint64_t earned = std::uint64_t{now - refilled_at} * rate;
        tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(burst, tokens + earned));
        refilled_at = now;
        if (tokens < kTicksPerSecond) {
            return false;
        }
        tokens -= kTicksPerSecond;
        return true;
    }
};

} // namespace ephemera
