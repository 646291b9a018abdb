// parse_frame(): what it accepts, with which fields, and for each malformed frame the counter
// that names why it was dropped. Ends with a fuzz run that, in the sanitizer build, proves it
// never reads past the frame (every frame sits in a heap buffer of exactly its length).
#include "packet_builder.hpp"

#include "ephemera/counters.hpp"
#include "ephemera/packet.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

namespace ephemera {
namespace {

using test::Frame;
using test::FrameSpec;
using test::kEth;
using test::Rng;
using test::uniform;

const Ipv4Addr kClient{100, 64, 1, 2};
const Ipv4Addr kServer{198, 19, 0, 1};

// Recomputes the IPv4 header checksum after a test changed the header, so that the frame has
// exactly one thing wrong with it.
void refresh_ip_checksum(Frame& f) {
    test::put16(f, kEth + 10, 0);
    test::put16(f, kEth + 10, test::expected_ip_checksum(f));
}

ParsedPacket parse(const Frame& f) {
    return parse_frame(std::span<const std::uint8_t>(f.data(), f.size()));
}

// A ParsedPacket printer for failure messages.
::testing::AssertionResult dropped_for(const ParsedPacket& p, Counter reason) {
    if (p.kind != FrameKind::dropped) {
        return ::testing::AssertionFailure() << "not dropped (kind " << static_cast<int>(p.kind)
                                             << "), expected " << counter_name(reason);
    }
    if (p.drop_reason != reason) {
        return ::testing::AssertionFailure() << "dropped for " << counter_name(p.drop_reason)
                                             << ", expected " << counter_name(reason);
    }
    return ::testing::AssertionSuccess();
}

// ---- valid frames -------------------------------------------------------------------------

TEST(ParseValid, Udp) {
    const FrameSpec spec = test::udp_spec(kClient, 40001, kServer, 53);
    const Frame f = test::build_frame(spec);
    const ParsedPacket p = parse(f);
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    EXPECT_EQ(p.proto, Protocol::udp);
    EXPECT_EQ(p.l3, kEth);
    EXPECT_EQ(p.l4, kEth + 20);
    EXPECT_EQ(p.ip_total_len, f.size() - kEth);
    EXPECT_EQ(p.src, kClient);
    EXPECT_EQ(p.dst, kServer);
    EXPECT_EQ(p.src_port, 40001);
    EXPECT_EQ(p.dst_port, 53);
}

TEST(ParseValid, UdpWithoutChecksum) {
    FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
    spec.udp_checksum = false;
    const ParsedPacket p = parse(test::build_frame(spec));
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    EXPECT_EQ(p.src_port, 1);
    EXPECT_EQ(p.dst_port, 2);
}

TEST(ParseValid, IpOptionsMoveTheTransportHeader) {
    for (std::size_t options = 4; options <= 40; options += 4) {
        FrameSpec spec = test::udp_spec(kClient, 5000, kServer, 6000);
        spec.ip_options = options;
        const Frame f = test::build_frame(spec);
        const ParsedPacket p = parse(f);
        ASSERT_EQ(p.kind, FrameKind::ipv4) << options;
        EXPECT_EQ(p.l4, kEth + 20 + options);
        EXPECT_EQ(p.src_port, 5000);
        EXPECT_EQ(p.dst_port, 6000);
    }
}

TEST(ParseValid, EthernetPaddingIsNotPayload) {
    FrameSpec spec = test::udp_spec(kClient, 7, kServer, 9);
    spec.payload.clear();
    spec.pad_to = 60; // 42 bytes of headers padded to the Ethernet minimum
    const Frame f = test::build_frame(spec);
    ASSERT_EQ(f.size(), 60u);
    const ParsedPacket p = parse(f);
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    EXPECT_EQ(p.ip_total_len, 28);
}

TEST(ParseValid, Tcp) {
    for (std::size_t options : {0u, 12u, 40u}) {
        FrameSpec spec = test::tcp_spec(kClient, 51000, kServer, 443);
        spec.tcp_options = options;
        spec.tcp_flags = 0x12; // SYN+ACK
        const Frame f = test::build_frame(spec);
        const ParsedPacket p = parse(f);
        ASSERT_EQ(p.kind, FrameKind::ipv4) << options;
        EXPECT_EQ(p.proto, Protocol::tcp);
        EXPECT_EQ(p.src_port, 51000);
        EXPECT_EQ(p.dst_port, 443);
        EXPECT_EQ(p.tcp_flags, 0x12);
        EXPECT_EQ(p.l4, kEth + 20);
    }
}

// RFC 5508 REQ-1: the echo identifier names the flow the way a port does.
TEST(ParseValid, IcmpEchoRequestAndReply) {
    for (std::uint8_t type : {kIcmpEchoRequest, kIcmpEchoReply}) {
        const Frame f = test::build_frame(test::icmp_spec(kClient, kServer, 0xbeef, type));
        const ParsedPacket p = parse(f);
        ASSERT_EQ(p.kind, FrameKind::ipv4);
        EXPECT_EQ(p.proto, Protocol::icmp);
        EXPECT_EQ(p.icmp_type, type);
        EXPECT_EQ(p.src_port, 0xbeef);
        EXPECT_EQ(p.dst_port, 0xbeef);
        EXPECT_EQ(p.src, kClient);
        EXPECT_EQ(p.dst, kServer);
    }
}

TEST(ParseValid, ArpIsHandedToL2) {
    Frame f(42, 0);
    test::put16(f, 12, kEtherTypeArp);
    const ParsedPacket p = parse(f);
    EXPECT_EQ(p.kind, FrameKind::arp);
    EXPECT_EQ(p.l3, kEth);
}

// ---- malformed frames ---------------------------------------------------------------------

Frame valid_udp() {
    return test::build_frame(test::udp_spec(kClient, 40000, kServer, 53));
}

TEST(ParseDrops, FrameShorterThanEthernetHeader) {
    const Frame full = valid_udp();
    for (std::size_t len = 0; len < kEth; ++len) {
        const Frame f(full.begin(), full.begin() + static_cast<long>(len));
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_truncated)) << "length " << len;
    }
}

