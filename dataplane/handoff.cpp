// Handoff: packets another worker owns travel to it over a single-producer/single-consumer
// ring per pair of workers (handoff[from][to]), in bursts. What a worker sends, in its own
// processing order, its peer receives in that order: a subscriber's packet handed off ahead
// of the reply to it stays ahead. A full ring drops and counts (drop_handoff_congestion).
#include "worker.hpp"

#include <rte_mbuf.h>
#include <rte_ring.h>

namespace ephemera {

void Worker::poll_handoff() {
    rte_mbuf* pkts[kBurst];
    rte_mbuf* by_direction[2][kBurst];
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
            // The port a packet came in on tells its direction (hairpins carry the outside's).
            const auto d = static_cast<std::size_t>(
                pkts[i]->port == shared_.inside_port ? Direction::in2out : Direction::out2in);
            by_direction[d][count[d]++] = pkts[i];
        }
        for (Direction d : {Direction::in2out, Direction::out2in}) {
            const auto i = static_cast<std::size_t>(d);
            if (count[i] != 0) {
                classify(d, by_direction[i], count[i], Arrival::handoff);
                translate(d);
            }
        }
    }
}

void Worker::hand_off(WorkerId to, rte_mbuf* m) {
    handoff_out_[to].push_back(m);
    if (handoff_out_[to].size() >= kBurst) {
        flush_handoff();
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

} // namespace ephemera
