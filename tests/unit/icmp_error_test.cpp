// ICMP errors: parsing the quote (RFC 5508 REQ-3), translation from outside (REQ-4) and from
// subscribers (REQ-5) with every checksum judged by a full recomputation, errors leaving state
// alone (REQ-6, RFC 4787 REQ-12, RFC 5382 REQ-10), and Time Exceeded when TTL runs out here
// (RFC 5508 section 7.2).
//
// Expected frames are built from scratch by packet_builder.hpp (whose checksums are its own
// RFC 1071 code over the finished bytes), so a byte-exact match proves each incremental update.
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/counters.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/translator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace ephemera {
namespace {

using namespace nat_test;
using test::kEth;

const Ipv4Addr kRouter{198, 19, 9, 9}; // a router on the path, not the flow's remote
const Ipv4Addr kGateway{100, 64, 0, 1};
constexpr std::size_t kReplyRoom = 600; // an mbuf's tailroom, for replies longer than the packet

ParsedPacket parse(const Frame& f) {
    return parse_frame(std::span<const std::uint8_t>(f.data(), f.size()));
}

Config icmp_config(FilteringMode filtering = FilteringMode::endpoint_independent) {
    Config c = make_config({kX}, {49152, 65535}, filtering);
    c.inside.gateway = kGateway;
    return c;
}

// The outer part of an error from `from` to `to`, arriving on the outside or the inside.
FrameSpec error_from_outside(Ipv4Addr from, Ipv4Addr to, std::uint8_t type, std::uint8_t code) {
    FrameSpec s;
    s.src_mac = kNextHopMac;
    s.dst_mac = kOutsidePortMac;
    s.src = from;
    s.dst = to;
    s.icmp_type = type;
    s.icmp_code = code;
    s.ip_id = 0x7777;
    return s;
}
FrameSpec error_from_inside(Ipv4Addr from, Ipv4Addr to, std::uint8_t type, std::uint8_t code) {
    FrameSpec s = error_from_outside(from, to, type, code);
    s.src_mac = kCMac;
    s.dst_mac = kInsidePortMac;
    return s;
}

FrameSpec flow_spec(Protocol proto) {
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

FrameSpec with_ttl(FrameSpec s, std::uint8_t ttl) {
    s.ttl = ttl;
    return s;
}

std::vector<SessionView> sessions(Nat& nat, Tick now) {
    std::vector<SessionView> out;
    std::uint32_t cursor = 0;
    std::uint64_t flushed = 0;
    while (!nat.translator().walk_sessions({}, false, now, cursor, 1024, out, 1024, flushed)) {
    }
    return out;
}

// ---- parsing the quote (RFC 5508 REQ-3, REQ-10) -------------------------------------------

TEST(IcmpErrorParse, Req10EachErrorTypeQuotingUdpTcpAndEcho) {
    for (std::uint8_t type : {kIcmpDestUnreachable, kIcmpTimeExceeded, kIcmpParameterProblem}) {
        for (Protocol proto : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
            SCOPED_TRACE(testing::Message() << int{type} << " " << protocol_name(proto));
            FrameSpec quoted = flow_spec(proto);
            quoted.src = kX;
            quoted.src_port = 50001;
            quoted.icmp_id = 50001;
            const Frame f = test::build_icmp_error(error_from_outside(kRouter, kX, type, 1),
                                                   test::build_frame(quoted));
            const ParsedPacket p = parse(f);
            ASSERT_EQ(p.kind, FrameKind::ipv4) << counter_name(p.drop_reason);
            EXPECT_EQ(p.proto, Protocol::icmp);
            EXPECT_EQ(p.icmp_type, type);
            EXPECT_TRUE(p.icmp_error);
            EXPECT_EQ(p.src, kRouter);
            EXPECT_EQ(p.dst, kX);
            EXPECT_EQ(p.inner_l3, kEth + 20 + 8);
            EXPECT_EQ(p.inner_l4, kEth + 20 + 8 + 20);
            EXPECT_EQ(p.inner_proto, proto);
            EXPECT_EQ(p.inner_src, kX);
            EXPECT_EQ(p.inner_dst, kA1);
            EXPECT_EQ(p.inner_src_port, 50001);
            const std::uint16_t remote = proto == Protocol::udp   ? 53
                                         : proto == Protocol::tcp ? 443
                                                                  : 50001;
            EXPECT_EQ(p.inner_dst_port, remote);
            // Ownership looks at (E, e): dst and dst_port (see packet.hpp).
            EXPECT_EQ(p.dst_port, 50001);
            EXPECT_EQ(p.src_port, remote);
        }
    }
}

TEST(IcmpErrorParse, Req3QuotedIpOptionsAreSkipped) {
    FrameSpec quoted = udp_from(kX, 50000, kA1, 53);
    quoted.ip_options = 12;
    const Frame f = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3),
                                           test::build_frame(quoted), 20 + 12 + 8);
    const ParsedPacket p = parse(f);
    ASSERT_EQ(p.kind, FrameKind::ipv4) << counter_name(p.drop_reason);
    EXPECT_EQ(p.inner_l4, kEth + 20 + 8 + 32);
    EXPECT_EQ(p.inner_src_port, 50000);
    EXPECT_EQ(p.inner_dst_port, 53);
}

TEST(IcmpErrorParse, Req3TruncatedQuoteIsDropped) {
    const Frame quoted = test::build_frame(udp_from(kX, 50000, kA1, 53));
    for (std::size_t len = 1; len < 28; ++len) {
        const Frame f = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), quoted, len);
        EXPECT_EQ(parse(f).drop_reason, Counter::drop_icmp_error_truncated) << len;
        EXPECT_EQ(parse(f).kind, FrameKind::dropped) << len;
    }
    // The quoted header claims options the quote does not hold.
    Frame cut = quoted;
    cut[kEth] = 0x46;
    test::put16(cut, kEth + 10, 0);
    test::put16(cut, kEth + 10, test::expected_ip_checksum(cut));
    EXPECT_EQ(parse(test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), cut, 28 + 3))
                  .drop_reason,
              Counter::drop_icmp_error_truncated);
    // IHL 4 and version 6 are no IPv4 header either.
    for (std::uint8_t first : {0x44, 0x65}) {
        Frame bad = quoted;
        bad[kEth] = first;
        EXPECT_EQ(
            parse(test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), bad)).drop_reason,
            Counter::drop_icmp_error_truncated);
    }
    // 20 + 8 bytes are enough (RFC 792).
    EXPECT_EQ(parse(test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), quoted, 28)).kind,
              FrameKind::ipv4);
}

