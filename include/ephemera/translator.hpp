// The translation core of one worker: parse results in, rewritten frames and verdicts out.
// Plain C++ over byte spans; no ports, queues or lcores. The worker loop (dataplane/worker.cpp)
// owns one Translator, calls it with bursts of packets that this worker owns, and calls
// expire() between bursts.
//
// A burst goes through stages, each in its own file, in the order a packet meets them:
//   fast_path.cpp   hits only: keys for the whole burst, one bulk lookup, prefetch, rewrite.
//                   Anything else (a miss, an ICMP error, a TTL about to run out, a packet over
//                   the MTU, a ping to a pool address) is left for the slow path, untouched.
//   slow_path.cpp   what the fast pass left, in burst order, out of line: refusals and their
//                   ICMP replies, ICMP errors (icmp_errors.cpp), Time Exceeded, the 3/4 of
//                   REQ-13, held SYNs; new flows are batched (session_create.cpp).
//   hairpins        in2out's forwarded packets addressed to a pool address become Verdict::
//                   hairpin: the worker runs them through out2in as a second pass.
// The parts it is made of, each with its own header: tables (nat_table.hpp, keys.hpp), ports
// (port_allocator.hpp), session lifecycle (lifecycle.hpp), policy and limits (policy.hpp), and
// the plan the control thread compiled (worker_plan.hpp).
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/held_syn.hpp"
#include "ephemera/inside_neighbors.hpp"
#include "ephemera/keys.hpp"
#include "ephemera/lifecycle.hpp"
#include "ephemera/nat_events.hpp"
#include "ephemera/nat_table.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/policy.hpp"
#include "ephemera/port_allocator.hpp"
#include "ephemera/session_state.hpp"
#include "ephemera/subscriber_summary.hpp"
#include "ephemera/tx_checksum.hpp"
#include "ephemera/worker_plan.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

// Ownership checks, in debug builds only: a worker never touches a session or a port it does
// not own (VPP asserts the same of its sessions' thread index).
#ifdef NDEBUG
#define EPHEMERA_ASSERT_OWNER(cond) ((void)0)
#else
#include <cassert>
#define EPHEMERA_ASSERT_OWNER(cond) assert(cond)
#endif

namespace ephemera {

// The L2 and L3 identity a translated or originated frame is sent with, and what the port a
// burst's translations leave by does for them.
struct L2Context {
    MacAddr inside_port_mac;  // our MAC on the inside port
    MacAddr outside_port_mac; // our MAC on the outside port
    MacAddr next_hop_mac;     // outside next hop (resolved before in2out is called)
    // The checksums that port computes on transmit (chosen at start, tx_checksum.hpp): the
    // fast path leaves them to it. Replies and the slow path's packets do not.
    TxChecksums tx_checksums{};
};

// forward: send out of the other port. reply: the frame became ICMP for its sender; send it
// back out of the port it came in on. drop: counted by reason, free it. hairpin: the frame,
// already translated, is addressed to one of our own pool addresses (RFC 4787 REQ-9): it goes
// back into out2in as if it had arrived on the outside port, at the owner of its destination.
enum class Verdict : std::uint8_t { forward, drop, reply, hairpin };

// A packet handed to the translator: its frame and what parse_frame() said of it. `capacity`
// is how many bytes from `frame` may be written (0: as many as `length`), for replies that
// are longer than the packet they answer.
struct PacketRef {
    std::uint8_t* frame = nullptr;
    std::uint16_t length = 0;
    std::uint16_t capacity = 0;
    ParsedPacket parsed;
    // Set by a translation that left checksums to the port (L2Context::tx_checksums), for the
    // tx stage to flag on the mbuf; none otherwise.
    TxChecksums tx_checksums{};
};

// A live mapping as telemetry and tests see it.
struct MappingView {
    Protocol proto;
    Ipv4Addr inside;
    std::uint16_t inside_port;
    Ipv4Addr external;
    std::uint16_t external_port;
    std::uint32_t sessions;
    bool is_static = false; // a static entry's (static_path.cpp)
};

// A port block as telemetry and tests see it (pool.mode = "blocks").
struct BlockView {
    Ipv4Addr address;
    std::uint16_t first_port = 0; // lowest and highest port of its span (port_blocks.hpp)
    std::uint16_t last_port = 0;
    std::uint16_t ports = 0;  // ports it holds (of every protocol)
    std::uint16_t in_use = 0; // mappings on them
    Ipv4Addr subscriber;
    Tick age = 0;
    bool closed = false; // older than active_block_timeout: takes no new ports
};

class Translator {
public:
    static constexpr std::size_t kMaxBurst = 64;

