// Counters and latency histograms of the load generator. Each role (subscribers, servers) owns
// one Stats block and is its only writer; the main lcore reads them for progress lines and
// phase snapshots. Values are std::atomic written with a relaxed load and store (never a locked
// read-modify-write): exact with one writer, and a plain add on x86.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace loadgen {

enum class Stat : std::uint8_t {
    // subscriber role (inside port)
    sub_tx,          // packets sent into the NAT's inside
    sub_tx_new,      // of which the first packet of a flow generation (a new session)
    sub_tx_deferred, // packets the port refused at once and that were sent on a later try
    sub_churned,     // flows moved to a new source port (churn)
    sub_tx_fin,      // of sub_tx: FIN+ACK closing a TCP flow's old generation when it churns
    sub_tx_probe,    // readiness probes (ARP) sent into the NAT's inside
    in_rx,           // frames received on the inside port
    in_rx_bursts,    // RX polls of the inside port that returned at least one frame
    in_ok,           // replies that passed every check
    in_established,  // first reply of a flow generation: a session set up both ways
    in_stale_gen,    // reply of an older generation (in flight when the flow churned): fine
    in_reordered,    // reply whose sequence number is not above the last one seen
    in_arp,          // ARP frames (answers to the readiness probe)
    in_icmp,         // ICMP from the NAT to a subscriber (3/1, 11/0, ...): not ours to check
    in_flood,        // flood frames the NAT delivered inside (an outside flood hitting a mapping)
    in_err_other,    // not IPv4, or IPv4 that is not ours: a mistranslation
    in_err_malformed,
    in_err_checksum,
    in_err_flow, // stamp names no flow we have, or a generation not sent yet
    in_err_addr, // destination is not the flow's subscriber, or source not its server
    in_err_port,
    in_err_ttl,
    in_err_mac,
    // server role (outside port)
    out_rx,
    out_rx_bursts, // RX polls of the outside port that returned at least one frame
    out_ok,
    out_arp,
    out_arp_replies,
    out_icmp,  // ICMP the NAT sent out (not ours to check)
    out_flood, // flood frames the NAT translated out (an inside SYN flood)
    out_err_other,
    out_err_malformed,
    out_err_checksum,
    out_err_flow,
    out_err_src,      // source address not in the pool (untranslated: not the subscriber)
    out_err_src_port, // source port outside the NAT's range (untranslated: not the flow's)
    out_err_dst,      // destination is not the flow's server
    out_err_ttl,
    out_err_mac,
    out_err_mapping_moved, // the flow's external endpoint changed within one generation
    out_pairing_violation, // subscribers seen on a second pool address (RFC 6888 REQ-2), once each
    out_reply_tx,
    out_reply_dropped, // reply not sent: our own TX buffer was full
    // floods (flood.hpp), counted by the role that sends them
    flood_tx,        // flood frames the port took: each one reaches the NAT
    flood_offers,    // bursts of flood frames offered to the port
    flood_ring_full, // ... that the port did not take in full: the NAT's RX ring was full
    // the main lcore's loop (written by it only, kept in the subscriber block)
    loop_busy_cycles, // TSC cycles of loop iterations that moved at least one packet
    loop_idle_cycles, // ... and of those that found nothing to do
    count_
};

inline constexpr std::size_t kStatCount = static_cast<std::size_t>(Stat::count_);

inline constexpr std::array<std::string_view, kStatCount> kStatNames = {
    "sub_tx",
    "sub_tx_new",
    "sub_tx_deferred",
    "sub_churned",
    "sub_tx_fin",
    "sub_tx_probe",
    "in_rx",
    "in_rx_bursts",
    "in_ok",
    "in_established",
    "in_stale_gen",
    "in_reordered",
    "in_arp",
    "in_icmp",
    "in_flood",
    "in_err_other",
    "in_err_malformed",
    "in_err_checksum",
    "in_err_flow",
    "in_err_addr",
    "in_err_port",
    "in_err_ttl",
    "in_err_mac",
    "out_rx",
    "out_rx_bursts",
    "out_ok",
    "out_arp",
    "out_arp_replies",
    "out_icmp",
    "out_flood",
    "out_err_other",
    "out_err_malformed",
    "out_err_checksum",
    "out_err_flow",
    "out_err_src",
    "out_err_src_port",
    "out_err_dst",
    "out_err_ttl",
    "out_err_mac",
    "out_err_mapping_moved",
    "out_pairing_violation",
    "out_reply_tx",
    "out_reply_dropped",
    "flood_tx",
    "flood_offers",
    "flood_ring_full",
    "loop_busy_cycles",
    "loop_idle_cycles",
};