TEST(IcmpErrorParse, Req3BadIcmpChecksumIsDropped) {
    Frame f = test::build_icmp_error(error_from_outside(kRouter, kX, 11, 0),
                                     test::build_frame(udp_from(kX, 50000, kA1, 53)));
    f[kEth + 20 + 3] ^= 0x01;
    EXPECT_EQ(parse(f).kind, FrameKind::dropped);
    EXPECT_EQ(parse(f).drop_reason, Counter::drop_icmp_error_bad_checksum);
    // A changed quote byte breaks it too.
    Frame g = test::build_icmp_error(error_from_outside(kRouter, kX, 11, 0),
                                     test::build_frame(udp_from(kX, 50000, kA1, 53)));
    g[g.size() - 1] ^= 0x40;
    EXPECT_EQ(parse(g).drop_reason, Counter::drop_icmp_error_bad_checksum);
}

TEST(IcmpErrorParse, Req3BadQuotedIpChecksumIsDropped) {
    Frame quoted = test::build_frame(udp_from(kX, 50000, kA1, 53));
    quoted[kEth + 11] ^= 0x01;
    // The ICMP checksum is computed over the bad quote, so only the quoted header is wrong.
    const Frame f = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 1), quoted);
    EXPECT_EQ(parse(f).kind, FrameKind::dropped);
    EXPECT_EQ(parse(f).drop_reason, Counter::drop_icmp_error_bad_inner_checksum);
}

