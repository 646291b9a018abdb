// Splitting for the MTU (RFC 4787 REQ-13, RFC 791 3.2) and the rewrite of translated later
// pieces (REQ-14): pieces fit, carry the right offsets and flags, rebuild the original payload,
// repeat only copied options, and their IP checksums verify.
#include "packet_builder.hpp"

#include "ephemera/ip_split.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ephemera {
namespace {

using test::Frame;
using test::kEth;

const Ipv4Addr kClient{100, 64, 0, 10};
const Ipv4Addr kServer{198, 18, 1, 1};

struct Split {
    std::vector<Frame> pieces;
    std::vector<std::uint8_t> payload; // the pieces' payloads put back at their offsets
};

Split split_all(const Frame& f, std::uint16_t mtu) {
    const ParsedPacket p = parse_frame(f);
    EXPECT_EQ(p.kind, FrameKind::ipv4);
    Split s;
    const std::size_t n = split_count(f, p, mtu);
    s.payload.assign(ip_payload_length(p), 0xee);
    for (std::size_t i = 0; i < n; ++i) {
        Frame out(2048);
        const std::size_t len = write_split_piece(f, p, mtu, i, out);
        EXPECT_GT(len, 0u);
        out.resize(len);
        const ParsedPacket q = parse_frame(out);
        EXPECT_EQ(q.kind, FrameKind::ipv4) << "piece " << i;
        EXPECT_LE(q.ip_total_len, mtu);
        EXPECT_EQ(q.fragment_offset % 8, 0);
        EXPECT_EQ(q.more_fragments, i + 1 < n || p.more_fragments);
        EXPECT_FALSE(q.dont_fragment);
        EXPECT_EQ(q.ip_id, p.ip_id);
        EXPECT_EQ(test::get16(out, kEth + 10), test::expected_ip_checksum(out));
        const std::size_t at = q.fragment_offset - p.fragment_offset;
        std::copy(out.begin() + q.l4, out.begin() + q.l3 + q.ip_total_len,
                  s.payload.begin() + static_cast<long>(at));
        s.pieces.push_back(out);
    }
    return s;
}

Frame big_udp(std::size_t payload, std::size_t options = 0) {
    test::FrameSpec spec = test::udp_spec(kClient, 40000, kServer, 9);
    spec.frag = 0;
    spec.ip_options = options;
    for (std::size_t i = 0; i < payload; ++i) {
        spec.payload.push_back(static_cast<std::uint8_t>(i * 7));
    }
    return test::build_frame(spec);
}

TEST(IpSplit, Rfc4787Req13PiecesFitAndRebuildThePayload) {
    const Frame f = big_udp(3000);
    const Split s = split_all(f, 1500);
    ASSERT_EQ(s.pieces.size(), 3u); // 3008 bytes of UDP: 1480 + 1480 + 48
    EXPECT_EQ(s.pieces[0].size(), kEth + 1500);
    EXPECT_EQ(std::vector<std::uint8_t>(f.begin() + kEth + 20, f.end()), s.payload);
    // The first piece keeps the UDP header (ports, the whole datagram's checksum).
    EXPECT_EQ(test::l4_sport(s.pieces[0]), 40000);
    EXPECT_EQ(test::l4_checksum(s.pieces[0]), test::l4_checksum(f));
}

TEST(IpSplit, FitsAsIsWhenSmallEnough) {
    const Frame f = big_udp(100);
    EXPECT_EQ(split_count(f, parse_frame(f), 576), 1u);
}

TEST(IpSplit, SmallestMtu) {
    const Frame f = big_udp(1400);
    const Split s = split_all(f, 576);
    EXPECT_EQ(s.pieces.size(), 3u); // 1408 bytes: 552 + 552 + 304
    EXPECT_EQ(std::vector<std::uint8_t>(f.begin() + kEth + 20, f.end()), s.payload);
}

TEST(IpSplit, OnlyCopiedOptionsAreRepeated) {
    Frame f = big_udp(2000, 8);
    // Options: a copied one (type 0x82, length 4), then a non-copied one (0x07, length 4).
    const std::uint8_t options[] = {0x82, 4, 0xaa, 0xbb, 0x07, 4, 0xcc, 0xdd};
    std::copy(std::begin(options), std::end(options), f.begin() + kEth + 20);
    test::put16(f, kEth + 10, 0);
    test::put16(f, kEth + 10, test::expected_ip_checksum(f));
    const Split s = split_all(f, 1000);
    ASSERT_GE(s.pieces.size(), 2u);
    EXPECT_EQ(test::ihl_of(s.pieces[0]), 28u);
    for (std::size_t i = 1; i < s.pieces.size(); ++i) {
        ASSERT_EQ(test::ihl_of(s.pieces[i]), 24u);
        EXPECT_EQ(s.pieces[i][kEth + 20], 0x82);
        EXPECT_EQ(s.pieces[i][kEth + 23], 0xbb);
    }
    EXPECT_EQ(std::vector<std::uint8_t>(f.begin() + kEth + 28, f.end()), s.payload);
}

TEST(IpSplit, APieceIsSplitAtItsOwnOffset) {
    // A middle piece (offset 1480, MF) of 1480 bytes, onto a 576-byte link.
    test::FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
    spec.frag = 0x2000 | (1480 / 8);
    spec.payload.assign(1472, 0x5a); // UDP "header" bytes + payload: 1480
    const Frame f = test::build_frame(spec);
    const Split s = split_all(f, 576);
    ASSERT_EQ(s.pieces.size(), 3u);
    EXPECT_EQ(parse_frame(s.pieces[0]).fragment_offset, 1480);
    EXPECT_EQ(parse_frame(s.pieces[2]).fragment_offset, 1480 + 2 * 552);
    EXPECT_TRUE(parse_frame(s.pieces[2]).more_fragments) << "the original was not the last";
}

TEST(IpSplit, LaterPieceRewriteKeepsTheChecksumRight) {
    test::FrameSpec spec = test::udp_spec(kClient, 1, kServer, 2);
    spec.frag = 0x00b9;
    Frame f = test::build_frame(spec);
    const ParsedPacket p = parse_frame(f);
    rewrite_piece_address(f.data(), p, true, Ipv4Addr{198, 18, 0, 100});
    EXPECT_EQ(test::ip_src(f), (Ipv4Addr{198, 18, 0, 100}));
    EXPECT_EQ(test::ip_ttl(f), 63);
    EXPECT_EQ(test::get16(f, kEth + 10), test::expected_ip_checksum(f));
    rewrite_piece_address(f.data(), p, false, kClient);
    EXPECT_EQ(test::ip_dst(f), kClient);
    EXPECT_EQ(test::get16(f, kEth + 10), test::expected_ip_checksum(f));
}

} // namespace
} // namespace ephemera
