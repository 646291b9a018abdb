// Internet checksums: the full computation and the RFC 1624 incremental updates that the packet
// path uses, judged against an independent RFC 1071 implementation (packet_builder.hpp) on many
// seeded random inputs and packets.
#include "packet_builder.hpp"

#include "ephemera/checksum.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/rewrite.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace ephemera {
namespace {

using test::Frame;
using test::FrameSpec;
using test::Rng;
using test::uniform;

// A wire word (two bytes as they lie in memory) as the big-endian number they spell.
std::uint16_t wire_to_host(std::uint16_t wire) {
    std::uint8_t b[2];
    std::memcpy(b, &wire, 2);
    return static_cast<std::uint16_t>(b[0] << 8 | b[1]);
}
// The wire word of a big-endian number.
std::uint16_t host_to_wire(std::uint16_t host) {
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(host >> 8),
                               static_cast<std::uint8_t>(host)};
    std::uint16_t w;
    std::memcpy(&w, b, 2);
    return w;
}

// ---- RFC 1624 -------------------------------------------------------------------------------

// RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285. Eqn. 3 gives 0x0000 (eqn. 2
// would give 0xFFFF, the form a receiver may reject).
TEST(ChecksumAdjust, Rfc1624WorkedExampleEqn3) {
    EXPECT_EQ(checksum_adjust16(0xDD2F, 0x5555, 0x3285), 0x0000);
    // The same in wire words on this host: the arithmetic does not depend on byte order.
    EXPECT_EQ(wire_to_host(checksum_adjust16(host_to_wire(0xDD2F), host_to_wire(0x5555),
                                             host_to_wire(0x3285))),
              0x0000);
}

// The example's premise holds for a real buffer: the checksum after the change, recomputed in
// full, is 0x0000 too.
TEST(ChecksumAdjust, Rfc1624ExampleAgreesWithFullRecomputation) {
    // Data whose sum is ~0xDD2F with a word 0x5555 in it: 0x5555 + x = 0x22D0 (one's compl.).
    const std::uint16_t other = static_cast<std::uint16_t>(
        test::ref_fold(std::uint64_t{0x22D0} + static_cast<std::uint16_t>(~0x5555)));
    std::vector<std::uint8_t> data = {0x55, 0x55, static_cast<std::uint8_t>(other >> 8),
                                      static_cast<std::uint8_t>(other)};
    ASSERT_EQ(test::ref_checksum(data), 0xDD2F);
    data[0] = 0x32;
    data[1] = 0x85;
    EXPECT_EQ(test::ref_checksum(data), 0x0000);
    EXPECT_EQ(wire_to_host(checksum_full(data)), 0x0000);
}

TEST(ChecksumFold, CarriesWrapAround) {
    EXPECT_EQ(fold_checksum(0), 0);
    EXPECT_EQ(fold_checksum(0xffff), 0xffff);
    EXPECT_EQ(fold_checksum(0x1fffe), 0xffff);
    EXPECT_EQ(fold_checksum(0x10000), 0x0001);
    EXPECT_EQ(fold_checksum(0xffffffffffffffffull), 0xffff);
}

// ---- full computation ---------------------------------------------------------------------

TEST(ChecksumFull, MatchesReferenceOnRandomBuffers) {
    Rng rng(1071);
    for (int i = 0; i < 10000; ++i) {
        const auto data = test::random_bytes(rng, uniform<std::size_t>(rng, 0, 1600));
        SCOPED_TRACE(testing::Message() << "case " << i << ", length " << data.size());
        ASSERT_EQ(wire_to_host(checksum_full(data)), test::ref_checksum(data));
    }
}