TEST(IcmpErrorParse, Req3QuotedTransportChecksumIsNotValidated) {
    Frame quoted = test::build_frame(udp_from(kX, 50000, kA1, 53));
    quoted[test::l4_of(quoted) + 6] ^= 0xff;
    const Frame f = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), quoted);
    EXPECT_EQ(parse(f).kind, FrameKind::ipv4);
}

TEST(IcmpErrorParse, QuotesWithNothingToTranslateAreUnsupported) {
    const FrameSpec outer = error_from_outside(kRouter, kX, 3, 1);
    // An error about an error.
    const Frame inner_error = test::build_icmp_error(error_from_outside(kX, kA1, 3, 3),
                                                     test::build_frame(udp_from(kA1, 1, kX, 2)));
    EXPECT_EQ(parse(test::build_icmp_error(outer, inner_error)).drop_reason,
              Counter::drop_icmp_error_unsupported);
    // Another protocol.
    FrameSpec gre = udp_from(kX, 50000, kA1, 53);
    gre.ip_protocol_override = 47;
    EXPECT_EQ(parse(test::build_icmp_error(outer, test::build_frame(gre))).drop_reason,
              Counter::drop_icmp_error_unsupported);
    // A later fragment: its first 8 bytes are data, not ports.
    FrameSpec later = udp_from(kX, 50000, kA1, 53);
    later.frag = 0x0010;
    EXPECT_EQ(parse(test::build_icmp_error(outer, test::build_frame(later))).drop_reason,
              Counter::drop_icmp_error_unsupported);
    // The first fragment has the ports: translated.
    FrameSpec first = udp_from(kX, 50000, kA1, 53);
    first.frag = 0x2000;
    EXPECT_EQ(parse(test::build_icmp_error(outer, test::build_frame(first))).kind, FrameKind::ipv4);
}

// ---- from outside (RFC 5508 REQ-4, RFC 4787 REQ-12, RFC 5382 REQ-9) -------------------------

struct QuoteCase {
    Protocol proto;
    std::size_t quote; // bytes of the quoted packet (0: all of it)
};

// A router reports our translated packet E:e -> R:r; the subscriber gets the error with the
// quote restored to I:i -> R:r, byte for byte what a from-scratch build gives, so the quoted
// IPv4 checksum, the quoted transport checksum (when quoted), the ICMP checksum and the outer
// IPv4 checksum are all right. Outer source, type and code stay.
TEST(IcmpErrorOut2In, Req4RestoresQuoteForUdpTcpAndEcho) {
    const QuoteCase cases[] = {
        {Protocol::udp, 0},  {Protocol::udp, 28},  {Protocol::tcp, 0},  {Protocol::tcp, 28},
        {Protocol::tcp, 36}, {Protocol::tcp, 38},  {Protocol::icmp, 0}, {Protocol::icmp, 28},
        {Protocol::udp, 30}, {Protocol::icmp, 33},
    };
    for (const QuoteCase& c : cases) {
        SCOPED_TRACE(testing::Message() << protocol_name(c.proto) << " quote " << c.quote);
        Nat nat(icmp_config());
        const FrameSpec out_spec = flow_spec(c.proto);
        Frame sent = test::build_frame(out_spec);
        ASSERT_EQ(nat.in2out(sent), Verdict::forward);

        const FrameSpec outer = error_from_outside(kRouter, kX, 3, 13);
        Frame error = test::build_icmp_error(outer, sent, c.quote);
        ASSERT_EQ(nat.out2in(error), Verdict::forward);

        FrameSpec want_outer = outer;
        want_outer.dst = kC;
        want_outer.ttl = static_cast<std::uint8_t>(outer.ttl - 1);
        want_outer.dst_mac = kCMac;
        want_outer.src_mac = kInsidePortMac;
        const Frame original_as_quoted = test::build_frame(with_ttl(out_spec, 63));
        EXPECT_EQ(error, test::build_icmp_error(want_outer, original_as_quoted, c.quote));
        EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                                  {Counter::mappings_created, 1},
                                                  {Counter::sessions_created, 1},
                                                  {Counter::icmp_errors_out2in, 1}}));
    }
}

