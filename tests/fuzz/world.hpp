// The translator fuzzer's world: ephemera's whole dataplane in one process, as it runs in
// production but for the threads. The EAL (no hugepages, no PCI, one lcore), two in-process
// ports made of rte_rings (net_ring) with one queue pair per worker, the handoff and ARP rings,
// and WorkerShared with its Workers, which the harness polls in turn (Worker::poll_once) with
// a clock of its own. The harness plays the network on both ports and the control thread
// (learning the next hop's MAC, publishing config changes, telemetry requests).
//
// One world lives across many inputs (sessions, fragments, held SYNs and timers carry over,
// as on a running NAT); it is replaced when its clock nears the end of a Tick, every
// kInputsPerWorld inputs, or before each input with EPHEMERA_FUZZ_FRESH=1 (to replay a single
// finding). Replacing it first lets every timer run out and checks that every packet buffer
// came back.
//
// Every frame ephemera sends is checked as it is taken off a port (World::check_sent), and the
// state every worker holds after each input (World::check_state), both in checks.cpp; a
// violated invariant aborts with the frame or the state that broke it.
#pragma once

#include "../../dataplane/ports.hpp"
#include "../../dataplane/worker.hpp"
#include "frames.hpp"

#include "ephemera/config.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

struct rte_mbuf;
struct rte_ring;

namespace ephemera::fuzz {

enum class Side : std::uint8_t { inside = 0, outside = 1 };

// How a world's pool hands out ports: worlds take turns (world N runs mode N % 3), so a short
// run covers all three; EPHEMERA_FUZZ_MODE=dynamic|blocks|adaptive holds one.
enum class PoolMode : std::uint8_t { dynamic, blocks, adaptive };
const char* pool_mode_name(PoolMode mode);

inline constexpr std::size_t kMemory = 16;              // flows remembered of each kind
inline constexpr std::uint64_t kInputsPerWorld = 50000; // then a fresh world
inline constexpr std::uint16_t kMaxWorkers = 4;

// A flow as the generator remembers it: one ephemera sent (to answer it, quote it in an ICMP
// error, or hairpin to its external endpoint) or one the generator sent in (to send again).
struct Flow {
    std::uint8_t proto = 0;
    std::uint32_t src = 0;
    std::uint32_t dst = 0;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint8_t quote_len = 0;
    std::array<std::uint8_t, 64> quote{}; // the start of its IP packet (sent flows only)
};

// The last kMemory flows of one kind, newest last.
class FlowMemory {
public:
    void add(const Flow& f);
    [[nodiscard]] std::size_t size() const { return count_; }
    [[nodiscard]] const Flow& operator[](std::size_t i) const {
        return flows_[(next_ + kMemory - count_ + i) % kMemory];
    }
    void clear() { count_ = next_ = 0; }

private:
    std::array<Flow, kMemory> flows_{};
    std::size_t count_ = 0;
    std::size_t next_ = 0;
};

// Process-wide resources, made once: the EAL, the packet pool, the ports and the rings.
class Platform {
public:
    explicit Platform(std::uint16_t workers);
    ~Platform();
    Platform(const Platform&) = delete;
    Platform& operator=(const Platform&) = delete;

    std::uint16_t workers;
    MempoolPtr mbufs;
    std::unique_ptr<Ports> ports;
    std::array<std::string, 2> port_names;
    // rx[side][queue]: the harness enqueues, the worker's rte_eth_rx_burst dequeues;
    // tx[side][queue]: the worker's rte_eth_tx_burst enqueues, the harness dequeues.
    std::array<std::vector<rte_ring*>, 2> rx;
    std::array<std::vector<rte_ring*>, 2> tx;
    std::vector<rte_ring*> handoff;
    std::vector<rte_ring*> arp_events;
    int tag_offset = -1;             // the mbuf dynamic field World tags injected frames with
    std::uint64_t injected_flag = 0; // ... valid while this dynamic ol_flags bit is set
};

struct Totals {
    std::uint64_t inputs = 0;
    std::uint64_t frames_in = 0;
    std::array<std::uint64_t, 2> frames_out{};
    std::uint64_t worlds = 0;
    std::uint64_t config_changes = 0;
    std::uint64_t telemetry_requests = 0;
};
Totals& totals();

// What the harness knew of a frame it sent in, kept in its mbuf (a dynamic field) for the
// checks on what leaves. Valid only while the mbuf carries the "injected" dynamic flag, which
// every allocation clears: a buffer ephemera allocates itself (a split piece, a held SYN's
// answer, an ARP request) has no tag, whatever the field holds from earlier use.
struct Tag {
    std::uint8_t flags;
    Side side; // the port it came in by
    std::uint32_t src;
    std::uint32_t dst;
};
inline constexpr std::uint8_t kTagL4Invalid = 1; // its transport checksum was wrong
// It came from outside with a source that is ours or a subscriber's (a pool address, or an
// address seen from inside): what answers it goes there.
inline constexpr std::uint8_t kTagOddSource = 2;

// Per-subscriber limits small enough that the fuzzer reaches them; every key a runtime change
// may not touch is fixed here. The outside MTU is below the inside one, so packets get split
// or refused (DF) going out, and the large frames the generator makes exceed both.
Tag& tag_field(const Platform& platform, rte_mbuf* m);
// The tag of a frame the harness sent in, or nothing for a buffer ephemera allocated.
std::optional<Tag> tag_of(const Platform& platform, rte_mbuf* m);

class World {
public:
    World(Platform& platform, std::uint64_t incarnation);
    ~World();
    World(const World&) = delete;
    World& operator=(const World&) = delete;

