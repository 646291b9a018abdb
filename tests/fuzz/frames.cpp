#include "frames.hpp"

#include <algorithm>
#include <cstring>

namespace ephemera::fuzz {

namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherArp = 0x0806;

// The pseudo-header of RFC 768 and RFC 793: source, destination, zero, protocol, length.
std::uint32_t pseudo_header(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                            std::size_t length) {
    std::uint8_t p[12] = {};
    put32(p, src);
    put32(p + 4, dst);
    p[9] = proto;
    put16(p + 10, static_cast<std::uint16_t>(length));
    return sum16(p);
}

void write_ethernet(std::uint8_t* d, const MacAddr& dst, const MacAddr& src,
                    std::uint16_t ether_type) {
    std::memcpy(d, dst.bytes, 6);
    std::memcpy(d + 6, src.bytes, 6);
    put16(d + 12, ether_type);
}

} // namespace

void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}

void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
}

std::uint32_t sum16(std::span<const std::uint8_t> bytes, std::uint32_t sum) {
    std::size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2) {
        sum += be16(bytes.data() + i);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if (i < bytes.size()) {
        sum += std::uint32_t{bytes[i]} << 8;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

std::uint16_t checksum_of(std::uint32_t sum) {
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

bool sums_to_ones(std::uint32_t sum) {
    return checksum_of(sum) == 0;
}

bool ipv4_header_ok(std::span<const std::uint8_t> header) {
    if (header.size() < 20 || (header[0] >> 4) != 4) {
        return false;
    }
    const std::size_t ihl = std::size_t{header[0] & 0x0fu} * 4;
    return ihl >= 20 && ihl <= header.size() && sums_to_ones(sum16(header.first(ihl)));
}

L4Sum transport_checksum(std::span<const std::uint8_t> packet) {
    const std::size_t ihl = std::size_t{packet[0] & 0x0fu} * 4;
    const std::span<const std::uint8_t> l4 = packet.subspan(ihl);
    const std::uint32_t src = be32(packet.data() + 12);
    const std::uint32_t dst = be32(packet.data() + 16);
    switch (packet[9]) {
    case kUdp:
        if (l4.size() < 8) {
            return L4Sum::absent;
        }
        if (be16(l4.data() + 6) == 0) {
            return L4Sum::absent; // the sender chose none (RFC 768)
        }
        return sums_to_ones(sum16(l4, pseudo_header(src, dst, kUdp, l4.size()))) ? L4Sum::valid
                                                                                 : L4Sum::invalid;
    case kTcp:
        if (l4.size() < 18) {
            return L4Sum::absent;
        }
        return sums_to_ones(sum16(l4, pseudo_header(src, dst, kTcp, l4.size()))) ? L4Sum::valid
                                                                                 : L4Sum::invalid;
    case kIcmp:
        if (l4.size() < 4) {
            return L4Sum::absent;
        }
        return sums_to_ones(sum16(l4)) ? L4Sum::valid : L4Sum::invalid;
    default:
        return L4Sum::absent;
    }
}

Bytes udp_segment(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                  std::span<const std::uint8_t> payload) {
    Bytes s(8 + payload.size());
    put16(s.data(), sport);
    put16(s.data() + 2, dport);
    put16(s.data() + 4, static_cast<std::uint16_t>(s.size()));
    std::copy(payload.begin(), payload.end(), s.begin() + 8);
    std::uint16_t sum = checksum_of(sum16(s, pseudo_header(src, dst, kUdp, s.size())));
    put16(s.data() + 6, sum == 0 ? 0xffff : sum); // a computed zero is sent as all ones
    return s;
}

Bytes tcp_segment(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                  std::uint8_t flags, std::uint32_t seq, std::span<const std::uint8_t> payload) {
    Bytes s(20 + payload.size());
    put16(s.data(), sport);
    put16(s.data() + 2, dport);
    put32(s.data() + 4, seq);
    put32(s.data() + 8, (flags & 0x10) != 0 ? seq ^ 0x5a5a5a5au : 0);
    s[12] = 5 << 4;
    s[13] = flags;
    put16(s.data() + 14, 65535);
    std::copy(payload.begin(), payload.end(), s.begin() + 20);
    put16(s.data() + 16, checksum_of(sum16(s, pseudo_header(src, dst, kTcp, s.size()))));
    return s;
}

Bytes icmp_echo(std::uint8_t type, std::uint16_t id, std::uint16_t seq,
                std::span<const std::uint8_t> payload) {
    Bytes s(8 + payload.size());
    s[0] = type;
    put16(s.data() + 4, id);
    put16(s.data() + 6, seq);
    std::copy(payload.begin(), payload.end(), s.begin() + 8);
    put16(s.data() + 2, checksum_of(sum16(s)));
    return s;
}

Bytes icmp_message(std::uint8_t type, std::uint8_t code, std::uint32_t rest,
                   std::span<const std::uint8_t> body) {
    Bytes s(8 + body.size());
    s[0] = type;
    s[1] = code;
    put32(s.data() + 4, rest);
    std::copy(body.begin(), body.end(), s.begin() + 8);
    put16(s.data() + 2, checksum_of(sum16(s)));
    return s;
}

Bytes ipv4_frame(const Ipv4Spec& spec, std::span<const std::uint8_t> l4) {
    const std::size_t ihl = 20 + spec.options.size();
    Bytes f(kEthLen + ihl + l4.size());
    write_ethernet(f.data(), spec.dst_mac, spec.src_mac, kEtherIpv4);
    std::uint8_t* ip = f.data() + kEthLen;
    ip[0] = static_cast<std::uint8_t>(0x40 | ihl / 4);
    put16(ip + 2, static_cast<std::uint16_t>(ihl + l4.size()));
    put16(ip + 4, spec.id);
    put16(ip + 6, static_cast<std::uint16_t>((spec.df ? 0x4000 : 0) | (spec.mf ? 0x2000 : 0) |
                                             (spec.offset / 8 & 0x1fff)));
    ip[8] = spec.ttl;
    ip[9] = spec.proto;
    put32(ip + 12, spec.src);
    put32(ip + 16, spec.dst);
    std::copy(spec.options.begin(), spec.options.end(), ip + 20);
    put16(ip + 10, checksum_of(sum16({ip, ihl})));
    std::copy(l4.begin(), l4.end(), ip + ihl);
    return f;
}

void refresh_ip_checksum(Bytes& frame) {
    if (frame.size() < kEthLen + 20 || be16(frame.data() + 12) != kEtherIpv4) {
        return;
    }
    std::uint8_t* ip = frame.data() + kEthLen;
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    if (ihl < 20 || kEthLen + ihl > frame.size()) {
        return;
    }
    put16(ip + 10, 0);
    put16(ip + 10, checksum_of(sum16({ip, ihl})));
}

Bytes arp_frame(const MacAddr& dst_mac, const MacAddr& src_mac, std::uint16_t op,
                const MacAddr& sender_mac, std::uint32_t sender_ip, const MacAddr& target_mac,
                std::uint32_t target_ip) {
    Bytes f(60);
    write_ethernet(f.data(), dst_mac, src_mac, kEtherArp);
    std::uint8_t* a = f.data() + kEthLen;
    put16(a, 1);
    put16(a + 2, kEtherIpv4);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    std::memcpy(a + 8, sender_mac.bytes, 6);
    put32(a + 14, sender_ip);
    std::memcpy(a + 18, target_mac.bytes, 6);
    put32(a + 24, target_ip);
    return f;
}

} // namespace ephemera::fuzz
