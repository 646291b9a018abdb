// A worker lcore: its RX/TX queue on each port, its Translator (tables, ports, counters) and
// its handoff rings. One straight line per loop iteration, a stage per file:
//
//   rx burst ─► classify (classify.cpp) ─┬─► handoff ring to the owner (handoff.cpp)
//                                        ├─► local answers: ARP, pings to the gateway
//                                        ├─► later fragments, set aside for the pieces pass
//                                        └─► this worker's batch, by direction
//   batch ─► translate (translate_stage.cpp: the Translator's fast and slow paths)
//         ─► verdicts: forward / reply ─► tx (tx.cpp: MTU split, burst per port)
//                      hairpin ─► second pass: out2in over the hairpin batch (never a
//                                 recursive call; a hairpinned ping's answer may hairpin once
//                                 more, so at most two rounds)
//   later fragments ─► pieces pass (worker_fragments.cpp), once their first pieces are decided
//
// Ownership contract:
//   WorkerShared  written by main before launch, read-only while workers run, except
//                 next_hop_mac and plans (written by the control thread only)
//                 and stop (main only).
//   Worker        written by its own lcore only; counters, gauges and the mailbox are atomics
//                 that the telemetry thread reads.
//   handoff[f][t] single producer (worker f), single consumer (worker t).
//   arp_events[w] single producer (worker w), single consumer (control thread).
#pragma once

#include "mailbox.hpp"
#include "pause_meter.hpp"
#include "rcu_slot.hpp"

#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/direction.hpp"
#include "ephemera/fragments.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/translator.hpp"
#include "ephemera/worker_plan.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

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
    explicit WorkerShared(WorkerId worker_count = 1) : plans(worker_count) {}

    const Config* config = nullptr; // the config the workers started with
    // Each worker's newest plan, compiled by the control thread (worker_plan.hpp). A worker
    // latches its own between bursts; old ones are freed once every worker has been
    // quiescent since.
    RcuSlots<WorkerPlan> plans;
    rte_rcu_qsbr* qsbr = nullptr; // the workers register here
    Ownership ownership{1};
    std::uint16_t workers = 1;
    std::uint16_t inside_port = 0;
    std::uint16_t outside_port = 0;
    MacAddr inside_mac;
    MacAddr outside_mac;
    // What each port computes on transmit (Ports, chosen at start): a translation leaving by
    // it leaves these checksums to it.
    TxChecksums inside_tx_checksums;
    TxChecksums outside_tx_checksums;
    SipKey port_secret;
    std::uint64_t tsc_per_tick = 1;
    std::uint64_t start_tsc = 0;
    // The wall clock NAT event records carry, kept from the TSC: Unix ms at start_tsc.
    std::uint64_t tsc_per_ms = 1;
    std::uint64_t start_unix_ms = 0;
    std::atomic<std::uint64_t> next_hop_mac{0};
    std::atomic<bool> stop{false};
    // handoff[from * workers + to]
    std::vector<rte_ring*> handoff;
    std::vector<rte_ring*> arp_events;
    std::vector<rte_ring*> event_rings; // per worker: NAT events to the logging thread
    // HA (docs/ha.md), empty when neither ha.role nor ha.handover is set. sync_rings[w]: worker
    // w's records for the sync (or hand-over) thread; apply_rings[w]: the peer's records for
    // worker w (a standby, or a box taking a drained box's sessions).
    std::vector<rte_ring*> sync_rings;
    std::vector<rte_ring*> apply_rings;
    // Written by the sync thread, read by the workers between bursts.
    std::atomic<bool> ha_standby{false};   // forward nothing, answer nothing, apply the stream
    std::atomic<bool> ha_streaming{false}; // a standby is paired: make sync records
    std::atomic<std::uint32_t> ha_bulk_generation{0}; // changed: send every session again
    // Changed: this box stepped down; each worker ends every session, then adds 1 to done.
    std::atomic<std::uint32_t> ha_reset_generation{0};
    std::atomic<std::uint64_t> ha_resets_done{0};
    // A worker whose loop stood still longer than this (the process was frozen: SIGSTOP, a
    // hypervisor pause) may be an active the standby has replaced: it forwards nothing until
    // the sync thread has asked the peer (confirmations catch up with requests). 0: off.
    std::uint64_t ha_freeze_cycles = 0;
    std::atomic<std::uint32_t> ha_confirm_requests{0};
    std::atomic<std::uint32_t> ha_confirmed{0};
    Tick ha_refresh_interval = 10 * kTicksPerSecond;
    // Scale-out hand-over (control/ha/handover.hpp), written by its thread. While a box hands
    // its sessions to a peer it forwards and answers nothing and streams every session once.
    std::atomic<bool> ha_handing_over{false};
    // Changed: a drained box's sessions are in; worker 0 announces the addresses taken over.
    std::atomic<std::uint32_t> ha_announce_generation{0};
    rte_mempool* mbufs = nullptr;
};

