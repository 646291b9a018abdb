// The slow path's new flows: a packet with no session finds or makes its subscriber and
// mapping, then gets its session. Every limit is checked before anything is created, so a
// refusal leaves nothing behind (RFC 6888 REQ-4, REQ-5, REQ-11).
#include "ephemera/rewrite.hpp"
#include "ephemera/translator.hpp"

namespace ephemera {

namespace {

constexpr std::uint64_t kAnchorDomain = 0x616e63686f72; // "anchor": separates this use of the key

// Refusals that the subscriber top N counts: its own limits and rate, and the pool having no
// port or block for it (not a full session table, which is no one subscriber's doing).
constexpr bool refused_the_subscriber(Counter c) {
    return c == Counter::drop_subscriber_sessions || c == Counter::drop_subscriber_ports ||
           c == Counter::drop_subscriber_rate || c == Counter::drop_subscriber_blocks ||
           c == Counter::drop_ports_exhausted || c == Counter::drop_blocks_exhausted;
}

} // namespace

Translator::Miss Translator::create_session(const PacketRef& pkt, const SessionKey& key, Tick now) {
    const std::uint32_t hash = tables_.sessions.hash(key);
    if (const std::int32_t pos = tables_.sessions.lookup(key, hash); pos >= 0) {
        return {pos, Counter::count_}; // created by an earlier packet of this burst
    }
    const Policy& policy = this->policy();
    if (life_.live_sessions() >= policy.max_sessions) {
        return {-1, Counter::drop_sessions_exhausted};
    }
    EPHEMERA_ASSERT_OWNER(owns_subscriber(pkt.parsed.src));
    const MappingKey mkey = MappingKey::of(pkt.parsed);
    std::int32_t mapping_pos = tables_.mappings.lookup(mkey);
    std::uint32_t sub_index;
    if (mapping_pos >= 0) {
        sub_index = tables_.mapping_records[static_cast<std::uint32_t>(mapping_pos)].subscriber;
    } else {
        const std::int32_t sub = find_or_create_subscriber(pkt.parsed.src, pkt.parsed.proto, now);
        if (sub < 0) {
            return {-1, Counter::drop_subscribers_exhausted}; // limits.max_subscribers
        }
        sub_index = static_cast<std::uint32_t>(sub);
    }
    Subscriber& subscriber = tables_.subscriber_records[sub_index];
    Counter refusal = Counter::count_;
    if (subscriber.sessions >= policy.subscriber_sessions) {
        refusal = Counter::drop_subscriber_sessions;
    } else if (mapping_pos < 0) {
        const std::uint32_t created = new_mapping(pkt, mkey, subscriber, sub_index, now, refusal);
        if (created != kNoIndex) {
            mapping_pos = static_cast<std::int32_t>(created);
        }
    }
    if (refusal != Counter::count_) {
        if (refused_the_subscriber(refusal) && subscriber.refusals != UINT32_MAX) {
            ++subscriber.refusals;
        }
        life_.release_subscriber_if_unused(sub_index, pkt.parsed.src);
        return {-1, refusal};
    }

    const auto mapping = static_cast<std::uint32_t>(mapping_pos);
    const std::int32_t pos = tables_.sessions.insert(key, hash);
    if (pos < 0) {
        life_.drop_mapping(mapping, now);
        return {-1, Counter::drop_sessions_exhausted};
    }
    Mapping& m = tables_.mapping_records[mapping];
    const auto session = static_cast<std::uint32_t>(pos);
    tables_.sessions.value(session) = Session{mapping, now, m.external_port, m.pool_index, 0, 0, 0};
    ++m.sessions;
    m.last_session = session;
    ++tables_.subscriber_records[m.subscriber].sessions;
    life_.started(session, pkt.parsed.proto, key.remote_addr);
    return {pos, Counter::count_};
}

// The inside endpoint's first mapping: the one its static entry fixes, or one from the pool
// within the subscriber's port limit and rate. kNoIndex with `refusal` set when none is made.
std::uint32_t Translator::new_mapping(const PacketRef& pkt, const MappingKey& key,
                                      Subscriber& subscriber, std::uint32_t sub_index, Tick now,
                                      Counter& refusal) {
    if (const auto fixed = static_external(pkt.parsed)) {
        // No port of the pool is taken, so the port limit and the rate do not apply.
        const MacAddr mac = ethernet_source(pkt.frame);
        const std::uint32_t created =
            create_static_mapping(key, *fixed, sub_index, mac, now, refusal);
        if (created != kNoIndex) {
            neighbors_.learn(pkt.parsed.src, mac, now);
        }
        return created;
    }
    const Policy& policy = this->policy();
    const auto proto = static_cast<std::size_t>(proto_index(pkt.parsed.proto));
    if (subscriber.ports[proto] >= policy.subscriber_ports[proto]) {
        refusal = Counter::drop_subscriber_ports;
        return kNoIndex;
    }
    if (!subscriber.new_mappings.take(now, policy.mapping_rate, policy.mapping_burst)) {
        refusal = Counter::drop_subscriber_rate;
        return kNoIndex;
    }
    return create_mapping(pkt, key, sub_index, now, refusal);
}

// Paired pooling (RFC 4787 REQ-2, RFC 6888 REQ-2): a subscriber is anchored to one pool
// address while it has any mapping; if that address has no free port here, the packet is
// dropped (RFC 7857 section 4) rather than mapped to another address.
std::int32_t Translator::find_or_create_subscriber(Ipv4Addr inside, Protocol proto, Tick now) {
    const SubscriberKey key = SubscriberKey::of(inside);
    std::int32_t pos = tables_.subscribers.lookup(key);
    if (pos >= 0) {
        return pos;
    }
    if (life_.live_subscribers() >= policy().max_subscribers) {
        return -1; // the table may hold a few more: its limit is the configured one
    }
    pos = tables_.subscribers.insert(key, SubscriberTable::hash(key));
    if (pos < 0) {
        return pos;
    }
    Subscriber& sub = tables_.subscriber_records[static_cast<std::uint32_t>(pos)];
    sub = Subscriber{};
    anchor(sub, inside, proto, now);
    sub.new_mappings = TokenBucket{policy().mapping_burst, now};
    life_.subscriber_created();
    return pos;
}

void Translator::anchor(Subscriber& sub, Ipv4Addr inside, Protocol proto, Tick now) {
    std::uint16_t index = kNoPool;
    if (const DeterministicMap* det = ownership_.deterministic()) {
        // RFC 7422: the formula names the address, so the keyed hash and the search for room
        // that choose_anchor costs would be thrown away. Outside the prefix allocation
        // refuses; the subscriber still needs some anchor until it is released.
        if (const auto range = det->forward(inside)) {
            index = pool().find(range->pool_address);
        }
    }
    sub.pool_index = index != kNoPool ? index : choose_anchor(inside, proto, now);
    sub.port_key = ports_.port_key(inside, pool().address(sub.pool_index));
}

// The address a subscriber is anchored to: the one its keyed hash prefers, else the next that
// is in the config and has a free port here. The hash is independent of subscriber_hash: were
// it the same function, a worker's subscribers (hash % workers == w) would crowd onto a few
// addresses whenever the pool size and the worker count share a factor.
std::uint16_t Translator::choose_anchor(Ipv4Addr inside, Protocol proto, Tick now) const {
    const auto n = static_cast<std::uint32_t>(pool().size());
    const auto first =
        static_cast<std::uint32_t>(siphash_2x64(secret_, inside.value(), kAnchorDomain) % n);
    std::optional<std::uint16_t> active_but_full;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto candidate = static_cast<std::uint16_t>((first + i) % n);
        if (!is_active(candidate)) {
            continue;
        }
        const bool has_room =
            policy().allocation == AllocationMode::blocks
                ? ports_.has_free_block(candidate, policy().blocks.smallest(), now)
                : ports_.has_free(candidate, proto);
        if (has_room) {
            return candidate;
        }
        if (!active_but_full) {
            active_but_full = candidate;
        }
    }
    return active_but_full.value_or(static_cast<std::uint16_t>(first));
}

