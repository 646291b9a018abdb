// Subscribers moved to a peer box (dataplane/subscriber_moves.cpp, port_forwards.hpp), on the
// worker that had them: their sessions end here, the ports of their mappings stay held and the
// replies to them go on to the peer's outside MAC unchanged, until idle; and, on the box that
// takes them in, sessions restored on a drained box's addresses (worker_plan.hpp's adopted
// addresses). The stream of a migration carries the moved subscribers' sessions alone.
#include "nat_harness.hpp"

#include "ephemera/port_forwards.hpp"
#include "ephemera/session_sync.hpp"

#include <gtest/gtest.h>

#include <atomic>

namespace ephemera {
namespace {

using nat_test::Endpoint;
using nat_test::kA1;
using nat_test::kC;
using nat_test::kC2;
using nat_test::Nat;
using nat_test::sec;

const MacAddr kPeerInside = test::mac(0x02, 0, 0, 0, 0xc0, 0x01);
const MacAddr kPeerOutside = test::mac(0x02, 0, 0, 0, 0xc0, 0x02);

Config handover_config() {
    Config c = nat_test::make_config(nat_test::pool_of(2));
    c.ha.handover_address = Ipv4Addr{198, 19, 2, 1};
    c.ha.handover_port = 5890;
    return c;
}

Config::SubscriberMove move_of(Ipv4Addr subscriber, bool moved) {
    Config::SubscriberMove m;
    m.prefix = subscriber;
    m.length = 32;
    m.moved = moved;
    m.peer_inside_mac = kPeerInside;
    m.peer_outside_mac = kPeerOutside;
    m.peer = "198.19.1.1:5890";
    return m;
}

// Runs the walk that ends the move's sessions to its end.
void walk(Nat& box, const Config::SubscriberMove& move, Tick now) {
    std::uint32_t cursor = 0;
    for (int i = 0; i < 100 && !box.translator().move_step(now, move, 0, cursor, 16); ++i) {
    }
}

TEST(SubscriberMove, TheMovedSessionsEndHereAndTheRepliesToTheirPortsGoToThePeer) {
    Config config = handover_config();
    Nat box(config);
    const nat_test::FrameSpec moved_out = nat_test::udp_from(kC, 40000, kA1, 53);
    const nat_test::FrameSpec kept_out = nat_test::udp_from(kC2, 40001, kA1, 53);
    const auto moved_ext = box.send_out(moved_out, sec(1));
    const auto kept_ext = box.send_out(kept_out, sec(1));
    ASSERT_TRUE(moved_ext && kept_ext);
    const std::uint16_t pool_index = box.translator().pool().find(moved_ext->addr);
    const std::uint32_t free_before =
        box.translator().ports().free_ports(pool_index, Protocol::udp);

    config.moved_subscribers = {move_of(kC, true)};
    box.reconfigure(config);
    walk(box, config.moved_subscribers[0], sec(2));

    // The moved subscriber's session is gone, the other's stays; its port is held, not freed.
    EXPECT_EQ(box.translator().live_sessions(), 1u);
    EXPECT_EQ(box.translator().ports_forwarded(), 1u);
    EXPECT_EQ(box.counters().get(Counter::ports_forwarded), 1u);
    EXPECT_EQ(box.translator().ports().free_ports(pool_index, Protocol::udp), free_before);

    // A reply to the moved port: passed to the peer's outside MAC, the IP packet unchanged
    // (the peer translates it with the session it now has).
    test::Frame reply = test::build_frame(nat_test::reply_to(moved_out, *moved_ext));
    const test::Frame sent = reply;
    EXPECT_EQ(box.out2in(reply, sec(3)), Verdict::reply);
    EXPECT_EQ(test::mac_dst(reply), kPeerOutside);
    EXPECT_EQ(test::mac_src(reply), nat_test::kOutsidePortMac);
    EXPECT_TRUE(std::equal(reply.begin() + 12, reply.end(), sent.begin() + 12));
    EXPECT_EQ(box.counters().get(Counter::moved_passed_outside), 1u);
    // The subscriber that stayed is translated here as before.
    EXPECT_EQ(box.send_in(nat_test::reply_to(kept_out, *kept_ext), sec(3)), (Endpoint{kC2, 40001}));
}

TEST(SubscriberMove, AHeldPortIsLetGoOnceIdleForItsTimeout) {
    Config config = handover_config();
    Nat box(config);
    const nat_test::FrameSpec out = nat_test::udp_from(kC, 40000, kA1, 53);
    const auto ext = box.send_out(out, sec(1));
    ASSERT_TRUE(ext);
    config.moved_subscribers = {move_of(kC, true)};
    box.reconfigure(config);
    walk(box, config.moved_subscribers[0], sec(2));
    ASSERT_EQ(box.translator().ports_forwarded(), 1u);

    // A reply restarts its idle time: still held a UDP timeout after the move.
    test::Frame reply = test::build_frame(nat_test::reply_to(out, *ext));
    EXPECT_EQ(box.out2in(reply, sec(200)), Verdict::reply);
    EXPECT_EQ(box.translator().expire_forwards(sec(2) + sec(config.timeouts.udp) + 1, 1024), 0u);
    EXPECT_EQ(box.translator().ports_forwarded(), 1u);

    // Idle for the timeout since: let go, into the hold-down like any port that ends.
    const std::size_t held = box.translator().ports().ports_held();
    EXPECT_EQ(box.translator().expire_forwards(sec(200) + sec(config.timeouts.udp), 1024), 1u);
    EXPECT_EQ(box.translator().ports_forwarded(), 0u);
    EXPECT_EQ(box.counters().get(Counter::forwards_ended), 1u);
    EXPECT_EQ(box.translator().ports().ports_held(), held + 1);
    // A reply now finds nothing.
    test::Frame late = test::build_frame(nat_test::reply_to(out, *ext));
    EXPECT_EQ(box.out2in(late, sec(600)), Verdict::drop);
    EXPECT_EQ(box.counters().get(Counter::drop_no_mapping), 1u);
}

TEST(SubscriberMove, AMigrationStreamsTheMovedSubscribersSessionsAlone) {
    static std::atomic<unsigned> n{0};
    const std::string name = "mover" + std::to_string(n.fetch_add(1));
    rte_ring* ring = rte_ring_create_elem(name.c_str(), sizeof(SyncRecord), 1024, SOCKET_ID_ANY,
                                          RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_NE(ring, nullptr);
    Nat box(handover_config());
    box.translator().attach_sync_ring(ring);
    ASSERT_TRUE(box.send_out(nat_test::udp_from(kC, 40000, kA1, 53), sec(1)));
    ASSERT_TRUE(box.send_out(nat_test::udp_from(kC2, 40001, kA1, 53), sec(1)));
    box.translator().set_sync_filter(kC.value(), ~std::uint32_t{0});
    box.translator().set_sync_streaming(true);
    for (int i = 0; i < 10; ++i) {
        box.translator().sync_step(sec(2), sec(10), 1, 256); // a bulk round (generation 1)
    }
    ASSERT_TRUE(box.send_out(nat_test::udp_from(kC2, 40002, kA1, 53), sec(2)));
    ASSERT_TRUE(box.send_out(nat_test::udp_from(kC, 40003, kA1, 53), sec(2)));
    std::vector<SyncRecord> got(64);
    got.resize(rte_ring_sc_dequeue_burst_elem(ring, got.data(), sizeof(SyncRecord), 64, nullptr));
    rte_ring_free(ring);
    std::vector<std::uint16_t> sessions;
    bool marker = false;
    for (const SyncRecord& r : got) {
        if (r.kind == SyncKind::bulk_done) {
            marker = true;
            continue;
        }
        EXPECT_EQ(r.state.inside, kC) << "a session of " << r.state.inside.to_string();
        sessions.push_back(r.state.inside_port);
    }
    EXPECT_TRUE(marker);
    EXPECT_EQ(sessions, (std::vector<std::uint16_t>{40000, 40003}));
}

TEST(SubscriberMove, ADrainedBoxsSessionsComeInOnItsAddressesWhichMakeNoNewMappings) {
    // This box's pool is one address; the drained box's other address is adopted, quiet first.
    Config config = nat_test::make_config({nat_test::kX});
    const Ipv4Addr theirs{198, 18, 0, 102};
    config.adopted_pool = {{theirs, false}};
    Nat box(config);
    EXPECT_TRUE(box.translator().is_pool_address(theirs));
    EXPECT_FALSE(box.translator().answers_arp_for(theirs));
    EXPECT_TRUE(box.translator().answers_arp_for(nat_test::kX));

    SessionState st{};
    st.inside = kC;
    st.inside_port = 40000;
    st.remote = kA1;
    st.remote_port = 53;
    st.proto = Protocol::udp;
    st.external = theirs;
    st.external_port = 50000; // a port this (only) worker owns
    st.inside_mac = nat_test::kCMac;
    EXPECT_EQ(box.translator().restore(st, sec(1)), RestoreResult::restored);
    // Its replies are delivered; its next new flow gets this box's own address.
    const nat_test::FrameSpec out = nat_test::udp_from(kC, 40000, kA1, 53);
    EXPECT_EQ(box.send_in(nat_test::reply_to(out, {theirs, 50000}), sec(2)), (Endpoint{kC, 40000}));
    const auto fresh = box.send_out(nat_test::udp_from(kC, 40001, kA1, 53), sec(2));
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->addr, nat_test::kX);

    // Once the hand-over is complete this box answers for it.
    config.adopted_pool = {{theirs, true}};
    box.reconfigure(config);
    EXPECT_TRUE(box.translator().answers_arp_for(theirs));
    EXPECT_FALSE(box.translator().is_active(box.translator().pool().find(theirs)));
}

} // namespace
} // namespace ephemera
