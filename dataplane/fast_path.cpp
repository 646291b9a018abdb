// The fast path: packets of established flows, a burst at a time, in l3fwd's shape (keys for
// the whole burst, one bulk lookup, prefetch, rewrite). It does hits only; everything else is
// marked for the slow path (slow_path.cpp) and left untouched, with no verdict yet.
#include "ephemera/burst_mask.hpp"
#include "ephemera/rewrite.hpp"
#include "ephemera/tcp_state.hpp"
#include "ephemera/translator.hpp"

#include <rte_prefetch.h>

#include <cstring>

namespace ephemera {

// A SYN, FIN or RST (or any packet after an RST) of an outbound TCP session: its state moves
// (RFC 7857 section 2), and a SYN cancels a held unsolicited SYN of the same connection
// (RFC 5382 REQ-4). Out of line: the fast path meets it once or twice per connection.
[[gnu::noinline]] void Translator::track_out(const ParsedPacket& p, Session& s,
                                             std::uint32_t session) {
    life_.track_tcp(session, s, p.tcp_flags, true);
    if ((p.tcp_flags & tcp_flag::syn) != 0 && !held_syns_.empty() &&
        held_syns_.cancel(HeldSynKey{pool().address(s.pool_index).value(), p.dst.value(),
                                     s.external_port, p.dst_port})) {
        counters_.add(Counter::syn_held_cancelled); // the inside opened it: drop silently
    }
}

// An outbound packet of session `session`: refresh (RFC 4787 REQ-6), TCP state, rewrite the
// source to the external endpoint and the Ethernet header to the next hop (`eth`: 12 bytes).
template <bool kOffload>
void Translator::rewrite_out_inline(PacketRef& pkt, Session& s, std::uint32_t session,
                                    const std::uint8_t* eth, Tick now, TxChecksums offload) {
    s.last_seen = now;
    const ParsedPacket& p = pkt.parsed;
    // Only SYN, FIN and RST move the TCP state, and any packet clears an RST mark: other
    // packets of a session without one leave it as it is.
    if (p.proto == Protocol::tcp && (tcp_is_control(p.tcp_flags) || (s.flags & tcp_seen::rst))) {
        track_out(p, s, session);
    }
    std::memcpy(pkt.frame, eth, 12);
    if constexpr (kOffload) {
        pkt.tx_checksums =
            detail::rewrite_endpoint_offload(pkt.frame, p, true, pool().wire_address(s.pool_index),
                                             wire16(s.external_port), offload);
    } else {
        detail::rewrite_endpoint_wire(pkt.frame, p, true, pool().wire_address(s.pool_index),
                                      wire16(s.external_port));
    }
}
template <bool kOffload>
void Translator::rewrite_out(PacketRef& pkt, Session& s, std::uint32_t session,
                             const std::uint8_t* eth, Tick now, TxChecksums offload) {
    rewrite_out_inline<kOffload>(pkt, s, session, eth, now, offload);
}
// The slow path's packets are rewritten in software whatever the port does.
template void Translator::rewrite_out<false>(PacketRef&, Session&, std::uint32_t,
                                             const std::uint8_t*, Tick, TxChecksums);

template <bool kOffload>
std::uint64_t Translator::in2out_fast(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                                      std::span<Verdict> verdicts) {
    const auto n = static_cast<std::uint32_t>(packets.size());
    const auto prefetch_bucket = tables_.sessions.bucket_prefetch();
    for (std::uint32_t i = 0; i < n; ++i) {
        hashes_[i] = SessionTable::put_words(keys_[i], SessionKey::words_of(packets[i].parsed));
        prefetch_bucket(hashes_[i]);
    }
    // The lookup leaves each hit's entry (key and record, one line) in cache.
    tables_.sessions.lookup_bulk(keys_, hashes_, n, positions_);
    std::uint8_t eth[12];
    std::memcpy(eth, l2.next_hop_mac.bytes, 6);
    std::memcpy(eth + 6, l2.outside_port_mac.bytes, 6);
    const std::uint16_t mtu = policy().outside_mtu;
    const PoolIndex& pool = this->pool();
    std::uint64_t slow = 0;
    std::uint32_t translated = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        PacketRef& pkt = packets[i];
        const ParsedPacket& p = pkt.parsed;
        // A hit is never a martian: no session is made for one. A packet to a pool address
        // hairpins: the slow path does that. The filter's bit test clears most destinations;
        // the rest (one in sixteen with 256 pool addresses) are looked up here, as a slow-path
        // pass for each would cost a few hundred instructions.
        if (positions_[i] < 0 || p.icmp_error || pkt.frame[p.l3 + ipv4_off::ttl] <= 1 ||
            (p.proto == Protocol::icmp && p.icmp_type != kIcmpEchoRequest) || exceeds(p, mtu) ||
            pool.find_fast(p.dst) != kNoPool) {
            slow |= burst_bit(i);
            continue;
        }
        EPHEMERA_ASSERT_OWNER(owns_subscriber(p.src));
        const auto session = static_cast<std::uint32_t>(positions_[i]);
        rewrite_out_inline<kOffload>(pkt, tables_.sessions.value(session), session, eth, now,
                                     l2.tx_checksums);
        verdicts[i] = Verdict::forward;
        ++translated;
    }
    counters_.add(Counter::in2out_translated, translated);
    return slow;
}
template std::uint64_t Translator::in2out_fast<false>(std::span<PacketRef>, Tick, const L2Context&,
                                                      std::span<Verdict>);