// A port for the mapping by the pool's mode: one from the worker's share (dynamic), one from
// the subscriber's blocks (blocks), or one from the run RFC 7422's formula gives it
// (deterministic). nullopt with `refusal` set when there is none. The fast path never asks.
std::optional<PortGrant> Translator::allocate_port(const PortRequest& request, Subscriber& sub,
                                                   std::uint32_t subscriber, Tick now,
                                                   Counter& refusal) {
    if (policy().allocation == AllocationMode::deterministic) {
        const DeterministicMap* det = ownership_.deterministic();
        const auto range = det != nullptr ? det->forward(request.inside) : std::nullopt;
        if (!range || pool().find(range->pool_address) != request.pool_index) {
            refusal = Counter::drop_not_deterministic;
            return std::nullopt;
        }
        auto grant = ports_.allocate_in_range(request, sub.port_key, range->ports);
        if (!grant) {
            refusal = Counter::drop_ports_exhausted; // every port of its run is in use
        }
        return grant;
    }
    if (policy().allocation != AllocationMode::blocks) {
        auto grant = ports_.allocate(request, sub.port_key);
        if (!grant) {
            refusal = Counter::drop_ports_exhausted;
        }
        return grant;
    }
    const BlockGrant got = ports_.allocate_in_blocks(request, sub.port_key, sub.blocks, subscriber,
                                                     policy().blocks, sub.most_ports(), now);
    if (got.opened != kNoBlock) {
        counters_.add(Counter::blocks_opened);
        events_.block(NatEventKind::block_allocated, got.opened, request.inside);
    }
    if (got.refusal == BlockRefusal::subscriber_blocks) {
        refusal = Counter::drop_subscriber_blocks;
    } else if (got.refusal == BlockRefusal::no_free_block) {
        refusal = Counter::drop_blocks_exhausted;
    }
    return got.grant;
}