TEST(ParseDrops, NonIpv4EtherType) {
    for (std::uint16_t type : {0x86dd, 0x8100, 0x88a8, 0x0000, 0x0801, 0xffff}) {
        Frame f = valid_udp();
        test::put16(f, 12, type);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_not_ipv4)) << std::hex << type;
    }
}

TEST(ParseDrops, Ipv4HeaderCut) {
    const Frame full = valid_udp();
    for (std::size_t len = kEth; len < kEth + 20; ++len) {
        const Frame f(full.begin(), full.begin() + static_cast<long>(len));
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_truncated)) << "length " << len;
    }
}

TEST(ParseDrops, VersionNot4) {
    for (unsigned version : {0u, 5u, 6u, 15u}) {
        Frame f = valid_udp();
        f[kEth] = static_cast<std::uint8_t>(version << 4 | 5);
        refresh_ip_checksum(f);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_bad_version)) << version;
    }
}

TEST(ParseDrops, IhlBelow5) {
    for (unsigned ihl = 0; ihl < 5; ++ihl) {
        Frame f = valid_udp();
        f[kEth] = static_cast<std::uint8_t>(0x40 | ihl);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_bad_ihl)) << ihl;
    }
}

TEST(ParseDrops, IhlBeyondFrame) {
    // 20-byte IP header + 8-byte UDP header: IHL 8..15 (32..60 bytes) runs past the frame.
    FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
    spec.payload.clear();
    const Frame base = test::build_frame(spec);
    ASSERT_EQ(base.size(), kEth + 28);
    for (unsigned ihl = 8; ihl <= 15; ++ihl) {
        Frame f = base;
        f[kEth] = static_cast<std::uint8_t>(0x40 | ihl);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_truncated)) << ihl;
    }
}

TEST(ParseDrops, TotalLengthBeyondFrame) {
    const Frame base = valid_udp();
    const auto ip_len = static_cast<std::uint16_t>(base.size() - kEth);
    for (std::uint16_t total : {static_cast<std::uint16_t>(ip_len + 1),
                                static_cast<std::uint16_t>(ip_len + 100), std::uint16_t{0xffff}}) {
        Frame f = base;
        test::put16(f, kEth + 2, total);
        refresh_ip_checksum(f);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_bad_total_length)) << total;
    }
}

