// ephemera-bench: cycles per packet of the translation core's established-flow path, set
// against rte_hash's own bulk lookup on a table of the same size, measured in the same run.
//
// What is measured (each a Google Benchmark; one iteration is one burst of 32 packets):
//   in2out/S            Translator::in2out on established flows (EIF world)
//   in2out_offload/S    the same for an outside port that computes the IPv4, UDP and TCP
//                       checksums: the rewrite leaves them to it, and each packet's mbuf is
//                       flagged as the worker flags it (tx_offload.hpp)
//   out2in_eif/S        Translator::out2in, endpoint-independent filtering: the direct index
//   out2in_apdf/S       Translator::out2in, address-and-port-dependent filtering: the direct
//                       index plus one session lookup per packet
//   floor_bulk_data/S   rte_hash_lookup_bulk_data, 32 keys (the floor)
//   floor_bulk/S        rte_hash_lookup_bulk, 32 keys (the call in2out makes)
//   floor_copy/S        the floor after the burst's restore copy, as the paths pay it (the
//                       summary's /copy column: the paths against a floor in the same harness)
//   flat_floor/S        the translator's own session table (FlatTable) on the floor's keys,
//                       hashed and bulk looked up as in2out does: the table without the NAT
//   restore/S           the per-burst restore copy alone (see below), to subtract
//   session_create/S    in2out over every flow of a fresh translator: the session-creation path,
//                       in cycles per new session (one iteration = one whole population)
//   expire/S            Translator::expire() on a fresh translator whose S sessions all come due,
//                       then on their held ports: cycles per expired session
//   session_create/M/S  session_create by allocation mode M (dynamic, blocks64, adaptive,
//                       deterministic; dynamic_logged and blocks64_logged with NAT event
//                       logging on; dynamic_synced with an HA standby paired), all on one
//                       config that gives blocks room
//                       (kModePoolAddresses, ports 1024-65535, subscribers from kModePrefix that
//                       worker 0 owns): the summary sets each against dynamic (docs/allocation.md)
// for S = 64K and 1M sessions, and, independent of the table size (the summary sets them
// against both floors):
//   port_alloc/P        PortAllocator allocate + release on an address filled to P percent
//                       (0, 90, 99.9): cycles per allocation
//   handoff             rte_ring SP/SC burst of 32 enqueued and dequeued, as between workers:
//                       cycles per packet
//
// Flows. Flow f belongs to subscriber f / 16 (100.64.0.0 + f / 16) and uses its own inside
// port, UDP for even f and TCP for odd f, towards a pseudo-random remote in 198.19.0.0/16. Every
// flow is therefore its own inside endpoint: one session and one mapping per flow, 1M mappings at
// 1M sessions, the realistic CGN case (the out2in direct index spans the whole mapping table,
// not a cached corner of it). The tables are full: limits give each translator exactly S
// sessions, and the floor table is created with S entries and filled with the same S keys in the
// same order, with the same flags (RTE_HASH_EXTRA_FLAGS_EXT_TABLE), hash (rte_hash_crc, seed 0)
// and key length (16).
//
// Worlds. A translator's rte_hash names derive from its worker id, so to keep four translators
// (64K/1M x EIF/APDF) alive at once, each is a different worker of a 4-worker Ownership: it owns
// a quarter of the iana port range (4096 ports per address and protocol), and the per-worker
// session share is limits.max_sessions / 4 = S. A pool of 256 addresses holds 1M mappings at
// about half of their ports (paired pooling puts a subscriber's 16 mappings on one address).
// Keeping every world alive lets the benchmarks run in any order, so run-bench.sh interleaves
// repetitions at random (the host is noisy: only ratios within one run count).
//
// Access pattern. All benchmarks of a size walk the same stream of 2^18 flows drawn uniformly
// from the populated set (a fixed seed), burst after burst, wrapping around. At 1M one pass
// touches far more table lines than the 32 MiB L3 holds, so lookups go to memory. At 64K the
// translator's working set (~9 MB, the floor's ~2.5 MB) could sit in L3, but shares it with the
// streams and with whatever else runs on the host. Memory is what the EAL was given (see Memory
// below): with 4 KiB pages (--no-huge; THP is madvise-only here) random accesses pay TLB misses
// too, the floor as much as the core; with 2 MB hugepages far fewer.
//
// Rewriting in place. Translation rewrites its frames, so each burst's frames are restored from
// pristine copies before the burst: one 2 KiB memcpy (32 frames of one cache line) into a
// working burst that the PacketRefs point at. That also stands in for the parser having just
// touched the headers, as it has in the worker. The copy is inside the timed loop (PauseTiming
// per burst would cost more than the burst) and is measured alone as restore/S in the same run;
// the summary reports gross and net (gross - restore) figures, and ratios from the net.
// The copy reads 136 bytes per packet (frame and ref) from a stream of 2^18 packets (34 MB): at
// 1M, where the lookups miss to memory too, copy and lookup together cost more than the sum of
// the two alone, so a path net of the copy alone still carries part of it. floor_copy pays the
// same copy, and the /copy column compares the paths with a floor measured the same way.
//
// Timing. rte_rdtsc() is read around the whole timed loop: cycles_per_pkt = TSC cycles /
// (iterations x 32). TSC cycles tick at a constant rate (rte_get_tsc_hz), not the core clock,
// and keep ticking while another process has the core; so cpu_cycles_per_pkt gives the thread's
// CPU time (CLOCK_THREAD_CPUTIME_ID) over the same loop, in TSC cycles. On a busy host the two
// differ by the time this process was preempted; the summary shows both, and ratios of each to
// the floor measured the same way. session_create reads both clocks around each
// Translator::in2out call only, leaving out building the frames: a burst of new sessions costs
// tens of thousands of cycles, so rdtsc is noise there; the CPU clock is a system call
// (~0.3 us), which adds some 20-50 cycles per session to its cpu figure.
//
// Checks. Every translated packet must have been forwarded (counter deltas, else the benchmark
// reports an error); during population every translated frame's IPv4 and L4 checksums are
// verified, and one burst of replies is checked to come back to its inside endpoint.
//
// Memory. A 1M translator holds four rte_hash tables of 1M entries (~190 MB of EAL heap) plus
// ~60 MB of record arrays on the C++ heap; the 1M floor table ~60 MB and its FlatTable twin
// (flat_floor) ~40 MB; the 64K ones a sixteenth of that. The EAL heap peaks at ~690 MiB
// (printed with the summary). The EAL's memory options
// come from the environment, EPHEMERA_EAL_MEMORY (space-separated; bench/run-bench.sh sets it
// through bench/hugepages.py): with hugepages `--huge-dir DIR --single-file-segments`, the heap
// growing on demand from that hugetlbfs; unset, `--no-huge -m 2048` (4 KiB pages: --no-huge maps
// -m up front but touches only what is used, so -m 2048 costs nothing and leaves room). What the
// EAL really got (hugepages or not, and the page size) is read back after rte_eal_init, printed
// and recorded in the JSON context (eal_memory, eal_memory_args, eal_memory_note).
#include "../dataplane/tx_offload.hpp"
#include "ephemera/checksum.hpp"
#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/nat_table.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/port_allocator.hpp"
#include "ephemera/translator.hpp"
#include "ephemera/types.hpp"
#include "ephemera/worker_plan.hpp"

#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_ring.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace ephemera;

constexpr std::size_t kBurst = 32;
constexpr std::size_t kStreamPackets = std::size_t{1} << 18;
constexpr std::size_t kStreamBursts = kStreamPackets / kBurst;
constexpr std::uint32_t kFlowsPerSubscriber = 16;
constexpr WorkerId kWorkers = 4;
constexpr std::uint32_t kPoolAddresses = 256;
constexpr std::uint16_t kFrameLen = 60; // minimum Ethernet frame without FCS
constexpr std::uint16_t kIpTotalLen = kFrameLen - kEthHeaderLen;
constexpr std::uint16_t kL4Len = kIpTotalLen - kIpv4MinHeaderLen;
constexpr Tick kNow = 100 * kTicksPerSecond;
constexpr std::uint64_t kStreamSeed = 0x5eed5eed5eed5eedull;
constexpr int kEalMemoryMb = 2048;

// One frame, one cache line: a restore is a copy of whole lines.
struct alignas(64) FrameLine {
    std::uint8_t bytes[64];
};
static_assert(sizeof(FrameLine) == 64 && kFrameLen <= sizeof(FrameLine));

struct SizeSpec {
    const char* name;
    std::uint32_t sessions;
};
constexpr std::array<SizeSpec, 2> kSizes = {{{"64K", 1u << 16}, {"1M", 1u << 20}}};
static_assert(kSizes[0].sessions % kBurst == 0 && kSizes[1].sessions % kBurst == 0);

constexpr std::array<FilteringMode, 2> kModes = {FilteringMode::endpoint_independent,
                                                 FilteringMode::address_port_dependent};

// Session create by allocation mode: the same population shape as session_create (16 flows
// per subscriber, subscribers in order, but worker 0's own: mode_subscribers()), on a config
// that gives every mode room. Blocks are cut from
// the ports 1024-65535 (as an operator running blocks would configure): 252 granules of 64 per
// address and worker; 512 addresses hold the 65,536 subscribers of 1M at one 64-port block
// each with half of the granules free (128 per address), so the block search and the anchor
// choice work on a half-full address as they would in service, not a nearly full one. Dynamic
// and deterministic run on the very same config, so a ratio to dynamic compares allocators only.
constexpr std::uint32_t kModePoolAddresses = 512;
constexpr PortRange kModePortRange{1024, 65535};
constexpr std::uint32_t kModeBlockSize = 64; // 16 mappings = 8 ports per protocol: one block
constexpr std::uint32_t kModeMaxBlocks = 8;
// Deterministic mode's subscriber prefix, 100.64.0.0/13. The population is worker 0's share of
// four workers, so the prefix must hold four times it: a /14 is exactly 4 x 65,536 at 1M, but
// subscriber_hash gives worker 0 only 65,520 of its addresses, 16 short, hence the /13 (worker
// 0 owns 130,853 of it; the 65,536th lies at offset 262,199, on pool address 256). Over 512
// addresses that is 1,024 subscribers per address and 63 ports each: the 8 ports per protocol
// a subscriber's 16 flows take fit.
constexpr Ipv4Addr kModePrefix{100, 64, 0, 0};
constexpr std::uint8_t kModePrefixLen = 13;

