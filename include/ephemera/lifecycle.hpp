// Session lifecycle: when sessions are due (per protocol and TCP state), expiring them and what
// that frees (the mapping with its last session, the mapping's port into hold-down, the
// subscriber with its last mapping), the walks a reconfiguration asks for, and the permission
// table of address-dependent filtering. One per worker, over that worker's tables and ports;
// every call is bounded, so expiry never delays a burst by more than a budget of work.
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/nat_events.hpp"
#include "ephemera/nat_table.hpp"
#include "ephemera/policy.hpp"
#include "ephemera/port_allocator.hpp"
#include "ephemera/port_forwards.hpp"
#include "ephemera/session_sync.hpp"
#include "ephemera/timer_wheel.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ephemera {

struct WorkerPlan;

// A live session as telemetry and tests see it.
struct SessionView {
    Protocol proto;
    Ipv4Addr inside;
    std::uint16_t inside_port;
    Ipv4Addr external;
    std::uint16_t external_port;
    Ipv4Addr remote;
    std::uint16_t remote_port;
    Tick idle;        // since the last packet that refreshed it
    bool established; // TCP only
};

// Which sessions a listing or a flush is about; an empty filter matches every session.
struct SessionFilter {
    std::optional<Ipv4Addr> subscriber; // inside address
    std::optional<Ipv4Addr> external;   // pool address
    std::optional<std::uint16_t> external_port;
};

class SessionLifecycle {
public:
    static constexpr std::uint32_t kBudget = 64; // sessions per expire() call

    SessionLifecycle(NatTables& tables, PortAllocator& ports, CounterBlock& counters, Tick start);

    // Takes up a plan's policy. Sessions whose timeout got shorter are rescheduled, and a
    // switch to address-dependent filtering counts every session's permission first, both by a
    // bounded walk in expire(); a switch away clears the permission table the same way.
    void apply(const WorkerPlan& plan);
    // Where mappings and blocks that end are recorded (NAT event logging); none in tests
    // that do not ask.
    void set_events(NatEventRecorder* events) { events_ = events; }
    // Where sessions made, changed and ended are recorded for the HA standby (session_sync.hpp).
    void set_sync(SessionSync* sync) { sync_ = sync; }
    // An HA standby holds no port down: it claims ports only as the active's records say, and
    // the active holds them down itself. So a port the standby frees is free at once.
    void set_standby(bool standby) { standby_ = standby; }
    // Where the ports of moved mappings are held (port_forwards.hpp); none: released as any.
    void set_forwards(PortForwards* forwards) { forwards_ = forwards; }
    // A live session as it would move to another process: at `now`, its idle time.
    [[nodiscard]] SessionState state_of(std::uint32_t session, Tick now) const;
    // The filtering mode packets are judged by: the configured one, except while a switch to
    // address-dependent filtering waits for its walk (then the mode before it).
    [[nodiscard]] FilteringMode filtering() const { return filtering_; }
    [[nodiscard]] bool rescanning() const { return rescan_active_ || clearing_permissions_; }
    [[nodiscard]] bool permissions_live() const { return permissions_live_; }

    // A new session (its record filled in): scheduled, counted, its permission noted.
    void started(std::uint32_t session, Protocol proto, std::uint32_t remote_addr);
    // A session brought from another process (a restart or the HA peer): scheduled and
    // counted live like a new one, but not counted as created here.
    void adopted(std::uint32_t session, Protocol proto, std::uint32_t remote_addr);
    // The active peer's view of a session this standby holds: its last packet and TCP state.
    void take_state(std::uint32_t session, Tick last_seen, std::uint8_t tcp_flags);
    // RFC 7857 section 2: SYN, FIN and RST move a TCP session's state; a session that leaves
    // the established state is due a transitory timeout after its last outbound packet.
    void track_tcp(std::uint32_t session, Session& s, std::uint8_t flags, bool outbound);

