// Classify: the first stage a received packet meets. Each frame of a burst is parsed once and
// goes one of four ways: dropped and counted (malformed, not ours), answered here (ARP, a ping
// to the inside gateway), handed to the worker that owns it (handoff.cpp), or put in this
// worker's batch for its direction, to be translated when the whole burst is classified.
#include "ephemera/l2.hpp"
#include "worker.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstring>

namespace ephemera {

namespace {

bool is_broadcast(const std::uint8_t* mac) {
    return std::all_of(mac, mac + 6, [](std::uint8_t b) { return b == 0xff; });
}

// A static entry's external endpoint belongs to the worker of its inside host, whatever the
// port's bits say (an ICMP error, to the worker of the host whose packet it quotes).
WorkerId static_owner(const StaticTable& statics, const Ownership& ownership, const ParsedPacket& p,
                      WorkerId by_port) {
    const Protocol proto = p.icmp_error ? p.inner_proto : p.proto;
    const std::uint16_t port = p.icmp_error ? p.inner_src_port : p.dst_port;
    if (!statics.may_be_static(p.dst, port)) {
        return by_port;
    }
    const auto inside = statics.inside_of(p.dst, proto, port);
    return inside ? ownership.subscriber_owner(inside->address) : by_port;
}

// The inside gateway, or a drained box's that this box took over with its subscribers.
bool is_gateway(const Config& cfg, Ipv4Addr a) {
    return a == cfg.inside.gateway ||
           std::find(cfg.adopted_gateways.begin(), cfg.adopted_gateways.end(), a) !=
               cfg.adopted_gateways.end();
}

} // namespace

void Worker::poll_port(Direction d) {
    rte_mbuf* pkts[kBurst];
    const std::uint16_t n = rte_eth_rx_burst(port_of(d), id_, pkts, kBurst);
    if (n == 0) {
        return;
    }
    counters_.add(d == Direction::in2out ? Counter::in2out_rx : Counter::out2in_rx, n);
    // A handoff ring tells a packet's direction by mbuf->port, which not every PMD sets on
    // receive (net_ring leaves it invalid): set it here, once, for all.
    const std::uint16_t port = port_of(d);
    for (std::uint16_t i = 0; i < n; ++i) {
        pkts[i]->port = port;
    }
    classify(d, pkts, n, Arrival::port);
    translate(d);
}

void Worker::classify(Direction d, rte_mbuf** pkts, std::uint16_t n, Arrival arrival) {
    const bool from_handoff = arrival != Arrival::port;
    const MacAddr& our_mac = d == Direction::in2out ? shared_.inside_mac : shared_.outside_mac;
    for (std::uint16_t i = 0; i < n; ++i) {
        if (i + 1 < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
        }
        rte_mbuf* m = pkts[i];
        auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
        const std::uint16_t len = rte_pktmbuf_data_len(m);
        if (!from_handoff && len >= kEthHeaderLen && std::memcmp(frame, our_mac.bytes, 6) != 0 &&
            !is_broadcast(frame)) {
            counters_.add(Counter::drop_not_for_us); // another host's frame on the segment
            rte_pktmbuf_free(m);
            continue;
        }
        const ParsedPacket parsed = parse_frame({frame, len});
        if (parsed.kind == FrameKind::dropped) {
            counters_.add(parsed.drop_reason);
            rte_pktmbuf_free(m);
            continue;
        }
        if (parsed.kind == FrameKind::arp) {
            handle_arp(d, m);
            continue;
        }
        WorkerId owner;
        if (d == Direction::in2out) {
            if (is_gateway(config(), parsed.dst)) {
                if (parsed.proto == Protocol::icmp && parsed.icmp_type == kIcmpEchoRequest &&
                    !parsed.fragment) {
                    make_echo_reply({frame, len}, parsed, shared_.inside_mac);
                    counters_.add(Counter::icmp_echo_replies_sent);
                    send_reply(d, m);
                } else {
                    counters_.add(Counter::drop_not_for_us);
                    rte_pktmbuf_free(m);
                }
                continue;
            }
            if (has_moves_ && pass_moved_subscriber(m, parsed.src)) [[unlikely]] {
                continue;
            }
            owner = shared_.ownership.subscriber_owner(parsed.src);
        } else {
            if (!translator_.is_pool_address(parsed.dst)) {
                counters_.add(Counter::drop_not_for_us);
                rte_pktmbuf_free(m);
                continue;
            }
            owner = shared_.ownership.port_owner(parsed.dst, parsed.dst_port);
            if (const StaticTable& statics = translator_.statics(); !statics.empty()) {
                owner = static_owner(statics, shared_.ownership, parsed, owner);
            }
        }
        if (parsed.fragment) {
            const FragmentRoute route = route_fragment(d, m, parsed, from_handoff);
            if (route == FragmentRoute::taken) {
                continue;
            }
            if (route == FragmentRoute::later_piece) {
                continue; // set aside for the pieces pass
            }
        }
        // A packet travels one handoff at most. Two workers disagree on its owner only while a
        // change of the static mappings reaches them one after the other; then the second
        // translates it (and finds its mapping, or refuses it) rather than send it back.
        if (owner != id_ && arrival != Arrival::handoff) {
            hand_off(owner, m);
            continue;
        }
        enqueue(d, m, parsed);
    }
}

void Worker::handle_arp(Direction d, rte_mbuf* m) {
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    const auto msg = parse_arp({frame, len});
    if (!msg) {
        counters_.add(Counter::drop_arp_ignored);
        rte_pktmbuf_free(m);
        return;
    }
    const Config& cfg = config();
    // A static mapping's host may be reached from outside before it has sent anything: its
    // worker keeps what ARP says of it (inside_neighbors.hpp), whichever queue the ARP came in on.
    if (d == Direction::in2out) {
        if (const StaticTable& statics = translator_.statics();
            !statics.empty() && statics.is_inside_host(msg->sender_ip)) {
            const WorkerId owner = shared_.ownership.subscriber_owner(msg->sender_ip);
            if (owner != id_) {
                hand_off(owner, m);
                return;
            }
            translator_.learn_neighbor(msg->sender_ip, msg->sender_mac, now_);
        }
    }
    // A configured next-hop MAC is the operator's word: ARP does not override it.
    if (d == Direction::out2in && msg->sender_ip == cfg.outside.next_hop &&
        !cfg.outside.next_hop_mac) {
        ArpEvent ev{msg->sender_ip.value(), {}, 0};
        std::memcpy(ev.mac, msg->sender_mac.bytes, 6);
        // A full ring only delays learning until the next ARP; it never blocks the worker.
        rte_ring_sp_enqueue_elem(shared_.arp_events[id_], &ev, sizeof ev);
    }
    if (msg->op == kArpOpRequest) {
        const bool ours = d == Direction::in2out ? is_gateway(cfg, msg->target_ip)
                                                 : translator_.answers_arp_for(msg->target_ip);
        if (ours) {
            make_arp_reply({frame, len}, *msg,
                           d == Direction::in2out ? shared_.inside_mac : shared_.outside_mac,
                           msg->target_ip);
            counters_.add(Counter::arp_replies_sent);
            send(reverse(d), m);
            return;
        }
    }
    const bool next_hop_reply =
        d == Direction::out2in && msg->op == kArpOpReply && msg->sender_ip == cfg.outside.next_hop;
    counters_.add(next_hop_reply ? Counter::arp_replies_received : Counter::drop_arp_ignored);
    rte_pktmbuf_free(m);
}

} // namespace ephemera