// RFC 768: the subscriber sent no UDP checksum; the quote keeps none.
TEST(IcmpErrorOut2In, Req4UdpChecksumZeroStaysZero) {
    Nat nat(icmp_config());
    FrameSpec out_spec = udp_from(kC, 4000, kA1, 53); // a port that is not kept
    out_spec.udp_checksum = false;
    Frame sent = test::build_frame(out_spec);
    ASSERT_EQ(nat.in2out(sent), Verdict::forward);
    ASSERT_NE(source_of(sent).port, 4000);
    const FrameSpec outer = error_from_outside(kA1, kX, 3, 3);
    Frame error = test::build_icmp_error(outer, sent);
    ASSERT_EQ(nat.out2in(error), Verdict::forward);
    FrameSpec want_outer = outer;
    want_outer.dst = kC;
    want_outer.ttl = 63;
    want_outer.dst_mac = kCMac;
    want_outer.src_mac = kInsidePortMac;
    EXPECT_EQ(error, test::build_icmp_error(want_outer, test::build_frame(with_ttl(out_spec, 63))));
    EXPECT_EQ(test::get16(error, kEth + 20 + 8 + 20 + 6), 0);
}

// Filtering is for packets of a flow, not for errors: any router may report (REQ-4), also
// under address-and-port-dependent filtering.
TEST(IcmpErrorOut2In, Req4AnyRouterMayReportEvenUnderApdf) {
    Nat nat(icmp_config(FilteringMode::address_port_dependent));
    Frame sent = test::build_frame(flow_spec(Protocol::udp));
    ASSERT_EQ(nat.in2out(sent), Verdict::forward);
    Frame error = test::build_icmp_error(error_from_outside(kRouter, kX, 11, 0), sent, 28);
    EXPECT_EQ(nat.out2in(error), Verdict::forward);
    EXPECT_EQ(test::ip_dst(error), kC);
    EXPECT_EQ(nat.counters().get(Counter::icmp_errors_out2in), 1u);
    EXPECT_EQ(nat.counters().get(Counter::drop_filtered), 0u);
}

TEST(IcmpErrorOut2In, Req4NoMappingOrNoSessionIsDropped) {
    Nat nat(icmp_config());
    Frame sent = test::build_frame(flow_spec(Protocol::udp));
    ASSERT_EQ(nat.in2out(sent), Verdict::forward);
    const Endpoint ext = source_of(sent);

    // A port with no mapping.
    Frame other = test::build_frame(udp_from(kX, ext.port + 2, kA1, 53));
    Frame e1 = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), other);
    EXPECT_EQ(nat.out2in(e1), Verdict::drop);
    // The mapping's port on another protocol.
    FrameSpec tcp = inside(test::tcp_spec(kX, ext.port, kA1, 53));
    Frame e2 =
        test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), test::build_frame(tcp));
    EXPECT_EQ(nat.out2in(e2), Verdict::drop);
    // Quoting a packet that left from another address than the error came to.
    Frame moved = test::build_frame(udp_from(Ipv4Addr{198, 18, 0, 7}, ext.port, kA1, 53));
    Frame e3 = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), moved);
    EXPECT_EQ(nat.out2in(e3), Verdict::drop);
    // The mapping, but no session with that remote (RFC 5508 REQ-4: the flow must be ours).
    Frame elsewhere = test::build_frame(udp_from(kX, ext.port, kA2, 53));
    Frame e4 = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), elsewhere);
    EXPECT_EQ(nat.out2in(e4), Verdict::drop);
    Frame other_port = test::build_frame(udp_from(kX, ext.port, kA1, 54));
    Frame e5 = test::build_icmp_error(error_from_outside(kRouter, kX, 3, 3), other_port);
    EXPECT_EQ(nat.out2in(e5), Verdict::drop);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::drop_icmp_error_no_mapping, 3},
                                              {Counter::drop_icmp_error_no_session, 2}}));
}

// ---- from a subscriber (RFC 5508 REQ-5) ---------------------------------------------------

