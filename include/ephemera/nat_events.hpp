// What the translation core records of a public address:port changing hands (docs/logging.md):
// mappings made and ended, port blocks given, released and still held (interim), and refusals
// for want of ports or over a limit. One per worker; the session lifecycle and the slow path
// call it, never the fast path. Each call is a test of the plan's event mask and, when the kind
// is logged, one record into the worker's ring (event_log.hpp).
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/event_log.hpp"
#include "ephemera/nat_table.hpp"
#include "ephemera/port_allocator.hpp"
#include "ephemera/worker_plan.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace ephemera {

class DeterministicMap;

// RFC 7422's formula as one record (deterministic_formula): who maps where follows from it
// alone. The control thread writes it at start and on every change.
NatEvent formula_event(const DeterministicMap& det, std::uint64_t now_ms);

class NatEventRecorder {
public:
    NatEventRecorder(const PortAllocator& ports, CounterBlock& counters, WorkerId workers)
        : ports_(ports), counters_(counters), workers_(workers),
          port_above_(std::size_t{kMaxPoolIndex} * kProtocolCount) {}

    void attach(rte_ring* ring, WorkerId worker) { log_.attach(ring, worker); }
    void apply(const WorkerPlan& plan) {
        plan_ = &plan;
        log_.set_events(silenced_ ? 0 : plan.policy.log_events, plan.policy.log_destination);
    }
    // An HA standby logs nothing: what it holds is the active's, and the active logs it.
    void silence(bool on) {
        silenced_ = on;
        if (plan_ != nullptr) {
            apply(*plan_);
        }
    }
    void set_time_ms(std::uint64_t unix_ms) { log_.set_time_ms(unix_ms); }
    [[nodiscard]] bool wants(NatEventKind kind) const { return log_.wants(kind); }
    // Hands what this call recorded to the ring (the translator's public calls end with it).
    void flush() { log_.flush(counters_); }

    // A mapping made (mapping_created, with the remote endpoint of its first packet when
    // logging.destination is on) or ended (mapping_deleted).
    void mapping(NatEventKind kind, const Mapping& m, Ipv4Addr remote = {},
                 std::uint16_t remote_port = 0);
    // Block `ref` given to, freed by, or still held by `subscriber`.
    void block(NatEventKind kind, std::uint32_t ref, Ipv4Addr subscriber);
    // A new mapping refused for `reason` (a drop counter): ports or blocks exhausted, a table
    // full, a subscriber at a limit. At most one record per reason a second; `pool_address()`
    // (the subscriber's, asked only when a record is due) names where ports ran out.
    template <typename PoolAddress>
    void refusal(Counter reason, Ipv4Addr subscriber, Protocol proto, PoolAddress&& pool_address) {
        NatEvent e;
        const auto slot = describe_refusal(reason, subscriber, proto, e);
        if (!slot || !log_.wants(e.kind) || !log_.refusal_due(*slot)) {
            return;
        }
        if (e.kind == NatEventKind::ports_exhausted) {
            e.external = pool_address().value();
        }
        log_.emit(e, counters_);
    }

    // Watermarks (RFC 8158 natThresholdEvent), checked as mappings and sessions are made:
    // ports in use on the subscriber's pool address for `proto` (this worker's share), the
    // subscriber's own ports against its limit, and the session table.
    void after_mapping(Subscriber& sub, Ipv4Addr inside, Protocol proto);
    void after_session(std::uint32_t live_sessions);

private:
    static constexpr std::uint32_t kMaxPoolIndex = 65536;
    static constexpr std::uint32_t kHysteresis = 5; // points below the watermark that re-arm it
    // Whether `percent` crosses `threshold` upwards now; `above` remembers the last report.
    static bool crossed(std::uint64_t used, std::uint64_t total, std::uint8_t threshold,
                        bool& above);
    void threshold(NatThreshold kind, Ipv4Addr external, Ipv4Addr inside, std::uint8_t proto,
                   std::uint8_t percent);

    // Fills the record of a refusal; nothing when `reason` is not one RFC 8158 names.
    std::optional<EventLog::RefusalSlot> describe_refusal(Counter reason, Ipv4Addr subscriber,
                                                          Protocol proto, NatEvent& e) const;

    const PortAllocator& ports_;
    CounterBlock& counters_;
    WorkerId workers_;
    const WorkerPlan* plan_ = nullptr;
    EventLog log_;
    // Per (pool index, protocol): its watermark was reported and not yet re-armed. Sized once
    // here, never on the packet path.
    std::vector<bool> port_above_;
    bool sessions_above_ = false;
    bool silenced_ = false;
};

} // namespace ephemera
