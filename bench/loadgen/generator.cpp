#include "generator.hpp"

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <cstring>

namespace loadgen {

namespace {

constexpr std::uint64_t kTsc48Mask = (std::uint64_t{1} << 48) - 1;
constexpr std::uint16_t kSynSent = 2; // SubscriberFlow::flags: the generation's first packet left

// TSC cycles from a stamp to now. With the servers on their own lcore, `now` is read at the
// start of a poll and a packet stamped a moment later on the other lcore can already be in
// it: that small negative difference counts as zero.
std::uint64_t since(std::uint64_t now, std::uint64_t stamp48) {
    const std::uint64_t d = (now - stamp48) & kTsc48Mask;
    return d < (kTsc48Mask >> 1) ? d : 0;
}

std::uint8_t* data_of(rte_mbuf* m) {
    return rte_pktmbuf_mtod(m, std::uint8_t*);
}

bool mac_is(const std::uint8_t* p, const Mac& m) {
    return std::memcmp(p, m.bytes.data(), 6) == 0;
}

} // namespace

Shared::Shared(const RunConfig& c)
    : cfg(c), sub_flows(c.model.flows()), srv_flows(c.model.flows()),
      anchors(c.model.subscribers(), 0) {}

std::uint16_t TxBuffer::flush(std::uint16_t port, std::uint16_t queue) {
    if (count == 0) {
        return 0;
    }
    const std::uint16_t sent = rte_eth_tx_burst(port, queue, pkts, count);
    if (sent < count) {
        std::memmove(pkts, pkts + sent, static_cast<std::size_t>(count - sent) * sizeof(pkts[0]));
    }
    count = static_cast<std::uint16_t>(count - sent);
    return sent;
}

// ---- subscribers -----------------------------------------------------------------------------

void Subscribers::Bucket::set(double per_second, std::uint64_t tsc_hz, std::uint64_t now,
                              double burst) {
    per_cycle = per_second / static_cast<double>(tsc_hz);
    tokens = 0;
    cap = burst;
    last = now;
}

std::uint32_t Subscribers::Bucket::take(std::uint64_t now, std::uint32_t want) {
    if (per_cycle <= 0) {
        return want;
    }
    tokens = std::min(cap, tokens + static_cast<double>(now - last) * per_cycle);
    last = now;
    const auto n = std::min<std::uint32_t>(want, static_cast<std::uint32_t>(tokens));
    tokens -= n;
    return n;
}

Subscribers::Subscribers(Shared& shared)
    : shared_(shared), cfg_(shared.cfg), model_(shared.cfg.model), stats_(shared.sub_stats),
      frames_(shared.cfg.dut_in_mac, shared.cfg.lg_in_mac, shared.cfg.frame_len),
      walk_(shared.cfg.model.flows()),
      churn_walk_(shared.cfg.model.flows() -
                  std::min(shared.cfg.long_lived, shared.cfg.model.flows())),
      stall_cycles_(shared.tsc_hz / 20), // 50 ms
      last_reply_(std::min(shared.cfg.long_lived, shared.cfg.model.flows()), 0),
      max_gap_(last_reply_.size(), 0), flood_(shared.cfg, false, shared.tsc_hz) {}

void Subscribers::set_rate(double pps, std::uint64_t now) {
    rate_.set(pps, shared_.tsc_hz, now, std::max(4.0 * kBurst, pps * cfg_.catch_up_s));
}

void Subscribers::set_churn(double per_second, std::uint64_t now) {
    churn_.set(per_second, shared_.tsc_hz, now, 64);
}

void Subscribers::start_populate(std::uint64_t now) {
    set_rate(cfg_.new_flow_rate, now);
}

void Subscribers::send_probe() {
    rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
    if (m == nullptr) {
        return;
    }
    const std::uint16_t len =
        write_arp_request(data_of(m), cfg_.lg_in_mac, cfg_.probe_ip, cfg_.gateway_ip);
    m->data_len = len;
    m->pkt_len = len;
    if (rte_eth_tx_burst(cfg_.in_port, 0, &m, 1) != 1) {
        rte_pktmbuf_free(m);
        return;
    }
    stats_.add(Stat::sub_tx_probe);
}

std::uint16_t Subscribers::queue_for(const Tuple& t) const {
    if (cfg_.queues == 1) {
        return 0;
    }
    if (cfg_.steering == Steering::owner) {
        return cfg_.ownership.subscriber_owner(ephemera::Ipv4Addr{t.sub_addr});
    }
    const std::uint32_t h = mix32(t.sub_addr ^ (t.server_addr * 31u) ^
                                      (std::uint32_t{t.sub_port} << 16 | t.server_port),
                                  0x5eed0003u);
    return static_cast<std::uint16_t>(h % cfg_.queues);
}

std::uint32_t Subscribers::poll(std::uint64_t now) {
    std::uint32_t moved = receive(now);
    const Phase phase = shared_.phase.load(std::memory_order_relaxed);
    if (phase == Phase::populate || phase == Phase::warmup || phase == Phase::measure ||
        phase == Phase::latency) {
        if (phase == Phase::measure) {
            churn(now);
        }
        generate(now);
    }
    for (std::uint16_t q = 0; q < cfg_.queues; ++q) {
        if (tx_[q].count != 0) {
            const std::uint16_t sent = tx_[q].flush(cfg_.in_port, q);
            stats_.add(Stat::sub_tx, sent);
            stats_.add(Stat::sub_tx_deferred, tx_[q].count);
            moved += sent;
        }
    }
    // The flood gets what room the ring has left after the flows' frames.
    moved += flood_.poll(shared_.flooding.load(std::memory_order_relaxed), shared_.mbufs,
                         cfg_.in_port, cfg_.queues, now, stats_);
    return moved;
}

void Subscribers::generate(std::uint64_t now) {
    // Backpressure: while a queue still holds a burst's worth, the NAT is not keeping up.
    for (std::uint16_t q = 0; q < cfg_.queues; ++q) {
        if (tx_[q].count > TxBuffer::kCapacity - kBurst) {
            return;
        }
    }
    const bool populating = shared_.phase.load(std::memory_order_relaxed) == Phase::populate;
    std::uint32_t want = kBurst;
    if (cfg_.window != 0) {
        std::int64_t in_flight = built_ - returned_ - written_off_;
        if (in_flight < 0) { // written off too early: they came back after all
            written_off_ += in_flight;
            in_flight = 0;
        }
        if (in_flight >= cfg_.window && now - last_return_tsc_ > stall_cycles_) {
            written_off_ += in_flight; // nothing back for a while: lost (counted in totals)
            in_flight = 0;
            last_return_tsc_ = now; // and the next write-off no sooner than 50 ms from now
        }
        want = static_cast<std::uint32_t>(
            std::min<std::int64_t>(want, std::int64_t{cfg_.window} - in_flight));
        if (want == 0) {
            return;
        }
    }
    if (populating) {
        want = std::min(want, model_.flows() - populated_);
    }
    want = rate_.take(now, want);
    if (want == 0) {
        return;
    }
    rte_mbuf* pkts[kBurst];
    if (rte_pktmbuf_alloc_bulk(shared_.mbufs, pkts, want) != 0) {
        return; // every buffer is in flight; the replies will return them
    }
    std::uint32_t flows[kBurst];
    for (std::uint32_t i = 0; i < want; ++i) {
        flows[i] = walk_.next();
        rte_prefetch0(&shared_.sub_flows[flows[i]]);
    }
    std::uint32_t fresh = 0;
    for (std::uint32_t i = 0; i < want; ++i) {
        SubscriberFlow& r = shared_.sub_flows[flows[i]];
        const Tuple t = model_.tuple(flows[i], r.gen);
        const bool first = (r.flags & kSynSent) == 0;
        r.flags |= kSynSent;
        fresh += first ? 1 : 0;
        ++r.tx_seq;
        frames_.build(data_of(pkts[i]), t, Stamp{flows[i], r.tx_seq, r.gen, now},
                      first ? kTcpSyn : static_cast<std::uint8_t>(kTcpAck | kTcpPsh));
        pkts[i]->data_len = frames_.frame_len();
        pkts[i]->pkt_len = frames_.frame_len();
        TxBuffer& tx = tx_[queue_for(t)];
        tx.pkts[tx.count++] = pkts[i];
    }
    stats_.add(Stat::sub_tx_new, fresh);
    built_ += want;
    if (first_tx_tsc_ == 0) {
        first_tx_tsc_ = now;
    }
    if (populating) {
        populated_ += want;
        last_new_tx_tsc_ = now;
    }
}

void Subscribers::churn(std::uint64_t now) {
    constexpr std::uint32_t kMaxPerPoll = 64;
    if (cfg_.churn_rate <= 0 || model_.flows() <= cfg_.long_lived) {
        return;
    }
    for (std::uint16_t q = 0; q < cfg_.queues; ++q) {
        if (tx_[q].count > TxBuffer::kCapacity - kMaxPerPoll) {
            return; // no room for the FINs: churn waits for the ring to drain
        }
    }
    const std::uint32_t n = churn_.take(now, kMaxPerPoll);
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t flow = cfg_.long_lived + churn_walk_.next();
        SubscriberFlow& r = shared_.sub_flows[flow];
        if (model_.proto(flow) == Proto::tcp && (r.flags & kSynSent) != 0) {
            close_generation(flow, r, now);
        }
        ++r.gen; // the next packet comes from a new source port: a new session
        r.flags = 0;
    }
    stats_.add(Stat::sub_churned, n);
}