struct Allocation {
    const char* name; // in the benchmark's name: session_create/<name>/<size>
    const char* label;
    AllocationMode mode;
    bool adaptive;
    // NAT event logging on (the mode's default events, docs/logging.md): each record goes into
    // the worker's ring, which the benchmark drains between bursts outside the timing, as the
    // logging thread would on another core. Set against the same mode without: the worker's
    // cost of logging per new session.
    bool logged = false;
    // HA sync on (docs/ha.md): a standby is paired, so each new session's record goes into the
    // worker's sync ring, drained between bursts as the sync thread would. Set against dynamic:
    // the worker's cost of keeping a standby in step per new session.
    bool synced = false;
};
constexpr std::array<Allocation, 7> kAllocations = {{
    {"dynamic", "dynamic", AllocationMode::dynamic, false},
    {"blocks64", "blocks 64", AllocationMode::blocks, false},
    {"adaptive", "blocks adaptive", AllocationMode::blocks, true},
    {"deterministic", "deterministic", AllocationMode::deterministic, false},
    {"dynamic_logged", "dynamic, logged", AllocationMode::dynamic, false, true},
    {"blocks64_logged", "blocks 64, logged", AllocationMode::blocks, false, true},
    {"dynamic_synced", "dynamic, HA synced", AllocationMode::dynamic, false, false, true},
}};

constexpr MacAddr kInsidePortMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kOutsidePortMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr MacAddr kNextHopMac{{0x02, 0, 0, 0, 0, 0x03}};
constexpr MacAddr kSubscriberMac{{0x02, 0, 0, 0, 0x01, 0x00}};
constexpr L2Context kL2{kInsidePortMac, kOutsidePortMac, kNextHopMac};
constexpr L2Context kL2Offload{kInsidePortMac, kOutsidePortMac, kNextHopMac, TxChecksums::all()};

// splitmix64's finaliser: flows and the stream are pure functions of their index.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct Flow {
    Ipv4Addr inside;
    Ipv4Addr remote;
    std::uint16_t inside_port;
    std::uint16_t remote_port;
    Protocol proto;
};

Flow flow_of(std::uint32_t f) {
    static constexpr std::uint16_t kRemotePorts[] = {443, 80, 53, 123, 993, 3478, 5228, 8443};
    const std::uint32_t sub = f / kFlowsPerSubscriber;
    const std::uint32_t k = f % kFlowsPerSubscriber;
    const std::uint64_t h = mix64(f);
    Flow flow{};
    flow.inside = Ipv4Addr{Ipv4Addr{100, 64, 0, 0}.value() + sub};
    // Distinct for k < 16 (16 x 1777 < 28232): each flow is its own inside endpoint.
    flow.inside_port = static_cast<std::uint16_t>(32768 + (mix64(sub) + k * 1777) % 28232);
    flow.remote =
        Ipv4Addr{Ipv4Addr{198, 19, 0, 0}.value() | static_cast<std::uint32_t>(h & 0xffff)};
    flow.remote_port = kRemotePorts[(h >> 16) & 7];
    flow.proto = (k & 1) != 0 ? Protocol::tcp : Protocol::udp;
    return flow;
}

// The by-mode population's subscribers: the addresses of kModePrefix that worker 0 of
// kWorkers owns, in order. Deterministic mode needs them in its prefix, and its port owner is
// the subscriber's worker, so a worker is only ever given subscribers it owns; the other modes
// take the same ones so that every mode creates the very same sessions.
const std::vector<Ipv4Addr>& mode_subscribers() {
    static const std::vector<Ipv4Addr> subscribers = [] {
        const Ownership ownership(kWorkers);
        const std::uint32_t wanted = kSizes.back().sessions / kFlowsPerSubscriber;
        const std::uint64_t prefix_size = std::uint64_t{1} << (32 - kModePrefixLen);
        std::vector<Ipv4Addr> out;
        out.reserve(wanted);
        for (std::uint64_t i = 0; i < prefix_size && out.size() < wanted; ++i) {
            const Ipv4Addr a{kModePrefix.value() + static_cast<std::uint32_t>(i)};
            if (ownership.subscriber_owner(a) == 0) {
                out.push_back(a);
            }
        }
        if (out.size() < wanted) {
            throw std::runtime_error("the deterministic prefix holds too few of worker 0's "
                                     "subscribers");
        }
        return out;
    }();
    return subscribers;
}

// Flow f of the by-mode population: flow_of(f) from its subscriber in mode_subscribers().
Flow mode_flow_of(std::uint32_t f) {
    Flow flow = flow_of(f);
    flow.inside = mode_subscribers()[f / kFlowsPerSubscriber];
    return flow;
}

// The 16-byte session key, byte for byte as the translator builds it.
SessionKey session_key_of(const Flow& flow) {
    SessionKey k{};
    k.inside_addr = flow.inside.value();
    k.remote_addr = flow.remote.value();
    k.inside_port = flow.inside_port;
    k.remote_port = flow.remote_port;
    k.proto = static_cast<std::uint8_t>(flow.proto);
    return k;
}

// The flows every benchmark of one size walks, in order.
std::vector<std::uint32_t> flow_stream(std::uint32_t sessions) {
    std::vector<std::uint32_t> stream(kStreamPackets);
    for (std::size_t i = 0; i < stream.size(); ++i) {
        stream[i] = static_cast<std::uint32_t>(mix64(kStreamSeed + i) % sessions);
    }
    return stream;
}

std::uint64_t pseudo_header_sum(const std::uint8_t* ip) {
    const std::uint8_t proto_len[4] = {0, ip[ipv4_off::protocol],
                                       static_cast<std::uint8_t>(kL4Len >> 8),
                                       static_cast<std::uint8_t>(kL4Len & 0xff)};
    return checksum_partial({ip + ipv4_off::src, 8}, checksum_partial(proto_len));
}

// A 60-byte UDP or TCP (ACK) frame with correct IPv4 and L4 checksums.
void write_frame(std::uint8_t* frame, const MacAddr& dst_mac, const MacAddr& src_mac,
                 Protocol proto, Ipv4Addr src, std::uint16_t src_port, Ipv4Addr dst,
                 std::uint16_t dst_port) {
    std::memset(frame, 0, sizeof(FrameLine));
    std::memcpy(frame, dst_mac.bytes, 6);
    std::memcpy(frame + 6, src_mac.bytes, 6);
    store_be16(frame + 12, kEtherTypeIpv4);
    std::uint8_t* ip = frame + kEthHeaderLen;
    ip[0] = 0x45;
    store_be16(ip + 2, kIpTotalLen);
    ip[ipv4_off::ttl] = 64;
    ip[ipv4_off::protocol] = static_cast<std::uint8_t>(proto);
    store_be32(ip + ipv4_off::src, src.value());
    store_be32(ip + ipv4_off::dst, dst.value());
    store_wire16(ip + ipv4_off::checksum, checksum_full({ip, kIpv4MinHeaderLen}));
    std::uint8_t* l4 = ip + kIpv4MinHeaderLen;
    store_be16(l4, src_port);
    store_be16(l4 + 2, dst_port);
    if (proto == Protocol::udp) {
        store_be16(l4 + 4, kL4Len);
    } else {
        l4[12] = 5 << 4; // data offset: 20 bytes
        l4[13] = 0x10;   // ACK: an established flow
        store_be16(l4 + 14, 65535);
    }
    std::uint16_t sum = checksum_full({l4, kL4Len}, pseudo_header_sum(ip));
    if (proto == Protocol::udp && sum == 0) {
        sum = 0xffff;
    }
    store_wire16(l4 + l4_checksum_offset(proto), sum);
}

bool checksums_ok(const std::uint8_t* frame) {
    const std::uint8_t* ip = frame + kEthHeaderLen;
    const std::uint8_t* l4 = ip + kIpv4MinHeaderLen;
    return fold_checksum(checksum_partial({ip, kIpv4MinHeaderLen})) == 0xffff &&
           fold_checksum(checksum_partial({l4, kL4Len}, pseudo_header_sum(ip))) == 0xffff;
}

PacketRef parsed_ref(std::uint8_t* frame) {
    PacketRef ref;
    ref.frame = frame;
    ref.length = kFrameLen;
    ref.parsed = parse_frame({frame, kFrameLen});
    if (ref.parsed.kind != FrameKind::ipv4) {
        throw std::runtime_error("bench frame does not parse");
    }
    return ref;
}

// This thread's CPU time: unlike the TSC it stops while another process has the core.
std::uint64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

double ns_to_tsc(double ns) {
    return ns * static_cast<double>(rte_get_tsc_hz()) / 1e9;
}

std::size_t heap_in_use() {
    rte_malloc_socket_stats stats{};
    std::size_t total = 0;
    for (unsigned socket = 0; socket < RTE_MAX_NUMA_NODES; ++socket) {
        if (rte_malloc_get_socket_stats(static_cast<int>(socket), &stats) == 0) {
            total += stats.heap_allocsz_bytes;
        }
    }
    return total;
}

std::size_t g_heap_peak = 0;

// The EAL's memory, for the summary and the JSON context.
struct EalMemory {
    std::string label; // what the EAL runs on: "hugepages 2 MB" or "4 KiB pages (--no-huge)"
    std::string args;  // the memory options it was given
    std::string note;  // why not hugepages, when bench/hugepages.py fell back
};
EalMemory g_memory;
void note_heap() {
    g_heap_peak = std::max(g_heap_peak, heap_in_use());
}

// Pre-built bursts of one direction: pristine frames, and PacketRefs (parsed from them) whose
// frame pointers lead into the owning world's working burst.
struct Stream {
    std::vector<FrameLine> pristine;
    std::vector<PacketRef> refs;

    [[nodiscard]] std::span<PacketRef> burst(std::size_t b) {
        return {refs.data() + b * kBurst, kBurst};
    }
};

