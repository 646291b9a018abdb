// Checksum offload on transmit. Each port's NIC may fill in the IPv4, UDP and TCP checksums of
// the packets it sends; which of them it does is chosen once per port at start, from what the
// port offers and the port's `checksum_offload` setting (choose_tx_checksums). A packet
// translated for such a port carries, in place of each checksum left to the NIC, what DPDK asks
// for (rte_mbuf_core.h, the mbuf library guide): the IPv4 checksum 0, the UDP or TCP checksum
// the pseudo-header's sum (rte_ipv4_phdr_cksum). The rewrite that leaves them so is
// detail::rewrite_endpoint_offload (rewrite.hpp); the tx stage sets the mbuf's flags and header
// lengths (dataplane/tx_offload.hpp).
//
// Not every packet may use what its port offers: ICMP has no offload; a fragment's transport
// checksum covers the whole datagram, which the NIC never sees, so a first piece keeps an
// RFC 1624 update of it; a UDP checksum of 0 means "none" (RFC 768) and stays 0.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/packet.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ephemera {

// A set of checksums: those a port computes on transmit, or those a frame leaves to its port.
class TxChecksums {
public:
    enum Bit : std::uint8_t { ipv4 = 1, udp = 2, tcp = 4 };

    constexpr TxChecksums() = default;
    constexpr explicit TxChecksums(std::uint8_t bits) : bits_(bits) {}
    static constexpr TxChecksums all() { return TxChecksums{ipv4 | udp | tcp}; }

    [[nodiscard]] constexpr bool has(Bit b) const { return (bits_ & b) != 0; }
    [[nodiscard]] constexpr bool any() const { return bits_ != 0; }
    [[nodiscard]] constexpr bool any_l4() const { return (bits_ & (udp | tcp)) != 0; }
    [[nodiscard]] constexpr std::uint8_t bits() const { return bits_; }
    [[nodiscard]] constexpr TxChecksums with(Bit b) const {
        return TxChecksums{static_cast<std::uint8_t>(bits_ | b)};
    }
    friend constexpr bool operator==(TxChecksums, TxChecksums) = default;
    // "ipv4 udp tcp", a subset of it, or "none".
    [[nodiscard]] std::string names() const;

private:
    std::uint8_t bits_ = 0;
};

// The bits of rte_eth_dev_info::tx_offload_capa read here: DPDK's RTE_ETH_TX_OFFLOAD_IPV4_CKSUM,
// _UDP_CKSUM and _TCP_CKSUM (dataplane/ports.cpp checks them against rte_ethdev.h).
namespace tx_offload_capa {
inline constexpr std::uint64_t ipv4_cksum = std::uint64_t{1} << 1;
inline constexpr std::uint64_t udp_cksum = std::uint64_t{1} << 2;
inline constexpr std::uint64_t tcp_cksum = std::uint64_t{1} << 3;
} // namespace tx_offload_capa

// What a port computes on transmit, and why not more: "ipv4 udp tcp", or what was left out and
// the reason ("none (net_pcap offers no IPv4, UDP or TCP checksum offload)").
struct TxChecksumChoice {
    TxChecksums enabled;
    std::string why_not; // empty when every checksum is offloaded
    [[nodiscard]] std::string describe() const;
};

// The choice for a port whose driver `driver` reports `capa` (tx_offload_capa), under the
// port's setting: each of the three checksums that the setting allows and the port offers.
TxChecksumChoice choose_tx_checksums(std::uint64_t capa, ChecksumOffloadSetting setting,
                                     std::string_view driver);

// The checksums `port` computes that this packet may leave to it (see the top of this file).
// `l4_checksum_wire`: the packet's UDP or TCP checksum field as it lies on the wire.
constexpr TxChecksums offloadable(const ParsedPacket& p, TxChecksums port,
                                  std::uint16_t l4_checksum_wire) {
    TxChecksums out{static_cast<std::uint8_t>(port.bits() & TxChecksums::ipv4)};
    if (p.fragment) {
        return out;
    }
    if (p.proto == Protocol::tcp && port.has(TxChecksums::tcp)) {
        return out.with(TxChecksums::tcp);
    }
    if (p.proto == Protocol::udp && port.has(TxChecksums::udp) && l4_checksum_wire != 0) {
        return out.with(TxChecksums::udp);
    }
    return out;
}

// What the NIC does with a frame whose checksums in `left` were left to it: the IPv4 header
// checksum computed over the header, the UDP or TCP one over the transport message from the
// pseudo-header sum in its field (a computed UDP 0 sent as all ones, RFC 768). For tests, and
// for the tx stage when it splits such a packet itself.
inline void complete_offloaded_checksums(std::uint8_t* frame, const ParsedPacket& p,
                                         TxChecksums left) {
    std::uint8_t* ip = frame + p.l3;
    if (left.has(TxChecksums::ipv4)) {
        store_wire16(ip + ipv4_off::checksum, 0);
        store_wire16(ip + ipv4_off::checksum,
                     checksum_full({ip, static_cast<std::size_t>(p.l4 - p.l3)}));
    }
    if (left.any_l4()) {
        std::uint8_t* l4 = frame + p.l4;
        // The field holds the pseudo-header's sum: it is summed with the rest.
        auto sum = static_cast<std::uint16_t>(
            ~fold_checksum(checksum_partial({l4, ip_payload_length(p)})));
        if (sum == 0 && left.has(TxChecksums::udp)) {
            sum = 0xffff;
        }
        store_wire16(l4 + l4_checksum_offset(p.proto), sum);
    }
}

} // namespace ephemera
