#include "worker.hpp"

#include "ephemera/icmp_error.hpp"
#include "ephemera/l2.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstring>

namespace ephemera {

namespace {

constexpr std::uint32_t kHousekeepingEvery = 64;   // loop iterations
constexpr Tick kArpRetry = kTicksPerSecond;        // while the next hop is unknown
constexpr Tick kArpRefresh = 30 * kTicksPerSecond; // re-ask so a MAC change is noticed

bool is_broadcast(const std::uint8_t* mac) {
    return std::all_of(mac, mac + 6, [](std::uint8_t b) { return b == 0xff; });
}

} // namespace

std::uint64_t pack_mac(const MacAddr& mac) {
    std::uint64_t v = 0;
    for (std::uint8_t b : mac.bytes) {
        v = v << 8 | b;
    }
    return v | kMacKnown;
}

MacAddr unpack_mac(std::uint64_t packed) {
    MacAddr m;
    for (int i = 5; i >= 0; --i) {
        m.bytes[i] = static_cast<std::uint8_t>(packed);
        packed >>= 8;
    }
    return m;
}

Worker::Worker(WorkerShared& shared, WorkerId id)
    : shared_(shared), id_(id), config_(shared.config),
      translator_(*shared.config, shared.ownership, id, shared.port_secret, counters_,
                  static_cast<int>(rte_socket_id()),
                  static_cast<Tick>((rte_rdtsc() - shared.start_tsc) / shared.tsc_per_tick)),
      fragments_(fragment_limits(*shared.config), counters_, free_held_piece, nullptr),
      handoff_out_(shared.workers) {
    for (auto& out : handoff_out_) {
        out.reserve(kBurst * 2);
    }
    mailbox_.sessions.reserve(Mailbox::kMaxSessions);
}

void Worker::run() {
    if (shared_.qsbr != nullptr) {
        rte_rcu_qsbr_thread_register(shared_.qsbr, id_);
        rte_rcu_qsbr_thread_online(shared_.qsbr, id_);
    }
    while (!shared_.stop.load(std::memory_order_relaxed)) {
        poll_once(static_cast<Tick>((rte_rdtsc() - shared_.start_tsc) / shared_.tsc_per_tick));
    }
    flush_tx();
    if (shared_.qsbr != nullptr) {
        rte_rcu_qsbr_thread_offline(shared_.qsbr, id_);
        rte_rcu_qsbr_thread_unregister(shared_.qsbr, id_);
    }
}

void Worker::poll_once(Tick now) {
    now_ = now;
    // Inside first: a subscriber's packet and the reply to it that arrive in the same
    // iteration are then handled in that order.
    poll_port(Side::inside);
    poll_port(Side::outside);
    poll_handoff();
    flush_handoff();
    flush_tx();
    // Expiry runs every iteration with a small budget, so its work is spread evenly and never
    // delays a burst by more than a few dozen session checks.
    translator_.expire(now_);
    answer_held_syns();
    fragments_.expire(now_, kFragmentExpiryBudget);
    if (++iterations_ % kHousekeepingEvery == 0) {
        housekeeping(now_);
    }
}

void Worker::poll_port(Side side) {
    rte_mbuf* pkts[kBurst];
    const std::uint16_t port = side == Side::inside ? shared_.inside_port : shared_.outside_port;
    const std::uint16_t n = rte_eth_rx_burst(port, id_, pkts, kBurst);
    if (n == 0) {
        return;
    }
    counters_.add(side == Side::inside ? Counter::in2out_rx : Counter::out2in_rx, n);
    // A handoff ring tells a packet's side by mbuf->port, which not every PMD sets on receive
    // (net_ring leaves it invalid): set it here, once, for all.
    for (std::uint16_t i = 0; i < n; ++i) {
        pkts[i]->port = port;
    }
    process(side, pkts, n, false);
}

void Worker::poll_handoff() {
    rte_mbuf* pkts[kBurst];
    rte_mbuf* by_side[2][kBurst];
    for (WorkerId from = 0; from < shared_.workers; ++from) {
        if (from == id_) {
            continue;
        }
        rte_ring* ring = shared_.handoff[from * shared_.workers + id_];
        const unsigned n =
            rte_ring_sc_dequeue_burst(ring, reinterpret_cast<void**>(pkts), kBurst, nullptr);
        if (n == 0) {
            continue;
        }
        counters_.add(Counter::handoff_rx, n);
        std::uint16_t count[2] = {0, 0};
        for (unsigned i = 0; i < n; ++i) {
            const int s = pkts[i]->port == shared_.inside_port ? 0 : 1;
            by_side[s][count[s]++] = pkts[i];
        }
        process(Side::inside, by_side[0], count[0], true);
        process(Side::outside, by_side[1], count[1], true);
    }
}

void Worker::process(Side side, rte_mbuf** pkts, std::uint16_t n, bool from_handoff) {
    const MacAddr& our_mac = side == Side::inside ? shared_.inside_mac : shared_.outside_mac;
    batch_count_ = 0;
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
            handle_arp(side, m);
            continue;
        }
        WorkerId owner;
        if (side == Side::inside) {
            if (parsed.dst == config_->inside.gateway) {
                if (parsed.proto == Protocol::icmp && parsed.icmp_type == kIcmpEchoRequest &&
                    !parsed.fragment) {
                    make_echo_reply({frame, len}, parsed, shared_.inside_mac);
                    counters_.add(Counter::icmp_echo_replies_sent);
                    send(Side::inside, m);
                } else {
                    counters_.add(Counter::drop_not_for_us);
                    rte_pktmbuf_free(m);
                }
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
        }
        if (parsed.fragment && take_fragment(side, m, parsed, from_handoff)) {
            continue;
        }
        if (owner != id_) {
            handoff_out_[owner].push_back(m);
            if (handoff_out_[owner].size() >= kBurst) {
                flush_handoff();
            }
            continue;
        }
        const auto capacity = static_cast<std::uint16_t>(
            std::min<std::uint32_t>(0xffff, len + rte_pktmbuf_tailroom(m)));
        batch_[batch_count_] = PacketRef{frame, len, capacity, parsed};
        batch_mbufs_[batch_count_++] = m;
    }
    translate_batch(side);
}