    // The tables are sized by the first plan's policy (limits.max_sessions and
    // max_subscribers need a restart); `plan` must outlive its use (see apply()).
    Translator(const WorkerPlan& plan, const Ownership& ownership, WorkerId worker,
               SipKey port_secret, CounterBlock& counters, int socket = -1, Tick start = 0);

    // Both take a burst of IPv4 packets of this worker (kind == ipv4) and leave each one
    // rewritten (forward), turned into an ICMP error for its sender (reply, new length in
    // PacketRef::length), rewritten and bound for one of our own pool addresses (hairpin), or
    // untouched (drop, counted by reason). Bursts longer than kMaxBurst are worked through in
    // kMaxBurst pieces. An echo request to a pool address is answered by the pool address
    // (reply, or hairpin when it came from a subscriber through a hairpin).
    void in2out(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                std::span<Verdict> verdicts);
    void out2in(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                std::span<Verdict> verdicts);

    // Ages out sessions whose timeout has passed and returns held ports whose hold-down is
    // over, doing at most `budget` of each. Returns the work done (0: nothing was due).
    std::uint32_t expire(Tick now, std::uint32_t budget = SessionLifecycle::kBudget) {
        const std::uint32_t done = life_.expire(now, budget);
        events_.flush();
        sync_.flush();
        return done;
    }

    // RFC 5382 REQ-4: an unsolicited inbound SYN whose 6 s hold is over and that the inside
    // did not answer with a SYN of its own, to be answered with ICMP 3/3 from the pool
    // address (the ICMP rate limit applies; nullopt: none is due). Call between bursts.
    std::optional<HeldSyn> take_due_syn(Tick now);
    // A SYN held at tick `now` is due kSynHold + 1 ticks later: `now` is truncated to a whole
    // tick, so the SYN may have come almost a tick after it, and 6 s must pass in full.
    static constexpr Tick kSynHold = 6 * kTicksPerSecond;
    static constexpr std::uint32_t kHeldSynCapacity = 1024;

    // Takes up a plan the control thread compiled (a new config): between bursts, O(1) here
    // but for the bounded walks it may start (lifecycle.hpp). The plan must stay alive while
    // it is in use, and the previous one until this returns.
    void apply(const WorkerPlan& plan);
    [[nodiscard]] const WorkerPlan& plan() const { return *plan_; }

    // NAT event logging (nat_events.hpp): the worker's ring, created by the control thread,
    // and the wall clock records are stamped with, set once per loop iteration.
    void attach_event_ring(rte_ring* ring) {
        events_.attach(ring, worker_);
        events_.apply(*plan_);
    }
    void set_time_ms(std::uint64_t unix_ms) { events_.set_time_ms(unix_ms); }
    // One bounded step of the walk that repeats a held block's record every
    // pool.blocks.interim (block_interim); returns the granules looked at.
    std::uint32_t log_interim(Tick now, std::uint32_t budget);
    [[nodiscard]] const Policy& policy() const { return plan_->policy; }
    [[nodiscard]] bool rescanning() const { return life_.rescanning(); }
    // The filtering mode in force: the plan's, except while a switch to address-dependent
    // filtering waits for its walk over the sessions (lifecycle.hpp).
    [[nodiscard]] FilteringMode filtering() const { return life_.filtering(); }

