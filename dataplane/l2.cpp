#include "ephemera/l2.hpp"

#include <algorithm>
#include <cstring>

namespace ephemera {

namespace {

constexpr std::uint16_t kArpHardwareEthernet = 1;

MacAddr mac_at(const std::uint8_t* p) {
    MacAddr m;
    std::memcpy(m.bytes, p, 6);
    return m;
}

// Fills the ARP body (after the Ethernet header) for IPv4 over Ethernet.
void write_arp_body(std::uint8_t* arp, std::uint16_t op, const MacAddr& sender_mac,
                    Ipv4Addr sender_ip, const MacAddr& target_mac, Ipv4Addr target_ip) {
    store_be16(arp + 0, kArpHardwareEthernet);
    store_be16(arp + 2, kEtherTypeIpv4);
    arp[4] = 6;
    arp[5] = 4;
    store_be16(arp + 6, op);
    std::memcpy(arp + 8, sender_mac.bytes, 6);
    store_be32(arp + 14, sender_ip.value());
    std::memcpy(arp + 18, target_mac.bytes, 6);
    store_be32(arp + 24, target_ip.value());
}

} // namespace

std::optional<ArpMessage> parse_arp(std::span<const std::uint8_t> frame) {
    if (frame.size() < kArpFrameLen || load_be16(frame.data() + 12) != kEtherTypeArp) {
        return std::nullopt;
    }
    const std::uint8_t* arp = frame.data() + kEthHeaderLen;
    if (load_be16(arp) != kArpHardwareEthernet || load_be16(arp + 2) != kEtherTypeIpv4 ||
        arp[4] != 6 || arp[5] != 4) {
        return std::nullopt;
    }
    ArpMessage m;
    m.op = load_be16(arp + 6);
    m.sender_mac = mac_at(arp + 8);
    m.sender_ip = Ipv4Addr{load_be32(arp + 14)};
    m.target_mac = mac_at(arp + 18);
    m.target_ip = Ipv4Addr{load_be32(arp + 24)};
    return m;
}

void make_arp_reply(std::span<std::uint8_t> frame, const ArpMessage& request,
                    const MacAddr& our_mac, Ipv4Addr our_ip) {
    std::uint8_t* d = frame.data();
    std::memcpy(d, request.sender_mac.bytes, 6);
    std::memcpy(d + 6, our_mac.bytes, 6);
    write_arp_body(d + kEthHeaderLen, kArpOpReply, our_mac, our_ip, request.sender_mac,
                   request.sender_ip);
}

std::size_t write_arp_request(std::span<std::uint8_t> frame, const MacAddr& our_mac,
                              Ipv4Addr our_ip, Ipv4Addr target) {
    std::uint8_t* d = frame.data();
    std::fill(frame.begin(), frame.begin() + kMinFrameLen, std::uint8_t{0});
    std::memset(d, 0xff, 6);
    std::memcpy(d + 6, our_mac.bytes, 6);
    store_be16(d + 12, kEtherTypeArp);
    write_arp_body(d + kEthHeaderLen, kArpOpRequest, our_mac, our_ip, MacAddr{}, target);
    return kMinFrameLen;
}

void make_echo_reply(std::span<std::uint8_t> frame, const ParsedPacket& request,
                     const MacAddr& our_mac) {
    std::uint8_t* d = frame.data();
    std::memcpy(d, d + 6, 6);
    std::memcpy(d + 6, our_mac.bytes, 6);

    std::uint8_t* ip = d + request.l3;
    std::uint8_t addr[4];
    std::memcpy(addr, ip + ipv4_off::src, 4);
    std::memcpy(ip + ipv4_off::src, ip + ipv4_off::dst, 4);
    std::memcpy(ip + ipv4_off::dst, addr, 4);
    // Swapping two addresses leaves the IP checksum's sum unchanged; the TTL does not.
    const std::uint16_t old_ttl_word = load_wire16(ip + ipv4_off::ttl);
    ip[ipv4_off::ttl] = 64;
    store_wire16(ip + ipv4_off::checksum,
                 checksum_adjust16(load_wire16(ip + ipv4_off::checksum), old_ttl_word,
                                   load_wire16(ip + ipv4_off::ttl)));

    // An echo request with identifier 0, sequence 0 and no data becomes a reply of zero
    // words: settle_zero_sum gives it 0xffff.
    std::uint8_t* icmp = d + request.l4;
    const std::uint16_t old_type_word = load_wire16(icmp);
    icmp[0] = kIcmpEchoReply;
    store_wire16(icmp + 2, settle_zero_sum(checksum_adjust16(load_wire16(icmp + 2), old_type_word,
                                                             load_wire16(icmp)),
                                           {icmp, ip_payload_length(request)}, 2));
}

} // namespace ephemera
