#include "frame.hpp"

#include <cstdio>

namespace loadgen {

namespace {

constexpr std::uint16_t kArpOpRequest = 1;
constexpr std::uint16_t kArpOpReply = 2;
constexpr std::size_t kArpLen = 28;

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace

std::optional<Mac> Mac::parse(std::string_view text) {
    if (text.size() != 17) {
        return std::nullopt;
    }
    Mac m;
    for (std::size_t i = 0; i < 6; ++i) {
        const int hi = hex_digit(text[i * 3]);
        const int lo = hex_digit(text[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != ':')) {
            return std::nullopt;
        }
        m.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return m;
}

std::string Mac::to_string() const {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return buf;
}

std::string ipv4_to_string(std::uint32_t a) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
                  a & 0xff);
    return buf;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
    std::uint32_t value = 0;
    int parts = 0;
    std::size_t i = 0;
    while (parts < 4) {
        std::uint32_t octet = 0;
        std::size_t digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 3) {
            octet = octet * 10 + static_cast<std::uint32_t>(text[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0 || octet > 255) {
            return std::nullopt;
        }
        value = value << 8 | octet;
        ++parts;
        if (parts < 4) {
            if (i >= text.size() || text[i] != '.') {
                return std::nullopt;
            }
            ++i;
        }
    }
    if (i != text.size()) {
        return std::nullopt;
    }
    return value;
}

FrameBuilder::FrameBuilder(const Mac& dst, const Mac& src, std::uint16_t frame_len)
    : len_(frame_len), l4_len_(static_cast<std::uint16_t>(frame_len - off::l4)) {
    for (auto* t : {&udp_, &tcp_}) {
        std::uint8_t* f = t->data();
        std::memcpy(f, dst.bytes.data(), 6);
        std::memcpy(f + 6, src.bytes.data(), 6);
        store_be16(f + off::eth_type, kEtherTypeIpv4);
        f[off::ip] = 0x45;
        store_be16(f + off::ip_total_len, static_cast<std::uint16_t>(frame_len - off::ip));
        f[off::ip_ttl] = kTtl;
    }
    udp_[off::ip_proto] = static_cast<std::uint8_t>(Proto::udp);
    store_be16(udp_.data() + off::udp_len, l4_len_);
    tcp_[off::ip_proto] = static_cast<std::uint8_t>(Proto::tcp);
    tcp_[off::tcp_offset] = 5 << 4;
    store_be16(tcp_.data() + off::tcp_offset + 2, 65535); // window
}

std::uint16_t write_arp_request(std::uint8_t* out, const Mac& src_mac, std::uint32_t sender_ip,
                                std::uint32_t target_ip) {
    std::memset(out, 0, kMinFrameLen);
    std::memset(out, 0xff, 6);
    std::memcpy(out + 6, src_mac.bytes.data(), 6);
    store_be16(out + off::eth_type, kEtherTypeArp);
    std::uint8_t* a = out + 14;
    store_be16(a, 1); // Ethernet
    store_be16(a + 2, kEtherTypeIpv4);
    a[4] = 6;
    a[5] = 4;
    store_be16(a + 6, kArpOpRequest);
    std::memcpy(a + 8, src_mac.bytes.data(), 6);
    store_be32(a + 14, sender_ip);
    store_be32(a + 24, target_ip); // target MAC stays zero
    return kMinFrameLen;
}

std::optional<ArpView> parse_arp(const std::uint8_t* f, std::uint16_t len) {
    if (len < 14 + kArpLen || load_be16(f + off::eth_type) != kEtherTypeArp) {
        return std::nullopt;
    }
    const std::uint8_t* a = f + 14;
    if (load_be16(a) != 1 || load_be16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4) {
        return std::nullopt;
    }
    return ArpView{load_be16(a + 6), load_be32(a + 14), load_be32(a + 24)};
}

void make_arp_reply(std::uint8_t* f, const Mac& our_mac, std::uint32_t our_ip) {
    std::uint8_t* a = f + 14;
    std::memcpy(f, a + 8, 6); // to the requester
    std::memcpy(f + 6, our_mac.bytes.data(), 6);
    store_be16(a + 6, kArpOpReply);
    std::memcpy(a + 18, a + 8, 10); // requester's MAC and IP become the target
    std::memcpy(a + 8, our_mac.bytes.data(), 6);
    store_be32(a + 14, our_ip);
}

} // namespace loadgen
