// The translation core, driven directly: frames built in buffers, parsed, handed to
// Translator::in2out / out2in as PacketRefs. Each test checks the rewritten frames byte for
// byte (or from-scratch checksums), the verdicts, and the whole CounterBlock.
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/translator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace ephemera {
namespace {

using namespace nat_test;

// ---- translation, byte for byte -----------------------------------------------------------

FrameSpec spec_for(Protocol proto) {
    switch (proto) {
    case Protocol::udp:
        return udp_from(kC, 40000, kA1, 53);
    case Protocol::tcp:
        return inside(test::tcp_spec(kC, 40000, kA1, 443));
    case Protocol::icmp:
        break;
    }
    return inside(test::icmp_spec(kC, kA1, 40000));
}

// After in2out the frame is exactly the original with the source replaced, TTL - 1, MACs of
// the outside hop; after out2in the reply is exactly the reply with the destination restored,
// TTL - 1, MACs of the inside hop. Checksums verify from scratch either way.
TEST(Translator, RoundTripIsByteExactForEveryProtocol) {
    for (Protocol proto : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
        SCOPED_TRACE(protocol_name(proto));
        Nat nat(make_config());
        const FrameSpec out_spec = spec_for(proto);
        Frame f = test::build_frame(out_spec);
        ASSERT_EQ(nat.in2out(f), Verdict::forward);
        ASSERT_TRUE(test::checksums_verify(f));
        const Endpoint ext = source_of(f);
        EXPECT_EQ(ext.addr, kX);
        EXPECT_TRUE(nat.translator().ports().owns(ext.port));
        EXPECT_TRUE(ext.port >= 49152) << ext.port;
        EXPECT_EQ(ext.port & 1u, 40000u & 1u) << "RFC 4787 REQ-4 parity";

        FrameSpec expect = out_spec;
        expect.src = ext.addr;
        (proto == Protocol::icmp ? expect.icmp_id : expect.src_port) = ext.port;
        expect.ttl = static_cast<std::uint8_t>(out_spec.ttl - 1);
        expect.dst_mac = kNextHopMac;
        expect.src_mac = kOutsidePortMac;
        EXPECT_EQ(f, test::build_frame(expect));
        EXPECT_EQ(test::mac_dst(f), kNextHopMac);
        EXPECT_EQ(test::mac_src(f), kOutsidePortMac);

        const FrameSpec back_spec = reply_to(out_spec, ext);
        Frame r = test::build_frame(back_spec);
        ASSERT_EQ(nat.out2in(r), Verdict::forward);
        ASSERT_TRUE(test::checksums_verify(r));
        FrameSpec back = back_spec;
        back.dst = kC;
        (proto == Protocol::icmp ? back.icmp_id : back.dst_port) = 40000;
        back.ttl = static_cast<std::uint8_t>(back_spec.ttl - 1);
        back.dst_mac = kCMac; // learned from the subscriber's frame
        back.src_mac = kInsidePortMac;
        EXPECT_EQ(r, test::build_frame(back));

        EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                                  {Counter::out2in_translated, 1},
                                                  {Counter::mappings_created, 1},
                                                  {Counter::sessions_created, 1}}));
        EXPECT_EQ(nat.translator().live_mappings(), 1u);
        EXPECT_EQ(nat.translator().live_sessions(), 1u);
        const auto views = nat.mappings();
        ASSERT_EQ(views.size(), 1u);
        EXPECT_EQ(views[0].proto, proto);
        EXPECT_EQ(views[0].inside, kC);
        EXPECT_EQ(views[0].inside_port, 40000);
        EXPECT_EQ(views[0].external, ext.addr);
        EXPECT_EQ(views[0].external_port, ext.port);
        EXPECT_EQ(views[0].sessions, 1u);
    }
}

// Many random flows and their replies: checksums always verify from scratch.
TEST(Translator, RandomFlowsKeepChecksumsValid) {
    Nat nat(make_config(pool_of(4), {1024, 65535}));
    test::Rng rng(7857);
    std::uint64_t forwarded = 0;
    for (int i = 0; i < 2000; ++i) {
        FrameSpec s;
        switch (i % 3) {
        case 0:
            s = test::udp_spec(Ipv4Addr{kC.value() + test::uniform<std::uint32_t>(rng, 0, 50)},
                               test::uniform<std::uint16_t>(rng, 1, 65535), kA1,
                               test::uniform<std::uint16_t>(rng, 1, 65535));
            s.udp_checksum = test::uniform<int>(rng, 0, 4) != 0;
            break;
        case 1:
            s = test::tcp_spec(Ipv4Addr{kC.value() + test::uniform<std::uint32_t>(rng, 0, 50)},
                               test::uniform<std::uint16_t>(rng, 1, 65535), kA2,
                               test::uniform<std::uint16_t>(rng, 1, 65535));
            s.tcp_options = 4 * test::uniform<std::size_t>(rng, 0, 10);
            break;
        default:
            s = test::icmp_spec(Ipv4Addr{kC.value() + test::uniform<std::uint32_t>(rng, 0, 50)},
                                kA1, test::uniform<std::uint16_t>(rng, 0, 65535));
            break;
        }
        s = inside(s);
        s.ttl = test::uniform<std::uint8_t>(rng, 2, 255);
        s.ip_options = 4 * test::uniform<std::size_t>(rng, 0, 10);
        s.payload = test::random_bytes(rng, test::uniform<std::size_t>(rng, 0, 200));
        Frame f = test::build_frame(s);
        ASSERT_EQ(nat.in2out(f), Verdict::forward) << i;
        ASSERT_TRUE(test::checksums_verify(f, !s.udp_checksum)) << i;
        if (!s.udp_checksum) {
            ASSERT_EQ(test::l4_checksum(f), 0) << "RFC 768: no checksum stays no checksum";
        }
        FrameSpec reply = reply_to(s, source_of(f));
        reply.ttl = test::uniform<std::uint8_t>(rng, 2, 255);
        reply.payload = test::random_bytes(rng, test::uniform<std::size_t>(rng, 0, 200));
        Frame r = test::build_frame(reply);
        ASSERT_EQ(nat.out2in(r), Verdict::forward) << i;
        ASSERT_TRUE(test::checksums_verify(r, !s.udp_checksum)) << i;
        ASSERT_EQ(destination_of(r),
                  (Endpoint{s.src, s.proto == Protocol::icmp ? s.icmp_id : s.src_port}));
        forwarded += 1;
    }
    EXPECT_EQ(nat.counters().get(Counter::in2out_translated), forwarded);
    EXPECT_EQ(nat.counters().get(Counter::out2in_translated), forwarded);
}