template std::uint64_t Translator::in2out_fast<true>(std::span<PacketRef>, Tick, const L2Context&,
                                                     std::span<Verdict>);

// Admission of the outside packets in `candidates`, whose mapping was found (mappings_[i] is
// not kNoIndex). The session is looked up only when something needs it: address-and-port-
// dependent filtering, inbound refresh, or a TCP SYN, FIN or RST that moves the session's
// state. A mapping with one session (most: a client opens a new port per connection) names it
// (Mapping::last_session), so its entry is read straight away and the key compared; the rest
// are hashed and looked up in bulk, and a session found so becomes its mapping's latest.
// Address-dependent filtering asks the permission table for the packets without a session. A
// refused packet's mappings_[i] becomes kNoIndex; `expired` ones are admitted or not but change
// nothing. The loops walk the set bits of their masks: a burst's refused or slow packets cost
// nothing here.
void Translator::out2in_admit(std::span<PacketRef> packets, Tick now, std::uint64_t candidates,
                              std::uint64_t expired) {
    const FilteringMode mode = life_.filtering();
    const bool refresh = policy().inbound_refresh;
    std::uint64_t wanted = candidates;
    if (mode != FilteringMode::address_port_dependent && !refresh) {
        wanted = 0;
        for_each_bit(candidates, [&](std::uint32_t i) {
            const ParsedPacket& p = packets[i].parsed;
            if (p.proto == Protocol::tcp && tcp_is_control(p.tcp_flags)) {
                wanted |= burst_bit(i);
            }
        });
    }
    std::uint32_t idx[kMaxBurst];
    std::uint32_t count = 0;
    for_each_bit(wanted, [&](std::uint32_t i) {
        const Mapping& mapping = tables_.mapping_records[mappings_[i]];
        // Stored as whole words, as the compares below read it (see FlatTable::put).
        const auto words =
            SessionKey::inbound(mapping.inside, mapping.inside_port, packets[i].parsed).words();
        std::memcpy(&keys_[count], words.data(), sizeof(SessionKey));
        session_hints_[count] = mapping.sessions == 1 ? mapping.last_session : kNoIndex;
        if (session_hints_[count] != kNoIndex) {
            tables_.sessions.prefetch_entry(session_hints_[count]);
        }
        idx[count++] = i;
    });
    std::uint32_t hashed[kMaxBurst]; // of the keys, those not at their hint
    std::uint32_t rest = 0;
    const auto prefetch_bucket = tables_.sessions.bucket_prefetch();
    for (std::uint32_t j = 0; j < count; ++j) {
        if (session_hints_[j] != kNoIndex && tables_.sessions.holds(session_hints_[j], keys_[j])) {
            positions_[j] = static_cast<std::int32_t>(session_hints_[j]);
            continue;
        }
        hashes_[rest] = SessionTable::put(rest_keys_[rest], keys_[j]);
        prefetch_bucket(hashes_[rest]);
        hashed[rest++] = j;
    }
    if (rest != 0) {
        tables_.sessions.lookup_bulk(rest_keys_, hashes_, rest, rest_positions_);
        for (std::uint32_t k = 0; k < rest; ++k) {
            const std::uint32_t j = hashed[k];
            positions_[j] = rest_positions_[k];
            if (rest_positions_[k] >= 0) {
                tables_.mapping_records[mappings_[idx[j]]].last_session =
                    static_cast<std::uint32_t>(rest_positions_[k]);
            }
        }
    }

    std::uint64_t with_session = 0;
    for (std::uint32_t j = 0; j < count; ++j) {
        const std::uint32_t i = idx[j];
        if (positions_[j] < 0) {
            if (mode == FilteringMode::address_port_dependent) {
                mappings_[i] = kNoIndex;
            }
            continue; // RFC 7857 section 7: a packet that has no session refreshes nothing
        }
        with_session |= burst_bit(i);
        if ((expired & burst_bit(i)) != 0) {
            continue; // admitted, but not delivered: it changes nothing
        }
        const auto session = static_cast<std::uint32_t>(positions_[j]);
        Session& s = tables_.sessions.value(session);
        const ParsedPacket& p = packets[i].parsed;
        if (refresh) {
            s.last_seen = now;
        }
        // As outbound (rewrite_out): only SYN, FIN and RST move the state, and any packet
        // clears an RST mark; every other packet would leave it as it is.
        if (p.proto == Protocol::tcp &&
            (tcp_is_control(p.tcp_flags) || (s.flags & tcp_seen::rst) != 0)) {
            life_.track_tcp(session, s, p.tcp_flags, false);
        }
    }

    if (mode == FilteringMode::address_dependent) { // a session implies permission
        count = 0;
        for_each_bit(candidates & ~with_session, [&](std::uint32_t i) {
            permission_keys_[count] = PermissionKey{mappings_[i], packets[i].parsed.src.value()};
            key_ptrs_[count] = &permission_keys_[count];
            idx[count++] = i;
        });
        tables_.permissions.lookup_bulk(key_ptrs_, count, positions_);
        for (std::uint32_t j = 0; j < count; ++j) {
            if (positions_[j] < 0) {
                mappings_[idx[j]] = kNoIndex;
            }
        }
    }
}

