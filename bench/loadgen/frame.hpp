// Frames the load generator sends and checks: Ethernet / IPv4 (no options) / UDP or TCP, with a
// stamp that identifies the packet. The checks are written here independently of ephemera's own
// parser and checksum code, so a bug there cannot hide itself.
//
// Layout (byte offsets from the start of the frame):
//   0  Ethernet   dst 0, src 6, type 12
//   14 IPv4       id 18 = flow generation, ttl 22, proto 23, checksum 24, src 26, dst 30
//   34 UDP        ports 34/36, length 38, checksum 40, payload 42
//   34 TCP        ports 34/36, seq 38, ack 42, offset 46, flags 47, window 48, checksum 50,
//                 payload 54
// The stamp, all big-endian:
//   flow id      42 (UDP: payload; TCP: the ack field)
//   sequence     46 (UDP: payload)    38 (TCP: the seq field)
//   TSC, 48 bits 50 (UDP: payload)    54 (TCP: the first 6 payload bytes)
// so both protocols fit a 64-byte frame (60 bytes without the FCS, which memif does not carry).
// A NAT44 rewrites addresses, ports, TTL and checksums, never TCP sequence numbers or payload.
// The rest of the payload is zeros; the receive-side L4 checksum check sums the headers and the
// stamp and takes the zeros as read (it does not re-read 1.4 KB of a 1518-byte frame).
#pragma once

#include "flows.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace loadgen {

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kMinFrameLen = 60;   // 64 on the wire with the FCS
inline constexpr std::uint16_t kMaxFrameLen = 1514; // 1518 on the wire
inline constexpr std::uint8_t kTtl = 64;
inline constexpr std::uint8_t kIpProtoIcmp = 1;
inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;

namespace off {
inline constexpr std::size_t eth_type = 12;
inline constexpr std::size_t ip = 14;
inline constexpr std::size_t ip_total_len = 16;
inline constexpr std::size_t ip_id = 18;
inline constexpr std::size_t ip_frag = 20;
inline constexpr std::size_t ip_ttl = 22;
inline constexpr std::size_t ip_proto = 23;
inline constexpr std::size_t ip_csum = 24;
inline constexpr std::size_t ip_src = 26;
inline constexpr std::size_t ip_dst = 30;
inline constexpr std::size_t l4 = 34;
inline constexpr std::size_t sport = 34;
inline constexpr std::size_t dport = 36;
inline constexpr std::size_t udp_len = 38;
inline constexpr std::size_t udp_csum = 40;
inline constexpr std::size_t tcp_offset = 46;
inline constexpr std::size_t tcp_flags = 47;
inline constexpr std::size_t tcp_csum = 50;
inline constexpr std::size_t flow = 42;
constexpr std::size_t seq(Proto p) {
    return p == Proto::udp ? 46 : 38;
}
constexpr std::size_t tsc(Proto p) {
    return p == Proto::udp ? 50 : 54;
}
constexpr std::size_t stamp_end(Proto p) {
    return p == Proto::udp ? 56 : 60;
}
constexpr std::size_t l4_csum(Proto p) {
    return p == Proto::udp ? udp_csum : tcp_csum;
}
} // namespace off

struct Mac {
    std::array<std::uint8_t, 6> bytes{};
    static std::optional<Mac> parse(std::string_view text);
    [[nodiscard]] std::string to_string() const;
    bool operator==(const Mac&) const = default;
};

std::string ipv4_to_string(std::uint32_t host_order);
std::optional<std::uint32_t> parse_ipv4(std::string_view text);

// ---- byte access -----------------------------------------------------------------------------