    // Ages out sessions whose timeout has passed and returns held ports whose hold-down is
    // over, doing at most `budget` of each. Returns the work done (0: nothing was due).
    std::uint32_t expire(Tick now, std::uint32_t budget = kBudget);

    // Ends a session now (a flush), with what it frees.
    void end_session(std::uint32_t session, const SessionKey& key, Tick now);
    // A mapping with no session (one that a refused session left behind) goes at once.
    void drop_mapping(std::uint32_t mapping, Tick now);
    // The subscriber record goes when it holds neither mappings nor sessions.
    void release_subscriber_if_unused(std::uint32_t subscriber, Ipv4Addr inside);

    // One bounded step of a walk over the sessions matching `filter`, from `cursor` (0 starts
    // a walk): at most `budget` sessions are looked at. Matches are appended to `out` while it
    // has fewer than `limit`, or ended when `flush` (counted in `flushed`). Returns true when
    // the walk is complete.
    bool walk_sessions(const SessionFilter& filter, bool flush, Tick now, std::uint32_t& cursor,
                       std::uint32_t budget, std::vector<SessionView>& out, std::size_t limit,
                       std::uint64_t& flushed);

    [[nodiscard]] Tick timeout(const Session& s, Protocol proto) const;
    [[nodiscard]] std::uint32_t live_sessions() const { return live_sessions_; }
    [[nodiscard]] std::uint32_t live_sessions(Protocol p) const {
        return live_by_proto_[static_cast<std::size_t>(proto_index(p))];
    }
    [[nodiscard]] std::uint32_t live_mappings() const { return live_mappings_; }
    [[nodiscard]] std::uint32_t live_subscribers() const { return live_subscribers_; }
    void mapping_created() { ++live_mappings_; }
    void subscriber_created() { ++live_subscribers_; }

private:
    void prefetch_due(std::uint32_t session, std::uint32_t stage) const;
    void on_due(std::uint32_t session, Tick now);
    void track_live(std::uint32_t session, Protocol proto, std::uint32_t remote_addr);
    void delete_session(std::uint32_t session, const SessionKey& key, Tick now);
    void release_mapping(std::uint32_t mapping, Tick now);
    // A dynamic or block mapping's external port: back to the bitmap, its block or hold-down.
    void release_port(const Mapping& m, Subscriber& sub, Tick now);
    void count_permission(Session& s, std::uint32_t mapping, std::uint32_t remote);
    void give_back_permission(std::uint32_t mapping, std::uint32_t remote);
    std::uint32_t rescan(std::uint32_t budget);
    std::uint32_t clear_permissions(std::uint32_t budget);

    NatTables& tables_;
    PortAllocator& ports_;
    CounterBlock& counters_;
    NatEventRecorder* events_ = nullptr;
    SessionSync* sync_ = nullptr;
    PortForwards* forwards_ = nullptr;
    bool standby_ = false;
    const WorkerPlan* plan_ = nullptr;
    TimerWheel wheel_;
    std::uint32_t live_sessions_ = 0;
    std::array<std::uint32_t, kProtocolCount> live_by_proto_{};
    std::uint32_t live_mappings_ = 0;
    std::uint32_t live_subscribers_ = 0;

    FilteringMode filtering_ = FilteringMode::endpoint_independent;
    // A walk over every session after a reconfiguration (see apply()).
    bool rescan_active_ = false;
    std::uint32_t rescan_next_ = 0;
    // Sessions whose permission is counted carry this mark in Session::state; a new
    // generation at each switch to address-dependent filtering voids the old marks.
    std::uint8_t permission_generation_ = 1;
    // The permission table is kept (sessions counted as they come and go) while
    // address-dependent filtering is on or about to be: a switch to it takes effect only when
    // the walk has counted every existing session, so no peer of an existing session is
    // refused in between. A switch away clears the table by a walk too; a switch back waits
    // for that walk.
    bool permissions_live_ = false;
    bool address_filtering_pending_ = false;
    bool clearing_permissions_ = false;
    std::uint32_t clear_next_ = 0;
};

} // namespace ephemera