TEST(ChecksumFull, PartialSumsChainOverEvenPrefixes) {
    Rng rng(7);
    for (int i = 0; i < 2000; ++i) {
        const auto a = test::random_bytes(rng, 2 * uniform<std::size_t>(rng, 0, 40));
        const auto b = test::random_bytes(rng, uniform<std::size_t>(rng, 0, 81));
        std::vector<std::uint8_t> ab = a;
        ab.insert(ab.end(), b.begin(), b.end());
        ASSERT_EQ(wire_to_host(checksum_full(b, checksum_partial(a))), test::ref_checksum(ab));
    }
}

TEST(ChecksumFull, OddTailIsPaddedWithZero) {
    const std::vector<std::uint8_t> odd = {0x12, 0x34, 0x56};
    const std::vector<std::uint8_t> padded = {0x12, 0x34, 0x56, 0x00};
    EXPECT_EQ(checksum_full(odd), checksum_full(padded));
    EXPECT_EQ(wire_to_host(checksum_full(odd)), test::ref_checksum(padded));
}

// ---- incremental updates against full recomputation ---------------------------------------

TEST(ChecksumAdjust, Adjust16MatchesRecomputation) {
    Rng rng(1624);
    for (int i = 0; i < 10000; ++i) {
        auto data = test::random_bytes(rng, 2 * uniform<std::size_t>(rng, 1, 750));
        const std::size_t at = 2 * uniform<std::size_t>(rng, 0, data.size() / 2 - 1);
        const std::uint16_t before = checksum_full(data);
        const std::uint16_t old_word = load_wire16(data.data() + at);
        const std::uint16_t new_word = uniform<std::uint16_t>(rng, 0, 0xffff);
        store_wire16(data.data() + at, new_word);
        SCOPED_TRACE(testing::Message() << "case " << i << ", word at " << at);
        ASSERT_EQ(
            wire_to_host(settle_zero_sum(checksum_adjust16(before, old_word, new_word), data)),
            test::ref_checksum(data));
    }
}

TEST(ChecksumAdjust, Adjust32MatchesRecomputation) {
    Rng rng(3232);
    for (int i = 0; i < 10000; ++i) {
        auto data = test::random_bytes(rng, 4 * uniform<std::size_t>(rng, 1, 375));
        const std::size_t at = 4 * uniform<std::size_t>(rng, 0, data.size() / 4 - 1);
        const std::uint16_t before = checksum_full(data);
        const std::uint32_t old_value = load_wire32(data.data() + at);
        const auto new_value = uniform<std::uint32_t>(rng, 0, 0xffffffffu);
        std::memcpy(data.data() + at, &new_value, 4);
        SCOPED_TRACE(testing::Message() << "case " << i << ", field at " << at);
        ASSERT_EQ(
            wire_to_host(settle_zero_sum(checksum_adjust32(before, old_value, new_value), data)),
            test::ref_checksum(data));
    }
}

TEST(ChecksumAdjust, UnchangedWordLeavesChecksumAlone) {
    Rng rng(11);
    for (int i = 0; i < 1000; ++i) {
        const auto sum = uniform<std::uint16_t>(rng, 0, 0xfffe);
        const auto word = uniform<std::uint16_t>(rng, 0, 0xffff);
        ASSERT_EQ(checksum_adjust16(sum, word, word), sum);
    }
    // 0xffff is the checksum of a message of zero words only, and stays so once settled.
    const std::vector<std::uint8_t> zeros(8, 0);
    EXPECT_EQ(settle_zero_sum(checksum_adjust16(0xffff, 0, 0), zeros), 0xffff);
}