inline std::uint16_t load16(const std::uint8_t* p) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return v; // wire order
}
inline std::uint16_t load_be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline std::uint32_t load_be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
inline std::uint64_t load_be48(const std::uint8_t* p) {
    return std::uint64_t{load_be16(p)} << 32 | load_be32(p + 2);
}
inline void store16(std::uint8_t* p, std::uint16_t wire) {
    std::memcpy(p, &wire, 2);
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
inline void store_be48(std::uint8_t* p, std::uint64_t v) {
    store_be16(p, static_cast<std::uint16_t>(v >> 32));
    store_be32(p + 2, static_cast<std::uint32_t>(v));
}

// ---- checksums (RFC 1071 sums of wire words; byte order does not matter to them) --------------

inline std::uint32_t sum16(const std::uint8_t* p, std::size_t len, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < len; i += 2) {
        sum += load16(p + i);
    }
    return sum; // len is even everywhere this is used
}
inline std::uint16_t fold(std::uint32_t sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}
// The pseudo-header's share of a TCP/UDP checksum, from the frame's own fields.
inline std::uint32_t pseudo_sum(const std::uint8_t* f, Proto proto, std::uint16_t l4_len) {
    std::uint8_t tail[4] = {0, static_cast<std::uint8_t>(proto),
                            static_cast<std::uint8_t>(l4_len >> 8),
                            static_cast<std::uint8_t>(l4_len)};
    return sum16(f + off::ip_src, 8) + sum16(tail, 4);
}
// RFC 1624 eqn. 3 for one changed word.
inline std::uint16_t csum_adjust(std::uint16_t csum, std::uint16_t old_wire,
                                 std::uint16_t new_wire) {
    return static_cast<std::uint16_t>(~fold(std::uint32_t{static_cast<std::uint16_t>(~csum)} +
                                            static_cast<std::uint16_t>(~old_wire) + new_wire));
}

// ---- building ------------------------------------------------------------------------------

// The flow id flood frames carry (flood.hpp): never a flow's, so a flood frame the NAT passes
// on is told apart from the flows' traffic.
inline constexpr std::uint32_t kFloodFlow = 0xffffffff;

struct Stamp {
    std::uint32_t flow;
    std::uint32_t seq;
    std::uint16_t gen;
    std::uint64_t tsc; // the low 48 bits travel
};

// One template per protocol for a given frame length and MAC pair; build() copies it and
// writes what differs per packet.
class FrameBuilder {
public:
    FrameBuilder(const Mac& dst, const Mac& src, std::uint16_t frame_len);

    [[nodiscard]] std::uint16_t frame_len() const { return len_; }

    void build(std::uint8_t* out, const Tuple& t, const Stamp& s, std::uint8_t tcp_flags) const {
        const std::uint8_t* tmpl = t.proto == Proto::udp ? udp_.data() : tcp_.data();
        std::memcpy(out, tmpl, len_);
        store_be16(out + off::ip_id, s.gen);
        store_be32(out + off::ip_src, t.sub_addr);
        store_be32(out + off::ip_dst, t.server_addr);
        store16(out + off::ip_csum, static_cast<std::uint16_t>(~fold(sum16(out + off::ip, 20))));
        store_be16(out + off::sport, t.sub_port);
        store_be16(out + off::dport, t.server_port);
        store_be32(out + off::flow, s.flow);
        store_be32(out + off::seq(t.proto), s.seq);
        store_be48(out + off::tsc(t.proto), s.tsc);
        if (t.proto == Proto::tcp) {
            out[off::tcp_flags] = tcp_flags;
        }
        // Headers and stamp; the zero payload after the stamp adds nothing.
        const std::size_t end = off::stamp_end(t.proto);
        std::uint16_t c = static_cast<std::uint16_t>(
            ~fold(pseudo_sum(out, t.proto, l4_len_) + sum16(out + off::l4, end - off::l4)));
        if (t.proto == Proto::udp && c == 0) {
            c = 0xffff; // RFC 768: a computed zero is sent as all ones
        }
        store16(out + off::l4_csum(t.proto), c);
    }

private:
    std::uint16_t len_;
    std::uint16_t l4_len_;
    std::array<std::uint8_t, kMaxFrameLen> udp_{};
    std::array<std::uint8_t, kMaxFrameLen> tcp_{};
};

// ---- receiving -----------------------------------------------------------------------------

enum class RxStatus : std::uint8_t {
    ok,
    arp,
    icmp,      // IPv4 ICMP (errors and answers the NAT originates): not a flow's packet
    not_ipv4,  // another EtherType
    malformed, // IP options, fragment, length mismatch, not UDP/TCP, too short for a stamp
    bad_ip_checksum,
    bad_l4_checksum,
};

struct RxView {
    std::uint32_t src;
    std::uint32_t dst;
    std::uint16_t sport;
    std::uint16_t dport;
    Proto proto;
    std::uint8_t ttl;
    std::uint8_t tcp_flags;
    Stamp stamp;
};