// Which counters are mistranslations (must stay 0).
constexpr bool is_mistranslation(Stat s) {
    switch (s) {
    case Stat::in_err_other:
    case Stat::in_err_malformed:
    case Stat::in_err_checksum:
    case Stat::in_err_flow:
    case Stat::in_err_addr:
    case Stat::in_err_port:
    case Stat::in_err_ttl:
    case Stat::in_err_mac:
    case Stat::out_err_other:
    case Stat::out_err_malformed:
    case Stat::out_err_checksum:
    case Stat::out_err_flow:
    case Stat::out_err_src:
    case Stat::out_err_src_port:
    case Stat::out_err_dst:
    case Stat::out_err_ttl:
    case Stat::out_err_mac:
    case Stat::out_err_mapping_moved:
        return true;
    default:
        return false;
    }
}

// Log-linear latency histogram in TSC cycles: 16 buckets per power of two (about 6 %
// resolution), exact below 32 cycles. 1024 buckets reach 2^63.
class Histogram {
public:
    static constexpr std::size_t kBuckets = 1024;

    static std::size_t bucket_of(std::uint64_t v) {
        if (v < 16) {
            return static_cast<std::size_t>(v);
        }
        const int msb = 63 - __builtin_clzll(v);
        return static_cast<std::size_t>(msb - 3) * 16 + ((v >> (msb - 4)) & 15);
    }
    // Smallest value that falls in bucket b.
    static std::uint64_t lower_bound(std::size_t b) {
        if (b < 16) {
            return b;
        }
        const std::size_t e = b / 16;
        return (16 + std::uint64_t{b % 16}) << (e - 1);
    }

    void add(std::uint64_t cycles) {
        auto& slot = buckets_[bucket_of(cycles)];
        slot.store(slot.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t get(std::size_t b) const {
        return buckets_[b].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

class alignas(64) Stats {
public:
    // Only the owning role's lcore calls add().
    void add(Stat s, std::uint64_t n = 1) {
        auto& slot = values_[static_cast<std::size_t>(s)];
        slot.store(slot.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t get(Stat s) const {
        return values_[static_cast<std::size_t>(s)].load(std::memory_order_relaxed);
    }

    Histogram latency; // subscribers: round trip; servers: one way, subscriber to server

private:
    std::array<std::atomic<std::uint64_t>, kStatCount> values_{};
};

// CPU time from the kernel's schedstat (/proc/.../schedstat): time on a CPU and time runnable
// but waiting for one. On a shared host a busy-polling thread gets only part of its CPU, and
// that share, not the code, may set the rate; these say how much each side got.
struct CpuTimes {
    std::uint64_t self_run_ns = 0; // the calling thread (the main lcore)
    std::uint64_t self_wait_ns = 0;
    std::uint64_t peer_run_ns = 0; // the peer's polling threads (EAL rte-worker-N), summed
    std::uint64_t peer_wait_ns = 0;
    std::uint32_t peer_threads = 0;
};
// peer_pid 0: no peer figures.
CpuTimes read_cpu_times(int peer_pid);

// A copy of both roles' counters and histograms at one instant.
struct Snapshot {
    std::uint64_t tsc = 0;
    CpuTimes cpu;
    std::array<std::uint64_t, kStatCount> values{};
    std::array<std::uint64_t, Histogram::kBuckets> rtt{};
    std::array<std::uint64_t, Histogram::kBuckets> oneway{};

    [[nodiscard]] std::uint64_t operator[](Stat s) const {
        return values[static_cast<std::size_t>(s)];
    }
};

// Counters are summed over both blocks: each counter is written by one role only.
Snapshot take_snapshot(const Stats& subscribers, const Stats& servers, std::uint64_t tsc,
                       bool with_cpu, int peer_pid);

struct Percentiles {
    std::uint64_t count = 0;
    double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};
Percentiles percentiles(const std::array<std::uint64_t, Histogram::kBuckets>& end,
                        const std::array<std::uint64_t, Histogram::kBuckets>& start,
                        std::uint64_t tsc_hz);

} // namespace loadgen