void Worker::translate_batch(Side side) {
    if (batch_count_ == 0) {
        return;
    }
    const std::uint64_t next_hop = shared_.next_hop_mac.load(std::memory_order_acquire);
    if (side == Side::inside && (next_hop & kMacKnown) == 0) {
        counters_.add(Counter::drop_nexthop_unresolved, batch_count_);
        for (std::uint16_t i = 0; i < batch_count_; ++i) {
            rte_pktmbuf_free(batch_mbufs_[i]);
        }
        batch_count_ = 0;
        return;
    }
    const L2Context l2{shared_.inside_mac, shared_.outside_mac, unpack_mac(next_hop)};
    std::span<PacketRef> packets(batch_, batch_count_);
    std::span<Verdict> verdicts(verdicts_, batch_count_);
    if (side == Side::inside) {
        translator_.in2out(packets, now_, l2, verdicts);
    } else {
        translator_.out2in(packets, now_, l2, verdicts);
    }
    const Side out = side == Side::inside ? Side::outside : Side::inside;
    rte_mbuf* hairpins[kBurst * 2];
    std::uint16_t hairpin_count = 0;
    for (std::uint16_t i = 0; i < batch_count_; ++i) {
        rte_mbuf* m = batch_mbufs_[i];
        // A first piece's fate decides its datagram's (read before the frame is sent).
        const std::size_t held =
            batch_[i].parsed.fragment ? first_piece_done(side, batch_[i], verdicts_[i]) : 0;
        switch (verdicts_[i]) {
        case Verdict::forward:
            emit(out, m, batch_[i].parsed);
            send_held(side, held);
            break;
        case Verdict::reply: // an ICMP message for the sender, built in the packet's buffer
            m->data_len = batch_[i].length;
            m->pkt_len = batch_[i].length;
            send(side, m);
            break;
        case Verdict::hairpin:
            m->data_len = batch_[i].length;
            m->pkt_len = batch_[i].length;
            m->port = shared_.outside_port; // how a handoff ring tells an outside packet
            hairpins[hairpin_count++] = m;
            break;
        case Verdict::drop:
            rte_pktmbuf_free(m);
            break;
        }
    }
    batch_count_ = 0;
    // Hairpinned packets re-enter as outside packets, owned by the worker of their
    // destination port, which may be another one (then they travel by handoff ring). An
    // outside packet becomes a hairpin only as the answer to a hairpinned packet: the echo
    // reply to a ping, or an ICMP error (Time Exceeded, 3/4; a held SYN's 3/3 comes in the
    // same way from answer_held_syns). Neither is ever answered, so the recursion ends there.
    if (hairpin_count != 0) {
        process(Side::outside, hairpins, hairpin_count, true);
    }
}

