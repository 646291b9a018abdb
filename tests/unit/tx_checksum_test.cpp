// Checksum offload on transmit: which checksums a port is given (choose_tx_checksums), which of
// them a packet may leave to it (offloadable), the rewrite that leaves them and the mbuf flags
// that name them. The rewrite is judged the way a NIC would finish it: from the pseudo-header
// sum left in the field, with the tests' own RFC 1071 code. What comes out must be the
// software path's frame, byte for byte, or offload would change what a receiver sees.
#include "../../dataplane/tx_offload.hpp"
#include "nat_harness.hpp"
#include "packet_builder.hpp"

#include "ephemera/packet.hpp"
#include "ephemera/rewrite.hpp"
#include "ephemera/tx_checksum.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ephemera {
namespace {

using namespace nat_test;
using test::Frame;
using test::FrameSpec;
using test::uniform;

constexpr TxChecksums kIpv4{TxChecksums::ipv4};
constexpr TxChecksums kUdp{TxChecksums::udp};
constexpr TxChecksums kTcp{TxChecksums::tcp};
constexpr TxChecksums kL4{TxChecksums::udp | TxChecksums::tcp};
constexpr TxChecksums kAll = TxChecksums::all();
constexpr std::uint64_t kCapaAll =
    tx_offload_capa::ipv4_cksum | tx_offload_capa::udp_cksum | tx_offload_capa::tcp_cksum;

// A NIC finishing a frame whose checksums in `left` were left to it. The fields must hold what
// DPDK asks for: 0 in the IPv4 header, the pseudo-header's sum (not complemented) in UDP or TCP.
::testing::AssertionResult nic_completes(Frame& f, TxChecksums left) {
    const std::size_t ip = test::kEth;
    const std::size_t ihl = test::ihl_of(f);
    if (left.has(TxChecksums::ipv4)) {
        if (test::get16(f, ip + 10) != 0) {
            return ::testing::AssertionFailure() << "IPv4 checksum left nonzero";
        }
        test::put16(f, ip + 10, test::ref_checksum({f.data() + ip, ihl}));
    }
    if (left.any_l4()) {
        const std::uint8_t proto = test::ip_proto(f);
        const std::size_t l4 = ip + ihl;
        const std::size_t l4_len = test::get16(f, ip + 2) - ihl;
        const std::size_t at = l4 + test::l4_checksum_at(proto);
        const std::uint16_t pseudo = test::ref_fold(
            test::ref_pseudo_sum(test::ip_src(f).value(), test::ip_dst(f).value(), proto, l4_len));
        if (test::get16(f, at) != pseudo) {
            return ::testing::AssertionFailure()
                   << "transport checksum field 0x" << std::hex << test::get16(f, at)
                   << ", pseudo-header sum 0x" << pseudo;
        }
        std::uint16_t sum = test::ref_checksum({f.data() + l4, l4_len}); // the field included
        if (proto == 17 && sum == 0) {
            sum = 0xffff;
        }
        test::put16(f, at, sum);
    }
    return ::testing::AssertionSuccess();
}

// ---- what a port is given -------------------------------------------------------------------

TEST(ChooseTxChecksums, AutoTakesWhatThePortOffers) {
    const TxChecksumChoice all =
        choose_tx_checksums(kCapaAll, ChecksumOffloadSetting::automatic, "net_ice");
    EXPECT_EQ(all.enabled, kAll);
    EXPECT_EQ(all.describe(), "ipv4 udp tcp");

    const TxChecksumChoice some =
        choose_tx_checksums(tx_offload_capa::ipv4_cksum | tx_offload_capa::tcp_cksum,
                            ChecksumOffloadSetting::automatic, "net_x");
    EXPECT_EQ(some.enabled, TxChecksums(TxChecksums::ipv4 | TxChecksums::tcp));
    EXPECT_EQ(some.describe(), "ipv4 tcp (net_x offers no UDP checksum offload)");
}

// The virtual ports (net_pcap, net_af_packet, net_memif, net_ring) offer nothing: software,
// with the reason, and no error.
TEST(ChooseTxChecksums, APortThatOffersNothingComputesInSoftware) {
    for (const auto setting : {ChecksumOffloadSetting::automatic, ChecksumOffloadSetting::ipv4}) {
        const TxChecksumChoice none = choose_tx_checksums(0, setting, "net_pcap");
        EXPECT_FALSE(none.enabled.any());
    }
    EXPECT_EQ(choose_tx_checksums(0, ChecksumOffloadSetting::automatic, "net_pcap").describe(),
              "none (net_pcap offers no IPv4, UDP or TCP checksum offload)");
    EXPECT_EQ(choose_tx_checksums(0, ChecksumOffloadSetting::ipv4, "net_ring").describe(),
              "none (net_ring offers no IPv4 checksum offload)");
}

TEST(ChooseTxChecksums, TheSettingHoldsBack) {
    const TxChecksumChoice ipv4 = choose_tx_checksums(kCapaAll, ChecksumOffloadSetting::ipv4, "n");
    EXPECT_EQ(ipv4.enabled, kIpv4);
    EXPECT_EQ(ipv4.describe(), "ipv4 (checksum_offload is ipv4)");
    const TxChecksumChoice off = choose_tx_checksums(kCapaAll, ChecksumOffloadSetting::off, "n");
    EXPECT_FALSE(off.enabled.any());
    EXPECT_EQ(off.describe(), "none (checksum_offload is off)");
}

// ---- what a packet may leave to it ------------------------------------------------------------

ParsedPacket parsed(const FrameSpec& spec) {
    return parse_frame(test::build_frame(spec));
}

TEST(Offloadable, TransportChecksumsOnlyWhereTheNicCanComputeThem) {
    const FrameSpec udp = test::udp_spec(kC, 40000, kA1, 53);
    const FrameSpec tcp = test::tcp_spec(kC, 40000, kA1, 80);
    EXPECT_EQ(offloadable(parsed(udp), kAll, 0x1234), kIpv4.with(TxChecksums::udp));
    EXPECT_EQ(offloadable(parsed(tcp), kAll, 0x1234), kIpv4.with(TxChecksums::tcp));
    EXPECT_EQ(offloadable(parsed(tcp), kL4, 0x1234), kTcp);
    EXPECT_EQ(offloadable(parsed(udp), kTcp, 0x1234), TxChecksums{});
    // UDP without a checksum (RFC 768) keeps none: a NIC would write one.
    EXPECT_EQ(offloadable(parsed(udp), kAll, 0), kIpv4);
    // ICMP's checksum covers no pseudo-header and no NIC offers it.
    EXPECT_EQ(offloadable(parsed(test::icmp_spec(kC, kA1, 7)), kAll, 0x1234), kIpv4);
    // A first piece's transport checksum covers the whole datagram, which the NIC never sees.
    FrameSpec first = udp;
    first.frag = 0x2000; // MF
    first.payload.assign(64, 0xab);
    const ParsedPacket p = parsed(first);
    ASSERT_TRUE(p.fragment);
    EXPECT_EQ(offloadable(p, kAll, 0x1234), kIpv4);
    EXPECT_EQ(offloadable(p, kL4, 0x1234), TxChecksums{});
}

// ---- the rewrite ------------------------------------------------------------------------------

// Random UDP and TCP packets, with and without IPv4 options, rewritten both ways (source for
// in2out, destination for out2in), for each set of offloads a port may have: once the NIC has
// done its part, the frame is the software rewrite's.
TEST(RewriteOffload, CompletedByTheNicEqualsTheSoftwareRewrite) {
    test::Rng rng(0x0ff10ad);
    int checked = 0;
    for (const Protocol proto : {Protocol::udp, Protocol::tcp}) {
        for (const std::size_t options : {std::size_t{0}, std::size_t{4}, std::size_t{40}}) {
            for (const bool source : {true, false}) {
                for (const TxChecksums port : {kAll, kL4, kIpv4, kUdp, kTcp}) {
                    for (int round = 0; round < 50; ++round) {
                        FrameSpec spec =
                            proto == Protocol::udp
                                ? test::udp_spec(Ipv4Addr{uniform<std::uint32_t>(rng, 1, ~0u)},
                                                 uniform<std::uint16_t>(rng, 1, 65535),
                                                 Ipv4Addr{uniform<std::uint32_t>(rng, 1, ~0u)},
                                                 uniform<std::uint16_t>(rng, 1, 65535))
                                : test::tcp_spec(Ipv4Addr{uniform<std::uint32_t>(rng, 1, ~0u)},
                                                 uniform<std::uint16_t>(rng, 1, 65535),
                                                 Ipv4Addr{uniform<std::uint32_t>(rng, 1, ~0u)},
                                                 uniform<std::uint16_t>(rng, 1, 65535));
                        spec.ip_options = options;
                        spec.ttl = uniform<std::uint8_t>(rng, 2, 255);
                        spec.ip_id = uniform<std::uint16_t>(rng, 0, 65535);
                        spec.payload = test::random_bytes(rng, uniform<std::size_t>(rng, 0, 1400));
                        const Frame before = test::build_frame(spec);
                        const ParsedPacket p = parse_frame(before);
                        ASSERT_EQ(p.kind, FrameKind::ipv4);
                        const std::uint32_t addr = wire32(uniform<std::uint32_t>(rng, 1, ~0u));
                        const std::uint16_t port_no = wire16(uniform<std::uint16_t>(rng, 1, 65535));

                        Frame software = before;
                        detail::rewrite_endpoint_wire(software.data(), p, source, addr, port_no);
                        Frame offloaded = before;
                        const TxChecksums left = detail::rewrite_endpoint_offload(
                            offloaded.data(), p, source, addr, port_no, port);
                        const TxChecksums l4 =
                            proto == Protocol::udp ? kUdp : kTcp; // the port's, if it has it
                        EXPECT_EQ(left, TxChecksums(port.bits() & (kIpv4.bits() | l4.bits())));

                        ASSERT_TRUE(nic_completes(offloaded, left));
                        ASSERT_EQ(offloaded, software)
                            << "proto " << int(proto) << " options " << options << " source "
                            << source << " port " << port.names() << " round " << round;
                        EXPECT_TRUE(test::checksums_verify(offloaded));
                        ++checked;
                    }
                }
            }
        }
    }
    EXPECT_EQ(checked, 2 * 3 * 2 * 5 * 50);
}

// The NIC completes what the rewrite left; so does the tx stage before it splits a packet
// itself (the pieces are new buffers the port is told nothing about).
TEST(RewriteOffload, CompletingInSoftwareAgreesWithTheNic) {
    for (const Protocol proto : {Protocol::udp, Protocol::tcp}) {
        FrameSpec spec = proto == Protocol::udp ? test::udp_spec(kC, 40000, kA1, 53)
                                                : test::tcp_spec(kC, 40000, kA1, 80);
        spec.ip_options = 8;
        spec.payload.assign(333, 0x5a);
        const Frame before = test::build_frame(spec);
        const ParsedPacket p = parse_frame(before);
        Frame nic = before;
        const TxChecksums left = detail::rewrite_endpoint_offload(
            nic.data(), p, true, wire32(kX.value()), wire16(50000), kAll);
        Frame software = nic;
        ASSERT_TRUE(nic_completes(nic, left));
        complete_offloaded_checksums(software.data(), p, left);
        EXPECT_EQ(software, nic);
    }
}

// ---- through the translator -------------------------------------------------------------------

struct Case {
    const char* name;
    FrameSpec out;    // the subscriber's packet
    TxChecksums left; // what its established-flow packets leave to a port offering everything
};

std::vector<Case> cases() {
    FrameSpec udp = udp_from(kC, 40000, kA1, 53);
    udp.ip_options = 12;
    udp.payload.assign(100, 0x11);
    FrameSpec tcp = inside(test::tcp_spec(kC, 40001, kA1, 80));
    tcp.ip_options = 8;
    tcp.payload.assign(51, 0x22); // odd: the NIC pads the last byte
    FrameSpec udp_no_checksum = udp_from(kC, 40002, kA1, 53);
    udp_no_checksum.udp_checksum = false;
    FrameSpec ping = inside(test::icmp_spec(kC, kA1, 0x777));
    return {{"udp with options", udp, kIpv4.with(TxChecksums::udp)},
            {"tcp with options", tcp, kIpv4.with(TxChecksums::tcp)},
            {"udp without checksum", udp_no_checksum, kIpv4},
            {"icmp echo", ping, kIpv4}};
}

// An established flow's packets, both ways, through a translator whose ports offer every
// checksum and one whose ports offer none: the same frames once the NIC is done, and the
// packets that took the slow path (the flow's first) left nothing to it.
TEST(TranslatorOffload, EstablishedFlowsBothWaysMatchTheSoftwarePath) {
    for (const Case& c : cases()) {
        SCOPED_TRACE(c.name);
        Nat software(make_config());
        Nat offload(make_config());
        offload.set_tx_checksums(kAll);

        FrameSpec first = c.out;
        Frame a = test::build_frame(first);
        Frame b = a;
        ASSERT_EQ(software.in2out(a), Verdict::forward);
        ASSERT_EQ(offload.in2out(b), Verdict::forward);
        EXPECT_FALSE(offload.tx_checksums_left()[0].any()) << "the slow path is software";
        ASSERT_EQ(b, a);
        const Endpoint ext = source_of(a);

        FrameSpec next = c.out;
        next.tcp_flags = 0x10; // ACK: no state change
        next.icmp_seq = 2;
        next.payload.push_back(0x33);
        for (const bool in2out : {true, false}) {
            SCOPED_TRACE(in2out ? "in2out" : "out2in");
            Frame sw = test::build_frame(in2out ? next : reply_to(next, ext));
            Frame off = sw;
            ASSERT_EQ(in2out ? software.in2out(sw) : software.out2in(sw), Verdict::forward);
            ASSERT_EQ(in2out ? offload.in2out(off) : offload.out2in(off), Verdict::forward);
            EXPECT_FALSE(software.tx_checksums_left()[0].any());
            const TxChecksums left = offload.tx_checksums_left()[0];
            EXPECT_EQ(left, c.left);
            ASSERT_TRUE(nic_completes(off, left));
            EXPECT_EQ(off, sw);
            EXPECT_TRUE(test::checksums_verify(off, true));
        }
    }
}

// A port that computes only the IPv4 header's checksum is given only that one.
TEST(TranslatorOffload, OnlyWhatThePortOffers) {
    Nat software(make_config());
    Nat offload(make_config());
    offload.set_tx_checksums(kIpv4);
    Frame a = test::build_frame(udp_from(kC, 40000, kA1, 53));
    Frame b = a;
    ASSERT_EQ(software.in2out(a), Verdict::forward);
    ASSERT_EQ(offload.in2out(b), Verdict::forward);
    a = test::build_frame(udp_from(kC, 40000, kA1, 53));
    b = a;
    ASSERT_EQ(software.in2out(a), Verdict::forward);
    ASSERT_EQ(offload.in2out(b), Verdict::forward);
    EXPECT_EQ(offload.tx_checksums_left()[0], kIpv4);
    ASSERT_TRUE(nic_completes(b, kIpv4));
    EXPECT_EQ(b, a);
}

// ---- the mbuf -----------------------------------------------------------------------------------

TEST(TxOffloadFlags, FlagsAndHeaderLengthsForTheDriver) {
    FrameSpec spec = test::tcp_spec(kC, 40000, kA1, 80);
    spec.ip_options = 8;
    const ParsedPacket tcp = parsed(spec);
    rte_mbuf m{};
    m.ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD; // what the port said on arrival stays
    leave_checksums_to_port(&m, tcp, kIpv4.with(TxChecksums::tcp));
    EXPECT_EQ(m.ol_flags, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_TX_IPV4 |
                              RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM);
    EXPECT_EQ(m.l2_len, 14u);
    EXPECT_EQ(m.l3_len, 28u);

    const ParsedPacket udp = parsed(test::udp_spec(kC, 40000, kA1, 53));
    rte_mbuf u{};
    leave_checksums_to_port(&u, udp, kUdp);
    EXPECT_EQ(u.ol_flags, RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM);
    EXPECT_EQ(u.l2_len, 14u);
    EXPECT_EQ(u.l3_len, 20u);

    // Ethernet padding (not zeros here) is cut off: the NIC would sum it into the checksum.
    FrameSpec short_udp = test::udp_spec(kC, 40000, kA1, 53);
    short_udp.payload.clear();
    short_udp.pad_to = 60;
    Frame padded = test::build_frame(short_udp);
    std::fill(padded.begin() + 42, padded.end(), std::uint8_t{0xa5});
    const ParsedPacket p = parse_frame(padded);
    ASSERT_EQ(p.ip_total_len, 28u);
    rte_mbuf s{};
    s.data_len = 60;
    s.pkt_len = 60;
    leave_checksums_to_port(&s, p, kUdp);
    EXPECT_EQ(s.data_len, 42u);
    EXPECT_EQ(s.pkt_len, 42u);

    rte_mbuf i{};
    leave_checksums_to_port(&i, udp, kIpv4);
    EXPECT_EQ(i.ol_flags, RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
    EXPECT_EQ(tx_offload_flags(kIpv4.with(TxChecksums::udp)),
              RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM);
    EXPECT_EQ(tx_offload_flags(TxChecksums{}), 0u);
}

} // namespace
} // namespace ephemera
