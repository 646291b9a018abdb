// What the box does on its Ethernet segments besides translating: ARP (parse, reply, request)
// and answering pings to its inside gateway address.
#include "packet_builder.hpp"

#include "ephemera/l2.hpp"
#include "ephemera/packet.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace ephemera {
namespace {

using test::Frame;
using test::FrameSpec;
using test::get16;
using test::get32;
using test::kEth;

const MacAddr kOurMac = test::mac(0x02, 0, 0, 0, 0xa0, 0x01);
const Ipv4Addr kOurIp{100, 64, 0, 1};
const MacAddr kHostMac = test::mac(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
const Ipv4Addr kHostIp{100, 64, 0, 77};
const MacAddr kBroadcast = test::mac(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

struct ArpSpec {
    MacAddr eth_dst = kBroadcast;
    MacAddr eth_src = kHostMac;
    std::uint16_t htype = 1;
    std::uint16_t ptype = 0x0800;
    std::uint8_t hlen = 6;
    std::uint8_t plen = 4;
    std::uint16_t op = kArpOpRequest;
    MacAddr sender_mac = kHostMac;
    Ipv4Addr sender_ip = kHostIp;
    MacAddr target_mac{};
    Ipv4Addr target_ip = kOurIp;
    std::size_t length = 60; // padded to the Ethernet minimum, as on the wire
};

Frame build_arp(const ArpSpec& s) {
    Frame f(s.length, 0);
    std::copy(std::begin(s.eth_dst.bytes), std::end(s.eth_dst.bytes), f.begin());
    std::copy(std::begin(s.eth_src.bytes), std::end(s.eth_src.bytes), f.begin() + 6);
    test::put16(f, 12, kEtherTypeArp);
    test::put16(f, kEth + 0, s.htype);
    test::put16(f, kEth + 2, s.ptype);
    f[kEth + 4] = s.hlen;
    f[kEth + 5] = s.plen;
    test::put16(f, kEth + 6, s.op);
    std::copy(std::begin(s.sender_mac.bytes), std::end(s.sender_mac.bytes), f.begin() + kEth + 8);
    test::put32(f, kEth + 14, s.sender_ip.value());
    std::copy(std::begin(s.target_mac.bytes), std::end(s.target_mac.bytes), f.begin() + kEth + 18);
    test::put32(f, kEth + 24, s.target_ip.value());
    return f;
}

MacAddr mac_at(const Frame& f, std::size_t off) {
    MacAddr m;
    std::copy(f.begin() + static_cast<long>(off), f.begin() + static_cast<long>(off + 6), m.bytes);
    return m;
}

// ---- parse_arp ----------------------------------------------------------------------------

TEST(ParseArp, ValidRequest) {
    const auto m = parse_arp(build_arp(ArpSpec{}));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->op, kArpOpRequest);
    EXPECT_EQ(m->sender_mac, kHostMac);
    EXPECT_EQ(m->sender_ip, kHostIp);
    EXPECT_EQ(m->target_mac, MacAddr{});
    EXPECT_EQ(m->target_ip, kOurIp);
}

TEST(ParseArp, ValidReplyUnpaddedAt42Bytes) {
    ArpSpec s;
    s.op = kArpOpReply;
    s.eth_dst = kOurMac;
    s.target_mac = kOurMac;
    s.length = kArpFrameLen;
    const auto m = parse_arp(build_arp(s));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->op, kArpOpReply);
    EXPECT_EQ(m->target_mac, kOurMac);
    EXPECT_EQ(m->sender_ip, kHostIp);
}

TEST(ParseArp, RefusesWhatIsNotIpv4OverEthernet) {
    auto refused = [](ArpSpec s, const char* what) {
        EXPECT_FALSE(parse_arp(build_arp(s)).has_value()) << what;
    };
    ArpSpec s;
    s.htype = 6; // IEEE 802
    refused(s, "hardware type");
    s = ArpSpec{};
    s.ptype = 0x86dd;
    refused(s, "protocol type");
    s = ArpSpec{};
    s.hlen = 8;
    refused(s, "hardware length");
    s = ArpSpec{};
    s.plen = 16;
    refused(s, "protocol length");
}

TEST(ParseArp, RefusesShortFramesAndOtherEtherTypes) {
    const Frame full = build_arp(ArpSpec{});
    for (std::size_t len = 0; len < kArpFrameLen; ++len) {
        const Frame cut(full.begin(), full.begin() + static_cast<long>(len));
        EXPECT_FALSE(parse_arp(cut).has_value()) << "length " << len;
    }
    Frame ip = full;
    test::put16(ip, 12, kEtherTypeIpv4);
    EXPECT_FALSE(parse_arp(ip).has_value());
    EXPECT_FALSE(parse_arp(test::build_frame(FrameSpec{})).has_value());
}

// ---- make_arp_reply -----------------------------------------------------------------------

TEST(ArpReply, AnswersTheRequester) {
    Frame f = build_arp(ArpSpec{});
    const auto request = parse_arp(f);
    ASSERT_TRUE(request.has_value());
    const std::size_t length = f.size();
    make_arp_reply(f, *request, kOurMac, kOurIp);

    ASSERT_EQ(f.size(), length);
    EXPECT_EQ(mac_at(f, 0), kHostMac) << "unicast back to the requester";
    EXPECT_EQ(mac_at(f, 6), kOurMac);
    EXPECT_EQ(get16(f, 12), kEtherTypeArp);
    EXPECT_EQ(get16(f, kEth + 0), 1);
    EXPECT_EQ(get16(f, kEth + 2), 0x0800);
    EXPECT_EQ(f[kEth + 4], 6);
    EXPECT_EQ(f[kEth + 5], 4);
    EXPECT_EQ(get16(f, kEth + 6), kArpOpReply);
    EXPECT_EQ(mac_at(f, kEth + 8), kOurMac);
    EXPECT_EQ(get32(f, kEth + 14), kOurIp.value());
    EXPECT_EQ(mac_at(f, kEth + 18), kHostMac);
    EXPECT_EQ(get32(f, kEth + 24), kHostIp.value());

    // The reply reads back as what it is.
    const auto reply = parse_arp(f);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->op, kArpOpReply);
    EXPECT_EQ(reply->sender_mac, kOurMac);
    EXPECT_EQ(reply->sender_ip, kOurIp);
    EXPECT_EQ(reply->target_mac, kHostMac);
    EXPECT_EQ(reply->target_ip, kHostIp);
}

