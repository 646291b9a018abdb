// Static mappings through the translator: port forwards and 1:1, reached from outside with no
// earlier outbound packet, used by their inside endpoint's own flows (RFC 4787 REQ-1: one
// external endpoint per inside endpoint, the entry's), hairpinned, never handed out by
// allocation, ended like any mapping and changed at run time.
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/inside_neighbors.hpp"
#include "ephemera/static_table.hpp"

#include <gtest/gtest.h>

namespace ephemera {
namespace {

using namespace nat_test;
using test::icmp_spec;
using test::tcp_spec;
using test::udp_spec;

const Ipv4Addr kServer{100, 64, 0, 80}; // the inside host a forward points at
const MacAddr kServerMac = test::mac(0x02, 0, 0, 0, 0x01, 0x50);
const Ipv4Addr kOneToOne{198, 18, 0, 200}; // a 1:1 address (not in the pool)
const Ipv4Addr kOneHost{100, 64, 0, 90};   // ... and its inside host
const MacAddr kOneHostMac = test::mac(0x02, 0, 0, 0, 0x01, 0x5a);

StaticMapping forward(Protocol proto, std::uint16_t external_port, Ipv4Addr inside,
                      std::uint16_t inside_port) {
    StaticMapping s;
    s.proto = proto;
    s.external = kX;
    s.external_port = external_port;
    s.inside = inside;
    s.inside_port = inside_port;
    return s;
}
StaticMapping one_to_one(Ipv4Addr external, Ipv4Addr inside) {
    StaticMapping s;
    s.external = external;
    s.inside = inside;
    return s;
}

Config static_config(FilteringMode filtering = FilteringMode::address_port_dependent) {
    Config c = make_config({kX}, {49152, 65535}, filtering);
    c.statics = {forward(Protocol::tcp, 8080, kServer, 80),
                 forward(Protocol::udp, 5353, kServer, 53), one_to_one(kOneToOne, kOneHost)};
    c.icmp.unreachable = false;
    return c;
}

FrameSpec tcp_in(Endpoint remote, Endpoint external, std::uint8_t flags = 0x02) {
    FrameSpec s = from_outside(Protocol::tcp, remote, external);
    s.tcp_flags = flags;
    return s;
}
FrameSpec from_host(FrameSpec s, const MacAddr& mac) {
    s.src_mac = mac;
    s.dst_mac = kInsidePortMac;
    return s;
}

// The first packet from outside finds the host's MAC unknown: it is dropped and counted, and
// the worker is asked to send an ARP request for the host (once a second at most). Once ARP
// has answered, the forward delivers, with no outbound packet ever sent.
TEST(StaticMappings, Rfc4787Req1ForwardReachedFromOutsideFirst) {
    Nat nat(static_config());
    const FrameSpec syn = tcp_in({kA1, 40000}, {kX, 8080});
    EXPECT_FALSE(nat.send_in(syn));
    EXPECT_EQ(nat.counters().get(Counter::drop_static_unresolved), 1u);
    EXPECT_EQ(nat.translator().take_wanted_neighbor(), kServer);
    EXPECT_FALSE(nat.translator().take_wanted_neighbor());
    EXPECT_FALSE(nat.send_in(syn)); // asked a moment ago: not asked again
    EXPECT_FALSE(nat.translator().take_wanted_neighbor());

    nat.translator().learn_neighbor(kServer, kServerMac, kT0);
    Frame f = test::build_frame(syn);
    ASSERT_EQ(nat.out2in(f), Verdict::forward);
    EXPECT_EQ(destination_of(f), (Endpoint{kServer, 80}));
    EXPECT_EQ(test::mac_dst(f), kServerMac);
    EXPECT_EQ(nat.counters().get(Counter::static_mappings_created), 1u);
    EXPECT_EQ(nat.translator().live_sessions(), 1u);

    // The server's SYN-ACK leaves from the forward's endpoint, not from an allocated port.
    FrameSpec synack = from_host(tcp_spec(kServer, 80, kA1, 40000), kServerMac);
    synack.tcp_flags = 0x12;
    EXPECT_EQ(nat.send_out(synack), (Endpoint{kX, 8080}));
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
}

// A static endpoint admits every remote, whatever the filtering mode (here APDF): the operator
// published it. Each remote gets a session of its own.
TEST(StaticMappings, EveryRemoteReachesAForwardUnderAnyFiltering) {
    for (FilteringMode mode :
         {FilteringMode::endpoint_independent, FilteringMode::address_dependent,
          FilteringMode::address_port_dependent}) {
        SCOPED_TRACE(static_cast<int>(mode));
        Nat nat(static_config(mode));
        nat.translator().learn_neighbor(kServer, kServerMac, kT0);
        for (std::uint16_t r = 0; r < 5; ++r) {
            const Endpoint remote{Ipv4Addr{198, 19, 1, static_cast<std::uint8_t>(r + 1)},
                                  static_cast<std::uint16_t>(40000 + r)};
            EXPECT_EQ(nat.send_in(from_outside(Protocol::udp, remote, {kX, 5353})),
                      (Endpoint{kServer, 53}));
        }
        EXPECT_EQ(nat.translator().live_sessions(), 5u);
        EXPECT_EQ(nat.translator().live_mappings(), 1u);
        EXPECT_EQ(nat.counters().get(Counter::drop_filtered), 0u);
    }
}

// RFC 4787 REQ-1: the forwarded endpoint's own outbound flows use the entry's external
// endpoint, to every destination; the host's other ports are translated as any subscriber's.
TEST(StaticMappings, Rfc4787Req1OutboundFromAForwardedEndpointUsesTheEntry) {
    Nat nat(static_config());
    EXPECT_EQ(nat.send_out(from_host(udp_spec(kServer, 53, kA1, 53), kServerMac)),
              (Endpoint{kX, 5353}));
    EXPECT_EQ(nat.send_out(from_host(udp_spec(kServer, 53, kA2, 99), kServerMac)),
              (Endpoint{kX, 5353}));
    const auto other = nat.send_out(from_host(udp_spec(kServer, 54, kA1, 53), kServerMac));
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(other->addr, kX);
    EXPECT_GE(other->port, 49152);
    // Made from inside, the forward's mapping knows the host's MAC: the next remote is
    // delivered at once.
    EXPECT_EQ(nat.send_in(from_outside(Protocol::udp, {kA2, 7}, {kX, 5353})),
              (Endpoint{kServer, 53}));
    EXPECT_EQ(nat.counters().get(Counter::drop_static_unresolved), 0u);
}

// 1:1: every port and protocol of the address are the host's, both ways, ports kept; a ping
// to the address reaches the host (the pool address answers its own).
TEST(StaticMappings, OneToOneOwnsEveryPortBothWays) {
    Nat nat(static_config());
    nat.translator().learn_neighbor(kOneHost, kOneHostMac, kT0);
    for (std::uint16_t port : {22, 1000, 50000, 65535}) {
        EXPECT_EQ(nat.send_in(tcp_in({kA1, 40000}, {kOneToOne, port})), (Endpoint{kOneHost, port}))
            << port;
        EXPECT_EQ(nat.send_out(from_host(udp_spec(kOneHost, port, kA1, 53), kOneHostMac)),
                  (Endpoint{kOneToOne, port}))
            << port;
    }
    FrameSpec ping = from_outside(Protocol::icmp, {kA1, 0}, {kOneToOne, 77});
    ping.icmp_type = kIcmpEchoRequest;
    Frame f = test::build_frame(ping);
    ASSERT_EQ(nat.out2in(f), Verdict::forward);
    EXPECT_EQ(destination_of(f), (Endpoint{kOneHost, 77}));
    EXPECT_EQ(nat.counters().get(Counter::pool_echo_replies_sent), 0u);
    // The host's answer leaves from the 1:1 address, identifier kept.
    FrameSpec answer = from_host(icmp_spec(kOneHost, kA1, 77, kIcmpEchoReply), kOneHostMac);
    EXPECT_EQ(nat.send_out(answer), (Endpoint{kOneToOne, 77}));
    // An echo reply that answers nothing is still refused.
    answer.icmp_id = 78;
    EXPECT_FALSE(nat.send_out(answer));
    EXPECT_EQ(nat.counters().get(Counter::drop_unsupported_protocol), 1u);
    // The host's own ping leaves from its address, identifier kept, and the reply comes back.
    const FrameSpec own = from_host(icmp_spec(kOneHost, kA1, 4242), kOneHostMac);
    const auto ext = nat.send_out(own);
    EXPECT_EQ(ext, (Endpoint{kOneToOne, 4242}));
    EXPECT_EQ(nat.send_in(reply_to(own, *ext)), (Endpoint{kOneHost, 4242}));
}

// Static endpoints are never handed out: subscribers get pool ports, never the 1:1 address
// nor a forward's port, and a port forward lies outside the dynamic range anyway.
TEST(StaticMappings, AllocationNeverHandsOutAStaticEndpoint) {
    Config c = static_config();
    c.limits.subscriber_mapping_rate = 0;
    Nat nat(c);
    for (std::uint32_t k = 0; k < 200; ++k) {
        const Ipv4Addr who{kC.value() + 100 + k};
        const auto e = nat.send_out(udp_from(who, static_cast<std::uint16_t>(1000 + k), kA1, 53));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->addr, kX);
        EXPECT_GE(e->port, 49152);
    }
    EXPECT_EQ(nat.counters().get(Counter::static_mappings_created), 0u);
}

// RFC 4787 REQ-9: a subscriber reaches a forward through its external endpoint; the packet
// turns back inside and the server sees the subscriber's external endpoint, and its answer
// hairpins back the same way.
TEST(StaticMappings, Rfc4787Req9HairpinToAForward) {
    Nat nat(static_config(FilteringMode::endpoint_independent));
    nat.translator().learn_neighbor(kServer, kServerMac, kT0);
    Frame f = test::build_frame(udp_from(kC, 33333, kX, 5353));
    ASSERT_EQ(nat.in2out(f), Verdict::hairpin);
    const Endpoint c_ext = source_of(f);
    ASSERT_EQ(nat.out2in(f), Verdict::forward);
    EXPECT_EQ(destination_of(f), (Endpoint{kServer, 53}));
    EXPECT_EQ(source_of(f), c_ext);

    Frame answer =
        test::build_frame(from_host(udp_spec(kServer, 53, c_ext.addr, c_ext.port), kServerMac));
    ASSERT_EQ(nat.in2out(answer), Verdict::hairpin);
    EXPECT_EQ(source_of(answer), (Endpoint{kX, 5353}));
    ASSERT_EQ(nat.out2in(answer), Verdict::forward);
    EXPECT_EQ(destination_of(answer), (Endpoint{kC, 33333}));
}

// A static mapping ends with its last session like any other, but its port is never held
// down (RFC 6888 REQ-8 is about ports that change hands; this one never does), and the next
// packet of either side makes it again.
TEST(StaticMappings, EndsWithItsLastSessionAndComesBack) {
    Config c = static_config();
    c.timeouts.udp = 120;
    Nat nat(c);
    nat.translator().learn_neighbor(kServer, kServerMac, kT0);
    ASSERT_TRUE(nat.send_in(from_outside(Protocol::udp, {kA1, 7}, {kX, 5353})));
    expire_all(nat.translator(), kT0 + sec(121));
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.translator().ports_held(), 0u);
    EXPECT_EQ(nat.counters().get(Counter::ports_held), 0u);
    EXPECT_EQ(nat.send_in(from_outside(Protocol::udp, {kA2, 7}, {kX, 5353}), kT0 + sec(122)),
              (Endpoint{kServer, 53}));
}