    // Pool addresses keep their index for life: one removed from the config drains (its
    // mappings live on, none are made there) and gets its old index back if it returns.
    [[nodiscard]] bool is_pool_address(Ipv4Addr a) const { return pool().find(a) != kNoPool; }
    [[nodiscard]] bool is_active(std::uint16_t pool_index) const {
        return plan_->active[pool_index] == WorkerPlan::kPoolAddress;
    }
    // The external address of a 1:1 static mapping (in the index, never allocated from).
    [[nodiscard]] bool is_static_address(std::uint16_t pool_index) const {
        return plan_->active[pool_index] == WorkerPlan::kStaticAddress;
    }
    // A drained box's address, taken over with its sessions (worker_plan.hpp).
    [[nodiscard]] bool is_adopted(std::uint16_t pool_index) const {
        const std::uint8_t state = plan_->active[pool_index];
        return state == WorkerPlan::kAdoptedAddress || state == WorkerPlan::kAdoptedQuiet;
    }
    // Whether this box answers ARP for `a` on the outside: every address it knows, except a
    // drained box's while its sessions are still coming in.
    [[nodiscard]] bool answers_arp_for(Ipv4Addr a) const {
        const std::uint16_t index = pool().find(a);
        return index != kNoPool && plan_->active[index] != WorkerPlan::kAdoptedQuiet;
    }
    [[nodiscard]] const StaticTable& statics() const {
        static const StaticTable kNone;
        return plan_->statics != nullptr ? *plan_->statics : kNone;
    }

    // Static hosts' MACs (inside_neighbors.hpp): what ARP on the inside port told the worker
    // that owns the host, and the next host to ask for (the worker sends the request).
    void learn_neighbor(Ipv4Addr host, const MacAddr& mac, Tick now) {
        neighbors_.learn(host, mac, now);
    }
    std::optional<Ipv4Addr> take_wanted_neighbor() { return neighbors_.take_wanted(); }
    [[nodiscard]] const PoolIndex& pool() const { return plan_->pool; }
    [[nodiscard]] const PortAllocator& ports() const { return ports_; }
    [[nodiscard]] std::uint32_t live_sessions() const { return life_.live_sessions(); }
    [[nodiscard]] std::uint32_t live_sessions(Protocol p) const { return life_.live_sessions(p); }
    [[nodiscard]] std::uint32_t live_mappings() const { return life_.live_mappings(); }
    [[nodiscard]] std::uint32_t live_subscribers() const { return life_.live_subscribers(); }
    [[nodiscard]] std::uint32_t max_sessions() const { return sized_for_.max_sessions; }
    [[nodiscard]] std::size_t ports_held() const { return ports_.ports_held(); }

    // See SessionLifecycle::walk_sessions.
    bool walk_sessions(const SessionFilter& filter, bool flush, Tick now, std::uint32_t& cursor,
                       std::uint32_t budget, std::vector<SessionView>& out, std::size_t limit,
                       std::uint64_t& flushed) {
        const bool complete =
            life_.walk_sessions(filter, flush, now, cursor, budget, out, limit, flushed);
        events_.flush();
        sync_.flush();
        return complete;
    }

    // One bounded step of a walk over this worker's blocks in use (of `subscriber` only, when
    // given), from `cursor` (0 starts a walk): at most `budget` granules are looked at, and
    // views appended while `out` has fewer than `limit`. True when the walk is complete.
    bool walk_blocks(std::optional<Ipv4Addr> subscriber, Tick now, std::uint32_t& cursor,
                     std::uint32_t budget, std::vector<BlockView>& out, std::size_t limit) const;
    // One bounded step of a walk over this worker's subscriber records into `out`, from
    // `cursor` (0 starts a walk): at most `budget` records are looked at. True when the walk
    // is complete.
    bool walk_subscribers(std::uint32_t& cursor, std::uint32_t budget,
                          SubscriberSummary& out) const;
    // Blocks of one pool address on this worker (the configured size for "free").
    [[nodiscard]] BlockCounts block_counts(std::uint16_t pool_index, Tick now) const {
        return ports_.block_counts(pool_index, policy().blocks.smallest(), now);
    }

    // ---- session_transfer.cpp: sessions leaving and entering this worker (docs/ha.md) ----
    // One bounded step of a walk over the live sessions, from `cursor` (0 starts a walk): at
    // most `budget` are looked at, each appended to `out`. True when the walk is complete.
    bool export_sessions(std::uint32_t& cursor, std::uint32_t budget, Tick now,
                         std::vector<SessionState>& out) const;
    // Rebuilds a session with its mapping (the same external address:port) and its subscriber,
    // or says why not. Nothing is logged or counted as created: the session is not new, it
    // moved. A refused record leaves nothing behind.
    RestoreResult restore(const SessionState& state, Tick now);