// The Ethernet source may differ from the ARP sender (a proxy): the reply goes to the sender.
TEST(ArpReply, GoesToTheArpSenderHardwareAddress) {
    ArpSpec s;
    s.eth_src = test::mac(0x02, 0, 0, 0, 0, 0x99);
    Frame f = build_arp(s);
    make_arp_reply(f, *parse_arp(f), kOurMac, kOurIp);
    EXPECT_EQ(mac_at(f, 0), kHostMac);
    EXPECT_EQ(mac_at(f, kEth + 18), kHostMac);
}

// ---- write_arp_request --------------------------------------------------------------------

TEST(ArpRequest, BroadcastWhoHasOf60Bytes) {
    const Ipv4Addr next_hop{198, 18, 0, 2};
    const Ipv4Addr our_outside{198, 18, 0, 100};
    Frame f(kMinFrameLen, 0xcc); // garbage from a previous use of the buffer
    const std::size_t n = write_arp_request(f, kOurMac, our_outside, next_hop);
    ASSERT_EQ(n, 60u);
    EXPECT_EQ(mac_at(f, 0), kBroadcast);
    EXPECT_EQ(mac_at(f, 6), kOurMac);
    EXPECT_EQ(get16(f, 12), kEtherTypeArp);
    EXPECT_EQ(get16(f, kEth + 0), 1);
    EXPECT_EQ(get16(f, kEth + 2), 0x0800);
    EXPECT_EQ(f[kEth + 4], 6);
    EXPECT_EQ(f[kEth + 5], 4);
    EXPECT_EQ(get16(f, kEth + 6), kArpOpRequest);
    EXPECT_EQ(mac_at(f, kEth + 8), kOurMac);
    EXPECT_EQ(get32(f, kEth + 14), our_outside.value());
    EXPECT_EQ(mac_at(f, kEth + 18), MacAddr{});
    EXPECT_EQ(get32(f, kEth + 24), next_hop.value());
    for (std::size_t i = kArpFrameLen; i < kMinFrameLen; ++i) {
        EXPECT_EQ(f[i], 0) << "padding byte " << i;
    }
    const auto m = parse_arp(f);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->op, kArpOpRequest);
    EXPECT_EQ(m->target_ip, next_hop);
    EXPECT_EQ(parse_frame(f).kind, FrameKind::arp);
}

TEST(ArpRequest, LeavesBytesBeyond60Alone) {
    Frame f(128, 0xcc);
    ASSERT_EQ(write_arp_request(f, kOurMac, kOurIp, kHostIp), 60u);
    for (std::size_t i = kMinFrameLen; i < f.size(); ++i) {
        ASSERT_EQ(f[i], 0xcc) << i;
    }
}

// ---- make_echo_reply ----------------------------------------------------------------------

FrameSpec ping_to_gateway() {
    FrameSpec s = test::icmp_spec(kHostIp, kOurIp, 0x4d2);
    s.src_mac = kHostMac;
    s.dst_mac = kOurMac;
    s.icmp_seq = 3;
    s.ttl = 64;
    return s;
}

