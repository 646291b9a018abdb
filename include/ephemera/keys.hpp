// The keys of a worker's tables (nat_table.hpp), each built in one place from what names it:
//   SessionKey  (inside addr, port, remote addr, port, protocol)  a 5-tuple session
//   MappingKey  (inside addr, port, protocol)                      an endpoint-independent
//                                                                  mapping (RFC 4787 REQ-1)
//   SubscriberKey (inside addr)                                    a subscriber
//   PermissionKey (mapping, remote addr)                           address-dependent filtering
// For ICMP echo the identifier plays the inside port and the remote port is 0: a query session
// is independent of the remote's identifier (RFC 5508 REQ-1).
#pragma once

#include "ephemera/packet.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ephemera {

// Keys are 8-byte aligned: rte_hash_crc reads them 8 bytes at a time.
struct alignas(8) SessionKey {
    std::uint32_t inside_addr;
    std::uint32_t remote_addr;
    std::uint16_t inside_port;
    std::uint16_t remote_port;
    std::uint8_t proto;
    std::uint8_t pad[3];

    static constexpr SessionKey make(Ipv4Addr inside, std::uint16_t inside_port, Ipv4Addr remote,
                                     std::uint16_t remote_port, Protocol proto) {
        return SessionKey{inside.value(),
                          remote.value(),
                          inside_port,
                          proto == Protocol::icmp ? std::uint16_t{0} : remote_port,
                          static_cast<std::uint8_t>(proto),
                          {0, 0, 0}};
    }
    // The session of a subscriber's packet; for an ICMP error from a subscriber, the session of
    // the packet it quotes (which came from the remote to the subscriber).
    static constexpr SessionKey of(const ParsedPacket& p) {
        if (p.icmp_error) {
            return make(p.inner_dst, p.inner_dst_port, p.inner_src, p.inner_src_port,
                        p.inner_proto);
        }
        return make(p.src, p.src_port, p.dst, p.dst_port, p.proto);
    }
    // The session a packet from a remote belongs to, once its mapping named the inside endpoint.
    static constexpr SessionKey inbound(Ipv4Addr inside, std::uint16_t inside_port,
                                        const ParsedPacket& p) {
        return make(inside, inside_port, p.src, p.src_port, p.proto);
    }
    // The session of the packet an ICMP error from outside quotes (it left as E:e -> R:r).
    static constexpr SessionKey quoted_outbound(Ipv4Addr inside, std::uint16_t inside_port,
                                                const ParsedPacket& p) {
        return make(inside, inside_port, p.inner_dst, p.inner_dst_port, p.inner_proto);
    }
    // of(p).words() read from the packet's fields, which lie in the key's order (addresses
    // side by side, then the ports): two loads and a mask instead of building the key a field
    // at a time, for every packet of the fast path.
    static std::array<std::uint64_t, 2> words_of(const ParsedPacket& p) {
        if (p.icmp_error) [[unlikely]] {
            return of(p).words();
        }
        static_assert(std::is_standard_layout_v<ParsedPacket> && sizeof(Ipv4Addr) == 4);
        static_assert(offsetof(ParsedPacket, dst) == offsetof(ParsedPacket, src) + 4);
        static_assert(offsetof(ParsedPacket, dst_port) == offsetof(ParsedPacket, src_port) + 2);
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(&p);
        std::uint64_t addresses;
        std::memcpy(&addresses, bytes + offsetof(ParsedPacket, src), 8);
        std::uint32_t ports;
        std::memcpy(&ports, bytes + offsetof(ParsedPacket, src_port), 4);
        const std::uint32_t kept = p.proto == Protocol::icmp ? 0xffffu : 0xffffffffu;
        return {addresses, std::uint64_t{ports & kept} |
                               std::uint64_t{static_cast<std::uint8_t>(p.proto)} << 32};
    }
    constexpr bool operator==(const SessionKey&) const = default;
    // Its two 64-bit words as they lie in memory (little-endian), assembled from the fields in
    // registers: hashing a key just written field by field and read back whole would wait on
    // the stores (no store forwarding from several narrower stores to one load).
    [[nodiscard]] constexpr std::array<std::uint64_t, 2> words() const {
        static_assert(std::endian::native == std::endian::little);
        return {std::uint64_t{inside_addr} | std::uint64_t{remote_addr} << 32,
                std::uint64_t{inside_port} | std::uint64_t{remote_port} << 16 |
                    std::uint64_t{proto} << 32 | std::uint64_t{pad[0]} << 40 |
                    std::uint64_t{pad[1]} << 48 | std::uint64_t{pad[2]} << 56};
    }
};
static_assert(sizeof(SessionKey) == 16);

struct alignas(8) MappingKey {
    std::uint32_t inside_addr;
    std::uint16_t inside_port;
    std::uint8_t proto;
    std::uint8_t pad;

    static constexpr MappingKey make(Ipv4Addr inside, std::uint16_t inside_port, Protocol proto) {
        return MappingKey{inside.value(), inside_port, static_cast<std::uint8_t>(proto), 0};
    }
    // The mapping of a subscriber's packet (its source endpoint).
    static constexpr MappingKey of(const ParsedPacket& p) {
        return make(p.src, p.src_port, p.proto);
    }
    // The mapping a session belongs to.
    static constexpr MappingKey of(const SessionKey& k) {
        return MappingKey{k.inside_addr, k.inside_port, k.proto, 0};
    }
    constexpr bool operator==(const MappingKey&) const = default;
    // Its word as it lies in memory (little-endian), assembled from the fields: see
    // SessionKey::words.
    [[nodiscard]] constexpr std::array<std::uint64_t, 1> words() const {
        static_assert(std::endian::native == std::endian::little);
        return {std::uint64_t{inside_addr} | std::uint64_t{inside_port} << 32 |
                std::uint64_t{proto} << 48 | std::uint64_t{pad} << 56};
    }
};
static_assert(sizeof(MappingKey) == 8);

// A subscriber's inside address, widened to the 8-byte key the worker's tables take; the
// constant word keeps every key non-zero (a zero key marks a free entry, flat_table.hpp).
struct alignas(8) SubscriberKey {
    std::uint32_t inside_addr;
    std::uint32_t one;

    static constexpr SubscriberKey of(Ipv4Addr inside) { return SubscriberKey{inside.value(), 1}; }
    [[nodiscard]] constexpr Ipv4Addr address() const { return Ipv4Addr{inside_addr}; }
    constexpr bool operator==(const SubscriberKey&) const = default;
    [[nodiscard]] constexpr std::array<std::uint64_t, 1> words() const {
        static_assert(std::endian::native == std::endian::little);
        return {std::uint64_t{inside_addr} | std::uint64_t{one} << 32};
    }
};
static_assert(sizeof(SubscriberKey) == 8);

struct alignas(8) PermissionKey {
    std::uint32_t mapping;
    std::uint32_t remote_addr;
};
static_assert(sizeof(PermissionKey) == 8);

} // namespace ephemera
