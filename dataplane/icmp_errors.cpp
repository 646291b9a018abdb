// The translator's ICMP work beyond echo: translating errors both ways (RFC 5508 REQ-4, REQ-5)
// and answering a packet whose TTL runs out here with Time Exceeded (RFC 5508 section 7.2).
//
// An error only reads state: it never creates, refreshes or ends a mapping or session and
// never moves TCP state (RFC 5508 REQ-6, RFC 4787 REQ-12, RFC 5382 REQ-10). Filtering does not
// apply to it either: a router anywhere on the path may send one.
#include "ephemera/icmp_error.hpp"
#include "ephemera/icmp_translate.hpp"
#include "ephemera/rewrite.hpp"
#include "ephemera/translator.hpp"

namespace ephemera {

// An error from outside to pool address `pool_index` about a packet that left as E:e -> R:r.
Verdict Translator::icmp_error_out2in(PacketRef& pkt, std::uint16_t pool_index,
                                      const L2Context& l2) {
    const ParsedPacket& p = pkt.parsed;
    if (pkt.frame[p.l3 + ipv4_off::ttl] <= 1) {
        counters_.add(Counter::drop_ttl_expired); // and no error about an error
        return Verdict::drop;
    }
    // The quoted packet is ours only if it left from the address the error came back to.
    const auto slot = ports_.slice().slot_of(p.inner_src_port);
    std::uint32_t mapping =
        p.inner_src == p.dst && slot ? ports_.out2in(pool_index, p.inner_proto, *slot) : kNoIndex;
    if (mapping == kNoIndex && p.inner_src == p.dst) {
        mapping = static_mapping_of(p.dst, p.inner_proto, p.inner_src_port);
    }
    if (mapping == kNoIndex) {
        counters_.add(Counter::drop_icmp_error_no_mapping);
        return Verdict::drop;
    }
    const Mapping& m = tables_.mapping_records[mapping];
    const SessionKey key = SessionKey::quoted_outbound(m.inside, m.inside_port, p);
    if (tables_.sessions.lookup(key) < 0) {
        counters_.add(Counter::drop_icmp_error_no_session);
        return Verdict::drop;
    }
    rewrite_icmp_error(pkt.frame, p, Direction::out2in, m.inside, m.inside_port);
    set_ethernet(pkt.frame, m.inside_mac, l2.inside_port_mac);
    counters_.add(Counter::icmp_errors_out2in);
    return Verdict::forward;
}

// The mapping through which the quoted packet R:r -> I:i could have been delivered without a
// session of its own, or negative. Inbound packets create no session (RFC 7857 section 7), so
// under endpoint-independent filtering any outside host, and under address-dependent
// filtering any port of a permitted host, reaches the subscriber through the mapping alone;
// RFC 5508 REQ-5 asks for an active mapping, not a session, before the error is translated.
// Address-and-port-dependent filtering delivers nothing without a session.
std::int32_t Translator::mapping_delivering(const SessionKey& key) const {
    const FilteringMode mode = life_.filtering();
    if (mode == FilteringMode::address_port_dependent) {
        return -1;
    }
    const MappingKey mk = MappingKey::of(key);
    const std::int32_t mapping = tables_.mappings.lookup(mk);
    if (mapping < 0 || mode == FilteringMode::endpoint_independent) {
        return mapping;
    }
    const PermissionKey pk{static_cast<std::uint32_t>(mapping), key.remote_addr};
    return tables_.permissions.lookup(&pk) >= 0 ? mapping : -1;
}

// An error from a subscriber about a packet it received (R:r -> I:i). `session` is the bulk
// lookup's answer for icmp_error_session_key(), or negative.
Verdict Translator::icmp_error_in2out(PacketRef& pkt, const SessionKey& key, std::int32_t session,
                                      const L2Context& l2) {
    const ParsedPacket& p = pkt.parsed;
    if (pkt.frame[p.l3 + ipv4_off::ttl] <= 1) {
        counters_.add(Counter::drop_ttl_expired);
        return Verdict::drop;
    }
    if (session < 0) {
        session = tables_.sessions.lookup(key); // made by an earlier packet of this burst?
    }
    std::uint16_t pool_index = 0;
    std::uint16_t external_port = 0;
    if (session >= 0) {
        const Session& s = tables_.sessions.value(static_cast<std::uint32_t>(session));
        pool_index = s.pool_index;
        external_port = s.external_port;
    } else if (const std::int32_t mapping = mapping_delivering(key); mapping >= 0) {
        const Mapping& m = tables_.mapping_records[static_cast<std::uint32_t>(mapping)];
        pool_index = m.pool_index;
        external_port = m.external_port;
    } else {
        counters_.add(Counter::drop_icmp_error_no_session);
        return Verdict::drop;
    }
    // A hairpinned flow's error goes to a pool address: it is translated and sent on unchanged
    // in its destination.
    rewrite_icmp_error(pkt.frame, p, Direction::in2out, pool().address(pool_index), external_port);
    set_ethernet(pkt.frame, l2.next_hop_mac, l2.outside_port_mac);
    counters_.add(Counter::icmp_errors_in2out);
    return Verdict::forward;
}

// RFC 5508 section 7.2 (RFC 1812 4.3.2): the packet is not forwarded; its sender hears Time
// Exceeded from `from`, within the ICMP rate limit. No error answers an ICMP error or goes to
// an address no router sends to (RFC 1812 4.3.2.7).
Verdict Translator::time_exceeded(PacketRef& pkt, Tick now, Ipv4Addr from, const MacAddr& our_mac) {
    counters_.add(Counter::drop_ttl_expired);
    if (pkt.parsed.icmp_error || pkt.parsed.src.is_martian()) {
        return Verdict::drop;
    }
    if (!take_icmp_token(now)) {
        counters_.add(Counter::icmp_time_exceeded_rate_limited);
        return Verdict::drop;
    }
    return answer_with_error(pkt, kIcmpTimeExceeded, 0, from, our_mac,
                             Counter::icmp_time_exceeded_sent);
}

} // namespace ephemera