void Worker::handle_arp(Side side, rte_mbuf* m) {
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    const auto msg = parse_arp({frame, len});
    if (!msg) {
        counters_.add(Counter::drop_arp_ignored);
        rte_pktmbuf_free(m);
        return;
    }
    // A configured next-hop MAC is the operator's word: ARP does not override it.
    if (side == Side::outside && msg->sender_ip == config_->outside.next_hop &&
        !config_->outside.next_hop_mac) {
        ArpEvent ev{msg->sender_ip.value(), {}, 0};
        std::memcpy(ev.mac, msg->sender_mac.bytes, 6);
        // A full ring only delays learning until the next ARP; it never blocks the worker.
        rte_ring_sp_enqueue_elem(shared_.arp_events[id_], &ev, sizeof ev);
    }
    if (msg->op == kArpOpRequest) {
        const bool ours = side == Side::inside ? msg->target_ip == config_->inside.gateway
                                               : translator_.is_pool_address(msg->target_ip);
        if (ours) {
            make_arp_reply({frame, len}, *msg,
                           side == Side::inside ? shared_.inside_mac : shared_.outside_mac,
                           msg->target_ip);
            counters_.add(Counter::arp_replies_sent);
            send(side, m);
            return;
        }
    }
    if (msg->op != kArpOpReply || msg->sender_ip != config_->outside.next_hop) {
        counters_.add(Counter::drop_arp_ignored);
    }
    rte_pktmbuf_free(m);
}

void Worker::send(Side side, rte_mbuf* m) {
    const int s = side == Side::inside ? 0 : 1;
    tx_[s][tx_count_[s]++] = m;
    if (tx_count_[s] == std::size(tx_[s])) {
        flush_tx();
    }
}

void Worker::flush_handoff() {
    for (WorkerId to = 0; to < shared_.workers; ++to) {
        auto& out = handoff_out_[to];
        if (out.empty()) {
            continue;
        }
        rte_ring* ring = shared_.handoff[id_ * shared_.workers + to];
        const unsigned sent =
            rte_ring_sp_enqueue_burst(ring, reinterpret_cast<void* const*>(out.data()),
                                      static_cast<unsigned>(out.size()), nullptr);
        counters_.add(Counter::handoff_tx, sent);
        if (sent < out.size()) {
            counters_.add(Counter::drop_handoff_congestion, out.size() - sent);
            for (std::size_t i = sent; i < out.size(); ++i) {
                rte_pktmbuf_free(out[i]);
            }
        }
        out.clear();
    }
}

void Worker::flush_tx() {
    for (int s = 0; s < 2; ++s) {
        if (tx_count_[s] == 0) {
            continue;
        }
        const std::uint16_t port = s == 0 ? shared_.inside_port : shared_.outside_port;
        const std::uint16_t sent = rte_eth_tx_burst(port, id_, tx_[s], tx_count_[s]);
        counters_.add(s == 0 ? Counter::out2in_tx : Counter::in2out_tx, sent);
        if (sent < tx_count_[s]) {
            counters_.add(Counter::drop_tx_full, tx_count_[s] - sent);
            for (std::uint16_t i = sent; i < tx_count_[s]; ++i) {
                rte_pktmbuf_free(tx_[s][i]);
            }
        }
        tx_count_[s] = 0;
    }
}

