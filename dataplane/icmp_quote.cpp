// Reading the packet an ICMP error quotes (RFC 5508 REQ-3). Everything a translation will read
// or write is checked to lie within the IP packet here, once.
#include "ephemera/icmp_translate.hpp"

namespace ephemera {

namespace {

constexpr std::uint16_t kIpFragmentOffsetMask = 0x1fff;

bool checksum_verifies(const std::uint8_t* bytes, std::size_t len) {
    return fold_checksum(checksum_partial({bytes, len})) == 0xffff;
}

} // namespace

Counter parse_icmp_error(std::span<const std::uint8_t> frame, ParsedPacket& p) {
    const std::uint8_t* d = frame.data();
    const std::size_t end = std::size_t{p.l3} + p.ip_total_len; // the quote ends with the packet
    if (!checksum_verifies(d + p.l4, end - p.l4)) {
        return Counter::drop_icmp_error_bad_checksum;
    }
    const std::size_t inner_l3 = std::size_t{p.l4} + kIcmpHeaderLen;
    if (end < inner_l3 + kIpv4MinHeaderLen) {
        return Counter::drop_icmp_error_truncated;
    }
    const std::uint8_t* ip = d + inner_l3;
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    if ((ip[0] >> 4) != 4 || ihl < kIpv4MinHeaderLen || end < inner_l3 + ihl) {
        return Counter::drop_icmp_error_truncated; // not a whole IPv4 header
    }
    if (!checksum_verifies(ip, ihl)) {
        return Counter::drop_icmp_error_bad_inner_checksum;
    }
    const std::size_t inner_l4 = inner_l3 + ihl;
    // Ports (or the echo type and identifier) are all a translation needs (RFC 792: the
    // header and 64 bits of the datagram).
    if (end < inner_l4 + 8) {
        return Counter::drop_icmp_error_truncated;
    }
    if ((load_be16(ip + 6) & kIpFragmentOffsetMask) != 0) {
        return Counter::drop_icmp_error_unsupported; // a later fragment quotes no ports
    }
    const std::uint8_t* l4 = d + inner_l4;
    switch (ip[ipv4_off::protocol]) {
    case static_cast<std::uint8_t>(Protocol::udp):
    case static_cast<std::uint8_t>(Protocol::tcp):
        p.inner_proto = static_cast<Protocol>(ip[ipv4_off::protocol]);
        p.inner_src_port = load_be16(l4);
        p.inner_dst_port = load_be16(l4 + 2);
        break;
    case static_cast<std::uint8_t>(Protocol::icmp):
        // Only queries have an identifier to translate; an error about an error is dropped.
        if (l4[0] != kIcmpEchoRequest && l4[0] != kIcmpEchoReply) {
            return Counter::drop_icmp_error_unsupported;
        }
        p.inner_proto = Protocol::icmp;
        p.inner_src_port = load_be16(l4 + 4);
        p.inner_dst_port = p.inner_src_port;
        break;
    default:
        return Counter::drop_icmp_error_unsupported;
    }
    p.icmp_error = true;
    p.inner_l3 = static_cast<std::uint16_t>(inner_l3);
    p.inner_l4 = static_cast<std::uint16_t>(inner_l4);
    p.inner_src = Ipv4Addr{load_be32(ip + ipv4_off::src)};
    p.inner_dst = Ipv4Addr{load_be32(ip + ipv4_off::dst)};
    // The NAT side of the quoted flow, where ownership looks (see packet.hpp).
    p.src_port = p.inner_dst_port;
    p.dst_port = p.inner_src_port;
    return Counter::count_;
}

} // namespace ephemera
