#include "ephemera/icmp_error.hpp"

#include "ephemera/l2.hpp"
#include "ephemera/rewrite.hpp"

#include <algorithm>
#include <cstring>

namespace ephemera {

std::size_t write_icmp_error(std::span<std::uint8_t> buffer, std::size_t length,
                             const ParsedPacket& p, std::uint8_t type, std::uint8_t code,
                             Ipv4Addr from, const MacAddr& our_mac, std::uint32_t rest) {
    constexpr std::size_t kHeaders = kIpv4MinHeaderLen + kIcmpHeaderLen; // what we prepend
    const std::size_t l3 = p.l3;
    const std::size_t ihl = p.l4 - p.l3;
    const std::size_t original = std::min<std::size_t>(p.ip_total_len, length - l3);
    std::size_t quote = std::min(original, kIcmpErrorMaxIpLen - kHeaders);
    if (l3 + kHeaders + quote > buffer.size()) {
        quote = buffer.size() >= l3 + kHeaders ? buffer.size() - l3 - kHeaders : 0;
    }
    if (quote < std::min(original, ihl + 8)) {
        return 0; // RFC 792: at least the header and 64 bits of the datagram
    }
    std::uint8_t* d = buffer.data();
    const MacAddr to = ethernet_source(d);
    std::memmove(d + l3 + kHeaders, d + l3, quote);

    std::memcpy(d, to.bytes, 6);
    std::memcpy(d + 6, our_mac.bytes, 6);
    store_be16(d + 12, kEtherTypeIpv4);

    std::uint8_t* ip = d + l3;
    std::memset(ip, 0, kHeaders);
    ip[0] = 0x45;
    ip[1] = 0xc0; // precedence "internetwork control", as routers mark their ICMP
    store_be16(ip + 2, static_cast<std::uint16_t>(kHeaders + quote));
    ip[ipv4_off::ttl] = 64;
    ip[ipv4_off::protocol] = static_cast<std::uint8_t>(Protocol::icmp);
    store_be32(ip + ipv4_off::src, from.value());
    store_be32(ip + ipv4_off::dst, p.src.value());
    store_wire16(ip + ipv4_off::checksum, checksum_full({ip, kIpv4MinHeaderLen}));

    std::uint8_t* icmp = ip + kIpv4MinHeaderLen;
    icmp[0] = type;
    icmp[1] = code;
    store_be32(icmp + 4, rest);
    store_wire16(icmp + 2, checksum_full({icmp, kIcmpHeaderLen + quote}));

    std::size_t frame_len = l3 + kHeaders + quote;
    if (frame_len < kMinFrameLen && buffer.size() >= kMinFrameLen) {
        std::memset(d + frame_len, 0, kMinFrameLen - frame_len);
        frame_len = kMinFrameLen;
    }
    return frame_len;
}

} // namespace ephemera
