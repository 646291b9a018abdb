// ICMP errors that ephemera itself originates: destination unreachable 3/1 to a subscriber for
// whom no mapping can be made (RFC 6888 REQ-11). Built in place in the packet's own buffer, so
// nothing is allocated on the packet path.
#pragma once

#include "ephemera/packet.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <span>

namespace ephemera {

inline constexpr std::uint8_t kIcmpHostUnreachable = 1;
inline constexpr std::uint8_t kIcmpPortUnreachable = 3;
inline constexpr std::uint8_t kIcmpFragmentationNeeded = 4; // RFC 1191: next-hop MTU in bytes 6-7
// RFC 1812 4.3.2.3: quote as much of the original as fits in a 576-byte ICMP datagram.
inline constexpr std::size_t kIcmpErrorMaxIpLen = 576;

// Turns the IPv4 packet in `buffer` (described by `p`, frame length `length`) into an ICMP
// error of `type`/`code` from `from` (our address) back to the packet's source, addressed at
// L2 to the frame's sender from `our_mac`. `buffer` spans all writable bytes from the frame
// start. `rest` fills ICMP header bytes 4-7 (the next-hop MTU of 3/4, RFC 1191; 0 otherwise).
// Returns the new frame length (at least the 60-byte Ethernet minimum), or 0 when the
// buffer is too small to hold even the 28-byte quote RFC 792 requires.
std::size_t write_icmp_error(std::span<std::uint8_t> buffer, std::size_t length,
                             const ParsedPacket& p, std::uint8_t type, std::uint8_t code,
                             Ipv4Addr from, const MacAddr& our_mac, std::uint32_t rest = 0);

} // namespace ephemera
