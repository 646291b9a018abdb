#include "ephemera/lifecycle.hpp"

#include "ephemera/tcp_state.hpp"
#include "ephemera/worker_plan.hpp"

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

SessionLifecycle::SessionLifecycle(NatTables& tables, PortAllocator& ports, CounterBlock& counters,
                                   Tick start)
    : tables_(tables), ports_(ports), counters_(counters),
      wheel_(tables.sessions.capacity(), start) {}

// RFC 4787 REQ-5 (UDP), RFC 5382 REQ-5 (TCP established and transitory), RFC 5508 REQ-2 (ICMP).
Tick SessionLifecycle::timeout(const Session& s, Protocol proto) const {
    const Policy& policy = plan_->policy;
    if (proto == Protocol::tcp && !tcp_established(s.flags)) {
        return policy.tcp_transitory;
    }
    return policy.timeout_of(proto);
}

void SessionLifecycle::apply(const WorkerPlan& plan) {
    const WorkerPlan* before = plan_;
    plan_ = &plan;
    const FilteringMode target = plan.policy.filtering;
    if (before == nullptr) { // the first plan: nothing to carry over
        filtering_ = target;
        permissions_live_ = target == FilteringMode::address_dependent;
        return;
    }
    if (plan.policy.shortens_timeouts(before->policy)) {
        rescan_active_ = true; // a rescan already under way starts over: it covers both
        rescan_next_ = 0;
    }
    if (target != FilteringMode::address_dependent) {
        address_filtering_pending_ = false;
        filtering_ = target;
        if (permissions_live_) {
            permissions_live_ = false; // stop counting; uncount what was counted, by a walk
            clearing_permissions_ = true;
            clear_next_ = 0;
        }
        return;
    }
    if (permissions_live_ || address_filtering_pending_) {
        return; // in force, or on its way
    }
    // Count every existing session first (after any clearing walk); filter by address once
    // that is done. Until then packets are judged by the mode before the switch.
    address_filtering_pending_ = true;
    if (!clearing_permissions_) {
        permission_generation_ = static_cast<std::uint8_t>(permission_generation_ + 1);
        if (permission_generation_ == 0) {
            permission_generation_ = 1; // 0 is "never counted"
        }
        permissions_live_ = true;
        rescan_active_ = true;
        rescan_next_ = 0;
    }
}

void SessionLifecycle::track_live(std::uint32_t session, Protocol proto,
                                  std::uint32_t remote_addr) {
    Session& s = tables_.sessions.value(session);
    if (permissions_live_) {
        count_permission(s, s.mapping, remote_addr);
    }
    ++live_sessions_;
    ++live_by_proto_[static_cast<std::size_t>(proto_index(proto))];
    wheel_.schedule(session, s.last_seen + timeout(s, proto)); // TCP starts transitory
}

void SessionLifecycle::adopted(std::uint32_t session, Protocol proto, std::uint32_t remote_addr) {
    track_live(session, proto, remote_addr);
    if (events_ != nullptr) {
        events_->after_session(live_sessions_);
    }
}

// Out of line: HA and session transfer ask for it, never the expiry path (flattened below).
[[gnu::noinline]] SessionState SessionLifecycle::state_of(std::uint32_t session, Tick now) const {
    const SessionKey key = tables_.sessions.key(session);
    const Session& s = tables_.sessions.value(session);
    const Mapping& m = tables_.mapping_records[s.mapping];
    SessionState st;
    st.proto = static_cast<Protocol>(key.proto);
    st.tcp_flags = s.flags;
    st.mapping_flags = m.flags;
    st.inside = Ipv4Addr{key.inside_addr};
    st.inside_port = key.inside_port;
    st.external = plan_->pool.address(s.pool_index);
    st.external_port = s.external_port;
    st.remote = Ipv4Addr{key.remote_addr};
    st.remote_port = key.remote_port;
    st.inside_mac = m.inside_mac;
    st.idle_ms = ms_of_ticks(now - s.last_seen);
    st.mapping_ms = ms_of_ticks(now - tables_.mapping_created[s.mapping]);
    if (plan_->policy.allocation == AllocationMode::blocks && (m.flags & kMappingStatic) == 0) {
        if (const auto slot = ports_.slice().slot_of(m.external_port)) {
            const PortBlock& g = ports_.block(block_ref(m.pool_index, *slot / kGranuleSlots));
            if (g.holder != kNoHolder) {
                const PortBlock& head = ports_.block(block_ref(m.pool_index, g.head));
                st.block_head = g.head;
                st.block_granules = head.granules;
                st.block_age_ms = ms_of_ticks(now - head.opened);
            }
        }
    }
    return st;
}