// ---- mapping behaviour (RFC 4787, RFC 5382, RFC 5508) -------------------------------------

// RFC 4787 REQ-1 / RFC 5382 REQ-1: C:x to A1:p, A1:q and A2:p leaves as one X':x'.
TEST(Translator, EndpointIndependentMapping) {
    for (Protocol proto : {Protocol::udp, Protocol::tcp}) {
        SCOPED_TRACE(protocol_name(proto));
        Nat nat(make_config(pool_of(4)));
        FrameSpec s = udp_from(kC, 40000, kA1, 3478);
        s.proto = proto;
        const auto first = nat.send_out(s);
        s.dst_port = 3479;
        const auto second = nat.send_out(s);
        s.dst = kA2;
        s.dst_port = 3478;
        const auto third = nat.send_out(s);
        ASSERT_TRUE(first && second && third);
        EXPECT_EQ(*second, *first);
        EXPECT_EQ(*third, *first);
        EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 3},
                                                  {Counter::mappings_created, 1},
                                                  {Counter::sessions_created, 3}}));
        EXPECT_EQ(nat.translator().live_mappings(), 1u);
        EXPECT_EQ(nat.translator().live_sessions(), 3u);
    }
}

// RFC 5508 REQ-1: the echo identifier is mapped like a port, independent of the remote host.
TEST(Translator, IcmpEchoMapsTheIdentifier) {
    Nat nat(make_config());
    const FrameSpec ping = inside(test::icmp_spec(kC, kA1, 0x1234));
    const auto ext = nat.send_out(ping);
    ASSERT_TRUE(ext.has_value());
    EXPECT_EQ(ext->addr, kX);
    // Another host pinged with the same identifier: same mapping.
    FrameSpec ping2 = ping;
    ping2.dst = kA2;
    EXPECT_EQ(nat.send_out(ping2), ext);

    Frame reply = test::build_frame(reply_to(ping, *ext));
    ASSERT_EQ(nat.out2in(reply), Verdict::forward);
    EXPECT_EQ(test::ip_dst(reply), kC);
    EXPECT_EQ(test::icmp_id(reply), 0x1234);
    EXPECT_EQ(test::icmp_type(reply), kIcmpEchoReply);
    EXPECT_TRUE(test::checksums_verify(reply));
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 2},
                                              {Counter::out2in_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 2}}));
}

TEST(Translator, IcmpOnlyRequestsOpenAndOnlyRepliesReturn) {
    Nat nat(make_config());
    // An echo reply from the inside opens nothing.
    Frame inside_reply = test::build_frame(inside(test::icmp_spec(kC, kA1, 7, kIcmpEchoReply)));
    EXPECT_EQ(nat.in2out(inside_reply), Verdict::drop);
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_unsupported_protocol, 1}}));

    const auto ext = nat.send_out(inside(test::icmp_spec(kC, kA1, 7)));
    ASSERT_TRUE(ext.has_value());
    // An echo request from outside to the mapping's identifier is not a reply: it is not
    // passed to the subscriber but answered by the pool address itself.
    FrameSpec request = from_outside(Protocol::icmp, {kA1, 0}, *ext);
    request.icmp_type = kIcmpEchoRequest;
    Frame f = test::build_frame(request);
    ASSERT_EQ(nat.out2in(f), Verdict::reply);
    EXPECT_EQ(test::ip_src(f), kX);
    EXPECT_EQ(test::ip_dst(f), kA1);
    EXPECT_EQ(test::icmp_type(f), kIcmpEchoReply);
    EXPECT_EQ(test::icmp_id(f), ext->port);
    EXPECT_TRUE(test::checksums_verify(f));
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_unsupported_protocol, 1},
                                              {Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::pool_echo_replies_sent, 1}}));
}