void Worker::housekeeping(Tick now) {
    gauges_.sessions.store(translator_.live_sessions(), std::memory_order_relaxed);
    gauges_.mappings.store(translator_.live_mappings(), std::memory_order_relaxed);
    gauges_.subscribers.store(translator_.live_subscribers(), std::memory_order_relaxed);
    gauges_.ports_held.store(translator_.ports_held(), std::memory_order_relaxed);
    for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
        gauges_.sessions_by_proto[static_cast<std::size_t>(proto_index(p))].store(
            translator_.live_sessions(p), std::memory_order_relaxed);
    }

    // A new config published by the control thread is taken up here, between bursts; then
    // this worker reports a quiescent state, after which it holds no pointer to any older
    // config and the control thread may free it (rte_rcu_qsbr).
    const Config* published = shared_.published.load(std::memory_order_acquire);
    if (published != nullptr && published != config_) {
        translator_.reconfigure(*published);
        config_ = published;
    }
    if (shared_.qsbr != nullptr) {
        rte_rcu_qsbr_quiescent(shared_.qsbr, id_);
    }

    serve_mailbox(now);

    // Worker 0 asks for the next hop's MAC; the control thread learns it from the answer.
    if (id_ == 0 && !config_->outside.next_hop_mac) {
        const bool known = shared_.next_hop_mac.load(std::memory_order_relaxed) & kMacKnown;
        const Tick interval = known ? kArpRefresh : kArpRetry;
        if (!arp_requested_once_ || now - last_arp_request_ >= interval) {
            send_arp_request();
            last_arp_request_ = now;
            arp_requested_once_ = true;
        }
    }
}

void Worker::serve_mailbox(Tick now) {
    Mailbox& box = mailbox_;
    const std::uint32_t requested = box.requested.load(std::memory_order_acquire);
    if (requested == box.served.load(std::memory_order_relaxed)) {
        return;
    }
    if (!box.walking) {
        box.walking = true;
        box.cursor = 0;
        box.sessions.clear();
        box.flushed = 0;
    }
    bool done = true;
    switch (box.kind) {
    case Mailbox::Kind::mappings:
        box.mapping_count = translator_.snapshot_mappings(box.mappings);
        break;
    case Mailbox::Kind::ports: {
        // Sized here, not at start: the pool may have grown (a control request, not a packet).
        const auto& pool = translator_.pool();
        box.addresses.assign(pool.addresses().begin(), pool.addresses().end());
        box.active.resize(pool.size());
        box.free_ports.resize(pool.size() * kProtocolCount);
        box.usable_ports = translator_.ports().usable_ports();
        for (std::uint16_t a = 0; a < pool.size(); ++a) {
            box.active[a] = translator_.is_active(a);
            for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
                box.free_ports[a * kProtocolCount + static_cast<std::size_t>(proto_index(p))] =
                    translator_.ports().free_ports(a, p);
            }
        }
        break;
    }
    case Mailbox::Kind::sessions:
    case Mailbox::Kind::flush:
        done = translator_.walk_sessions(box.filter, box.kind == Mailbox::Kind::flush, now,
                                         box.cursor, Mailbox::kWalkStep, box.sessions,
                                         std::min(box.limit, Mailbox::kMaxSessions), box.flushed);
        break;
    }
    if (done) {
        box.walking = false;
        box.served.store(requested, std::memory_order_release);
    }
}

// RFC 5382 REQ-4: unsolicited SYNs whose hold is over get ICMP 3/3 from the pool address
// they were sent to, built from the copy the translator kept (headers and 8 bytes of TCP). A
// hairpinned SYN came from a subscriber's external address, one of ours: its answer goes back
// in like any error about the sender's flow, which reaches the sender through its mapping.
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
        if (translator_.is_pool_address(Ipv4Addr{held->key.remote_addr})) {
            m->port = shared_.outside_port;
            counters_.add(Counter::hairpinned);
            process(Side::outside, &m, 1, true);
            continue;
        }
        send(Side::outside, m);
    }
}

void Worker::send_arp_request() {
    rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
    if (m == nullptr) {
        return;
    }
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::size_t len = write_arp_request({frame, kMinFrameLen}, shared_.outside_mac,
                                              config_->pool.front(), config_->outside.next_hop);
    m->data_len = static_cast<std::uint16_t>(len);
    m->pkt_len = static_cast<std::uint32_t>(len);
    counters_.add(Counter::arp_requests_sent);
    send(Side::outside, m);
}

} // namespace ephemera
