// Subscribers moved to a peer box (docs/ha.md, "Moving live subscribers"), on the worker that
// had them: their sessions ended here without a word to the log (they go on at the peer), the
// ports of their mappings held for the replies the routers still send here, and those replies
// passed on to the peer; a held port is let go once it has seen nothing for its timeout.
#include "ephemera/rewrite.hpp"
#include "ephemera/translator.hpp"

#include <bit>

namespace ephemera {

bool Translator::move_step(Tick now, const Config::SubscriberMove& move, std::uint16_t index,
                           std::uint32_t& cursor, std::uint32_t budget) {
    events_.silence(true);
    bool complete = false;
    for (std::uint32_t seen = 0; seen < budget; ++seen) {
        const std::int32_t pos = tables_.sessions.next(cursor);
        if (pos < 0) {
            complete = true;
            break;
        }
        const auto session = static_cast<std::uint32_t>(pos);
        const SessionKey key = tables_.sessions.key(session);
        if (!move.contains(Ipv4Addr{key.inside_addr})) {
            continue;
        }
        Mapping& m = tables_.mapping_records[tables_.sessions.value(session).mapping];
        if ((m.flags & kMappingStatic) == 0) {
            m.flags |= kMappingMoved;
            m.moved_to = index;
        }
        life_.end_session(session, key, now);
    }
    events_.flush();
    events_.silence(standby_);
    return complete;
}

std::uint64_t Translator::pass_moved_replies(std::span<PacketRef> packets, std::uint64_t no_mapping,
                                             Tick now, const L2Context& l2,
                                             std::span<Verdict> verdicts) {
    if (forwards_ == nullptr || forwards_->size() == 0) {
        return no_mapping;
    }
    const auto& moves = plan_->config->moved_subscribers;
    for (std::uint64_t rest = no_mapping; rest != 0; rest &= rest - 1) {
        const auto i = static_cast<std::uint32_t>(std::countr_zero(rest));
        PacketRef& pkt = packets[i];
        const ParsedPacket& p = pkt.parsed;
        const std::uint16_t pool_index = pool().find(p.dst);
        const auto move = pool_index == kNoPool
                              ? std::nullopt
                              : forwards_->find(pool_index, p.proto, p.dst_port, now);
        if (!move || *move >= moves.size()) {
            continue;
        }
        // Unchanged but for the Ethernet header: the peer translates it as its own.
        set_ethernet(pkt.frame, moves[*move].peer_outside_mac, l2.outside_port_mac);
        verdicts[i] = Verdict::reply;
        counters_.add(Counter::moved_passed_outside);
        no_mapping &= ~(std::uint64_t{1} << i);
    }
    return no_mapping;
}

std::uint32_t Translator::expire_forwards(Tick now, std::uint32_t budget) {
    if (forwards_ == nullptr || forwards_->size() == 0) {
        return 0;
    }
    std::uint32_t ended = 0;
    forwards_->expire_step(now, forward_cursor_, budget,
                           [&](std::uint16_t pool_index, Protocol proto, std::uint16_t port) {
                               if (policy().hold_down == 0) {
                                   ports_.release(pool_index, proto, port);
                               } else {
                                   ports_.hold(pool_index, proto, port, now + policy().hold_down);
                               }
                               ++ended;
                           });
    counters_.add(Counter::forwards_ended, ended);
    return ended;
}

} // namespace ephemera