// RFC 4787 REQ-9 / RFC 5382 REQ-8: C reaching C2's external endpoint is turned back inside
// (hairpin) and reaches C2 from C's external endpoint, every checksum right.
TEST(Translator, HairpinPresentsTheSendersExternalEndpoint) {
    const auto flow = [](Protocol proto, Ipv4Addr src, std::uint16_t sport, Ipv4Addr dst,
                         std::uint16_t dport) {
        return inside(proto == Protocol::udp ? test::udp_spec(src, sport, dst, dport)
                                             : test::tcp_spec(src, sport, dst, dport),
                      src == kC2 ? kC2Mac : kCMac);
    };
    for (const Protocol proto : {Protocol::udp, Protocol::tcp}) {
        Nat nat(make_config(pool_of(2)));
        const auto ext2 = nat.send_out(flow(proto, kC2, 5000, kA1, 53));
        ASSERT_TRUE(ext2.has_value());

        Frame f = test::build_frame(flow(proto, kC, 6000, ext2->addr, ext2->port));
        ASSERT_EQ(nat.in2out(f), Verdict::hairpin);
        const Endpoint ext1 = source_of(f);
        EXPECT_TRUE(nat.translator().is_pool_address(ext1.addr));
        EXPECT_EQ(destination_of(f), *ext2);

        ASSERT_EQ(nat.out2in(f), Verdict::forward);
        EXPECT_EQ(source_of(f), ext1);
        EXPECT_EQ(destination_of(f), (Endpoint{kC2, 5000}));
        EXPECT_EQ(test::mac_dst(f), kC2Mac);
        EXPECT_TRUE(test::checksums_verify(f));

        // C2 answers C's external endpoint: hairpinned again, back to C.
        Frame b = test::build_frame(flow(proto, kC2, 5000, ext1.addr, ext1.port));
        ASSERT_EQ(nat.in2out(b), Verdict::hairpin);
        EXPECT_EQ(source_of(b), *ext2);
        ASSERT_EQ(nat.out2in(b), Verdict::forward);
        EXPECT_EQ(source_of(b), *ext2);
        EXPECT_EQ(destination_of(b), (Endpoint{kC, 6000}));
        EXPECT_TRUE(test::checksums_verify(b));
        EXPECT_EQ(nat.counters().get(Counter::hairpinned), 2u);
    }
}

// Found by tests/fuzz: a hairpinned packet whose TTL runs out on its way back in (TTL is spent
// once each way) was answered with a Time Exceeded sent out of the outside port, addressed to
// the sender's external address, one of our own: it never came back. It hairpins now, and
// reaches the sender like any error about its flow (RFC 5508 REQ-7).
TEST(Translator, TimeExceededForAHairpinnedPacketReachesTheSender) {
    Nat nat(make_config(pool_of(2)));
    nat.set_headroom_for_replies(600);
    const auto ext2 = nat.send_out(udp_from(kC2, 5000, kA1, 53));
    ASSERT_TRUE(ext2.has_value());
    FrameSpec spec = udp_from(kC, 6000, ext2->addr, ext2->port);
    spec.ttl = 2;
    Frame f = test::build_frame(spec);
    ASSERT_EQ(nat.in2out(f), Verdict::hairpin);
    const Endpoint ext1 = source_of(f);

    ASSERT_EQ(nat.out2in(f), Verdict::hairpin); // the Time Exceeded, to C's external address
    EXPECT_EQ(test::ip_src(f), ext2->addr);
    EXPECT_EQ(test::ip_dst(f), ext1.addr);
    EXPECT_EQ(test::icmp_type(f), kIcmpTimeExceeded);
    ASSERT_EQ(nat.out2in(f), Verdict::forward); // ... translated like any error about C's flow
    EXPECT_EQ(test::ip_src(f), ext2->addr);
    EXPECT_EQ(test::ip_dst(f), kC);
    EXPECT_EQ(test::mac_dst(f), kCMac);
    EXPECT_EQ(test::icmp_type(f), kIcmpTimeExceeded);
    EXPECT_TRUE(test::checksums_verify(f));
    EXPECT_EQ(nat.counters().get(Counter::icmp_time_exceeded_sent), 1u);
    EXPECT_EQ(nat.counters().get(Counter::icmp_errors_out2in), 1u);
    EXPECT_EQ(nat.counters().get(Counter::hairpinned), 2u);
}

// A hairpinned packet is filtered like any outside packet (RFC 4787 REQ-8): under
// address-and-port-dependent filtering C2 must have sent to C's external endpoint first.
TEST(Translator, HairpinIsFilteredLikeOutsideTraffic) {
    Nat nat(make_config({kX}, {49152, 65535}, FilteringMode::address_port_dependent));
    const auto ext2 = nat.send_out(udp_from(kC2, 5000, kA1, 53));
    ASSERT_TRUE(ext2.has_value());
    Frame f = test::build_frame(udp_from(kC, 6000, ext2->addr, ext2->port));
    ASSERT_EQ(nat.in2out(f), Verdict::hairpin);
    const Endpoint ext1 = source_of(f);
    EXPECT_EQ(nat.out2in(f), Verdict::drop);
    EXPECT_EQ(nat.counters().get(Counter::drop_filtered), 1u);

    // Once C2 has sent to C's external endpoint, both directions pass (hole punching).
    Frame c2 = test::build_frame(udp_from(kC2, 5000, ext1.addr, ext1.port));
    ASSERT_EQ(nat.in2out(c2), Verdict::hairpin);
    EXPECT_EQ(nat.out2in(c2), Verdict::forward);
    Frame again = test::build_frame(udp_from(kC, 6000, ext2->addr, ext2->port));
    ASSERT_EQ(nat.in2out(again), Verdict::hairpin);
    ASSERT_EQ(nat.out2in(again), Verdict::forward);
    EXPECT_EQ(destination_of(again), (Endpoint{kC2, 5000}));
}

