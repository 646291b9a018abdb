// The fragment table (RFC 4787 REQ-14): later pieces follow their first piece's translation,
// in order or first-last; bounded memory (datagrams, held pieces per datagram), timeouts,
// eviction; and the outside dispatch between workers.
#include "packet_builder.hpp"

#include "ephemera/fragments.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ephemera {
namespace {

const Ipv4Addr kRemote{198, 18, 1, 1};
const Ipv4Addr kPool{198, 18, 0, 100};
const Ipv4Addr kInside{100, 64, 0, 10};

// A piece as parse_frame() describes it: `offset` and `length` in bytes of IP payload.
ParsedPacket piece(std::uint16_t offset, std::uint16_t length, bool more, std::uint16_t id = 7,
                   Ipv4Addr src = kRemote) {
    ParsedPacket p;
    p.kind = FrameKind::ipv4;
    p.proto = Protocol::udp;
    p.l3 = 14;
    p.l4 = 34;
    p.ip_total_len = static_cast<std::uint16_t>(20 + length);
    p.src = src;
    p.dst = kPool;
    p.fragment = true;
    p.later_fragment = offset != 0;
    p.more_fragments = more;
    p.fragment_offset = offset;
    p.ip_id = id;
    return p;
}

// The worker's side: handles are ints here; the table's releases are recorded.
struct Harness {
    explicit Harness(FragmentLimits limits) : table(limits, counters, &Harness::release, this) {}
    static void release(void* handle, void* self) {
        static_cast<Harness*>(self)->released.push_back(handle);
    }
    static void* h(std::uintptr_t n) { return reinterpret_cast<void*>(n); }
    FragmentResult later(const ParsedPacket& p, std::uintptr_t handle, Tick now = 0,
                         bool may_hold = true) {
        return table.later(FragmentKey::of(p, Direction::out2in), p, h(handle), may_hold, now);
    }
    std::vector<void*> translated(const ParsedPacket& first, Tick now = 0) {
        FragmentTable::Handle out[64];
        const std::size_t n = table.translated(FragmentKey::of(first, Direction::out2in), first,
                                               kTranslation, now, out);
        return std::vector<void*>(out, out + n);
    }
    CounterBlock counters;
    FragmentTable table;
    std::vector<void*> released;
    const FragmentTranslation kTranslation{kInside, MacAddr{{2, 0, 0, 0, 1, 10}}};
};

constexpr FragmentLimits kLimits{16, 4, 5 * kTicksPerSecond};

TEST(FragmentTable, Rfc4787Req14InOrderFollowsTheFirstPiece) {
    Harness t(kLimits);
    EXPECT_TRUE(t.translated(piece(0, 1480, true)).empty());
    EXPECT_EQ(t.table.live(), 1u);
    const FragmentResult mid = t.later(piece(1480, 1480, true), 1);
    EXPECT_EQ(mid.action, FragmentAction::translate);
    EXPECT_EQ(mid.translation.address, kInside);
    EXPECT_EQ(mid.translation.mac, t.kTranslation.mac);
    EXPECT_EQ(t.later(piece(2960, 100, false), 2).action, FragmentAction::translate);
    EXPECT_EQ(t.table.live(), 0u) << "complete: every byte up to the last piece's end seen";
    EXPECT_TRUE(t.released.empty());
    EXPECT_EQ(t.counters.get(Counter::fragments_held), 0u);
}

TEST(FragmentTable, Rfc4787Req14FirstPieceLastReleasesHeldInOrder) {
    Harness t(kLimits);
    EXPECT_EQ(t.later(piece(2960, 100, false), 11).action, FragmentAction::held);
    EXPECT_EQ(t.later(piece(1480, 1480, true), 12).action, FragmentAction::held);
    EXPECT_EQ(t.table.held(), 2u);
    EXPECT_EQ(t.counters.get(Counter::fragments_held), 2u);
    const auto held = t.translated(piece(0, 1480, true));
    ASSERT_EQ(held.size(), 2u);
    EXPECT_EQ(held[0], Harness::h(11)); // arrival order
    EXPECT_EQ(held[1], Harness::h(12));
    EXPECT_EQ(t.table.live(), 0u);
    EXPECT_EQ(t.table.held(), 0u);
    EXPECT_TRUE(t.released.empty());
}

TEST(FragmentTable, DatagramsAreKeptApartByIdSourceAndDirection) {
    Harness t(kLimits);
    t.translated(piece(0, 8, true, 1));
    EXPECT_EQ(t.later(piece(8, 8, false, 2), 1).action, FragmentAction::held); // another id
    const ParsedPacket other_source = piece(8, 8, false, 1, Ipv4Addr{198, 18, 1, 2});
    EXPECT_EQ(t.later(other_source, 2).action, FragmentAction::held);
    const ParsedPacket same = piece(8, 8, true, 1);
    EXPECT_EQ(t.table.later(FragmentKey::of(same, Direction::in2out), same, Harness::h(3), true, 0)
                  .action,
              FragmentAction::held);
    EXPECT_EQ(t.later(piece(8, 8, true, 1), 4).action, FragmentAction::translate);
}

TEST(FragmentTable, HeldPiecesTimeOutAndAreReleased) {
    Harness t(kLimits);
    t.later(piece(8, 8, true), 1);
    t.later(piece(16, 8, false), 2);
    EXPECT_EQ(t.table.expire(kLimits.timeout - 1, 100), 0u);
    EXPECT_EQ(t.table.expire(kLimits.timeout, 100), 1u);
    EXPECT_EQ(t.released.size(), 2u);
    EXPECT_EQ(t.counters.get(Counter::fragments_timed_out), 2u);
    EXPECT_EQ(t.table.live(), 0u);
    EXPECT_EQ(t.table.held(), 0u);
    // The first piece now starts a new record and the late pieces are gone.
    EXPECT_TRUE(t.translated(piece(0, 8, true), kLimits.timeout).empty());
}

TEST(FragmentTable, TranslatedRecordsTimeOutToo) {
    Harness t(kLimits);
    t.translated(piece(0, 8, true), 0);
    EXPECT_EQ(t.table.expire(kLimits.timeout, 100), 1u);
    EXPECT_EQ(t.table.live(), 0u);
    // A piece after the timeout no longer follows the old translation.
    EXPECT_EQ(t.later(piece(8, 8, false), 1, kLimits.timeout).action, FragmentAction::held);
}

TEST(FragmentTable, PerDatagramCap) {
    Harness t(kLimits);
    for (std::uintptr_t i = 0; i < kLimits.max_per_datagram; ++i) {
        EXPECT_EQ(t.later(piece(static_cast<std::uint16_t>(8 * (i + 1)), 8, true), i + 1).action,
                  FragmentAction::held);
    }
    EXPECT_EQ(t.later(piece(800, 8, true), 99).action, FragmentAction::drop_cap);
    EXPECT_EQ(t.table.held(), kLimits.max_per_datagram);
}

TEST(FragmentTable, RefusedFirstPieceDropsTheRest) {
    Harness t(kLimits);
    t.later(piece(8, 8, true), 1);
    const ParsedPacket first = piece(0, 8, true);
    t.table.refused(FragmentKey::of(first, Direction::out2in), first, 0);
    EXPECT_EQ(t.released.size(), 1u);
    EXPECT_EQ(t.counters.get(Counter::drop_fragment_orphan), 1u);
    EXPECT_EQ(t.later(piece(16, 8, false), 2).action, FragmentAction::drop_refused);
    EXPECT_EQ(t.table.live(), 0u) << "complete, even though refused";
}

TEST(FragmentTable, RoutedPiecesGoToThePortOwner) {
    Harness t(kLimits);
    t.later(piece(8, 8, true), 1);
    const ParsedPacket first = piece(0, 8, true);
    FragmentTable::Handle out[4];
    EXPECT_EQ(t.table.routed(FragmentKey::of(first, Direction::out2in), first, 3, 0, out), 1u);
    EXPECT_EQ(out[0], Harness::h(1));
    const FragmentResult r = t.later(piece(16, 8, false), 2);
    EXPECT_EQ(r.action, FragmentAction::hand_off);
    EXPECT_EQ(r.worker, 3);
}

TEST(FragmentTable, PortOwnerHoldsNothing) {
    Harness t(kLimits);
    EXPECT_EQ(t.later(piece(8, 8, true), 1, 0, false).action, FragmentAction::drop_unknown);
    EXPECT_EQ(t.table.live(), 0u);
}

// A flood of pieces whose first never comes (from outside, where anyone may send them) fills
// the table, then recycles its own oldest entries; datagrams whose first piece was seen keep
// their records, and new in-order datagrams still get through.
TEST(FragmentTable, FloodOfIncompleteDatagramsSparesTranslatedOnes) {
    Harness t(kLimits);
    for (std::uint16_t id = 1; id <= 4; ++id) {
        t.translated(piece(0, 8, true, id), 0);
    }
    std::uintptr_t handle = 1;
    for (std::uint16_t id = 100; id < 200; ++id) {
        EXPECT_EQ(t.later(piece(8, 8, true, id), handle++, 1).action, FragmentAction::held);
    }
    EXPECT_EQ(t.table.live(), kLimits.max_datagrams);
    EXPECT_EQ(t.counters.get(Counter::fragments_evicted), 100u - (kLimits.max_datagrams - 4));
    EXPECT_EQ(t.released.size(), t.counters.get(Counter::fragments_evicted));
    for (std::uint16_t id = 1; id <= 4; ++id) {
        EXPECT_EQ(t.later(piece(8, 8, false, id), handle++, 1).action, FragmentAction::translate);
    }
    // A new datagram in order still gets through.
    EXPECT_TRUE(t.translated(piece(0, 8, true, 500), 2).empty());
    EXPECT_EQ(t.later(piece(8, 8, false, 500), handle++, 2).action, FragmentAction::translate);
}

TEST(FragmentTable, FullOfYoungTranslatedRecordsRefusesNewPieces) {
    Harness t(kLimits);
    for (std::uint16_t id = 1; id <= kLimits.max_datagrams; ++id) {
        t.translated(piece(0, 8, true, id), 0);
    }
    EXPECT_EQ(t.later(piece(8, 8, true, 999), 1, 1).action, FragmentAction::drop_full);
    // Once they are old, they make room.
    EXPECT_EQ(t.later(piece(8, 8, true, 999), 1, kLimits.timeout).action, FragmentAction::held);
}

TEST(FragmentDispatch, OutsidePiecesGatherAtOneWorkerThenGoToThePortOwner) {
    // Every worker computes the same gatherer for a datagram, whatever piece it got.
    const ParsedPacket first = piece(0, 8, true, 42);
    const ParsedPacket last = piece(8, 8, false, 42);
    const auto key_first = FragmentKey::of(first, Direction::out2in);
    const auto key_last = FragmentKey::of(last, Direction::out2in);
    for (WorkerId workers : {1, 2, 3, 8}) {
        const WorkerId gatherer = fragment_owner(key_first, workers);
        EXPECT_EQ(gatherer, fragment_owner(key_last, workers));
        EXPECT_LT(gatherer, workers);
        for (WorkerId self = 0; self < workers; ++self) {
            const auto from_port = outside_fragment_role(self, gatherer, false);
            const auto from_ring = outside_fragment_role(self, gatherer, true);
            if (self == gatherer) {
                EXPECT_EQ(from_port, OutsideFragmentRole::fragment_owner);
                EXPECT_EQ(from_ring, OutsideFragmentRole::fragment_owner);
            } else {
                EXPECT_EQ(from_port, OutsideFragmentRole::send_to_fragment_owner);
                EXPECT_EQ(from_ring, OutsideFragmentRole::port_owner);
            }
        }
    }
    EXPECT_EQ(fragment_owner(key_first, 1), 0);
    // Datagrams spread over the workers.
    std::vector<int> seen(4);
    for (std::uint16_t id = 0; id < 400; ++id) {
        ++seen[fragment_owner(FragmentKey::of(piece(0, 8, true, id), Direction::out2in), 4)];
    }
    for (int n : seen) {
        EXPECT_GT(n, 50);
    }
}

} // namespace
} // namespace ephemera