std::uint32_t Translator::create_mapping(const PacketRef& pkt, const MappingKey& key,
                                         std::uint32_t subscriber, Tick now, Counter& refusal) {
    Subscriber& sub = tables_.subscriber_records[subscriber];
    if (!is_active(sub.pool_index)) {
        // The anchor left the pool: existing mappings drain there, new ones go elsewhere.
        anchor(sub, pkt.parsed.src, pkt.parsed.proto, now);
    }
    const PortRequest request{pkt.parsed.src, pkt.parsed.src_port, pkt.parsed.proto, sub.pool_index,
                              pool().address(sub.pool_index)};
    const auto grant = allocate_port(request, sub, subscriber, now, refusal);
    if (!grant) {
        return kNoIndex;
    }
    EPHEMERA_ASSERT_OWNER(owns_port(sub.pool_index, grant->port));
    // Only a packet whose mapping lookup missed gets here: insert, no second lookup.
    const std::int32_t map_pos = tables_.mappings.insert(key, MappingTable::hash(key));
    if (map_pos < 0) {
        if (policy().allocation == AllocationMode::blocks) { // nothing was sent: no hold-down
            // A block opened for this mapping alone goes again, and was counted as opened.
            const std::uint32_t freed =
                ports_.release_in_block(sub.pool_index, pkt.parsed.proto, grant->port, sub.blocks,
                                        policy().blocks, sub.most_ports(), now, 0);
            if (freed != kNoBlock) {
                counters_.add(Counter::blocks_released);
                events_.block(NatEventKind::block_released, freed, pkt.parsed.src);
            }
        } else {
            ports_.release(sub.pool_index, pkt.parsed.proto, grant->port);
        }
        refusal = Counter::drop_ports_exhausted;
        return kNoIndex;
    }
    const auto mapping = static_cast<std::uint32_t>(map_pos);
    Mapping& m = tables_.mapping_records[mapping];
    m = Mapping{};
    m.inside = pkt.parsed.src;
    m.inside_port = pkt.parsed.src_port;
    m.external_port = grant->port;
    m.pool_index = sub.pool_index;
    m.proto = pkt.parsed.proto;
    m.subscriber = subscriber;
    m.sessions = 0;
    m.inside_mac = ethernet_source(pkt.frame);
    tables_.mapping_created[mapping] = now;
    ++sub.mappings;
    ++sub.ports[static_cast<std::size_t>(proto_index(m.proto))];
    life_.mapping_created();
    ports_.out2in(sub.pool_index, pkt.parsed.proto, *ports_.slice().slot_of(grant->port)) = mapping;
    counters_.add(Counter::mappings_created);
    events_.mapping(NatEventKind::mapping_created, m, pkt.parsed.dst, pkt.parsed.dst_port);
    events_.after_mapping(sub, m.inside, m.proto);
    if (grant->preserved) {
        counters_.add(Counter::port_preserved);
    }
    return mapping;
}

} // namespace ephemera