inline RxStatus parse_frame(const std::uint8_t* f, std::uint16_t len, RxView& v) {
    if (len < kMinFrameLen) {
        return len >= 42 && load_be16(f + off::eth_type) == kEtherTypeArp ? RxStatus::arp
                                                                          : RxStatus::malformed;
    }
    const std::uint16_t type = load_be16(f + off::eth_type);
    if (type != kEtherTypeIpv4) {
        return type == kEtherTypeArp ? RxStatus::arp : RxStatus::not_ipv4;
    }
    const std::uint8_t proto = f[off::ip_proto];
    if (f[off::ip] == 0x45 && proto == kIpProtoIcmp) {
        return RxStatus::icmp;
    }
    if (f[off::ip] != 0x45 || load_be16(f + off::ip_total_len) != len - off::ip ||
        (load_be16(f + off::ip_frag) & 0x3fff) != 0 ||
        (proto != static_cast<std::uint8_t>(Proto::udp) &&
         proto != static_cast<std::uint8_t>(Proto::tcp))) {
        return RxStatus::malformed;
    }
    v.proto = static_cast<Proto>(proto);
    if (v.proto == Proto::tcp && (f[off::tcp_offset] >> 4) != 5) {
        return RxStatus::malformed;
    }
    if (fold(sum16(f + off::ip, 20)) != 0xffff) {
        return RxStatus::bad_ip_checksum;
    }
    const auto l4_len = static_cast<std::uint16_t>(len - off::l4);
    const std::size_t end = off::stamp_end(v.proto);
    if (fold(pseudo_sum(f, v.proto, l4_len) + sum16(f + off::l4, end - off::l4)) != 0xffff) {
        return RxStatus::bad_l4_checksum;
    }
    v.src = load_be32(f + off::ip_src);
    v.dst = load_be32(f + off::ip_dst);
    v.sport = load_be16(f + off::sport);
    v.dport = load_be16(f + off::dport);
    v.ttl = f[off::ip_ttl];
    v.tcp_flags = v.proto == Proto::tcp ? f[off::tcp_flags] : 0;
    v.stamp.gen = load_be16(f + off::ip_id);
    v.stamp.flow = load_be32(f + off::flow);
    v.stamp.seq = load_be32(f + off::seq(v.proto));
    v.stamp.tsc = load_be48(f + off::tsc(v.proto));
    return RxStatus::ok;
}

// The server's answer, in place: swap MACs, addresses and ports (none of which changes a
// checksum), TTL back to 64, and a SYN answered with SYN+ACK.
inline void reflect(std::uint8_t* f, const RxView& v) {
    std::uint8_t mac[6];
    std::memcpy(mac, f, 6);
    std::memmove(f, f + 6, 6);
    std::memcpy(f + 6, mac, 6);
    std::uint8_t addr[4];
    std::memcpy(addr, f + off::ip_src, 4);
    std::memcpy(f + off::ip_src, f + off::ip_dst, 4);
    std::memcpy(f + off::ip_dst, addr, 4);
    std::uint8_t port[2];
    std::memcpy(port, f + off::sport, 2);
    std::memcpy(f + off::sport, f + off::dport, 2);
    std::memcpy(f + off::dport, port, 2);
    const std::uint16_t old_ttl = load16(f + off::ip_ttl);
    f[off::ip_ttl] = kTtl;
    store16(f + off::ip_csum,
            csum_adjust(load16(f + off::ip_csum), old_ttl, load16(f + off::ip_ttl)));
    if (v.proto == Proto::tcp && (v.tcp_flags & kTcpSyn) != 0) {
        const std::uint16_t old_word = load16(f + off::tcp_offset);
        f[off::tcp_flags] = kTcpSyn | kTcpAck;
        store16(f + off::tcp_csum,
                csum_adjust(load16(f + off::tcp_csum), old_word, load16(f + off::tcp_offset)));
    }
}

// ---- ARP -----------------------------------------------------------------------------------

// Writes a 60-byte ARP request "who has target_ip, tell sender_ip" from src_mac; returns its
// length.
std::uint16_t write_arp_request(std::uint8_t* out, const Mac& src_mac, std::uint32_t sender_ip,
                                std::uint32_t target_ip);
struct ArpView {
    std::uint16_t op;
    std::uint32_t sender_ip;
    std::uint32_t target_ip;
};
std::optional<ArpView> parse_arp(const std::uint8_t* f, std::uint16_t len);
// Turns a request for our address into the reply, in place.
void make_arp_reply(std::uint8_t* f, const Mac& our_mac, std::uint32_t our_ip);

} // namespace loadgen
