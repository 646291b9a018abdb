// The two roles of the load generator and the phases of a run.
//
//   Subscribers  inside port: sends S x F flows into the NAT, receives the replies that come
//                back out of it and checks each against the flow it claims to belong to.
//   Servers      outside port: receives what the NAT sent out, checks it was translated to a
//                pool address and a port in the range (or, for the floor, not touched), and
//                answers it as the server would: addresses and ports swapped, sent back in.
//
// With one lcore (the case on a 2-CPU host, where the NAT needs the other CPU) the main lcore
// runs both roles in one loop; with two, the servers get their own lcore. Every piece of state
// has one writer:
//   Shared::sub_flows, Stats subscribers    the subscriber role (main lcore)
//   Shared::srv_flows, anchors, Stats servers   the server role
//   Shared::phase, Shared::flooding          the controller (main lcore); servers only read them
//   the long-lived flows' reply times        the subscriber role (main lcore, as the controller)
// Each RX queue and each TX queue of a port is used by exactly one role.
#pragma once

#include "flood.hpp"
#include "flows.hpp"
#include "frame.hpp"
#include "stats.hpp"

#include "ephemera/ownership.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

struct rte_mbuf;
struct rte_mempool;

namespace loadgen {

enum class Steering : std::uint8_t {
    rss,   // queue = hash of the 5-tuple, as a NIC's RSS would spread them
    owner, // queue = the NAT worker that owns the flow (subscriber hash inside, port bucket
           // outside): what rte_flow steering gives ephemera on a real NIC
};

enum class Phase : std::uint8_t { wait_ready, populate, warmup, measure, latency, drain, done };

constexpr const char* phase_name(Phase p) {
    switch (p) {
    case Phase::wait_ready:
        return "wait";
    case Phase::populate:
        return "populate";
    case Phase::warmup:
        return "warmup";
    case Phase::measure:
        return "measure";
    case Phase::latency:
        return "latency";
    case Phase::drain:
        return "drain";
    case Phase::done:
        break;
    }
    return "done";
}

// Fixed for the whole run.
struct RunConfig {
    FlowModel model{1, 1, 1, ProtoMix::udp};
    std::uint16_t frame_len = kMinFrameLen; // without FCS
    bool translated = true;                 // false: --expect-untranslated (the floor)
    std::uint32_t pool_lo = 0, pool_hi = 0; // inclusive, host order
    std::uint16_t port_lo = 1, port_hi = 65535;
    std::uint32_t next_hop_ip = 0; // answered for ARP on the outside
    std::uint32_t gateway_ip = 0;  // the NAT's inside address, asked for by the readiness probe
    std::uint32_t probe_ip = 0;    // the probe's sender address
    Mac lg_in_mac, lg_out_mac;     // our ports
    Mac dut_in_mac, dut_out_mac;   // the NAT's ports: frames go to dut_in_mac
    std::uint16_t in_port = 0, out_port = 1, queues = 1;
    Steering steering = Steering::rss;
    ephemera::Ownership ownership{1};
    double rate_pps = 0; // established traffic, subscriber side; 0 = as fast as accepted
    // Seconds of a rate limit the token bucket may save up, so that a generator that lost its
    // CPU for a while catches up and keeps the average rate (at least four bursts).
    double catch_up_s = 0;
    double new_flow_rate = 0; // populate phase; 0 = as fast as accepted
    double churn_rate = 0;    // flows per second given a new source port during measure
    // Flows [0, long_lived) never churn: the established flows a soak watches. Each one's gap
    // between replies is tracked; a gap above gap_limit_s, or no reply in the last gap_limit_s
    // of the measure phase, is reported.
    std::uint32_t long_lived = 0;
    double gap_limit_s = 60;
    FloodConfig flood;
    // At most this many packets out and not yet back (0: no limit). The generator then runs at
    // the pace of the replies instead of overrunning the rings: what a full ring would drop
    // is never sent. A full window that sees no reply for 50 ms is written off as lost.
    std::uint32_t window = 1024;
    double latency_load = 0; // latency phase rate as a fraction of the measured reply rate
    double warmup_s = 1, measure_s = 10, latency_s = 3, drain_s = 0.5;
    double ready_timeout_s = 120;   // the NAT may take a while to build 16 M-entry tables
    double populate_timeout_s = 10; // after the last new flow is sent
    bool populate = true;
    bool progress = true;
    std::string peer_pid_file; // holds the peer's pid, for its CPU time (read once it answers)
    std::string stats_jsonl;   // one JSON line of every counter each second, if set
};

struct Shared {
    explicit Shared(const RunConfig& c);
    const RunConfig& cfg;
    std::vector<SubscriberFlow> sub_flows;
    std::vector<ServerFlow> srv_flows;
    std::vector<std::uint32_t> anchors; // per subscriber: the pool address its flows use
    Stats sub_stats;
    Stats srv_stats;
    std::atomic<Phase> phase{Phase::wait_ready};
    std::atomic<bool> probe_seen_outside{false}; // the floor forwarded our ARP probe
    std::atomic<bool> flooding{false};           // the flood's window is open
    rte_mempool* mbufs = nullptr;
    std::uint64_t tsc_hz = 1;
};

// A port's TX queue with a buffer: packets the port does not take now are kept for the next
// flush, so backpressure delays traffic instead of losing it.
struct TxBuffer {
    static constexpr std::uint16_t kCapacity = 512;
    rte_mbuf* pkts[kCapacity];
    std::uint16_t count = 0;
    // Returns how many the port took.
    std::uint16_t flush(std::uint16_t port, std::uint16_t queue);
};

inline constexpr std::uint16_t kBurst = 32;
inline constexpr std::uint16_t kMaxQueues = 16;

// The long-lived flows at one instant (subscriber role's view).
struct LongLivedSummary {
    std::uint32_t flows = 0;
    std::uint32_t established = 0; // a reply of theirs came back at least once
    std::uint32_t silent = 0;      // established, but no reply in the last gap_limit_s
    std::uint32_t over_gap = 0;    // a gap between two replies was longer than gap_limit_s
    double max_gap_s = 0;          // the longest gap between two replies of one flow
};

class Subscribers {
public:
    explicit Subscribers(Shared& shared);