// RFC 5508 REQ-7: a subscriber pinging another subscriber's external address (a pool
// address) is answered by that address, through two hairpins: the request in, the reply back.
TEST(Translator, HairpinnedPingIsAnsweredByThePoolAddress) {
    Nat nat(make_config(pool_of(2)));
    Frame f = test::build_frame(inside(test::icmp_spec(kC, kX, 0x77)));
    ASSERT_EQ(nat.in2out(f), Verdict::hairpin);
    const Endpoint ext = source_of(f);
    ASSERT_EQ(nat.out2in(f), Verdict::hairpin); // the answer, addressed to C's external address
    EXPECT_EQ(test::icmp_type(f), kIcmpEchoReply);
    EXPECT_EQ(source_of(f), (Endpoint{kX, ext.port}));
    EXPECT_EQ(destination_of(f), ext);
    ASSERT_EQ(nat.out2in(f), Verdict::forward);
    EXPECT_EQ(test::ip_src(f), kX);
    EXPECT_EQ(destination_of(f), (Endpoint{kC, 0x77}));
    EXPECT_EQ(test::icmp_type(f), kIcmpEchoReply);
    EXPECT_TRUE(test::checksums_verify(f));
    EXPECT_EQ(nat.counters().get(Counter::pool_echo_replies_sent), 1u);
}

// Found by tests/fuzz: a pool address answers a ping that came to the broadcast MAC from the
// outside port's MAC, not from the broadcast address.
TEST(Translator, PoolPingToTheBroadcastMacIsAnsweredFromOurMac) {
    Nat nat(make_config());
    FrameSpec request = from_outside(Protocol::icmp, {kA1, 0}, {kX, 0x99});
    request.icmp_type = kIcmpEchoRequest;
    request.dst_mac = test::mac(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    Frame f = test::build_frame(request);
    ASSERT_EQ(nat.out2in(f), Verdict::reply);
    EXPECT_EQ(test::mac_src(f), kOutsidePortMac);
    EXPECT_EQ(test::mac_dst(f), kNextHopMac);
    EXPECT_EQ(test::icmp_type(f), kIcmpEchoReply);
    EXPECT_TRUE(test::checksums_verify(f));
}

// RFC 4787 REQ-3 / RFC 5382 REQ-7: no port overloading. C:x and C2:x to the same A1:p leave
// with different external endpoints, and each reply reaches its own host.
TEST(Translator, NoPortOverloading) {
    for (Protocol proto : {Protocol::udp, Protocol::tcp}) {
        SCOPED_TRACE(protocol_name(proto));
        Nat nat(make_config({kX})); // one address: the ports must differ
        FrameSpec s1 = udp_from(kC, 5060, kA1, 5060);
        FrameSpec s2 = udp_from(kC2, 5060, kA1, 5060);
        s1.proto = s2.proto = proto;
        const auto e1 = nat.send_out(s1);
        const auto e2 = nat.send_out(s2);
        ASSERT_TRUE(e1 && e2);
        EXPECT_EQ(e1->addr, kX);
        EXPECT_EQ(e2->addr, kX);
        EXPECT_NE(e1->port, e2->port);

        Frame r2 = test::build_frame(reply_to(s2, *e2));
        ASSERT_EQ(nat.out2in(r2), Verdict::forward);
        EXPECT_EQ(destination_of(r2), (Endpoint{kC2, 5060}));
        EXPECT_EQ(test::mac_dst(r2), kC2Mac);
        Frame r1 = test::build_frame(reply_to(s1, *e1));
        ASSERT_EQ(nat.out2in(r1), Verdict::forward);
        EXPECT_EQ(destination_of(r1), (Endpoint{kC, 5060}));
        EXPECT_EQ(test::mac_dst(r1), kCMac);
        EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 2},
                                                  {Counter::out2in_translated, 2},
                                                  {Counter::mappings_created, 2},
                                                  {Counter::sessions_created, 2}}));
    }
}

// Port preservation: the subscriber's port when it is free and this worker's; the second
// subscriber with that port gets another one of the same parity (RFC 4787 REQ-4).
TEST(Translator, SourcePortPreservedWhenFree) {
    Nat nat(make_config({kX}));
    const auto e1 = nat.send_out(udp_from(kC, 50001, kA1, 53));
    const auto e2 = nat.send_out(udp_from(kC2, 50001, kA1, 53));
    ASSERT_TRUE(e1 && e2);
    EXPECT_EQ(e1->port, 50001);
    EXPECT_NE(e2->port, 50001);
    EXPECT_EQ(e2->port & 1u, 1u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 2},
                                              {Counter::mappings_created, 2},
                                              {Counter::sessions_created, 2},
                                              {Counter::port_preserved, 1}}));
}

