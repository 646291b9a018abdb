#include "ephemera/translator.hpp"

#include "ephemera/rewrite.hpp"

#include <rte_hash.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <atomic>
#include <string>

namespace ephemera {

namespace {

// Each translator's tables get process-unique rte_hash names, so any number can coexist.
std::string unique_table_name(WorkerId worker) {
    static std::atomic<unsigned> instances{0};
    return "eph" + std::to_string(instances.fetch_add(1)) + "_w" + std::to_string(worker);
}

std::uint32_t share_of(std::uint32_t total, WorkerId workers) {
    return std::max<std::uint32_t>(1, (total + workers - 1) / workers);
}

constexpr std::uint64_t kAnchorDomain = 0x616e63686f72; // "anchor": separates this use of the key

MappingKey mapping_key(const ParsedPacket& p) {
    MappingKey k{};
    k.inside_addr = p.src.value();
    k.inside_port = p.src_port;
    k.proto = static_cast<std::uint8_t>(p.proto);
    return k;
}

} // namespace

Translator::Translator(const Config& config, const Ownership& ownership, WorkerId worker,
                       SipKey port_secret, CounterBlock& counters, int socket)
    : filtering_(config.filtering), secret_(port_secret), pool_(config.pool), worker_(worker),
      counters_(counters), ports_(ownership, worker, config.port_range, config.reserved,
                                  config.pool.size(), port_secret),
      tables_(unique_table_name(worker), share_of(config.limits.max_sessions, ownership.workers()),
              config.pool.size(), ports_.slice().slot_count(), socket),
      max_sessions_(share_of(config.limits.max_sessions, ownership.workers())) {}

SessionKey Translator::session_key(const PacketRef& pkt) {
    SessionKey k{};
    k.inside_addr = pkt.parsed.src.value();
    k.remote_addr = pkt.parsed.dst.value();
    k.inside_port = pkt.parsed.src_port;
    k.remote_port = pkt.parsed.proto == Protocol::icmp ? 0 : pkt.parsed.dst_port;
    k.proto = static_cast<std::uint8_t>(pkt.parsed.proto);
    return k;
}

void Translator::in2out(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                        std::span<Verdict> verdicts) {
    for (std::size_t done = 0; done < packets.size(); done += kMaxBurst) {
        const std::size_t n = std::min(kMaxBurst, packets.size() - done);
        in2out_burst(packets.subspan(done, n), now, l2, verdicts.subspan(done, n));
    }
}

void Translator::out2in(std::span<PacketRef> packets, Tick /*now*/, const L2Context& l2,
                        std::span<Verdict> verdicts) {
    for (std::size_t done = 0; done < packets.size(); done += kMaxBurst) {
        const std::size_t n = std::min(kMaxBurst, packets.size() - done);
        out2in_burst(packets.subspan(done, n), l2, verdicts.subspan(done, n));
    }
}

void Translator::in2out_burst(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                              std::span<Verdict> verdicts) {
    const auto n = static_cast<std::uint32_t>(packets.size());
    // Stage 1: keys for the whole burst, then one bulk lookup (l3fwd's em_hlm pattern).
    for (std::uint32_t i = 0; i < n; ++i) {
        keys_[i] = session_key(packets[i]);
        key_ptrs_[i] = &keys_[i];
    }
    tables_.sessions.lookup_bulk(key_ptrs_, n, positions_);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (positions_[i] >= 0) {
            rte_prefetch0(&tables_.session_records[static_cast<std::uint32_t>(positions_[i])]);
        }
    }