// RFC 1624 section 3: eqn. 3 cannot tell +0 from -0. A message that becomes all zero needs
// 0xffff (the full computation's answer); one of non-zero words summing to zero keeps 0x0000.
TEST(ChecksumAdjust, MessageThatBecomesAllZeroGetsAllOnes) {
    Rng rng(1624 * 3);
    for (int i = 0; i < 2000; ++i) {
        std::vector<std::uint8_t> data(2 * uniform<std::size_t>(rng, 1, 40), 0);
        const std::size_t at = 2 * uniform<std::size_t>(rng, 0, data.size() / 2 - 1);
        const auto old_word = uniform<std::uint16_t>(rng, 1, 0xffff);
        store_wire16(data.data() + at, old_word);
        const std::uint16_t before = checksum_full(data);
        store_wire16(data.data() + at, 0);
        ASSERT_EQ(test::ref_checksum(data), 0xffff);
        // Eqn. 3 alone gives the other zero...
        ASSERT_EQ(checksum_adjust16(before, old_word, 0), 0x0000) << "case " << i;
        // ... which the message settles.
        ASSERT_EQ(settle_zero_sum(checksum_adjust16(before, old_word, 0), data), 0xffff);
        ASSERT_EQ(settle_zero_sum(checksum_apply(before, checksum_delta16(old_word, 0)), data),
                  0xffff);
    }
    // -0: two non-zero words that sum to 0xffff.
    const std::vector<std::uint8_t> minus_zero = {0x12, 0x34, 0xed, 0xcb};
    ASSERT_EQ(test::ref_checksum(minus_zero), 0x0000);
    EXPECT_EQ(settle_zero_sum(0, minus_zero), 0x0000);
    // The checksum's own field does not count.
    const std::vector<std::uint8_t> icmp_zero = {0, 0, 0xff, 0xff, 0, 0, 0, 0};
    EXPECT_EQ(settle_zero_sum(0, icmp_zero, 2), 0xffff);
    EXPECT_EQ(settle_zero_sum(0, icmp_zero), 0x0000);
}

