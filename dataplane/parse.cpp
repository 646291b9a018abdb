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

constexpr std::uint16_t kIpFlagDontFragment = 0x4000;
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

    ParsedPacket p;
    p.dont_fragment = (frag & kIpFlagDontFragment) != 0;
    p.more_fragments = (frag & kIpFlagMoreFragments) != 0;
    p.fragment_offset = static_cast<std::uint16_t>((frag & kIpFragmentOffsetMask) * 8);
    p.fragment = p.more_fragments || p.fragment_offset != 0;
    p.later_fragment = p.fragment_offset != 0;
    p.ip_id = load_be16(ip + 4);
    if (p.fragment && ((p.more_fragments && (total - ihl) % 8 != 0) ||
                       std::size_t{p.fragment_offset} + (total - ihl) > 0xffff)) {
        // Every piece but the last carries a multiple of 8 bytes, and no datagram is longer
        // than 65535 bytes (RFC 791).
        return dropped(Counter::drop_fragment);
    }

    p.kind = FrameKind::ipv4;
    p.l3 = static_cast<std::uint16_t>(l3);
    p.l4 = static_cast<std::uint16_t>(l3 + ihl);
    p.ip_total_len = static_cast<std::uint16_t>(total);
    p.src = Ipv4Addr{load_be32(ip + ipv4_off::src)};
    p.dst = Ipv4Addr{load_be32(ip + ipv4_off::dst)};
    const std::size_t l4_len = total - ihl;
    const std::uint8_t* l4 = d + p.l4;

    if (p.later_fragment) {
        switch (ip[ipv4_off::protocol]) {
        case static_cast<std::uint8_t>(Protocol::tcp):
            // RFC 1858: a piece at offset 8 could overwrite the TCP flags the first one showed.
            if (p.fragment_offset == 8) {
                return dropped(Counter::drop_fragment);
            }
            p.proto = Protocol::tcp;
            return p;
        case static_cast<std::uint8_t>(Protocol::udp):
            p.proto = Protocol::udp;
            return p;
        case static_cast<std::uint8_t>(Protocol::icmp):
            p.proto = Protocol::icmp;
            return p;
        default:
            return dropped(Counter::drop_unsupported_protocol);
        }
    }

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
