// The translation core of one worker: parse results in, rewritten frames and verdicts out.
// Plain C++ over byte spans; no ports, queues or lcores. The worker loop (dataplane/worker.cpp)
// owns one Translator and calls it with bursts of packets that this worker owns, and calls
// expire() between bursts to age sessions out and return held ports.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/held_syn.hpp"
#include "ephemera/hold_down.hpp"
#include "ephemera/nat_table.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/pool.hpp"
#include "ephemera/port_allocator.hpp"
#include "ephemera/timer_wheel.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ephemera {

// The L2 and L3 identity a translated or originated frame is sent with.
struct L2Context {
    MacAddr inside_port_mac;  // our MAC on the inside port
    MacAddr outside_port_mac; // our MAC on the outside port
    MacAddr next_hop_mac;     // outside next hop (resolved before in2out is called)
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
};

// A live mapping as telemetry and tests see it.
struct MappingView {
    Protocol proto;
    Ipv4Addr inside;
    std::uint16_t inside_port;
    Ipv4Addr external;
    std::uint16_t external_port;
    std::uint32_t sessions;
};

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

// The configuration in the units the packet path uses. Built from a Config; a worker swaps it
// as a whole (reconfigure) when the control thread publishes a new config.
struct Policy {
    FilteringMode filtering = FilteringMode::endpoint_independent;
    std::array<Tick, kProtocolCount> timeout{}; // UDP, TCP established, ICMP (by ProtoIndex)
    Tick tcp_transitory = 0;
    Tick hold_down = 0;
    bool inbound_refresh = false;
    std::uint32_t max_sessions = 0;    // this worker's share
    std::uint32_t max_subscribers = 0; // this worker's share (its table is sized by it)
    std::uint32_t subscriber_sessions = 0;
    std::array<std::uint32_t, kProtocolCount> subscriber_ports{};
    std::uint32_t mapping_rate = 0;  // tokens (1/kTicksPerSecond mapping) added per tick
    std::uint32_t mapping_burst = 0; // bucket depth in tokens
    bool icmp_unreachable = true;
    std::uint32_t icmp_rate = 0;      // tokens per tick
    std::uint32_t icmp_burst = 0;     // bucket depth in tokens
    Ipv4Addr gateway;                 // source of the ICMP errors we send inside
    std::uint16_t inside_mtu = 1500;  // largest IP packet out of the inside port
    std::uint16_t outside_mtu = 1500; // ... and out of the outside port (RFC 4787 REQ-13)
    bool syn_unreachable = false;     // RFC 5382 REQ-4: 3/3 for unsolicited SYNs after the hold

    static Policy from(const Config& config, WorkerId workers);
};

class Translator {
public:
    static constexpr std::size_t kMaxBurst = 64;
    static constexpr std::uint32_t kExpiryBudget = 64; // sessions per expire() call

