// The HA sync thread (docs/ha.md): the control side's end of the pair, never on a worker lcore.
//
// On the active it drains every worker's sync ring (session_sync.hpp) and streams the records
// to the standby over one TCP connection (sync_protocol.hpp), numbered, with heartbeats; it
// starts a bulk round on the workers whenever a standby pairs, and tells the standby when
// that round is complete (then it is in sync). On the standby it reads the stream, checks the
// sequence, hands each record to the ring of the worker that owns the session, acknowledges,
// and takes over when the active falls silent for ha.dead_interval or closes the link: the
// workers start forwarding and announce the addresses by gratuitous ARP.
//
// Roles at start: a box configured active first asks its peer; if the peer is active already
// (it took over while this box was away) this box becomes its standby, so a returning box
// never takes the traffic back by surprise. A box configured standby waits for an active; if
// none answers within three dead intervals it takes over.
#pragma once

#include "../logging/socket_fd.hpp"
#include "sync_link.hpp"

#include "../../dataplane/worker.hpp"

#include "ephemera/config.hpp"
#include "ephemera/session_sync.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ephemera::ha {

// What `ephemeractl show ha` and /ephemera/ha show.
struct HaReport {
    std::string role; // "active" or "standby"
    std::string peer;
    bool peer_connected = false; // paired: hello exchanged and the terms agree
    bool in_sync = false;        // ... and the bulk round since pairing is complete
    std::string refused;         // why the last pairing was refused, if it was
    std::string last_error;      // why the last connection ended
    std::uint64_t records_sent = 0;
    std::uint64_t records_received = 0;
    std::uint64_t records_discarded = 0; // drained with no standby to send them to
    std::uint64_t sequence_gaps = 0;
    std::uint64_t lag_records = 0; // sent and not yet acknowledged (active)
    std::uint64_t sync_bytes_sent = 0;
    std::uint64_t sync_bytes_received = 0;
    std::uint64_t pairings = 0;
    std::uint64_t bulk_rounds = 0;
    std::uint64_t failovers = 0;
    std::uint64_t split_brains = 0; // times both boxes were found active
    std::uint64_t last_failover_unix_ms = 0;
    std::string last_failover_reason;
    std::uint64_t last_heard_ms_ago = 0;
};

class SyncThread {
public:
    // `out`: each worker's sync ring (workers produce), `in`: each worker's apply ring (this
    // thread produces). `terms`: pairing_terms() of this box.
    SyncThread(const HaConfig& config, WorkerShared& shared, std::vector<rte_ring*> out,
               std::vector<rte_ring*> in, std::string terms);
    ~SyncThread();
    SyncThread(const SyncThread&) = delete;
    SyncThread& operator=(const SyncThread&) = delete;

    // Binds the listen address (throws, naming it, when it cannot), decides the starting
    // role and sets the workers' mode; call before the workers are launched.
    HaRole prepare();
    void start();
    void stop();

    [[nodiscard]] HaReport report() const;

private:
    using Clock = std::chrono::steady_clock;

    void run();
    void accept_incoming();
    void active_pass(Clock::time_point now);
    void standby_pass(Clock::time_point now);
    // Reads what came on the link and hands each message to `on`; false when the link closed
    // or broke (a handler may also have dropped it).
    bool read_link(Clock::time_point now,
                   void (SyncThread::*on)(const Message&, Clock::time_point));
    void on_active_message(const Message& m, Clock::time_point now);
    void on_standby_message(const Message& m, Clock::time_point now);
    void drain_workers();
    void deliver_pending();
    void pair_standby();
    void drop_link(const std::string& why);
    void take_over(const std::string& why);
    void set_role(HaRole role);
    [[nodiscard]] Hello hello() const;
    // Each true when this box stepped down to standby.
    bool probe_peer(Clock::time_point now);
    bool resolve_two_actives(const Hello& peer);
    void answer_callers(Clock::time_point now);
    void confirm_role();
    // Asks the peer who it is, at once: its hello, or nothing when it does not answer within
    // `connect` and then `answer`. Blocks the sync thread that long (start-up, a freeze).
    std::optional<Hello> ask_peer(const Hello& mine, std::chrono::milliseconds connect,
                                  std::chrono::milliseconds answer);

    HaConfig config_;
    WorkerShared& shared_;
    std::vector<rte_ring*> out_;
    std::vector<rte_ring*> in_;
    std::string terms_;
    std::chrono::milliseconds dead_;
    std::chrono::milliseconds heartbeat_every_;

    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::optional<logging::SocketFd> listener_;
    std::optional<SyncLink> link_;
    bool paired_ = false;
    HaRole role_ = HaRole::none;
    std::uint64_t active_since_ms_ = 0;
    std::optional<SyncLink> probe_; // an active asking whether its peer is active too
    struct Caller {
        SyncLink link;
        Clock::time_point deadline;
    };
    std::vector<Caller> incoming_; // connections to an active whose hello has not come yet
    Clock::time_point next_probe_{};
    Clock::time_point probe_deadline_{};
    bool resetting_ = false;        // stepped down: waiting for the workers to empty
    std::uint64_t reset_until_ = 0; // ... until ha_resets_done reaches this
    Clock::time_point last_heard_{};
    Clock::time_point last_heartbeat_{};
    Clock::time_point last_ack_{};
    Clock::time_point next_connect_{};
    Clock::time_point waiting_since_{}; // standby with no active paired
    bool ever_paired_ = false;
    // Active: this connection's sequence, and the bulk round it asked for.
    std::uint64_t next_sequence_ = 0;
    std::uint64_t acked_ = 0;
    std::uint32_t generation_ = 0;
    std::vector<bool> bulk_done_;
    // Standby: the next sequence expected, and records waiting for room in a worker's ring.
    std::uint64_t expected_ = 0;
    std::uint64_t last_acked_sent_ = 0;
    std::vector<std::deque<SyncRecord>> pending_;
    std::size_t pending_total_ = 0;
    std::vector<SyncRecord> scratch_;
    std::uint64_t bytes_sent_before_ = 0; // by connections that have ended
    std::uint64_t bytes_received_before_ = 0;

    mutable std::mutex report_lock_;
    HaReport report_; // guarded; counters kept here, copied out by report()
};

} // namespace ephemera::ha
