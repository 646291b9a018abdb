// Translate: the classified batch of one direction goes through the Translator (its fast and
// slow paths), and each verdict sends the packet on: forward and reply to tx, drop to the
// free list, hairpin into the second pass. Then the second pass (hairpins, as outside packets)
// and the pieces pass (later fragments), each over a small batch, in a loop: no stage calls
// an earlier one.
#include "worker.hpp"

#include <rte_mbuf.h>

#include <algorithm>

namespace ephemera {

namespace {

constexpr std::size_t index_of(Direction d) {
    return static_cast<std::size_t>(d);
}

// A hairpinned packet is translated as an outside packet; the answer to a hairpinned ping (an
// echo reply from a pool address to a pool address) hairpins once more. Nothing goes round
// more often: a third round would be a defect, and its packets are dropped and counted.
constexpr int kHairpinRounds = 2;

} // namespace

void Worker::enqueue(Direction d, rte_mbuf* m, const ParsedPacket& parsed) {
    Batch& b = batch_[index_of(d)];
    if (b.count == Batch::kSize) {
        translate_batch(d); // its hairpins and pieces wait for translate()
    }
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const std::uint16_t len = rte_pktmbuf_data_len(m);
    const auto capacity =
        static_cast<std::uint16_t>(std::min<std::uint32_t>(0xffff, len + rte_pktmbuf_tailroom(m)));
    b.refs[b.count] = PacketRef{frame, len, capacity, parsed};
    b.mbufs[b.count++] = m;
}

void Worker::translate(Direction d) {
    translate_batch(d);
    translate_hairpins();
    pieces_pass();
}

void Worker::translate_batch(Direction d) {
    Batch& b = batch_[index_of(d)];
    if (b.count == 0) {
        return;
    }
    const std::uint16_t n = b.count;
    b.count = 0;
    const std::uint64_t next_hop = shared_.next_hop_mac.load(std::memory_order_acquire);
    if (d == Direction::in2out && (next_hop & kMacKnown) == 0) {
        counters_.add(Counter::drop_nexthop_unresolved, n);
        rte_pktmbuf_free_bulk(b.mbufs, n);
        return;
    }
    // in2out leaves by the outside port, out2in by the inside port.
    const L2Context l2{shared_.inside_mac, shared_.outside_mac, unpack_mac(next_hop),
                       d == Direction::in2out ? shared_.outside_tx_checksums
                                              : shared_.inside_tx_checksums};
    const std::span<PacketRef> packets(b.refs, n);
    const std::span<Verdict> verdicts(b.verdicts, n);
    if (d == Direction::in2out) {
        translator_.in2out(packets, now_, l2, verdicts);
    } else {
        translator_.out2in(packets, now_, l2, verdicts);
    }
    for (std::uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = b.mbufs[i];
        const PacketRef& pkt = b.refs[i];
        // A first piece's fate decides its datagram's (read before the frame is sent).
        const std::size_t held = pkt.parsed.fragment ? first_piece_done(d, pkt, b.verdicts[i]) : 0;
        switch (b.verdicts[i]) {
        case Verdict::forward:
            emit(d, m, pkt.parsed, pkt.tx_checksums);
            send_held(d, held);
            break;
        case Verdict::reply: // an ICMP message for the sender, built in the packet's buffer
            m->data_len = pkt.length;
            m->pkt_len = pkt.length;
            send_reply(d, m);
            break;
        case Verdict::hairpin:
            if (hairpin_count_ == kHairpinCapacity) {
                counters_.add(Counter::drop_hairpin_overflow); // more than a pass holds
                rte_pktmbuf_free(m);
                break;
            }
            m->data_len = pkt.length;
            m->pkt_len = pkt.length;
            m->port = shared_.outside_port; // how a handoff ring tells an outside packet
            hairpins_[hairpin_count_++] = m;
            break;
        case Verdict::drop:
            rte_pktmbuf_free(m);
            break;
        }
    }
}

// The second pass: hairpinned packets re-enter as outside packets, owned by the worker of
// their destination port, which may be another one (then they travel by handoff ring).
void Worker::translate_hairpins() {
    for (int round = 0; hairpin_count_ != 0; ++round) {
        rte_mbuf* pass[kHairpinCapacity];
        const std::uint16_t n = hairpin_count_;
        std::copy_n(hairpins_, n, pass);
        hairpin_count_ = 0;
        if (round == kHairpinRounds) {
            counters_.add(Counter::drop_hairpin_overflow, n);
            rte_pktmbuf_free_bulk(pass, n);
            return;
        }
        for (std::uint16_t done = 0; done < n; done += kBurst) {
            classify(Direction::out2in, pass + done,
                     static_cast<std::uint16_t>(std::min<int>(kBurst, n - done)), Arrival::hairpin);
            translate_batch(Direction::out2in);
        }
    }
}

} // namespace ephemera