// RFC 4787 REQ-2 / RFC 6888 REQ-2: paired pooling. With four pool addresses, every mapping of
// one subscriber (any port, protocol, destination) uses the same external address.
TEST(Translator, PairedPooling) {
    Nat nat(make_config(pool_of(4), {1024, 65535}));
    std::map<Ipv4Addr, std::set<Ipv4Addr>> used; // subscriber -> external addresses
    test::Rng rng(6888);
    for (std::uint32_t sub = 0; sub < 32; ++sub) {
        const Ipv4Addr c{kC.value() + sub};
        for (int flow = 0; flow < 20; ++flow) {
            FrameSpec s =
                test::udp_spec(c, test::uniform<std::uint16_t>(rng, 1024, 65535),
                               flow % 2 ? kA1 : kA2, test::uniform<std::uint16_t>(rng, 1, 65535));
            s.proto = flow % 3 == 0 ? Protocol::tcp : Protocol::udp;
            if (flow % 5 == 4) {
                s = test::icmp_spec(c, kA1, test::uniform<std::uint16_t>(rng, 0, 65535));
            }
            const auto ext = nat.send_out(inside(s));
            ASSERT_TRUE(ext.has_value());
            used[c].insert(ext->addr);
        }
    }
    std::set<Ipv4Addr> all;
    for (const auto& [c, addrs] : used) {
        EXPECT_EQ(addrs.size(), 1u) << c.to_string() << " was given several addresses";
        all.insert(addrs.begin(), addrs.end());
    }
    EXPECT_GT(all.size(), 1u) << "32 subscribers all anchored to one of 4 addresses";
    // The table agrees with the wire.
    for (const MappingView& m : nat.mappings()) {
        ASSERT_EQ(used[m.inside].count(m.external), 1u) << m.inside.to_string();
    }
}

// Paired pooling must still spread subscribers over the pool. A worker only ever sees the
// subscribers it owns (subscriber_hash % workers == worker); their preferred anchors must not all
// be the same address.
//
// Bug: Translator::create_mapping prefers address subscriber_hash % pool_size, and ownership is
// subscriber_hash % workers. When workers and pool size share a factor, the two are correlated:
// with 4 workers and 4 addresses every subscriber of worker w is anchored to address w, so each
// address carries only one worker's subscribers, and those subscribers run out of ports (RFC 7857
// section 4 drop) once a quarter of the worker's ports are used, while the other addresses' ports
// in this worker stay idle (RFC 6888 REQ-13: maximise port use).
TEST(Translator, PairedPoolingSpreadsTheWorkersOwnSubscribers) {
    struct Case {
        WorkerId workers;
        std::size_t pool;
    };
    // 1 worker and 3 workers over 4 addresses (no common factor) spread; the others do not.
    for (const Case& c : {Case{1, 4}, Case{3, 4}, Case{4, 4}, Case{2, 4}, Case{2, 2}}) {
        SCOPED_TRACE(testing::Message() << c.workers << " workers, " << c.pool << " addresses");
        const WorkerId worker = c.workers - 1;
        const Ownership own(c.workers);
        Nat nat(make_config(pool_of(c.pool), {1024, 65535}), c.workers, worker);
        std::map<Ipv4Addr, unsigned> anchors;
        unsigned subscribers = 0;
        for (std::uint32_t i = 0; subscribers < 64; ++i) {
            const Ipv4Addr sub{kC.value() + i};
            if (own.subscriber_owner(sub) != worker) {
                continue; // the dataplane hands this one to another worker
            }
            ++subscribers;
            const auto ext = nat.send_out(udp_from(sub, 40000, kA1, 53));
            ASSERT_TRUE(ext.has_value());
            ++anchors[ext->addr];
        }
        // 64 subscribers over the pool: every address should get some.
        EXPECT_EQ(anchors.size(), c.pool) << "addresses used: " << anchors.size();
    }
}

// Bug (see PortAllocator.ClassWhosePortsAreAllReservedFallsBack): with port_range 1-65535 and
// reserved 1-1023 (RFC 7422 removes at least 0-1023), a subscriber whose source port is below
// 1024 (NTP 123, IKE 500, DHCP 68) is dropped as drop_ports_exhausted although 64512 ports are
// free.
TEST(Translator, SystemSourcePortWithReservedSystemPortsIsTranslated) {
    Config config = make_config({kX}, {1, 65535});
    config.reserved = {{1, 1023}};
    Nat nat(config);
    const auto ntp = nat.send_out(udp_from(kC, 123, kA1, 123));
    ASSERT_TRUE(ntp.has_value()) << "drop_ports_exhausted="
                                 << nat.counters().get(Counter::drop_ports_exhausted);
    EXPECT_GE(ntp->port, 1024);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1}}));
}

// ---- filtering (RFC 4787 REQ-8, RFC 5382 REQ-3) -------------------------------------------

// filtering_mode_name() lives in the config library, which core-tests does not link.
const char* mode_name(FilteringMode m) {
    switch (m) {
    case FilteringMode::endpoint_independent:
        return "EIF";
    case FilteringMode::address_dependent:
        return "ADF";
    case FilteringMode::address_port_dependent:
        break;
    }
    return "APDF";
}

