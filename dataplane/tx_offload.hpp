// The mbuf side of checksum offload (tx_checksum.hpp): a frame whose checksums the rewrite
// left to its port carries, for the driver, the TX flags naming them and the header lengths
// it needs to find the fields (rte_mbuf_core.h). The checksum fields themselves were already
// prepared by the rewrite, so rte_eth_tx_prepare has nothing left to do for these packets.
#pragma once

#include "ephemera/packet.hpp"
#include "ephemera/tx_checksum.hpp"

#include <rte_mbuf.h>

#include <cstdint>

namespace ephemera {

// One table entry per set of checksums, so that flagging a packet does not branch on it.
// RTE_MBUF_F_TX_IPV4 goes with every entry: drivers read it for any checksum offload of an
// IPv4 packet, not only the header's. UDP and TCP are values of one two-bit field
// (RTE_MBUF_F_TX_L4_MASK), never both: a packet is one or the other.
inline constexpr std::uint64_t kTxOffloadFlags[8] = {
    0,
    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM,
    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM,
    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM,
    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM,
    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM,
    0, // UDP and TCP at once: no packet is both
    0,
};
static_assert(TxChecksums::all().bits() == 7, "kTxOffloadFlags is indexed by the bits");

constexpr std::uint64_t tx_offload_flags(TxChecksums left) {
    return kTxOffloadFlags[left.bits()];
}

// `left`: what rewrite_endpoint_offload returned for the frame in `m` (one segment), not none.
// A received buffer carries no TX flags (drivers set only RX ones, rte_pktmbuf_reset clears
// them), so they are added to what is there. The frame is cut to its IPv4 datagram: a NIC sums
// the transport message to the end of the frame, so the Ethernet padding of a short frame,
// which need not be zeros, would be summed in; the NIC pads what it sends again.
inline void leave_checksums_to_port(rte_mbuf* m, const ParsedPacket& p, TxChecksums left) {
    m->ol_flags |= tx_offload_flags(left);
    m->l2_len = p.l3;
    m->l3_len = p.l4 - p.l3; // with the options
    m->data_len = static_cast<std::uint16_t>(p.l3 + p.ip_total_len);
    m->pkt_len = m->data_len;
}

} // namespace ephemera
