// Rewriting an ICMP error and the packet it quotes (RFC 5508 REQ-4, REQ-5). Every changed
// 16-bit word inside the ICMP message is folded into the ICMP checksum as it changes (RFC 1624),
// so the message is never summed again.
#include "ephemera/icmp_translate.hpp"

#include "ephemera/rewrite.hpp"

#include <algorithm>

namespace ephemera {

void rewrite_icmp_error(std::uint8_t* frame, const ParsedPacket& p, Direction direction,
                        Ipv4Addr addr, std::uint16_t port) {
    const bool inbound = direction == Direction::out2in;
    const std::size_t end = std::size_t{p.l3} + p.ip_total_len;
    std::uint8_t* icmp_sum_field = frame + p.l4 + 2;
    std::uint16_t icmp_sum = load_wire16(icmp_sum_field);

    // The quoted packet: our packet's source going in, the subscriber's destination going out.
    std::uint8_t* inner_ip = frame + p.inner_l3;
    std::uint8_t* inner_l4 = frame + p.inner_l4;
    std::uint8_t* inner_addr = inner_ip + (inbound ? ipv4_off::src : ipv4_off::dst);
    std::uint8_t* inner_port = inner_l4 + detail::port_offset(p.inner_proto, inbound);
    const std::uint32_t old_addr = load_wire32(inner_addr);
    store_be32(inner_addr, addr.value());
    const std::uint32_t new_addr = load_wire32(inner_addr);
    const std::uint16_t old_port = load_wire16(inner_port);
    store_be16(inner_port, port);
    const std::uint16_t new_port = load_wire16(inner_port);
    icmp_sum = checksum_adjust32(icmp_sum, old_addr, new_addr);
    icmp_sum = checksum_adjust16(icmp_sum, old_port, new_port);

    // Its transport checksum, only when the quote reaches it (REQ-3 does not ask it be right,
    // but a correct one stays correct for the host that reads it).
    const std::size_t l4_sum_at = std::size_t{p.inner_l4} + l4_checksum_offset(p.inner_proto);
    if (l4_sum_at + 2 <= end) {
        const std::uint16_t before = load_wire16(frame + l4_sum_at);
        // The quoted message as far as it is quoted (and no further than its own datagram).
        const std::size_t inner_end =
            std::min<std::size_t>(end, std::size_t{p.inner_l3} + load_be16(inner_ip + 2));
        detail::adjust_l4_checksum(inner_l4, inner_end > p.inner_l4 ? inner_end - p.inner_l4 : 0,
                                   p.inner_proto, checksum_delta32(old_addr, new_addr), old_port,
                                   new_port);
        icmp_sum = checksum_adjust16(icmp_sum, before, load_wire16(frame + l4_sum_at));
    }

    // Its IPv4 header checksum.
    std::uint8_t* inner_sum_field = inner_ip + ipv4_off::checksum;
    const std::uint16_t inner_sum = load_wire16(inner_sum_field);
    const std::uint16_t new_inner_sum = checksum_adjust32(inner_sum, old_addr, new_addr);
    store_wire16(inner_sum_field, new_inner_sum);
    icmp_sum = checksum_adjust16(icmp_sum, inner_sum, new_inner_sum);
    store_wire16(icmp_sum_field, icmp_sum);

    // The ICMP error's own checksum covers a non-zero type (3, 11 or 12): never all zero.
    // The outer header: ICMP has no pseudo-header, so only the IPv4 checksum follows it.
    std::uint8_t* ip = frame + p.l3;
    std::uint8_t* outer_addr = ip + (inbound ? ipv4_off::dst : ipv4_off::src);
    const std::uint32_t old_outer = load_wire32(outer_addr);
    store_be32(outer_addr, addr.value());
    const std::uint32_t new_outer = load_wire32(outer_addr);
    std::uint8_t* ttl_word = ip + ipv4_off::ttl; // TTL shares a word with the protocol
    const std::uint16_t old_ttl_word = load_wire16(ttl_word);
    ttl_word[0] = static_cast<std::uint8_t>(ttl_word[0] - 1);
    std::uint16_t ip_sum = load_wire16(ip + ipv4_off::checksum);
    ip_sum = checksum_adjust32(ip_sum, old_outer, new_outer);
    ip_sum = checksum_adjust16(ip_sum, old_ttl_word, load_wire16(ttl_word));
    store_wire16(ip + ipv4_off::checksum, ip_sum);
}

} // namespace ephemera
