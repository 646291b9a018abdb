// Splitting an IPv4 packet into pieces that fit a port's MTU (RFC 791 section 3.2), for packets
// whose DF flag is clear (RFC 4787 REQ-13), and the header rewrite of a translated later piece.
// Plain C++ over byte spans: the worker provides a buffer per piece.
#pragma once

#include "ephemera/checksum.hpp"
#include "ephemera/packet.hpp"

#include <cstdint>
#include <cstring>
#include <span>

namespace ephemera {

// A later piece's header: the fixed 20 bytes and the options whose copied flag is set (RFC 791:
// only those are repeated in every fragment), padded to a multiple of 4 with end-of-options.
// `out` holds at least 60 bytes; returns the header length.
std::size_t later_piece_header(std::span<const std::uint8_t> header, std::uint8_t* out);

// How many pieces the IPv4 packet described by `p` becomes under `mtu` (1: it fits).
std::size_t split_count(std::span<const std::uint8_t> frame, const ParsedPacket& p,
                        std::uint16_t mtu);

// Writes piece `index` (of split_count()) of the frame into `out` as a whole Ethernet frame (the
// Ethernet header copied, DF clear, MF set on all but the last unless the packet was itself a
// non-final fragment, IP checksum computed). Returns its length, or 0 when `out` is too small.
std::size_t write_split_piece(std::span<const std::uint8_t> frame, const ParsedPacket& p,
                              std::uint16_t mtu, std::size_t index, std::span<std::uint8_t> out);

// A translated later piece (no transport header): the source (in2out) or destination (out2in)
// becomes `addr`, TTL drops by one, the IP checksum is updated (RFC 1624). The transport
// checksum lives in the first piece, whose update already covers the whole datagram.
inline void rewrite_piece_address(std::uint8_t* frame, const ParsedPacket& p, bool source,
                                  Ipv4Addr addr) {
    std::uint8_t* ip = frame + p.l3;
    std::uint8_t* addr_field = ip + (source ? ipv4_off::src : ipv4_off::dst);
    const std::uint32_t old_addr = load_wire32(addr_field);
    store_be32(addr_field, addr.value());
    std::uint8_t* ttl_word = ip + ipv4_off::ttl;
    const std::uint16_t old_ttl_word = load_wire16(ttl_word);
    ttl_word[0] = static_cast<std::uint8_t>(ttl_word[0] - 1);
    std::uint16_t sum = load_wire16(ip + ipv4_off::checksum);
    sum = checksum_adjust32(sum, old_addr, load_wire32(addr_field));
    sum = checksum_adjust16(sum, old_ttl_word, load_wire16(ttl_word));
    store_wire16(ip + ipv4_off::checksum, sum);
}

} // namespace ephemera
