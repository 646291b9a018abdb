// Per-worker counters. Each worker writes only its own block; the telemetry thread and the
// exit report read them. A counter is a std::atomic written with a relaxed load and store
// (never a locked read-modify-write): the single writer makes that exact, and on x86 it is a
// plain add, so the packet path pays nothing for being readable from another thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace ephemera {

enum class Counter : std::uint16_t {
    // traffic
    in2out_rx,         // packets received on the inside port by this worker
    out2in_rx,         // packets received on the outside port by this worker
    in2out_tx,         // frames sent out of the outside port: translated packets, the answers
                       // and errors ephemera sends there, its ARP requests for the next hop
    out2in_tx,         // frames sent out of the inside port: translated packets and answers
    in2out_translated, // inside-to-outside translations done by this worker
    out2in_translated, // outside-to-inside translations done by this worker
    mappings_created,  // new endpoint-independent mappings (RFC 4787 REQ-1)
    sessions_created,  // new 5-tuple sessions
    port_preserved,    // new mappings that kept the subscriber's source port
    handoff_tx,        // packets handed to their owning worker
    handoff_rx,        // packets received from another worker
    arp_replies_sent,
    arp_requests_sent,
    arp_replies_received,   // ARP replies from the next hop (its MAC learned, unless configured)
    icmp_echo_replies_sent, // pings to the inside gateway answered
    pool_echo_replies_sent, // pings to a pool address answered
    hairpinned,             // subscriber packets to a pool address turned back inside
    syn_held,               // unsolicited inbound SYNs held 6 s (RFC 5382 REQ-4)
    syn_held_cancelled,     // ... dropped silently: the inside sent a SYN of that connection
    syn_held_overflow,      // ... dropped silently: the hold queue was full
    syn_unreachable_sent,   // ... answered with ICMP 3/3 after 6 s
    icmp_unreachable_sent,  // 3/1 to a subscriber refused a mapping (RFC 6888 REQ-11)
    icmp_unreachable_rate_limited, // ... that the rate limit held back
    expired_udp,                   // sessions aged out, by the timeout that ended them
    expired_tcp_established,
    expired_tcp_transitory,
    expired_icmp,
    mappings_released,        // mappings whose last session went; the port enters hold-down
    ports_held,               // ports that entered hold-down (RFC 6888 REQ-8)
    ports_returned,           // ports whose hold-down ended
    blocks_opened,            // port blocks given to subscribers (pool.mode = "blocks")
    blocks_released,          // blocks whose last mapping ended; the block enters hold-down
    static_mappings_created,  // mappings of a static entry, made by either side's first packet
    static_arp_requests_sent, // ARP requests for a static mapping's inside host
    log_records,              // NAT event records handed to the logging thread
    log_records_dropped,      // ... not handed over: the worker's event ring was full
    ha_records_sent,          // HA sync records handed to the sync thread (docs/ha.md)
    ha_records_dropped,       // ... not handed over: the worker's sync ring was full
    ha_records_applied,       // records from the active peer applied here (standby)
    ha_records_refused,       // ... that could not be applied (see the sync thread's report)
    moved_passed_inside,      // frames of subscribers moved to a peer, passed to its inside MAC
    moved_passed_outside,     // replies to their held ports, passed to its outside MAC
    ports_forwarded,          // ports of moved mappings held here for their replies
    forwards_ended,           // ... released after falling idle
    // fragments (RFC 4787 REQ-14) and MTU (REQ-13)
    fragments_translated, // later pieces (offset > 0) translated as their first piece was
    fragments_held,       // later pieces kept until their first piece came
    fragments_timed_out,  // held pieces freed: their datagram's first piece never came in time
    fragments_evicted,    // held pieces freed: their slot went to a newer datagram
    packets_fragmented,   // packets split to fit the port's MTU (DF clear)
    fragments_sent,       // pieces those splits made
    icmp_too_big_sent,    // 3/4 "fragmentation needed" with the next-hop MTU, to a DF sender
    // drops, by reason
    drop_not_ipv4,         // neither IPv4 nor ARP
    drop_truncated,        // frame shorter than its headers say
    drop_bad_ihl,          // IHL < 5
    drop_bad_total_length, // IPv4 total length beyond the frame or below the header
    drop_bad_ip_checksum,
    drop_bad_version,
    drop_fragment,             // malformed piece: length not a multiple of 8, beyond 64 KiB, or
                               // TCP at offset 8 (RFC 1858)
    drop_fragment_table_full,  // piece of a new datagram, no room for it
    drop_fragment_cap,         // piece beyond the per-datagram cap of held pieces
    drop_fragment_orphan,      // piece whose first piece was refused or never reached us
    drop_too_big,              // DF packet larger than the MTU (3/4 sent when the rate allows)
    drop_fragmentation_failed, // no buffer to split a packet for the MTU
    drop_unsupported_protocol, // not UDP, TCP or ICMP echo
    drop_ttl_expired,          // TTL ran out: not forwarded (Time Exceeded counted apart)
    drop_no_mapping,           // outside packet for no mapping
    drop_filtered,             // outside packet refused by the filtering mode (RFC 4787 REQ-8)
    drop_ports_exhausted,    // no free port for the subscriber's pool address (RFC 7857 section 4)
    drop_sessions_exhausted, // worker's session table full; no mapping is evicted
    drop_subscribers_exhausted, // worker's subscriber table full (limits.max_subscribers)
    drop_subscriber_sessions,   // the subscriber is at its session limit (RFC 6888 REQ-5)
    drop_subscriber_ports,      // the subscriber is at its port limit for the protocol (REQ-4)
    drop_subscriber_rate,       // the subscriber opens mappings faster than its rate limit
    drop_subscriber_blocks,     // its blocks are full and it holds max_blocks of them
    drop_blocks_exhausted,      // its blocks are full and its pool address has no free block
    drop_not_deterministic,     // deterministic mode: the subscriber is outside the prefix
    drop_static_busy,           // a static endpoint's inside endpoint (or external port) still has
                                // a mapping made before the static entry: it drains first
    drop_static_unresolved,     // outside packet for a static host whose MAC is not known yet
                                // (an ARP request for it went out)
    drop_handoff_congestion,    // owner's handoff ring full
    drop_hairpin_overflow,      // hairpinned packets beyond what a second pass holds (a defect)
    drop_nexthop_unresolved,    // next hop's MAC not learned yet
    drop_tx_full,               // port refused the packet
    drop_not_for_us,  // not addressed to us: another MAC, or outside packet not to the pool
    drop_martian,     // broadcast, multicast, loopback or this-network address: never routed
    drop_arp_ignored, // ARP not for one of our addresses
    drop_standby,     // received while this box is the HA standby, which forwards nothing
    drop_moving,      // from a subscriber whose sessions are on their way to a peer box
    // ICMP errors (RFC 5508): translated, originated, or dropped by reason
    icmp_errors_in2out,                 // errors from subscribers translated (RFC 5508 REQ-5)
    icmp_errors_out2in,                 // errors from outside translated (RFC 5508 REQ-4)
    icmp_time_exceeded_sent,            // 11/0 for a packet whose TTL ran out here (section 7.2)
    icmp_time_exceeded_rate_limited,    // ... that the ICMP rate limit held back
    drop_icmp_error_bad_checksum,       // ICMP checksum of an error message wrong (REQ-3)
    drop_icmp_error_bad_inner_checksum, // checksum of the quoted IPv4 header wrong (REQ-3)
    drop_icmp_error_truncated,          // quote shorter than an IPv4 header and 8 bytes more
    drop_icmp_error_unsupported,        // quote not UDP, TCP or echo (an error about an error)
    drop_icmp_error_no_mapping,         // error from outside about no mapping of ours (REQ-4)
    drop_icmp_error_no_session,         // error about a flow we have no session for
    count_
};

inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::count_);

inline constexpr std::array<std::string_view, kCounterCount> kCounterNames = {
    "in2out_rx",
    "out2in_rx",
    "in2out_tx",
    "out2in_tx",
    "in2out_translated",
    "out2in_translated",
    "mappings_created",
    "sessions_created",
    "port_preserved",
    "handoff_tx",
    "handoff_rx",
    "arp_replies_sent",
    "arp_requests_sent",
    "arp_replies_received",
    "icmp_echo_replies_sent",
    "pool_echo_replies_sent",
    "hairpinned",
    "syn_held",
    "syn_held_cancelled",
    "syn_held_overflow",
    "syn_unreachable_sent",
    "icmp_unreachable_sent",
    "icmp_unreachable_rate_limited",
    "expired_udp",
    "expired_tcp_established",
    "expired_tcp_transitory",
    "expired_icmp",
    "mappings_released",
    "ports_held",
    "ports_returned",
    "blocks_opened",
    "blocks_released",
    "static_mappings_created",
    "static_arp_requests_sent",
    "log_records",
    "log_records_dropped",
    "ha_records_sent",
    "ha_records_dropped",
    "ha_records_applied",
    "ha_records_refused",
    "moved_passed_inside",
    "moved_passed_outside",
    "ports_forwarded",
    "forwards_ended",
    "fragments_translated",
    "fragments_held",
    "fragments_timed_out",
    "fragments_evicted",
    "packets_fragmented",
    "fragments_sent",
    "icmp_too_big_sent",
    "drop_not_ipv4",
    "drop_truncated",
    "drop_bad_ihl",
    "drop_bad_total_length",
    "drop_bad_ip_checksum",
    "drop_bad_version",
    "drop_fragment",
    "drop_fragment_table_full",
    "drop_fragment_cap",
    "drop_fragment_orphan",
    "drop_too_big",
    "drop_fragmentation_failed",
    "drop_unsupported_protocol",
    "drop_ttl_expired",
    "drop_no_mapping",
    "drop_filtered",
    "drop_ports_exhausted",
    "drop_sessions_exhausted",
    "drop_subscribers_exhausted",
    "drop_subscriber_sessions",
    "drop_subscriber_ports",
    "drop_subscriber_rate",
    "drop_subscriber_blocks",
    "drop_blocks_exhausted",
    "drop_not_deterministic",
    "drop_static_busy",
    "drop_static_unresolved",
    "drop_handoff_congestion",
    "drop_hairpin_overflow",
    "drop_nexthop_unresolved",
    "drop_tx_full",
    "drop_not_for_us",
    "drop_martian",
    "drop_arp_ignored",
    "drop_standby",
    "drop_moving",
    "icmp_errors_in2out",
    "icmp_errors_out2in",
    "icmp_time_exceeded_sent",
    "icmp_time_exceeded_rate_limited",
    "drop_icmp_error_bad_checksum",
    "drop_icmp_error_bad_inner_checksum",
    "drop_icmp_error_truncated",
    "drop_icmp_error_unsupported",
    "drop_icmp_error_no_mapping",
    "drop_icmp_error_no_session",
};

constexpr std::string_view counter_name(Counter c) {
    return kCounterNames[static_cast<std::size_t>(c)];
}

class alignas(64) CounterBlock {
public:
    // Only the owning worker calls add().
    void add(Counter c, std::uint64_t n = 1) {
        auto& slot = values_[static_cast<std::size_t>(c)];
        slot.store(slot.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t get(Counter c) const {
        return values_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, kCounterCount> values_{};
};

} // namespace ephemera