// Sums fold to 16 bits by rotations: that must equal folding 16 bits at a time, end-around,
// for sums up to what a rewrite's few 32-bit terms reach, for any 64-bit sum, and at the carry
// edges (all ones in a half, exact powers of two).
TEST(ChecksumFold, RotationsEqualFoldingSixteenBitsAtATime) {
    const auto reference = [](std::uint64_t sum) {
        while (sum >> 16) {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return static_cast<std::uint16_t>(sum);
    };
    Rng rng(1071);
    std::vector<std::uint64_t> values = {0,
                                         1,
                                         0xffff,
                                         0x10000,
                                         0x1ffff,
                                         0xfffe0001u,
                                         0xffffffffu,
                                         0x100000000ull,
                                         0x1fffffffeull,
                                         0xffff0000ffffull,
                                         0x7ffffffffull};
    for (int i = 0; i < 200000; ++i) {
        values.push_back(uniform<std::uint64_t>(rng, 0, (std::uint64_t{1} << 40) - 1));
        values.push_back(uniform<std::uint64_t>(rng, 0, ~std::uint64_t{0}));
    }
    for (const std::uint64_t v : values) {
        ASSERT_EQ(fold_checksum(v), reference(v)) << std::hex << v;
        ASSERT_EQ(ChecksumDelta{v}.folded(), reference(v)) << std::hex << v;
    }
}

// The packet path's one-fold form (deltas summed, then applied) gives exactly what the updates
// one after the other give, including the edge words 0x0000 and 0xffff.
TEST(ChecksumAdjust, SummedDeltasEqualSequentialUpdates) {
    Rng rng(1624);
    const auto word = [&rng] {
        switch (uniform<int>(rng, 0, 3)) {
        case 0:
            return std::uint16_t{0};
        case 1:
            return std::uint16_t{0xffff};
        default:
            return uniform<std::uint16_t>(rng, 0, 0xffff);
        }
    };
    for (int i = 0; i < 200000; ++i) {
        const std::uint16_t sum = word();
        const std::uint32_t old_addr = std::uint32_t{word()} << 16 | word();
        const std::uint32_t new_addr = std::uint32_t{word()} << 16 | word();
        const std::uint16_t old_port = word();
        const std::uint16_t new_port = word();
        const std::uint16_t sequential =
            checksum_adjust16(checksum_adjust32(sum, old_addr, new_addr), old_port, new_port);
        const std::uint16_t summed = checksum_apply(sum, checksum_delta32(old_addr, new_addr) +
                                                             checksum_delta16(old_port, new_port));
        ASSERT_EQ(summed, sequential) << "case " << i;
    }
}

// ---- header rewrites on random packets ----------------------------------------------------

FrameSpec random_spec(Rng& rng) {
    FrameSpec s;
    switch (uniform<int>(rng, 0, 3)) {
    case 0:
        s.proto = Protocol::udp;
        s.udp_checksum = uniform<int>(rng, 0, 9) != 0; // one in ten without a checksum
        break;
    case 1:
        s.proto = Protocol::tcp;
        s.tcp_options = 4 * uniform<std::size_t>(rng, 0, 10);
        s.tcp_flags = uniform<std::uint8_t>(rng, 0, 0xff);
        break;
    case 2:
        s.proto = Protocol::icmp;
        s.icmp_type = kIcmpEchoRequest;
        break;
    default:
        s.proto = Protocol::icmp;
        s.icmp_type = kIcmpEchoReply;
        break;
    }
    s.src = Ipv4Addr{uniform<std::uint32_t>(rng, 0, 0xffffffffu)};
    s.dst = Ipv4Addr{uniform<std::uint32_t>(rng, 0, 0xffffffffu)};
    s.src_port = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.dst_port = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.icmp_id = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.icmp_seq = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.ttl = uniform<std::uint8_t>(rng, 2, 255);
    s.tos = uniform<std::uint8_t>(rng, 0, 255);
    s.ip_id = uniform<std::uint16_t>(rng, 0, 0xffff);
    s.frag = uniform<int>(rng, 0, 1) ? 0x4000 : 0;
    s.ip_options = 4 * uniform<std::size_t>(rng, 0, 10);
    s.payload = test::random_bytes(rng, uniform<std::size_t>(rng, 0, 300));
    s.pad_to = uniform<int>(rng, 0, 1) ? 60 : 0;
    return s;
}

// The spec of the frame after its source (or destination) became addr:port and TTL dropped.
FrameSpec rewritten(FrameSpec s, bool source, Ipv4Addr addr, std::uint16_t port) {
    (source ? s.src : s.dst) = addr;
    if (s.proto == Protocol::icmp) {
        s.icmp_id = port;
    } else {
        (source ? s.src_port : s.dst_port) = port;
    }
    --s.ttl;
    return s;
}

// Each rewrite must leave exactly the frame that the reference builder makes from scratch for
// the new header values: every byte, checksums included.
TEST(Rewrite, RandomPacketsMatchFullRecomputation) {
    Rng rng(20240601);
    int udp_without_checksum = 0;
    for (int i = 0; i < 10000; ++i) {
        FrameSpec spec = random_spec(rng);
        if (spec.ttl < 3) {
            spec.ttl = 3; // two rewrites below, each takes one
        }
        Frame frame = test::build_frame(spec);
        const ParsedPacket parsed = parse_frame(frame);
        SCOPED_TRACE(testing::Message()
                     << "case " << i << ", protocol " << protocol_name(spec.proto) << ", length "
                     << frame.size());
        ASSERT_EQ(parsed.kind, FrameKind::ipv4) << counter_name(parsed.drop_reason);

        const Ipv4Addr new_src{uniform<std::uint32_t>(rng, 0, 0xffffffffu)};
        const auto new_sport = uniform<std::uint16_t>(rng, 0, 0xffff);
        rewrite_source(frame.data(), parsed, new_src, new_sport);
        spec = rewritten(spec, true, new_src, new_sport);
        ASSERT_EQ(frame, test::build_frame(spec)) << "after rewrite_source";
        ASSERT_TRUE(test::checksums_verify(frame, !spec.udp_checksum));

        const Ipv4Addr new_dst{uniform<std::uint32_t>(rng, 0, 0xffffffffu)};
        const auto new_dport = uniform<std::uint16_t>(rng, 0, 0xffff);
        rewrite_destination(frame.data(), parsed, new_dst, new_dport);
        spec = rewritten(spec, false, new_dst, new_dport);
        ASSERT_EQ(frame, test::build_frame(spec)) << "after rewrite_destination";
        ASSERT_TRUE(test::checksums_verify(frame, !spec.udp_checksum));

        if (spec.proto == Protocol::udp && !spec.udp_checksum) {
            ++udp_without_checksum;
        }
    }
    EXPECT_GT(udp_without_checksum, 100) << "the zero-checksum case was not exercised";
}

// RFC 768: a UDP checksum of zero means "none"; a NAT must not invent one.
TEST(Rewrite, UdpZeroChecksumStaysZero) {
    Rng rng(768);
    for (int i = 0; i < 1000; ++i) {
        FrameSpec spec = random_spec(rng);
        spec.proto = Protocol::udp;
        spec.udp_checksum = false;
        Frame frame = test::build_frame(spec);
        const ParsedPacket parsed = parse_frame(frame);
        ASSERT_EQ(parsed.kind, FrameKind::ipv4);
        ASSERT_EQ(test::l4_checksum(frame), 0);
        rewrite_source(frame.data(), parsed, Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)},
                       uniform<std::uint16_t>(rng, 0, 0xffff));
        ASSERT_EQ(test::l4_checksum(frame), 0) << "case " << i;
        rewrite_destination(frame.data(), parsed, Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)},
                            uniform<std::uint16_t>(rng, 0, 0xffff));
        ASSERT_EQ(test::l4_checksum(frame), 0) << "case " << i;
        ASSERT_EQ(test::get16(frame, test::kEth + 10), test::expected_ip_checksum(frame));
    }
}