// The subscriber reports a packet it received (R:r -> I:i, e.g. port unreachable); the error
// leaves from E about R:r -> E:e, exactly as the server sent it (less one TTL, ours).
TEST(IcmpErrorIn2Out, Req5HidesSubscriberForUdpTcpAndEcho) {
    for (const QuoteCase& c : {QuoteCase{Protocol::udp, 0}, QuoteCase{Protocol::udp, 28},
                               QuoteCase{Protocol::tcp, 0}, QuoteCase{Protocol::tcp, 28},
                               QuoteCase{Protocol::tcp, 38}, QuoteCase{Protocol::icmp, 0}}) {
        SCOPED_TRACE(testing::Message() << protocol_name(c.proto) << " quote " << c.quote);
        Nat nat(icmp_config());
        const FrameSpec out_spec = flow_spec(c.proto);
        const auto ext = nat.send_out(out_spec);
        ASSERT_TRUE(ext.has_value());
        const FrameSpec server_spec = reply_to(out_spec, *ext);
        Frame delivered = test::build_frame(server_spec);
        ASSERT_EQ(nat.out2in(delivered), Verdict::forward);

        const FrameSpec outer = error_from_inside(kC, kA1, 3, 3);
        Frame error = test::build_icmp_error(outer, delivered, c.quote);
        ASSERT_EQ(nat.in2out(error), Verdict::forward);

        FrameSpec want_outer = outer;
        want_outer.src = kX;
        want_outer.ttl = 63;
        want_outer.dst_mac = kNextHopMac;
        want_outer.src_mac = kOutsidePortMac;
        const Frame as_sent = test::build_frame(with_ttl(server_spec, 63));
        EXPECT_EQ(error, test::build_icmp_error(want_outer, as_sent, c.quote));
        EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                                  {Counter::out2in_translated, 1},
                                                  {Counter::mappings_created, 1},
                                                  {Counter::sessions_created, 1},
                                                  {Counter::icmp_errors_in2out, 1}}));
    }
}

TEST(IcmpErrorIn2Out, Req5NoSessionIsDroppedAndCreatesNothing) {
    Nat nat(icmp_config());
    const Frame unknown = test::build_frame(test::udp_spec(kA1, 53, kC, 40000));
    Frame error = test::build_icmp_error(error_from_inside(kC, kA1, 3, 3), unknown);
    EXPECT_EQ(nat.in2out(error), Verdict::drop);
    EXPECT_EQ(nat.translator().live_mappings(), 0u);
    EXPECT_EQ(nat.translator().live_subscribers(), 0u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_icmp_error_no_session, 1}}));
}

// RFC 5508 REQ-5 asks for an active mapping: a packet delivered through the mapping from a
// remote with no session (inbound packets create none) is reported back like any other. The
// filtering mode says which remotes the mapping delivers without a session: under
// endpoint-independent filtering any, under address-dependent any port of a host the
// subscriber has sent to, under address-and-port-dependent none.
TEST(IcmpErrorIn2Out, Req5MappingWithoutSessionFollowsFiltering) {
    struct Case {
        FilteringMode mode;
        Ipv4Addr remote;
        bool translated;
    };
    for (const Case& c : {Case{FilteringMode::endpoint_independent, kA2, true},
                          Case{FilteringMode::address_dependent, kA1, true},
                          Case{FilteringMode::address_dependent, kA2, false},
                          Case{FilteringMode::address_port_dependent, kA1, false}}) {
        SCOPED_TRACE(testing::Message()
                     << static_cast<int>(c.mode) << " from " << c.remote.value());
        Nat nat(icmp_config(c.mode));
        const FrameSpec out_spec = flow_spec(Protocol::udp); // C:40000 -> A1:53
        const auto ext = nat.send_out(out_spec);
        ASSERT_TRUE(ext.has_value());
        FrameSpec other = reply_to(out_spec, *ext);
        other.src = c.remote;
        other.src_port = 5005; // no session: C never sent to remote:5005
        Frame delivered = test::build_frame(other);
        const Verdict in = nat.out2in(delivered);
        EXPECT_EQ(in, c.translated ? Verdict::forward : Verdict::drop);
        Frame as_received = c.translated ? delivered : test::build_frame([&] {
            FrameSpec s = other; // what C would have received
            s.dst = kC;
            s.dst_port = 40000;
            s.ttl = 63;
            return s;
        }());

        const FrameSpec outer = error_from_inside(kC, c.remote, 3, 3);
        Frame error = test::build_icmp_error(outer, as_received);
        EXPECT_EQ(nat.in2out(error), c.translated ? Verdict::forward : Verdict::drop);
        EXPECT_EQ(nat.counters().get(Counter::icmp_errors_in2out), c.translated ? 1u : 0u);
        EXPECT_EQ(nat.counters().get(Counter::drop_icmp_error_no_session), c.translated ? 0u : 1u);
        EXPECT_EQ(nat.counters().get(Counter::sessions_created), 1u); // the error made none
        if (c.translated) {
            FrameSpec want_outer = outer;
            want_outer.src = kX;
            want_outer.ttl = 63;
            want_outer.dst_mac = kNextHopMac;
            want_outer.src_mac = kOutsidePortMac;
            EXPECT_EQ(error,
                      test::build_icmp_error(want_outer, test::build_frame(with_ttl(other, 63))));
        }
    }
}