    // Stage 2: hits are rewritten in place; misses go to the slow path one by one, since an
    // earlier miss in the same burst may create the session a later one needs.
    std::uint64_t translated = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        PacketRef& pkt = packets[i];
        std::uint8_t* ip = pkt.frame + pkt.parsed.l3;
        if (ip[ipv4_off::ttl] <= 1) {
            counters_.add(Counter::drop_ttl_expired);
            verdicts[i] = Verdict::drop;
            continue;
        }
        if (pkt.parsed.dst.is_martian() || pkt.parsed.src.is_martian()) {
            counters_.add(Counter::drop_martian); // and never a mapping for it
            verdicts[i] = Verdict::drop;
            continue;
        }
        if (pkt.parsed.proto == Protocol::icmp && pkt.parsed.icmp_type != kIcmpEchoRequest) {
            counters_.add(Counter::drop_unsupported_protocol); // only queries open a mapping
            verdicts[i] = Verdict::drop;
            continue;
        }
        std::int32_t pos = positions_[i];
        if (pos < 0) {
            pos = in2out_miss(pkt, keys_[i], now);
            if (pos < 0) {
                verdicts[i] = Verdict::drop;
                continue;
            }
        }
        finish_in2out(pkt, static_cast<std::uint32_t>(pos), now, l2);
        verdicts[i] = Verdict::forward;
        ++translated;
    }
    counters_.add(Counter::in2out_translated, translated);
}

void Translator::finish_in2out(PacketRef& pkt, std::uint32_t session, Tick now,
                               const L2Context& l2) {
    Session& s = tables_.session_records[session];
    s.last_seen = now;
    rewrite_source(pkt.frame, pkt.parsed, pool_.address(s.pool_index), s.external_port);
    set_ethernet(pkt.frame, l2.next_hop_mac, l2.outside_port_mac);
}

// A packet with no session: find or make its mapping, then make its session.
std::int32_t Translator::in2out_miss(const PacketRef& pkt, const SessionKey& key, Tick now) {
    if (const std::int32_t pos = tables_.sessions.lookup(&key); pos >= 0) {
        return pos; // created by an earlier packet of this burst
    }
    if (live_sessions_ >= max_sessions_) {
        counters_.add(Counter::drop_sessions_exhausted);
        return -1;
    }
    const std::uint32_t mapping = find_or_create_mapping(pkt, now);
    if (mapping == kNoIndex) {
        return -1; // counted where it failed
    }
    const std::int32_t pos = tables_.sessions.add(&key);
    if (pos < 0) {
        counters_.add(Counter::drop_sessions_exhausted);
        release_mapping_if_unused(mapping);
        return -1;
    }
    if (filtering_ == FilteringMode::address_dependent) {
        const PermissionKey pk{mapping, key.remote_addr};
        const std::int32_t perm = tables_.permissions.add(&pk);
        if (perm < 0) {
            tables_.sessions.remove(&key);
            counters_.add(Counter::drop_sessions_exhausted);
            release_mapping_if_unused(mapping);
            return -1;
        }
        ++tables_.permission_counts[static_cast<std::uint32_t>(perm)];
    }
    Mapping& m = tables_.mapping_records[mapping];
    tables_.session_records[static_cast<std::uint32_t>(pos)] =
        Session{mapping, now, m.external_port, m.pool_index, 0, 0, 0};
    ++m.sessions;
    ++live_sessions_;
    counters_.add(Counter::sessions_created);
    return pos;
}

std::uint32_t Translator::find_or_create_mapping(const PacketRef& pkt, Tick now) {
    const MappingKey key = mapping_key(pkt.parsed);
    const std::int32_t pos = tables_.mappings.lookup(&key);
    if (pos >= 0) {
        return static_cast<std::uint32_t>(pos);
    }
    return create_mapping(pkt, key, now);
}

