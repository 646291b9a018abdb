// Floods: frames that belong to no flow, sent for a bounded time while the flows run, to see
// that the NAT keeps serving its well-behaved subscribers and counts every frame it drops by
// reason (bench/soak.sh --floods-only runs them).
//
//   syn        inside: TCP SYNs from many subscriber addresses (100.96.0.0 onwards, --flood-
//              sources of them), random ports, to random servers: each is a new session until
//              the NAT's limits refuse it; the servers never answer
//   outside    outside: UDP and TCP SYNs from random outside hosts (198.18.64.0 onwards) to
//              random ports of random pool addresses: almost all have no mapping
//   malformed  both sides: frames the NAT must drop, one kind after another (kFloodKinds)
//
// Flood frames carry the stamp flow id kFloodFlow, so those the NAT passes on (a translated SYN,
// an outside packet that hits a live mapping under endpoint-independent filtering) are counted
// as flood (in_flood, out_flood), never checked as a flow's.
//
// The flows have first claim on a port: each poll, the flood sender offers one burst after the
// flows' frames went; what the port does not take waits for the next poll (flood_ring_full
// counts the offers that found the ring full), and a frame is counted as sent (flood_tx) when
// the port took it: it reached the NAT. So a flood at full rate (--flood-rate 0) keeps the NAT's RX
// ring as full as the NAT lets it be, and the generator builds no more frames than the NAT takes.
#pragma once

#include "frame.hpp"
#include "stats.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

struct rte_mbuf;
struct rte_mempool;

namespace loadgen {

enum class FloodType : std::uint8_t { none, syn, outside, malformed };

std::string_view flood_type_name(FloodType t);

struct FloodConfig {
    FloodType type = FloodType::none;
    double rate_pps = 0;           // per side that sends; 0: as fast as the port takes
    double start_s = 0;            // into the measure phase
    double duration_s = 0;         // then it stops
    std::uint32_t sources = 65536; // syn: distinct subscriber addresses, from 100.96.0.0
};

// Every frame a flood can send (kFloodKinds says which flood, side and expected outcome).
enum class FloodFrame : std::uint8_t {
    syn,
    outside_udp,
    outside_syn,
    runt,
    ipv4_truncated,
    bad_version,
    bad_ihl,
    ihl_beyond_frame,
    total_length_beyond_frame,
    total_length_below_header,
    bad_ip_checksum,
    ipv6_ethertype,
    vlan_ethertype,
    fragment_bad_length,
    tcp_fragment_offset_8,
    orphan_fragment,
    udp_truncated,
    tcp_bad_data_offset,
    unknown_protocol,
    icmp_unsupported_type,
    icmp_error_bad_checksum,
    icmp_error_truncated,
    martian_destination,
    ttl_expired,
    wrong_dst_mac,
    out_bad_ip_checksum,
    out_total_length_beyond_frame,
    out_ipv6_ethertype,
    out_martian_source,
    out_not_pool_address,
    out_icmp_error_no_mapping,
};

// One kind of flood frame: which flood sends it, on which side, and what the NAT should do with
// it, as ephemera's counter names ('|' between the outcomes it may have). The loadgen checks
// nothing against these; they document the expectation and go into the report, where
// bench/soak.py compares them with ephemera's counters.
struct FloodKind {
    FloodFrame frame;
    std::string_view name;
    FloodType type;
    bool outside;
    std::string_view expect;
};

// A frame that parses may cross to its owner on a NAT with several workers, where a full
// handoff ring drops it: drop_handoff_congestion is one of its outcomes.
inline constexpr std::array kFloodKinds = {
    FloodKind{
        FloodFrame::syn, "syn", FloodType::syn, false,
        "in2out_translated|drop_sessions_exhausted|drop_subscribers_exhausted|"
        "drop_subscriber_sessions|drop_subscriber_ports|drop_subscriber_rate|"
        "drop_ports_exhausted|drop_subscriber_blocks|drop_blocks_exhausted|drop_not_deterministic|"
        "drop_handoff_congestion"},
    FloodKind{FloodFrame::outside_udp, "outside_udp", FloodType::outside, true,
              "out2in_translated|drop_no_mapping|drop_filtered|drop_handoff_congestion"},
    FloodKind{FloodFrame::outside_syn, "outside_syn", FloodType::outside, true,
              "out2in_translated|drop_no_mapping|drop_filtered|drop_handoff_congestion"},
    // malformed, inside
    FloodKind{FloodFrame::runt, "runt", FloodType::malformed, false, "drop_truncated"},
    FloodKind{FloodFrame::ipv4_truncated, "ipv4_truncated", FloodType::malformed, false,
              "drop_truncated"},
    FloodKind{FloodFrame::bad_version, "bad_version", FloodType::malformed, false,
              "drop_bad_version"},
    FloodKind{FloodFrame::bad_ihl, "bad_ihl", FloodType::malformed, false, "drop_bad_ihl"},
    FloodKind{FloodFrame::ihl_beyond_frame, "ihl_beyond_frame", FloodType::malformed, false,
              "drop_truncated"},
    FloodKind{FloodFrame::total_length_beyond_frame, "total_length_beyond_frame",
              FloodType::malformed, false, "drop_bad_total_length"},
    FloodKind{FloodFrame::total_length_below_header, "total_length_below_header",
              FloodType::malformed, false, "drop_bad_total_length"},
    FloodKind{FloodFrame::bad_ip_checksum, "bad_ip_checksum", FloodType::malformed, false,
              "drop_bad_ip_checksum"},
    FloodKind{FloodFrame::ipv6_ethertype, "ipv6_ethertype", FloodType::malformed, false,
              "drop_not_ipv4"},
    FloodKind{FloodFrame::vlan_ethertype, "vlan_ethertype", FloodType::malformed, false,
              "drop_not_ipv4"},
    FloodKind{FloodFrame::fragment_bad_length, "fragment_bad_length", FloodType::malformed, false,
              "drop_fragment"},
    FloodKind{FloodFrame::tcp_fragment_offset_8, "tcp_fragment_offset_8", FloodType::malformed,
              false, "drop_fragment"},
    // A last piece whose first piece never comes: held, then timed out or evicted.
    FloodKind{FloodFrame::orphan_fragment, "orphan_fragment", FloodType::malformed, false,
              "fragments_timed_out|fragments_evicted|drop_fragment_table_full|"
              "drop_fragment_cap|drop_handoff_congestion"},
    FloodKind{FloodFrame::udp_truncated, "udp_truncated", FloodType::malformed, false,
              "drop_truncated"},
    FloodKind{FloodFrame::tcp_bad_data_offset, "tcp_bad_data_offset", FloodType::malformed, false,
              "drop_truncated"},
    FloodKind{FloodFrame::unknown_protocol, "unknown_protocol", FloodType::malformed, false,
              "drop_unsupported_protocol"},
    FloodKind{FloodFrame::icmp_unsupported_type, "icmp_unsupported_type", FloodType::malformed,
              false, "drop_unsupported_protocol"},
    FloodKind{FloodFrame::icmp_error_bad_checksum, "icmp_error_bad_checksum", FloodType::malformed,
              false, "drop_icmp_error_bad_checksum"},
    FloodKind{FloodFrame::icmp_error_truncated, "icmp_error_truncated", FloodType::malformed, false,
              "drop_icmp_error_truncated"},
    FloodKind{FloodFrame::martian_destination, "martian_destination", FloodType::malformed, false,
              "drop_martian|drop_handoff_congestion"},
    FloodKind{FloodFrame::ttl_expired, "ttl_expired", FloodType::malformed, false,
              "drop_ttl_expired|drop_handoff_congestion"},
    FloodKind{FloodFrame::wrong_dst_mac, "wrong_dst_mac", FloodType::malformed, false,
              "drop_not_for_us"},
    // malformed, outside
    FloodKind{FloodFrame::out_bad_ip_checksum, "out_bad_ip_checksum", FloodType::malformed, true,
              "drop_bad_ip_checksum"},
    FloodKind{FloodFrame::out_total_length_beyond_frame, "out_total_length_beyond_frame",
              FloodType::malformed, true, "drop_bad_total_length"},
    FloodKind{FloodFrame::out_ipv6_ethertype, "out_ipv6_ethertype", FloodType::malformed, true,
              "drop_not_ipv4"},
    FloodKind{FloodFrame::out_martian_source, "out_martian_source", FloodType::malformed, true,
              "drop_martian|drop_handoff_congestion"},
    FloodKind{FloodFrame::out_not_pool_address, "out_not_pool_address", FloodType::malformed, true,
              "drop_not_for_us"},
    FloodKind{FloodFrame::out_icmp_error_no_mapping, "out_icmp_error_no_mapping",
              FloodType::malformed, true,
              "drop_icmp_error_no_mapping|drop_icmp_error_no_session|drop_handoff_congestion"},
};

inline constexpr std::size_t kFloodKindCount = kFloodKinds.size();
inline constexpr std::uint16_t kFloodBurst = 32;

struct RunConfig;

// The flood frames of one side, sent by the role that owns that side's port (its only writer).
class FloodSender {
public:
    FloodSender(const RunConfig& cfg, bool outside, std::uint64_t tsc_hz);

