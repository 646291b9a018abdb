#include "ephemera/packet.hpp"

#include "ephemera/icmp_translate.hpp"

namespace ephemera {

namespace {

ParsedPacket dropped(Counter reason) {
    ParsedPacket p;
    p.kind = FrameKind::dropped;
    p.drop_reason = reason;
    return p;
}

constexpr std::uint16_t kIpFlagMoreFragments = 0x2000;
constexpr std::uint16_t kIpFragmentOffsetMask = 0x1fff;

} // namespace

ParsedPacket parse_frame(std::span<const std::uint8_t> frame) {
    const std::uint8_t* d = frame.data();
    const std::size_t len = frame.size();
    if (len < kEthHeaderLen) {
        return dropped(Counter::drop_truncated);
    }
    const std::uint16_t ether_type = load_be16(d + 12);
    if (ether_type == kEtherTypeArp) {
        ParsedPacket p;
        p.kind = FrameKind::arp;
        p.l3 = kEthHeaderLen;
        return p;
    }
    if (ether_type != kEtherTypeIpv4) {
        return dropped(Counter::drop_not_ipv4);
    }

    const std::size_t l3 = kEthHeaderLen;
    if (len < l3 + kIpv4MinHeaderLen) {
        return dropped(Counter::drop_truncated);
    }
    const std::uint8_t* ip = d + l3;
    if ((ip[0] >> 4) != 4) {
        return dropped(Counter::drop_bad_version);
    }
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    if (ihl < kIpv4MinHeaderLen) {
        return dropped(Counter::drop_bad_ihl);
    }
    if (len < l3 + ihl) {
        return dropped(Counter::drop_truncated);
    }
    const std::size_t total = load_be16(ip + 2);
    if (total < ihl || l3 + total > len) {
        return dropped(Counter::drop_bad_total_length);
    }
    // A correct header sums to 0xffff including its own checksum field.
    if (fold_checksum(checksum_partial({ip, ihl})) != 0xffff) {
        return dropped(Counter::drop_bad_ip_checksum);
    }
    const std::uint16_t frag = load_be16(ip + 6);
    if ((frag & (kIpFlagMoreFragments | kIpFragmentOffsetMask)) != 0) {
        return dropped(Counter::drop_fragment);
    }

    ParsedPacket p;
    p.kind = FrameKind::ipv4;
    p.l3 = static_cast<std::uint16_t>(l3);
    p.l4 = static_cast<std::uint16_t>(l3 + ihl);
    p.ip_total_len = static_cast<std::uint16_t>(total);
    p.src = Ipv4Addr{load_be32(ip + ipv4_off::src)};
    p.dst = Ipv4Addr{load_be32(ip + ipv4_off::dst)};
    const std::size_t l4_len = total - ihl;
    const std::uint8_t* l4 = d + p.l4;

    switch (ip[ipv4_off::protocol]) {
    case static_cast<std::uint8_t>(Protocol::udp):
        if (l4_len < kUdpHeaderLen) {
            return dropped(Counter::drop_truncated);
        }
        p.proto = Protocol::udp;
        p.src_port = load_be16(l4);
        p.dst_port = load_be16(l4 + 2);
        return p;
    case static_cast<std::uint8_t>(Protocol::tcp): {
        if (l4_len < kTcpMinHeaderLen) {
            return dropped(Counter::drop_truncated);
        }
        const std::size_t data_offset = static_cast<std::size_t>(l4[12] >> 4) * 4;
        if (data_offset < kTcpMinHeaderLen || data_offset > l4_len) {
            return dropped(Counter::drop_truncated);
        }
        p.proto = Protocol::tcp;
        p.src_port = load_be16(l4);
        p.dst_port = load_be16(l4 + 2);
        p.tcp_flags = l4[13];
        return p;
    }
    case static_cast<std::uint8_t>(Protocol::icmp):
        if (l4_len < kIcmpHeaderLen) {
            return dropped(Counter::drop_truncated);
        }
        p.proto = Protocol::icmp;
        p.icmp_type = l4[0];
        if (is_icmp_error_type(p.icmp_type)) {
            const Counter why = parse_icmp_error(frame, p);
            return why == Counter::count_ ? p : dropped(why);
        }
        if (p.icmp_type != kIcmpEchoRequest && p.icmp_type != kIcmpEchoReply) {
            return dropped(Counter::drop_unsupported_protocol);
        }
        p.src_port = load_be16(l4 + 4);
        p.dst_port = p.src_port;
        return p;
    default:
        return dropped(Counter::drop_unsupported_protocol);
    }
}

} // namespace ephemera