// A TCP flow that churns ends its old connection with a FIN (answered with a FIN by the server),
// so the NAT's session turns transitory and expires within minutes instead of after the
// established timeout: old flows end as new ones start.
void Subscribers::close_generation(std::uint32_t flow, SubscriberFlow& r, std::uint64_t now) {
    rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
    if (m == nullptr) {
        return; // every buffer is in flight: this session ages out as an established one
    }
    const Tuple t = model_.tuple(flow, r.gen);
    ++r.tx_seq;
    frames_.build(data_of(m), t, Stamp{flow, r.tx_seq, r.gen, now},
                  static_cast<std::uint8_t>(kTcpFin | kTcpAck));
    m->data_len = frames_.frame_len();
    m->pkt_len = frames_.frame_len();
    TxBuffer& tx = tx_[queue_for(t)];
    tx.pkts[tx.count++] = m;
    ++built_;
    stats_.add(Stat::sub_tx_fin);
}

LongLivedSummary Subscribers::long_lived(std::uint64_t now) const {
    LongLivedSummary s;
    s.flows = static_cast<std::uint32_t>(last_reply_.size());
    const auto limit =
        static_cast<std::uint64_t>(cfg_.gap_limit_s * static_cast<double>(shared_.tsc_hz));
    std::uint64_t max_gap = 0;
    for (std::size_t f = 0; f < last_reply_.size(); ++f) {
        if (last_reply_[f] == 0) {
            continue;
        }
        ++s.established;
        s.silent += now - last_reply_[f] > limit ? 1 : 0;
        s.over_gap += max_gap_[f] > limit ? 1 : 0;
        max_gap = std::max(max_gap, max_gap_[f]);
    }
    s.max_gap_s = static_cast<double>(max_gap) / static_cast<double>(shared_.tsc_hz);
    return s;
}