// An error and the packet that opens its session in one burst: the error finds it.
TEST(IcmpErrorIn2Out, Req5SessionMadeEarlierInTheBurst) {
    Nat nat(icmp_config());
    const FrameSpec out_spec = flow_spec(Protocol::udp);
    const Frame server = test::build_frame(test::udp_spec(kA1, 53, kC, 40000));
    std::vector<Frame> frames = {
        test::build_frame(out_spec),
        test::build_icmp_error(error_from_inside(kC, kA1, 3, 3), server),
    };
    const auto v = nat.burst(frames, true);
    EXPECT_EQ(v, (std::vector<Verdict>{Verdict::forward, Verdict::forward}));
    EXPECT_EQ(test::ip_src(frames[1]), kX);
}

// ---- errors leave state alone (RFC 5508 REQ-6, RFC 4787 REQ-12, RFC 5382 REQ-10) ----------

TEST(IcmpErrorState, Req6ErrorsNeitherRefreshNorEndNorMoveTcpState) {
    Config config = icmp_config();
    config.timeouts.inbound_refresh = true; // even where inbound packets refresh
    Nat nat(config);
    const FrameSpec syn = flow_spec(Protocol::tcp);
    const auto ext = nat.send_out(syn, 16);
    ASSERT_TRUE(ext.has_value());
    FrameSpec synack = reply_to(syn, *ext);
    synack.tcp_flags = 0x12;
    ASSERT_TRUE(nat.send_in(synack, 16).has_value());
    ASSERT_EQ(sessions(nat, 16).size(), 1u);
    ASSERT_TRUE(sessions(nat, 16)[0].established);

    // Errors both ways, quoting an RST and a FIN of the connection: the quoted flags are not
    // the connection's (RFC 5382 REQ-10).
    FrameSpec rst = inside(test::tcp_spec(kX, ext->port, kA1, 443));
    rst.tcp_flags = 0x04;
    rst.ttl = 63;
    const Tick later = 16 * 600;
    Frame from_router =
        test::build_icmp_error(error_from_outside(kRouter, kX, 3, 1), test::build_frame(rst), 40);
    ASSERT_EQ(nat.out2in(from_router, later), Verdict::forward);
    FrameSpec fin = synack;
    fin.tcp_flags = 0x11;
    fin.dst = kC;
    fin.dst_port = 40000;
    fin.ttl = 63;
    Frame from_subscriber =
        test::build_icmp_error(error_from_inside(kC, kA1, 3, 3), test::build_frame(fin));
    ASSERT_EQ(nat.in2out(from_subscriber, later), Verdict::forward);

    const auto after = sessions(nat, later);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].idle, later - 16) << "an error refreshed the session";
    EXPECT_TRUE(after[0].established) << "an error moved the TCP state";
    EXPECT_EQ(nat.translator().live_mappings(), 1u);
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::out2in_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::icmp_errors_out2in, 1},
                                              {Counter::icmp_errors_in2out, 1}}));
}