    // Returns the packets moved (received, or taken by the port).
    std::uint32_t poll(std::uint64_t now);
    void set_rate(double pps, std::uint64_t now);
    void set_churn(double per_second, std::uint64_t now);
    void start_populate(std::uint64_t now);
    [[nodiscard]] const FloodSender& flood() const { return flood_; }
    // Walks the long-lived flows' records: only on the subscriber role's lcore.
    [[nodiscard]] LongLivedSummary long_lived(std::uint64_t now) const;
    [[nodiscard]] bool all_new_flows_sent() const { return populated_ == model_.flows(); }
    [[nodiscard]] std::uint64_t first_tx_tsc() const { return first_tx_tsc_; }
    [[nodiscard]] std::uint64_t last_new_tx_tsc() const { return last_new_tx_tsc_; }
    [[nodiscard]] std::uint64_t last_established_tsc() const { return last_established_tsc_; }
    [[nodiscard]] bool ready() const { return arp_answered_; }
    void send_probe();

private:
    // A token bucket over TSC cycles; rate 0 means unlimited.
    struct Bucket {
        double per_cycle = 0;
        double tokens = 0;
        double cap = 0;
        std::uint64_t last = 0;
        void set(double per_second, std::uint64_t tsc_hz, std::uint64_t now, double burst);
        std::uint32_t take(std::uint64_t now, std::uint32_t want);
    };

    std::uint32_t receive(std::uint64_t now);
    void check_reply(rte_mbuf* m, RxStatus status, const RxView& v, std::uint64_t now);
    void generate(std::uint64_t now);
    void churn(std::uint64_t now);
    void close_generation(std::uint32_t flow, SubscriberFlow& r, std::uint64_t now);
    std::uint16_t queue_for(const Tuple& t) const;

    Shared& shared_;
    const RunConfig& cfg_;
    const FlowModel& model_;
    Stats& stats_;
    FrameBuilder frames_;
    FlowWalk walk_;
    FlowWalk churn_walk_; // over the flows that are not long-lived
    Bucket rate_;
    Bucket churn_;
    std::uint64_t stall_cycles_;
    std::uint32_t populated_ = 0; // new flows sent in the populate phase
    std::uint64_t first_tx_tsc_ = 0;
    std::uint64_t last_new_tx_tsc_ = 0;
    std::uint64_t last_established_tsc_ = 0;
    // The window: packets built, frames received back, and packets written off as lost.
    std::int64_t built_ = 0;
    std::int64_t returned_ = 0;
    std::int64_t written_off_ = 0;
    std::uint64_t last_return_tsc_ = 0;
    bool arp_answered_ = false;
    TxBuffer tx_[kMaxQueues];
    // Per long-lived flow: TSC of its last reply (0: none yet), and its longest gap so far.
    std::vector<std::uint64_t> last_reply_;
    std::vector<std::uint64_t> max_gap_;
    FloodSender flood_;
};

class Servers {
public:
    explicit Servers(Shared& shared);
    // Returns the packets moved (received, or taken by the port).
    std::uint32_t poll(std::uint64_t now);
    // Entry point for a dedicated lcore: polls until the run is done.
    static int lcore_main(void* self);
    [[nodiscard]] const FloodSender& flood() const { return flood_; }

private:
    void handle(rte_mbuf* m, RxStatus status, const RxView& v, std::uint16_t rx_queue,
                std::uint64_t now);
    bool check(const RxView& v, std::uint8_t* frame);
    std::uint16_t queue_for(const RxView& v) const;

    Shared& shared_;
    const RunConfig& cfg_;
    const FlowModel& model_;
    Stats& stats_;
    TxBuffer tx_[kMaxQueues];
    std::vector<std::uint8_t> split_; // per subscriber: seen on a second pool address already
    FloodSender flood_;
};

} // namespace loadgen