std::uint32_t Subscribers::receive(std::uint64_t now) {
    rte_mbuf* pkts[kBurst];
    std::uint32_t moved = 0;
    for (std::uint16_t q = 0; q < cfg_.queues; ++q) {
        const std::uint16_t n = rte_eth_rx_burst(cfg_.in_port, q, pkts, kBurst);
        if (n == 0) {
            continue;
        }
        stats_.add(Stat::in_rx, n);
        stats_.add(Stat::in_rx_bursts);
        moved += n;
        returned_ += n;
        last_return_tsc_ = now;
        // Parse the burst, prefetch the flow records it names, then check: at 16 M flows each
        // record is a cache miss, and this overlaps them.
        RxView views[kBurst];
        RxStatus status[kBurst];
        for (std::uint16_t i = 0; i < n; ++i) {
            status[i] = parse_frame(data_of(pkts[i]), rte_pktmbuf_data_len(pkts[i]), views[i]);
            if (status[i] == RxStatus::ok && views[i].stamp.flow < model_.flows()) {
                rte_prefetch0(&shared_.sub_flows[views[i].stamp.flow]);
            }
        }
        for (std::uint16_t i = 0; i < n; ++i) {
            check_reply(pkts[i], status[i], views[i], now);
        }
        rte_pktmbuf_free_bulk(pkts, n);
    }
    return moved;
}