// One translator populated with every flow of a size, and its two streams.
class World {
public:
    // `streams`: also build the two walk streams (the expiry benchmark's worlds need none).
    // `allocation`: the by-mode config (kModePoolAddresses, kModePortRange, the mode's blocks);
    // without one, the config every other benchmark shares.
    World(const SizeSpec& size, FilteringMode mode, WorkerId worker, bool streams = true,
          const Allocation* allocation = nullptr) {
        Config config;
        const std::uint32_t addresses = allocation ? kModePoolAddresses : kPoolAddresses;
        for (std::uint32_t i = 0; i < addresses; ++i) {
            config.pool.emplace_back(Ipv4Addr{198, 18, 0, 0}.value() + i);
        }
        config.port_range = PortRange{49152, 65535};
        config.port_range_name = "iana";
        if (allocation != nullptr) {
            config.port_range = kModePortRange;
            config.port_range_name = "1024-65535";
            config.allocation = allocation->mode;
            config.blocks.block_size = kModeBlockSize;
            config.blocks.max_blocks = kModeMaxBlocks;
            config.blocks.adaptive = allocation->adaptive;
            config.blocks.min_block_size = kModeBlockSize;
            config.deterministic.prefix = kModePrefix;
            config.deterministic.prefix_len = kModePrefixLen;
            config.deterministic.min_ports = kFlowsPerSubscriber;
            flow_of_ = mode_flow_of;
            if (allocation->logged) {
                enable_logging(config);
            }
        }
        config.filtering = mode;
        config.limits.max_sessions = size.sessions * kWorkers; // each worker's share is S
        const Ownership ownership = Ownership::for_config(config, kWorkers);
        compiler_ = std::make_unique<PlanCompiler>(ownership, worker);
        plan_ = compiler_->compile(std::make_shared<const Config>(config), nullptr);
        translator_ = std::make_unique<Translator>(
            *plan_, ownership, worker, SipKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull},
            counters);
        if (events_ != nullptr) {
            translator_->attach_event_ring(events_);
            translator_->set_time_ms(1);
        }
        if (allocation != nullptr && allocation->synced) {
            sync_ = make_warm_ring("bench_sync_", sizeof(SyncRecord));
            translator_->attach_sync_ring(sync_);
            translator_->set_sync_streaming(true);
        }
        populate(size.sessions);
        if (streams) {
            build_streams(size.sessions);
        }
        ext_addr_ = {};
        ext_port_ = {};
        note_heap();
    }

    ~World() {
        rte_ring_free(events_);
        rte_ring_free(sync_);
    }
    World(const World&) = delete;
    World& operator=(const World&) = delete;

    // TSC cycles spent in Translator::in2out while creating every session.
    [[nodiscard]] std::uint64_t create_cycles() const { return create_cycles_; }
    [[nodiscard]] std::uint64_t create_cpu_ns() const { return create_cpu_ns_; }
    // The same for the sessions created while the table was at most three quarters full.
    [[nodiscard]] std::uint64_t create_cycles_to75() const { return create_cycles_to75_; }
    [[nodiscard]] std::uint64_t create_cpu_ns_to75() const { return create_cpu_ns_to75_; }
    Translator& translator() { return *translator_; }

    // Puts a burst where the worker has it when translation begins: its 32 frames in the burst
    // buffers (rx) and their parsed refs in a 32-entry array (classify writes them there, so
    // they are in cache). Translation reads the refs from that array, not from the stream's
    // 18 MB of them, whose lines the worker never fetches from memory. Both copies are the
    // "restore" cost, measured alone and subtracted (the net columns).
    std::span<PacketRef> restore(const Stream& stream, std::size_t burst) {
        std::memcpy(work_, stream.pristine.data() + burst * kBurst, sizeof work_);
        std::copy_n(stream.refs.begin() + static_cast<std::ptrdiff_t>(burst * kBurst), kBurst,
                    work_refs_.begin());
        return work_refs_;
    }

    CounterBlock counters;
    Stream in2out_stream;
    Stream out2in_stream;

private:
    void enable_logging(Config& config) {
        const auto bit = [](NatEventKind k) { return 1u << static_cast<unsigned>(k); };
        config.logging.archive.path = "bench"; // a sink is on; nothing here writes files
        config.logging.events =
            config.allocation == AllocationMode::blocks
                ? bit(NatEventKind::block_allocated) | bit(NatEventKind::block_released)
                : bit(NatEventKind::mapping_created) | bit(NatEventKind::mapping_deleted);
        config.logging.events |= bit(NatEventKind::threshold_reached) |
                                 bit(NatEventKind::ports_exhausted) |
                                 bit(NatEventKind::quota_exceeded);
        events_ = make_warm_ring("bench_events_", sizeof(NatEvent));
    }
    // A ring of 64K records of `size` bytes. A running NAT's ring has gone round many times:
    // its memory is mapped and cached as far as the consumer's pace allows. One full turn
    // first, so that the measurement is not of first-touch page faults and misses a
    // long-running worker never sees.
    static rte_ring* make_warm_ring(const char* prefix, unsigned size) {
        static int rings = 0;
        const std::string name = prefix + std::to_string(rings++);
        rte_ring* ring =
            rte_ring_create_elem(name.c_str(), size, kRingRecords,
                                 static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (ring == nullptr) {
            throw std::runtime_error("cannot create " + name);
        }
        std::vector<std::uint8_t> batch(std::size_t{size} * kBurst * 2);
        for (unsigned done = 0; done < kRingRecords; done += kBurst * 2) {
            rte_ring_sp_enqueue_burst_elem(ring, batch.data(), size, kBurst * 2, nullptr);
            drain(ring, size);
        }
        return ring;
    }
    // What the logging thread (and the sync thread) do on their own core: take every record
    // out (untimed).
    static void drain(rte_ring* ring, unsigned size) {
        if (ring == nullptr) {
            return;
        }
        std::uint8_t batch[std::max(sizeof(SyncRecord), sizeof(NatEvent)) * kBurst * 2];
        while (rte_ring_sc_dequeue_burst_elem(ring, batch, size, kBurst * 2, nullptr) != 0) {
        }
    }
    void drain_events() {
        drain(events_, sizeof(NatEvent));
        drain(sync_, sizeof(SyncRecord));
    }

    void populate(std::uint32_t sessions) {
        ext_addr_.resize(sessions);
        ext_port_.resize(sessions);
        std::array<PacketRef, kBurst> refs{};
        std::array<Verdict, kBurst> verdicts{};
        for (std::uint32_t base = 0; base < sessions; base += kBurst) {
            for (std::uint32_t i = 0; i < kBurst; ++i) {
                const Flow flow = flow_of_(base + i);
                write_frame(work_[i].bytes, kInsidePortMac, kSubscriberMac, flow.proto, flow.inside,
                            flow.inside_port, flow.remote, flow.remote_port);
                refs[i] = parsed_ref(work_[i].bytes);
            }
            const std::uint64_t cpu_start = thread_cpu_ns();
            const std::uint64_t start = rte_rdtsc();
            translator_->in2out(refs, kNow, kL2, verdicts);
            const std::uint64_t cycles = rte_rdtsc() - start;
            const std::uint64_t cpu_ns = thread_cpu_ns() - cpu_start;
            create_cycles_ += cycles;
            create_cpu_ns_ += cpu_ns;
            drain_events();
            if (base < sessions / 4 * 3) {
                create_cycles_to75_ += cycles;
                create_cpu_ns_to75_ += cpu_ns;
            }
            for (std::uint32_t i = 0; i < kBurst; ++i) {
                const std::uint8_t* ip = work_[i].bytes + kEthHeaderLen;
                if (verdicts[i] != Verdict::forward) {
                    throw std::runtime_error("session creation dropped flow " +
                                             std::to_string(base + i));
                }
                if (!checksums_ok(work_[i].bytes)) {
                    throw std::runtime_error("in2out left a bad checksum on flow " +
                                             std::to_string(base + i));
                }
                ext_addr_[base + i] = load_be32(ip + ipv4_off::src);
                ext_port_[base + i] = load_be16(ip + kIpv4MinHeaderLen);
            }
        }
        if (translator_->live_sessions() != sessions) {
            throw std::runtime_error("populated " + std::to_string(translator_->live_sessions()) +
                                     " sessions, wanted " + std::to_string(sessions));
        }
    }

    void build_streams(std::uint32_t sessions) {
        const std::vector<std::uint32_t> flows = flow_stream(sessions);
        in2out_stream.pristine.resize(flows.size());
        in2out_stream.refs.resize(flows.size());
        out2in_stream.pristine.resize(flows.size());
        out2in_stream.refs.resize(flows.size());
        for (std::size_t i = 0; i < flows.size(); ++i) {
            const std::uint32_t f = flows[i];
            const Flow flow = flow_of_(f);
            std::uint8_t* in = in2out_stream.pristine[i].bytes;
            write_frame(in, kInsidePortMac, kSubscriberMac, flow.proto, flow.inside,
                        flow.inside_port, flow.remote, flow.remote_port);
            in2out_stream.refs[i] = parsed_ref(in);
            in2out_stream.refs[i].frame = work_[i % kBurst].bytes;
            std::uint8_t* out = out2in_stream.pristine[i].bytes;
            write_frame(out, kOutsidePortMac, kNextHopMac, flow.proto, flow.remote,
                        flow.remote_port, Ipv4Addr{ext_addr_[f]}, ext_port_[f]);
            out2in_stream.refs[i] = parsed_ref(out);
            out2in_stream.refs[i].frame = work_[i % kBurst].bytes;
        }
        check_first_burst(flows);
    }

    // Replies must come back to the inside endpoint, and established flows must keep theirs.
    void check_first_burst(const std::vector<std::uint32_t>& flows) {
        std::array<Verdict, kBurst> verdicts{};
        translator_->out2in(restore(out2in_stream, 0), kNow, kL2, verdicts);
        for (std::size_t i = 0; i < kBurst; ++i) {
            const Flow flow = flow_of_(flows[i]);
            const std::uint8_t* ip = work_[i].bytes + kEthHeaderLen;
            if (verdicts[i] != Verdict::forward || !checksums_ok(work_[i].bytes) ||
                load_be32(ip + ipv4_off::dst) != flow.inside.value() ||
                load_be16(ip + kIpv4MinHeaderLen + 2) != flow.inside_port) {
                throw std::runtime_error("out2in did not restore flow " + std::to_string(flows[i]));
            }
        }
        const std::uint32_t live = translator_->live_sessions();
        translator_->in2out(restore(in2out_stream, 0), kNow, kL2, verdicts);
        if (std::count(verdicts.begin(), verdicts.end(), Verdict::forward) != kBurst ||
            translator_->live_sessions() != live) {
            throw std::runtime_error("in2out on established flows did not hit");
        }
    }

    Flow (*flow_of_)(std::uint32_t) = flow_of;
    rte_ring* events_ = nullptr; // NAT event records, when the allocation logs
    rte_ring* sync_ = nullptr;   // HA sync records, when the allocation is synced
    static constexpr unsigned kRingRecords = 1u << 16;
    std::unique_ptr<PlanCompiler> compiler_;
    std::unique_ptr<WorkerPlan> plan_;
    std::unique_ptr<Translator> translator_;
    std::uint64_t create_cycles_ = 0;
    std::uint64_t create_cpu_ns_ = 0;
    std::uint64_t create_cycles_to75_ = 0;
    std::uint64_t create_cpu_ns_to75_ = 0;
    std::vector<std::uint32_t> ext_addr_; // per flow, only while building
    std::vector<std::uint16_t> ext_port_;
    FrameLine work_[kBurst]{};
    std::array<PacketRef, kBurst> work_refs_{};
};