TEST(ParseDrops, TotalLengthBelowHeaderLength) {
    for (std::uint16_t total : {0, 1, 19}) {
        Frame f = valid_udp();
        test::put16(f, kEth + 2, total);
        refresh_ip_checksum(f);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_bad_total_length)) << total;
    }
    // With options: 24 bytes of header, total length 20.
    FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
    spec.ip_options = 4;
    Frame f = test::build_frame(spec);
    test::put16(f, kEth + 2, 20);
    refresh_ip_checksum(f);
    EXPECT_TRUE(dropped_for(parse(f), Counter::drop_bad_total_length));
}

TEST(ParseDrops, BadIpChecksum) {
    Rng rng(42);
    for (int i = 0; i < 100; ++i) {
        Frame f = valid_udp();
        const auto at = kEth + uniform<std::size_t>(rng, 4, 19); // not length, not version
        const auto flip = uniform<std::uint8_t>(rng, 1, 255);
        f[at] ^= flip;
        if (test::get16(f, kEth + 10) == test::expected_ip_checksum(f)) {
            continue; // the flip happened to keep the sum (e.g. 0x00 <-> 0xff in the checksum)
        }
        if (at == kEth + 6 || at == kEth + 7) {
            continue; // a flipped fragment word is another reason to drop
        }
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_bad_ip_checksum)) << "byte " << at;
    }
    Frame zero = valid_udp();
    test::put16(zero, kEth + 10, 0);
    EXPECT_TRUE(dropped_for(parse(zero), Counter::drop_bad_ip_checksum));
}

// RFC 4787 REQ-14: pieces of a datagram parse. The first carries its transport header; a later
// one has none, so its ports are 0 and `l4` is where its payload starts.
TEST(ParseFragments, FirstPieceKeepsItsTransportHeader) {
    FrameSpec spec = test::udp_spec(kClient, 1111, kServer, 53);
    spec.payload.assign(16, 0xab); // 8 + 16: a multiple of 8, as every piece but the last
    spec.frag = 0x2000;
    spec.ip_id = 0x7777;
    const ParsedPacket p = parse(test::build_frame(spec));
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    EXPECT_TRUE(p.fragment);
    EXPECT_FALSE(p.later_fragment);
    EXPECT_TRUE(p.more_fragments);
    EXPECT_FALSE(p.dont_fragment);
    EXPECT_EQ(p.ip_id, 0x7777);
    EXPECT_EQ(p.fragment_offset, 0);
    EXPECT_EQ(p.src_port, 1111);
    EXPECT_EQ(p.dst_port, 53);
}

TEST(ParseFragments, LaterPiecesHaveNoPorts) {
    for (std::uint16_t frag : {0x0003, 0x2003, 0x1ff0}) {
        for (Protocol proto : {Protocol::udp, Protocol::tcp, Protocol::icmp}) {
            FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
            spec.proto = proto;
            spec.payload.assign(proto == Protocol::tcp ? 4 : 8, 0x11); // whole L4: 16 or 24
            spec.frag = frag;
            const Frame f = test::build_frame(spec);
            const ParsedPacket p = parse(f);
            ASSERT_EQ(p.kind, FrameKind::ipv4) << std::hex << frag;
            EXPECT_TRUE(p.later_fragment);
            EXPECT_EQ(p.more_fragments, (frag & 0x2000) != 0);
            EXPECT_EQ(p.fragment_offset, (frag & 0x1fff) * 8);
            EXPECT_EQ(p.proto, proto);
            EXPECT_EQ(p.src_port, 0);
            EXPECT_EQ(p.dst_port, 0);
            EXPECT_EQ(p.l4, kEth + 20);
            EXPECT_EQ(ip_payload_length(p), f.size() - kEth - 20);
        }
    }
}

