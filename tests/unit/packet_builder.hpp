// Test helpers shared by the core tests: an Ethernet/IPv4/UDP|TCP|ICMP frame builder, field
// readers, and an independent RFC 1071 checksum (big-endian 16-bit integers, byte by byte) that
// does not share code with ephemera/checksum.hpp, so it can judge that code.
//
// Frames are std::vector<std::uint8_t> of exactly the frame's length: under AddressSanitizer a
// read one byte past the end of a frame is caught.
#pragma once

#include "ephemera/packet.hpp"
#include "ephemera/types.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace ephemera {

// GoogleTest printers, so failures show "100.64.0.1" rather than raw bytes.
inline void PrintTo(const Ipv4Addr& a, std::ostream* os) {
    *os << a.to_string();
}
inline void PrintTo(const MacAddr& m, std::ostream* os) {
    *os << m.to_string();
}

namespace test {

using Frame = std::vector<std::uint8_t>;

// ---- byte access, independent of packet.hpp ----------------------------------------------

inline std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t off) {
    return static_cast<std::uint16_t>(b[off] << 8 | b[off + 1]);
}
inline std::uint32_t get32(std::span<const std::uint8_t> b, std::size_t off) {
    return std::uint32_t{b[off]} << 24 | std::uint32_t{b[off + 1]} << 16 |
           std::uint32_t{b[off + 2]} << 8 | b[off + 3];
}
inline void put16(std::span<std::uint8_t> b, std::size_t off, std::uint16_t v) {
    b[off] = static_cast<std::uint8_t>(v >> 8);
    b[off + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(std::span<std::uint8_t> b, std::size_t off, std::uint32_t v) {
    b[off] = static_cast<std::uint8_t>(v >> 24);
    b[off + 1] = static_cast<std::uint8_t>(v >> 16);
    b[off + 2] = static_cast<std::uint8_t>(v >> 8);
    b[off + 3] = static_cast<std::uint8_t>(v);
}

// ---- reference checksum (RFC 1071, the straightforward way) -------------------------------

// Sum of the bytes as big-endian 16-bit integers, an odd last byte padded with zero.
inline std::uint64_t ref_sum(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0) {
    for (std::size_t i = 0; i < bytes.size(); i += 2) {
        const std::uint32_t hi = bytes[i];
        const std::uint32_t lo = i + 1 < bytes.size() ? bytes[i + 1] : 0;
        sum += hi << 8 | lo;
    }
    return sum;
}
inline std::uint16_t ref_fold(std::uint64_t sum) {
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(sum);
}
// The checksum to store (host order) over bytes whose checksum field is zero.
inline std::uint16_t ref_checksum(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0) {
    return static_cast<std::uint16_t>(~ref_fold(ref_sum(bytes, sum)) & 0xffff);
}
// Sum of the TCP/UDP pseudo-header.
inline std::uint64_t ref_pseudo_sum(std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                                    std::size_t l4_len) {
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + l4_len;
}

// ---- frame layout ------------------------------------------------------------------------

inline constexpr std::size_t kEth = 14;

inline MacAddr mac(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint8_t e,
                   std::uint8_t f) {
    MacAddr m;
    m.bytes[0] = a;
    m.bytes[1] = b;
    m.bytes[2] = c;
    m.bytes[3] = d;
    m.bytes[4] = e;
    m.bytes[5] = f;
    return m;
}

struct FrameSpec {
    MacAddr dst_mac = mac(0x02, 0, 0, 0, 0, 0x01);
    MacAddr src_mac = mac(0x02, 0, 0, 0, 0x01, 0x0a);
    std::uint16_t ether_type = kEtherTypeIpv4;
    Ipv4Addr src{100, 64, 0, 10};
    Ipv4Addr dst{198, 19, 0, 1};
    Protocol proto = Protocol::udp;
    std::optional<std::uint8_t> ip_protocol_override; // this protocol number instead of proto's
    std::uint16_t src_port = 40000;                   // TCP/UDP only
    std::uint16_t dst_port = 53;                      // TCP/UDP only
    std::uint8_t icmp_type = kIcmpEchoRequest;
    std::uint8_t icmp_code = 0;
    std::uint16_t icmp_id = 0x1234;
    std::uint16_t icmp_seq = 1;
    std::uint8_t ttl = 64;
    std::uint8_t tos = 0;
    std::uint16_t ip_id = 0x4242;
    std::uint16_t frag = 0x4000;   // flags and fragment offset word; default DF
    std::size_t ip_options = 0;    // bytes, a multiple of 4, at most 40
    std::size_t tcp_options = 0;   // bytes, a multiple of 4, at most 40
    std::uint8_t tcp_flags = 0x02; // SYN
    std::vector<std::uint8_t> payload;
    bool udp_checksum = true; // false: send 0 ("no checksum", RFC 768)
    std::size_t pad_to = 0;   // Ethernet padding: the frame is at least this long
};

inline std::size_t l4_header_len(const FrameSpec& s) {
    switch (s.proto) {
    case Protocol::udp:
        return 8;
    case Protocol::tcp:
        return 20 + s.tcp_options;
    case Protocol::icmp:
        break;
    }
    return 8;
}

// Builds the frame with correct IPv4 and L4 checksums (computed with ref_checksum).
inline Frame build_frame(const FrameSpec& s) {
    const std::size_t ihl = 20 + s.ip_options;
    const std::size_t l4_len = l4_header_len(s) + s.payload.size();
    const std::size_t ip_len = ihl + l4_len;
    Frame f(std::max(kEth + ip_len, s.pad_to), 0);
    std::span<std::uint8_t> b(f);

    std::copy(std::begin(s.dst_mac.bytes), std::end(s.dst_mac.bytes), f.begin());
    std::copy(std::begin(s.src_mac.bytes), std::end(s.src_mac.bytes), f.begin() + 6);
    put16(b, 12, s.ether_type);

    const std::size_t ip = kEth;
    const std::uint8_t proto_number =
        s.ip_protocol_override.value_or(static_cast<std::uint8_t>(s.proto));
    b[ip] = static_cast<std::uint8_t>(0x40 | (ihl / 4));
    b[ip + 1] = s.tos;
    put16(b, ip + 2, static_cast<std::uint16_t>(ip_len));
    put16(b, ip + 4, s.ip_id);
    put16(b, ip + 6, s.frag);
    b[ip + 8] = s.ttl;
    b[ip + 9] = proto_number;
    put32(b, ip + 12, s.src.value());
    put32(b, ip + 16, s.dst.value());
    for (std::size_t i = 0; i < s.ip_options; ++i) {
        b[ip + 20 + i] = 0x01; // NOP options
    }

    const std::size_t l4 = ip + ihl;
    std::size_t checksum_at = 0;
    bool pseudo = true;
    switch (s.proto) {
    case Protocol::udp:
        put16(b, l4, s.src_port);
        put16(b, l4 + 2, s.dst_port);
        put16(b, l4 + 4, static_cast<std::uint16_t>(l4_len));
        checksum_at = l4 + 6;
        break;
    case Protocol::tcp:
        put16(b, l4, s.src_port);
        put16(b, l4 + 2, s.dst_port);
        put32(b, l4 + 4, 0x01020304); // sequence
        put32(b, l4 + 8, 0x0a0b0c0d); // acknowledgement
        b[l4 + 12] = static_cast<std::uint8_t>(((20 + s.tcp_options) / 4) << 4);
        b[l4 + 13] = s.tcp_flags;
        put16(b, l4 + 14, 65535); // window
        for (std::size_t i = 0; i < s.tcp_options; ++i) {
            b[l4 + 20 + i] = 0x01;
        }
        checksum_at = l4 + 16;
        break;
    case Protocol::icmp:
        b[l4] = s.icmp_type;
        b[l4 + 1] = s.icmp_code;
        put16(b, l4 + 4, s.icmp_id);
        put16(b, l4 + 6, s.icmp_seq);
        checksum_at = l4 + 2;
        pseudo = false;
        break;
    }
    std::copy(s.payload.begin(), s.payload.end(),
              f.begin() + static_cast<long>(l4 + l4_header_len(s)));

    put16(b, ip + 10, ref_checksum(b.subspan(ip, ihl)));
    const std::uint64_t initial =
        pseudo ? ref_pseudo_sum(s.src.value(), s.dst.value(), proto_number, l4_len) : 0;
    std::uint16_t l4_sum = ref_checksum(b.subspan(l4, l4_len), initial);
    if (s.proto == Protocol::udp) {
        if (!s.udp_checksum) {
            l4_sum = 0;
        } else if (l4_sum == 0) {
            l4_sum = 0xffff;
        }
    }
    put16(b, checksum_at, l4_sum);
    return f;
}

inline FrameSpec udp_spec(Ipv4Addr src, std::uint16_t sport, Ipv4Addr dst, std::uint16_t dport) {
    FrameSpec s;
    s.proto = Protocol::udp;
    s.src = src;
    s.src_port = sport;
    s.dst = dst;
    s.dst_port = dport;
    s.payload = {'h', 'e', 'l', 'l', 'o'};
    return s;
}
inline FrameSpec tcp_spec(Ipv4Addr src, std::uint16_t sport, Ipv4Addr dst, std::uint16_t dport) {
    FrameSpec s = udp_spec(src, sport, dst, dport);
    s.proto = Protocol::tcp;
    return s;
}
inline FrameSpec icmp_spec(Ipv4Addr src, Ipv4Addr dst, std::uint16_t id,
                           std::uint8_t type = kIcmpEchoRequest) {
    FrameSpec s;
    s.proto = Protocol::icmp;
    s.src = src;
    s.dst = dst;
    s.icmp_id = id;
    s.icmp_type = type;
    s.payload = {'p', 'i', 'n', 'g', 0, 1, 2};
    return s;
}

// An ICMP error (`outer` gives addresses, MACs, TTL, icmp_type and icmp_code) quoting the IPv4
// packet in `quoted` (a frame from build_frame; its Ethernet header and padding are left out),
// cut to its first `quote_len` bytes (0: all of it). Checksums are computed over the result,
// so the ICMP checksum covers the quote as sent.
inline Frame build_icmp_error(FrameSpec outer, const Frame& quoted, std::size_t quote_len = 0) {
    const std::size_t ip_len = get16(quoted, kEth + 2);
    const std::size_t take = quote_len == 0 ? ip_len : std::min(quote_len, ip_len);
    outer.proto = Protocol::icmp;
    outer.icmp_id = 0; // "unused" in types 3 and 11
    outer.icmp_seq = 0;
    outer.payload.assign(quoted.begin() + static_cast<long>(kEth),
                         quoted.begin() + static_cast<long>(kEth + take));
    return build_frame(outer);
}

// ---- field readers (from the frame's own header lengths) ----------------------------------

inline std::size_t ihl_of(std::span<const std::uint8_t> f) {
    return std::size_t{f[kEth] & 0x0fu} * 4;
}
inline std::size_t l4_of(std::span<const std::uint8_t> f) {
    return kEth + ihl_of(f);
}
inline Ipv4Addr ip_src(std::span<const std::uint8_t> f) {
    return Ipv4Addr{get32(f, kEth + 12)};
}
inline Ipv4Addr ip_dst(std::span<const std::uint8_t> f) {
    return Ipv4Addr{get32(f, kEth + 16)};
}
inline std::uint8_t ip_ttl(std::span<const std::uint8_t> f) {
    return f[kEth + 8];
}
inline std::uint8_t ip_proto(std::span<const std::uint8_t> f) {
    return f[kEth + 9];
}
inline std::uint16_t l4_sport(std::span<const std::uint8_t> f) {
    return get16(f, l4_of(f));
}
inline std::uint16_t l4_dport(std::span<const std::uint8_t> f) {
    return get16(f, l4_of(f) + 2);
}
inline std::uint16_t icmp_id(std::span<const std::uint8_t> f) {
    return get16(f, l4_of(f) + 4);
}
inline std::uint8_t icmp_type(std::span<const std::uint8_t> f) {
    return f[l4_of(f)];
}
inline MacAddr mac_dst(std::span<const std::uint8_t> f) {
    MacAddr m;
    std::copy(f.begin(), f.begin() + 6, m.bytes);
    return m;
}
inline MacAddr mac_src(std::span<const std::uint8_t> f) {
    MacAddr m;
    std::copy(f.begin() + 6, f.begin() + 12, m.bytes);
    return m;
}
inline std::size_t l4_checksum_at(std::uint8_t proto_number) {
    switch (proto_number) {
    case 6:
        return 16;
    case 17:
        return 6;
    default:
        return 2;
    }
}
inline std::uint16_t l4_checksum(std::span<const std::uint8_t> f) {
    return get16(f, l4_of(f) + l4_checksum_at(ip_proto(f)));
}

// ---- verification from scratch ------------------------------------------------------------

// The IPv4 header checksum this frame should carry, recomputed.
inline std::uint16_t expected_ip_checksum(std::span<const std::uint8_t> f) {
    std::vector<std::uint8_t> header(f.begin() + kEth,
                                     f.begin() + static_cast<long>(kEth + ihl_of(f)));
    header[10] = header[11] = 0;
    return ref_checksum(header);
}

// The L4 checksum this frame should carry (UDP: the nonzero form), recomputed over the
// transport header and data (IPv4 total length) and, for TCP/UDP, the pseudo-header.
inline std::uint16_t expected_l4_checksum(std::span<const std::uint8_t> f) {
    const std::size_t total = get16(f, kEth + 2);
    const std::size_t l4 = l4_of(f);
    const std::size_t l4_len = total - ihl_of(f);
    std::vector<std::uint8_t> seg(f.begin() + static_cast<long>(l4),
                                  f.begin() + static_cast<long>(l4 + l4_len));
    const std::uint8_t proto = ip_proto(f);
    const std::size_t at = l4_checksum_at(proto);
    seg[at] = seg[at + 1] = 0;
    const std::uint64_t initial =
        proto == 1 ? 0 : ref_pseudo_sum(ip_src(f).value(), ip_dst(f).value(), proto, l4_len);
    std::uint16_t sum = ref_checksum(seg, initial);
    if (proto == 17 && sum == 0) {
        sum = 0xffff;
    }
    return sum;
}

// Both checksums of the frame are what a full recomputation gives. A UDP checksum of zero
// ("none") is accepted only when allow_udp_zero is set.
inline ::testing::AssertionResult checksums_verify(std::span<const std::uint8_t> f,
                                                   bool allow_udp_zero = false) {
    const std::uint16_t ip_stored = get16(f, kEth + 10);
    const std::uint16_t ip_expected = expected_ip_checksum(f);
    if (ip_stored != ip_expected) {
        return ::testing::AssertionFailure() << "IPv4 header checksum 0x" << std::hex << ip_stored
                                             << ", recomputed 0x" << ip_expected;
    }
    const std::uint16_t l4_stored = l4_checksum(f);
    if (allow_udp_zero && ip_proto(f) == 17 && l4_stored == 0) {
        return ::testing::AssertionSuccess();
    }
    const std::uint16_t l4_expected = expected_l4_checksum(f);
    if (l4_stored != l4_expected) {
        return ::testing::AssertionFailure()
               << "L4 (protocol " << int{ip_proto(f)} << ") checksum 0x" << std::hex << l4_stored
               << ", recomputed 0x" << l4_expected;
    }
    return ::testing::AssertionSuccess();
}

// ---- randomness ----------------------------------------------------------------------------

// Every random test uses a fixed seed, so a failure replays.
using Rng = std::mt19937_64;

template <typename T>
T uniform(Rng& rng, T lo, T hi) {
    return static_cast<T>(std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng));
}

inline std::vector<std::uint8_t> random_bytes(Rng& rng, std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) {
        b = uniform<std::uint8_t>(rng, 0, 255);
    }
    return v;
}

} // namespace test
} // namespace ephemera
