// A worker's part in moving subscribers to a peer box (docs/ha.md, "Moving live subscribers";
// control/ha/handover.hpp runs the hand-over): their frames held, then passed to the peer until
// the routers send them there; their sessions ended here once the peer has them.
#include "ephemera/rewrite.hpp"
#include "worker.hpp"

#include <rte_mbuf.h>

namespace ephemera {

namespace {

constexpr std::uint32_t kMoveStep = 4096;    // sessions looked at per step of a move
constexpr std::uint32_t kForwardStep = 1024; // held ports looked at per step of their expiry

} // namespace

bool Worker::pass_moved_subscriber(rte_mbuf* m, Ipv4Addr source) {
    for (const Config::SubscriberMove& move : config().moved_subscribers) {
        if (!move.contains(source)) {
            continue;
        }
        if (!move.moved) {
            // Its sessions are on their way: nothing may change here now, and the peer
            // would not know a session made meanwhile. The sender retransmits.
            counters_.add(Counter::drop_moving);
            rte_pktmbuf_free(m);
            return true;
        }
        // The inside router still sends it here: on to the peer, which has its sessions.
        set_ethernet(rte_pktmbuf_mtod(m, std::uint8_t*), move.peer_inside_mac, shared_.inside_mac);
        counters_.add(Counter::moved_passed_inside);
        send_reply(Direction::in2out, m);
        return true;
    }
    return false;
}

void Worker::follow_moves(Tick now) {
    const auto& moves = config().moved_subscribers;
    // The hand-over in progress streams the sessions of the subscribers it moves, no others.
    std::uint32_t prefix = 0;
    std::uint32_t mask = 0;
    for (const Config::SubscriberMove& move : moves) {
        if (!move.moved) {
            mask = move.length == 0 ? 0 : ~std::uint32_t{0} << (32 - move.length);
            prefix = move.prefix.value() & mask;
            break;
        }
    }
    translator_.set_sync_filter(prefix, mask);
    for (std::size_t i = 0; i < moves.size() && i < 32; ++i) {
        const std::uint32_t bit = std::uint32_t{1} << i;
        if (!moves[i].moved || (moves_done_ & bit) != 0) {
            continue;
        }
        if (translator_.move_step(now, moves[i], static_cast<std::uint16_t>(i), move_cursor_,
                                  kMoveStep)) {
            moves_done_ |= bit;
            move_cursor_ = 0;
        }
        break; // one move at a time, a step per call
    }
    translator_.expire_forwards(now, kForwardStep);
}

} // namespace ephemera