    Translator(const Config& config, const Ownership& ownership, WorkerId worker,
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
    std::uint32_t expire(Tick now, std::uint32_t budget = kExpiryBudget);

    // RFC 5382 REQ-4: an unsolicited inbound SYN whose 6 s hold is over and that the inside
    // did not answer with a SYN of its own, to be answered with ICMP 3/3 from the pool
    // address (the ICMP rate limit applies; nullopt: none is due). Call between bursts.
    std::optional<HeldSyn> take_due_syn(Tick now);
    // A SYN held at tick `now` is due kSynHold + 1 ticks later: `now` is truncated to a whole
    // tick, so the SYN may have come almost a tick after it, and 6 s must pass in full.
    static constexpr Tick kSynHold = 6 * kTicksPerSecond;
    static constexpr std::uint32_t kHeldSynCapacity = 1024;

    // Takes up a new config (already validated, and changing nothing check_runtime_change()
    // refuses): timeouts, limits, ICMP and filtering. Sessions whose timeout got shorter are
    // rescheduled, and switching to address-dependent filtering rebuilds the permissions, both
    // a bounded amount per expire() call.
    void reconfigure(const Config& config);
    [[nodiscard]] bool rescanning() const { return rescan_active_; }
    [[nodiscard]] const Policy& policy() const { return policy_; }

    // Pool addresses keep their index for life: one removed from the config drains (its
    // mappings live on, none are made there) and gets its old index back if it returns.
    [[nodiscard]] bool is_pool_address(Ipv4Addr a) const { return pool_.find(a) != kNoPool; }
    [[nodiscard]] bool is_active(std::uint16_t pool_index) const { return active_[pool_index]; }
    [[nodiscard]] const PoolIndex& pool() const { return pool_; }
    [[nodiscard]] const PortAllocator& ports() const { return ports_; }
    [[nodiscard]] std::uint32_t live_sessions() const { return live_sessions_; }
    [[nodiscard]] std::uint32_t live_sessions(Protocol p) const {
        return live_by_proto_[static_cast<std::size_t>(proto_index(p))];
    }
    [[nodiscard]] std::uint32_t live_mappings() const { return live_mappings_; }
    [[nodiscard]] std::uint32_t live_subscribers() const { return live_subscribers_; }
    [[nodiscard]] std::uint32_t max_sessions() const { return policy_.max_sessions; }
    [[nodiscard]] std::size_t ports_held() const { return hold_down_.size(); }

    // One bounded step of a walk over the sessions matching `filter`, from `cursor` (0 starts
    // a walk): at most `budget` sessions are looked at. Matches are appended to `out` while it
    // has fewer than `limit`, or deleted when `flush` (counted in `flushed`; their mappings
    // and ports go the way expiry sends them). Returns true when the walk is complete.
    bool walk_sessions(const SessionFilter& filter, bool flush, Tick now, std::uint32_t& cursor,
                       std::uint32_t budget, std::vector<SessionView>& out, std::size_t limit,
                       std::uint64_t& flushed);

    // Copies up to out.size() live mappings; returns how many. Call on the owning worker only.
    std::size_t snapshot_mappings(std::span<MappingView> out) const;

private:
    // Why a new flow got no session; Counter::count_ when it got one.
    struct Miss {
        std::int32_t session;
        Counter refusal;
    };

    void in2out_burst(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                      std::span<Verdict> verdicts);
    void out2in_burst(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                      std::span<Verdict> verdicts);
    Miss in2out_miss(const PacketRef& pkt, const SessionKey& key, Tick now);
    std::int32_t find_or_create_subscriber(Ipv4Addr inside, Protocol proto, Tick now);
    [[nodiscard]] std::uint16_t choose_anchor(Ipv4Addr inside, Protocol proto) const;
    void reconfigure_pool(const Config& config);
    std::uint32_t create_mapping(const PacketRef& pkt, const MappingKey& key,
                                 std::uint32_t subscriber, Tick now);
    void release_mapping(std::uint32_t mapping, Tick now);
    void release_subscriber_if_unused(std::uint32_t subscriber, Ipv4Addr inside);
    [[nodiscard]] bool take_mapping_token(Subscriber& sub, Tick now) const;
    void out2in_sessions(std::span<PacketRef> packets, std::uint32_t n, Tick now,
                         std::uint64_t expired);
    void finish_in2out(PacketRef& pkt, std::uint32_t session, Tick now, const L2Context& l2);
    Verdict refuse(PacketRef& pkt, Counter reason, Tick now, const L2Context& l2);
    void mark_hairpins(std::span<PacketRef> packets, std::span<Verdict> verdicts);
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

    // ICMP errors and Time Exceeded (dataplane/translator_icmp.cpp).
    Verdict icmp_error_out2in(PacketRef& pkt, std::uint16_t pool_index, const L2Context& l2);
    Verdict icmp_error_in2out(PacketRef& pkt, const SessionKey& key, std::int32_t session,
                              const L2Context& l2);
    [[nodiscard]] std::int32_t mapping_delivering(const SessionKey& key) const;
    Verdict time_exceeded(PacketRef& pkt, Tick now, Ipv4Addr from, const MacAddr& our_mac);

    [[nodiscard]] Tick session_timeout(const Session& s, Protocol proto) const;
    void track_tcp(std::uint32_t session, Session& s, std::uint8_t flags, bool outbound);
    void on_session_due(std::uint32_t session, Tick now);
    void delete_session(std::uint32_t session, const SessionKey& key, Tick now);
    std::uint32_t rescan(std::uint32_t budget);
    void count_permission(Session& s, std::uint32_t mapping, std::uint32_t remote);

    static SessionKey session_key(const PacketRef& pkt);

    Policy policy_;
    SipKey secret_;
    PoolIndex pool_;
    std::vector<std::uint8_t> active_; // by pool index: in the config (1) or draining (0)
    PortRange range_;
    std::vector<PortRange> reserved_;
    CounterBlock& counters_;
    PortAllocator ports_;
    NatTables tables_;
    TimerWheel wheel_;
    HoldDownQueue hold_down_;
    HeldSyns held_syns_{kHeldSynCapacity};
    std::uint32_t live_sessions_ = 0;
    std::array<std::uint32_t, kProtocolCount> live_by_proto_{};
    std::uint32_t live_mappings_ = 0;
    std::uint32_t live_subscribers_ = 0;
    std::uint32_t icmp_tokens_ = 0;
    Tick icmp_refilled_at_ = 0;
    WorkerId workers_;
    // A walk over every session after a reconfiguration (see reconfigure()).
    bool rescan_active_ = false;
    std::uint32_t rescan_next_ = 0;
    // Sessions whose permission is counted carry this mark in Session::state; a new
    // generation at each switch to address-dependent filtering voids the old marks.
    std::uint8_t permission_generation_ = 1;
    // The permission table is kept (sessions counted as they come and go) while
    // address-dependent filtering is on or about to be: a switch to it takes effect only when
    // the walk has counted every existing session, so no peer of an existing session is
    // refused in between.
    bool permissions_live_ = false;
    bool address_filtering_pending_ = false;

    // Per-burst scratch, kept here rather than on the stack.
    SessionKey keys_[kMaxBurst]{};
    PermissionKey permission_keys_[kMaxBurst]{};
    const void* key_ptrs_[kMaxBurst]{};
    std::int32_t positions_[kMaxBurst]{};
    std::uint32_t* index_entries_[kMaxBurst]{}; // out2in: the direct-index slot, or null
    std::uint32_t mappings_[kMaxBurst]{};       // out2in: the mapping, or kNoIndex
    std::int32_t sessions_[kMaxBurst]{};        // out2in: the session, when looked up
};

} // namespace ephemera