void Subscribers::check_reply(rte_mbuf* m, RxStatus status, const RxView& v, std::uint64_t now) {
    const std::uint8_t* f = data_of(m);
    switch (status) {
    case RxStatus::ok:
        break;
    case RxStatus::icmp:
        stats_.add(Stat::in_icmp);
        --returned_; // not a reply to anything we sent
        return;
    case RxStatus::arp:
        stats_.add(Stat::in_arp);
        if (const auto a = parse_arp(f, rte_pktmbuf_data_len(m));
            a && a->op == 2 && a->sender_ip == cfg_.gateway_ip) {
            arp_answered_ = true;
        }
        return;
    case RxStatus::not_ipv4:
        stats_.add(Stat::in_err_other);
        return;
    case RxStatus::malformed:
        stats_.add(Stat::in_err_malformed);
        return;
    case RxStatus::bad_ip_checksum:
    case RxStatus::bad_l4_checksum:
        stats_.add(Stat::in_err_checksum);
        return;
    }
    const std::uint32_t flow = v.stamp.flow;
    if (flow == kFloodFlow) {
        stats_.add(Stat::in_flood);
        --returned_;
        return;
    }
    if (flow >= model_.flows()) {
        stats_.add(Stat::in_err_flow);
        return;
    }
    SubscriberFlow& r = shared_.sub_flows[flow];
    const bool current = v.stamp.gen == r.gen;
    // An older generation is a reply that was in flight when the flow churned; a newer one, or
    // a sequence number not sent yet, was never sent by us.
    if ((!current && static_cast<std::uint16_t>(r.gen - v.stamp.gen) >= 0x8000) ||
        (current && v.stamp.seq > r.tx_seq)) {
        stats_.add(Stat::in_err_flow);
        return;
    }
    const Tuple t = model_.tuple(flow, v.stamp.gen);
    if (v.proto != t.proto) {
        stats_.add(Stat::in_err_flow);
        return;
    }
    if (v.dst != t.sub_addr || v.src != t.server_addr) {
        stats_.add(Stat::in_err_addr);
        return;
    }
    if (v.dport != t.sub_port || v.sport != t.server_port) {
        stats_.add(Stat::in_err_port);
        return;
    }
    if (v.ttl != (cfg_.translated ? kTtl - 1 : kTtl)) {
        stats_.add(Stat::in_err_ttl);
        return;
    }
    if (!mac_is(f, cfg_.lg_in_mac) || !mac_is(f + 6, cfg_.dut_in_mac)) {
        stats_.add(Stat::in_err_mac);
        return;
    }
    stats_.latency.add(since(now, v.stamp.tsc));
    stats_.add(Stat::in_ok);
    if (!current) {
        stats_.add(Stat::in_stale_gen);
        return;
    }
    if (v.stamp.seq <= r.rx_last) {
        stats_.add(Stat::in_reordered);
    } else {
        r.rx_last = v.stamp.seq;
    }
    if (flow < last_reply_.size()) {
        if (last_reply_[flow] != 0) {
            max_gap_[flow] = std::max(max_gap_[flow], now - last_reply_[flow]);
        }
        last_reply_[flow] = now;
    }
    if ((r.flags & SubscriberFlow::kEstablished) == 0) {
        r.flags |= SubscriberFlow::kEstablished;
        stats_.add(Stat::in_established);
        last_established_tsc_ = now;
    }
}

