// Header rewrites with incremental checksum updates (RFC 1624). The frame must have passed
// parse_frame(): offsets in ParsedPacket are trusted here.
#pragma once

#include "ephemera/checksum.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/tx_checksum.hpp"

#include <bit>
#include <cstring>

namespace ephemera {

// Host-order values as they lie in memory on the wire (network order).
constexpr std::uint32_t wire32(std::uint32_t host) {
    return std::endian::native == std::endian::little ? __builtin_bswap32(host) : host;
}
constexpr std::uint16_t wire16(std::uint16_t host) {
    return std::endian::native == std::endian::little ? __builtin_bswap16(host) : host;
}

namespace detail {

// Fix the transport checksum for a changed address (pseudo-header; `addr_delta` is its
// checksum_delta32) and port or identifier (`port_delta`, its checksum_delta16). `l4_len`:
// the transport message's bytes at hand from `l4` (ICMP only reads them, when its update
// comes out as zero).
inline void adjust_l4_checksum(std::uint8_t* l4, std::size_t l4_len, Protocol proto,
                               ChecksumDelta addr_delta, ChecksumDelta port_delta) {
    std::uint8_t* field = l4 + l4_checksum_offset(proto);
    std::uint16_t sum = load_wire16(field);
    switch (proto) {
    case Protocol::tcp:
        sum = checksum_apply(sum, addr_delta + port_delta);
        break;
    case Protocol::udp:
        if (sum == 0) {
            return; // the sender chose no checksum (RFC 768); it stays zero
        }
        sum = checksum_apply(sum, addr_delta + port_delta);
        if (sum == 0) {
            sum = 0xffff; // a computed zero is sent as all ones (RFC 768)
        }
        break;
    case Protocol::icmp: // no pseudo-header
        sum = settle_zero_sum(checksum_apply(sum, port_delta), {l4, l4_len},
                              l4_checksum_offset(proto));
        break;
    }
    store_wire16(field, sum);
}
inline void adjust_l4_checksum(std::uint8_t* l4, std::size_t l4_len, Protocol proto,
                               ChecksumDelta addr_delta, std::uint16_t old_port_wire,
                               std::uint16_t new_port_wire) {
    adjust_l4_checksum(l4, l4_len, proto, addr_delta,
                       checksum_delta16(old_port_wire, new_port_wire));
}

// Offset of the port (or identifier) to rewrite: source or destination.
inline std::size_t port_offset(Protocol proto, bool source) {
    if (proto == Protocol::icmp) {
        return 4; // the echo identifier
    }
    return source ? 0 : 2;
}

// TTL - 1 (the TTL is > 1): the (TTL, protocol) word read as it lies in memory drops by one
// unit of its TTL byte, so its RFC 1624 difference ~m + m' is a constant.
inline constexpr ChecksumDelta kTtlDecrementDelta{
    std::endian::native == std::endian::little ? 0xfffeu : 0xfeffu};

// The one rewrite every translated packet gets: the source (in2out) or destination (out2in)
// address and port become `addr_wire`:`port_wire` (both as they lie on the wire), TTL drops by
// one, and both checksums take the change with one fold each; the address's difference,
// which the IPv4 header and the transport pseudo-header share, is summed once.
//
// The protocol is read before the first store: a store through a byte pointer may change any
// memory as far as the compiler knows, so a field read after one is loaded again. Only ICMP
// needs the message's length (when its update comes out zero), and only it reads it after.
inline void rewrite_endpoint_wire(std::uint8_t* frame, const ParsedPacket& p, bool source,
                                  std::uint32_t addr_wire, std::uint16_t port_wire) {
    const Protocol proto = p.proto;
    std::uint8_t* ip = frame + p.l3;
    std::uint8_t* l4 = frame + p.l4;
    std::uint8_t* addr_field = ip + (source ? ipv4_off::src : ipv4_off::dst);
    std::uint8_t* port_field = l4 + port_offset(proto, source);

    const ChecksumDelta addr_delta = checksum_delta32(load_wire32(addr_field), addr_wire);
    std::memcpy(addr_field, &addr_wire, 4);
    const ChecksumDelta port_delta = checksum_delta16(load_wire16(port_field), port_wire);
    store_wire16(port_field, port_wire);
    ip[ipv4_off::ttl] = static_cast<std::uint8_t>(ip[ipv4_off::ttl] - 1);
    store_wire16(ip + ipv4_off::checksum, checksum_apply(load_wire16(ip + ipv4_off::checksum),
                                                         addr_delta + kTtlDecrementDelta));
    adjust_l4_checksum(l4, proto == Protocol::icmp ? ip_payload_length(p) : 0, proto, addr_delta,
                       port_delta);
}

// The sum of an IPv4 UDP or TCP pseudo-header (addresses, protocol, `l4_len`), folded and not
// complemented, as a wire word: what DPDK wants in a transport checksum field that the NIC
// completes (rte_ipv4_phdr_cksum). Never 0: the protocol word is not.
inline std::uint16_t ipv4_pseudo_header_sum(const std::uint8_t* ip, std::uint16_t l4_len) {
    const std::uint32_t proto_len = std::uint32_t{wire16(ip[ipv4_off::protocol])} + wire16(l4_len);
    return (ChecksumDelta{load_wire32(ip + ipv4_off::src)} +
            ChecksumDelta{load_wire32(ip + ipv4_off::dst)} + ChecksumDelta{proto_len})
        .folded();
}

// rewrite_endpoint_wire for a packet leaving by a port that computes the checksums in `port`:
// the same address, port and TTL, but each checksum this packet may leave to the port
// (offloadable) is left as DPDK asks, the IPv4 one 0 and a transport one the pseudo-header's
// sum; the others take their RFC 1624 update as in software. Returns the checksums left, for
// the tx stage to flag on the mbuf.
inline TxChecksums rewrite_endpoint_offload(std::uint8_t* frame, const ParsedPacket& p, bool source,
                                            std::uint32_t addr_wire, std::uint16_t port_wire,
                                            TxChecksums port) {
    const Protocol proto = p.proto; // read before the stores, as in rewrite_endpoint_wire
    std::uint8_t* ip = frame + p.l3;
    std::uint8_t* l4 = frame + p.l4;
    std::uint8_t* addr_field = ip + (source ? ipv4_off::src : ipv4_off::dst);
    std::uint8_t* port_field = l4 + port_offset(proto, source);
    std::uint8_t* l4_field = l4 + l4_checksum_offset(proto);
    const TxChecksums left = offloadable(p, port, load_wire16(l4_field));

    const ChecksumDelta addr_delta = checksum_delta32(load_wire32(addr_field), addr_wire);
    std::memcpy(addr_field, &addr_wire, 4);
    const ChecksumDelta port_delta = checksum_delta16(load_wire16(port_field), port_wire);
    store_wire16(port_field, port_wire);
    ip[ipv4_off::ttl] = static_cast<std::uint8_t>(ip[ipv4_off::ttl] - 1);
    store_wire16(ip + ipv4_off::checksum, left.has(TxChecksums::ipv4)
                                              ? std::uint16_t{0}
                                              : checksum_apply(load_wire16(ip + ipv4_off::checksum),
                                                               addr_delta + kTtlDecrementDelta));
    if (left.any_l4()) {
        store_wire16(l4_field, ipv4_pseudo_header_sum(ip, ip_payload_length(p)));
    } else {
        adjust_l4_checksum(l4, proto == Protocol::icmp ? ip_payload_length(p) : 0, proto,
                           addr_delta, port_delta);
    }
    return left;
}

inline void rewrite_endpoint(std::uint8_t* frame, const ParsedPacket& p, bool source, Ipv4Addr addr,
                             std::uint16_t port) {
    rewrite_endpoint_wire(frame, p, source, wire32(addr.value()), wire16(port));
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
