// A worker's part in the HA pair (docs/ha.md): following the role the sync thread sets, the
// standby's loop (drop every frame, apply the active's records), the active's refresh rounds,
// and the gratuitous ARP that moves the traffic at takeover.
#include "ephemera/l2.hpp"
#include "worker.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <cstring>

namespace ephemera {

namespace {

constexpr unsigned kApplyBurst = 256;        // records applied per loop iteration
constexpr std::uint32_t kRefreshStep = 1024; // sessions a refresh round looks at per step
constexpr std::uint8_t kAnnouncements = 3;   // gratuitous ARPs per address at takeover
constexpr Tick kAnnounceEvery = kTicksPerSecond;
constexpr std::uint32_t kClearStep = 4096; // sessions ended per step of a reset

} // namespace

void Worker::follow_ha(Tick now) {
    if (shared_.sync_rings.empty()) {
        return;
    }
    // Handing over (control/ha/handover.hpp): silent from the step that starts the bulk round
    // carrying the sessions away, so none changes after it was sent. Read before the role:
    // the hand-over's end sets standby first and then clears this, and a worker that sees it
    // cleared must see standby set, never forward in between.
    handing_over_ = shared_.ha_handing_over.load(std::memory_order_acquire);
    const bool standby = shared_.ha_standby.load(std::memory_order_acquire);
    if (frozen_hold_ &&
        static_cast<std::int32_t>(shared_.ha_confirmed.load(std::memory_order_acquire) -
                                  hold_ticket_) >= 0) {
        frozen_hold_ = false; // the sync thread asked the peer: this box is still the active one
    }
    if (standby_ && !standby) {
        // Takeover: forward from now on, and tell both segments where the addresses are.
        standby_ = false;
        translator_.set_standby(false);
        // The next hop's MAC is asked for at once; what the standby learnt meanwhile
        // (learn_next_hop) is used until the answer comes.
        arp_requested_once_ = false;
        if (id_ == 0) {
            announcements_left_ = kAnnouncements;
            next_announcement_ = now;
        }
    } else if (!standby_ && standby) {
        standby_ = true;
        frozen_hold_ = false;
        translator_.set_standby(true);
    }
    if (const std::uint32_t announce =
            shared_.ha_announce_generation.load(std::memory_order_acquire);
        announce != announce_seen_) {
        announce_seen_ = announce;
        if (id_ == 0 && !standby_) {
            announcements_left_ = kAnnouncements;
            next_announcement_ = now;
        }
    }
    if (const std::uint32_t reset = shared_.ha_reset_generation.load(std::memory_order_acquire);
        reset != reset_seen_) {
        reset_seen_ = reset;
        clearing_ = true;
        clear_cursor_ = 0;
    }
    if (clearing_ && translator_.clear_step(now, clear_cursor_, kClearStep)) {
        clearing_ = false;
        shared_.ha_resets_done.fetch_add(1, std::memory_order_release);
    }
    if (announcements_left_ > 0 && static_cast<std::int32_t>(now - next_announcement_) >= 0) {
        announce_addresses();
        --announcements_left_;
        next_announcement_ = now + kAnnounceEvery;
    }
    if (!standby_) {
        // Before the stream's step: a hand-over that moves subscribers publishes them (and so
        // the stream's filter) before it starts its bulk round.
        follow_moves(now);
        // The generation first: a new one is published after streaming is switched on.
        const std::uint32_t generation = shared_.ha_bulk_generation.load(std::memory_order_acquire);
        translator_.set_sync_streaming(shared_.ha_streaming.load(std::memory_order_acquire));
        translator_.sync_step(now, shared_.ha_refresh_interval, generation, kRefreshStep);
        apply_sync_records(); // what arrived just before the takeover
    }
}

void Worker::check_freeze(std::uint64_t stood_cycles) {
    if (shared_.ha_freeze_cycles == 0 || standby_ || frozen_hold_ ||
        stood_cycles < shared_.ha_freeze_cycles) {
        return;
    }
    // What the rings held through the freeze is stale, and the standby may have taken over:
    // forwarding it, or answering an ARP, would pull the traffic back to a box that is about to
    // step down.
    frozen_hold_ = true;
    hold_ticket_ = shared_.ha_confirm_requests.fetch_add(1, std::memory_order_acq_rel) + 1;
}

void Worker::poll_standby() {
    for (const Direction d : {Direction::in2out, Direction::out2in}) {
        rte_mbuf* pkts[kBurst];
        const std::uint16_t n = rte_eth_rx_burst(port_of(d), id_, pkts, kBurst);
        if (n == 0) {
            continue;
        }
        counters_.add(d == Direction::in2out ? Counter::in2out_rx : Counter::out2in_rx, n);
        counters_.add(Counter::drop_standby, n);
        if (d == Direction::out2in) {
            for (std::uint16_t i = 0; i < n; ++i) {
                learn_next_hop(pkts[i]);
            }
        }
        rte_pktmbuf_free_bulk(pkts, n);
    }
    apply_sync_records();
}

// What the next hop says in its own ARP (its requests for the pool addresses reach both boxes)
// names its MAC: learnt here without a word, the takeover needs no ARP round trip first.
void Worker::learn_next_hop(rte_mbuf* m) {
    const Config& cfg = config();
    if (cfg.outside.next_hop_mac) {
        return;
    }
    const auto msg = parse_arp({rte_pktmbuf_mtod(m, std::uint8_t*), rte_pktmbuf_data_len(m)});
    if (msg && msg->sender_ip == cfg.outside.next_hop) {
        ArpEvent ev{msg->sender_ip.value(), {}, 0};
        std::memcpy(ev.mac, msg->sender_mac.bytes, 6);
        rte_ring_sp_enqueue_elem(shared_.arp_events[id_], &ev, sizeof ev);
    }
}

void Worker::apply_sync_records() {
    if (id_ >= shared_.apply_rings.size()) {
        return;
    }
    SyncRecord records[kApplyBurst];
    const unsigned n = rte_ring_sc_dequeue_burst_elem(shared_.apply_rings[id_], records,
                                                      sizeof(SyncRecord), kApplyBurst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
        const RestoreResult r = translator_.apply_sync(records[i], now_);
        // A remove of a session already gone (its timeout came first here) is no refusal.
        const bool applied = r == RestoreResult::restored || r == RestoreResult::duplicate;
        counters_.add(applied ? Counter::ha_records_applied : Counter::ha_records_refused);
    }
}

void Worker::announce_addresses() {
    const auto garp = [this](Direction out, const MacAddr& mac, Ipv4Addr address) {
        rte_mbuf* m = rte_pktmbuf_alloc(shared_.mbufs);
        if (m == nullptr) {
            return;
        }
        auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
        // Sender and target both the address: every neighbour that knows it updates its
        // entry (RFC 5227 section 3, "ARP Announcement").
        const std::size_t len = write_arp_request({frame, kMinFrameLen}, mac, address, address);
        m->data_len = static_cast<std::uint16_t>(len);
        m->pkt_len = static_cast<std::uint32_t>(len);
        counters_.add(Counter::arp_requests_sent);
        send(out, m);
    };
    garp(Direction::out2in, shared_.inside_mac, config().inside.gateway);
    for (const Ipv4Addr gateway : config().adopted_gateways) {
        garp(Direction::out2in, shared_.inside_mac, gateway);
    }
    const PoolIndex& pool = translator_.pool();
    for (std::uint16_t a = 0; a < pool.size(); ++a) {
        if (translator_.is_active(a) || translator_.is_static_address(a) ||
            (translator_.is_adopted(a) && translator_.answers_arp_for(pool.address(a)))) {
            garp(Direction::in2out, shared_.outside_mac, pool.address(a));
        }
    }
    flush_tx();
}

} // namespace ephemera