// The floor: a bare rte_hash like NatTables' session table, holding the same keys.
class Floor {
public:
    explicit Floor(const SizeSpec& size) : flat_(size.sessions, SOCKET_ID_ANY) {
        const std::string name = std::string("bench_floor_") + size.name;
        rte_hash_parameters params{};
        params.name = name.c_str();
        params.entries = std::max<std::uint32_t>(size.sessions, 64); // as HashTable does
        params.key_len = sizeof(SessionKey);
        params.hash_func = rte_hash_crc;
        params.hash_func_init_val = 0;
        params.socket_id = SOCKET_ID_ANY;
        params.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
        hash_ = rte_hash_create(&params);
        if (hash_ == nullptr) {
            throw std::runtime_error("cannot create " + name + ": " + rte_strerror(rte_errno));
        }
        for (std::uint32_t f = 0; f < size.sessions; ++f) {
            const SessionKey key = session_key_of(flow_of(f));
            if (rte_hash_add_key_data(hash_, &key, reinterpret_cast<void*>(std::uintptr_t{f})) !=
                0) {
                throw std::runtime_error("cannot fill " + name);
            }
        }
        for (std::uint32_t f = 0; f < size.sessions; ++f) {
            const std::int32_t pos = flat_.add(session_key_of(flow_of(f)));
            if (pos < 0) {
                throw std::runtime_error("cannot fill the flat table of " + name);
            }
            flat_.value(static_cast<std::uint32_t>(pos)).mapping = f;
        }
        const std::vector<std::uint32_t> flows = flow_stream(size.sessions);
        keys_.resize(flows.size());
        key_ptrs_.resize(flows.size());
        for (std::size_t i = 0; i < flows.size(); ++i) {
            keys_[i] = session_key_of(flow_of(flows[i]));
            key_ptrs_[i] = &keys_[i];
        }
        note_heap();
    }
    ~Floor() { rte_hash_free(hash_); }
    Floor(const Floor&) = delete;
    Floor& operator=(const Floor&) = delete;

    [[nodiscard]] const rte_hash* hash() const { return hash_; }
    [[nodiscard]] const void** keys(std::size_t burst) { return key_ptrs_.data() + burst * kBurst; }
    [[nodiscard]] const SessionKey* key_array(std::size_t burst) const {
        return keys_.data() + burst * kBurst;
    }
    [[nodiscard]] SessionTable& flat() { return flat_; }

private:
    rte_hash* hash_ = nullptr;
    SessionTable flat_; // the translator's session table type, same capacity and keys
    std::vector<SessionKey> keys_;
    std::vector<const void*> key_ptrs_;
};

// Worlds and floors, built on first use and kept: benchmarks may run in any order.
struct Registry {
    std::array<std::unique_ptr<World>, kSizes.size() * kModes.size()> worlds;
    std::array<std::unique_ptr<Floor>, kSizes.size()> floors;
    std::array<std::unique_ptr<World>, kSizes.size()> scratch; // for expiry: emptied by use
    std::array<std::unique_ptr<World>, kSizes.size()> by_mode; // session create by allocation

    static std::size_t world_index(std::size_t size, std::size_t mode) {
        return size * kModes.size() + mode;
    }
    World& world(std::size_t size, std::size_t mode) {
        auto& w = worlds[world_index(size, mode)];
        if (!w) {
            rebuild(size, mode);
        }
        return *w;
    }
    World& rebuild(std::size_t size, std::size_t mode) {
        auto& w = worlds[world_index(size, mode)];
        w.reset(); // frees the rte_hash names before the new translator takes them
        w = std::make_unique<World>(kSizes[size], kModes[mode],
                                    static_cast<WorkerId>(world_index(size, mode)));
        return *w;
    }
    // A fresh EIF world without streams, replacing the last one of this size.
    World& fresh_scratch(std::size_t size) {
        auto& w = scratch[size];
        w.reset();
        w = std::make_unique<World>(kSizes[size], kModes[0], WorkerId{0}, false);
        return *w;
    }
    // A fresh world of the by-mode config, replacing the last one of this size.
    World& fresh_by_mode(std::size_t size, const Allocation& allocation) {
        auto& w = by_mode[size];
        w.reset();
        w = std::make_unique<World>(kSizes[size], kModes[0], WorkerId{0}, false, &allocation);
        return *w;
    }
    Floor& floor(std::size_t size) {
        auto& f = floors[size];
        if (!f) {
            f = std::make_unique<Floor>(kSizes[size]);
        }
        return *f;
    }
    void clear() {
        worlds = {};
        floors = {};
        scratch = {};
        by_mode = {};
    }
};

Registry& registry() {
    static Registry r;
    return r;
}

void set_cycle_counters(benchmark::State& state, std::uint64_t tsc, std::uint64_t cpu_ns,
                        std::int64_t items) {
    state.SetItemsProcessed(items);
    const auto n = static_cast<double>(items);
    state.counters["cycles_per_pkt"] = static_cast<double>(tsc) / n;
    state.counters["cpu_cycles_per_pkt"] = ns_to_tsc(static_cast<double>(cpu_ns)) / n;
}

// The timed loop: one burst per iteration, the TSC (and the thread's CPU time) read around the
// whole loop.
template <class Step>
void run_bursts(benchmark::State& state, Step&& step) {
    std::size_t burst = 0;
    const std::uint64_t cpu_start = thread_cpu_ns();
    const std::uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        step(burst);
        burst = burst + 1 == kStreamBursts ? 0 : burst + 1;
    }
    const std::uint64_t cycles = rte_rdtsc() - start;
    const std::uint64_t cpu_ns = thread_cpu_ns() - cpu_start;
    set_cycle_counters(state, cycles, cpu_ns,
                       static_cast<std::int64_t>(state.iterations()) * std::int64_t{kBurst});
}

void check_all(benchmark::State& state, std::uint64_t done) {
    if (done != state.iterations() * kBurst) {
        state.SkipWithError("some packets were not translated");
    }
}

template <class Fn>
bool guarded(benchmark::State& state, Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
        return false;
    }
}

void bm_in2out(benchmark::State& state, std::size_t size) {
    World* w = nullptr;
    if (!guarded(state, [&] { w = &registry().world(size, 0); })) {
        return;
    }
    std::array<Verdict, kBurst> verdicts{};
    const std::uint64_t before = w->counters.get(Counter::in2out_translated);
    run_bursts(state, [&](std::size_t b) {
        w->translator().in2out(w->restore(w->in2out_stream, b), kNow, kL2, verdicts);
    });
    check_all(state, w->counters.get(Counter::in2out_translated) - before);
}

// The flagging is inside the loop because it is work the software path does not do, on a line
// of the mbuf (tx_offload) that the rewrite does not otherwise touch; the 32 mbufs stay in
// cache, as a burst's do in the worker.
void bm_in2out_offload(benchmark::State& state, std::size_t size) {
    World* w = nullptr;
    if (!guarded(state, [&] { w = &registry().world(size, 0); })) {
        return;
    }
    std::array<Verdict, kBurst> verdicts{};
    alignas(RTE_CACHE_LINE_SIZE) rte_mbuf mbufs[kBurst];
    std::memset(static_cast<void*>(mbufs), 0, sizeof mbufs);
    const std::uint64_t before = w->counters.get(Counter::in2out_translated);
    run_bursts(state, [&](std::size_t b) {
        const std::span<PacketRef> burst = w->restore(w->in2out_stream, b);
        w->translator().in2out(burst, kNow, kL2Offload, verdicts);
        for (std::size_t i = 0; i < kBurst; ++i) {
            if (burst[i].tx_checksums.any()) {
                leave_checksums_to_port(&mbufs[i], burst[i].parsed, burst[i].tx_checksums);
            }
        }
    });
    check_all(state, w->counters.get(Counter::in2out_translated) - before);
    if ((mbufs[0].ol_flags & RTE_MBUF_F_TX_IP_CKSUM) == 0) {
        state.SkipWithError("in2out left no checksum to the port");
    }
}

void bm_out2in(benchmark::State& state, std::size_t size, std::size_t mode) {
    World* w = nullptr;
    if (!guarded(state, [&] { w = &registry().world(size, mode); })) {
        return;
    }
    std::array<Verdict, kBurst> verdicts{};
    const std::uint64_t before = w->counters.get(Counter::out2in_translated);
    run_bursts(state, [&](std::size_t b) {
        w->translator().out2in(w->restore(w->out2in_stream, b), kNow, kL2, verdicts);
    });
    check_all(state, w->counters.get(Counter::out2in_translated) - before);
}

void bm_restore(benchmark::State& state, std::size_t size) {
    World* w = nullptr;
    if (!guarded(state, [&] { w = &registry().world(size, 0); })) {
        return;
    }
    run_bursts(state, [&](std::size_t b) {
        w->restore(w->in2out_stream, b);
        benchmark::ClobberMemory(); // the copy's stores must happen
    });
}

// The floor, alone or (`after_copy`) as the translate paths are measured: each burst's frames
// restored from the in2out stream first, as bm_in2out does, and the copy subtracted the same
// way (floor_copy). The copy streams 136 bytes per packet from a stream far larger than the
// caches; next to a lookup that misses to memory too, the two cost more together than apart
// (docs/performance.md, "The floor after the copy"), which figures net of the copy measured
// alone charge to the path, not to the bench.
void bm_floor_bulk_data(benchmark::State& state, std::size_t size, bool after_copy) {
    Floor* f = nullptr;
    World* w = nullptr;
    if (!guarded(state, [&] {
            f = &registry().floor(size);
            w = after_copy ? &registry().world(size, 0) : nullptr;
        })) {
        return;
    }
    std::array<void*, kBurst> data{};
    std::uint64_t all_hit = ~0ull;
    run_bursts(state, [&](std::size_t b) {
        if (w != nullptr) {
            w->restore(w->in2out_stream, b);
            benchmark::ClobberMemory(); // the copy's stores must happen
        }
        std::uint64_t hits = 0;
        rte_hash_lookup_bulk_data(f->hash(), f->keys(b), kBurst, &hits, data.data());
        all_hit &= hits;
    });
    if ((all_hit & 0xffffffffull) != 0xffffffffull) {
        state.SkipWithError("floor lookup missed");
    }
}