    // ---- session_sync.cpp: the HA stream (docs/ha.md) ----
    void attach_sync_ring(rte_ring* ring) { sync_.attach(ring); }
    // Whether a standby listens (the active's records are made only then).
    void set_sync_streaming(bool on) { sync_.set_streaming(on && !standby_); }
    // See SessionSync::set_filter.
    void set_sync_filter(std::uint32_t prefix, std::uint32_t mask) {
        sync_.set_filter(prefix, mask);
    }
    // This box is the standby: nothing is logged (the active logs), nothing is streamed.
    void set_standby(bool standby) {
        standby_ = standby;
        events_.silence(standby);
        life_.set_standby(standby);
        if (standby) {
            sync_.set_streaming(false);
        }
    }
    // One bounded step of the refresh rounds. Every `interval` a round walks the sessions and
    // sends those used since the round before; when `generation` changes (a standby arrived)
    // a bulk round sends every session, then a bulk_done marker. At most `budget` sessions are
    // looked at a step, and none while the ring has no room for them.
    void sync_step(Tick now, Tick interval, std::uint32_t generation, std::uint32_t budget);
    // A record from the active peer (standby): the session made, refreshed, or ended here
    // as it was there. `restored` when applied; for a remove of a session that is not here,
    // `duplicate`.
    RestoreResult apply_sync(const SyncRecord& record, Tick now);

    // One bounded step of ending every session (a box that stepped down to standby starts
    // clean, to be filled by the active's bulk round). True when none is left.
    bool clear_step(Tick now, std::uint32_t& cursor, std::uint32_t budget) {
        std::vector<SessionView> none;
        std::uint64_t flushed = 0;
        return walk_sessions(SessionFilter{}, true, now, cursor, budget, none, 0, flushed);
    }

    // Subscribers moved to a peer box (subscriber_moves.cpp). One bounded step of ending the
    // sessions of `move` (Config::moved_subscribers[index]) without logging them, their ports
    // held for the replies; true when the walk is complete.
    bool move_step(Tick now, const Config::SubscriberMove& move, std::uint16_t index,
                   std::uint32_t& cursor, std::uint32_t budget);
    // One bounded step of letting go of held ports that fell idle; how many.
    std::uint32_t expire_forwards(Tick now, std::uint32_t budget);
    [[nodiscard]] std::uint32_t ports_forwarded() const {
        return forwards_ != nullptr ? forwards_->size() : 0;
    }

    // Copies up to out.size() live mappings; returns how many. Call on the owning worker only.
    std::size_t snapshot_mappings(std::span<MappingView> out) const;
    // A live subscriber's record and its index in the subscriber table (the name a PortBlock's
    // holder gives it), or nothing: what a state check outside the packet path reads.
    struct SubscriberEntry {
        std::uint32_t index;
        const Subscriber* record;
    };
    [[nodiscard]] std::optional<SubscriberEntry> find_subscriber(Ipv4Addr inside) const;

private:
    // Why a new flow got no session; Counter::count_ when it got one.
    struct Miss {
        std::int32_t session;
        Counter refusal;
    };

