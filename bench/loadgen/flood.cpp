#include "flood.hpp"

#include "generator.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

namespace loadgen {

namespace {

constexpr std::uint32_t kFloodSourceBase = (100u << 24) | (96u << 16); // 100.96.0.0
constexpr std::uint32_t kOutsideHostBase = (198u << 24) | (18u << 16) | (64u << 8);
constexpr std::uint32_t kOutsideHosts = 4096;
constexpr std::uint32_t kNotPoolAddress = (198u << 24) | (18u << 16) | (99u << 8) | 1;
constexpr std::uint32_t kLoopback = (127u << 24) | 1;
constexpr std::uint16_t kFlagMoreFragments = 0x2000;
constexpr std::uint8_t kIpProtoGre = 47;
constexpr std::uint8_t kIcmpDestUnreachable = 3;
constexpr std::uint8_t kIcmpTimestamp = 13;
constexpr std::size_t kIcmp = off::l4; // ICMP header right after a 20-byte IPv4 header

std::uint8_t* data_of(rte_mbuf* m) {
    return rte_pktmbuf_mtod(m, std::uint8_t*);
}

// The IPv4 header checksum of the header at off::ip (IHL 5), written in place.
void ip_checksum(std::uint8_t* f) {
    store16(f + off::ip_csum, 0);
    store16(f + off::ip_csum, static_cast<std::uint16_t>(~fold(sum16(f + off::ip, 20))));
}

// An ICMP checksum over `len` bytes from p (even), written in place.
void icmp_checksum(std::uint8_t* p, std::size_t len) {
    store16(p + 2, 0);
    store16(p + 2, static_cast<std::uint16_t>(~fold(sum16(p, len))));
}

void set_total_length(std::uint8_t* f, std::uint16_t total) {
    store_be16(f + off::ip_total_len, total);
    ip_checksum(f);
}

} // namespace

std::string_view flood_type_name(FloodType t) {
    switch (t) {
    case FloodType::none:
        return "none";
    case FloodType::syn:
        return "syn";
    case FloodType::outside:
        return "outside";
    case FloodType::malformed:
        break;
    }
    return "malformed";
}

FloodSender::FloodSender(const RunConfig& cfg, bool outside, std::uint64_t tsc_hz)
    : cfg_(cfg), outside_(outside), tsc_hz_(tsc_hz),
      rng_(outside ? 0x6f75747369646531ull : 0x696e736964653031ull),
      frames_(outside ? cfg.dut_out_mac : cfg.dut_in_mac, outside ? cfg.lg_out_mac : cfg.lg_in_mac,
              kMinFrameLen) {
    for (std::size_t k = 0; k < kFloodKindCount; ++k) {
        if (kFloodKinds[k].type == cfg.flood.type && kFloodKinds[k].outside == outside) {
            kinds_.push_back(k);
        }
    }
}

// xorshift64*: fast, and good enough to scatter addresses and ports.
std::uint64_t FloodSender::random() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545f4914f6cdd1dull;
}