void bm_floor_bulk(benchmark::State& state, std::size_t size) {
    Floor* f = nullptr;
    if (!guarded(state, [&] { f = &registry().floor(size); })) {
        return;
    }
    std::array<std::int32_t, kBurst> positions{};
    std::int32_t lowest = 0;
    run_bursts(state, [&](std::size_t b) {
        rte_hash_lookup_bulk(f->hash(), f->keys(b), kBurst, positions.data());
        lowest = std::min(lowest, *std::min_element(positions.begin(), positions.end()));
    });
    if (lowest < 0) {
        state.SkipWithError("floor lookup missed");
    }
}

// The translator's own table (FlatTable) on the floor's keys, looked up as in2out does:
// each key copied into the burst's key array and hashed as it goes, its bucket asked for,
// then the bulk lookup, a read and a refresh of each record. What the table costs, apart from
// the translation around it.
void bm_flat_floor(benchmark::State& state, std::size_t size) {
    Floor* f = nullptr;
    if (!guarded(state, [&] { f = &registry().floor(size); })) {
        return;
    }
    SessionTable& table = f->flat();
    const auto prefetch_bucket = table.bucket_prefetch();
    std::array<SessionKey, kBurst> keys{};
    std::array<std::uint32_t, kBurst> hashes{};
    std::array<std::int32_t, kBurst> positions{};
    std::uint32_t checksum = 0;
    std::int32_t lowest = 0;
    run_bursts(state, [&](std::size_t b) {
        const SessionKey* in = f->key_array(b);
        for (std::size_t i = 0; i < kBurst; ++i) {
            hashes[i] = SessionTable::put(keys[i], in[i]);
            prefetch_bucket(hashes[i]);
        }
        table.lookup_bulk(keys.data(), hashes.data(), kBurst, positions.data());
        for (std::size_t i = 0; i < kBurst; ++i) {
            lowest = std::min(lowest, positions[i]);
            Session& session = table.value(static_cast<std::uint32_t>(std::max(positions[i], 0)));
            checksum += session.mapping;
            session.last_seen = static_cast<Tick>(b); // the refresh every hit stores
        }
    });
    benchmark::DoNotOptimize(checksum);
    if (lowest < 0) {
        state.SkipWithError("flat table lookup missed");
    }
}

constexpr const char* kTscCounterTo75 = "cycles_per_pkt_to75";
constexpr const char* kCpuCounterTo75 = "cpu_cycles_per_pkt_to75";

// One iteration = a fresh translator populated with every flow of the size. Besides the
// whole population, the counters _to75 cover the sessions created while the tables were at
// most three quarters full: rte_hash sizes its buckets to the entry count, so the last quarter
// is where inserts start moving entries along cuckoo paths.
template <class Fresh>
void measure_create(benchmark::State& state, std::size_t size, Fresh&& fresh) {
    std::uint64_t cycles = 0;
    std::uint64_t cpu_ns = 0;
    std::uint64_t cycles_to75 = 0;
    std::uint64_t cpu_ns_to75 = 0;
    for (auto _ : state) {
        World* w = nullptr;
        if (!guarded(state, [&] { w = &fresh(); })) {
            break;
        }
        cycles += w->create_cycles();
        cpu_ns += w->create_cpu_ns();
        cycles_to75 += w->create_cycles_to75();
        cpu_ns_to75 += w->create_cpu_ns_to75();
        state.SetIterationTime(static_cast<double>(w->create_cycles()) /
                               static_cast<double>(rte_get_tsc_hz()));
    }
    set_cycle_counters(state, cycles, cpu_ns,
                       static_cast<std::int64_t>(state.iterations()) * kSizes[size].sessions);
    const auto to75 = static_cast<double>(state.iterations()) *
                      static_cast<double>(kSizes[size].sessions / 4 * 3);
    state.counters[kTscCounterTo75] = static_cast<double>(cycles_to75) / to75;
    state.counters[kCpuCounterTo75] = ns_to_tsc(static_cast<double>(cpu_ns_to75)) / to75;
}

void bm_session_create(benchmark::State& state, std::size_t size) {
    measure_create(state, size, [&]() -> World& { return registry().rebuild(size, 0); });
}

// The same population on the by-mode config (kAllocations). Besides cycles: blocks opened per
// subscriber and the share of mappings that kept their inside port, to show what each mode
// did. The world is dropped afterwards: nothing else uses it, and a 1M one holds ~0.5 GB.
void bm_session_create_by_mode(benchmark::State& state, std::size_t size, std::size_t alloc) {
    World* last = nullptr;
    measure_create(state, size, [&]() -> World& {
        last = &registry().fresh_by_mode(size, kAllocations[alloc]);
        return *last;
    });
    if (last != nullptr) {
        const double subscribers = kSizes[size].sessions / double{kFlowsPerSubscriber};
        const double mappings = last->counters.get(Counter::mappings_created);
        state.counters["blocks_per_sub"] =
            static_cast<double>(last->counters.get(Counter::blocks_opened)) / subscribers;
        state.counters["preserved"] =
            static_cast<double>(last->counters.get(Counter::port_preserved)) / mappings;
        if (kAllocations[alloc].synced) {
            state.counters["sync_records_per_session"] =
                static_cast<double>(last->counters.get(Counter::ha_records_sent)) /
                (subscribers * kFlowsPerSubscriber);
            state.counters["sync_records_dropped"] =
                static_cast<double>(last->counters.get(Counter::ha_records_dropped));
        }
        if (kAllocations[alloc].logged) {
            state.counters["records_per_session"] =
                static_cast<double>(last->counters.get(Counter::log_records)) /
                (subscribers * kFlowsPerSubscriber);
            state.counters["records_dropped"] =
                static_cast<double>(last->counters.get(Counter::log_records_dropped));
        }
    }
    registry().by_mode[size].reset();
}

// Expiry: one iteration = a fresh world of every flow of the size, all of whose sessions then
// come due at once; timed are the expire() calls that age them out (session, mapping, the
// port into hold-down, the subscriber after its last mapping) and then those that return the
// held ports once their hold-down is over. Cycles per expired session.
void bm_expire(benchmark::State& state, std::size_t size) {
    const std::uint32_t sessions = kSizes[size].sessions;
    const Tick sessions_due = kNow + Config{}.timeouts.udp * kTicksPerSecond + 1;
    const Tick ports_due = sessions_due + Config{}.timeouts.port_hold_down * kTicksPerSecond + 1;
    std::uint64_t cycles = 0;
    std::uint64_t cpu_ns = 0;
    for (auto _ : state) {
        World* w = nullptr;
        if (!guarded(state, [&] { w = &registry().fresh_scratch(size); })) {
            break;
        }
        Translator& t = w->translator();
        t.expire(kNow); // the wheel's cursor to the present: nothing is due yet
        const std::uint64_t returned_before = w->counters.get(Counter::ports_returned);
        const std::uint64_t cpu_start = thread_cpu_ns();
        const std::uint64_t start = rte_rdtsc();
        while (t.expire(sessions_due) != 0) {
        }
        while (t.expire(ports_due) != 0) {
        }
        const std::uint64_t spent = rte_rdtsc() - start;
        cycles += spent;
        cpu_ns += thread_cpu_ns() - cpu_start;
        state.SetIterationTime(static_cast<double>(spent) / static_cast<double>(rte_get_tsc_hz()));
        if (t.live_sessions() != 0 || t.live_mappings() != 0 || t.ports_held() != 0 ||
            w->counters.get(Counter::ports_returned) - returned_before != sessions) {
            state.SkipWithError("expiry left sessions, mappings or held ports behind");
            break;
        }
    }
    set_cycle_counters(state, cycles, cpu_ns,
                       static_cast<std::int64_t>(state.iterations()) * sessions);
}

// Port allocation on one (pool address, protocol) of worker 0 of 4, full user range (16,128
// ports of the worker's), filled to `per_mille` of them by ordinary allocations. One iteration
// = 32 x (allocate for a new inside endpoint, release that port), so the occupancy stays put.
// Requests come from random subscribers and random inside ports (a quarter of which this
// worker owns: at low occupancy those are kept, RFC 4787 REQ-3a; the rest take the RFC 6056
// Algorithm 4 search over the bitmap). Each subscriber's port key is computed beforehand, as
// its record keeps it; session_create pays the SipHash once per new subscriber.
class PortFill {
public:
    explicit PortFill(std::uint32_t per_mille)
        : allocator_(Ownership(kWorkers), 0, PortRange{1024, 65535}, {}, 1,
                     SipKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}) {
        requests_.resize(kRequests);
        port_keys_.resize(kRequests);
        for (std::size_t i = 0; i < kRequests; ++i) {
            const std::uint64_t h = mix64(0xa110c ^ (i * 0x9e3779b9ull));
            PortRequest& r = requests_[i];
            r.inside = Ipv4Addr{Ipv4Addr{100, 64, 0, 0}.value() +
                                static_cast<std::uint32_t>(h & 0x3fffff)};
            r.inside_port = static_cast<std::uint16_t>(1024 + (h >> 32) % (65536 - 1024));
            r.proto = Protocol::udp;
            r.pool_index = 0;
            r.pool_address = Ipv4Addr{198, 18, 0, 1};
            port_keys_[i] = allocator_.port_key(r.inside, r.pool_address);
        }
        const std::uint32_t usable = allocator_.usable_ports();
        const std::uint32_t target = static_cast<std::uint32_t>(
            std::llround(static_cast<double>(usable) * per_mille / 1000.0));
        for (std::size_t i = 0; usable - allocator_.free_ports(0, Protocol::udp) < target; ++i) {
            PortRequest r = requests_[i % kRequests];
            r.inside = Ipv4Addr{r.inside.value() ^ static_cast<std::uint32_t>(i / kRequests) << 22};
            if (!allocator_.allocate(r)) {
                throw std::runtime_error("port fill ran out of ports");
            }
        }
        occupancy_ = 1.0 - static_cast<double>(allocator_.free_ports(0, Protocol::udp)) / usable;
    }
    // Allocate and release for request i; false when no port was found.
    bool cycle(std::size_t i) {
        const PortRequest& r = requests_[i & (kRequests - 1)];
        const auto grant = allocator_.allocate(r, port_keys_[i & (kRequests - 1)]);
        if (!grant) {
            return false;
        }
        allocator_.release(0, Protocol::udp, grant->port);
        return true;
    }
    [[nodiscard]] double occupancy() const { return occupancy_; }

