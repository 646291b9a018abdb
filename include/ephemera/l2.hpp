// What a box on an Ethernet segment must do besides forwarding: answer ARP for its addresses,
// ask ARP for its next hop, and answer pings to its own gateway address. All in-place frame
// builders over byte spans, so they are tested without ports.
#pragma once

#include "ephemera/packet.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace ephemera {

inline constexpr std::size_t kArpFrameLen = 42; // Ethernet + ARP for IPv4
inline constexpr std::size_t kMinFrameLen = 60; // Ethernet minimum without FCS
inline constexpr std::uint16_t kArpOpRequest = 1;
inline constexpr std::uint16_t kArpOpReply = 2;

struct ArpMessage {
    std::uint16_t op = 0;
    MacAddr sender_mac;
    Ipv4Addr sender_ip;
    MacAddr target_mac;
    Ipv4Addr target_ip;
};

// Parses an Ethernet/IPv4 ARP frame; nullopt when it is not one we can read.
std::optional<ArpMessage> parse_arp(std::span<const std::uint8_t> frame);

// Turns a received ARP request (for our_ip) into the reply from us, in place. The frame keeps
// its length.
void make_arp_reply(std::span<std::uint8_t> frame, const ArpMessage& request,
                    const MacAddr& our_mac, Ipv4Addr our_ip);

// Writes a broadcast who-has request into `frame` (at least kMinFrameLen bytes, padded with
// zeros); returns the length written.
std::size_t write_arp_request(std::span<std::uint8_t> frame, const MacAddr& our_mac,
                              Ipv4Addr our_ip, Ipv4Addr target);

// Turns an ICMP echo request into its reply, in place: addresses swapped, sent from `our_mac`
// to the requester's MAC, type 0, checksum updated incrementally, TTL reset to 64. The
// request's destination MAC is not reused: it may have been the broadcast address, which is
// never a frame's source.
void make_echo_reply(std::span<std::uint8_t> frame, const ParsedPacket& request,
                     const MacAddr& our_mac);

} // namespace ephemera