// Live state the telemetry thread reads, refreshed by the worker every few dozen iterations.
struct Gauges {
    std::atomic<std::uint32_t> sessions{0};
    std::atomic<std::uint32_t> mappings{0};
    std::atomic<std::uint32_t> subscribers{0};
    std::atomic<std::uint64_t> ports_held{0};
    std::atomic<std::uint32_t> ports_per_address{0}; // this worker's usable ports
    std::array<std::atomic<std::uint32_t>, kProtocolCount> sessions_by_proto{};
    // The longest loop iterations since the window was last reset (a config change must never
    // show here); kept as they happen, not refreshed with the rest.
    PauseMeter pauses;
};

// The fragment table's bounds from the config, and how it gives a held piece back.
FragmentLimits fragment_limits(const Config& config);
void free_held_piece(void* mbuf, void* context);
inline constexpr std::uint32_t kFragmentExpiryBudget = 16; // datagrams per loop iteration

class alignas(64) Worker {
public:
    static constexpr std::uint16_t kBurst = 32;

    Worker(WorkerShared& shared, WorkerId id);

    // The lcore entry point's body; returns when shared.stop is set.
    void run();
    // One iteration of run()'s loop at time `now` (ticks since start): tests and fuzzing drive
    // a worker with it, in one thread.
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
    // Only while the worker does not run (before launch, after stop): the translator is the
    // lcore's own. Other threads read gauges(), counters() and the mailbox.
    [[nodiscard]] const Translator& translator() const { return translator_; }
    Translator& translator() { return translator_; } // the same rule: restoring sessions
    Mailbox& mailbox() { return mailbox_; }
    // Other threads ask for a new pause window through it (the worker writes the rest).
    PauseMeter& pause_meter() { return gauges_.pauses; }

private:
    // Packets this worker translates, one direction, with what the translator made of them.
    struct Batch {
        static constexpr std::uint16_t kSize = kBurst * 2;
        PacketRef refs[kSize];
        rte_mbuf* mbufs[kSize];
        Verdict verdicts[kSize];
        std::uint16_t count = 0;
    };
    // A later fragment, set aside until the first pieces of its burst are decided.
    struct Piece {
        rte_mbuf* mbuf;
        ParsedPacket parsed;
        Direction direction;
        bool may_hold;
    };
    enum class FragmentRoute : std::uint8_t { as_packet, taken, later_piece };

