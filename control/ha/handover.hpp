// Draining a scale-out box into another with its sessions (docs/ha.md, "Draining a box"): the
// control side's hand-over, one thread per box, never on a worker lcore.
//
// `ephemeractl drain --to PEER` on box B: B's thread connects to the peer's ha.handover
// address and offers its pool and inside gateway with the terms both must share (port range,
// reservations, mode, worker count: the same worker owns the same port and subscriber on
// both). The peer A takes B's pool addresses in quietly (it carries sessions there, makes no
// mapping there, answers no ARP for them yet) and accepts. B's workers then fall silent (they
// forward and answer nothing) and stream every session once, through the sync rings; A hands
// each record to the worker that owns its subscriber, which rebuilds the session on its own
// external address:port (Translator::restore). When every record is applied or refused, A
// answers ARP for B's pool addresses and inside gateway, announces them by gratuitous ARP,
// and tells B how many came in; B empties its tables without logging and stays silent. The
// routers' next hops (B's gateway inside, B's pool addresses outside) now lead to A: each
// subscriber's connections go on with the same public address:port.
//
// If anything fails before A's word (refused, link lost, no answer in time), B forwards again
// with every session it had; what A applied stays on addresses it does not answer for.
#pragma once

#include "../../dataplane/worker.hpp"
#include "../logging/socket_fd.hpp"
#include "../runtime.hpp"
#include "sync_link.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ephemera::ha {

// What `ephemeractl show ha` and /ephemera/ha show of the last hand-over.
struct HandoverReport {
    std::string state = "idle"; // idle, offering, sending, receiving, done, failed
    std::string direction;      // "out": this box drained; "in": it took a drained box's
    std::string peer;
    std::string error;   // why the last one failed
    std::string adopted; // "in": the pool addresses and gateway taken over
    std::uint64_t records_sent = 0;
    std::uint64_t records_received = 0;
    std::uint64_t applied = 0; // by the receiving box's workers
    std::uint64_t refused = 0;
    std::uint64_t silent_ms = 0; // "out": from falling silent to the peer's word
    std::uint64_t finished_unix_ms = 0;
    std::string subscribers; // a migration's subscriber prefix; empty for a drain
    std::string hook;        // what came of ha.migrate_hook after the last migration
    std::uint64_t handovers_in = 0;
    std::uint64_t handovers_out = 0;
    std::uint64_t migrations_out = 0;
};

// What the thread needs of the rest of the process.
struct HandoverHooks {
    // Runtime::adopt: a drained box's pool (quiet, or answered with its gateway).
    std::function<ChangeResult(const std::vector<Ipv4Addr>&, bool, std::optional<Ipv4Addr>)> adopt;
    // Runtime::move_subscribers: subscribers held, moved, or (remove) back after a failure.
    std::function<ChangeResult(const Config::SubscriberMove&, bool)> move;
    // Records the workers applied and refused so far (their counters, summed).
    std::function<std::pair<std::uint64_t, std::uint64_t>()> applied_refused;
    // The running config: what this box offers, and what an offer must not overlap.
    std::function<Config()> current;
};

class Handover {
public:
    // `out`: each worker's sync ring (workers produce), `in`: each worker's apply ring.
    Handover(const HaConfig& config, WorkerShared& shared, std::vector<rte_ring*> out,
             std::vector<rte_ring*> in, HandoverHooks hooks);
    ~Handover();
    Handover(const Handover&) = delete;
    Handover& operator=(const Handover&) = delete;

    // Binds ha.handover (throws, naming it, when it cannot); call before the workers start.
    void prepare();
    void start();
    void stop();

    // Starts draining this box into the peer listening at address:port; refused, saying why,
    // while a hand-over is under way or once this box has handed its sessions over.
    ChangeResult drain_to(Ipv4Addr address, std::uint16_t port);
    // Starts moving the subscribers of prefix/length, with their sessions, to the peer
    // (docs/ha.md "Moving live subscribers"); refused as drain_to is, and for a prefix that
    // overlaps one moved already.
    ChangeResult migrate_to(Ipv4Addr prefix, std::uint8_t length, Ipv4Addr address,
                            std::uint16_t port);

    [[nodiscard]] HandoverReport report() const;

private:
    using Clock = std::chrono::steady_clock;
    enum class Out : std::uint8_t { none, offered, streaming, waiting };
    static constexpr std::size_t kMaxMoves = 32; // moves a worker keeps track of
    enum class In : std::uint8_t { none, hello, records };

    void run();
    void accept_incoming(Clock::time_point now);
    // The draining box.
    void out_pass(Clock::time_point now);
    void drain_rings();
    void out_failed(const std::string& why);
    void drained(const HandoverDone& d, Clock::time_point now);
    void moved_over(const HandoverDone& d, Clock::time_point now);
    void finished(const HandoverDone& d, Clock::time_point now, const char* after);
    // The receiving box.
    void in_pass(Clock::time_point now);
    void on_offer(const Hello& offer, Clock::time_point now);
    void on_records(const Records& records);
    void deliver_pending();
    void in_failed(const std::string& why);
    [[nodiscard]] std::string terms() const;

    HaConfig config_;
    WorkerShared& shared_;
    std::vector<rte_ring*> out_rings_;
    std::vector<rte_ring*> in_rings_;
    HandoverHooks hooks_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::optional<logging::SocketFd> listener_;

    // Draining this box, or moving some of its subscribers (asked for under report_lock_,
    // taken up by the thread).
    struct Request {
        Ipv4Addr address;
        std::uint16_t port = 0;
        std::optional<Config::SubscriberMove> move; // none: a drain
    };
    ChangeResult ask(Request request);
    std::optional<Request> asked_;
    std::optional<Config::SubscriberMove> moving_; // the move of the hand-over under way
    bool drained_ = false;                         // guarded by report_lock_
    std::string peer_terms_;                       // what the receiver said of itself
    Out out_ = Out::none;
    std::optional<SyncLink> out_link_;
    Clock::time_point out_deadline_{};
    Clock::time_point silent_since_{};
    std::uint32_t generation_ = 0;
    std::vector<bool> bulk_done_;
    bool bulk_sent_ = false;
    std::uint64_t next_sequence_ = 0;
    std::vector<SyncRecord> scratch_;

    // Taking a drained box's sessions in.
    In in_ = In::none;
    std::optional<SyncLink> in_link_;
    Clock::time_point in_deadline_{};
    std::vector<Ipv4Addr> offered_pool_;
    Ipv4Addr offered_gateway_;
    std::string incoming_subscribers_; // a migration's prefix; empty: a drain
    std::uint64_t expected_ = 0;       // records received
    std::uint64_t undecodable_ = 0;    // ... of which malformed
    bool bulk_received_ = false;
    std::pair<std::uint64_t, std::uint64_t> counted_before_{}; // applied, refused at the start
    std::vector<std::deque<SyncRecord>> pending_;
    std::size_t pending_total_ = 0;

    mutable std::mutex report_lock_;
    HandoverReport report_; // guarded
};

} // namespace ephemera::ha