TEST(IcmpErrorState, Req6ErrorAboutAnEchoDoesNotKeepItAlive) {
    Nat nat(icmp_config());
    Frame ping = test::build_frame(flow_spec(Protocol::icmp));
    ASSERT_EQ(nat.in2out(ping, 16), Verdict::forward);
    const Tick timeout = 60 * kTicksPerSecond;
    for (Tick t = 16; t < 16 + timeout; t += 16 * 10) {
        Frame error = test::build_icmp_error(error_from_outside(kRouter, kX, 11, 0), ping, 28);
        ASSERT_EQ(nat.out2in(error, t), Verdict::forward);
        nat.translator().expire(t);
    }
    EXPECT_EQ(nat.translator().live_sessions(), 1u);
    for (Tick t = 16 + timeout; t < 16 + timeout + 64; ++t) {
        nat.translator().expire(t);
    }
    EXPECT_EQ(nat.translator().live_sessions(), 0u) << "the echo session outlived its timeout";
    EXPECT_EQ(nat.counters().get(Counter::expired_icmp), 1u);
}

// ---- TTL expiry (RFC 5508 section 7.2) ----------------------------------------------------

// What write_icmp_error sends: IPv4 from `from` (TOS 0xc0, id 0, no DF, TTL 64), 11/0, quoting
// the whole original packet.
Frame time_exceeded(Ipv4Addr from, Ipv4Addr to, const MacAddr& dst_mac, const MacAddr& src_mac,
                    const Frame& original) {
    FrameSpec s;
    s.src = from;
    s.dst = to;
    s.dst_mac = dst_mac;
    s.src_mac = src_mac;
    s.tos = 0xc0;
    s.ip_id = 0;
    s.frag = 0;
    s.ttl = 64;
    s.icmp_type = kIcmpTimeExceeded;
    s.icmp_code = 0;
    return test::build_icmp_error(s, original);
}

TEST(TimeExceeded, S72In2OutAnsweredFromTheGatewayAndOpensNothing) {
    for (Protocol proto : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
        for (std::uint8_t ttl : {1, 0}) {
            SCOPED_TRACE(testing::Message() << protocol_name(proto) << " ttl " << int{ttl});
            Nat nat(icmp_config());
            nat.set_headroom_for_replies(kReplyRoom);
            const Frame original = test::build_frame(with_ttl(flow_spec(proto), ttl));
            Frame f = original;
            ASSERT_EQ(nat.in2out(f), Verdict::reply);
            EXPECT_EQ(f, time_exceeded(kGateway, kC, kCMac, kInsidePortMac, original));
            EXPECT_TRUE(test::checksums_verify(f));
            EXPECT_EQ(nat.translator().live_mappings(), 0u);
            EXPECT_EQ(nat.translator().live_sessions(), 0u);
            EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_ttl_expired, 1},
                                                      {Counter::icmp_time_exceeded_sent, 1}}));
        }
    }
}

TEST(TimeExceeded, S72Out2InAnsweredFromThePoolAddressWhenDeliverable) {
    Nat nat(icmp_config(FilteringMode::address_port_dependent));
    nat.set_headroom_for_replies(kReplyRoom);
    const FrameSpec out_spec = flow_spec(Protocol::udp);
    const auto ext = nat.send_out(out_spec);
    ASSERT_TRUE(ext.has_value());
    const Frame original = test::build_frame(with_ttl(reply_to(out_spec, *ext), 1));
    Frame f = original;
    ASSERT_EQ(nat.out2in(f), Verdict::reply);
    EXPECT_EQ(f, time_exceeded(kX, kA1, kNextHopMac, kOutsidePortMac, original));

    // Not deliverable: no mapping, or refused by filtering. Dropped for that, no reply.
    Frame no_mapping = test::build_frame(with_ttl(
        from_outside(Protocol::udp, {kA1, 53}, {kX, static_cast<std::uint16_t>(ext->port + 2)}),
        1));
    EXPECT_EQ(nat.out2in(no_mapping), Verdict::drop);
    Frame filtered = test::build_frame(with_ttl(from_outside(Protocol::udp, {kA2, 53}, *ext), 1));
    EXPECT_EQ(nat.out2in(filtered), Verdict::drop);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::drop_ttl_expired, 1},
                                              {Counter::icmp_time_exceeded_sent, 1},
                                              {Counter::drop_no_mapping, 1},
                                              {Counter::drop_filtered, 1}}));
}