private:
    static constexpr std::size_t kRequests = std::size_t{1} << 16;
    PortAllocator allocator_;
    std::vector<PortRequest> requests_;
    std::vector<std::uint64_t> port_keys_; // as each subscriber's record keeps it
    double occupancy_ = 0;
};

constexpr std::array<std::uint32_t, 3> kOccupancies = {0, 900, 999}; // per mille

void bm_port_alloc(benchmark::State& state, std::uint32_t per_mille) {
    std::unique_ptr<PortFill> fill;
    if (!guarded(state, [&] { fill = std::make_unique<PortFill>(per_mille); })) {
        return;
    }
    std::size_t next = 0;
    bool all_found = true;
    run_bursts(state, [&](std::size_t) {
        for (std::size_t i = 0; i < kBurst; ++i) {
            all_found &= fill->cycle(next++);
        }
    });
    state.counters["occupancy"] = fill->occupancy();
    if (!all_found) {
        state.SkipWithError("an allocation found no port");
    }
}

// Handoff: the ring between two workers as dataplane/worker.cpp uses it (single producer,
// single consumer, 2048 deep, bursts of 32 mbuf pointers): one iteration = one burst enqueued
// and dequeued, cycles per packet for the pair. One thread does both sides, so the cache line
// transfers between two cores (the ring's head/tail and slots) are not in the figure.
// Packets from outside to port forwards: each of kStaticForwards UDP forwards (ports 10000 up on
// one pool address, each to its own inside host) has kStaticRemotes remotes with a session
// already. A forward's port is in no out2in index entry, so each packet misses the index and
// the slow path finds its mapping through the static table and the mapping table
// (static_path.cpp): the figure to set against out2in_eif.
constexpr std::uint32_t kStaticForwards = 1024;
constexpr std::uint32_t kStaticRemotes = 16;

class StaticWorld {
public:
    StaticWorld() {
        Config config;
        config.pool = {kStaticPool};
        config.port_range = PortRange{49152, 65535};
        config.limits.max_sessions = kStaticForwards * kStaticRemotes * 2;
        for (std::uint32_t f = 0; f < kStaticForwards; ++f) {
            StaticMapping m;
            m.proto = Protocol::udp;
            m.external = kStaticPool;
            m.external_port = static_cast<std::uint16_t>(10000 + f);
            m.inside = host(f);
            m.inside_port = 53;
            config.statics.push_back(m);
        }
        const Ownership ownership = Ownership::for_config(config, 1);
        compiler_ = std::make_unique<PlanCompiler>(ownership, 0);
        plan_ = compiler_->compile(std::make_shared<const Config>(config), nullptr);
        translator_ = std::make_unique<Translator>(
            *plan_, ownership, 0, SipKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}, counters);
        for (std::uint32_t f = 0; f < kStaticForwards; ++f) {
            translator_->learn_neighbor(host(f), kSubscriberMac, kNow);
        }
        stream_.pristine.resize(kStreamPackets);
        stream_.refs.resize(kStreamPackets);
        for (std::size_t i = 0; i < kStreamPackets; ++i) {
            const std::uint64_t r = mix64(kStreamSeed + i) % (kStaticForwards * kStaticRemotes);
            const auto f = static_cast<std::uint32_t>(r / kStaticRemotes);
            std::uint8_t* frame = stream_.pristine[i].bytes;
            write_frame(frame, kOutsidePortMac, kNextHopMac, Protocol::udp,
                        remote(static_cast<std::uint32_t>(r % kStaticRemotes)), 4000, kStaticPool,
                        static_cast<std::uint16_t>(10000 + f));
            stream_.refs[i] = parsed_ref(frame);
            stream_.refs[i].frame = work_[i % kBurst].bytes;
        }
        // Every session exists before the timed loop: each remote's first packet makes it.
        std::array<PacketRef, kBurst> refs{};
        std::array<Verdict, kBurst> verdicts{};
        for (std::uint32_t base = 0; base < kStaticForwards * kStaticRemotes; base += kBurst) {
            for (std::uint32_t i = 0; i < kBurst; ++i) {
                write_frame(work_[i].bytes, kOutsidePortMac, kNextHopMac, Protocol::udp,
                            remote((base + i) % kStaticRemotes), 4000, kStaticPool,
                            static_cast<std::uint16_t>(10000 + (base + i) / kStaticRemotes));
                refs[i] = parsed_ref(work_[i].bytes);
            }
            translator_->out2in(refs, kNow, kL2, verdicts);
        }
        if (translator_->live_sessions() != kStaticForwards * kStaticRemotes) {
            throw std::runtime_error(
                "static world: " + std::to_string(translator_->live_sessions()) + " sessions");
        }
    }
    void translate(std::size_t burst, std::span<Verdict> verdicts) {
        std::memcpy(work_, stream_.pristine.data() + burst * kBurst, sizeof work_);
        translator_->out2in(stream_.burst(burst), kNow, kL2, verdicts);
    }

    CounterBlock counters;

private:
    static constexpr Ipv4Addr kStaticPool{198, 18, 0, 1};
    static Ipv4Addr host(std::uint32_t f) { return Ipv4Addr{Ipv4Addr{100, 65, 0, 0}.value() + f}; }
    static Ipv4Addr remote(std::uint32_t r) {
        return Ipv4Addr{Ipv4Addr{198, 19, 0, 0}.value() + r};
    }

    std::unique_ptr<PlanCompiler> compiler_;
    std::unique_ptr<WorkerPlan> plan_;
    std::unique_ptr<Translator> translator_;
    Stream stream_;
    alignas(64) FrameLine work_[kBurst];
};

void bm_static_inbound(benchmark::State& state) {
    std::unique_ptr<StaticWorld> w;
    if (!guarded(state, [&] { w = std::make_unique<StaticWorld>(); })) {
        return;
    }
    std::array<Verdict, kBurst> verdicts{};
    const std::uint64_t before = w->counters.get(Counter::out2in_translated);
    run_bursts(state, [&](std::size_t b) { w->translate(b, verdicts); });
    check_all(state, w->counters.get(Counter::out2in_translated) - before);
}

void bm_handoff(benchmark::State& state) {
    constexpr unsigned kRingSize = 2048;
    rte_ring* ring =
        rte_ring_create("bench_handoff", kRingSize, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (ring == nullptr) {
        state.SkipWithError("cannot create the handoff ring");
        return;
    }
    std::array<std::uint64_t, kBurst> objects{};
    std::array<void*, kBurst> out{};
    std::array<void*, kBurst> in{};
    for (std::size_t i = 0; i < kBurst; ++i) {
        out[i] = &objects[i];
    }
    // Half full, as a ring that a receiver drains each loop and a sender refills is.
    std::vector<void*> standing(kRingSize / 2, objects.data());
    rte_ring_sp_enqueue_bulk(ring, standing.data(), static_cast<unsigned>(standing.size()),
                             nullptr);
    std::uint64_t moved = 0;
    run_bursts(state, [&](std::size_t) {
        moved += rte_ring_sp_enqueue_burst(ring, out.data(), kBurst, nullptr);
        moved += rte_ring_sc_dequeue_burst(ring, in.data(), kBurst, nullptr);
        benchmark::DoNotOptimize(in.data());
    });
    rte_ring_free(ring);
    if (moved != 2 * kBurst * state.iterations()) {
        state.SkipWithError("the ring did not take or give a whole burst");
    }
}

std::string bench_name(const char* path, std::size_t size) {
    return std::string(path) + "/" + kSizes[size].name;
}

std::string by_mode_name(std::size_t alloc, std::size_t size) {
    return std::string("session_create/") + kAllocations[alloc].name + "/" + kSizes[size].name;
}

std::string port_alloc_name(std::uint32_t per_mille) {
    return "port_alloc/" + std::to_string(per_mille / 10) + "." + std::to_string(per_mille % 10) +
           "pct";
}

void register_benchmarks() {
    for (std::size_t s = 0; s < kSizes.size(); ++s) {
        benchmark::RegisterBenchmark(bench_name("session_create", s).c_str(), bm_session_create, s)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
        for (std::size_t a = 0; a < kAllocations.size(); ++a) {
            benchmark::RegisterBenchmark(by_mode_name(a, s).c_str(), bm_session_create_by_mode, s,
                                         a)
                ->Iterations(1)
                ->UseManualTime()
                ->Unit(benchmark::kMillisecond);
        }
        benchmark::RegisterBenchmark(bench_name("in2out", s).c_str(), bm_in2out, s);
        benchmark::RegisterBenchmark(bench_name("in2out_offload", s).c_str(), bm_in2out_offload, s);
        benchmark::RegisterBenchmark(bench_name("out2in_eif", s).c_str(), bm_out2in, s,
                                     std::size_t{0});
        benchmark::RegisterBenchmark(bench_name("out2in_apdf", s).c_str(), bm_out2in, s,
                                     std::size_t{1});
        benchmark::RegisterBenchmark(bench_name("floor_bulk_data", s).c_str(), bm_floor_bulk_data,
                                     s, false);
        benchmark::RegisterBenchmark(bench_name("floor_bulk", s).c_str(), bm_floor_bulk, s);
        benchmark::RegisterBenchmark(bench_name("floor_copy", s).c_str(), bm_floor_bulk_data, s,
                                     true);
        benchmark::RegisterBenchmark(bench_name("flat_floor", s).c_str(), bm_flat_floor, s);
        benchmark::RegisterBenchmark(bench_name("restore", s).c_str(), bm_restore, s);
        benchmark::RegisterBenchmark(bench_name("expire", s).c_str(), bm_expire, s)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    }
    // Independent of the session table's size: the summary sets them against both floors.
    for (const std::uint32_t per_mille : kOccupancies) {
        benchmark::RegisterBenchmark(port_alloc_name(per_mille).c_str(), bm_port_alloc, per_mille);
    }
    benchmark::RegisterBenchmark("handoff", bm_handoff);
    benchmark::RegisterBenchmark("static_inbound", bm_static_inbound);
}

constexpr const char* kTscCounter = "cycles_per_pkt";
constexpr const char* kCpuCounter = "cpu_cycles_per_pkt";

// Passes everything to the console reporter and keeps each benchmark's cycle counters: the
// median aggregate when there are repetitions, else the median of the single runs.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
    SummaryReporter() : ConsoleReporter(OO_Tabular) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            if (run.error_occurred) {
                continue;
            }
            repetitions_ = std::max(repetitions_, run.repetitions);
            for (const char* counter :
                 {kTscCounter, kCpuCounter, kTscCounterTo75, kCpuCounterTo75}) {
                const auto it = run.counters.find(counter);
                if (it == run.counters.end()) {
                    continue;
                }
                const Key key{run.run_name.function_name, counter};
                if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "median") {
                    medians_[key] = it->second.value;
                } else if (run.run_type == Run::RT_Iteration) {
                    samples_[key].push_back(it->second.value);
                }
            }
        }
        ConsoleReporter::ReportRuns(runs);
    }

    // NaN when the benchmark did not run (filtered out or failed).
    [[nodiscard]] double cycles(const std::string& name, const char* counter) const {
        const Key key{name, counter};
        if (const auto it = medians_.find(key); it != medians_.end()) {
            return it->second;
        }
        const auto it = samples_.find(key);
        if (it == samples_.end() || it->second.empty()) {
            return std::nan("");
        }
        std::vector<double> v = it->second;
        std::sort(v.begin(), v.end());
        const std::size_t n = v.size();
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    [[nodiscard]] std::int64_t repetitions() const { return repetitions_; }

private:
    using Key = std::pair<std::string, std::string>;
    std::map<Key, double> medians_;
    std::map<Key, std::vector<double>> samples_;
    std::int64_t repetitions_ = 0;
};

