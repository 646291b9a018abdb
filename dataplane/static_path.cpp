// Static mappings on the packet path (static_table.hpp). A static entry does not add a table:
// its mapping is an ordinary Mapping record, made by whichever side sends first, flagged
// kMappingStatic, with the entry's external endpoint instead of an allocated port. So EIM
// (RFC 4787 REQ-1), sessions, timeouts, TCP tracking, hairpins and the operator's views work
// for it as for any mapping, and it ends with its last session like any other (the next
// packet of either side makes it again). What differs:
//  - From outside it needs no earlier outbound packet, and every remote may reach it: the
//    operator published it, so the filtering mode does not apply.
//  - Its port is in no bitmap and no out2in index entry (it lies outside the dynamic range,
//    or on a 1:1 address that is never allocated from), so outside packets find it through
//    the static table and the mapping table, on the slow path.
//  - Made from outside, it needs the inside host's MAC before the host has sent anything:
//    inside_neighbors.hpp.
#include "ephemera/rewrite.hpp"
#include "ephemera/translator.hpp"

namespace ephemera {

namespace {

// Whether `m` is a static entry's mapping on (pool_index, port): a dynamic mapping of the
// same inside endpoint, made before the entry, is not.
bool is_static_at(const Mapping& m, std::uint16_t pool_index, std::uint16_t port) {
    return (m.flags & kMappingStatic) != 0 && m.pool_index == pool_index && m.external_port == port;
}

} // namespace

std::uint32_t Translator::create_static_mapping(const MappingKey& key, StaticEndpoint external,
                                                std::uint32_t subscriber, const MacAddr& inside_mac,
                                                Tick now, Counter& refusal) {
    const auto proto = static_cast<Protocol>(key.proto);
    const std::uint16_t pool_index = pool().find(external.address);
    // A mapping made on this external port before the entry (on an address that was in the
    // pool until lately) keeps it until it ends; so does the plan that has yet to index a
    // 1:1 address added a moment ago.
    const auto slot = ports_.slice().slot_of(external.port);
    if (pool_index == kNoPool || (slot && ports_.out2in(pool_index, proto, *slot) != kNoIndex)) {
        refusal = Counter::drop_static_busy;
        return kNoIndex;
    }
    const std::int32_t pos = tables_.mappings.add(key);
    if (pos < 0) {
        refusal = Counter::drop_sessions_exhausted; // the mapping table is sized by sessions
        return kNoIndex;
    }
    const auto mapping = static_cast<std::uint32_t>(pos);
    Mapping& m = tables_.mapping_records[mapping];
    m = Mapping{};
    m.inside = Ipv4Addr{key.inside_addr};
    m.inside_port = key.inside_port;
    m.external_port = external.port;
    m.pool_index = pool_index;
    m.proto = proto;
    m.flags = kMappingStatic;
    m.subscriber = subscriber;
    m.sessions = 0;
    m.inside_mac = inside_mac;
    tables_.mapping_created[mapping] = now;
    ++tables_.subscriber_records[subscriber].mappings; // no pool port: not in ports[]
    life_.mapping_created();
    counters_.add(Counter::mappings_created);
    counters_.add(Counter::static_mappings_created);
    events_.mapping(NatEventKind::mapping_created, m); // its deletion is logged as any other
    return mapping;
}

std::uint32_t Translator::static_mapping_of(Ipv4Addr external, Protocol proto,
                                            std::uint16_t port) const {
    const auto inside =
        statics().empty() ? std::nullopt : statics().inside_of(external, proto, port);
    if (!inside) {
        return kNoIndex;
    }
    const MappingKey key = MappingKey::make(inside->address, inside->port, proto);
    const std::int32_t pos = tables_.mappings.lookup(key);
    if (pos < 0) {
        return kNoIndex;
    }
    const auto mapping = static_cast<std::uint32_t>(pos);
    return is_static_at(tables_.mapping_records[mapping], pool().find(external), port) ? mapping
                                                                                       : kNoIndex;
}

Verdict Translator::static_inbound(PacketRef& pkt, StaticEndpoint inside, std::uint16_t pool_index,
                                   Tick now, const L2Context& l2) {
    const ParsedPacket& p = pkt.parsed;
    const Policy& policy = this->policy();
    // Would be delivered, so a TTL that runs out here is answered, and changes nothing.
    if (pkt.frame[p.l3 + ipv4_off::ttl] <= 1) {
        return time_exceeded(pkt, now, p.dst, l2.outside_port_mac);
    }
    if (exceeds(p, policy.inside_mtu)) {
        return too_big(pkt, policy.inside_mtu, p.dst, l2.outside_port_mac, now);
    }
    const MappingKey key = MappingKey::make(inside.address, inside.port, p.proto);
    std::uint32_t mapping;
    if (const std::int32_t pos = tables_.mappings.lookup(key); pos >= 0) {
        mapping = static_cast<std::uint32_t>(pos);
        if (!is_static_at(tables_.mapping_records[mapping], pool_index, p.dst_port)) {
            // The inside endpoint's dynamic mapping from before the entry: it drains first.
            counters_.add(Counter::drop_static_busy);
            return Verdict::drop;
        }
    } else {
        if (life_.live_sessions() >= policy.max_sessions) {
            counters_.add(Counter::drop_sessions_exhausted);
            return Verdict::drop;
        }
        const auto mac = neighbors_.find(inside.address, now);
        if (!mac) {
            counters_.add(Counter::drop_static_unresolved); // the worker asks by ARP
            return Verdict::drop;
        }
        const std::int32_t sub = find_or_create_subscriber(inside.address, p.proto, now);
        if (sub < 0) {
            counters_.add(Counter::drop_subscribers_exhausted);
            return Verdict::drop;
        }
        Counter refusal = Counter::count_;
        mapping = create_static_mapping(key, {p.dst, p.dst_port}, static_cast<std::uint32_t>(sub),
                                        *mac, now, refusal);
        if (mapping == kNoIndex) {
            life_.release_subscriber_if_unused(static_cast<std::uint32_t>(sub), inside.address);
            counters_.add(refusal);
            return Verdict::drop;
        }
    }

    Mapping& m = tables_.mapping_records[mapping];
    const SessionKey skey = SessionKey::inbound(m.inside, m.inside_port, p);
    const std::uint32_t hash = tables_.sessions.hash(skey);
    std::int32_t pos = tables_.sessions.lookup(skey, hash);
    if (pos < 0) {
        // The remote's first packet: the session that lets the host answer, and that ends the
        // mapping in its time if the host never does.
        Subscriber& sub = tables_.subscriber_records[m.subscriber];
        Counter refusal = Counter::count_;
        if (life_.live_sessions() >= policy.max_sessions) {
            refusal = Counter::drop_sessions_exhausted;
        } else if (sub.sessions >= policy.subscriber_sessions) {
            refusal = Counter::drop_subscriber_sessions; // RFC 6888 REQ-5 holds for statics
        } else if (pos = tables_.sessions.insert(skey, hash); pos < 0) {
            refusal = Counter::drop_sessions_exhausted;
        }
        if (refusal != Counter::count_) {
            counters_.add(refusal);
            life_.drop_mapping(mapping, now);
            return Verdict::drop;
        }
        const auto session = static_cast<std::uint32_t>(pos);
        tables_.sessions.value(session) =
            Session{mapping, now, m.external_port, m.pool_index, 0, 0, 0};
        ++m.sessions;
        m.last_session = session;
        ++sub.sessions;
        life_.started(session, p.proto, p.src.value());
    } else if (policy.inbound_refresh) {
        tables_.sessions.value(static_cast<std::uint32_t>(pos)).last_seen = now;
    }
    if (p.proto == Protocol::tcp) {
        const auto session = static_cast<std::uint32_t>(pos);
        life_.track_tcp(session, tables_.sessions.value(session), p.tcp_flags, false);
    }
    rewrite_destination(pkt.frame, p, m.inside, m.inside_port);
    set_ethernet(pkt.frame, m.inside_mac, l2.inside_port_mac);
    counters_.add(Counter::out2in_translated);
    return Verdict::forward;
}

} // namespace ephemera
