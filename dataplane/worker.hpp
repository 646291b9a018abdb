// A worker lcore: its RX/TX queue on each port, its Translator (tables, ports, counters) and
// its handoff rings. The loop is l3fwd's shape: receive a burst, classify, hand off what another
// worker owns, translate the rest in one batch, transmit in bursts.
//
// Ownership contract:
//   WorkerShared  written by main before launch, read-only while workers run, except
//                 next_hop_mac and published (written by the control thread only, release)
//                 and stop (main only).
//   Worker        written by its own lcore only; counters, gauges and the mailbox are atomics
//                 that the telemetry thread reads.
//   handoff[f][t] single producer (worker f), single consumer (worker t).
//   arp_events[w] single producer (worker w), single consumer (control thread).
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/fragments.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/translator.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace ephemera {

// A next-hop MAC packed in 64 bits (bit 48 = known), so workers read it with one atomic load.
inline constexpr std::uint64_t kMacKnown = 1ull << 48;
std::uint64_t pack_mac(const MacAddr& mac);
MacAddr unpack_mac(std::uint64_t packed);

// An ARP sender seen by a worker, for the control thread to learn from.
struct ArpEvent {
    std::uint32_t ip;
    std::uint8_t mac[6];
    std::uint16_t reserved;
};
static_assert(sizeof(ArpEvent) % 4 == 0);

struct WorkerShared {
    const Config* config = nullptr; // the config the workers started with
    // The newest config the control thread published (null: none since start). Workers
    // latch it between bursts; old ones are freed once every worker has been quiescent.
    std::atomic<const Config*> published{nullptr};
    rte_rcu_qsbr* qsbr = nullptr;
    Ownership ownership{1};
    std::uint16_t workers = 1;
    std::uint16_t inside_port = 0;
    std::uint16_t outside_port = 0;
    MacAddr inside_mac;
    MacAddr outside_mac;
    SipKey port_secret;
    std::uint64_t tsc_per_tick = 1;
    std::uint64_t start_tsc = 0;
    std::atomic<std::uint64_t> next_hop_mac{0};
    std::atomic<bool> stop{false};
    // handoff[from * workers + to]
    std::vector<rte_ring*> handoff;
    std::vector<rte_ring*> arp_events;
    rte_mempool* mbufs = nullptr;
};

// Telemetry's window into a worker: a request (what, and for which sessions) that the worker
// serves between bursts, a bounded step at a time, then marks served. One requester at a
// time (the caller holds App::mailbox_lock); results are read after `served` (acquire).
struct Mailbox {
    enum class Kind : std::uint8_t { mappings, ports, sessions, flush };
    static constexpr std::size_t kMaxMappings = 4096;
    static constexpr std::size_t kMaxSessions = 512;
    static constexpr std::uint32_t kWalkStep = 4096; // sessions looked at per housekeeping

    // The request: written by the requester before it bumps `requested` (release).
    Kind kind = Kind::mappings;
    SessionFilter filter;
    std::size_t limit = kMaxSessions;
    std::atomic<std::uint32_t> requested{0};
    std::atomic<std::uint32_t> served{0};

    // The answer: written by the worker before it stores `served` (release).
    std::vector<MappingView> mappings = std::vector<MappingView>(kMaxMappings);
    std::size_t mapping_count = 0;
    std::vector<SessionView> sessions; // capacity kMaxSessions, reserved at start
    std::uint64_t flushed = 0;
    // Ports: every pool address this worker knows (draining ones too), in index order.
    std::vector<Ipv4Addr> addresses;
    std::vector<std::uint8_t> active;
    std::vector<std::uint32_t> free_ports; // [pool index][protocol]
    std::uint32_t usable_ports = 0;        // per address and protocol

    // The worker's progress through a walk.
    bool walking = false;
    std::uint32_t cursor = 0;
};

// Live state the telemetry thread reads, refreshed by the worker every few dozen iterations.
struct Gauges {
    std::atomic<std::uint32_t> sessions{0};
    std::atomic<std::uint32_t> mappings{0};
    std::atomic<std::uint32_t> subscribers{0};
    std::atomic<std::uint64_t> ports_held{0};
    std::array<std::atomic<std::uint32_t>, kProtocolCount> sessions_by_proto{};
};

// The fragment table's bounds from the config, and how it gives a held piece back.
FragmentLimits fragment_limits(const Config& config);
void free_held_piece(void* mbuf, void* context);
inline constexpr std::uint32_t kFragmentExpiryBudget = 16; // datagrams per loop iteration

class alignas(64) Worker {
public:
    Worker(WorkerShared& shared, WorkerId id);

    // The lcore entry point's body; returns when shared.stop is set.
    void run();
    // One iteration of run()'s loop at time `now` (never earlier than the last call's): both
    // ports, the handoff rings, expiry, held SYNs and fragments, and every 64th call the
    // housekeeping. run() passes the TSC's time; the fuzzer (tests/fuzz) drives its own clock.
    void poll_once(Tick now);

    [[nodiscard]] WorkerId id() const { return id_; }
    [[nodiscard]] const CounterBlock& counters() const { return counters_; }
    [[nodiscard]] std::uint32_t live_sessions() const {
        return gauges_.sessions.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t live_mappings() const {
        return gauges_.mappings.load(std::memory_order_relaxed);
    }
    [[nodiscard]] const Gauges& gauges() const { return gauges_; }
    [[nodiscard]] const Translator& translator() const { return translator_; }
    Mailbox& mailbox() { return mailbox_; }

    static constexpr std::uint16_t kBurst = 32;

private:
    enum class Side : std::uint8_t { inside, outside };

    void poll_port(Side side);
    void poll_handoff();
    void process(Side side, rte_mbuf** pkts, std::uint16_t n, bool from_handoff);
    void handle_arp(Side side, rte_mbuf* m);
    void translate_batch(Side side);
    void send(Side side, rte_mbuf* m);
    void flush_handoff();
    void flush_tx();
    void housekeeping(Tick now);
    void serve_mailbox(Tick now);
    void send_arp_request();
    void answer_held_syns();

    // Fragments (worker_fragments.cpp): the pieces' way through the workers, and the MTU.
    bool take_fragment(Side side, rte_mbuf* m, const ParsedPacket& p, bool from_handoff);
    void later_piece(Side side, rte_mbuf* m, const ParsedPacket& p, bool may_hold);
    void translate_piece(Side side, rte_mbuf* m, const ParsedPacket& p,
                         const FragmentTranslation& t);
    std::size_t first_piece_done(Side side, const PacketRef& pkt, Verdict verdict);
    void send_held(Side side, std::size_t n);
    void hand_off(WorkerId to, rte_mbuf* m);
    void emit(Side side, rte_mbuf* m, const ParsedPacket& p);
    void split(Side side, rte_mbuf* m, const ParsedPacket& p, std::uint16_t mtu);

    WorkerShared& shared_;
    WorkerId id_;
    const Config* config_; // latched: the config this worker translates with
    CounterBlock counters_;
    Translator translator_;
    Tick now_ = 0;
    Tick last_arp_request_ = 0;
    bool arp_requested_once_ = false;
    std::uint64_t iterations_ = 0;
    Gauges gauges_;
    Mailbox mailbox_;
    FragmentTable fragments_;
    FragmentTable::Handle held_[FragmentsConfig::kMaxPerDatagram]; // pieces released to send
    FragmentTranslation held_translation_;                         // ... and their translation

    // Per-burst scratch.
    PacketRef batch_[kBurst * 2];
    rte_mbuf* batch_mbufs_[kBurst * 2];
    Verdict verdicts_[kBurst * 2];
    std::uint16_t batch_count_ = 0;
    std::vector<std::vector<rte_mbuf*>> handoff_out_; // per destination worker
    rte_mbuf* tx_[2][kBurst * 4];
    std::uint16_t tx_count_[2] = {0, 0};
};

} // namespace ephemera