void SessionLifecycle::started(std::uint32_t session, Protocol proto, std::uint32_t remote_addr) {
    track_live(session, proto, remote_addr);
    if (sync_ != nullptr && sync_->streaming()) {
        sync_->upsert(state_of(session, tables_.sessions.value(session).last_seen));
    }
    counters_.add(Counter::sessions_created);
    if (events_ != nullptr) {
        events_->after_session(live_sessions_);
    }
}

void SessionLifecycle::take_state(std::uint32_t session, Tick last_seen, std::uint8_t tcp_flags) {
    Session& s = tables_.sessions.value(session);
    const bool was_established = tcp_established(s.flags);
    s.flags = tcp_flags;
    // Never back in time: a record may be older than a packet this box saw meanwhile.
    if (static_cast<std::int32_t>(last_seen - s.last_seen) > 0) {
        s.last_seen = last_seen;
    }
    if (was_established && !tcp_established(s.flags)) {
        wheel_.reschedule(session, s.last_seen + plan_->policy.tcp_transitory);
    }
}

// The wheel is lazy about timeouts that grow (a session found not yet due is scheduled
// again), but a timeout that shrinks must move the session earlier.
void SessionLifecycle::track_tcp(std::uint32_t session, Session& s, std::uint8_t flags,
                                 bool outbound) {
    const bool was_established = tcp_established(s.flags);
    s.flags = tcp_track(s.flags, flags, outbound);
    const bool established = tcp_established(s.flags);
    if (was_established && !established) {
        wheel_.reschedule(session, s.last_seen + plan_->policy.tcp_transitory);
    }
    // The standby's copy must time out as this one does: it hears of each change of state.
    if (was_established != established && sync_ != nullptr && sync_->streaming()) {
        sync_->upsert(state_of(session, s.last_seen));
    }
}

std::uint32_t SessionLifecycle::expire(Tick now, std::uint32_t budget) {
    std::uint32_t work = 0;
    if (clearing_permissions_) {
        work += clear_permissions(budget);
    } else if (rescan_active_) {
        work += rescan(budget);
    }
    work += wheel_.advance(
        now, budget,
        [&](std::uint32_t session, std::uint32_t stage) { prefetch_due(session, stage); },
        [&](std::uint32_t session) { on_due(session, now); });
    const std::uint32_t returned = ports_.release_held(now, budget);
    if (returned != 0) {
        counters_.add(Counter::ports_returned, returned);
    }
    return work + returned;
}