// Added and removed at run time: a removed entry's endpoint is refused from outside at once,
// and an entry added while the inside endpoint still has a dynamic mapping waits for it to end
// (drop_static_busy): one inside endpoint never has two external endpoints.
TEST(StaticMappings, ChangedAtRunTime) {
    Config c = static_config();
    c.timeouts.udp = 120;
    Nat nat(c);
    nat.translator().learn_neighbor(kServer, kServerMac, kT0);
    Config without = c;
    without.statics.erase(without.statics.begin() + 1); // the udp forward
    nat.reconfigure(without);
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 7}, {kX, 5353})));
    EXPECT_EQ(nat.counters().get(Counter::drop_no_mapping), 1u);
    // Meanwhile the server's port 53 talks out through a dynamic mapping.
    const auto dynamic = nat.send_out(from_host(udp_spec(kServer, 53, kA1, 53), kServerMac));
    ASSERT_TRUE(dynamic.has_value());
    EXPECT_NE(dynamic->port, 5353);

    nat.reconfigure(c);
    EXPECT_FALSE(nat.send_in(from_outside(Protocol::udp, {kA1, 7}, {kX, 5353})));
    EXPECT_EQ(nat.counters().get(Counter::drop_static_busy), 1u);
    expire_all(nat.translator(), kT0 + sec(121));
    EXPECT_EQ(nat.send_in(from_outside(Protocol::udp, {kA1, 7}, {kX, 5353}), kT0 + sec(122)),
              (Endpoint{kServer, 53}));
}