// In stages over the burst, each prefetching what the next needs: find the direct-index slot,
// read it, admit, rewrite. Nothing here hashes in endpoint-independent mode without inbound
// refresh: (pool address, external port, protocol) names at most one mapping, and only a
// TCP SYN, FIN or RST needs its session looked up (to move its state).
template <bool kOffload>
std::uint64_t Translator::out2in_fast(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                                      std::span<Verdict> verdicts) {
    const auto n = static_cast<std::uint32_t>(packets.size());
    const PoolIndex& pool = this->pool();
    const PortSlice& slice = ports_.slice();
    const std::uint16_t mtu = policy().inside_mtu;
    std::uint64_t slow = 0;
    std::uint64_t candidates = 0;
    std::uint64_t control = 0; // TCP SYN, FIN or RST: the session's state moves
    const bool has_statics = !statics().empty();
    for (std::uint32_t i = 0; i < n; ++i) {
        const PacketRef& pkt = packets[i];
        const ParsedPacket& p = pkt.parsed;
        mappings_[i] = kNoIndex;
        const std::uint16_t pool_index = pool.find(p.dst);
        const auto slot = slice.slot_of(p.dst_port);
        // Slow: not ours, a martian, an ICMP error or query other than a reply, a TTL that
        // runs out here, too big for the inside, or not a port this worker hands out.
        if (pool_index == kNoPool || p.src.is_martian() || p.icmp_error ||
            (p.proto == Protocol::icmp && p.icmp_type != kIcmpEchoReply) ||
            pkt.frame[p.l3 + ipv4_off::ttl] <= 1 || exceeds(p, mtu) || !slot) {
            slow |= burst_bit(i);
            continue;
        }
        index_entries_[i] = &ports_.out2in(pool_index, p.proto, *slot);
        rte_prefetch0(index_entries_[i]);
        candidates |= burst_bit(i);
        if (p.proto == Protocol::tcp && tcp_is_control(p.tcp_flags)) {
            control |= burst_bit(i);
        }
    }
    std::uint64_t no_mapping = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        if ((candidates & burst_bit(i)) == 0) {
            continue;
        }
        mappings_[i] = *index_entries_[i];
        if (mappings_[i] == kNoIndex) {
            candidates &= ~burst_bit(i);
            // A static mapping is in no index entry: the slow path asks the static table.
            (has_statics ? slow : no_mapping) |= burst_bit(i);
            continue;
        }
        rte_prefetch0(&tables_.mapping_records[mappings_[i]]);
    }
    const std::uint64_t looked_up = candidates;
    if (life_.filtering() != FilteringMode::endpoint_independent || policy().inbound_refresh ||
        (control & candidates) != 0) {
        out2in_admit(packets, now, candidates, 0);
    }

    std::uint32_t translated = 0;
    std::uint64_t filtered = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        if ((looked_up & burst_bit(i)) == 0) {
            continue;
        }
        if (mappings_[i] == kNoIndex) {
            filtered |= burst_bit(i);
            continue;
        }
        PacketRef& pkt = packets[i];
        const Mapping& m = tables_.mapping_records[mappings_[i]];
        EPHEMERA_ASSERT_OWNER(owns_port(m.pool_index, m.external_port) &&
                              owns_subscriber(m.inside));
        std::memcpy(pkt.frame, m.inside_mac.bytes, 6);
        std::memcpy(pkt.frame + 6, l2.inside_port_mac.bytes, 6);
        if constexpr (kOffload) {
            pkt.tx_checksums = detail::rewrite_endpoint_offload(
                pkt.frame, pkt.parsed, false, wire32(m.inside.value()), wire16(m.inside_port),
                l2.tx_checksums);
        } else {
            detail::rewrite_endpoint_wire(pkt.frame, pkt.parsed, false, wire32(m.inside.value()),
                                          wire16(m.inside_port));
        }
        verdicts[i] = Verdict::forward;
        ++translated;
    }
    counters_.add(Counter::out2in_translated, translated);
    if ((no_mapping | filtered) != 0) {
        refuse_inbound(packets, no_mapping, filtered, now, l2, verdicts);
    }
    return slow;
}
template std::uint64_t Translator::out2in_fast<false>(std::span<PacketRef>, Tick, const L2Context&,
                                                      std::span<Verdict>);
template std::uint64_t Translator::out2in_fast<true>(std::span<PacketRef>, Tick, const L2Context&,
                                                     std::span<Verdict>);

} // namespace ephemera
