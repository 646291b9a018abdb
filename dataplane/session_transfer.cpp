// Sessions leaving and entering a worker (docs/ha.md): the walk that writes each live session
// as a SessionState, and the restore that rebuilds one. The restore keeps the external
// address:port the session had, which is the whole point: the remote end must see no change.
// It checks what the slow path checks when it makes a mapping (ownership, pool, range,
// paired pooling, table limits), but never picks: the port is the record's or nothing.
#include "ephemera/deterministic.hpp"
#include "ephemera/translator.hpp"

namespace ephemera {

bool Translator::export_sessions(std::uint32_t& cursor, std::uint32_t budget, Tick now,
                                 std::vector<SessionState>& out) const {
    for (std::uint32_t seen = 0; seen < budget; ++seen) {
        const std::int32_t pos = tables_.sessions.next(cursor);
        if (pos < 0) {
            return true;
        }
        out.push_back(life_.state_of(static_cast<std::uint32_t>(pos), now));
    }
    return false;
}

RestoreResult Translator::restore(const SessionState& st, Tick now) {
    const std::uint16_t pool_index = pool().find(st.external);
    const bool is_static = (st.mapping_flags & kMappingStatic) != 0;
    if (pool_index == kNoPool) {
        return RestoreResult::not_in_pool;
    }
    if (is_static) {
        const auto fixed = statics().external_of(st.inside, st.proto, st.inside_port);
        if (!fixed || fixed->address != st.external || fixed->port != st.external_port) {
            return RestoreResult::not_in_pool; // the static entry is gone or changed
        }
    } else if (!is_active(pool_index) && !is_adopted(pool_index)) {
        return RestoreResult::not_in_pool; // on an address that drains, or a 1:1 address
    }
    if (!owns_subscriber(st.inside) || (!is_static && !owns_port(pool_index, st.external_port))) {
        return RestoreResult::not_owned;
    }
    const SessionKey key =
        SessionKey::make(st.inside, st.inside_port, st.remote, st.remote_port, st.proto);
    const std::uint32_t hash = tables_.sessions.hash(key);
    if (tables_.sessions.lookup(key, hash) >= 0) {
        return RestoreResult::duplicate;
    }
    Session fresh{};
    fresh.flags = st.tcp_flags;
    const Tick idle = ticks_of_ms(st.idle_ms);
    if (idle >= life_.timeout(fresh, st.proto)) {
        return RestoreResult::expired;
    }
    if (life_.live_sessions() >= policy().max_sessions) {
        return RestoreResult::table_full;
    }

    const MappingKey mkey = MappingKey::of(key);
    const std::int32_t found = tables_.mappings.lookup(mkey);
    std::uint32_t mapping = kNoIndex;
    bool made_mapping = false;
    if (found >= 0) {
        mapping = static_cast<std::uint32_t>(found);
        const Mapping& m = tables_.mapping_records[mapping];
        if (m.pool_index != pool_index || m.external_port != st.external_port) {
            return RestoreResult::conflict;
        }
    } else {
        const bool in_block = !is_static && policy().allocation == AllocationMode::blocks;
        if (in_block && st.block_granules == 0) {
            return RestoreResult::unsupported_mode; // written where the pool had no blocks
        }
        if (!is_static && policy().allocation == AllocationMode::deterministic) {
            const DeterministicMap* det = ownership_.deterministic();
            const auto range = det != nullptr ? det->forward(st.inside) : std::nullopt;
            if (!range || range->pool_address != st.external ||
                !range->ports.contains(st.external_port)) {
                return RestoreResult::conflict; // the formula gives this subscriber other ports
            }
        }
        const bool new_subscriber = tables_.subscribers.lookup(SubscriberKey::of(st.inside)) < 0;
        const std::int32_t sub_pos = find_or_create_subscriber(st.inside, st.proto, now);
        if (sub_pos < 0) {
            return RestoreResult::table_full;
        }
        const auto sub_index = static_cast<std::uint32_t>(sub_pos);
        Subscriber& sub = tables_.subscriber_records[sub_index];
        if (!is_static) {
            // Paired pooling: a new record takes the session's address as its anchor, an
            // existing one must already have it.
            if (new_subscriber) {
                sub.pool_index = pool_index;
                sub.port_key = ports_.port_key(st.inside, st.external);
            }
            const bool claimed =
                sub.pool_index == pool_index &&
                (in_block
                     ? ports_.claim_in_block(pool_index, st.proto, st.external_port, st.block_head,
                                             st.block_granules, now - ticks_of_ms(st.block_age_ms),
                                             sub_index, sub.blocks, now)
                     : ports_.claim(pool_index, st.proto, st.external_port));
            if (!claimed) {
                life_.release_subscriber_if_unused(sub_index, st.inside);
                return sub.pool_index == pool_index ? RestoreResult::port_unavailable
                                                    : RestoreResult::conflict;
            }
        } else if (const auto slot = ports_.slice().slot_of(st.external_port);
                   slot && ports_.out2in(pool_index, st.proto, *slot) != kNoIndex) {
            life_.release_subscriber_if_unused(sub_index, st.inside);
            return RestoreResult::port_unavailable; // a dynamic mapping holds it
        }
        const std::int32_t map_pos = tables_.mappings.add(mkey);
        if (map_pos < 0) {
            if (in_block) {
                ports_.release_in_block(pool_index, st.proto, st.external_port, sub.blocks,
                                        policy().blocks, sub.most_ports(), now, 0);
            } else if (!is_static) {
                ports_.release(pool_index, st.proto, st.external_port);
            }
            life_.release_subscriber_if_unused(sub_index, st.inside);
            return RestoreResult::table_full;
        }
        mapping = static_cast<std::uint32_t>(map_pos);
        made_mapping = true;
        Mapping& m = tables_.mapping_records[mapping];
        m = Mapping{};
        m.inside = st.inside;
        m.inside_port = st.inside_port;
        m.external_port = st.external_port;
        m.pool_index = pool_index;
        m.proto = st.proto;
        m.flags = is_static ? kMappingStatic : std::uint8_t{0};
        m.subscriber = sub_index;
        m.inside_mac = st.inside_mac;
        tables_.mapping_created[mapping] = now - ticks_of_ms(st.mapping_ms);
        ++sub.mappings;
        life_.mapping_created();
        if (is_static) {
            neighbors_.learn(st.inside, st.inside_mac, now);
        } else {
            ++sub.ports[static_cast<std::size_t>(proto_index(st.proto))];
            ports_.out2in(pool_index, st.proto, *ports_.slice().slot_of(st.external_port)) =
                mapping;
        }
    }

    const std::int32_t pos = tables_.sessions.insert(key, hash);
    if (pos < 0) {
        if (made_mapping) {
            life_.drop_mapping(mapping, now);
        }
        return RestoreResult::table_full;
    }
    Mapping& m = tables_.mapping_records[mapping];
    const auto session = static_cast<std::uint32_t>(pos);
    tables_.sessions.value(session) =
        Session{mapping, now - idle, m.external_port, m.pool_index, 0, st.tcp_flags, 0};
    ++m.sessions;
    m.last_session = session;
    ++tables_.subscriber_records[m.subscriber].sessions;
    life_.adopted(session, st.proto, st.remote.value());
    return RestoreResult::restored;
}

} // namespace ephemera