void print_cell(double v, const char* format) {
    if (std::isnan(v)) {
        std::printf(" %9s", "-");
    } else {
        std::printf(format, v);
    }
}

void print_summary(const SummaryReporter& r) {
    std::printf(
        "\nSummary: cycles per packet (per new session for session create), median of %lld "
        "repetition(s), TSC at %.3f GHz\n"
        "  tsc   = rte_rdtsc() around the timed loop (wall clock: counts time the core spent on "
        "other processes)\n"
        "  cpu   = the thread's CPU time in TSC cycles (leaves out time preempted)\n"
        "  net   = gross - restore (the per-burst copy of 32 pristine frames and their parsed refs "
        "into the burst buffers, measured alone)\n"
        "  floor = rte_hash_lookup_bulk_data, bulk = rte_hash_lookup_bulk: 32-key bulks, same "
        "table size, keys and flow stream\n"
        "  /copy = cpu net over the floor after the copy (net): the floor paying the same "
        "restore copy as the paths\n"
        "  flat table lookup = the translator's own table (FlatTable) on the floor's keys\n"
        "  per: packet; new session (session create); expired session, its mapping, subscriber "
        "and held port (expiry); allocate+release (port alloc); packet through the ring "
        "(handoff)\n"
        "  port alloc and handoff do not depend on the table size: one run, set against each "
        "size's floor\n\n",
        static_cast<long long>(std::max<std::int64_t>(r.repetitions(), 1)),
        static_cast<double>(rte_get_tsc_hz()) / 1e9);
    std::printf("%-5s %-22s %9s %9s %9s %9s %9s %9s %9s %9s\n", "size", "path", "tsc", "tsc net",
                "/floor", "/bulk", "cpu", "cpu net", "/floor", "/copy");
    struct Row {
        const char* label;
        const char* bench;
        bool restored;     // the figure includes the restore copy
        bool sized;        // one benchmark per size (bench/64K, bench/1M), else one for all sizes
        bool to75 = false; // the _to75 counters (session create up to three quarters full)
    };
    static constexpr Row kRows[] = {
        {"in2out", "in2out", true, true},
        {"in2out offload", "in2out_offload", true, true},
        {"out2in EIF", "out2in_eif", true, true},
        {"out2in APDF", "out2in_apdf", true, true},
        {"floor lookup_bulk_data", "floor_bulk_data", false, true},
        {"floor lookup_bulk", "floor_bulk", false, true},
        {"floor after the copy", "floor_copy", true, true},
        {"flat table lookup", "flat_floor", false, true},
        {"restore copy", "restore", false, true},
        {"session create", "session_create", false, true},
        {"  up to 75% full", "session_create", false, true, true},
        {"expiry per session", "expire", false, true},
        {"port alloc 0%", "port_alloc/0.0pct", false, false},
        {"port alloc 90%", "port_alloc/90.0pct", false, false},
        {"port alloc 99.9%", "port_alloc/99.9pct", false, false},
        {"handoff enq+deq", "handoff", false, false},
    };
    const double nan = std::nan("");
    for (std::size_t s = 0; s < kSizes.size(); ++s) {
        for (const Row& row : kRows) {
            const std::string name = row.sized ? bench_name(row.bench, s) : std::string(row.bench);
            const double tsc = r.cycles(name, row.to75 ? kTscCounterTo75 : kTscCounter);
            if (std::isnan(tsc)) {
                continue;
            }
            const double cpu = r.cycles(name, row.to75 ? kCpuCounterTo75 : kCpuCounter);
            const double tsc_net =
                row.restored ? tsc - r.cycles(bench_name("restore", s), kTscCounter) : tsc;
            const double cpu_net =
                row.restored ? cpu - r.cycles(bench_name("restore", s), kCpuCounter) : cpu;
            const double tsc_floor = r.cycles(bench_name("floor_bulk_data", s), kTscCounter);
            const double tsc_bulk = r.cycles(bench_name("floor_bulk", s), kTscCounter);
            const double cpu_floor = r.cycles(bench_name("floor_bulk_data", s), kCpuCounter);
            const double cpu_floor_copy = r.cycles(bench_name("floor_copy", s), kCpuCounter) -
                                          r.cycles(bench_name("restore", s), kCpuCounter);
            const bool is_restore = std::string_view(row.bench) == "restore";
            std::printf("%-5s %-22s", kSizes[s].name, row.label);
            print_cell(tsc, " %9.1f");
            print_cell(row.restored ? tsc_net : nan, " %9.1f");
            print_cell(is_restore ? nan : tsc_net / tsc_floor, " %9.2f");
            print_cell(is_restore ? nan : tsc_net / tsc_bulk, " %9.2f");
            print_cell(cpu, " %9.1f");
            print_cell(row.restored ? cpu_net : nan, " %9.1f");
            print_cell(is_restore ? nan : cpu_net / cpu_floor, " %9.2f");
            print_cell(row.restored ? cpu_net / cpu_floor_copy : nan, " %9.2f");
            std::printf("\n");
        }
    }
    std::printf("\nEAL heap: peak %.0f MiB in use; EAL memory: %s (%s)\n",
                static_cast<double>(g_heap_peak) / (1024.0 * 1024.0), g_memory.label.c_str(),
                g_memory.args.c_str());
    if (!g_memory.note.empty()) {
        std::printf("%s\n", g_memory.note.c_str());
    }
}

// Session create by allocation mode, each next to dynamic on the same config and to the floor
// of its size, both measured in this run.
void print_mode_summary(const SummaryReporter& r) {
    bool any = false;
    for (std::size_t s = 0; s < kSizes.size() && !any; ++s) {
        for (std::size_t a = 0; a < kAllocations.size() && !any; ++a) {
            any = !std::isnan(r.cycles(by_mode_name(a, s), kTscCounter));
        }
    }
    if (!any) {
        return;
    }
    std::printf("\nSession create by allocation mode: cycles per new session, median of %lld "
                "repetition(s)\n"
                "  config: %u pool addresses, ports %u-%u, worker 0 of %u, %u flows per "
                "subscriber; blocks %u ports, max_blocks %u; adaptive %u..4096; deterministic "
                "%s/%u\n"
                "  75%%   = the sessions created while the tables were at most three quarters "
                "full\n"
                "  /dyn  = this mode over dynamic (same size, same clock); floor = "
                "rte_hash_lookup_bulk_data per key\n\n",
                static_cast<long long>(std::max<std::int64_t>(r.repetitions(), 1)),
                kModePoolAddresses, unsigned{kModePortRange.lo}, unsigned{kModePortRange.hi},
                unsigned{kWorkers}, kFlowsPerSubscriber, kModeBlockSize, kModeMaxBlocks,
                kModeBlockSize, kModePrefix.to_string().c_str(), unsigned{kModePrefixLen});
    std::printf("%-5s %-16s %9s %9s %9s %9s %9s %9s %9s %9s\n", "size", "mode", "tsc", "cpu",
                "tsc 75%", "cpu 75%", "tsc /dyn", "cpu /dyn", "cpu 75%/d", "cpu/floor");
    for (std::size_t s = 0; s < kSizes.size(); ++s) {
        const std::string dynamic = by_mode_name(0, s);
        const double dyn_tsc = r.cycles(dynamic, kTscCounter);
        const double dyn_cpu = r.cycles(dynamic, kCpuCounter);
        const double dyn_cpu75 = r.cycles(dynamic, kCpuCounterTo75);
        const double cpu_floor = r.cycles(bench_name("floor_bulk_data", s), kCpuCounter);
        for (std::size_t a = 0; a < kAllocations.size(); ++a) {
            const std::string name = by_mode_name(a, s);
            const double tsc = r.cycles(name, kTscCounter);
            if (std::isnan(tsc)) {
                continue;
            }
            const double cpu = r.cycles(name, kCpuCounter);
            const double cpu75 = r.cycles(name, kCpuCounterTo75);
            std::printf("%-5s %-16s", kSizes[s].name, kAllocations[a].label);
            print_cell(tsc, " %9.1f");
            print_cell(cpu, " %9.1f");
            print_cell(r.cycles(name, kTscCounterTo75), " %9.1f");
            print_cell(cpu75, " %9.1f");
            print_cell(tsc / dyn_tsc, " %9.3f");
            print_cell(cpu / dyn_cpu, " %9.3f");
            print_cell(cpu75 / dyn_cpu75, " %9.3f");
            print_cell(cpu / cpu_floor, " %9.1f");
            std::printf("\n");
        }
    }
    const double floor64k = r.cycles(bench_name("floor_bulk_data", 0), kCpuCounter);
    const double floor1m = r.cycles(bench_name("floor_bulk_data", 1), kCpuCounter);
    std::printf("floor (cpu, same run): 64K %.1f, 1M %.1f cycles per key\n", floor64k, floor1m);
}