TEST(ParseFragments, MalformedPiecesAreDropped) {
    // Not the last piece, yet not a multiple of 8 bytes (8 + 3).
    FrameSpec odd = test::udp_spec(kClient, 1, kServer, 2);
    odd.payload.assign(3, 0);
    odd.frag = 0x2001;
    EXPECT_TRUE(dropped_for(parse(test::build_frame(odd)), Counter::drop_fragment));
    // Ends beyond 65535 bytes.
    FrameSpec beyond = test::udp_spec(kClient, 1, kServer, 2);
    beyond.payload.assign(8, 0);
    beyond.frag = 0x1fff;
    EXPECT_TRUE(dropped_for(parse(test::build_frame(beyond)), Counter::drop_fragment));
    // RFC 1858: TCP at offset 8 would overwrite the flags the first piece showed.
    FrameSpec overlap = test::udp_spec(kClient, 1, kServer, 2);
    overlap.proto = Protocol::tcp;
    overlap.frag = 0x0001;
    EXPECT_TRUE(dropped_for(parse(test::build_frame(overlap)), Counter::drop_fragment));
    // A later piece of a protocol we do not translate.
    FrameSpec gre = test::udp_spec(kClient, 1, kServer, 2);
    gre.ip_protocol_override = 47;
    gre.frag = 0x0004;
    EXPECT_TRUE(dropped_for(parse(test::build_frame(gre)), Counter::drop_unsupported_protocol));
}

TEST(ParseDrops, DontFragmentAloneIsNoFragment) {
    for (std::uint16_t frag : {0x0000, 0x4000}) {
        FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
        spec.frag = frag;
        const ParsedPacket p = parse(test::build_frame(spec));
        EXPECT_EQ(p.kind, FrameKind::ipv4) << std::hex << frag;
        EXPECT_FALSE(p.fragment);
        EXPECT_EQ(p.dont_fragment, frag == 0x4000);
    }
}

// The IPv4 total length cut below the given transport header length (the frame keeps its
// bytes; the datagram says it ends earlier).
Frame with_l4_length(FrameSpec spec, std::size_t l4_len) {
    Frame f = test::build_frame(spec);
    test::put16(f, kEth + 2, static_cast<std::uint16_t>(20 + l4_len));
    refresh_ip_checksum(f);
    return f;
}

TEST(ParseDrops, UdpShorterThan8) {
    for (std::size_t len = 0; len < 8; ++len) {
        EXPECT_TRUE(dropped_for(parse(with_l4_length(test::udp_spec(kClient, 1, kServer, 2), len)),
                                Counter::drop_truncated))
            << len;
    }
}

TEST(ParseDrops, TcpShorterThan20) {
    for (std::size_t len = 0; len < 20; ++len) {
        EXPECT_TRUE(dropped_for(parse(with_l4_length(test::tcp_spec(kClient, 1, kServer, 2), len)),
                                Counter::drop_truncated))
            << len;
    }
}

TEST(ParseDrops, TcpDataOffsetBelow5) {
    for (unsigned offset = 0; offset < 5; ++offset) {
        Frame f = test::build_frame(test::tcp_spec(kClient, 1, kServer, 2));
        f[kEth + 20 + 12] = static_cast<std::uint8_t>(offset << 4);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_truncated)) << offset;
    }
}

TEST(ParseDrops, TcpDataOffsetBeyondSegment) {
    FrameSpec spec = test::tcp_spec(kClient, 1, kServer, 2);
    spec.payload = std::vector<std::uint8_t>(7, 0xab); // 27 bytes of segment
    for (unsigned offset = 7; offset <= 15; ++offset) {
        Frame f = test::build_frame(spec);
        f[kEth + 20 + 12] = static_cast<std::uint8_t>(offset << 4);
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_truncated)) << offset;
    }
    // Offset 6 (24 bytes) still fits: accepted.
    Frame f = test::build_frame(spec);
    f[kEth + 20 + 12] = 6 << 4;
    EXPECT_EQ(parse(f).kind, FrameKind::ipv4);
}

TEST(ParseDrops, IcmpShorterThan8) {
    for (std::size_t len = 0; len < 8; ++len) {
        EXPECT_TRUE(dropped_for(parse(with_l4_length(test::icmp_spec(kClient, kServer, 1), len)),
                                Counter::drop_truncated))
            << len;
    }
}

// Errors (3, 11, 12) are parsed by their quote: icmp_error_test.cpp.
TEST(ParseDrops, IcmpOtherThanEchoIsUnsupported) {
    for (std::uint8_t type : {4, 5, 13, 14, 17, 255}) {
        const Frame f = test::build_frame(test::icmp_spec(kClient, kServer, 7, type));
        EXPECT_TRUE(dropped_for(parse(f), Counter::drop_unsupported_protocol)) << int{type};
    }
}