// ---- servers ---------------------------------------------------------------------------------

Servers::Servers(Shared& shared)
    : shared_(shared), cfg_(shared.cfg), model_(shared.cfg.model), stats_(shared.srv_stats),
      split_(shared.cfg.model.subscribers(), 0), flood_(shared.cfg, true, shared.tsc_hz) {}

int Servers::lcore_main(void* self) {
    auto* servers = static_cast<Servers*>(self);
    while (servers->shared_.phase.load(std::memory_order_relaxed) != Phase::done) {
        servers->poll(rte_rdtsc());
    }
    return 0;
}

std::uint16_t Servers::queue_for(const RxView& v) const {
    if (cfg_.queues == 1) {
        return 0;
    }
    if (cfg_.steering == Steering::owner) {
        // The reply's destination is the external endpoint: its port bucket names the owner.
        return cfg_.ownership.port_owner(ephemera::Ipv4Addr{v.src}, v.sport);
    }
    const std::uint32_t h =
        mix32(v.src ^ (v.dst * 31u) ^ (std::uint32_t{v.sport} << 16 | v.dport), 0x5eed0004u);
    return static_cast<std::uint16_t>(h % cfg_.queues);
}

std::uint32_t Servers::poll(std::uint64_t now) {
    rte_mbuf* pkts[kBurst];
    std::uint32_t moved = 0;
    for (std::uint16_t q = 0; q < cfg_.queues; ++q) {
        const std::uint16_t n = rte_eth_rx_burst(cfg_.out_port, q, pkts, kBurst);
        if (n == 0) {
            continue;
        }
        stats_.add(Stat::out_rx, n);
        stats_.add(Stat::out_rx_bursts);
        moved += n;
        RxView views[kBurst];
        RxStatus status[kBurst];
        for (std::uint16_t i = 0; i < n; ++i) {
            status[i] = parse_frame(data_of(pkts[i]), rte_pktmbuf_data_len(pkts[i]), views[i]);
            if (status[i] == RxStatus::ok && views[i].stamp.flow < model_.flows()) {
                rte_prefetch0(&shared_.srv_flows[views[i].stamp.flow]);
                rte_prefetch0(&shared_.anchors[model_.subscriber_of(views[i].stamp.flow)]);
            }
        }
        for (std::uint16_t i = 0; i < n; ++i) {
            handle(pkts[i], status[i], views[i], q, now);
        }
    }
    for (std::uint16_t q = 0; q < cfg_.queues; ++q) {
        if (tx_[q].count != 0) {
            const std::uint16_t sent = tx_[q].flush(cfg_.out_port, q);
            stats_.add(Stat::out_reply_tx, sent);
            moved += sent;
        }
    }
    moved += flood_.poll(shared_.flooding.load(std::memory_order_relaxed), shared_.mbufs,
                         cfg_.out_port, cfg_.queues, now, stats_);
    return moved;
}