// The arrays one pool address brings to one worker, in bytes, as AddressPorts allocates them.
struct AddressBytes {
    std::uint32_t slots = 0;
    std::size_t bitmaps = 0;
    std::size_t out2in = 0;
    std::size_t hold = 0;
    std::size_t granules = 0; // PortBlock array
    [[nodiscard]] std::size_t total() const { return bitmaps + out2in + hold + granules; }
};

AddressBytes address_bytes(const Ownership& ownership, bool holds) {
    const PortSlice slice(ownership, 0);
    const AddressPorts address(slice.slot_count(), holds);
    AddressBytes b;
    b.slots = slice.slot_count();
    const std::size_t words = (b.slots + 63) / 64;
    // PortBitmap keeps used and valid words and one summary bit per word and parity.
    b.bitmaps = kProtocolCount * 8 * (2 * words + 2 * ((words + 63) / 64));
    b.out2in = address.out2in.size() * sizeof(std::uint32_t);
    b.hold = address.hold_chunks.count * sizeof(HoldChunk);
    b.granules = address.blocks.size() * sizeof(PortBlock);
    return b;
}

// Bytes of translation state per subscriber in each mode, from the records' sizes and the
// arrays a pool address brings to each worker. Printed by every run: it depends on nothing
// measured. Hash keys and buckets (rte_hash for subscribers and mappings, the session table's
// keys) are left out: they are the same in every mode.
void print_state_bytes() {
    const Ownership by_port(kWorkers);
    const PortSlice slice(by_port, 0);
    const PortMask mask(slice, kModePortRange, {});
    const AddressBytes shared = address_bytes(by_port, true);
    // Deterministic: every worker numbers all 65,536 ports (a port's owner is its subscriber's
    // worker, any port of any address), and nothing is held down.
    Config det_config;
    for (std::uint32_t i = 0; i < kModePoolAddresses; ++i) {
        det_config.pool.emplace_back(Ipv4Addr{198, 18, 0, 0}.value() + i);
    }
    det_config.port_range = kModePortRange;
    det_config.allocation = AllocationMode::deterministic;
    det_config.deterministic.prefix = kModePrefix;
    det_config.deterministic.prefix_len = kModePrefixLen;
    const AddressBytes det = address_bytes(Ownership::for_config(det_config, kWorkers), false);

    constexpr std::uint32_t m = kFlowsPerSubscriber; // mappings, one session each
    // A mapping's record, its creation time (NatTables::mapping_created), its session's entry.
    const std::size_t mapping_bytes =
        sizeof(Mapping) + sizeof(Tick) + sizeof(SessionKey) + sizeof(Session);
    // Of the subscriber record, what each mode uses: dynamic and deterministic none of
    // SubscriberBlocks, fixed blocks all but the adaptive demand, adaptive all of it. The record
    // is the same size in every mode (one type), so the unused part is padding the mode still
    // pays for.
    const std::size_t sub = sizeof(Subscriber);
    const std::size_t sub_blocks = sizeof(SubscriberBlocks);
    const std::size_t sub_demand = sizeof(BlockDemand);
    // 16 mappings are 8 ports per protocol: one block of 64 in either blocks mode, one
    // granule, whose PortBlock record is the subscriber's while it holds the block.
    const std::size_t held_granules = (m / 2 + kModeBlockSize - 1) / kModeBlockSize;

    auto print_address = [](const char* mode, const AddressBytes& b, const char* note) {
        std::printf("  per pool address per worker, %s (%u slots): bitmaps %zu, out2in %zu, "
                    "hold-down chunks %zu, PortBlock array %zu = %zu bytes%s\n",
                    mode, b.slots, b.bitmaps, b.out2in, b.hold, b.granules, b.total(), note);
    };
    std::printf(
        "\nState bytes per subscriber (16 mappings, 1 session each; records only, hash "
        "keys and buckets left out)\n"
        "  sizeof: Subscriber %zu (SubscriberBlocks %zu, of it BlockDemand %zu), Mapping "
        "%zu (and its creation time %zu), session entry %zu (SessionKey %zu + Session %zu), "
        "PortBlock %zu\n",
        sub, sub_blocks, sub_demand, sizeof(Mapping), sizeof(Tick),
        sizeof(SessionKey) + sizeof(Session), sizeof(SessionKey), sizeof(Session),
        sizeof(PortBlock));
    print_address("dynamic and blocks", shared, "");
    std::printf("    (%zu granules, %u of them in 1024-65535)\n",
                shared.granules / sizeof(PortBlock), blocks_that_fit(mask, 1));
    print_address("deterministic", det, ": every worker numbers every port, nothing held down");
    std::printf("  every worker has these arrays for each of the %u pool addresses, whether or not "
                "its subscribers use it\n\n",
                kModePoolAddresses);
    struct Column {
        const char* label;
        std::size_t record_used;
        std::size_t granules;
        std::size_t per_address;
    };
    const Column columns[] = {
        {"dynamic", sub - sub_blocks, 0, shared.total()},
        {"blocks 64", sub - sub_demand, held_granules, shared.total()},
        {"blocks adaptive", sub, held_granules, shared.total()},
        {"deterministic", sub - sub_blocks, 0, det.total()},
    };
    std::printf("%-44s", "");
    for (const Column& c : columns) {
        std::printf(" %16s", c.label);
    }
    std::printf("\n");
    auto row = [&](const char* label, auto value) {
        std::printf("%-44s", label);
        for (const Column& c : columns) {
            std::printf(" %16.1f", static_cast<double>(value(c)));
        }
        std::printf("\n");
    };
    const auto records = [&](const Column& c) {
        return sub + m * mapping_bytes + c.granules * sizeof(PortBlock);
    };
    row("subscriber record (sizeof, any mode)", [&](const Column&) { return sub; });
    row("  of it used by the mode", [&](const Column& c) { return c.record_used; });
    row("PortBlock records of its blocks",
        [&](const Column& c) { return c.granules * sizeof(PortBlock); });
    row("mappings + sessions (16 x (32 + 4 + 32))",
        [&](const Column&) { return m * mapping_bytes; });
    row("records per subscriber", records);
    row("records per mapping", [&](const Column& c) { return records(c) / double{m}; });
    row("address arrays per pool address per worker",
        [&](const Column& c) { return c.per_address; });
    row("  the same, all workers", [&](const Column& c) { return c.per_address * kWorkers; });
    for (std::size_t s = 0; s < kSizes.size(); ++s) {
        const double subs = kSizes[s].sessions / double{m};
        const auto share = [&](const Column& c) {
            return static_cast<double>(c.per_address) * kModePoolAddresses / subs;
        };
        char label[64];
        std::snprintf(label, sizeof label, "+ address arrays, %s (%.0f subs/address)",
                      kSizes[s].name, subs / kModePoolAddresses);
        row(label, [&](const Column& c) { return records(c) + share(c); });
        std::snprintf(label, sizeof label, "  per mapping, %s", kSizes[s].name);
        row(label, [&](const Column& c) { return (records(c) + share(c)) / m; });
    }
}

// The EAL's memory options: EPHEMERA_EAL_MEMORY, split at whitespace, else 4 KiB pages.
std::vector<std::string> eal_memory_args() {
    const char* env = std::getenv("EPHEMERA_EAL_MEMORY");
    if (env == nullptr || *env == '\0') {
        return {"--no-huge", "-m", std::to_string(kEalMemoryMb)};
    }
    std::vector<std::string> out;
    std::string_view rest(env);
    while (!rest.empty()) {
        const std::size_t begin = rest.find_first_not_of(" \t\n");
        if (begin == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(begin);
        const std::size_t end = std::min(rest.find_first_of(" \t\n"), rest.size());
        out.emplace_back(rest.substr(0, end));
        rest.remove_prefix(end);
    }
    return out;
}

int largest_page(const rte_memseg_list* msl, void* arg) {
    auto* page = static_cast<std::uint64_t*>(arg);
    *page = std::max(*page, msl->page_sz);
    return 0;
}

// What the EAL really runs on, after rte_eal_init.
std::string describe_eal_memory() {
    if (rte_eal_has_hugepages() == 0) {
        return "4 KiB pages (--no-huge)";
    }
    std::uint64_t page = 0;
    rte_memseg_list_walk(largest_page, &page);
    if (page >= (std::uint64_t{1} << 30)) {
        return "hugepages " + std::to_string(page >> 30) + " GB";
    }
    return "hugepages " + std::to_string(page >> 20) + " MB";
}

bool init_eal(const char* program) {
    const std::vector<std::string> memory = eal_memory_args();
    std::vector<std::string> args = {
        program, "--no-pci", "--file-prefix",     "bench-" + std::to_string(getpid()),
        "-l",    "0",        "--log-level=error",
    };
    args.insert(args.begin() + 1, memory.begin(), memory.end());
    std::vector<char*> argv;
    std::vector<std::string> storage = args; // rte_eal_init may permute argv
    for (std::string& a : storage) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
        return false;
    }
    g_memory.label = describe_eal_memory();
    for (const std::string& a : memory) {
        g_memory.args += (g_memory.args.empty() ? "" : " ") + a;
    }
    if (const char* note = std::getenv("EPHEMERA_MEMORY_NOTE"); note != nullptr) {
        g_memory.note = note;
    }
    benchmark::AddCustomContext("eal_memory", g_memory.label);
    benchmark::AddCustomContext("eal_memory_args", g_memory.args);
    if (!g_memory.note.empty()) {
        benchmark::AddCustomContext("eal_memory_note", g_memory.note);
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    if (!init_eal(argv[0])) {
        return 1;
    }
    // rte_eal_cleanup() leaves the runtime directory (/var/run/dpdk/bench-<pid>) behind.
    const std::filesystem::path runtime_dir = rte_eal_get_runtime_dir();
    register_benchmarks();
    SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    print_summary(reporter);
    print_mode_summary(reporter);
    print_state_bytes();
    registry().clear();
    benchmark::Shutdown();
    rte_eal_cleanup();
    if (runtime_dir.filename().string().starts_with("bench-")) {
        std::error_code ignored;
        std::filesystem::remove_all(runtime_dir, ignored);
    }
    return 0;
}