    // ---- fast_path.cpp: returns the packets left for the slow path, as a bit mask ----
    // kOffload: the burst leaves by a port that computes checksums (l2.tx_checksums), chosen
    // once per burst so that the loops carry no test of it.
    template <bool kOffload>
    std::uint64_t in2out_fast(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                              std::span<Verdict> verdicts);
    template <bool kOffload>
    std::uint64_t out2in_fast(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                              std::span<Verdict> verdicts);
    // Refresh, TCP state, Ethernet and the rewrite; with kOffload, the checksums in `offload`
    // are left to the port.
    template <bool kOffload>
    void rewrite_out(PacketRef& pkt, Session& s, std::uint32_t session, const std::uint8_t* eth,
                     Tick now, TxChecksums offload = {});
    // Its body, inlined into the fast path's loop (fast_path.cpp only): a call per packet
    // costs more instructions (saved registers, arguments) than some of the rewrite does.
    template <bool kOffload>
    [[gnu::always_inline]] inline void
    rewrite_out_inline(PacketRef& pkt, Session& s, std::uint32_t session, const std::uint8_t* eth,
                       Tick now, TxChecksums offload);
    void track_out(const ParsedPacket& p, Session& s, std::uint32_t session);
    // Which outside packets the mapping admits (RFC 4787 REQ-8), looking up their sessions
    // where the mode, inbound refresh or a TCP control flag needs one.
    void out2in_admit(std::span<PacketRef> packets, Tick now, std::uint64_t candidates,
                      std::uint64_t expired);

    // ---- slow_path.cpp ----
    void in2out_slow(std::span<PacketRef> packets, std::uint64_t slow, Tick now,
                     const L2Context& l2, std::span<Verdict> verdicts);
    void out2in_slow(std::span<PacketRef> packets, std::uint64_t slow, Tick now,
                     const L2Context& l2, std::span<Verdict> verdicts);
    // Forwarded packets among `candidates` addressed to a pool address become hairpins.
    void mark_hairpins(std::span<PacketRef> packets, std::span<Verdict> verdicts,
                       std::uint64_t candidates);
    // Outside packets for no mapping, or that filtering refused: dropped and counted; an
    // unsolicited SYN among them is held (RFC 5382 REQ-4) when that is switched on.
    void refuse_inbound(std::span<PacketRef> packets, std::uint64_t no_mapping,
                        std::uint64_t filtered, Tick now, const L2Context& l2,
                        std::span<Verdict> verdicts);
    // ---- subscriber_moves.cpp ----
    // Of `no_mapping`, the replies to ports held for moved subscribers: passed to the peer's
    // MAC (Verdict::reply). Returns the rest.
    std::uint64_t pass_moved_replies(std::span<PacketRef> packets, std::uint64_t no_mapping,
                                     Tick now, const L2Context& l2, std::span<Verdict> verdicts);
    Verdict refuse(PacketRef& pkt, Counter reason, Tick now, const L2Context& l2);
    Verdict answer_echo(PacketRef& pkt, const MacAddr& our_mac);
    void hold_syn(const PacketRef& pkt, Tick now);
    Verdict too_big(PacketRef& pkt, std::uint16_t mtu, Ipv4Addr from, const MacAddr& our_mac,
                    Tick now);
    [[nodiscard]] static bool exceeds(const ParsedPacket& p, std::uint16_t mtu) {
        return p.dont_fragment && p.ip_total_len > mtu;
    }
    [[nodiscard]] bool take_icmp_token(Tick now);
    Verdict answer_with_error(PacketRef& pkt, std::uint8_t type, std::uint8_t code, Ipv4Addr from,
                              const MacAddr& our_mac, Counter sent, std::uint32_t rest = 0);

    // ---- session_create.cpp: the slow path's new flows ----
    Miss create_session(const PacketRef& pkt, const SessionKey& key, Tick now);
    std::int32_t find_or_create_subscriber(Ipv4Addr inside, Protocol proto, Tick now);
    [[nodiscard]] std::uint16_t choose_anchor(Ipv4Addr inside, Protocol proto, Tick now) const;
    // Anchors the subscriber (pool address and the port key that goes with it).
    void anchor(Subscriber& sub, Ipv4Addr inside, Protocol proto, Tick now);
    std::uint32_t new_mapping(const PacketRef& pkt, const MappingKey& key, Subscriber& subscriber,
                              std::uint32_t sub_index, Tick now, Counter& refusal);
    // A mapping for `key`, which has none (its lookup just missed); kNoIndex with `refusal` set
    // when none could be made.
    std::uint32_t create_mapping(const PacketRef& pkt, const MappingKey& key,
                                 std::uint32_t subscriber, Tick now, Counter& refusal);
    std::optional<PortGrant> allocate_port(const PortRequest& request, Subscriber& sub,
                                           std::uint32_t subscriber, Tick now, Counter& refusal);