// Address-dependent filtering admits a remote address while a session of the mapping has
// sent to it: the permission table counts those sessions, and a session carries the current
// generation in `state` once it is counted, so it is never counted twice.
void SessionLifecycle::count_permission(Session& s, std::uint32_t mapping, std::uint32_t remote) {
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

// One step of the walk over every session that a reconfiguration asked for: each session is
// rescheduled for its due time under the new timeouts and, under address-dependent
// filtering, has its permission counted.
std::uint32_t SessionLifecycle::rescan(std::uint32_t budget) {
    std::uint32_t done = 0;
    while (done < budget) {
        const std::int32_t pos = tables_.sessions.next(rescan_next_);
        if (pos < 0) {
            rescan_active_ = false;
            if (address_filtering_pending_) { // every session is counted: switch now
                address_filtering_pending_ = false;
                filtering_ = FilteringMode::address_dependent;
            }
            break;
        }
        ++done;
        const auto session = static_cast<std::uint32_t>(pos);
        const SessionKey& key = tables_.sessions.key(session);
        Session& s = tables_.sessions.value(session);
        wheel_.reschedule(session, s.last_seen + timeout(s, static_cast<Protocol>(key.proto)));
        if (permissions_live_) {
            count_permission(s, s.mapping, key.remote_addr);
        }
    }
    return done;
}

// A session that counted towards the permission of (mapping, remote) is gone: the count
// drops, and the permission with it at zero. Out of line: only address-dependent filtering
// counts permissions, and the expiry path (on_due) is flattened without it.
[[gnu::noinline]] void SessionLifecycle::give_back_permission(std::uint32_t mapping,
                                                              std::uint32_t remote) {
    const PermissionKey pk{mapping, remote};
    const std::int32_t perm = tables_.permissions.lookup(&pk);
    if (perm >= 0 && --tables_.permission_counts[static_cast<std::uint32_t>(perm)] == 0) {
        tables_.permissions.remove(&pk);
    }
}

// One step of the walk that empties the permission table after a switch away from
// address-dependent filtering: every counted session gives its count back (the table is
// never reset in one go, which would stall the worker for the whole table).
std::uint32_t SessionLifecycle::clear_permissions(std::uint32_t budget) {
    std::uint32_t done = 0;
    while (done < budget) {
        const std::int32_t pos = tables_.sessions.next(clear_next_);
        if (pos < 0) {
            clearing_permissions_ = false;
            if (address_filtering_pending_) { // a switch back waited for this: count afresh
                address_filtering_pending_ = false;
                apply(*plan_);
            }
            break;
        }
        ++done;
        Session& s = tables_.sessions.value(static_cast<std::uint32_t>(pos));
        if (s.state != permission_generation_) {
            continue;
        }
        give_back_permission(s.mapping,
                             tables_.sessions.key(static_cast<std::uint32_t>(pos)).remote_addr);
        s.state = 0;
    }
    return done;
}

bool SessionLifecycle::walk_sessions(const SessionFilter& filter, bool flush, Tick now,
                                     std::uint32_t& cursor, std::uint32_t budget,
                                     std::vector<SessionView>& out, std::size_t limit,
                                     std::uint64_t& flushed) {
    for (std::uint32_t seen = 0; seen < budget; ++seen) {
        const std::int32_t pos = tables_.sessions.next(cursor);
        if (pos < 0) {
            return true;
        }
        const auto session = static_cast<std::uint32_t>(pos);
        const SessionKey key = tables_.sessions.key(session);
        const Session& s = tables_.sessions.value(session);
        const Ipv4Addr external = plan_->pool.address(s.pool_index);
        if ((filter.subscriber && filter.subscriber->value() != key.inside_addr) ||
            (filter.external && *filter.external != external) ||
            (filter.external_port && *filter.external_port != s.external_port)) {
            continue;
        }
        if (flush) {
            end_session(session, key, now);
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

// What on_due will read for a session, stage by stage (TimerWheel::advance runs the stages a
// few sessions apart): 0, the session entry; 1, the session bucket and the mapping record and
// mapping table entry it names (a mapping's record and its key share the position); 2, the
// mapping bucket, the subscriber record and the out2in entry the mapping record names.
void SessionLifecycle::prefetch_due(std::uint32_t session, std::uint32_t stage) const {
    if (stage == 0) {
        tables_.sessions.prefetch_entry(session);
        return;
    }
    if (!tables_.sessions.live(session)) {
        return;
    }
    const std::uint32_t mapping = tables_.sessions.value(session).mapping;
    if (stage == 1) {
        tables_.sessions.prefetch_bucket(tables_.sessions.key(session));
        prefetch(&tables_.mapping_records[mapping]);
        tables_.mappings.prefetch_entry(mapping); // its key, which the remove compares
        return;
    }
    const Mapping& m = tables_.mapping_records[mapping];
    tables_.mappings.prefetch_bucket(MappingKey::make(m.inside, m.inside_port, m.proto));
    prefetch(&tables_.subscriber_records[m.subscriber]);
    if ((m.flags & kMappingStatic) == 0) {
        ports_.prefetch_out2in(m.pool_index, m.proto, m.external_port);
    }
}

// A session's wheel slot came round: it may have been refreshed since it was scheduled.
// Flattened: ending a session, its mapping, port and subscriber is one body here, not four
// calls deep, whose register saves and restores were about 70 of the ~615 instructions an
// expired session cost before (the cold parts, HA's state_of and the permission give-back, stay out
// of line).
[[gnu::flatten]] void SessionLifecycle::on_due(std::uint32_t session, Tick now) {
    if (!tables_.sessions.live(session)) {
        return; // not a live session (cannot happen while every live session is scheduled once)
    }
    const SessionKey key = tables_.sessions.key(session);
    const Session& s = tables_.sessions.value(session);
    const auto proto = static_cast<Protocol>(key.proto);
    const Tick due = s.last_seen + timeout(s, proto);
    if (static_cast<std::int32_t>(now - due) < 0) {
        wheel_.schedule(session, due);
        return;
    }
    counters_.add(expiry_cause(proto, proto == Protocol::tcp && tcp_established(s.flags)));
    delete_session(session, key, now);
}

void SessionLifecycle::end_session(std::uint32_t session, const SessionKey& key, Tick now) {
    wheel_.unschedule(session); // a flushed session is still on the wheel; an expired one not
    delete_session(session, key, now);
}

void SessionLifecycle::delete_session(std::uint32_t session, const SessionKey& key, Tick now) {
    if (sync_ != nullptr && sync_->streaming()) {
        sync_->remove(state_of(session, now));
    }
    Session& s = tables_.sessions.value(session);
    const std::uint32_t mapping = s.mapping;
    tables_.sessions.remove_at(session);
    if (s.state == permission_generation_ && s.state != 0) { // counted: give the count back
        give_back_permission(mapping, key.remote_addr);
    }
    s.state = 0;
    --live_sessions_;
    --live_by_proto_[static_cast<std::size_t>(proto_index(static_cast<Protocol>(key.proto)))];
    Mapping& m = tables_.mapping_records[mapping];
    --tables_.subscriber_records[m.subscriber].sessions;
    if (--m.sessions == 0) {
        release_mapping(mapping, now);
    }
}

void SessionLifecycle::drop_mapping(std::uint32_t mapping, Tick now) {
    if (tables_.mapping_records[mapping].sessions == 0) {
        release_mapping(mapping, now);
    }
}

// The mapping's last session is gone: the inside endpoint's next packet gets a new mapping,
// and the external port waits out its hold-down before anyone else gets it.
void SessionLifecycle::release_mapping(std::uint32_t mapping, Tick now) {
    // Read in place, not copied: the caller has just stored its session count, and a copy's
    // 16-byte loads over that 4-byte store would wait for it to reach the cache (no store
    // forwarding from a narrower store). Nothing below writes the record.
    const Mapping& m = tables_.mapping_records[mapping];
    Subscriber& sub = tables_.subscriber_records[m.subscriber];
    --sub.mappings;
    // A static entry's endpoint is in no bitmap or index entry and never held down (the entry
    // stays its owner's): the next packet of either side makes the mapping again.
    if ((m.flags & kMappingStatic) == 0) {
        release_port(m, sub, now);
    }
    // A mapping's record and its key share the position: no lookup to find it.
    tables_.mappings.remove_at(
        mapping, MappingTable::hash(MappingKey::make(m.inside, m.inside_port, m.proto)));
    --live_mappings_;
    counters_.add(Counter::mappings_released);
    if (events_ != nullptr) {
        events_->mapping(NatEventKind::mapping_deleted, m);
    }
    release_subscriber_if_unused(m.subscriber, m.inside);
}

void SessionLifecycle::release_port(const Mapping& m, Subscriber& sub, Tick now) {
    const std::uint32_t slot = *ports_.slice().slot_of(m.external_port);
    ports_.out2in(m.pool_index, m.proto, slot) = kNoIndex;
    --sub.ports[static_cast<std::size_t>(proto_index(m.proto))];
    if ((m.flags & kMappingMoved) != 0 && forwards_ != nullptr &&
        forwards_->add(m.pool_index, m.proto, m.external_port,
                       static_cast<std::uint8_t>(m.moved_to), now,
                       plan_->policy.timeout[static_cast<std::size_t>(proto_index(m.proto))])) {
        counters_.add(Counter::ports_forwarded);
        return; // held by the forward until it falls idle (port_forwards.hpp)
    }
    if (plan_->policy.allocation == AllocationMode::blocks) {
        // The port goes back to its block; the block, when this was its last mapping, is what
        // is held down (RFC 6888 REQ-8).
        const std::uint32_t freed = ports_.release_in_block(
            m.pool_index, m.proto, m.external_port, sub.blocks, plan_->policy.blocks,
            sub.most_ports(), now, plan_->policy.hold_down);
        if (freed != kNoBlock) {
            counters_.add(Counter::blocks_released);
            if (events_ != nullptr) {
                events_->block(NatEventKind::block_released, freed, m.inside);
            }
        }
    } else if (plan_->policy.hold_down == 0 || standby_ ||
               plan_->policy.allocation == AllocationMode::deterministic) {
        // Deterministic mode: the port can only ever go back to this subscriber.
        ports_.release(m.pool_index, m.proto, m.external_port);
    } else {
        ports_.hold_slot(m.pool_index, m.proto, slot, now + plan_->policy.hold_down);
        counters_.add(Counter::ports_held);
    }
}

void SessionLifecycle::release_subscriber_if_unused(std::uint32_t subscriber, Ipv4Addr inside) {
    const Subscriber& sub = tables_.subscriber_records[subscriber];
    if (sub.mappings == 0 && sub.sessions == 0) {
        // Its record's position is its key's: no lookup to find it.
        tables_.subscribers.remove_at(subscriber, SubscriberTable::hash(SubscriberKey::of(inside)));
        --live_subscribers_;
    }
}

} // namespace ephemera