// After C:x -> A1:p: A1:p always gets in; A1:q gets in under EIF and ADF; A2:p only under EIF.
TEST(Translator, FilteringModes) {
    struct Case {
        FilteringMode mode;
        bool same_address_other_port;
        bool other_address;
    };
    for (const Case& c : {Case{FilteringMode::endpoint_independent, true, true},
                          Case{FilteringMode::address_dependent, true, false},
                          Case{FilteringMode::address_port_dependent, false, false}}) {
        SCOPED_TRACE(mode_name(c.mode));
        Nat nat(make_config({kX}, {49152, 65535}, c.mode));
        const FrameSpec out = udp_from(kC, 40000, kA1, 3478);
        const auto ext = nat.send_out(out);
        ASSERT_TRUE(ext.has_value());

        const auto same = nat.send_in(from_outside(Protocol::udp, {kA1, 3478}, *ext));
        const auto other_port = nat.send_in(from_outside(Protocol::udp, {kA1, 3479}, *ext));
        const auto other_addr = nat.send_in(from_outside(Protocol::udp, {kA2, 3478}, *ext));
        ASSERT_TRUE(same.has_value());
        EXPECT_EQ(*same, (Endpoint{kC, 40000}));
        EXPECT_EQ(other_port.has_value(), c.same_address_other_port);
        EXPECT_EQ(other_addr.has_value(), c.other_address);
        if (other_port) {
            EXPECT_EQ(*other_port, (Endpoint{kC, 40000}));
        }
        if (other_addr) {
            EXPECT_EQ(*other_addr, (Endpoint{kC, 40000}));
        }
        const std::uint64_t passed =
            1 + (c.same_address_other_port ? 1 : 0) + (c.other_address ? 1 : 0);
        EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                                  {Counter::mappings_created, 1},
                                                  {Counter::sessions_created, 1},
                                                  {Counter::out2in_translated, passed},
                                                  {Counter::drop_filtered, 3 - passed}}));
        // Inbound packets create no session and no mapping (RFC 7857 section 7).
        EXPECT_EQ(nat.translator().live_sessions(), 1u);
        EXPECT_EQ(nat.translator().live_mappings(), 1u);

        // Once C has sent to A2:p too, A2:p gets in under every mode.
        FrameSpec out2 = out;
        out2.dst = kA2;
        EXPECT_EQ(nat.send_out(out2), ext);
        EXPECT_TRUE(nat.send_in(from_outside(Protocol::udp, {kA2, 3478}, *ext)).has_value());
    }
}

// ---- drops --------------------------------------------------------------------------------

TEST(Translator, OutsidePacketForNoMapping) {
    Nat nat(make_config({kX}, {49152, 65535}));
    const auto ext = nat.send_out(udp_from(kC, 40000, kA1, 53));
    ASSERT_TRUE(ext.has_value());
    // Another port in the range, a port outside the range, and the mapping's port in TCP.
    const std::uint16_t unused = static_cast<std::uint16_t>(ext->port == 60000 ? 60002 : 60000);
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 53}, {kX, unused})));
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 53}, {kX, 40000})));
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::tcp, {kA1, 53}, *ext)));
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::icmp, {kA1, 0}, *ext)));
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::drop_no_mapping, 4}}));
}

TEST(Translator, OutsidePacketNotForThePool) {
    Nat nat(make_config(pool_of(2)));
    const auto ext = nat.send_out(udp_from(kC, 40000, kA1, 53));
    ASSERT_TRUE(ext.has_value());
    const Ipv4Addr beside{kX.value() + 2}; // just past the pool
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 53}, {beside, ext->port})));
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 53}, {kC, 40000})));
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::drop_not_for_us, 2}}));
}

// RFC 1812 5.3.7 / 4.2.2.11: limited broadcast, multicast, loopback and this-network
// addresses are not routed, so they are neither translated nor given a mapping, either way.
TEST(Translator, MartianAddressesAreDroppedAndOpenNothing) {
    Nat nat(make_config({kX}, {49152, 65535}));
    for (const Ipv4Addr dst :
         {Ipv4Addr{255, 255, 255, 255}, Ipv4Addr{224, 0, 0, 251}, Ipv4Addr{239, 1, 2, 3},
          Ipv4Addr{127, 0, 0, 1}, Ipv4Addr{0, 1, 2, 3}, Ipv4Addr{240, 0, 0, 1}}) {
        EXPECT_FALSE(nat.send_out(udp_from(kC, 50000, dst, 67)).has_value()) << dst.to_string();
    }
    EXPECT_FALSE(nat.send_out(udp_from(Ipv4Addr{0, 0, 0, 0}, 68, kA1, 67)).has_value());
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    const auto ext = nat.send_out(udp_from(kC, 50000, kA1, 53));
    ASSERT_TRUE(ext.has_value());
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {Ipv4Addr{127, 0, 0, 1}, 53}, *ext)));
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {Ipv4Addr{224, 0, 0, 1}, 53}, *ext)));
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::port_preserved, 1},
                                              {Counter::drop_martian, 9}}));
}

// RFC 5508 section 7.2: a NAT is a router. TTL 1 (or 0) is not forwarded and, inside, opens
// nothing.
TEST(Translator, TtlExpiredCreatesNoMapping) {
    Nat nat(make_config());
    for (std::uint8_t ttl : {1, 0}) {
        FrameSpec s = udp_from(kC, 40000, kA1, 53);
        s.ttl = ttl;
        EXPECT_FALSE(nat.send_out(s).has_value()) << int{ttl};
        FrameSpec p = inside(test::icmp_spec(kC, kA1, 9));
        p.ttl = ttl;
        EXPECT_FALSE(nat.send_out(p).has_value()) << int{ttl};
    }
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.translator().live_sessions(), 0u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_ttl_expired, 4}}));

    // TTL 2 goes out with TTL 1.
    FrameSpec s = udp_from(kC, 40000, kA1, 53);
    s.ttl = 2;
    Frame f = test::build_frame(s);
    ASSERT_EQ(nat.in2out(f), Verdict::forward);
    EXPECT_EQ(test::ip_ttl(f), 1);
    const Endpoint ext = source_of(f);

    // From the outside, the same.
    FrameSpec r = reply_to(s, ext);
    r.ttl = 1;
    EXPECT_FALSE(nat.send_in(r).has_value());
    r.ttl = 2;
    Frame rf = test::build_frame(r);
    ASSERT_EQ(nat.out2in(rf), Verdict::forward);
    EXPECT_EQ(test::ip_ttl(rf), 1);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_ttl_expired, 5},
                                              {Counter::in2out_translated, 1},
                                              {Counter::out2in_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1}}));
}