void Servers::handle(rte_mbuf* m, RxStatus status, const RxView& v, std::uint16_t rx_queue,
                     std::uint64_t now) {
    std::uint8_t* f = data_of(m);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    bool keep = false;
    switch (status) {
    case RxStatus::ok:
        if (v.stamp.flow == kFloodFlow) {
            stats_.add(Stat::out_flood); // a flood SYN the NAT translated: nobody answers it
            break;
        }
        keep = check(v, f);
        if (keep) {
            stats_.latency.add(since(now, v.stamp.tsc));
            stats_.add(Stat::out_ok);
            reflect(f, v);
        }
        break;
    case RxStatus::arp:
        stats_.add(Stat::out_arp);
        if (const auto a = parse_arp(f, len); a && a->op == 1) {
            if (a->target_ip == cfg_.next_hop_ip) {
                make_arp_reply(f, cfg_.lg_out_mac, cfg_.next_hop_ip);
                stats_.add(Stat::out_arp_replies);
                keep = true;
            } else if (a->target_ip == cfg_.gateway_ip && a->sender_ip == cfg_.probe_ip) {
                // Our own probe, forwarded unchanged: the floor's path is up.
                shared_.probe_seen_outside.store(true, std::memory_order_relaxed);
            }
        }
        break;
    case RxStatus::icmp:
        stats_.add(Stat::out_icmp);
        break;
    case RxStatus::not_ipv4:
        stats_.add(Stat::out_err_other);
        break;
    case RxStatus::malformed:
        stats_.add(Stat::out_err_malformed);
        break;
    case RxStatus::bad_ip_checksum:
    case RxStatus::bad_l4_checksum:
        stats_.add(Stat::out_err_checksum);
        break;
    }
    if (!keep) {
        rte_pktmbuf_free(m);
        return;
    }
    TxBuffer& tx = tx_[status == RxStatus::ok ? queue_for(v) : rx_queue];
    if (tx.count == TxBuffer::kCapacity) {
        stats_.add(Stat::out_reply_dropped);
        rte_pktmbuf_free(m);
        return;
    }
    tx.pkts[tx.count++] = m;
}

// Is this what the NAT should have sent out for the flow in the stamp?
bool Servers::check(const RxView& v, std::uint8_t* f) {
    const std::uint32_t flow = v.stamp.flow;
    if (flow >= model_.flows()) {
        stats_.add(Stat::out_err_flow);
        return false;
    }
    const Tuple t = model_.tuple(flow, v.stamp.gen);
    if (v.proto != t.proto) {
        stats_.add(Stat::out_err_flow);
        return false;
    }
    if (v.dst != t.server_addr || v.dport != t.server_port) {
        stats_.add(Stat::out_err_dst);
        return false;
    }
    if (!cfg_.translated) {
        if (v.src != t.sub_addr) {
            stats_.add(Stat::out_err_src);
            return false;
        }
        if (v.sport != t.sub_port) {
            stats_.add(Stat::out_err_src_port);
            return false;
        }
        if (v.ttl != kTtl) {
            stats_.add(Stat::out_err_ttl);
            return false;
        }
        if (!mac_is(f, cfg_.dut_in_mac) || !mac_is(f + 6, cfg_.lg_in_mac)) {
            stats_.add(Stat::out_err_mac);
            return false;
        }
        return true;
    }
    if (v.src < cfg_.pool_lo || v.src > cfg_.pool_hi) {
        stats_.add(Stat::out_err_src);
        return false;
    }
    if (v.sport < cfg_.port_lo || v.sport > cfg_.port_hi) {
        stats_.add(Stat::out_err_src_port);
        return false;
    }
    if (v.ttl != kTtl - 1) {
        stats_.add(Stat::out_err_ttl);
        return false;
    }
    if (!mac_is(f, cfg_.lg_out_mac) || !mac_is(f + 6, cfg_.dut_out_mac)) {
        stats_.add(Stat::out_err_mac);
        return false;
    }
    // Endpoint-independent mapping: one external endpoint per flow generation, for as long as
    // the flow lives. A packet of another generation (churn) starts the record afresh.
    ServerFlow& s = shared_.srv_flows[flow];
    if (s.ext_port == 0 || s.ext_gen != v.stamp.gen) {
        s = ServerFlow{v.src, v.sport, v.stamp.gen};
    } else if (s.ext_addr != v.src || s.ext_port != v.sport) {
        stats_.add(Stat::out_err_mapping_moved);
        return false;
    }
    // Paired pooling: every flow of a subscriber leaves from one pool address. Counted once
    // per subscriber: one seen on a second address (its anchor was removed from the pool and
    // its new mappings went elsewhere while the old ones drain) stays so for the run.
    const std::uint32_t sub = model_.subscriber_of(flow);
    std::uint32_t& anchor = shared_.anchors[sub];
    if (anchor == 0) {
        anchor = v.src;
    } else if (anchor != v.src && split_[sub] == 0) {
        split_[sub] = 1;
        stats_.add(Stat::out_pairing_violation);
    }
    return true;
}

} // namespace loadgen