std::uint32_t FloodSender::poll(bool active, rte_mempool* pool, std::uint16_t port,
                                std::uint16_t queues, std::uint64_t now, Stats& stats) {
    if (!active) {
        if (pending_count_ != 0) {
            rte_pktmbuf_free_bulk(pending_.data(), pending_count_);
            pending_count_ = 0;
        }
        return 0;
    }
    if (kinds_.empty()) {
        return 0;
    }
    if (last_ == 0) {
        last_ = now;
    }
    std::uint32_t want = kFloodBurst - pending_count_;
    if (cfg_.flood.rate_pps > 0) {
        const double per_cycle = cfg_.flood.rate_pps / static_cast<double>(tsc_hz_);
        tokens_ =
            std::min(4.0 * kFloodBurst, tokens_ + static_cast<double>(now - last_) * per_cycle);
        last_ = now;
        want = std::min<std::uint32_t>(want, static_cast<std::uint32_t>(tokens_));
    }
    if (want != 0 && rte_pktmbuf_alloc_bulk(pool, pending_.data() + pending_count_, want) == 0) {
        for (std::uint32_t i = pending_count_; i < pending_count_ + want; ++i) {
            pending_kind_[i] = kinds_[next_kind_];
            next_kind_ = next_kind_ + 1 == kinds_.size() ? 0 : next_kind_ + 1;
            rte_mbuf* m = pending_[i];
            const std::uint16_t len = build(pending_kind_[i], data_of(m), now);
            m->data_len = len;
            m->pkt_len = len;
        }
        pending_count_ = static_cast<std::uint16_t>(pending_count_ + want);
        tokens_ -= want;
    } // else: the flows' buffers come first; offer what is pending
    if (pending_count_ == 0) {
        return 0;
    }
    const std::uint16_t queue = next_queue_;
    next_queue_ = static_cast<std::uint16_t>((next_queue_ + 1) % queues);
    const std::uint16_t taken = rte_eth_tx_burst(port, queue, pending_.data(), pending_count_);
    for (std::uint16_t i = 0; i < taken; ++i) {
        auto& slot = sent_[pending_kind_[i]];
        slot.store(slot.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    const auto left = static_cast<std::uint16_t>(pending_count_ - taken);
    std::copy_n(pending_.begin() + taken, left, pending_.begin());
    std::copy_n(pending_kind_.begin() + taken, left, pending_kind_.begin());
    pending_count_ = left;
    stats.add(Stat::flood_tx, taken);
    stats.add(Stat::flood_offers);
    stats.add(Stat::flood_ring_full, left != 0 ? 1 : 0);
    return taken;
}

// One frame of kFloodKinds[kind] at `out`; returns its length. Every frame starts as a valid
// 60-byte UDP (or TCP) frame with the flood stamp, then has the one thing wrong with it that
// its kind names.
std::uint16_t FloodSender::build(std::size_t kind, std::uint8_t* f, std::uint64_t now) {
    const FloodFrame frame = kFloodKinds[kind].frame;
    const std::uint64_t r = random(); // addresses
    const std::uint64_t q = random(); // ports
    const auto port_a = static_cast<std::uint16_t>(FlowModel::kPortBase + q % FlowModel::kPortSpan);
    const auto port_b = static_cast<std::uint16_t>(1 + (q >> 40) % 65535);
    const std::uint32_t pool_addr =
        cfg_.pool_lo + static_cast<std::uint32_t>((r >> 40) % (cfg_.pool_hi - cfg_.pool_lo + 1));
    const bool tcp = frame == FloodFrame::syn || frame == FloodFrame::outside_syn ||
                     frame == FloodFrame::tcp_fragment_offset_8 ||
                     frame == FloodFrame::tcp_bad_data_offset;
    Tuple t{};
    t.proto = tcp ? Proto::tcp : Proto::udp;
    if (outside_) {
        t.sub_addr = kOutsideHostBase + static_cast<std::uint32_t>(r % kOutsideHosts);
        t.server_addr = pool_addr;
        t.sub_port = port_a;
        t.server_port = port_b;
    } else {
        t.sub_addr = kFloodSourceBase + static_cast<std::uint32_t>(r % cfg_.flood.sources);
        t.server_addr =
            FlowModel::kServerBase + static_cast<std::uint32_t>((r >> 24) % cfg_.model.servers());
        t.sub_port = port_a;
        t.server_port =
            static_cast<std::uint16_t>(FlowModel::kPortBase + (q >> 20) % FlowModel::kPortSpan);
    }
    frames_.build(f, t, Stamp{kFloodFlow, 0, 0, now}, tcp ? kTcpSyn : std::uint8_t{0});
    std::uint16_t len = frames_.frame_len();

    switch (frame) {
    case FloodFrame::syn:
    case FloodFrame::outside_udp:
    case FloodFrame::outside_syn:
        break; // valid frames: the flood is their number, not their form
    case FloodFrame::runt:
        return 12; // the two MACs and nothing more
    case FloodFrame::ipv4_truncated:
        return off::ip + 16; // EtherType IPv4, 16 bytes of a 20-byte header
    case FloodFrame::bad_version:
        f[off::ip] = 0x65;
        break;
    case FloodFrame::bad_ihl:
        f[off::ip] = 0x44;
        break;
    case FloodFrame::ihl_beyond_frame:
        f[off::ip] = 0x4f; // a 60-byte header in a 46-byte packet
        break;
    case FloodFrame::total_length_beyond_frame:
    case FloodFrame::out_total_length_beyond_frame:
        set_total_length(f, 200);
        break;
    case FloodFrame::total_length_below_header:
        set_total_length(f, 12);
        break;
    case FloodFrame::bad_ip_checksum:
    case FloodFrame::out_bad_ip_checksum:
        f[off::ip_csum] ^= 0x55;
        f[off::ip_csum + 1] ^= 0x55;
        break;
    case FloodFrame::ipv6_ethertype:
    case FloodFrame::out_ipv6_ethertype:
        store_be16(f + off::eth_type, 0x86dd);
        break;
    case FloodFrame::vlan_ethertype:
        store_be16(f + off::eth_type, 0x8100);
        break;
    case FloodFrame::fragment_bad_length:
        store_be16(f + off::ip_frag, kFlagMoreFragments); // 26 bytes: not a multiple of 8
        set_total_length(f, 46);
        break;
    case FloodFrame::tcp_fragment_offset_8:
        store_be16(f + off::ip_frag, 1); // offset 8 bytes (RFC 1858)
        ip_checksum(f);
        break;
    case FloodFrame::orphan_fragment:
        store_be16(f + off::ip_id, static_cast<std::uint16_t>(q >> 24));
        store_be16(f + off::ip_frag, 2); // the last piece, at offset 16: its first never comes
        ip_checksum(f);
        break;
    case FloodFrame::udp_truncated:
        set_total_length(f, 20 + 4);
        break;
    case FloodFrame::tcp_bad_data_offset:
        f[off::tcp_offset] = 3 << 4;
        break;
    case FloodFrame::unknown_protocol:
        f[off::ip_proto] = kIpProtoGre;
        ip_checksum(f);
        break;
    case FloodFrame::icmp_unsupported_type:
        f[off::ip_proto] = kIpProtoIcmp;
        f[kIcmp] = kIcmpTimestamp;
        f[kIcmp + 1] = 0;
        icmp_checksum(f + kIcmp, len - kIcmp);
        ip_checksum(f);
        break;
    case FloodFrame::icmp_error_bad_checksum:
        f[off::ip_proto] = kIpProtoIcmp;
        f[kIcmp] = kIcmpDestUnreachable;
        f[kIcmp + 1] = 1;
        icmp_checksum(f + kIcmp, len - kIcmp);
        f[kIcmp + 2] ^= 0x5a;
        ip_checksum(f);
        break;
    case FloodFrame::icmp_error_truncated:
        f[off::ip_proto] = kIpProtoIcmp;
        f[kIcmp] = kIcmpDestUnreachable;
        f[kIcmp + 1] = 1;
        store_be16(f + off::ip_total_len, 20 + 8 + 10); // a 10-byte quote: no IPv4 header
        icmp_checksum(f + kIcmp, 8 + 10);
        ip_checksum(f);
        break;
    case FloodFrame::martian_destination:
        store_be32(f + off::ip_dst, kLoopback);
        ip_checksum(f);
        break;
    case FloodFrame::ttl_expired:
        f[off::ip_ttl] = 1;
        ip_checksum(f);
        break;
    case FloodFrame::wrong_dst_mac: {
        static constexpr std::uint8_t kOtherMac[6] = {0x02, 0, 0, 0, 0, 0x99};
        std::memcpy(f, kOtherMac, 6);
        break;
    }
    case FloodFrame::out_martian_source:
        store_be32(f + off::ip_src, kLoopback);
        ip_checksum(f);
        break;
    case FloodFrame::out_not_pool_address:
        store_be32(f + off::ip_dst, kNotPoolAddress);
        ip_checksum(f);
        break;
    case FloodFrame::out_icmp_error_no_mapping: {
        // Port unreachable from the remote host about a UDP packet that left the pool address
        // from a random port, which has no mapping: IPv4 + ICMP + quoted IPv4 + UDP.
        f[off::ip_proto] = kIpProtoIcmp;
        std::uint8_t* icmp = f + kIcmp;
        std::memset(icmp, 0, 8 + 20 + 8);
        icmp[0] = kIcmpDestUnreachable;
        icmp[1] = 3;
        std::uint8_t* quoted = icmp + 8;
        quoted[0] = 0x45;
        store_be16(quoted + 2, 46);
        quoted[8] = kTtl - 1;
        quoted[9] = static_cast<std::uint8_t>(Proto::udp);
        store_be32(quoted + 12, pool_addr);
        store_be32(quoted + 16, t.sub_addr); // the remote host
        store16(quoted + 10, static_cast<std::uint16_t>(~fold(sum16(quoted, 20))));
        store_be16(quoted + 20, port_b); // the pool address's port
        store_be16(quoted + 22, port_a);
        store_be16(quoted + 24, 26);
        icmp_checksum(icmp, 8 + 20 + 8);
        len = static_cast<std::uint16_t>(kIcmp + 8 + 20 + 8);
        set_total_length(f, static_cast<std::uint16_t>(len - off::ip));
        break;
    }
    }
    return len;
}

} // namespace loadgen
