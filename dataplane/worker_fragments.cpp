// The worker's side of fragments (RFC 4787 REQ-14): which worker a piece goes to, the pieces
// pass over the later pieces of a burst, the held pieces' release and the later pieces'
// rewrite. The decisions are in fragments.hpp (plain C++); what is here moves mbufs.
// docs/architecture.md ("Fragments") tells the whole story; splitting for the MTU is in tx.cpp.
#include "ephemera/ip_split.hpp"
#include "ephemera/rewrite.hpp"
#include "worker.hpp"

#include <rte_mbuf.h>

#include <cstring>

namespace ephemera {

FragmentLimits fragment_limits(const Config& config) {
    return FragmentLimits{config.fragments.max_datagrams, config.fragments.max_per_datagram,
                          config.fragments.timeout * kTicksPerSecond};
}

void free_held_piece(void* mbuf, void* /*context*/) {
    rte_pktmbuf_free(static_cast<rte_mbuf*>(mbuf));
}

// Where a piece goes when it needs more than the ordinary owner check: as_packet sends it on
// as any packet (a first piece to translate here, or an inside piece to its subscriber's
// owner); taken means it went to another worker; later_piece means it waits in pieces_ for
// the pieces pass, after the first pieces of its burst are translated and recorded.
Worker::FragmentRoute Worker::route_fragment(Direction d, rte_mbuf* m, const ParsedPacket& p,
                                             bool from_handoff) {
    const auto set_aside = [&](bool may_hold) {
        if (piece_count_ == std::size(pieces_)) {
            pieces_pass(); // never expected: a burst is smaller than the pieces array
        }
        pieces_[piece_count_++] = Piece{m, p, d, may_hold};
        return FragmentRoute::later_piece;
    };
    if (d == Direction::in2out) {
        // Every piece comes from one subscriber address, so the subscriber's owner sees all.
        if (!p.later_fragment || shared_.ownership.subscriber_owner(p.src) != id_) {
            return FragmentRoute::as_packet;
        }
        return set_aside(true);
    }
    const FragmentKey key = FragmentKey::of(p, Direction::out2in);
    const WorkerId gatherer = fragment_owner(key, shared_.workers);
    switch (outside_fragment_role(id_, gatherer, from_handoff)) {
    case OutsideFragmentRole::send_to_fragment_owner:
        hand_off(gatherer, m);
        return FragmentRoute::taken;
    case OutsideFragmentRole::fragment_owner:
        if (!p.later_fragment) {
            const WorkerId port_owner = shared_.ownership.port_owner(p.dst, p.dst_port);
            if (port_owner == id_) {
                return FragmentRoute::as_packet;
            }
            // The port owner gets the first piece, then the held ones, in one ring: in order.
            hand_off(port_owner, m);
            const std::size_t n = fragments_.routed(key, p, port_owner, now_, held_);
            for (std::size_t i = 0; i < n; ++i) {
                hand_off(port_owner, static_cast<rte_mbuf*>(held_[i]));
            }
            return FragmentRoute::taken;
        }
        return set_aside(true);
    case OutsideFragmentRole::port_owner:
        if (!p.later_fragment) {
            return FragmentRoute::as_packet;
        }
        return set_aside(false); // sent after its first piece: nothing to wait for
    }
    return FragmentRoute::as_packet;
}

// The later pieces set aside by classify, in arrival order, now that the first pieces ahead
// of them in the burst have been decided and recorded.
void Worker::pieces_pass() {
    const std::uint16_t n = piece_count_;
    piece_count_ = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
        later_piece(pieces_[i].direction, pieces_[i].mbuf, pieces_[i].parsed, pieces_[i].may_hold);
    }
}

void Worker::later_piece(Direction d, rte_mbuf* m, const ParsedPacket& p, bool may_hold) {
    const FragmentKey key = FragmentKey::of(p, d);
    const FragmentResult r = fragments_.later(key, p, m, may_hold, now_);
    switch (r.action) {
    case FragmentAction::translate:
        translate_piece(d, m, p, r.translation);
        return;
    case FragmentAction::hand_off:
        hand_off(r.worker, m);
        return;
    case FragmentAction::held:
        return;
    case FragmentAction::drop_refused:
    case FragmentAction::drop_unknown:
        counters_.add(Counter::drop_fragment_orphan);
        break;
    case FragmentAction::drop_full:
        counters_.add(Counter::drop_fragment_table_full);
        break;
    case FragmentAction::drop_cap:
        counters_.add(Counter::drop_fragment_cap);
        break;
    }
    rte_pktmbuf_free(m);
}

void Worker::translate_piece(Direction d, rte_mbuf* m, const ParsedPacket& p,
                             const FragmentTranslation& t) {
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    if (frame[p.l3 + ipv4_off::ttl] <= 1) {
        counters_.add(Counter::drop_ttl_expired);
        rte_pktmbuf_free(m);
        return;
    }
    if (d == Direction::in2out) {
        const std::uint64_t next_hop = shared_.next_hop_mac.load(std::memory_order_acquire);
        if ((next_hop & kMacKnown) == 0) {
            counters_.add(Counter::drop_nexthop_unresolved);
            rte_pktmbuf_free(m);
            return;
        }
        rewrite_piece_address(frame, p, true, t.address);
        set_ethernet(frame, unpack_mac(next_hop), shared_.outside_mac);
    } else {
        rewrite_piece_address(frame, p, false, t.address);
        set_ethernet(frame, t.mac, shared_.inside_mac);
    }
    counters_.add(Counter::fragments_translated);
    emit(d, m, p);
}

// Records what the translator did with a first piece; returns how many held pieces now follow
// it (in held_), for send_held() once the first piece is on its way.
std::size_t Worker::first_piece_done(Direction d, const PacketRef& pkt, Verdict verdict) {
    const FragmentKey key = FragmentKey::of(pkt.parsed, d);
    if (verdict != Verdict::forward) {
        fragments_.refused(key, pkt.parsed, now_);
        return 0;
    }
    const std::uint8_t* ip = pkt.frame + pkt.parsed.l3;
    FragmentTranslation t;
    t.address = Ipv4Addr{load_be32(ip + (d == Direction::in2out ? ipv4_off::src : ipv4_off::dst))};
    std::memcpy(t.mac.bytes, pkt.frame, 6);
    held_translation_ = t;
    return fragments_.translated(key, pkt.parsed, t, now_, held_);
}

void Worker::send_held(Direction d, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto* m = static_cast<rte_mbuf*>(held_[i]);
        const ParsedPacket p =
            parse_frame({rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)});
        if (p.kind != FrameKind::ipv4) { // it parsed once; it cannot fail now
            counters_.add(p.drop_reason);
            rte_pktmbuf_free(m);
            continue;
        }
        translate_piece(d, m, p, held_translation_);
    }
}

} // namespace ephemera