TEST(ParseDrops, OtherProtocolsAreUnsupported) {
    for (std::uint8_t proto : {0, 2, 4, 41, 47, 50, 51, 58, 132, 255}) {
        FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
        spec.ip_protocol_override = proto;
        EXPECT_TRUE(dropped_for(parse(test::build_frame(spec)), Counter::drop_unsupported_protocol))
            << int{proto};
    }
}

// ---- fuzz ---------------------------------------------------------------------------------

// RFC 5508 REQ-3, from the rules: the whole message's checksum, a whole quoted IPv4 header
// with a good checksum, 8 bytes of a UDP, TCP or echo header, not a later fragment.
bool reference_accepts_icmp_error(const Frame& f, std::size_t l4, std::size_t end) {
    if (test::ref_fold(test::ref_sum({f.data() + l4, end - l4})) != 0xffff) {
        return false;
    }
    const std::size_t q = l4 + 8;
    if (end < q + 20) {
        return false;
    }
    const std::size_t ihl = std::size_t{f[q] & 0x0fu} * 4;
    if ((f[q] >> 4) != 4 || ihl < 20 || end < q + ihl + 8) {
        return false;
    }
    if (test::ref_fold(test::ref_sum({f.data() + q, ihl})) != 0xffff) {
        return false;
    }
    if ((test::get16(f, q + 6) & 0x1fff) != 0) {
        return false;
    }
    switch (f[q + 9]) {
    case 6:
    case 17:
        return true;
    case 1:
        return f[q + ihl] == 0 || f[q + ihl] == 8;
    default:
        return false;
    }
}

// What parse_frame must accept, written from the rules, not from its code.
bool reference_accepts(const Frame& f) {
    if (f.size() < kEth + 20 || test::get16(f, 12) != kEtherTypeIpv4) {
        return false;
    }
    const std::size_t ihl = std::size_t{f[kEth] & 0x0fu} * 4;
    if ((f[kEth] >> 4) != 4 || ihl < 20 || f.size() < kEth + ihl) {
        return false;
    }
    const std::size_t total = test::get16(f, kEth + 2);
    if (total < ihl || kEth + total > f.size()) {
        return false;
    }
    if (test::ref_fold(test::ref_sum({f.data() + kEth, ihl})) != 0xffff) {
        return false;
    }
    const std::size_t l4 = kEth + ihl;
    const std::size_t l4_len = total - ihl;
    const std::uint16_t frag = test::get16(f, kEth + 6);
    const bool more = (frag & 0x2000) != 0;
    const std::size_t offset = std::size_t{frag & 0x1fffu} * 8;
    if ((more && l4_len % 8 != 0) || offset + l4_len > 0xffff) {
        return false;
    }
    if (offset != 0) { // a later piece: no transport header to check
        const std::uint8_t proto = f[kEth + 9];
        return proto == 17 || proto == 1 || (proto == 6 && offset != 8);
    }
    switch (f[kEth + 9]) {
    case 17:
        return l4_len >= 8;
    case 6: {
        if (l4_len < 20) {
            return false;
        }
        const std::size_t offset = static_cast<std::size_t>(f[l4 + 12] >> 4) * 4;
        return offset >= 20 && offset <= l4_len;
    }
    case 1:
        if (l4_len >= 8 && (f[l4] == 3 || f[l4] == 11 || f[l4] == 12)) {
            return reference_accepts_icmp_error(f, l4, kEth + total);
        }
        return l4_len >= 8 && (f[l4] == 0 || f[l4] == 8);
    default:
        return false;
    }
}