    [[nodiscard]] bool enabled() const { return !kinds_.empty(); }
    // While `active` (the flood's window is open): tops its burst up with new frames and offers
    // it to the port; returns the frames the port took. Once the window has closed, frees what
    // is still waiting. The first active call starts the rate bucket.
    std::uint32_t poll(bool active, rte_mempool* pool, std::uint16_t port, std::uint16_t queues,
                       std::uint64_t now, Stats& stats);
    // Frames of kFloodKinds[k] the port took (0 for kinds of the other side).
    [[nodiscard]] std::uint64_t sent(std::size_t k) const {
        return sent_[k].load(std::memory_order_relaxed);
    }

private:
    std::uint16_t build(std::size_t kind, std::uint8_t* out, std::uint64_t now);
    std::uint64_t random();

    const RunConfig& cfg_;
    bool outside_;
    std::uint64_t tsc_hz_;
    std::vector<std::size_t> kinds_; // indices into kFloodKinds this side sends
    std::size_t next_kind_ = 0;
    std::uint16_t next_queue_ = 0;
    std::uint64_t rng_;
    double tokens_ = 0;
    std::uint64_t last_ = 0;
    FrameBuilder frames_;
    std::array<std::atomic<std::uint64_t>, kFloodKindCount> sent_{};
    // Built, not yet taken by the port: their buffers and kinds.
    std::array<rte_mbuf*, kFloodBurst> pending_{};
    std::array<std::size_t, kFloodBurst> pending_kind_{};
    std::uint16_t pending_count_ = 0;
};

} // namespace loadgen
