// Tx: everything a worker sends leaves through here, so the MTU is applied in one place.
// Packets are queued per port and sent in bursts (flush_tx, once per loop iteration or when a
// queue fills); a packet larger than its port's MTU is split first (RFC 4787 REQ-13), and
// what a port refuses is dropped and counted (drop_tx_full).
#include "ephemera/icmp_error.hpp"
#include "ephemera/ip_split.hpp"
#include "ephemera/l2.hpp"
#include "tx_offload.hpp"
#include "worker.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstring>

namespace ephemera {

namespace {

constexpr std::size_t index_of(Direction d) {
    return static_cast<std::size_t>(d);
}

} // namespace

// `out`: the way the packet travels (in2out leaves by the outside port).
void Worker::send(Direction out, rte_mbuf* m) {
    const std::size_t q = index_of(out);
    tx_[q][tx_count_[q]++] = m;
    if (tx_count_[q] == std::size(tx_[q])) {
        flush_tx();
    }
}

void Worker::flush_tx() {
    for (Direction out : {Direction::in2out, Direction::out2in}) {
        const std::size_t q = index_of(out);
        if (tx_count_[q] == 0) {
            continue;
        }
        // in2out packets leave by the outside port, out2in ones by the inside port.
        const std::uint16_t port = port_of(reverse(out));
        const std::uint16_t sent = rte_eth_tx_burst(port, id_, tx_[q], tx_count_[q]);
        counters_.add(out == Direction::in2out ? Counter::in2out_tx : Counter::out2in_tx, sent);
        if (sent < tx_count_[q]) {
            counters_.add(Counter::drop_tx_full, tx_count_[q] - sent);
            for (std::uint16_t i = sent; i < tx_count_[q]; ++i) {
                rte_pktmbuf_free(tx_[q][i]);
            }
        }
        tx_count_[q] = 0;
    }
}

// Sends a translated packet on its way, split first if it is larger than the MTU of the port
// it leaves by and may be split. DF packets that are too large were answered by the
// translator, all but later pieces, which carry no transport header to answer for: those are
// dropped.
void Worker::emit(Direction out, rte_mbuf* m, const ParsedPacket& p, TxChecksums left) {
    const std::uint16_t mtu = plan_->policy.mtu_towards(out == Direction::in2out);
    if (p.ip_total_len <= mtu) {
        if (left.any()) {
            leave_checksums_to_port(m, p, left);
        }
        send(out, m);
        return;
    }
    if (p.dont_fragment) {
        counters_.add(Counter::drop_too_big);
        rte_pktmbuf_free(m);
        return;
    }
    // The pieces are new buffers that the port is told nothing about, and the transport
    // checksum they quote must be the datagram's: it is completed here, as the port would.
    complete_offloaded_checksums(rte_pktmbuf_mtod(m, std::uint8_t*), p, left);
    split(out, m, p, mtu);
}

// An answer built in the buffer of the packet it answers (an echo reply, an ICMP error) goes
// back out of the port the packet came in on (`in`: the packet's direction). An echo reply is
// as large as its request, which may have been a datagram the port reassembled
// (net_af_packet): then it is split like any packet, parsed afresh since the translator's
// parse described the request.
void Worker::send_reply(Direction in, rte_mbuf* m) {
    const Direction out = reverse(in);
    const std::uint16_t mtu = plan_->policy.mtu_towards(out == Direction::in2out);
    if (rte_pktmbuf_data_len(m) <= kEthHeaderLen + std::size_t{mtu}) {
        send(out, m);
        return;
    }
    const ParsedPacket reply =
        parse_frame({rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)});
    if (reply.kind != FrameKind::ipv4) {
        counters_.add(Counter::drop_fragmentation_failed); // we built it: never expected
        rte_pktmbuf_free(m);
        return;
    }
    emit(out, m, reply);
}

void Worker::split(Direction out, rte_mbuf* m, const ParsedPacket& p, std::uint16_t mtu) {
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
        send(out, piece);
    }
    if (count == 0 || sent < count) {
        counters_.add(Counter::drop_fragmentation_failed);
    } else {
        counters_.add(Counter::packets_fragmented);
    }
    counters_.add(Counter::fragments_sent, sent);
    rte_pktmbuf_free(m);
}

// RFC 5382 REQ-4: unsolicited SYNs whose hold is over get ICMP 3/3 from the pool address
// they were sent to, built from the copy the translator kept (headers and 8 bytes of TCP).
void Worker::answer_held_syns() {
    while (const std::optional<HeldSyn> held = translator_.take_due_syn(now_)) {
        rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
        if (m == nullptr) {
            return; // tried again next iteration
        }
        auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
        std::memcpy(frame, held->frame.data(), held->frame_len);
        ParsedPacket syn;
        syn.kind = FrameKind::ipv4;
        syn.proto = Protocol::tcp;
        syn.l3 = kEthHeaderLen;
        syn.l4 = static_cast<std::uint16_t>(kEthHeaderLen + (frame[kEthHeaderLen] & 0x0f) * 4);
        syn.ip_total_len = held->ip_total_len;
        syn.src = Ipv4Addr{held->key.remote_addr};
        syn.dst = Ipv4Addr{held->key.external_addr};
        const std::size_t len = write_icmp_error(
            {frame, rte_pktmbuf_tailroom(m)}, held->frame_len, syn, kIcmpDestUnreachable,
            kIcmpPortUnreachable, Ipv4Addr{held->key.external_addr}, shared_.outside_mac);
        if (len == 0) {
            rte_pktmbuf_free(m);
            continue;
        }
        m->data_len = static_cast<std::uint16_t>(len);
        m->pkt_len = static_cast<std::uint32_t>(len);
        counters_.add(Counter::syn_unreachable_sent);
        // A hairpinned SYN came from a subscriber's external address, one of ours: its answer
        // goes back in like any error about the sender's flow, through the sender's mapping.
        if (translator_.is_pool_address(syn.src)) {
            if (hairpin_count_ == kHairpinCapacity) {
                counters_.add(Counter::drop_hairpin_overflow);
                rte_pktmbuf_free(m);
                continue;
            }
            m->port = shared_.outside_port;
            counters_.add(Counter::hairpinned);
            hairpins_[hairpin_count_++] = m;
            continue;
        }
        send(Direction::in2out, m); // to the remote, out of the outside port
    }
    translate_hairpins();
}

void Worker::send_arp_request() {
    rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
    if (m == nullptr) {
        return;
    }
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::size_t len = write_arp_request({frame, kMinFrameLen}, shared_.outside_mac,
                                              config().pool.front(), config().outside.next_hop);
    m->data_len = static_cast<std::uint16_t>(len);
    m->pkt_len = static_cast<std::uint32_t>(len);
    counters_.add(Counter::arp_requests_sent);
    send(Direction::in2out, m);
}

void Worker::send_inside_arp_request(Ipv4Addr host) {
    rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
    if (m == nullptr) {
        return; // asked again on the host's next packet
    }
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::size_t len =
        write_arp_request({frame, kMinFrameLen}, shared_.inside_mac, config().inside.gateway, host);
    m->data_len = static_cast<std::uint16_t>(len);
    m->pkt_len = static_cast<std::uint32_t>(len);
    counters_.add(Counter::static_arp_requests_sent);
    send(Direction::out2in, m);
}

} // namespace ephemera