void check_parse_against_reference(const Frame& f, int& accepted) {
    const ParsedPacket p = parse(f);
    const bool arp = f.size() >= kEth && test::get16(f, 12) == kEtherTypeArp;
    ASSERT_EQ(p.kind == FrameKind::arp, arp);
    if (arp) {
        return;
    }
    const bool ok = reference_accepts(f);
    ASSERT_EQ(p.kind == FrameKind::ipv4, ok);
    if (!ok) {
        static const std::set<Counter> kParseReasons = {
            Counter::drop_truncated,
            Counter::drop_not_ipv4,
            Counter::drop_bad_version,
            Counter::drop_bad_ihl,
            Counter::drop_bad_total_length,
            Counter::drop_bad_ip_checksum,
            Counter::drop_fragment,
            Counter::drop_unsupported_protocol,
            Counter::drop_icmp_error_bad_checksum,
            Counter::drop_icmp_error_bad_inner_checksum,
            Counter::drop_icmp_error_truncated,
            Counter::drop_icmp_error_unsupported,
        };
        ASSERT_TRUE(kParseReasons.count(p.drop_reason)) << counter_name(p.drop_reason);
        return;
    }
    ++accepted;
    // Everything a later stage trusts lies inside the frame and matches the bytes.
    ASSERT_EQ(p.l3, kEth);
    ASSERT_EQ(p.l4, test::l4_of(f));
    ASSERT_EQ(p.ip_total_len, test::get16(f, kEth + 2));
    ASSERT_LE(std::size_t{p.l3} + p.ip_total_len, f.size());
    ASSERT_EQ(p.src, test::ip_src(f));
    ASSERT_EQ(p.dst, test::ip_dst(f));
    ASSERT_EQ(static_cast<std::uint8_t>(p.proto), test::ip_proto(f));
    ASSERT_EQ(p.fragment_offset, (test::get16(f, kEth + 6) & 0x1fff) * 8);
    ASSERT_EQ(p.icmp_error, p.proto == Protocol::icmp && p.icmp_type != 0 && p.icmp_type != 8);
    if (p.later_fragment) {
        ASSERT_EQ(p.src_port, 0);
        ASSERT_EQ(p.dst_port, 0);
    } else if (p.icmp_error) {
        // The quote and the 8 bytes of its transport header lie within the IP packet.
        const std::size_t q = p.l4 + 8u;
        ASSERT_EQ(p.inner_l3, q);
        ASSERT_EQ(p.inner_l4, q + std::size_t{f[q] & 0x0fu} * 4);
        ASSERT_LE(p.inner_l4 + 8u, std::size_t{p.l3} + p.ip_total_len);
        ASSERT_EQ(p.inner_src, Ipv4Addr{test::get32(f, q + 12)});
        ASSERT_EQ(p.inner_dst, Ipv4Addr{test::get32(f, q + 16)});
        ASSERT_EQ(static_cast<std::uint8_t>(p.inner_proto), f[q + 9]);
        const std::size_t ports = p.inner_proto == Protocol::icmp ? p.inner_l4 + 4u : p.inner_l4;
        const std::size_t dport = p.inner_proto == Protocol::icmp ? ports : ports + 2;
        ASSERT_EQ(p.inner_src_port, test::get16(f, ports));
        ASSERT_EQ(p.inner_dst_port, test::get16(f, dport));
        ASSERT_EQ(p.dst_port, p.inner_src_port);
        ASSERT_EQ(p.src_port, p.inner_dst_port);
    } else if (p.proto == Protocol::icmp) {
        ASSERT_EQ(p.icmp_type, test::icmp_type(f));
        ASSERT_EQ(p.src_port, test::icmp_id(f));
        ASSERT_EQ(p.dst_port, test::icmp_id(f));
    } else {
        ASSERT_EQ(p.src_port, test::l4_sport(f));
        ASSERT_EQ(p.dst_port, test::l4_dport(f));
    }
}

FrameSpec random_valid_spec(Rng& rng) {
    FrameSpec s;
    const int kind = uniform<int>(rng, 0, 2);
    s.proto = kind == 0 ? Protocol::udp : kind == 1 ? Protocol::tcp : Protocol::icmp;
    s.icmp_type = uniform<int>(rng, 0, 1) ? kIcmpEchoRequest : kIcmpEchoReply;
    s.src = Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)};
    s.dst = Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)};
    s.src_port = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.dst_port = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.ip_options = 4 * uniform<std::size_t>(rng, 0, 10);
    s.tcp_options = 4 * uniform<std::size_t>(rng, 0, 10);
    s.payload = test::random_bytes(rng, uniform<std::size_t>(rng, 0, 64));
    s.pad_to = uniform<int>(rng, 0, 3) == 0 ? 60 : 0;
    return s;
}