    // ---- static_path.cpp: static mappings (static_table.hpp) ----
    // The external endpoint a static entry gives an inside packet's source, if any.
    [[nodiscard]] std::optional<StaticEndpoint> static_external(const ParsedPacket& p) const {
        return statics().empty() ? std::nullopt : statics().external_of(p.src, p.proto, p.src_port);
    }
    // The mapping of a static entry for `key`, made now with the fixed external endpoint;
    // kNoIndex with `refusal` set when something stands in its way.
    std::uint32_t create_static_mapping(const MappingKey& key, StaticEndpoint external,
                                        std::uint32_t subscriber, const MacAddr& inside_mac,
                                        Tick now, Counter& refusal);
    // The live mapping of a static entry's external endpoint, or kNoIndex.
    [[nodiscard]] std::uint32_t static_mapping_of(Ipv4Addr external, Protocol proto,
                                                  std::uint16_t port) const;
    // An outside packet that the index found no mapping for but a static entry names: its
    // mapping and session are found or made here (a static endpoint admits every remote).
    Verdict static_inbound(PacketRef& pkt, StaticEndpoint inside, std::uint16_t pool_index,
                           Tick now, const L2Context& l2);

    // ---- icmp_errors.cpp: RFC 5508 error translation and Time Exceeded ----
    Verdict icmp_error_out2in(PacketRef& pkt, std::uint16_t pool_index, const L2Context& l2);
    Verdict icmp_error_in2out(PacketRef& pkt, const SessionKey& key, std::int32_t session,
                              const L2Context& l2);
    [[nodiscard]] std::int32_t mapping_delivering(const SessionKey& key) const;
    Verdict time_exceeded(PacketRef& pkt, Tick now, Ipv4Addr from, const MacAddr& our_mac);

    [[nodiscard]] bool owns_subscriber(Ipv4Addr inside) const {
        return ownership_.subscriber_owner(inside) == worker_;
    }
    [[nodiscard]] bool owns_port(std::uint16_t pool_index, std::uint16_t port) const {
        return ownership_.port_owner(pool().address(pool_index), port) == worker_;
    }

    const WorkerPlan* plan_;
    Policy sized_for_; // the first plan's policy: what the tables were sized for
    Ownership ownership_;
    WorkerId worker_;
    SipKey secret_;
    CounterBlock& counters_;
    PortAllocator ports_;
    NatEventRecorder events_;
    SessionSync sync_;
    NatTables tables_;
    SessionLifecycle life_;
    // The refresh round in progress (sync_step).
    struct SyncRound {
        bool walking = false;
        bool bulk = false;
        std::uint32_t cursor = 0;
        Tick started = 0;
        Tick previous_start = 0;
        std::uint32_t generation = 0;
    } round_;
    bool standby_ = false;
    // Ports held for subscribers moved to a peer (port_forwards.hpp); only on a box that may
    // hand over (ha.handover), sized at start.
    std::unique_ptr<PortForwards> forwards_;
    std::uint32_t forward_cursor_ = 0; // expire_forwards' walk
    HeldSyns held_syns_{kHeldSynCapacity};
    InsideNeighbors neighbors_;
    TokenBucket icmp_bucket_;
    std::uint32_t interim_cursor_ = 0; // log_interim's walk

    // Per-burst scratch, kept here rather than on the stack.
    SessionKey keys_[kMaxBurst]{};
    std::uint32_t hashes_[kMaxBurst]{};
    PermissionKey permission_keys_[kMaxBurst]{};
    const void* key_ptrs_[kMaxBurst]{};
    std::int32_t positions_[kMaxBurst]{};
    std::uint32_t* index_entries_[kMaxBurst]{}; // out2in: the direct-index slot, or null
    std::uint32_t mappings_[kMaxBurst]{};       // out2in: the mapping, or kNoIndex
    std::uint32_t session_hints_[kMaxBurst]{};  // out2in: the mapping's one session, or kNoIndex
    SessionKey rest_keys_[kMaxBurst]{};         // out2in: the session keys not at their hint
    std::int32_t rest_positions_[kMaxBurst]{};
};

} // namespace ephemera
