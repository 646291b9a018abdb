// The worker's loop, and what it does between bursts: taking up a new plan, gauges, telemetry
// requests, asking for the next hop's MAC. The stages a packet goes through are in their own
// files (see worker.hpp).
#include "worker.hpp"

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <utility>

namespace ephemera {

namespace {

constexpr std::uint32_t kHousekeepingEvery = 64;   // loop iterations
constexpr std::uint32_t kInterimBudget = 256;      // block granules per housekeeping call
constexpr Tick kArpRetry = kTicksPerSecond;        // while the next hop is unknown
constexpr Tick kArpRefresh = 30 * kTicksPerSecond; // re-ask so a MAC change is noticed

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
    : shared_(shared), id_(id), plan_(shared.plans.newest(id)),
      translator_(*plan_, shared.ownership, id, shared.port_secret, counters_,
                  static_cast<int>(rte_socket_id()),
                  static_cast<Tick>((rte_rdtsc() - shared.start_tsc) / shared.tsc_per_tick)),
      fragments_(fragment_limits(config()), counters_, free_held_piece, nullptr),
      handoff_out_(shared.workers) {
    for (auto& out : handoff_out_) {
        out.reserve(kBurst * 2);
    }
    if (id < shared.event_rings.size()) {
        translator_.attach_event_ring(shared.event_rings[id]);
    }
    if (id < shared.sync_rings.size()) {
        translator_.attach_sync_ring(shared.sync_rings[id]);
    }
    standby_ = shared.ha_standby.load(std::memory_order_acquire);
    translator_.set_standby(standby_);
    refresh_gauges();
}

void Worker::run() {
    if (shared_.qsbr != nullptr) {
        rte_rcu_qsbr_thread_register(shared_.qsbr, id_);
        rte_rcu_qsbr_thread_online(shared_.qsbr, id_);
    }
    iteration_start_ = rte_rdtsc();
    last_top_ = iteration_start_;
    gauges_.pauses.start(iteration_start_);
    while (!shared_.stop.load(std::memory_order_relaxed)) {
        const std::uint64_t tsc = rte_rdtsc();
        // From the top of the last iteration: a freeze lands inside an iteration, which then
        // ends after it.
        check_freeze(tsc - last_top_);
        last_top_ = tsc;
        translator_.set_time_ms(shared_.start_unix_ms +
                                (tsc - shared_.start_tsc) / shared_.tsc_per_ms);
        poll_once(static_cast<Tick>((tsc - shared_.start_tsc) / shared_.tsc_per_tick));
        const std::uint64_t end = rte_rdtsc();
        gauges_.pauses.note(end - iteration_start_, end, std::exchange(take_up_cycles_, 0));
        iteration_start_ = end;
    }
    flush_tx();
    if (shared_.qsbr != nullptr) {
        rte_rcu_qsbr_thread_offline(shared_.qsbr, id_);
        rte_rcu_qsbr_thread_unregister(shared_.qsbr, id_);
    }
}

void Worker::poll_once(Tick now) {
    now_ = now;
    if (silent()) {
        poll_standby();
        translator_.expire(now_); // the active's timeouts, on the active's last_seen
        if (++iterations_ % kHousekeepingEvery == 0) {
            housekeeping(now_);
        }
        return;
    }
    // Inside first: a subscriber's packet and the reply to it that arrive in the same
    // iteration are then handled in that order.
    poll_port(Direction::in2out);
    poll_port(Direction::out2in);
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

void Worker::refresh_gauges() {
    gauges_.sessions.store(translator_.live_sessions(), std::memory_order_relaxed);
    gauges_.mappings.store(translator_.live_mappings(), std::memory_order_relaxed);
    gauges_.subscribers.store(translator_.live_subscribers(), std::memory_order_relaxed);
    gauges_.ports_held.store(translator_.ports_held(), std::memory_order_relaxed);
    for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
        gauges_.sessions_by_proto[static_cast<std::size_t>(proto_index(p))].store(
            translator_.live_sessions(p), std::memory_order_relaxed);
    }
    gauges_.ports_per_address.store(translator_.ports().usable_ports(), std::memory_order_relaxed);
}

void Worker::housekeeping(Tick now) {
    refresh_gauges();

    // A plan published by the control thread is taken up here, between bursts (the slot
    // reports this worker quiescent first; see rcu_slot.hpp for why that order). It was
    // compiled off this core: taking it is a few pointer swaps.
    const std::uint64_t latch_start = rte_rdtsc();
    const WorkerPlan* published = shared_.plans.latch(id_, id_);
    if (published != nullptr && published != plan_) {
        translator_.apply(*published);
        plan_ = published;
        has_moves_ = !config().moved_subscribers.empty();
        take_up_cycles_ = std::max<std::uint64_t>(1, rte_rdtsc() - latch_start);
    }

    serve_mailbox(now);
    follow_ha(now);
    if (silent()) {
        return; // a standby sends nothing: an ARP from it would draw the pool's traffic
    }
    translator_.log_interim(now, kInterimBudget);

    while (const auto host = translator_.take_wanted_neighbor()) {
        send_inside_arp_request(*host);
    }

    // Worker 0 asks for the next hop's MAC; the control thread learns it from the answer.
    if (id_ == 0 && !config().outside.next_hop_mac) {
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
    const Mailbox::Request* request = box.pending();
    if (request == nullptr) {
        return;
    }
    if (!box.walking) {
        box.walking = true;
        box.cursor = 0;
        box.sessions.clear();
        box.blocks.clear();
        box.subscribers.clear();
        box.flushed = 0;
    }
    bool done = true;
    switch (request->kind) {
    case Mailbox::Kind::mappings:
        box.mapping_count = translator_.snapshot_mappings(box.mappings);
        break;
    case Mailbox::Kind::ports: {
        // Sized here, not at start: the pool may have grown (a control request, not a packet).
        // A 1:1 address is no pool address to the operator: no port of it is handed out.
        const auto& pool = translator_.pool();
        box.addresses.clear();
        box.active.clear();
        box.free_ports.clear();
        box.block_counts.clear();
        box.usable_ports = translator_.ports().usable_ports();
        for (std::uint16_t a = 0; a < pool.size(); ++a) {
            if (translator_.is_static_address(a)) {
                continue;
            }
            box.addresses.push_back(pool.address(a));
            box.active.push_back(translator_.is_active(a));
            box.block_counts.push_back(translator_.policy().allocation == AllocationMode::blocks
                                           ? translator_.block_counts(a, now)
                                           : BlockCounts{});
            for (Protocol p : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
                box.free_ports.push_back(translator_.ports().free_ports(a, p));
            }
        }
        break;
    }
    case Mailbox::Kind::blocks:
        done =
            translator_.walk_blocks(request->filter.subscriber, now, box.cursor, Mailbox::kWalkStep,
                                    box.blocks, std::min(request->limit, Mailbox::kMaxBlocks));
        break;
    case Mailbox::Kind::subscribers:
        done = translator_.walk_subscribers(box.cursor, Mailbox::kSubscriberStep, box.subscribers);
        break;
    case Mailbox::Kind::sessions:
    case Mailbox::Kind::flush:
        done =
            translator_.walk_sessions(request->filter, request->kind == Mailbox::Kind::flush, now,
                                      box.cursor, Mailbox::kWalkStep, box.sessions,
                                      std::min(request->limit, Mailbox::kMaxSessions), box.flushed);
        break;
    }
    if (done) {
        box.complete();
    }
}

} // namespace ephemera
