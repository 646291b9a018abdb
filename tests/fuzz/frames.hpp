// Frames for the translator fuzzer: building valid Ethernet/IPv4/UDP|TCP|ICMP frames and ARP,
// and checking the checksums of what ephemera sends. The checksum code here is the harness's
// own (RFC 1071 by the book), so that a mistake shared with include/ephemera/checksum.hpp
// cannot hide itself.
#pragma once

#include "ephemera/types.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace ephemera::fuzz {

inline constexpr std::uint8_t kIcmp = 1;
inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;
inline constexpr std::size_t kEthLen = 14;

using Bytes = std::vector<std::uint8_t>;

inline std::uint16_t be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
void put16(std::uint8_t* p, std::uint16_t v);
void put32(std::uint8_t* p, std::uint32_t v);

// The one's-complement sum of `bytes` as big-endian 16-bit words (an odd last byte is the high
// half of a word), added to `sum`; and the checksum to store for a sum.
std::uint32_t sum16(std::span<const std::uint8_t> bytes, std::uint32_t sum = 0);
std::uint16_t checksum_of(std::uint32_t sum);
// Whether a block that holds its own checksum field sums to all ones.
bool sums_to_ones(std::uint32_t sum);

// An IPv4 header (version 4, IHL in range) whose checksum is right.
bool ipv4_header_ok(std::span<const std::uint8_t> header);

// The transport checksum of a whole (unfragmented) IPv4 packet, from its header to its total
// length: valid, invalid, or absent (UDP's zero, a protocol without one, a header too short to
// hold the field). ICMP's has no pseudo-header; UDP's and TCP's cover the IP payload.
enum class L4Sum : std::uint8_t { valid, invalid, absent };
L4Sum transport_checksum(std::span<const std::uint8_t> packet);

// Transport segments, each with its checksum for (src, dst).
Bytes udp_segment(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                  std::span<const std::uint8_t> payload);
Bytes tcp_segment(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                  std::uint8_t flags, std::uint32_t seq, std::span<const std::uint8_t> payload);
Bytes icmp_echo(std::uint8_t type, std::uint16_t id, std::uint16_t seq,
                std::span<const std::uint8_t> payload);
Bytes icmp_message(std::uint8_t type, std::uint8_t code, std::uint32_t rest,
                   std::span<const std::uint8_t> body);

// One IPv4 packet in an Ethernet frame. `l4` is what this frame carries after the IP header
// (for a fragment, its piece of the datagram).
struct Ipv4Spec {
    MacAddr dst_mac;
    MacAddr src_mac;
    std::uint8_t ttl = 64;
    std::uint8_t proto = kUdp;
    std::uint16_t id = 0;
    bool df = false;
    bool mf = false;
    std::uint16_t offset = 0; // bytes, a multiple of 8
    std::uint32_t src = 0;
    std::uint32_t dst = 0;
    Bytes options; // a multiple of 4 bytes, at most 40
};
Bytes ipv4_frame(const Ipv4Spec& spec, std::span<const std::uint8_t> l4);

// Recomputes the IPv4 header checksum of an Ethernet frame, if it holds a whole header.
void refresh_ip_checksum(Bytes& frame);

// An Ethernet/ARP frame for IPv4 (42 bytes, padded to 60).
Bytes arp_frame(const MacAddr& dst_mac, const MacAddr& src_mac, std::uint16_t op,
                const MacAddr& sender_mac, std::uint32_t sender_ip, const MacAddr& target_mac,
                std::uint32_t target_ip);

} // namespace ephemera::fuzz
