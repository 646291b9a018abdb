// Session lifecycle: timeouts, expiry, and what an expired session frees (its mapping, the
// mapping's port into hold-down, the subscriber record).
#include "ephemera/tcp_state.hpp"
#include "ephemera/translator.hpp"

#include <rte_hash.h>

#include <algorithm>

namespace ephemera {

namespace {

Counter expiry_cause(Protocol proto, bool established) {
    switch (proto) {
    case Protocol::udp:
        return Counter::expired_udp;
    case Protocol::tcp:
        return established ? Counter::expired_tcp_established : Counter::expired_tcp_transitory;
    case Protocol::icmp:
        break;
    }
    return Counter::expired_icmp;
}

} // namespace

// RFC 4787 REQ-5 (UDP), RFC 5382 REQ-5 (TCP established and transitory), RFC 5508 REQ-2 (ICMP).
Tick Translator::session_timeout(const Session& s, Protocol proto) const {
    if (proto == Protocol::tcp && !tcp_established(s.flags)) {
        return policy_.tcp_transitory;
    }
    return policy_.timeout[static_cast<std::size_t>(proto_index(proto))];
}

// The wheel is lazy about timeouts that grow (a session found not yet due is scheduled
// again), but a timeout that shrinks must move the session earlier: an established TCP
// session that sees a FIN each way or an RST is due a transitory timeout after its last
// outbound packet.
void Translator::track_tcp(std::uint32_t session, Session& s, std::uint8_t flags, bool outbound) {
    const bool was_established = tcp_established(s.flags);
    s.flags = tcp_track(s.flags, flags, outbound);
    if (was_established && !tcp_established(s.flags)) {
        wheel_.reschedule(session, s.last_seen + policy_.tcp_transitory);
    }
}

std::uint32_t Translator::expire(Tick now, std::uint32_t budget) {
    std::uint32_t work = rescan_active_ ? rescan(budget) : 0;
    work +=
        wheel_.advance(now, budget, [&](std::uint32_t session) { on_session_due(session, now); });
    work += hold_down_.release_due(now, budget, [&](std::uint32_t location) {
        ports_.release_location(location);
        counters_.add(Counter::ports_returned);
    });
    return work;
}

// Address-dependent filtering admits a remote address while a session of the mapping has
// sent to it: the permission table counts those sessions, and a session carries the current
// generation in `state` once it is counted, so it is never counted twice.
void Translator::count_permission(Session& s, std::uint32_t mapping, std::uint32_t remote) {
    if (s.state == permission_generation_) {
        return;
    }
    const PermissionKey pk{mapping, remote};
    const std::int32_t perm = tables_.permissions.add(&pk);
    if (perm >= 0) {
        ++tables_.permission_counts[static_cast<std::uint32_t>(perm)];
        s.state = permission_generation_;
    }
}

// Addresses keep their index; new ones are appended (their bitmaps and index arrays are
// allocated here, on the worker, between bursts: a control event, not the packet path).
void Translator::reconfigure_pool(const Config& config) {
    std::vector<Ipv4Addr> all(pool_.addresses().begin(), pool_.addresses().end());
    std::fill(active_.begin(), active_.end(), 0);
    for (Ipv4Addr a : config.pool) {
        const auto known = std::find(all.begin(), all.end(), a);
        if (known != all.end()) {
            active_[static_cast<std::size_t>(known - all.begin())] = 1;
            continue;
        }
        all.push_back(a);
        active_.push_back(1);
        ports_.add_address();
        tables_.add_address();
    }
    if (all.size() != pool_.size()) {
        pool_ = PoolIndex(all);
        hold_down_.grow(ports_.locations());
    }
    if (config.port_range != range_ || config.reserved != reserved_) {
        range_ = config.port_range;
        reserved_ = config.reserved;
        ports_.set_range(range_, reserved_);
    }
}

void Translator::reconfigure(const Config& config) {
    reconfigure_pool(config);
    const Policy next = Policy::from(config, workers_);
    const Policy& prev = policy_;
    bool shorter = next.tcp_transitory < prev.tcp_transitory;
    for (std::size_t p = 0; p < kProtocolCount; ++p) {
        shorter = shorter || next.timeout[p] < prev.timeout[p];
    }
    const FilteringMode target = next.filtering;
    const FilteringMode in_force = policy_.filtering;
    bool rebuild_permissions = false;
    policy_ = next;
    if (target != FilteringMode::address_dependent) {
        if (permissions_live_) {
            rte_hash_reset(tables_.permissions.raw());
            std::fill(tables_.permission_counts.begin(), tables_.permission_counts.end(), 0);
        }
        permissions_live_ = false;
        address_filtering_pending_ = false;
    } else if (!permissions_live_) {
        // Count every existing session first; filter by address once that is done.
        permission_generation_ = static_cast<std::uint8_t>(permission_generation_ + 1);
        if (permission_generation_ == 0) {
            permission_generation_ = 1; // 0 is "never counted"
        }
        permissions_live_ = true;
        address_filtering_pending_ = true;
        rebuild_permissions = true;
    }
    if (address_filtering_pending_) {
        policy_.filtering = in_force; // the mode before the switch, until the walk is done
    }
    if (shorter || rebuild_permissions) {
        rescan_active_ = true; // a rescan already under way starts over: it covers both
        rescan_next_ = 0;
    }
}

// One step of the walk over every session that a reconfiguration asked for: each session is
// rescheduled for its due time under the new timeouts and, under address-dependent
// filtering, has its permission counted.
std::uint32_t Translator::rescan(std::uint32_t budget) {
    const void* key_ptr = nullptr;
    void* data = nullptr;
    std::uint32_t done = 0;
    while (done < budget) {
        const std::int32_t pos =
            rte_hash_iterate(tables_.sessions.raw(), &key_ptr, &data, &rescan_next_);
        if (pos < 0) {
            rescan_active_ = false;
            if (address_filtering_pending_) { // every session is counted: switch now
                address_filtering_pending_ = false;
                policy_.filtering = FilteringMode::address_dependent;
            }
            break;
        }
        ++done;
        const auto session = static_cast<std::uint32_t>(pos);
        const auto& key = *static_cast<const SessionKey*>(key_ptr);
        Session& s = tables_.session_records[session];
        wheel_.reschedule(session,
                          s.last_seen + session_timeout(s, static_cast<Protocol>(key.proto)));
        if (permissions_live_) {
            count_permission(s, s.mapping, key.remote_addr);
        }
    }
    return done;
}

bool Translator::walk_sessions(const SessionFilter& filter, bool flush, Tick now,
                               std::uint32_t& cursor, std::uint32_t budget,
                               std::vector<SessionView>& out, std::size_t limit,
                               std::uint64_t& flushed) {
    const void* key_ptr = nullptr;
    void* data = nullptr;
    for (std::uint32_t seen = 0; seen < budget; ++seen) {
        const std::int32_t pos = rte_hash_iterate(tables_.sessions.raw(), &key_ptr, &data, &cursor);
        if (pos < 0) {
            return true;
        }
        const auto session = static_cast<std::uint32_t>(pos);
        const SessionKey key = *static_cast<const SessionKey*>(key_ptr);
        const Session& s = tables_.session_records[session];
        const Ipv4Addr external = pool_.address(s.pool_index);
        if ((filter.subscriber && filter.subscriber->value() != key.inside_addr) ||
            (filter.external && *filter.external != external) ||
            (filter.external_port && *filter.external_port != s.external_port)) {
            continue;
        }
        if (flush) {
            delete_session(session, key, now);
            ++flushed;
            continue;
        }
        if (out.size() < limit) {
            const auto proto = static_cast<Protocol>(key.proto);
            out.push_back(SessionView{proto, Ipv4Addr{key.inside_addr}, key.inside_port, external,
                                      s.external_port, Ipv4Addr{key.remote_addr}, key.remote_port,
                                      static_cast<Tick>(now - s.last_seen),
                                      proto == Protocol::tcp && tcp_established(s.flags)});
        }
    }
    return false;
}

// A session's wheel slot came round: it may have been refreshed since it was scheduled.
void Translator::on_session_due(std::uint32_t session, Tick now) {
    const void* key_ptr = nullptr;
    if (rte_hash_get_key_with_position(tables_.sessions.raw(), static_cast<std::int32_t>(session),
                                       const_cast<void**>(&key_ptr)) != 0) {
        return; // not a live session (cannot happen while every live session is scheduled once)
    }
    const SessionKey key = *static_cast<const SessionKey*>(key_ptr);
    const Session& s = tables_.session_records[session];
    const auto proto = static_cast<Protocol>(key.proto);
    const Tick due = s.last_seen + session_timeout(s, proto);
    if (static_cast<std::int32_t>(now - due) < 0) {
        wheel_.schedule(session, due);
        return;
    }
    counters_.add(expiry_cause(proto, proto == Protocol::tcp && tcp_established(s.flags)));
    delete_session(session, key, now);
}

void Translator::delete_session(std::uint32_t session, const SessionKey& key, Tick now) {
    const std::uint32_t mapping = tables_.session_records[session].mapping;
    wheel_.unschedule(session); // a flushed session is still on the wheel; an expired one not
    tables_.sessions.remove(&key);
    if (permissions_live_ && tables_.session_records[session].state == permission_generation_) {
        const PermissionKey pk{mapping, key.remote_addr};
        const std::int32_t perm = tables_.permissions.lookup(&pk);
        if (perm >= 0 && --tables_.permission_counts[static_cast<std::uint32_t>(perm)] == 0) {
            tables_.permissions.remove(&pk);
        }
    }
    --live_sessions_;
    --live_by_proto_[static_cast<std::size_t>(proto_index(static_cast<Protocol>(key.proto)))];
    Mapping& m = tables_.mapping_records[mapping];
    --tables_.subscriber_records[m.subscriber].sessions;
    if (--m.sessions == 0) {
        release_mapping(mapping, now);
    }
}

// The mapping's last session is gone: the inside endpoint's next packet gets a new mapping,
// and the external port waits out its hold-down before anyone else gets it.
void Translator::release_mapping(std::uint32_t mapping, Tick now) {
    const Mapping m = tables_.mapping_records[mapping];
    const std::uint32_t slot = *ports_.slice().slot_of(m.external_port);
    tables_.out2in(m.pool_index, m.proto, slot) = kNoIndex;
    if (policy_.hold_down == 0) {
        ports_.release(m.pool_index, m.proto, m.external_port);
    } else {
        hold_down_.push(ports_.location(m.pool_index, m.proto, m.external_port),
                        now + policy_.hold_down);
        counters_.add(Counter::ports_held);
    }
    const MappingKey key{m.inside.value(), m.inside_port, static_cast<std::uint8_t>(m.proto), 0};
    tables_.mappings.remove(&key);
    --live_mappings_;
    counters_.add(Counter::mappings_released);
    Subscriber& sub = tables_.subscriber_records[m.subscriber];
    --sub.mappings;
    --sub.ports[static_cast<std::size_t>(proto_index(m.proto))];
    release_subscriber_if_unused(m.subscriber, m.inside);
}

} // namespace ephemera