// The port that makes the full UDP checksum of `spec` (with its port field replaced) come out
// as 0x0000: the one's-complement negative of everything else.
std::uint16_t port_for_zero_checksum(FrameSpec spec, bool source) {
    (source ? spec.src_port : spec.dst_port) = 0;
    const Frame f = test::build_frame(spec);
    const std::size_t l4 = test::l4_of(f);
    const std::size_t l4_len = f.size() - l4;
    std::vector<std::uint8_t> seg(f.begin() + static_cast<long>(l4), f.end());
    seg[6] = seg[7] = 0;
    const std::uint16_t rest = test::ref_fold(
        test::ref_sum(seg, test::ref_pseudo_sum(spec.src.value(), spec.dst.value(), 17, l4_len)));
    return static_cast<std::uint16_t>(0xffff - rest);
}

// RFC 768 / RFC 1624: when the updated UDP checksum computes to zero it is sent as 0xFFFF.
TEST(Rewrite, UdpComputedZeroIsSentAsAllOnes) {
    Rng rng(65535);
    for (int i = 0; i < 200; ++i) {
        const bool source = i % 2 == 0;
        FrameSpec spec = random_spec(rng);
        spec.proto = Protocol::udp;
        spec.udp_checksum = true;
        spec.pad_to = 0;
        Frame frame = test::build_frame(spec);
        const ParsedPacket parsed = parse_frame(frame);
        ASSERT_EQ(parsed.kind, FrameKind::ipv4);

        const Ipv4Addr addr{uniform<std::uint32_t>(rng, 0, ~0u)};
        FrameSpec target = rewritten(spec, source, addr, 0);
        const std::uint16_t port = port_for_zero_checksum(target, source);
        target = rewritten(spec, source, addr, port);
        // Precondition: a full computation over the rewritten datagram gives 0x0000.
        Frame reference = test::build_frame(target);
        std::vector<std::uint8_t> seg(reference.begin() + static_cast<long>(test::l4_of(reference)),
                                      reference.end());
        seg[6] = seg[7] = 0;
        ASSERT_EQ(test::ref_checksum(seg, test::ref_pseudo_sum(target.src.value(),
                                                               target.dst.value(), 17, seg.size())),
                  0x0000);

        if (source) {
            rewrite_source(frame.data(), parsed, addr, port);
        } else {
            rewrite_destination(frame.data(), parsed, addr, port);
        }
        ASSERT_EQ(test::l4_checksum(frame), 0xffff) << "case " << i;
        ASSERT_EQ(frame, reference) << "case " << i;
    }
}

