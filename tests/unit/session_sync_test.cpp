// A worker's part of the HA stream (include/ephemera/session_sync.hpp, dataplane/
// session_sync.cpp): what the active's translator writes to its sync ring (each session made,
// each change of TCP state, each end; refresh rounds of the sessions used; a bulk round of
// all), and what the standby's translator makes of those records. The two translators stand
// for the two boxes; the ring between them for the sync link.
#include "nat_harness.hpp"

#include "ephemera/session_sync.hpp"
#include "ephemera/tcp_state.hpp"

#include <gtest/gtest.h>

#include <atomic>

namespace ephemera {
namespace {

using nat_test::Endpoint;
using nat_test::kA1;
using nat_test::kC;
using nat_test::Nat;
using nat_test::sec;

class SessionSyncTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<unsigned> n{0};
        const std::string name = "syncr" + std::to_string(n.fetch_add(1));
        ring_ = rte_ring_create_elem(name.c_str(), sizeof(SyncRecord), kRing, SOCKET_ID_ANY,
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
        ASSERT_NE(ring_, nullptr);
        active_.translator().attach_sync_ring(ring_);
        active_.translator().set_sync_streaming(true);
        standby_.translator().set_standby(true);
    }
    void TearDown() override { rte_ring_free(ring_); }

    std::vector<SyncRecord> drain() {
        std::vector<SyncRecord> out(kRing);
        out.resize(
            rte_ring_sc_dequeue_burst_elem(ring_, out.data(), sizeof(SyncRecord), kRing, nullptr));
        return out;
    }
    // Everything the active wrote, applied on the standby; the records are returned.
    std::vector<SyncRecord> carry(Tick now) {
        auto records = drain();
        for (const SyncRecord& r : records) {
            if (r.kind != SyncKind::bulk_done) {
                const RestoreResult result = standby_.translator().apply_sync(r, now);
                EXPECT_TRUE(result == RestoreResult::restored || result == RestoreResult::duplicate)
                    << kRestoreResultNames[static_cast<std::size_t>(result)];
            }
        }
        return records;
    }
    // Refresh-round steps until the round in progress is over.
    void run_round(Tick now, std::uint32_t generation) {
        for (int i = 0; i < 100; ++i) {
            active_.translator().sync_step(now, sec(10), generation, 1024);
        }
    }

    static constexpr unsigned kRing = 4096;
    const Config config_ = nat_test::make_config(nat_test::pool_of(2));
    Nat active_{config_};
    Nat standby_{config_};
    rte_ring* ring_ = nullptr;
};

TEST_F(SessionSyncTest, EachNewSessionIsSentAndTheStandbyDeliversItsReplies) {
    const nat_test::FrameSpec out = nat_test::udp_from(kC, 40000, kA1, 53);
    const auto ext = active_.send_out(out, sec(1));
    ASSERT_TRUE(ext);
    const auto records = carry(sec(1));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].kind, SyncKind::upsert);
    EXPECT_EQ(records[0].state.external_port, ext->port);
    EXPECT_EQ(active_.counters().get(Counter::ha_records_sent), 1u);
    // The standby (once it forwards) delivers the server's reply to the subscriber.
    EXPECT_EQ(standby_.send_in(nat_test::reply_to(out, *ext), sec(2)), (Endpoint{kC, 40000}));
    // Translating a known session sends nothing: refreshes go by rounds, not per packet.
    for (int i = 0; i < 10; ++i) {
        active_.send_out(out, sec(1));
    }
    EXPECT_TRUE(drain().empty());
}

TEST_F(SessionSyncTest, TcpStateChangesAndEndsAreSent) {
    nat_test::FrameSpec syn = nat_test::inside(test::tcp_spec(kC, 33000, kA1, 443));
    const auto ext = active_.send_out(syn, sec(1));
    ASSERT_TRUE(ext);
    nat_test::FrameSpec synack = nat_test::reply_to(syn, *ext);
    synack.tcp_flags = tcp_flag::syn | tcp_flag::ack;
    ASSERT_TRUE(active_.send_in(synack, sec(1)));
    auto records = carry(sec(1));
    ASSERT_EQ(records.size(), 2u); // made, then established
    EXPECT_FALSE(tcp_established(records[0].state.tcp_flags));
    EXPECT_TRUE(tcp_established(records[1].state.tcp_flags));
    // The standby's copy is established too: it outlives the transitory timeout.
    nat_test::expire_all(standby_.translator(), sec(1 + 300));
    EXPECT_EQ(standby_.translator().live_sessions(), 1u);

    nat_test::FrameSpec rst = syn;
    rst.tcp_flags = tcp_flag::rst;
    active_.send_out(rst, sec(400));
    records = carry(sec(400));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_FALSE(tcp_established(records[0].state.tcp_flags));
    // ... and when the session times out on the active, the standby's goes with it.
    nat_test::expire_all(active_.translator(), sec(400 + 241));
    records = carry(sec(400 + 241));
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].kind, SyncKind::remove);
    EXPECT_EQ(standby_.translator().live_sessions(), 0u);
    EXPECT_EQ(standby_.translator().live_mappings(), 0u);
}