// Paired pooling (RFC 4787 REQ-2, RFC 6888 REQ-2): a subscriber is anchored to one pool
// address while it has any mapping; if that address has no free port here, the packet is
// dropped (RFC 7857 section 4) rather than mapped to another address.
std::uint32_t Translator::create_mapping(const PacketRef& pkt, const MappingKey& key, Tick now) {
    const std::uint32_t inside = pkt.parsed.src.value();
    std::int32_t sub_pos = tables_.subscribers.lookup(&inside);
    const bool new_subscriber = sub_pos < 0;
    if (new_subscriber) {
        sub_pos = tables_.subscribers.add(&inside);
        if (sub_pos < 0) {
            counters_.add(Counter::drop_sessions_exhausted);
            return kNoIndex;
        }
        // Prefer the address the subscriber hashes to; skip addresses with no port left here.
        // The hash is keyed and independent of subscriber_hash: were it the same function, a
        // worker's subscribers (hash % workers == w) would crowd onto a few addresses whenever
        // the pool size and the worker count share a factor.
        const auto n = static_cast<std::uint32_t>(pool_.size());
        const auto first = static_cast<std::uint32_t>(
            siphash_2x64(secret_, pkt.parsed.src.value(), kAnchorDomain) % n);
        std::uint16_t anchor = static_cast<std::uint16_t>(first);
        for (std::uint32_t i = 0; i < n; ++i) {
            const auto candidate = static_cast<std::uint16_t>((first + i) % n);
            if (ports_.free_ports(candidate, pkt.parsed.proto) > 0) {
                anchor = candidate;
                break;
            }
        }
        tables_.subscriber_records[static_cast<std::uint32_t>(sub_pos)] = Subscriber{anchor, 0, 0};
    }
    Subscriber& sub = tables_.subscriber_records[static_cast<std::uint32_t>(sub_pos)];

    const PortRequest request{pkt.parsed.src, pkt.parsed.src_port, pkt.parsed.proto, sub.pool_index,
                              pool_.address(sub.pool_index)};
    const auto grant = ports_.allocate(request);
    if (!grant) {
        counters_.add(Counter::drop_ports_exhausted);
        if (new_subscriber) {
            tables_.subscribers.remove(&inside);
        }
        return kNoIndex;
    }
    const std::int32_t map_pos = tables_.mappings.add(&key);
    if (map_pos < 0) {
        ports_.release(sub.pool_index, pkt.parsed.proto, grant->port);
        counters_.add(Counter::drop_sessions_exhausted);
        if (new_subscriber) {
            tables_.subscribers.remove(&inside);
        }
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
    m.subscriber = static_cast<std::uint32_t>(sub_pos);
    m.sessions = 0;
    m.inside_mac = ethernet_source(pkt.frame);
    m.created = now;
    ++sub.mappings;
    ++live_mappings_;
    const std::uint32_t slot = *ports_.slice().slot_of(grant->port);
    tables_.out2in(sub.pool_index, pkt.parsed.proto, slot) = mapping;
    counters_.add(Counter::mappings_created);
    if (grant->preserved) {
        counters_.add(Counter::port_preserved);
    }
    return mapping;
}

void Translator::release_mapping_if_unused(std::uint32_t mapping) {
    Mapping& m = tables_.mapping_records[mapping];
    if (m.sessions != 0) {
        return;
    }
    const std::uint32_t slot = *ports_.slice().slot_of(m.external_port);
    tables_.out2in(m.pool_index, m.proto, slot) = kNoIndex;
    ports_.release(m.pool_index, m.proto, m.external_port);
    const MappingKey key{m.inside.value(), m.inside_port, static_cast<std::uint8_t>(m.proto), 0};
    tables_.mappings.remove(&key);
    --live_mappings_;
    Subscriber& sub = tables_.subscriber_records[m.subscriber];
    if (--sub.mappings == 0) {
        const std::uint32_t inside = m.inside.value();
        tables_.subscribers.remove(&inside);
    }
}

// RFC 4787 REQ-8 / RFC 5382 REQ-3: which remote endpoints may reach an existing mapping.
// Endpoint-independent filtering admits all; the dependent modes need one bulk lookup over the
// burst's admitted packets: (mapping, remote address) in the permission table for ADF, the
// 5-tuple session for APDF. A refused packet's mappings_[i] becomes kNoIndex.
void Translator::out2in_filter(std::span<PacketRef> packets, std::uint32_t n) {
    if (filtering_ == FilteringMode::endpoint_independent) {
        return;
    }
    std::uint32_t idx[kMaxBurst];
    std::uint32_t count = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (mappings_[i] == kNoIndex) {
            continue;
        }
        const ParsedPacket& p = packets[i].parsed;
        if (filtering_ == FilteringMode::address_dependent) {
            permission_keys_[count] = PermissionKey{mappings_[i], p.src.value()};
            key_ptrs_[count] = &permission_keys_[count];
        } else {
            const Mapping& m = tables_.mapping_records[mappings_[i]];
            SessionKey& k = keys_[count];
            k = SessionKey{};
            k.inside_addr = m.inside.value();
            k.remote_addr = p.src.value();
            k.inside_port = m.inside_port;
            k.remote_port = p.proto == Protocol::icmp ? 0 : p.src_port;
            k.proto = static_cast<std::uint8_t>(p.proto);
            key_ptrs_[count] = &k;
        }
        idx[count++] = i;
    }
    const HashTable& table =
        filtering_ == FilteringMode::address_dependent ? tables_.permissions : tables_.sessions;
    table.lookup_bulk(key_ptrs_, count, positions_);
    std::uint64_t refused = 0;
    for (std::uint32_t j = 0; j < count; ++j) {
        if (positions_[j] < 0) {
            mappings_[idx[j]] = kNoIndex;
            ++refused;
        }
    }
    if (refused != 0) {
        counters_.add(Counter::drop_filtered, refused);
    }
}

