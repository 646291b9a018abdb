// Strong value types for the things a NAT must never confuse: addresses, ports, protocols,
// worker ids and time. All are host byte order; conversion to and from the wire happens only
// in the packet view (packet.hpp).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ephemera {

class Ipv4Addr {
public:
    constexpr Ipv4Addr() = default;
    constexpr explicit Ipv4Addr(std::uint32_t host_order) : value_(host_order) {}
    constexpr Ipv4Addr(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
        : value_(std::uint32_t{a} << 24 | std::uint32_t{b} << 16 | std::uint32_t{c} << 8 | d) {}

    [[nodiscard]] constexpr std::uint32_t value() const { return value_; }
    constexpr auto operator<=>(const Ipv4Addr&) const = default;

    // An address no router forwards to or from (RFC 1812 section 5.3.7, 4.2.2.11): this
    // network 0/8, loopback 127/8, multicast 224/4 (not translated yet), and the class E and
    // limited broadcast block 240/4.
    [[nodiscard]] constexpr bool is_martian() const {
        const std::uint32_t first = value_ >> 24;
        return first == 0 || first == 127 || first >= 224;
    }

    // Dotted quad only ("198.18.0.1"); anything else, including leading zeros that some
    // parsers read as octal, is refused.
    static std::optional<Ipv4Addr> parse(std::string_view text);
    [[nodiscard]] std::string to_string() const;

private:
    std::uint32_t value_ = 0;
};

class Port {
public:
    constexpr Port() = default;
    constexpr explicit Port(std::uint16_t host_order) : value_(host_order) {}
    [[nodiscard]] constexpr std::uint16_t value() const { return value_; }
    constexpr auto operator<=>(const Port&) const = default;

private:
    std::uint16_t value_ = 0;
};

// IP protocol numbers of what ephemera translates. ICMP means ICMP echo: its identifier plays
// the role of a port.
enum class Protocol : std::uint8_t { icmp = 1, tcp = 6, udp = 17 };

// Dense index for per-protocol arrays.
enum class ProtoIndex : std::uint8_t { udp = 0, tcp = 1, icmp = 2 };
inline constexpr std::size_t kProtocolCount = 3;

// A shift and a mask, not a switch: packets of mixed protocols arrive in any order, and a chain
// of compares on the protocol would be a branch the CPU mispredicts on every change. Two bits
// per protocol number (mod 32) hold its index; a number that is none of the three gives 0, still
// a valid index.
constexpr ProtoIndex proto_index(Protocol p) {
    constexpr std::uint64_t kIndexByNumber =
        std::uint64_t{static_cast<std::uint8_t>(ProtoIndex::udp)} << (2 * 17) |
        std::uint64_t{static_cast<std::uint8_t>(ProtoIndex::tcp)} << (2 * 6) |
        std::uint64_t{static_cast<std::uint8_t>(ProtoIndex::icmp)} << (2 * 1);
    return static_cast<ProtoIndex>((kIndexByNumber >> (2 * (static_cast<unsigned>(p) & 31u))) & 3u);
}
static_assert(proto_index(Protocol::udp) == ProtoIndex::udp &&
              proto_index(Protocol::tcp) == ProtoIndex::tcp &&
              proto_index(Protocol::icmp) == ProtoIndex::icmp);

constexpr std::string_view protocol_name(Protocol p) {
    switch (p) {
    case Protocol::udp:
        return "udp";
    case Protocol::tcp:
        return "tcp";
    case Protocol::icmp:
        break;
    }
    return "icmp";
}

struct PortRange {
    std::uint16_t lo = 0;
    std::uint16_t hi = 0;
    [[nodiscard]] constexpr bool contains(std::uint16_t p) const { return p >= lo && p <= hi; }
    [[nodiscard]] constexpr std::uint32_t size() const { return std::uint32_t{hi} - lo + 1; }
    [[nodiscard]] constexpr bool overlaps(const PortRange& o) const {
        return lo <= o.hi && o.lo <= hi;
    }
    constexpr bool operator==(const PortRange&) const = default;
};

struct MacAddr {
    std::uint8_t bytes[6] = {};
    static std::optional<MacAddr> parse(std::string_view text);
    [[nodiscard]] std::string to_string() const;
    constexpr bool operator==(const MacAddr&) const = default;
};

using WorkerId = std::uint16_t;

// Coarse time on the packet path: one tick is 1/kTicksPerSecond s since the process started.
// 32 bits of 1/16 s last 8.5 years, and a session stamp fits in 4 bytes.
using Tick = std::uint32_t;
inline constexpr Tick kTicksPerSecond = 16;

// The murmur3 32-bit finaliser: every input bit reaches every output bit, so consecutive
// addresses (or ids) spread evenly when the result is reduced modulo a worker count.
constexpr std::uint32_t mix32(std::uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

} // namespace ephemera