    // A frame to inject at the next run(), into the RX queue of worker `queue % workers`.
    void add(Side side, unsigned queue, std::span<const std::uint8_t> frame);
    [[nodiscard]] std::size_t pending() const { return pending_.size(); }
    // Injects the pending frames, polls the workers until nothing moves, and checks what they
    // sent; with a single inside frame, also that a refused one left nothing behind.
    void run();
    void advance(Tick ticks);
    // A telemetry request through a worker's mailbox, checked; `kind` and `filter` pick it.
    void telemetry(std::uint8_t kind, std::uint8_t filter, std::uint8_t worker);
    // A runtime config change (ephemeractl set / pool add / pool remove), published as the
    // control thread does (the workers take it up within 64 iterations); `which` picks one from
    // a fixed list.
    void change_config(std::uint8_t which);
    // The state each worker holds: mappings, sessions, ownership, limits, uniqueness.
    void check_state();

    [[nodiscard]] Tick now() const { return now_; }
    [[nodiscard]] bool worn_out() const { return now_ > (Tick{1} << 31); }
    [[nodiscard]] const Config& config() const { return *current_; }
    [[nodiscard]] const MacAddr& mac(Side side) const {
        return side == Side::inside ? shared_.inside_mac : shared_.outside_mac;
    }
    [[nodiscard]] std::uint16_t workers() const { return shared_.workers; }
    [[nodiscard]] const FlowMemory& sent(Side side) const {
        return sent_[static_cast<std::size_t>(side)];
    }
    [[nodiscard]] const FlowMemory& inside_flows() const { return inside_flows_; }
    void remember_inside(const Flow& f) { inside_flows_.add(f); }

private:
    struct Pending {
        Side side;
        unsigned queue;
        Bytes frame;
    };

    void poll_round();
    void settle();
    void learn_next_hop();
    void drain(Side side);
    void check_sent(Side side, WorkerId worker, rte_mbuf* m);
    void remember_sent(Side side, std::span<const std::uint8_t> packet);
    // What a refusal may not change: the owner's refusal counters and live state.
    struct RefusalWatch {
        std::uint64_t refusals = 0;
        std::uint64_t no_room = 0;       // drop_subscribers_exhausted
        std::uint64_t at_max_blocks = 0; // drop_subscriber_blocks
        std::uint64_t no_block = 0;      // drop_blocks_exhausted
        std::uint64_t released = 0;      // mappings_released
        std::uint64_t subscribers = 0;
        std::uint64_t mappings = 0;
        std::uint64_t sessions = 0;
    };
    [[nodiscard]] RefusalWatch watch(WorkerId owner) const;
    void check_refusal(const ParsedPacket& p, WorkerId owner, const RefusalWatch& before);
    void check_mapping(WorkerId w, const MappingView& m) const;
    // Blocks mode: every mapping's port in a block its subscriber holds, each block's fill, the
    // subscribers' lists, no granule in two blocks, the counters (in dynamic mode: no block).
    void check_blocks(WorkerId w, std::span<const MappingView> mappings) const;
    void serve(Worker& w, std::uint32_t ticket);
    [[nodiscard]] std::uint64_t counter_total(Counter c) const;
    void take_config(const Config& next);
    // Compiles every worker's plan for `config` and publishes it, as the control thread does;
    // the plans replaced stay in retired_ until every worker has latched the new ones.
    void publish_plans(const Config& config);
    [[noreturn]] void violated(const std::string& what,
                               std::span<const std::uint8_t> frame = {}) const;

    Platform& platform_;
    std::uint64_t incarnation_;
    PoolMode mode_;
    Config base_; // as parsed; the workers run on config_graph()'s copies
    const Config* current_ = nullptr;
    std::size_t current_id_ = 0; // current_ in the process's config graph (world.cpp)
    WorkerShared shared_;
    std::vector<PlanCompiler> compilers_; // one per worker
    std::vector<std::unique_ptr<WorkerPlan>> retired_;
    std::vector<std::unique_ptr<Worker>> workers_;
    Tick now_ = 0;
    std::vector<Pending> pending_;
    std::array<std::uint64_t, 2> injected_{}; // by side, for the counters' totals
    std::array<std::uint64_t, 2> drained_{};

    // What the invariants compare against.
    std::unordered_set<std::uint32_t> pool_ever_;      // every pool address of any config
    std::unordered_set<std::uint32_t> inside_sources_; // every source sent in from inside
    std::unordered_set<std::uint32_t> static_hosts_;   // every static entry's inside host
    std::array<std::uint32_t, 3> most_ports_{};        // the largest per-subscriber port limit
    std::uint32_t most_blocks_ = 0;                    // the largest max_blocks
    bool pool_shrunk_ = false;                         // an address left the pool
    bool range_changed_ = false;                       // port_range or reserved changed
    mutable std::vector<MappingView> snapshot_;

    FlowMemory sent_[2];
    FlowMemory inside_flows_;
};

} // namespace ephemera::fuzz