// In stages over the burst, each prefetching what the next needs (l3fwd's pattern): find the
// direct-index slot, read it, filter, rewrite. Nothing here hashes in endpoint-independent
// mode: (pool address, external port, protocol) names at most one mapping.
void Translator::out2in_burst(std::span<PacketRef> packets, const L2Context& l2,
                              std::span<Verdict> verdicts) {
    const auto n = static_cast<std::uint32_t>(packets.size());
    for (std::uint32_t i = 0; i < n; ++i) {
        const ParsedPacket& p = packets[i].parsed;
        index_entries_[i] = nullptr;
        if (packets[i].frame[p.l3 + ipv4_off::ttl] <= 1) {
            counters_.add(Counter::drop_ttl_expired);
            continue;
        }
        const std::uint16_t pool_index = pool_.find(p.dst);
        if (pool_index == kNoPool) {
            counters_.add(Counter::drop_not_for_us);
            continue;
        }
        if (p.src.is_martian()) {
            counters_.add(Counter::drop_martian);
            continue;
        }
        if (p.proto == Protocol::icmp && p.icmp_type != kIcmpEchoReply) {
            counters_.add(Counter::drop_no_mapping); // only replies belong to an echo mapping
            continue;
        }
        const auto slot = ports_.slice().slot_of(p.dst_port);
        if (!slot) {
            counters_.add(Counter::drop_no_mapping); // not a port this worker hands out
            continue;
        }
        index_entries_[i] = &tables_.out2in(pool_index, p.proto, *slot);
        rte_prefetch0(index_entries_[i]);
    }
    std::uint64_t no_mapping = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        mappings_[i] = index_entries_[i] != nullptr ? *index_entries_[i] : kNoIndex;
        if (mappings_[i] != kNoIndex) {
            rte_prefetch0(&tables_.mapping_records[mappings_[i]]);
        } else if (index_entries_[i] != nullptr) {
            ++no_mapping;
        }
    }
    if (no_mapping != 0) {
        counters_.add(Counter::drop_no_mapping, no_mapping);
    }
    out2in_filter(packets, n);

    std::uint64_t translated = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (mappings_[i] == kNoIndex) {
            verdicts[i] = Verdict::drop;
            continue;
        }
        PacketRef& pkt = packets[i];
        const Mapping& m = tables_.mapping_records[mappings_[i]];
        rewrite_destination(pkt.frame, pkt.parsed, m.inside, m.inside_port);
        set_ethernet(pkt.frame, m.inside_mac, l2.inside_port_mac);
        verdicts[i] = Verdict::forward;
        ++translated;
    }
    counters_.add(Counter::out2in_translated, translated);
}

std::size_t Translator::snapshot_mappings(std::span<MappingView> out) const {
    std::size_t written = 0;
    const void* key = nullptr;
    void* data = nullptr;
    std::uint32_t next = 0;
    std::int32_t pos;
    while (written < out.size() &&
           (pos = rte_hash_iterate(tables_.mappings.raw(), &key, &data, &next)) >= 0) {
        const Mapping& m = tables_.mapping_records[static_cast<std::uint32_t>(pos)];
        out[written++] =
            MappingView{m.proto,         m.inside,  m.inside_port, pool_.address(m.pool_index),
                        m.external_port, m.sessions};
    }
    return written;
}

} // namespace ephemera