// RFC 6888 REQ-11: when no session can be created the packet is dropped; existing state is
// never evicted to make room. limits.max_sessions is per process; each of the workers gets
// ceil(max / workers).
// RFC 6888 REQ-5: the subscriber table has its own limit. A subscriber beyond it gets no
// mapping (counted, and told with ICMP 3/1, RFC 6888 REQ-11); the others carry on.
TEST(Translator, SubscriberLimitRefusesNewSubscribersOnly) {
    Config c = make_config();
    c.limits.max_subscribers = 1;
    Nat nat(c);
    nat.set_headroom_for_replies(600);
    const auto ext = nat.send_out(udp_from(kC, 40000, kA1, 53));
    ASSERT_TRUE(ext.has_value());
    Frame refused = test::build_frame(udp_from(kC2, 40000, kA1, 53));
    ASSERT_EQ(nat.in2out(refused), Verdict::reply);
    EXPECT_EQ(test::icmp_type(refused), 3);
    EXPECT_EQ(nat.counters().get(Counter::drop_subscribers_exhausted), 1u);
    EXPECT_EQ(nat.translator().live_subscribers(), 1u);
    // The subscriber already known opens more flows.
    EXPECT_TRUE(nat.send_out(udp_from(kC, 40001, kA2, 53)).has_value());
    EXPECT_EQ(nat.send_in(reply_to(udp_from(kC, 40000, kA1, 53), *ext)), (Endpoint{kC, 40000}));
}

TEST(Translator, SessionLimitDropsNewFlowsKeepsOldOnes) {
    constexpr WorkerId kWorkers = 3;
    constexpr std::uint32_t kMax = 10;
    const std::uint32_t share = (kMax + kWorkers - 1) / kWorkers;
    Nat nat(make_config({kX}, {1024, 65535}, FilteringMode::endpoint_independent, kMax), kWorkers,
            2);
    ASSERT_EQ(nat.translator().max_sessions(), share);

    std::vector<FrameSpec> flows;
    std::vector<Endpoint> exts;
    for (std::uint32_t i = 0; i < share; ++i) {
        // Source port 500: no port of its class in the range, so none is preserved.
        flows.push_back(udp_from(nat.owned_subscriber(i), 500, kA1, 53));
        const auto ext = nat.send_out(flows.back());
        ASSERT_TRUE(ext.has_value()) << i;
        exts.push_back(*ext);
    }
    // A new subscriber, and a new destination of an existing mapping: both new sessions.
    EXPECT_FALSE(nat.send_out(udp_from(nat.owned_subscriber(100), 40000, kA1, 53)));
    FrameSpec new_dest = flows[0];
    new_dest.dst = kA2;
    EXPECT_FALSE(nat.send_out(new_dest));
    EXPECT_EQ(nat.translator().live_sessions(), share);
    EXPECT_EQ(nat.translator().live_mappings(), share);

    // Every existing flow still translates, both ways, with its old mapping.
    for (std::uint32_t i = 0; i < share; ++i) {
        EXPECT_EQ(nat.send_out(flows[i]), exts[i]) << i;
        EXPECT_EQ(nat.send_in(reply_to(flows[i], exts[i])),
                  (Endpoint{flows[i].src, flows[i].src_port}))
            << i;
    }
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 2 * share},
                                              {Counter::out2in_translated, share},
                                              {Counter::mappings_created, share},
                                              {Counter::sessions_created, share},
                                              {Counter::drop_sessions_exhausted, 2}}));
}

// RFC 7857 section 4 / RFC 6888 REQ-11: a 64-port range runs out after 64 mappings; the next
// new mapping is dropped and the existing ones keep working.
TEST(Translator, PortExhaustionDropsAndKeepsExistingMappings) {
    const PortRange range{40000, 40063};
    Nat nat(make_config({kX}, range));
    ASSERT_EQ(nat.translator().ports().usable_ports(), 64u);
    std::vector<FrameSpec> flows;
    std::set<std::uint16_t> ports;
    for (std::uint32_t i = 0; i < 64; ++i) {
        flows.push_back(
            udp_from(Ipv4Addr{kC.value() + i % 8}, static_cast<std::uint16_t>(20000 + i), kA1, 53));
        const auto ext = nat.send_out(flows.back());
        ASSERT_TRUE(ext.has_value()) << i;
        EXPECT_EQ(ext->addr, kX);
        EXPECT_TRUE(range.contains(ext->port)) << ext->port;
        EXPECT_TRUE(ports.insert(ext->port).second) << "port " << ext->port << " given twice";
    }
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30000, kA1, 53)));
    EXPECT_FALSE(nat.send_out(udp_from(Ipv4Addr{kC.value() + 50}, 30000, kA1, 53)));
    // Other protocols have their own ports.
    FrameSpec tcp = udp_from(kC, 30000, kA1, 80);
    tcp.proto = Protocol::tcp;
    EXPECT_TRUE(nat.send_out(tcp).has_value());

    for (const FrameSpec& f : flows) {
        const auto ext = nat.send_out(f);
        ASSERT_TRUE(ext.has_value());
        EXPECT_EQ(nat.send_in(reply_to(f, *ext)), (Endpoint{f.src, f.src_port}));
    }
    EXPECT_EQ(nat.translator().live_mappings(), 65u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 64 + 1 + 64},
                                              {Counter::out2in_translated, 64},
                                              {Counter::mappings_created, 65},
                                              {Counter::sessions_created, 65},
                                              {Counter::drop_ports_exhausted, 2}}));
}