TEST_F(SessionSyncTest, RefreshRoundsSendOnlyTheSessionsUsedSinceTheLastRound) {
    for (std::uint16_t p = 0; p < 10; ++p) {
        active_.send_out(nat_test::udp_from(kC, static_cast<std::uint16_t>(40000 + p), kA1, 53),
                         sec(1));
    }
    carry(sec(1));
    // The first round, an interval after the start: all ten were used since.
    run_round(sec(11), 0);
    EXPECT_EQ(carry(sec(11)).size(), 10u);
    // Three of the ten are used again; the next round (10 s on) sends those three.
    for (std::uint16_t p = 0; p < 3; ++p) {
        active_.send_out(nat_test::udp_from(kC, static_cast<std::uint16_t>(40000 + p), kA1, 53),
                         sec(200));
    }
    EXPECT_TRUE(drain().empty());
    run_round(sec(200), 0);
    const auto records = carry(sec(200));
    ASSERT_EQ(records.size(), 3u);
    for (const SyncRecord& r : records) {
        EXPECT_EQ(r.kind, SyncKind::upsert);
        EXPECT_LT(r.state.inside_port, 40003);
        EXPECT_EQ(r.state.idle_ms, 0u);
    }
    // The standby's copies of the three were refreshed: at 300 s after their first packet
    // the seven unused ones time out there, as on the active, and the three stay.
    nat_test::expire_all(standby_.translator(), sec(1 + 300));
    EXPECT_EQ(standby_.translator().live_sessions(), 3u);
    nat_test::expire_all(active_.translator(), sec(1 + 300));
    EXPECT_EQ(active_.translator().live_sessions(), 3u);
}

TEST_F(SessionSyncTest, ABulkRoundSendsEverySessionThenItsMarker) {
    // Sessions made before any standby was there are not in the ring.
    active_.translator().set_sync_streaming(false);
    for (std::uint16_t p = 0; p < 50; ++p) {
        active_.send_out(nat_test::udp_from(kC, static_cast<std::uint16_t>(40000 + p), kA1, 53),
                         sec(1));
    }
    EXPECT_TRUE(drain().empty());
    active_.translator().sync_step(sec(1), sec(10), 0, 1024);
    // A standby pairs: streaming, and a new generation asks for everything.
    active_.translator().set_sync_streaming(true);
    for (int i = 0; i < 10; ++i) {
        active_.translator().sync_step(sec(2), sec(10), 1, 16); // 16 sessions a step
    }
    const auto records = carry(sec(2));
    ASSERT_EQ(records.size(), 51u);
    EXPECT_EQ(records.back().kind, SyncKind::bulk_done);
    EXPECT_EQ(records.back().generation, 1u);
    EXPECT_EQ(standby_.translator().live_sessions(), 50u);
    // Applied twice (a reconnect's second bulk round), nothing is made twice.
    for (int i = 0; i < 10; ++i) {
        active_.translator().sync_step(sec(3), sec(10), 2, 1024);
    }
    EXPECT_EQ(carry(sec(3)).size(), 51u);
    EXPECT_EQ(standby_.translator().live_sessions(), 50u);
    EXPECT_EQ(standby_.translator().live_mappings(), 50u);
}

TEST_F(SessionSyncTest, ABulkRoundWaitsForRoomInsteadOfDropping) {
    active_.translator().set_sync_streaming(false);
    const std::uint32_t sessions = 3000;
    for (std::uint32_t i = 0; i < sessions; ++i) {
        active_.send_out(nat_test::udp_from(Ipv4Addr{kC.value() + i / 60},
                                            static_cast<std::uint16_t>(40000 + i % 60), kA1, 53),
                         sec(1));
    }
    ASSERT_EQ(active_.translator().live_sessions(), sessions);
    active_.translator().set_sync_streaming(true);
    std::size_t carried = 0;
    bool done = false;
    for (int step = 0; step < 1000 && !done; ++step) {
        active_.translator().sync_step(sec(2), sec(10), 1, 1024);
        if (step % 3 == 0) { // the sync thread drains less often than the worker steps
            for (const SyncRecord& r : carry(sec(2))) {
                done = done || r.kind == SyncKind::bulk_done;
                carried += r.kind == SyncKind::upsert;
            }
        }
    }
    EXPECT_TRUE(done);
    EXPECT_EQ(carried, sessions);
    EXPECT_EQ(active_.counters().get(Counter::ha_records_dropped), 0u);
    EXPECT_EQ(standby_.translator().live_sessions(), sessions);
}

TEST_F(SessionSyncTest, TheStandbyRefusesWhatContradictsItsTables) {
    const nat_test::FrameSpec out = nat_test::udp_from(kC, 40000, kA1, 53);
    ASSERT_TRUE(active_.send_out(out, sec(1)));
    auto records = carry(sec(1));
    ASSERT_EQ(records.size(), 1u);
    // The same session on another external port: refused, and the copy stays as it was.
    SyncRecord other = records[0];
    other.state.external_port = static_cast<std::uint16_t>(other.state.external_port ^ 2);
    EXPECT_EQ(standby_.translator().apply_sync(other, sec(2)), RestoreResult::conflict);
    // A remove of a session the standby never had is no error: its own timeout came first.
    SyncRecord gone = records[0];
    gone.kind = SyncKind::remove;
    gone.state.remote_port = 54;
    EXPECT_EQ(standby_.translator().apply_sync(gone, sec(2)), RestoreResult::duplicate);
    EXPECT_EQ(standby_.translator().live_sessions(), 1u);
}

TEST_F(SessionSyncTest, AStandbyLogsNothingAndStreamsNothing) {
    const nat_test::FrameSpec out = nat_test::udp_from(kC, 40000, kA1, 53);
    ASSERT_TRUE(active_.send_out(out, sec(1)));
    carry(sec(1));
    // The standby's copy times out there: no record of that leaves the standby.
    rte_ring* standby_ring = ring_;
    standby_.translator().attach_sync_ring(standby_ring);
    standby_.translator().set_sync_streaming(true); // refused while standby
    nat_test::expire_all(standby_.translator(), sec(1 + 301));
    EXPECT_EQ(standby_.translator().live_sessions(), 0u);
    EXPECT_EQ(standby_.counters().get(Counter::ha_records_sent), 0u);
    EXPECT_EQ(standby_.counters().get(Counter::log_records), 0u);
}

} // namespace
} // namespace ephemera
