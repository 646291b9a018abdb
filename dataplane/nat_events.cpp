// NAT event records from the translation core (nat_events.hpp). Off the fast path: the slow
// path and the session lifecycle call these, and each returns at once when its kind is off.
#include "ephemera/nat_events.hpp"

#include "ephemera/deterministic.hpp"

#include <algorithm>

namespace ephemera {

NatEvent formula_event(const DeterministicMap& det, std::uint64_t now_ms) {
    NatEvent e;
    e.time_ms = now_ms;
    e.kind = NatEventKind::deterministic_formula;
    e.inside = det.prefix().value();
    e.prefix_len = det.prefix_len();
    e.external = det.pool().empty() ? 0 : det.pool().front().value();
    e.external_last = det.pool().empty() ? 0 : det.pool().back().value();
    e.first_port = det.port_range().lo;
    e.last_port = det.port_range().hi;
    e.ports =
        static_cast<std::uint16_t>(std::min<std::uint32_t>(det.ports_per_subscriber(), 65535));
    e.value = static_cast<std::uint32_t>(det.ratio());
    return e;
}

void NatEventRecorder::mapping(NatEventKind kind, const Mapping& m, Ipv4Addr remote,
                               std::uint16_t remote_port) {
    if (!log_.wants(kind)) {
        return;
    }
    NatEvent e;
    e.kind = kind;
    e.proto = static_cast<std::uint8_t>(m.proto);
    e.inside = m.inside.value();
    e.inside_port = m.inside_port;
    e.external = plan_->pool.address(m.pool_index).value();
    e.external_port = m.external_port;
    if (log_.destination()) {
        e.remote = remote.value();
        e.remote_port = remote_port;
    }
    if ((m.flags & kMappingStatic) != 0) {
        e.flags = NatEvent::kStaticMapping;
    }
    log_.emit(e, counters_);
}

void NatEventRecorder::block(NatEventKind kind, std::uint32_t ref, Ipv4Addr subscriber) {
    if (!log_.wants(kind)) {
        return;
    }
    const PortBlock& b = ports_.block(ref);
    const auto [first, last] = ports_.block_span(ref);
    NatEvent e;
    e.kind = kind;
    e.inside = subscriber.value();
    e.external = plan_->pool.address(block_pool(ref)).value();
    e.first_port = first;
    e.last_port = last;
    // With one worker a block is a run of ports; with W it is the ports of first..last that
    // this worker owns (docs/allocation.md), which no single step describes: step 1 and the
    // worker count in `value` say so, and `ports` how many there are.
    e.step = 1;
    e.ports = static_cast<std::uint16_t>(std::uint32_t{b.granules} * kGranuleSlots);
    e.value = workers_;
    log_.emit(e, counters_);
}

bool NatEventRecorder::crossed(std::uint64_t used, std::uint64_t total, std::uint8_t threshold,
                               bool& above) {
    if (threshold == 0 || total == 0) {
        return false;
    }
    // percent = used * 100 / total, compared without the division: a new mapping checks up to
    // three watermarks, and three 64-bit divisions were most of what logging cost it.
    // floor(u * 100 / T) >= t  <=>  u * 100 >= t * T, and likewise with t - kHysteresis.
    const std::uint64_t scaled = used * 100;
    if (above) {
        above = scaled + kHysteresis * total >= threshold * total;
        return false;
    }
    above = scaled >= threshold * total;
    return above;
}

void NatEventRecorder::threshold(NatThreshold kind, Ipv4Addr external, Ipv4Addr inside,
                                 std::uint8_t proto, std::uint8_t percent) {
    NatEvent e;
    e.kind = NatEventKind::threshold_reached;
    e.threshold = kind;
    e.external = external.value();
    e.inside = inside.value();
    e.proto = proto;
    e.value = percent;
    log_.emit(e, counters_);
}

void NatEventRecorder::after_mapping(Subscriber& sub, Ipv4Addr inside, Protocol proto) {
    if (!log_.wants(NatEventKind::threshold_reached)) {
        return;
    }
    const Policy& policy = plan_->policy;
    const auto p = static_cast<std::size_t>(proto_index(proto));
    if (policy.port_threshold != 0) {
        const std::uint32_t usable = ports_.usable_ports();
        const std::uint32_t used =
            usable - std::min(usable, ports_.free_ports(sub.pool_index, proto));
        const std::size_t at = std::size_t{sub.pool_index} * kProtocolCount + p;
        bool above = port_above_[at];
        const bool report = crossed(used, usable, policy.port_threshold, above);
        port_above_[at] = above;
        if (report) {
            threshold(NatThreshold::address_port_high, plan_->pool.address(sub.pool_index),
                      Ipv4Addr{}, static_cast<std::uint8_t>(proto), policy.port_threshold);
        }
    }
    if (policy.subscriber_port_threshold != 0) {
        const auto bit = static_cast<std::uint16_t>(1u << p);
        bool above = (sub.watermarks & bit) != 0;
        const bool report = crossed(sub.ports[p], policy.subscriber_ports[p],
                                    policy.subscriber_port_threshold, above);
        sub.watermarks =
            static_cast<std::uint16_t>(above ? sub.watermarks | bit : sub.watermarks & ~bit);
        if (report) {
            threshold(NatThreshold::address_port_per_user_high, plan_->pool.address(sub.pool_index),
                      inside, static_cast<std::uint8_t>(proto), policy.subscriber_port_threshold);
        }
    }
}

void NatEventRecorder::after_session(std::uint32_t live_sessions) {
    const std::uint8_t watermark = plan_->policy.session_threshold;
    if (watermark == 0 || !log_.wants(NatEventKind::threshold_reached)) {
        return;
    }
    if (crossed(live_sessions, plan_->policy.max_sessions, watermark, sessions_above_)) {
        threshold(NatThreshold::global_mapping_high, Ipv4Addr{}, Ipv4Addr{}, 0, watermark);
    }
}

std::optional<EventLog::RefusalSlot> NatEventRecorder::describe_refusal(Counter reason,
                                                                        Ipv4Addr subscriber,
                                                                        Protocol proto,
                                                                        NatEvent& e) const {
    e.proto = static_cast<std::uint8_t>(proto);
    e.inside = subscriber.value();
    e.kind = NatEventKind::quota_exceeded;
    const Policy& policy = plan_->policy;
    switch (reason) {
    case Counter::drop_ports_exhausted:
    case Counter::drop_blocks_exhausted:
        e.kind = NatEventKind::ports_exhausted;
        return EventLog::RefusalSlot::ports;
    case Counter::drop_sessions_exhausted:
        e.quota = NatQuota::max_sessions;
        e.value = policy.max_sessions;
        e.inside = 0;
        return EventLog::RefusalSlot::sessions;
    case Counter::drop_subscribers_exhausted:
        e.quota = NatQuota::max_subscribers;
        e.value = policy.max_subscribers;
        e.inside = 0;
        return EventLog::RefusalSlot::subscribers;
    case Counter::drop_subscriber_sessions:
        e.quota = NatQuota::max_entries_per_user;
        e.value = policy.subscriber_sessions;
        return EventLog::RefusalSlot::subscriber_quota;
    case Counter::drop_subscriber_ports:
        e.quota = NatQuota::max_entries_per_user;
        e.value = policy.subscriber_ports[static_cast<std::size_t>(proto_index(proto))];
        return EventLog::RefusalSlot::subscriber_quota;
    case Counter::drop_subscriber_blocks:
        e.quota = NatQuota::max_entries_per_user;
        e.value = policy.blocks.max_blocks;
        return EventLog::RefusalSlot::subscriber_quota;
    default:
        // The mapping rate limit and the deterministic prefix are no quota of RFC 8158.
        return std::nullopt;
    }
}

} // namespace ephemera
