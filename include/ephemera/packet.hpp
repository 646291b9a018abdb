// The packet view: an Ethernet frame as a byte span, and the result of parsing it. Every
// offset here has been checked against the frame's length by parse_frame(); code that holds a
// ParsedPacket may read and write those headers without further checks.
#pragma once

#include "ephemera/checksum.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <span>

namespace ephemera {

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::size_t kEthHeaderLen = 14;
inline constexpr std::size_t kIpv4MinHeaderLen = 20;
inline constexpr std::size_t kUdpHeaderLen = 8;
inline constexpr std::size_t kTcpMinHeaderLen = 20;
inline constexpr std::size_t kIcmpHeaderLen = 8;
inline constexpr std::uint8_t kIcmpEchoReply = 0;
inline constexpr std::uint8_t kIcmpEchoRequest = 8;
inline constexpr std::uint8_t kIcmpDestUnreachable = 3;
inline constexpr std::uint8_t kIcmpTimeExceeded = 11;
inline constexpr std::uint8_t kIcmpParameterProblem = 12;

// IPv4 header field offsets, from the start of the IP header.
namespace ipv4_off {
inline constexpr std::size_t ttl = 8;
inline constexpr std::size_t protocol = 9;
inline constexpr std::size_t checksum = 10;
inline constexpr std::size_t src = 12;
inline constexpr std::size_t dst = 16;
} // namespace ipv4_off

inline std::uint16_t load_be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline std::uint32_t load_be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
inline void store_be16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
inline std::uint32_t load_wire32(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

enum class FrameKind : std::uint8_t { ipv4, arp, dropped };

// What parse_frame() learned. For ICMP echo, `src_port` and `dst_port` both hold the
// identifier: it names the flow the way a port does (RFC 5508 REQ-1).
struct ParsedPacket {
    FrameKind kind = FrameKind::dropped;
    Counter drop_reason = Counter::drop_truncated; // valid when kind == dropped
    Protocol proto = Protocol::udp;
    std::uint8_t icmp_type = 0;
    std::uint16_t l3 = 0; // offset of the IPv4 (or ARP) header
    std::uint16_t l4 = 0; // offset of the transport header
    std::uint16_t ip_total_len = 0;
    Ipv4Addr src;
    Ipv4Addr dst;
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint8_t tcp_flags = 0;

    // Fragments (RFC 4787 REQ-14, RFC 791). `fragment` is set for every piece of a fragmented
    // datagram. The first (offset 0, MF set) carries the transport header and parses as any
    // packet; a later one (offset > 0) has no transport header: `l4` is where its payload
    // starts and the ports are 0. `dont_fragment` is the DF flag of any packet.
    bool fragment = false;
    bool later_fragment = false; // offset > 0: no transport header
    bool more_fragments = false;
    bool dont_fragment = false;
    std::uint16_t ip_id = 0;
    std::uint16_t fragment_offset = 0; // in bytes
    // ICMP errors (types 3, 11, 12; RFC 5508). When icmp_error is set the message's checksum
    // and the quoted IPv4 header's checksum have been verified, and the quote holds that
    // header and at least 8 bytes of its transport header (inner_l4 + 8 <= l3 + ip_total_len).
    // The inner_* fields describe the quoted packet; its checksum field lies in the quote
    // only if inner_l4 + l4_checksum_offset(inner_proto) + 2 <= l3 + ip_total_len. The
    // top-level ports name the NAT side of the quoted flow, so ownership works unchanged:
    // dst_port = inner_src_port (an error from outside, about a packet we sent from E:e, goes
    // to E and belongs to port_owner(E, e)), src_port = inner_dst_port (an error from a
    // subscriber, about a packet it received at I:i). For quoted ICMP echo both inner ports
    // hold the identifier.
    bool icmp_error = false;
    Protocol inner_proto = Protocol::udp;
    std::uint16_t inner_l3 = 0; // offset of the quoted IPv4 header
    std::uint16_t inner_l4 = 0; // offset of the quoted transport header
    Ipv4Addr inner_src;
    Ipv4Addr inner_dst;
    std::uint16_t inner_src_port = 0;
    std::uint16_t inner_dst_port = 0;
};

// Parses Ethernet / IPv4 / UDP|TCP|ICMP echo|ICMP error. Never reads outside `frame`. A frame it
// cannot translate comes back with kind == dropped and the counter that names why; ARP comes back
// with kind == arp and l3 set (l2.hpp handles it).
ParsedPacket parse_frame(std::span<const std::uint8_t> frame);

// Bytes of IP payload this packet carries (for a fragment: its piece of the datagram).
constexpr std::uint16_t ip_payload_length(const ParsedPacket& p) {
    return static_cast<std::uint16_t>(p.ip_total_len - (p.l4 - p.l3));
}

// Offset of the L4 checksum field from the start of the transport header.
constexpr std::size_t l4_checksum_offset(Protocol p) {
    switch (p) {
    case Protocol::udp:
        return 6;
    case Protocol::tcp:
        return 16;
    case Protocol::icmp:
        break;
    }
    return 2;
}

} // namespace ephemera
