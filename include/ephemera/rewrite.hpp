// Header rewrites with incremental checksum updates (RFC 1624). The frame must have passed
// parse_frame(): offsets in ParsedPacket are trusted here.
#pragma once

#include "ephemera/packet.hpp"

namespace ephemera {

namespace detail {

// Fix the transport checksum for a changed address (pseudo-header; `addr_delta` is its
// checksum_delta32) and port/identifier. `l4_len`: the transport message's bytes at hand
// from `l4` (ICMP only reads them, when its update comes out as zero).
inline void adjust_l4_checksum(std::uint8_t* l4, std::size_t l4_len, Protocol proto,
                               std::uint32_t addr_delta, std::uint16_t old_port_wire,
                               std::uint16_t new_port_wire) {
    std::uint8_t* field = l4 + l4_checksum_offset(proto);
    std::uint16_t sum = load_wire16(field);
    if (proto == Protocol::udp && sum == 0) {
        return; // the sender chose no checksum (RFC 768); it stays zero
    }
    std::uint32_t delta = checksum_delta16(old_port_wire, new_port_wire);
    if (proto != Protocol::icmp) { // ICMP's checksum has no pseudo-header
        delta += addr_delta;
    }
    sum = checksum_apply(sum, delta);
    if (proto == Protocol::udp && sum == 0) {
        sum = 0xffff; // a computed zero is sent as all ones (RFC 768)
    } else if (proto == Protocol::icmp) {
        sum = settle_zero_sum(sum, {l4, l4_len}, l4_checksum_offset(proto));
    }
    store_wire16(field, sum);
}

// Offset of the port (or identifier) to rewrite: source or destination.
inline std::size_t port_offset(Protocol proto, bool source) {
    if (proto == Protocol::icmp) {
        return 4; // the echo identifier
    }
    return source ? 0 : 2;
}

inline void rewrite_endpoint(std::uint8_t* frame, const ParsedPacket& p, bool source, Ipv4Addr addr,
                             std::uint16_t port) {
    std::uint8_t* ip = frame + p.l3;
    std::uint8_t* l4 = frame + p.l4;
    std::uint8_t* addr_field = ip + (source ? ipv4_off::src : ipv4_off::dst);
    std::uint8_t* port_field = l4 + port_offset(p.proto, source);

    const std::uint32_t old_addr = load_wire32(addr_field);
    store_be32(addr_field, addr.value());
    const std::uint32_t new_addr = load_wire32(addr_field);
    const std::uint16_t old_port = load_wire16(port_field);
    store_be16(port_field, port);
    const std::uint16_t new_port = load_wire16(port_field);

    // TTL shares a 16-bit word with the protocol number.
    std::uint8_t* ttl_word = ip + ipv4_off::ttl;
    const std::uint16_t old_ttl_word = load_wire16(ttl_word);
    ttl_word[0] = static_cast<std::uint8_t>(ttl_word[0] - 1);
    const std::uint16_t new_ttl_word = load_wire16(ttl_word);

    // One fold per checksum; the address's difference serves both.
    const std::uint32_t addr_delta = checksum_delta32(old_addr, new_addr);
    store_wire16(ip + ipv4_off::checksum,
                 checksum_apply(load_wire16(ip + ipv4_off::checksum),
                                addr_delta + checksum_delta16(old_ttl_word, new_ttl_word)));

    adjust_l4_checksum(l4, ip_payload_length(p), p.proto, addr_delta, old_port, new_port);
}

} // namespace detail

// Inside to outside: source becomes (addr, port), TTL drops by one. Caller checked TTL > 1.
inline void rewrite_source(std::uint8_t* frame, const ParsedPacket& p, Ipv4Addr addr,
                           std::uint16_t port) {
    detail::rewrite_endpoint(frame, p, true, addr, port);
}

// Outside to inside: destination becomes (addr, port), TTL drops by one.
inline void rewrite_destination(std::uint8_t* frame, const ParsedPacket& p, Ipv4Addr addr,
                                std::uint16_t port) {
    detail::rewrite_endpoint(frame, p, false, addr, port);
}

inline void set_ethernet(std::uint8_t* frame, const MacAddr& dst, const MacAddr& src) {
    std::memcpy(frame, dst.bytes, 6);
    std::memcpy(frame + 6, src.bytes, 6);
}

inline MacAddr ethernet_source(const std::uint8_t* frame) {
    MacAddr m;
    std::memcpy(m.bytes, frame + 6, 6);
    return m;
}

} // namespace ephemera
