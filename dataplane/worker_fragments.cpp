// The worker's side of fragments (RFC 4787 REQ-14) and of the MTU (REQ-13): which worker a
// piece goes to, the held pieces' release, the later pieces' rewrite, and splitting packets
// larger than the port's MTU. The decisions are in fragments.hpp and ip_split.hpp (plain C++);
// what is here moves mbufs. docs/architecture.md ("Fragments") tells the whole story.
#include "ephemera/ip_split.hpp"
#include "ephemera/rewrite.hpp"
#include "worker.hpp"

#include <rte_mbuf.h>

namespace ephemera {

FragmentLimits fragment_limits(const Config& config) {
    return FragmentLimits{config.fragments.max_datagrams, config.fragments.max_per_datagram,
                          config.fragments.timeout * kTicksPerSecond};
}

void free_held_piece(void* mbuf, void* /*context*/) {
    rte_pktmbuf_free(static_cast<rte_mbuf*>(mbuf));
}

void Worker::hand_off(WorkerId to, rte_mbuf* m) {
    handoff_out_[to].push_back(m);
    if (handoff_out_[to].size() >= kBurst) {
        flush_handoff();
    }
}

// Takes a piece off the ordinary path when it needs more than the ordinary owner check; false
// sends it on as any packet (a first piece to translate here, or an inside piece to its
// subscriber's owner).
bool Worker::take_fragment(Side side, rte_mbuf* m, const ParsedPacket& p, bool from_handoff) {
    if (side == Side::inside) {
        // Every piece comes from one subscriber address, so the subscriber's owner sees all.
        if (!p.later_fragment || shared_.ownership.subscriber_owner(p.src) != id_) {
            return false;
        }
        translate_batch(side); // first pieces ahead of this one are decided and recorded
        later_piece(side, m, p, true);
        return true;
    }
    const FragmentKey key = FragmentKey::of(p, FragmentDirection::out2in);
    const WorkerId gatherer = fragment_owner(key, shared_.workers);
    switch (outside_fragment_role(id_, gatherer, from_handoff)) {
    case OutsideFragmentRole::send_to_fragment_owner:
        hand_off(gatherer, m);
        return true;
    case OutsideFragmentRole::fragment_owner:
        if (!p.later_fragment) {
            const WorkerId port_owner = shared_.ownership.port_owner(p.dst, p.dst_port);
            if (port_owner == id_) {
                return false;
            }
            // The port owner gets the first piece, then the held ones, in one ring: in order.
            hand_off(port_owner, m);
            const std::size_t n = fragments_.routed(key, p, port_owner, now_, held_);
            for (std::size_t i = 0; i < n; ++i) {
                hand_off(port_owner, static_cast<rte_mbuf*>(held_[i]));
            }
            return true;
        }
        translate_batch(side);
        later_piece(side, m, p, true);
        return true;
    case OutsideFragmentRole::port_owner:
        if (!p.later_fragment) {
            return false;
        }
        translate_batch(side);
        later_piece(side, m, p, false); // sent after its first piece: nothing to wait for
        return true;
    }
    return false;
}

void Worker::later_piece(Side side, rte_mbuf* m, const ParsedPacket& p, bool may_hold) {
    const FragmentKey key = FragmentKey::of(p, side == Side::inside ? FragmentDirection::in2out
                                                                    : FragmentDirection::out2in);
    const FragmentResult r = fragments_.later(key, p, m, may_hold, now_);
    switch (r.action) {
    case FragmentAction::translate:
        translate_piece(side, m, p, r.translation);
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

void Worker::translate_piece(Side side, rte_mbuf* m, const ParsedPacket& p,
                             const FragmentTranslation& t) {
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    if (frame[p.l3 + ipv4_off::ttl] <= 1) {
        counters_.add(Counter::drop_ttl_expired);
        rte_pktmbuf_free(m);
        return;
    }
    if (side == Side::inside) {
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
    emit(side == Side::inside ? Side::outside : Side::inside, m, p);
}

// Records what the translator did with a first piece; returns how many held pieces now follow
// it (in held_), for send_held() once the first piece is on its way.
std::size_t Worker::first_piece_done(Side side, const PacketRef& pkt, Verdict verdict) {
    const FragmentKey key = FragmentKey::of(
        pkt.parsed, side == Side::inside ? FragmentDirection::in2out : FragmentDirection::out2in);
    if (verdict != Verdict::forward) {
        fragments_.refused(key, pkt.parsed, now_);
        return 0;
    }
    const std::uint8_t* ip = pkt.frame + pkt.parsed.l3;
    FragmentTranslation t;
    t.address = Ipv4Addr{load_be32(ip + (side == Side::inside ? ipv4_off::src : ipv4_off::dst))};
    std::memcpy(t.mac.bytes, pkt.frame, 6);
    held_translation_ = t;
    return fragments_.translated(key, pkt.parsed, t, now_, held_);
}

void Worker::send_held(Side side, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto* m = static_cast<rte_mbuf*>(held_[i]);
        const ParsedPacket p =
            parse_frame({rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)});
        if (p.kind != FrameKind::ipv4) { // it parsed once; it cannot fail now
            counters_.add(p.drop_reason);
            rte_pktmbuf_free(m);
            continue;
        }
        translate_piece(side, m, p, held_translation_);
    }
}

// Sends a translated packet out of `side`, split first if it is larger than that port's MTU
// and may be split. DF packets that are too large were answered by the translator, all but
// later pieces, which carry no transport header to answer for: those are dropped.
void Worker::emit(Side side, rte_mbuf* m, const ParsedPacket& p) {
    const std::uint16_t mtu = side == Side::outside ? config_->outside.mtu : config_->inside.mtu;
    if (p.ip_total_len <= mtu) {
        send(side, m);
        return;
    }
    if (p.dont_fragment) {
        counters_.add(Counter::drop_too_big);
        rte_pktmbuf_free(m);
        return;
    }
    split(side, m, p, mtu);
}

// An answer built in the buffer of the packet it answers (an echo reply, an ICMP error) goes
// back out of the port it came in on. An echo reply is as large as its request, which may
// have been a datagram the port reassembled (net_af_packet): then it is split like any
// packet, parsed afresh since the translator's parse described the request.
void Worker::send_reply(Side side, rte_mbuf* m) {
    const std::uint16_t mtu = side == Side::outside ? config_->outside.mtu : config_->inside.mtu;
    if (rte_pktmbuf_data_len(m) <= kEthHeaderLen + std::size_t{mtu}) {
        send(side, m);
        return;
    }
    const ParsedPacket reply =
        parse_frame({rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)});
    if (reply.kind != FrameKind::ipv4) {
        counters_.add(Counter::drop_fragmentation_failed); // we built it: never expected
        rte_pktmbuf_free(m);
        return;
    }
    emit(side, m, reply);
}

void Worker::split(Side side, rte_mbuf* m, const ParsedPacket& p, std::uint16_t mtu) {
    const std::span<const std::uint8_t> frame{rte_pktmbuf_mtod(m, const std::uint8_t*),
                                              rte_pktmbuf_data_len(m)};
    const std::size_t count = split_count(frame, p, mtu);
    std::size_t sent = 0;
    for (; sent < count; ++sent) {
        rte_mbuf* piece = rte_pktmbuf_alloc(shared_.mbufs);
        if (piece == nullptr) {
            break;
        }
        const std::size_t len = write_split_piece(
            frame, p, mtu, sent,
            {rte_pktmbuf_mtod(piece, std::uint8_t*), rte_pktmbuf_tailroom(piece)});
        if (len == 0) {
            rte_pktmbuf_free(piece);
            break;
        }
        piece->data_len = static_cast<std::uint16_t>(len);
        piece->pkt_len = static_cast<std::uint32_t>(len);
        send(side, piece);
    }
    if (count == 0 || sent < count) {
        counters_.add(Counter::drop_fragmentation_failed);
    } else {
        counters_.add(Counter::packets_fragmented);
    }
    counters_.add(Counter::fragments_sent, sent);
    rte_pktmbuf_free(m);
}

} // namespace ephemera