TEST(EchoReply, SwapsAddressesSetsType0AndChecksumsVerify) {
    const FrameSpec spec = ping_to_gateway();
    Frame f = test::build_frame(spec);
    const ParsedPacket p = parse_frame(f);
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    make_echo_reply(f, p, kOurMac);

    // Exactly the echo reply a host would build from scratch.
    FrameSpec expect = spec;
    expect.src_mac = kOurMac;
    expect.dst_mac = kHostMac;
    expect.src = kOurIp;
    expect.dst = kHostIp;
    expect.icmp_type = kIcmpEchoReply;
    expect.ttl = 64;
    EXPECT_EQ(f, test::build_frame(expect));
    EXPECT_EQ(test::ip_src(f), kOurIp);
    EXPECT_EQ(test::ip_dst(f), kHostIp);
    EXPECT_EQ(test::icmp_type(f), kIcmpEchoReply);
    EXPECT_EQ(test::icmp_id(f), 0x4d2);
    EXPECT_TRUE(test::checksums_verify(f));
    EXPECT_EQ(parse_frame(f).kind, FrameKind::ipv4);
}

// A request with identifier 0, sequence 0 and no data: its reply is all zero words but the
// checksum, which must be 0xffff (RFC 1624 section 3), as a host's from-scratch reply has it.
TEST(EchoReply, ReplyOfZeroWordsGetsChecksumAllOnes) {
    FrameSpec spec = ping_to_gateway();
    spec.icmp_id = 0;
    spec.icmp_seq = 0;
    spec.payload.clear();
    Frame f = test::build_frame(spec);
    const ParsedPacket p = parse_frame(f);
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    make_echo_reply(f, p, spec.dst_mac);
    FrameSpec expect = spec;
    std::swap(expect.src_mac, expect.dst_mac);
    std::swap(expect.src, expect.dst);
    expect.icmp_type = kIcmpEchoReply;
    expect.ttl = 64;
    EXPECT_EQ(test::l4_checksum(f), 0xffff);
    EXPECT_EQ(f, test::build_frame(expect));
    EXPECT_TRUE(test::checksums_verify(f));
}

// Found by tests/fuzz: a ping sent to the broadcast MAC was answered from the broadcast MAC,
// which is never a frame's source (IEEE 802.3: source addresses are individual).
TEST(EchoReply, ComesFromOurMacWhenTheRequestWasBroadcast) {
    FrameSpec spec = ping_to_gateway();
    spec.dst_mac = test::mac(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    Frame f = test::build_frame(spec);
    const ParsedPacket p = parse_frame(f);
    ASSERT_EQ(p.kind, FrameKind::ipv4);
    make_echo_reply(f, p, kOurMac);
    EXPECT_EQ(test::mac_src(f), kOurMac);
    EXPECT_EQ(test::mac_dst(f), kHostMac);
    EXPECT_TRUE(test::checksums_verify(f));
}

TEST(EchoReply, RandomRequestsGiveValidReplies) {
    test::Rng rng(792);
    for (int i = 0; i < 2000; ++i) {
        FrameSpec spec = ping_to_gateway();
        spec.src = Ipv4Addr{test::uniform<std::uint32_t>(rng, 0, ~0u)};
        spec.icmp_id = test::uniform<std::uint16_t>(rng, 0, 0xffff);
        spec.icmp_seq = test::uniform<std::uint16_t>(rng, 0, 0xffff);
        spec.icmp_code = test::uniform<int>(rng, 0, 9) == 0 ? 1 : 0;
        spec.ttl = test::uniform<std::uint8_t>(rng, 1, 255);
        spec.tos = test::uniform<std::uint8_t>(rng, 0, 255);
        spec.ip_options = 4 * test::uniform<std::size_t>(rng, 0, 10);
        spec.payload = test::random_bytes(rng, test::uniform<std::size_t>(rng, 0, 1400));
        spec.pad_to = test::uniform<int>(rng, 0, 1) ? 60 : 0;
        Frame f = test::build_frame(spec);
        const ParsedPacket p = parse_frame(f);
        ASSERT_EQ(p.kind, FrameKind::ipv4) << i;
        make_echo_reply(f, p, kOurMac);

        FrameSpec expect = spec;
        std::swap(expect.src_mac, expect.dst_mac);
        std::swap(expect.src, expect.dst);
        expect.icmp_type = kIcmpEchoReply;
        expect.ttl = 64;
        ASSERT_EQ(f, test::build_frame(expect)) << "case " << i;
        ASSERT_TRUE(test::checksums_verify(f)) << "case " << i;
    }
}

} // namespace
} // namespace ephemera