// The expired packet is not delivered, so it moves nothing: not the session's clock (with
// inbound refresh on), not the TCP state.
TEST(TimeExceeded, S72ExpiredInboundPacketChangesNoState) {
    Config config = icmp_config();
    config.timeouts.inbound_refresh = true;
    Nat nat(config);
    nat.set_headroom_for_replies(kReplyRoom);
    const FrameSpec syn = flow_spec(Protocol::tcp);
    const auto ext = nat.send_out(syn, 16);
    ASSERT_TRUE(ext.has_value());
    FrameSpec synack = reply_to(syn, *ext);
    synack.tcp_flags = 0x12;
    Frame f = test::build_frame(with_ttl(synack, 1));
    ASSERT_EQ(nat.out2in(f, 160), Verdict::reply);
    const auto s = sessions(nat, 160);
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].idle, 144u);
    EXPECT_FALSE(s[0].established);
}

// Never an error about an ICMP error: an expired error is dropped, both ways.
TEST(TimeExceeded, S72NoErrorAboutAnError) {
    Nat nat(icmp_config());
    nat.set_headroom_for_replies(kReplyRoom);
    const FrameSpec out_spec = flow_spec(Protocol::udp);
    Frame sent = test::build_frame(out_spec);
    ASSERT_EQ(nat.in2out(sent), Verdict::forward);
    Frame delivered = test::build_frame(reply_to(out_spec, source_of(sent)));
    ASSERT_EQ(nat.out2in(delivered), Verdict::forward);

    FrameSpec outer = error_from_outside(kRouter, kX, 3, 3);
    outer.ttl = 1;
    Frame in = test::build_icmp_error(outer, sent);
    EXPECT_EQ(nat.out2in(in), Verdict::drop);
    FrameSpec inner = error_from_inside(kC, kA1, 3, 3);
    inner.ttl = 1;
    Frame out = test::build_icmp_error(inner, delivered);
    EXPECT_EQ(nat.in2out(out), Verdict::drop);
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::in2out_translated, 1},
                                              {Counter::out2in_translated, 1},
                                              {Counter::mappings_created, 1},
                                              {Counter::sessions_created, 1},
                                              {Counter::drop_ttl_expired, 2}}));
}

// The one ICMP token bucket (icmp.unreachable_rate per second) also paces Time Exceeded.
TEST(TimeExceeded, S72RateLimitedByTheIcmpBucket) {
    Config config = icmp_config();
    config.icmp.unreachable_rate = 1;
    Nat nat(config);
    nat.set_headroom_for_replies(kReplyRoom);
    std::vector<Frame> frames;
    for (int i = 0; i < 3; ++i) {
        frames.push_back(test::build_frame(with_ttl(udp_from(kC, 40000 + i, kA1, 53), 1)));
    }
    EXPECT_EQ(nat.burst(frames, true, 16),
              (std::vector<Verdict>{Verdict::reply, Verdict::drop, Verdict::drop}));
    Frame next = test::build_frame(with_ttl(udp_from(kC, 40000, kA1, 53), 1));
    EXPECT_EQ(nat.in2out(next, 16 + kTicksPerSecond), Verdict::reply) << "refilled after 1 s";
    EXPECT_TRUE(counters_are(nat.counters(), {{Counter::drop_ttl_expired, 4},
                                              {Counter::icmp_time_exceeded_sent, 2},
                                              {Counter::icmp_time_exceeded_rate_limited, 2}}));

    // Rate 0: no ICMP errors are originated at all.
    config.icmp.unreachable_rate = 0;
    Nat silent(config);
    silent.set_headroom_for_replies(kReplyRoom);
    Frame f = test::build_frame(with_ttl(udp_from(kC, 40000, kA1, 53), 1));
    EXPECT_EQ(silent.in2out(f), Verdict::drop);
}

} // namespace
} // namespace ephemera