// A valid frame: a quarter of them ICMP errors quoting another valid frame, whole or cut.
Frame random_valid_frame(Rng& rng) {
    const FrameSpec s = random_valid_spec(rng);
    if (uniform<int>(rng, 0, 3) != 0) {
        return test::build_frame(s);
    }
    FrameSpec quoted = random_valid_spec(rng);
    quoted.ip_options = 4 * uniform<std::size_t>(rng, 0, 2);
    const Frame inner = test::build_frame(quoted);
    FrameSpec outer = s;
    const std::uint8_t types[] = {3, 11, 12};
    outer.icmp_type = types[uniform<std::size_t>(rng, 0, 2)];
    const std::size_t header = 20 + quoted.ip_options;
    return test::build_icmp_error(outer, inner, uniform<std::size_t>(rng, header + 8, 600));
}

// Random garbage, half of it dressed as IPv4 so the parser gets past the Ethernet header.
TEST(ParseFuzz, RandomFramesNeverReadPastTheEnd) {
    Rng rng(0xf0220);
    int accepted = 0;
    for (int i = 0; i < 100000; ++i) {
        Frame f = test::random_bytes(rng, uniform<std::size_t>(rng, 0, 200));
        const int dress = uniform<int>(rng, 0, 3);
        if (dress >= 1 && f.size() >= kEth) {
            test::put16(f, 12, kEtherTypeIpv4);
        }
        if (dress >= 2 && f.size() > kEth) {
            f[kEth] = static_cast<std::uint8_t>(0x40 | (f[kEth] & 0x0f));
        }
        if (dress >= 3 && f.size() >= kEth + 20 &&
            f.size() >= kEth + std::size_t{f[kEth] & 0x0fu} * 4) {
            // Plausible total length and header checksum, so the transport checks run.
            const auto ihl = std::size_t{f[kEth] & 0x0fu} * 4;
            test::put16(
                f, kEth + 2,
                uniform<std::uint16_t>(rng, 0, static_cast<std::uint16_t>(f.size() - kEth)));
            test::put16(f, kEth + 6, 0);
            const std::uint8_t protocols[] = {1, 6, 17, f[kEth + 9]};
            f[kEth + 9] = protocols[uniform<std::size_t>(rng, 0, 3)];
            if (ihl >= 20) {
                refresh_ip_checksum(f);
            }
        }
        SCOPED_TRACE(testing::Message() << "case " << i << ", length " << f.size());
        check_parse_against_reference(f, accepted);
        if (HasFatalFailure()) {
            return;
        }
    }
    EXPECT_GT(accepted, 1000) << "the fuzz never reached an accepted frame";
}

// Valid frames with a few random changes: flipped bytes, cut short, or extended.
TEST(ParseFuzz, MutatedValidFramesNeverReadPastTheEnd) {
    Rng rng(0xbadf00d);
    int accepted = 0;
    for (int i = 0; i < 100000; ++i) {
        Frame f = random_valid_frame(rng);
        const int mutations = uniform<int>(rng, 1, 4);
        for (int m = 0; m < mutations; ++m) {
            switch (uniform<int>(rng, 0, 3)) {
            case 0:
            case 1: { // flip a byte, mostly in the headers
                const std::size_t limit = std::min<std::size_t>(f.size(), 120);
                if (limit > 0) {
                    f[uniform<std::size_t>(rng, 0, limit - 1)] ^=
                        uniform<std::uint8_t>(rng, 1, 255);
                }
                break;
            }
            case 2: // cut: a new, exactly sized buffer
                f = Frame(f.begin(),
                          f.begin() + static_cast<long>(uniform<std::size_t>(rng, 0, f.size())));
                break;
            default: { // extend with random bytes
                const auto extra = test::random_bytes(rng, uniform<std::size_t>(rng, 1, 40));
                f.insert(f.end(), extra.begin(), extra.end());
                f.shrink_to_fit();
                break;
            }
            }
        }
        if (uniform<int>(rng, 0, 1) && f.size() >= kEth + 20 && (f[kEth] & 0x0f) >= 5 &&
            f.size() >= kEth + std::size_t{f[kEth] & 0x0fu} * 4) {
            refresh_ip_checksum(f); // let half of them reach the transport checks
        }
        Frame exact(f.begin(), f.end()); // capacity == size, so ASan sees the end
        SCOPED_TRACE(testing::Message() << "case " << i << ", length " << exact.size());
        check_parse_against_reference(exact, accepted);
        if (HasFatalFailure()) {
            return;
        }
    }
    EXPECT_GT(accepted, 10000) << "the fuzz never reached an accepted frame";
}

} // namespace
} // namespace ephemera
