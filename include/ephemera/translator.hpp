// The translation core of one worker: parse results in, rewritten frames and verdicts out.
// Plain C++ over byte spans; no ports, queues or lcores. The worker loop (dataplane/worker.cpp)
// owns one Translator and calls it with bursts of packets that this worker owns.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/nat_table.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/pool.hpp"
#include "ephemera/port_allocator.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace ephemera {

// The L2 addresses a translated frame is sent with.
struct L2Context {
    MacAddr inside_port_mac;  // our MAC on the inside port
    MacAddr outside_port_mac; // our MAC on the outside port
    MacAddr next_hop_mac;     // outside next hop (resolved before in2out is called)
};

enum class Verdict : std::uint8_t { forward, drop };

// A packet handed to the translator: its frame and what parse_frame() said of it.
struct PacketRef {
    std::uint8_t* frame = nullptr;
    std::uint16_t length = 0;
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

class Translator {
public:
    static constexpr std::size_t kMaxBurst = 64;

    Translator(const Config& config, const Ownership& ownership, WorkerId worker,
               SipKey port_secret, CounterBlock& counters, int socket = -1);

    // Both take a burst of IPv4 packets of this worker (kind == ipv4) and leave each one
    // rewritten (verdict forward) or untouched (verdict drop, counted by reason). Bursts
    // longer than kMaxBurst are worked through in kMaxBurst pieces.
    void in2out(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                std::span<Verdict> verdicts);
    void out2in(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                std::span<Verdict> verdicts);

    [[nodiscard]] bool is_pool_address(Ipv4Addr a) const { return pool_.find(a) != kNoPool; }
    [[nodiscard]] const PoolIndex& pool() const { return pool_; }
    [[nodiscard]] const PortAllocator& ports() const { return ports_; }
    [[nodiscard]] std::uint32_t live_sessions() const { return live_sessions_; }
    [[nodiscard]] std::uint32_t live_mappings() const { return live_mappings_; }
    [[nodiscard]] std::uint32_t max_sessions() const { return max_sessions_; }

    // Copies up to out.size() live mappings; returns how many. Call on the owning worker only.
    std::size_t snapshot_mappings(std::span<MappingView> out) const;

private:
    void in2out_burst(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                      std::span<Verdict> verdicts);
    void out2in_burst(std::span<PacketRef> packets, const L2Context& l2,
                      std::span<Verdict> verdicts);
    // Position of the packet's session, found or created; negative when it was dropped.
    std::int32_t in2out_miss(const PacketRef& pkt, const SessionKey& key, Tick now);
    std::uint32_t find_or_create_mapping(const PacketRef& pkt, Tick now);
    std::uint32_t create_mapping(const PacketRef& pkt, const MappingKey& key, Tick now);
    void release_mapping_if_unused(std::uint32_t mapping);
    void out2in_filter(std::span<PacketRef> packets, std::uint32_t n);
    void finish_in2out(PacketRef& pkt, std::uint32_t session, Tick now, const L2Context& l2);

    static SessionKey session_key(const PacketRef& pkt);

    FilteringMode filtering_;
    SipKey secret_;
    PoolIndex pool_;
    WorkerId worker_;
    CounterBlock& counters_;
    PortAllocator ports_;
    NatTables tables_;
    std::uint32_t max_sessions_;
    std::uint32_t live_sessions_ = 0;
    std::uint32_t live_mappings_ = 0;

    // Per-burst scratch, kept here rather than on the stack.
    SessionKey keys_[kMaxBurst]{};
    PermissionKey permission_keys_[kMaxBurst]{};
    const void* key_ptrs_[kMaxBurst]{};
    std::int32_t positions_[kMaxBurst]{};
    std::uint32_t* index_entries_[kMaxBurst]{}; // out2in: the direct-index slot, or null
    std::uint32_t mappings_[kMaxBurst]{};       // out2in: the mapping, or kNoIndex
};

} // namespace ephemera