// An echo reply translated to identifier 0, with sequence 0 and no data, is a message of
// zero words apart from its checksum, which must be 0xffff (RFC 1624 section 3): the
// incremental update alone would leave 0x0000, which a receiver rejects.
TEST(Rewrite, IcmpMessageOfZeroWordsGetsAllOnes) {
    Rng rng(1624);
    for (int i = 0; i < 200; ++i) {
        FrameSpec spec = random_spec(rng);
        spec.proto = Protocol::icmp;
        spec.icmp_type = kIcmpEchoReply;
        spec.icmp_code = 0;
        spec.icmp_seq = 0;
        spec.payload.clear();
        spec.icmp_id = uniform<std::uint16_t>(rng, 1, 0xffff);
        spec.frag = 0;
        Frame frame = test::build_frame(spec);
        const ParsedPacket parsed = parse_frame(frame);
        ASSERT_EQ(parsed.kind, FrameKind::ipv4);
        const bool source = i % 2 == 0;
        const Ipv4Addr addr{uniform<std::uint32_t>(rng, 0, ~0u)};
        if (source) {
            rewrite_source(frame.data(), parsed, addr, 0);
        } else {
            rewrite_destination(frame.data(), parsed, addr, 0);
        }
        ASSERT_EQ(test::l4_checksum(frame), 0xffff) << "case " << i;
        ASSERT_EQ(frame, test::build_frame(rewritten(spec, source, addr, 0))) << "case " << i;
        ASSERT_TRUE(test::checksums_verify(frame));
    }
}

// TCP and UDP (a protocol number in the pseudo-header) and the IPv4 header (its version) never
// sum to +0, so their incremental updates agree with a full computation without settling:
// shown here with the words that can be zero set to zero and the rewrite's ports zero too.
TEST(Rewrite, TcpUdpAndIpv4NeverSumToPlusZero) {
    for (Protocol proto : {Protocol::udp, Protocol::tcp}) {
        FrameSpec spec;
        spec.proto = proto;
        spec.src = Ipv4Addr{0};
        spec.dst = Ipv4Addr{0};
        spec.src_port = 1;
        spec.dst_port = 0;
        spec.tos = 0;
        spec.ip_id = 0;
        spec.frag = 0;
        spec.ttl = 2;
        spec.tcp_flags = 0;
        spec.payload.clear();
        Frame frame = test::build_frame(spec);
        const ParsedPacket parsed = parse_frame(frame);
        ASSERT_EQ(parsed.kind, FrameKind::ipv4);
        rewrite_source(frame.data(), parsed, Ipv4Addr{0}, 0);
        EXPECT_EQ(frame, test::build_frame(rewritten(spec, true, Ipv4Addr{0}, 0)))
            << protocol_name(proto);
        EXPECT_TRUE(test::checksums_verify(frame)) << protocol_name(proto);
    }
}

TEST(Rewrite, SetEthernetAndEthernetSource) {
    Frame frame = test::build_frame(FrameSpec{});
    const MacAddr dst = test::mac(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee);
    const MacAddr src = test::mac(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
    const Frame before = frame;
    set_ethernet(frame.data(), dst, src);
    EXPECT_EQ(test::mac_dst(frame), dst);
    EXPECT_EQ(test::mac_src(frame), src);
    EXPECT_EQ(ethernet_source(frame.data()), src);
    EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), before.begin() + 12));
}

} // namespace
} // namespace ephemera