    // ---- classify.cpp ----
    void poll_port(Direction d);
    // Where a burst comes from: a port, another worker's handoff ring, or this worker's own
    // hairpins (translated already; they re-enter as outside packets).
    enum class Arrival : std::uint8_t { port, handoff, hairpin };
    void classify(Direction d, rte_mbuf** pkts, std::uint16_t n, Arrival arrival);
    void handle_arp(Direction d, rte_mbuf* m);
    // ---- translate_stage.cpp ----
    void translate(Direction d); // the batch, then its second pass and pieces pass
    void translate_batch(Direction d);
    void translate_hairpins();
    void enqueue(Direction d, rte_mbuf* m, const ParsedPacket& parsed);
    // ---- handoff.cpp ----
    void poll_handoff();
    void hand_off(WorkerId to, rte_mbuf* m);
    void flush_handoff();
    // ---- tx.cpp: everything leaves through here ----
    void send(Direction out, rte_mbuf* m); // as it is
    // Split for the MTU; `left`: checksums the rewrite left to the port (tx_offload.hpp).
    void emit(Direction out, rte_mbuf* m, const ParsedPacket& p, TxChecksums left = {});
    void send_reply(Direction in, rte_mbuf* m); // back out of the port it came in on
    void split(Direction out, rte_mbuf* m, const ParsedPacket& p, std::uint16_t mtu);
    void flush_tx();
    void send_arp_request();
    // Asks the inside segment where a static mapping's host is (inside_neighbors.hpp).
    void send_inside_arp_request(Ipv4Addr host);
    void answer_held_syns();
    // ---- worker_fragments.cpp ----
    FragmentRoute route_fragment(Direction d, rte_mbuf* m, const ParsedPacket& p,
                                 bool from_handoff);
    void pieces_pass();
    void later_piece(Direction d, rte_mbuf* m, const ParsedPacket& p, bool may_hold);
    void translate_piece(Direction d, rte_mbuf* m, const ParsedPacket& p,
                         const FragmentTranslation& t);
    std::size_t first_piece_done(Direction d, const PacketRef& pkt, Verdict verdict);
    void send_held(Direction d, std::size_t n);
    // ---- worker.cpp ----
    void housekeeping(Tick now);
    void refresh_gauges();
    void serve_mailbox(Tick now);
    // ---- worker_ha.cpp ----
    // Between bursts: the role the sync thread set, the stream's state, a refresh round's step.
    void follow_ha(Tick now);
    // The standby's loop body: every received frame dropped, the active's records applied.
    void poll_standby();
    void learn_next_hop(rte_mbuf* m);
    // Called with the time the loop stood still; holds when it was a freeze (see
    // WorkerShared::ha_freeze_cycles).
    void check_freeze(std::uint64_t stood_cycles);
    void apply_sync_records();
    // Gratuitous ARP for every address this box answers for: the gateway inside, the pool
    // outside, and what it took over from drained boxes. Sent at takeover (or when a drained
    // box's sessions are in) and twice more, a second apart.
    void announce_addresses();
    // ---- worker_moves.cpp ----
    // A frame from a subscriber moved to a peer box: dropped while its sessions are on their
    // way, passed to the peer's inside MAC after. False: not a moved subscriber's.
    bool pass_moved_subscriber(rte_mbuf* m, Ipv4Addr source);
    // Between bursts: what the hand-over streams, the sessions of newly moved subscribers
    // ended here, held ports let go.
    void follow_moves(Tick now);
    // Forwarding nothing: a standby, a frozen active waiting for word, a box handing over.
    [[nodiscard]] bool silent() const { return standby_ || frozen_hold_ || handing_over_; }

    [[nodiscard]] std::uint16_t port_of(Direction arriving) const {
        return arriving == Direction::in2out ? shared_.inside_port : shared_.outside_port;
    }
    [[nodiscard]] const Config& config() const { return *plan_->config; }

    WorkerShared& shared_;
    WorkerId id_;
    const WorkerPlan* plan_; // latched: the plan this worker translates with
    CounterBlock counters_;
    Translator translator_;
    Tick now_ = 0;
    Tick last_arp_request_ = 0;
    bool arp_requested_once_ = false;
    bool standby_ = false;
    bool frozen_hold_ = false;        // froze while active: waits for the sync thread's word
    bool handing_over_ = false;       // WorkerShared::ha_handing_over, taken up
    std::uint32_t announce_seen_ = 0; // ha_announce_generation taken up
    bool has_moves_ = false;          // the latched config moves subscribers (classify)
    std::uint32_t moves_done_ = 0;    // bit i: Config::moved_subscribers[i]'s sessions ended
    std::uint32_t move_cursor_ = 0;   // ... the walk of the next one
    std::uint32_t hold_ticket_ = 0;   // ... the ha_confirm_requests it made
    std::uint32_t reset_seen_ = 0;    // ha_reset_generation taken up
    bool clearing_ = false;
    std::uint32_t clear_cursor_ = 0;
    std::uint8_t announcements_left_ = 0;
    Tick next_announcement_ = 0;
    std::uint64_t iterations_ = 0;
    std::uint64_t iteration_start_ = 0; // TSC
    std::uint64_t last_top_ = 0;        // TSC at the top of the last iteration (freezes)
    std::uint64_t take_up_cycles_ = 0;  // taking up a plan, in this iteration (pause meter)
    Gauges gauges_;
    Mailbox mailbox_;
    FragmentTable fragments_;
    FragmentTable::Handle held_[FragmentsConfig::kMaxPerDatagram]; // pieces released to send
    FragmentTranslation held_translation_;                         // ... and their translation

    // Per-iteration scratch.
    Batch batch_[2]; // [Direction]: packets this worker translates
    static constexpr std::size_t kHairpinCapacity = Batch::kSize * 2;
    rte_mbuf* hairpins_[kHairpinCapacity]; // outside packets made by translating: second pass
    std::uint16_t hairpin_count_ = 0;
    Piece pieces_[Batch::kSize]; // later fragments, for the pieces pass
    std::uint16_t piece_count_ = 0;
    std::vector<std::vector<rte_mbuf*>> handoff_out_; // per destination worker
    rte_mbuf* tx_[2][kBurst * 4];                     // [Direction of the packets sent]
    std::uint16_t tx_count_[2] = {0, 0};
};

} // namespace ephemera