// RFC 5508 REQ-4: an ICMP error from outside about a packet the forward sent reaches the host.
TEST(StaticMappings, Rfc5508Req4ErrorAboutAForwardsFlowIsTranslated) {
    Nat nat(static_config());
    Frame sent = test::build_frame(from_host(udp_spec(kServer, 53, kA1, 53), kServerMac));
    ASSERT_EQ(nat.in2out(sent), Verdict::forward);
    FrameSpec outer;
    outer.src_mac = kNextHopMac;
    outer.dst_mac = kOutsidePortMac;
    outer.src = kA2;
    outer.dst = kX;
    outer.icmp_type = 3;
    outer.icmp_code = 3;
    Frame error = test::build_icmp_error(outer, sent);
    ASSERT_EQ(nat.out2in(error), Verdict::forward);
    EXPECT_EQ(test::ip_dst(error), kServer);
    EXPECT_EQ(nat.counters().get(Counter::icmp_errors_out2in), 1u);
}

TEST(StaticTable, LooksUpBothWays) {
    const Config c = static_config();
    const StaticTable t(c.statics);
    EXPECT_FALSE(t.empty());
    EXPECT_EQ(t.inside_of(kX, Protocol::tcp, 8080)->address, kServer);
    EXPECT_EQ(t.inside_of(kX, Protocol::tcp, 8080)->port, 80);
    EXPECT_FALSE(t.inside_of(kX, Protocol::udp, 8080));
    EXPECT_FALSE(t.inside_of(kX, Protocol::tcp, 8081));
    EXPECT_EQ(t.inside_of(kOneToOne, Protocol::icmp, 9)->port, 9);
    EXPECT_EQ(t.external_of(kServer, Protocol::udp, 53)->port, 5353);
    EXPECT_FALSE(t.external_of(kServer, Protocol::udp, 54));
    EXPECT_EQ(t.external_of(kOneHost, Protocol::tcp, 1)->address, kOneToOne);
    EXPECT_TRUE(t.is_inside_host(kServer));
    EXPECT_FALSE(t.is_inside_host(kC));
    EXPECT_TRUE(t.may_be_static(kX, 8080));
    EXPECT_TRUE(t.may_be_static(kOneToOne, 1));
    EXPECT_TRUE(StaticTable{}.empty());
}

TEST(InsideNeighbors, AsksOncePerSecondAndRefreshes) {
    InsideNeighbors n;
    EXPECT_FALSE(n.find(kServer, sec(1)));
    EXPECT_EQ(n.take_wanted(), kServer);
    EXPECT_FALSE(n.find(kServer, sec(1) + 1));
    EXPECT_FALSE(n.take_wanted());
    EXPECT_FALSE(n.find(kServer, sec(2) + 1));
    EXPECT_EQ(n.take_wanted(), kServer); // a second later: asked again
    n.learn(kServer, kServerMac, sec(3));
    EXPECT_EQ(n.find(kServer, sec(4)), kServerMac);
    EXPECT_FALSE(n.take_wanted());
    EXPECT_EQ(n.find(kServer, sec(3) + InsideNeighbors::kRefresh + 1), kServerMac);
    EXPECT_EQ(n.take_wanted(), kServer); // still used, and confirmed by a new request
}

} // namespace
} // namespace ephemera