// RFC 7857 section 4: a subscriber whose anchor address is out of ports is dropped, not moved
// to another address; a new subscriber is anchored where ports remain.
TEST(Translator, PairedAnchorOutOfPortsIsNotMoved) {
    Nat nat(make_config(pool_of(2), {40000, 40063}));
    std::optional<Ipv4Addr> anchor;
    for (std::uint16_t i = 0; i < 64; ++i) {
        const auto ext = nat.send_out(udp_from(kC, static_cast<std::uint16_t>(20000 + i), kA1, 53));
        ASSERT_TRUE(ext.has_value()) << i;
        if (!anchor) {
            anchor = ext->addr;
        }
        ASSERT_EQ(ext->addr, *anchor);
    }
    EXPECT_FALSE(nat.send_out(udp_from(kC, 30000, kA1, 53)));
    EXPECT_EQ(nat.counters().get(Counter::drop_ports_exhausted), 1u);
    const auto other = nat.send_out(udp_from(kC2, 30000, kA1, 53));
    ASSERT_TRUE(other.has_value());
    EXPECT_NE(other->addr, *anchor);
}

// ---- bursts -------------------------------------------------------------------------------

// Two packets of one new flow in the same burst: one mapping, one session, both translated.
TEST(Translator, BurstWithTwoPacketsOfOneNewFlow) {
    Nat nat(make_config());
    const FrameSpec s = udp_from(kC, 40000, kA1, 53);
    std::vector<Frame> frames = {test::build_frame(s), test::build_frame(s)};
    const auto verdicts = nat.burst(frames, true);
    ASSERT_EQ(verdicts[0], Verdict::forward);
    ASSERT_EQ(verdicts[1], Verdict::forward);
    EXPECT_EQ(frames[0], frames[1]);
    EXPECT_TRUE(test::checksums_verify(frames[1]));
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 2},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1}}));
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
}

// A mixed burst: each packet gets its own verdict; drops in the middle do not disturb the rest.
TEST(Translator, MixedBurst) {
    Nat nat(make_config());
    FrameSpec expired = udp_from(kC, 1000, kA1, 53);
    expired.ttl = 1;
    std::vector<FrameSpec> specs = {
        udp_from(kC, 40000, kA1, 53),
        expired,
        inside(test::icmp_spec(kC, kA1, 5, kIcmpEchoReply)),
        udp_from(kC2, 40000, kA1, 53),
        udp_from(kC, 40000, kA2, 53), // same mapping as the first, new session
    };
    std::vector<Frame> frames;
    for (const auto& s : specs) {
        frames.push_back(test::build_frame(s));
    }
    const auto v = nat.burst(frames, true);
    EXPECT_EQ(v, (std::vector<Verdict>{Verdict::forward, Verdict::drop, Verdict::drop,
                                       Verdict::forward, Verdict::forward}));
    EXPECT_EQ(source_of(frames[4]), source_of(frames[0]));
    EXPECT_NE(source_of(frames[3]), source_of(frames[0]));
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 3},
                                              {Counter::mappings_created, 2},
                                              {Counter::sessions_created, 3},
                                              {Counter::drop_ttl_expired, 1},
                                              {Counter::drop_unsupported_protocol, 1}}));
}

TEST(Translator, FullBurstOfNewFlows) {
    Nat nat(make_config(pool_of(4), {1024, 65535}));
    std::vector<Frame> frames;
    for (std::uint32_t i = 0; i < Translator::kMaxBurst; ++i) {
        frames.push_back(test::build_frame(udp_from(
            Ipv4Addr{kC.value() + i % 16}, static_cast<std::uint16_t>(1024 + i), kA1, 53)));
    }
    const auto v = nat.burst(frames, true);
    std::set<Endpoint> seen;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        ASSERT_EQ(v[i], Verdict::forward) << i;
        EXPECT_TRUE(seen.insert(source_of(frames[i])).second) << i;
        EXPECT_TRUE(test::checksums_verify(frames[i])) << i;
    }
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, Translator::kMaxBurst},
                                              {Counter::mappings_created, Translator::kMaxBurst},
                                              {Counter::sessions_created, Translator::kMaxBurst},
                                              {Counter::port_preserved, Translator::kMaxBurst}}));
}

// RFC 4787 REQ-11: the same secret and traffic give the same mappings. The translators live one
// after the other (the hash names collide while both live).
std::vector<Endpoint> mappings_for(SipKey secret) {
    Nat nat(make_config(pool_of(4), {1024, 65535}), 2, 1, secret);
    std::vector<Endpoint> out;
    for (std::uint32_t i = 0; i < 50; ++i) {
        // Source ports 0..49: outside the range, so every choice is the allocator's.
        const auto ext = nat.send_out(
            udp_from(nat.owned_subscriber(i % 5), static_cast<std::uint16_t>(i), kA1, 53));
        out.push_back(ext.value_or(Endpoint{}));
    }
    return out;
}

TEST(Translator, DeterministicForASecret) {
    const auto a = mappings_for(kSecret);
    EXPECT_EQ(a, mappings_for(kSecret));
    const auto b = mappings_for(SipKey{kSecret.k0 + 1, kSecret.k1});
    std::size_t same = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        same += a[i] == b[i] ? 1 : 0;
    }
    EXPECT_LT(same, a.size() / 5);
}

} // namespace
} // namespace ephemera
