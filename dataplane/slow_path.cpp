// The slow path: what the fast pass over a burst left (fast_path.cpp), in burst order, out of
// line. New flows (session_create.cpp), refusals and the ICMP replies they earn (RFC 6888
// REQ-11), ICMP errors both ways (icmp_errors.cpp), Time Exceeded (RFC 5508 section 7.2), the
// 3/4 of RFC 4787 REQ-13, pings to the pool, unsolicited SYNs (RFC 5382 REQ-4), and which
// translated packets hairpin (RFC 4787 REQ-9).
#include "ephemera/burst_mask.hpp"
#include "ephemera/icmp_error.hpp"
#include "ephemera/l2.hpp"
#include "ephemera/rewrite.hpp"
#include "ephemera/tcp_state.hpp"
#include "ephemera/translator.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ephemera {

namespace {

bool is_mapping_refusal(Counter c) {
    return c == Counter::drop_ports_exhausted || c == Counter::drop_sessions_exhausted ||
           c == Counter::drop_subscribers_exhausted || c == Counter::drop_subscriber_sessions ||
           c == Counter::drop_subscriber_ports || c == Counter::drop_subscriber_rate ||
           c == Counter::drop_subscriber_blocks || c == Counter::drop_blocks_exhausted ||
           c == Counter::drop_not_deterministic;
}

bool is_bare_syn(const ParsedPacket& p) {
    return p.proto == Protocol::tcp &&
           (p.tcp_flags & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::syn;
}

} // namespace

[[gnu::noinline]] void Translator::in2out_slow(std::span<PacketRef> packets, std::uint64_t slow,
                                               Tick now, const L2Context& l2,
                                               std::span<Verdict> verdicts) {
    const Policy& policy = this->policy();
    // A new flow's first reads are its mapping's and its subscriber's buckets, at random places
    // in tables too large for the cache: asked for all at once, their misses overlap instead
    // of each new flow waiting for its own (prefetch.hpp says why the prefetch is not GCC's).
    for_each_bit(slow, [&](std::uint32_t i) {
        const ParsedPacket& p = packets[i].parsed;
        if (positions_[i] < 0 && !p.icmp_error) {
            tables_.mappings.prefetch_bucket(MappingKey::of(p));
            tables_.subscribers.prefetch_bucket(SubscriberKey::of(p.src));
        }
    });
    std::uint64_t translated = 0;
    for_each_bit(slow, [&](std::uint32_t i) {
        PacketRef& pkt = packets[i];
        const ParsedPacket& p = pkt.parsed;
        verdicts[i] = Verdict::drop;
        if (pkt.frame[p.l3 + ipv4_off::ttl] <= 1 && !p.icmp_error) {
            verdicts[i] = time_exceeded(pkt, now, policy.gateway, l2.inside_port_mac);
            return;
        }
        if (p.dst.is_martian() || p.src.is_martian()) {
            counters_.add(Counter::drop_martian); // and never a mapping for it
            return;
        }
        if (p.icmp_error) {
            verdicts[i] = icmp_error_in2out(pkt, keys_[i], positions_[i], l2);
            return;
        }
        // Only queries open a mapping; a reply belongs to a session that a query from outside
        // opened (to a static mapping's host: a 1:1 host answers pings).
        if (p.proto == Protocol::icmp && p.icmp_type != kIcmpEchoRequest &&
            (p.icmp_type != kIcmpEchoReply || positions_[i] < 0)) {
            counters_.add(Counter::drop_unsupported_protocol);
            return;
        }
        std::int32_t pos = positions_[i];
        if (pos < 0) {
            const Miss miss = create_session(pkt, keys_[i], now);
            if (miss.session < 0) {
                verdicts[i] = refuse(pkt, miss.refusal, now, l2);
                return;
            }
            pos = miss.session;
        }
        if (exceeds(p, policy.outside_mtu)) {
            verdicts[i] = too_big(pkt, policy.outside_mtu, policy.gateway, l2.inside_port_mac, now);
            return;
        }
        const auto session = static_cast<std::uint32_t>(pos);
        std::uint8_t eth[12];
        std::memcpy(eth, l2.next_hop_mac.bytes, 6);
        std::memcpy(eth + 6, l2.outside_port_mac.bytes, 6);
        rewrite_out<false>(pkt, tables_.sessions.value(session), session, eth, now);
        verdicts[i] = Verdict::forward;
        ++translated;
    });
    counters_.add(Counter::in2out_translated, translated);
}

[[gnu::noinline]] void Translator::out2in_slow(std::span<PacketRef> packets, std::uint64_t slow,
                                               Tick now, const L2Context& l2,
                                               std::span<Verdict> verdicts) {
    const Policy& policy = this->policy();
    std::uint64_t translated = 0;
    for_each_bit(slow, [&](std::uint32_t i) {
        PacketRef& pkt = packets[i];
        const ParsedPacket& p = pkt.parsed;
        verdicts[i] = Verdict::drop;
        const std::uint16_t pool_index = pool().find(p.dst);
        if (pool_index == kNoPool) {
            counters_.add(Counter::drop_not_for_us);
            return;
        }
        if (p.src.is_martian()) {
            counters_.add(Counter::drop_martian);
            return;
        }
        if (p.icmp_error) {
            verdicts[i] = icmp_error_out2in(pkt, pool_index, l2);
            return;
        }
        if (is_static_address(pool_index)) { // 1:1: every port and every ping are the host's
            const auto inside = statics().inside_of(p.dst, p.proto, p.dst_port);
            if (inside && (p.proto != Protocol::icmp || p.icmp_type == kIcmpEchoRequest ||
                           p.icmp_type == kIcmpEchoReply)) {
                verdicts[i] = static_inbound(pkt, *inside, pool_index, now, l2);
            } else {
                refuse_inbound(packets, std::uint64_t{1} << i, 0, now, l2, verdicts);
            }
            return;
        }
        if (p.proto == Protocol::icmp && p.icmp_type == kIcmpEchoRequest) {
            verdicts[i] = answer_echo(pkt, l2.outside_port_mac); // delivered to us: no TTL to spend
            return;
        }
        if (p.proto == Protocol::icmp && p.icmp_type != kIcmpEchoReply) {
            counters_.add(Counter::drop_no_mapping); // only replies belong to an echo mapping
            return;
        }
        const auto slot = ports_.slice().slot_of(p.dst_port);
        mappings_[i] = slot ? ports_.out2in(pool_index, p.proto, *slot) : kNoIndex;
        if (mappings_[i] == kNoIndex) { // none, or not a port this worker hands out
            const auto inside =
                statics().empty() ? std::nullopt : statics().inside_of(p.dst, p.proto, p.dst_port);
            if (inside) {                                                        // a port forward
                verdicts[i] = static_inbound(pkt, *inside, pool_index, now, l2); // counts
                return;
            }
            refuse_inbound(packets, std::uint64_t{1} << i, 0, now, l2, verdicts);
            return;
        }
        // Admitted or not as in the fast path; a packet whose TTL runs out here is answered
        // only if it would have been delivered, and then changes nothing.
        const bool expired = pkt.frame[p.l3 + ipv4_off::ttl] <= 1;
        const std::uint64_t me = std::uint64_t{1} << i;
        out2in_admit(packets, now, me, expired ? me : 0);
        if (mappings_[i] == kNoIndex) {
            refuse_inbound(packets, 0, me, now, l2, verdicts);
            return;
        }
        if (expired) { // the sender hears from the pool address it sent to
            verdicts[i] = time_exceeded(pkt, now, p.dst, l2.outside_port_mac);
            return;
        }
        if (exceeds(p, policy.inside_mtu)) {
            verdicts[i] = too_big(pkt, policy.inside_mtu, p.dst, l2.outside_port_mac, now);
            return;
        }
        const Mapping& m = tables_.mapping_records[mappings_[i]];
        rewrite_destination(pkt.frame, p, m.inside, m.inside_port);
        set_ethernet(pkt.frame, m.inside_mac, l2.inside_port_mac);
        verdicts[i] = Verdict::forward;
        ++translated;
    });
    counters_.add(Counter::out2in_translated, translated);
}

[[gnu::noinline]] void Translator::refuse_inbound(std::span<PacketRef> packets,
                                                  std::uint64_t no_mapping, std::uint64_t filtered,
                                                  Tick now, const L2Context& l2,
                                                  std::span<Verdict> verdicts) {
    // A reply to a port whose subscriber moved to a peer box goes on to the peer.
    no_mapping = pass_moved_replies(packets, no_mapping, now, l2, verdicts);
    counters_.add(Counter::drop_no_mapping, static_cast<std::uint64_t>(std::popcount(no_mapping)));
    counters_.add(Counter::drop_filtered, static_cast<std::uint64_t>(std::popcount(filtered)));
    for_each_bit(no_mapping | filtered, [&](std::uint32_t i) {
        verdicts[i] = Verdict::drop;
        if (policy().syn_unreachable && is_bare_syn(packets[i].parsed)) {
            hold_syn(packets[i], now); // unsolicited: no mapping, or filtered
        }
    });
}

// Whatever in2out sends out (a translation, a translated ICMP error) and is addressed to one
// of our pool addresses goes back in through out2in instead: the destination subscriber then
// sees the sender's external address and port (RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508
// REQ-7), and filtering treats the sender as any outside host.
void Translator::mark_hairpins(std::span<PacketRef> packets, std::span<Verdict> verdicts,
                               std::uint64_t candidates) {
    std::uint64_t hairpins = 0;
    for_each_bit(candidates, [&](std::uint32_t i) {
        if (verdicts[i] != Verdict::forward) {
            return;
        }
        const std::uint8_t* ip = packets[i].frame + packets[i].parsed.l3;
        if (pool().find_fast(Ipv4Addr{load_be32(ip + ipv4_off::dst)}) != kNoPool) {
            verdicts[i] = Verdict::hairpin;
            ++hairpins;
        }
    });
    if (hairpins != 0) {
        counters_.add(Counter::hairpinned, hairpins);
    }
}

// A pool address answers pings like any host address: from outside (so an operator can see
// that the address is up) and from a subscriber through a hairpin, whose answer hairpins in
// turn to reach the subscriber's echo mapping.
Verdict Translator::answer_echo(PacketRef& pkt, const MacAddr& our_mac) {
    make_echo_reply({pkt.frame, pkt.length}, pkt.parsed, our_mac);
    counters_.add(Counter::pool_echo_replies_sent);
    const bool to_pool = pool().find(pkt.parsed.src) != kNoPool; // the reply's destination
    if (to_pool) {
        counters_.add(Counter::hairpinned); // the answer turns back inside a second time
        return Verdict::hairpin;
    }
    return Verdict::reply;
}

// No mapping could be made: drop, count, and tell the subscriber with ICMP 3/1 when that is
// switched on and the rate allows (RFC 6888 REQ-11). Existing mappings are never touched.
Verdict Translator::refuse(PacketRef& pkt, Counter reason, Tick now, const L2Context& l2) {
    counters_.add(reason);
    if (is_mapping_refusal(reason)) {
        const Ipv4Addr subscriber = pkt.parsed.src;
        events_.refusal(reason, subscriber, pkt.parsed.proto, [&] {
            const auto entry = find_subscriber(subscriber);
            return entry ? pool().address(entry->record->pool_index) : Ipv4Addr{};
        });
    }
    if (!policy().icmp_unreachable || !is_mapping_refusal(reason)) {
        return Verdict::drop;
    }
    if (!take_icmp_token(now)) {
        counters_.add(Counter::icmp_unreachable_rate_limited);
        return Verdict::drop;
    }
    return answer_with_error(pkt, kIcmpDestUnreachable, kIcmpHostUnreachable, policy().gateway,
                             l2.inside_port_mac, Counter::icmp_unreachable_sent);
}

// Turns the packet into the ICMP error (type, code, `rest` in bytes 4-7) for its sender, from
// `from`, in its own buffer; counts `sent`. Drop when the buffer cannot hold the quote.
Verdict Translator::answer_with_error(PacketRef& pkt, std::uint8_t type, std::uint8_t code,
                                      Ipv4Addr from, const MacAddr& our_mac, Counter sent,
                                      std::uint32_t rest) {
    const std::size_t capacity = std::max(pkt.capacity, pkt.length);
    const std::size_t len = write_icmp_error({pkt.frame, capacity}, pkt.length, pkt.parsed, type,
                                             code, from, our_mac, rest);
    if (len == 0) {
        return Verdict::drop;
    }
    pkt.length = static_cast<std::uint16_t>(len);
    counters_.add(sent);
    // An error about a hairpinned packet (its TTL ran out on the way back in, or it was too
    // big for the inside with DF) is addressed to the sender's external address, one of ours:
    // it goes back in as the packet came and reaches the sender through its mapping, as any
    // error about its flow would (RFC 5508 REQ-7). Sent out, it would never come back.
    if (pool().find(pkt.parsed.src) != kNoPool) {
        counters_.add(Counter::hairpinned);
        return Verdict::hairpin;
    }
    return Verdict::reply;
}

// RFC 4787 REQ-13, RFC 1191: a DF packet larger than the MTU of the port it would leave by is
// answered with 3/4 and that MTU, from `from` (the inside gateway, or the pool address the
// remote sent to), sharing the rate limit of the 3/1 replies. It is dropped either way.
Verdict Translator::too_big(PacketRef& pkt, std::uint16_t mtu, Ipv4Addr from,
                            const MacAddr& our_mac, Tick now) {
    counters_.add(Counter::drop_too_big);
    if (!take_icmp_token(now)) {
        if (policy().icmp_rate != 0) {
            counters_.add(Counter::icmp_unreachable_rate_limited);
        }
        return Verdict::drop;
    }
    return answer_with_error(pkt, kIcmpDestUnreachable, kIcmpFragmentationNeeded, from, our_mac,
                             Counter::icmp_too_big_sent, mtu);
}

// The one bucket every ICMP error this worker originates draws from (3/1, 3/4, 3/3 and 11/0);
// a rate of 0 sends none.
bool Translator::take_icmp_token(Tick now) {
    const Policy& p = policy();
    return p.icmp_rate != 0 && icmp_bucket_.take(now, p.icmp_rate, p.icmp_burst);
}

void Translator::hold_syn(const PacketRef& pkt, Tick now) {
    const ParsedPacket& p = pkt.parsed;
    const HeldSynKey key{p.dst.value(), p.src.value(), p.dst_port, p.src_port};
    const std::size_t quoted = std::min<std::size_t>(p.l4 + 8u, pkt.length);
    if (!held_syns_.hold(key, {pkt.frame, quoted}, p.ip_total_len, now + kSynHold + 1)) {
        counters_.add(Counter::syn_held_overflow);
    }
    counters_.add(Counter::syn_held);
}

} // namespace ephemera
