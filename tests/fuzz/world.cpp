#include "world.hpp"

#include "ephemera/config_edit.hpp"
#include "ephemera/l2.hpp"
#include "ephemera/mode_checks.hpp"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

namespace ephemera::fuzz {

namespace {

constexpr unsigned kPortRingSize = 4096;
constexpr unsigned kHandoffRingSize = 2048; // as control/main.cpp
constexpr unsigned kArpRingSize = 64;
constexpr int kMaxRounds = 256; // poll rounds for one run() to go quiet
// Dynamic worlds have a 128-port range, so that the pool runs out. Blocks worlds need a share
// of at least one 64-port block per worker (check_blocks_fit): 256 ports give each of two
// workers two blocks per address, eight in all for its six subscribers with up to two blocks
// each, so that both refusals (max_blocks, no free block) happen; the subscriber limits let
// one protocol overflow a block.
std::string base_toml(const std::array<std::string, 2>& ports, bool static_next_hop, PoolMode mode,
                      const char* blocks_range) {
    std::string t = R"([pool]
addresses = ["198.19.0.10", "198.19.0.11", "198.19.0.12", "198.19.0.13"]
reserved = ["1030-1033"]
)";
    switch (mode) {
    case PoolMode::dynamic:
        t += "port_range = \"1024-1151\"\n";
        break;
    case PoolMode::blocks:
        t += "port_range = \"" + std::string(blocks_range) + R"("
mode = "blocks"
[pool.blocks]
block_size = 64
max_blocks = 2
active_block_timeout = 90
)";
        break;
    case PoolMode::adaptive:
        t += "port_range = \"" + std::string(blocks_range) + R"("
mode = "blocks"
[pool.blocks]
adaptive = true
min_block_size = 64
max_block_size = 256
records_per_day = 24
max_blocks = 3
)";
        break;
    }
    t += R"([inside]
port = ")" +
         ports[0] +
         R"("
gateway = "100.64.0.1"
mtu = 1500
[outside]
port = ")" +
         ports[1] +
         R"("
next_hop = "198.19.0.1"
mtu = 1400
)";
    if (static_next_hop) {
        t += "next_hop_mac = \"02:00:00:00:00:fe\"\n";
    }
    t += R"([timeouts]
udp = 120
tcp_transitory = 240
icmp = 60
port_hold_down = 30
[limits]
max_sessions = 1024
max_subscribers = 12
)";
    t += mode == PoolMode::dynamic ? "subscriber_sessions = 24\nsubscriber_ports = 8\n"
                                   : "subscriber_sessions = 96\nsubscriber_ports = 80\n";
    t += R"(subscriber_mapping_rate = 20
subscriber_mapping_burst = 10
[icmp]
unreachable_rate = 50
unsolicited_syn_unreachable = true
[fragments]
timeout = 2
max_datagrams = 16
max_per_datagram = 4
)";
    // Static mappings (below and above every world's range) for three of the subscribers.
    t += R"([[static]]
protocol = "udp"
external = "198.19.0.10:5000"
inside = "100.64.0.20:53"
[[static]]
protocol = "tcp"
external = "198.19.0.11:1000"
inside = "100.64.0.21:80"
[[static]]
external = "198.19.0.30"
inside = "100.64.0.19"
)";
    return t;
}

// The runtime changes World::change_config picks from: every kind ephemeractl can make that
// the running dataplane takes up (ports, addresses and table sizes need a restart).
struct Edit {
    const char* key; // "pool+" / "pool-": pool add / remove
    const char* value;
};
constexpr Edit kEdits[] = {
    {"filtering.mode", "address"},
    {"filtering.mode", "address-and-port"},
    {"filtering.mode", "endpoint-independent"},
    {"timeouts.inbound_refresh", "true"},
    {"timeouts.inbound_refresh", "false"},
    {"timeouts.udp", "600"},
    {"timeouts.tcp_transitory", "300"},
    {"timeouts.port_hold_down", "0"},
    {"timeouts.port_hold_down", "120"},
    {"icmp.unsolicited_syn_unreachable", "false"},
    {"icmp.unsolicited_syn_unreachable", "true"},
    {"icmp.unreachable_rate", "0"},
    {"icmp.unreachable_rate", "1000"},
    {"icmp.unreachable", "false"},
    {"icmp.unreachable", "true"},
    {"inside.mtu", "576"},
    {"inside.mtu", "1500"},
    {"outside.mtu", "576"},
    {"outside.mtu", "1400"},
    {"limits.subscriber_ports", "2"},
    {"limits.subscriber_ports", "8"},
    {"limits.subscriber_sessions", "4"},
    {"limits.subscriber_sessions", "24"},
    {"limits.subscriber_mapping_rate", "0"},
    {"limits.subscriber_mapping_rate", "1"},
    {"pool.port_range", "\"1024-1279\""},
    {"pool.port_range", "\"1024-1151\""},
    {"pool.reserved", "[]"},
    {"pool+", "198.19.0.14"},
    {"pool-", "198.19.0.14"},
    {"pool-", "198.19.0.11"},
    {"pool+", "198.19.0.11"},
    {"static-", "udp 198.19.0.10:5000"},
    {"static+", "udp 198.19.0.10:5000 100.64.0.20:53"},
    {"static+", "tcp 198.19.0.12:6000 100.64.0.13:6000"},
    {"static-", "tcp 198.19.0.12:6000"},
    {"static-", "198.19.0.30"},
    {"static+", "198.19.0.30 100.64.0.19"},
    // Blocks worlds (refused elsewhere): the keys ephemera takes up at run time in that mode.
    {"pool.blocks.max_blocks", "1"},
    {"pool.blocks.max_blocks", "4"},
    {"pool.blocks.active_block_timeout", "30"},
    {"pool.blocks.active_block_timeout", "0"},
    {"pool.blocks.block_size", "128"},
    {"pool.blocks.block_size", "64"},
    {"limits.subscriber_ports", "80"},
    {"limits.subscriber_sessions", "96"},
};

// `ephemeractl static add|remove SPEC`, as the control thread takes it.
std::variant<Config, ConfigError> edit_static_text(const Config& current, std::string_view spec,
                                                   bool add) {
    const auto entry = parse_static_spec(spec, add);
    if (const auto* e = std::get_if<ConfigError>(&entry)) {
        return *e;
    }
    return edit_static(current, std::get<StaticMapping>(entry), add);
}

// Runtime changes, memoised for the whole process: which config an edit makes of a config is
// worked out once (edit_config writes and parses TOML, as costly as hundreds of frames) and
// the result kept for good, so every config a worker may hold outlives it (no RCU needed).
// Configs are told apart by their TOML; past kMaxConfigs new ones are no longer made.
class ConfigGraph {
public:
    static constexpr std::size_t kMaxConfigs = 20000;
    static constexpr std::size_t kRefused = ~std::size_t{0};

    std::size_t node(const Config& config) {
        const auto [it, added] = ids_.try_emplace(config_to_toml(config), configs_.size());
        if (added) {
            configs_.push_back(std::make_unique<const Config>(config));
        }
        return it->second;
    }
    [[nodiscard]] const Config& config(std::size_t id) const { return *configs_[id]; }

    // The config `edit` makes of config `from`, or kRefused (edit_config refused it, or the
    // graph is full).
    std::size_t apply(std::size_t from, std::size_t edit) {
        const auto key = std::pair{from, edit};
        if (const auto known = edges_.find(key); known != edges_.end()) {
            return known->second;
        }
        const Edit& e = kEdits[edit];
        const std::string_view k = e.key;
        const Config& current = *configs_[from];
        const auto next = k == "pool+"     ? edit_pool(current, e.value, true)
                          : k == "pool-"   ? edit_pool(current, e.value, false)
                          : k == "static+" ? edit_static_text(current, e.value, true)
                          : k == "static-" ? edit_static_text(current, e.value, false)
                                           : edit_config(current, k, e.value);
        std::size_t to = kRefused;
        if (const auto* c = std::get_if<Config>(&next); c && configs_.size() < kMaxConfigs) {
            to = node(*c);
        }
        edges_.emplace(key, to);
        return to;
    }

private:
    std::vector<std::unique_ptr<const Config>> configs_;
    std::map<std::string, std::size_t> ids_;
    std::map<std::pair<std::size_t, std::size_t>, std::size_t> edges_;
};

// Never destroyed: the last world's workers use its configs until the process's exit
// handlers have torn that world down.
ConfigGraph& config_graph() {
    static auto* graph = new ConfigGraph;
    return *graph;
}

int first_allowed_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) {
                return cpu;
            }
        }
    }
    return 0;
}

rte_ring* make_ring(const std::string& name, unsigned size, unsigned esize) {
    constexpr unsigned kFlags = RING_F_SP_ENQ | RING_F_SC_DEQ;
    const int socket = static_cast<int>(rte_socket_id());
    rte_ring* r = esize == sizeof(void*)
                      ? rte_ring_create(name.c_str(), size, socket, kFlags)
                      : rte_ring_create_elem(name.c_str(), esize, size, socket, kFlags);
    if (r == nullptr) {
        throw std::runtime_error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
    }
    return r;
}

// Makes AddressSanitizer watch the packet buffers, which live in DPDK's memory where it sees
// nothing by itself: the headroom before each frame and the mempool header that follows each
// buffer (the next object's) are poisoned, so our code reading or writing outside a buffer
// is caught. DPDK's own code is not instrumented and uses those bytes freely.
void poison_buffer_edges(rte_mempool* mp, void* /*arg*/, void* obj, unsigned /*index*/) {
    auto* m = static_cast<rte_mbuf*>(obj);
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(m->buf_addr), RTE_PKTMBUF_HEADROOM);
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(obj) - mp->header_size, mp->header_size);
}

// EPHEMERA_FUZZ_TRACE=1: one line per frame in and out, to see what an input does.
bool tracing() {
    static const bool on = [] {
        const char* v = std::getenv("EPHEMERA_FUZZ_TRACE");
        return v != nullptr && v[0] == '1';
    }();
    return on;
}

void trace(const char* what, Side side, std::span<const std::uint8_t> frame, Tick now) {
    const ParsedPacket p = parse_frame(frame);
    std::string text;
    if (p.kind == FrameKind::ipv4) {
        const std::uint8_t* l4 = frame.data() + p.l4;
        text = std::string(protocol_name(p.proto)) + " " + p.src.to_string() + ":" +
               std::to_string(p.src_port) + " > " + p.dst.to_string() + ":" +
               std::to_string(p.dst_port) + " ttl " + std::to_string(frame[p.l3 + 8]) + " len " +
               std::to_string(p.ip_total_len);
        if (p.proto == Protocol::tcp && !p.later_fragment) {
            text += " flags " + std::to_string(l4[13]);
        }
        if (p.proto == Protocol::icmp && !p.later_fragment) {
            text += " type " + std::to_string(l4[0]) + "/" + std::to_string(l4[1]);
        }
        if (p.fragment) {
            text += " frag id " + std::to_string(p.ip_id) + " at " +
                    std::to_string(p.fragment_offset) + (p.more_fragments ? " MF" : "");
        }
    } else if (p.kind == FrameKind::arp) {
        text = "arp";
    } else {
        text = "unparsed: " + std::string(counter_name(p.drop_reason));
    }
    std::fprintf(stderr, "[%u] %s %s: %s\n", now, what, side == Side::inside ? "inside" : "outside",
                 text.c_str());
}

} // namespace

void FlowMemory::add(const Flow& f) {
    flows_[next_] = f;
    next_ = (next_ + 1) % kMemory;
    count_ = std::min(count_ + 1, kMemory);
}

Totals& totals() {
    static Totals t;
    return t;
}

Platform::Platform(std::uint16_t worker_count) : workers(worker_count) {
    std::vector<std::string> args = {
        "ephemera-fuzz",
        "-l",
        std::to_string(first_allowed_cpu()),
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--file-prefix",
        "fuzz-" + std::to_string(getpid()),
        "--log-level=error",
    };
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
        throw std::runtime_error(std::string("rte_eal_init: ") + rte_strerror(rte_errno));
    }
    // With --no-shconf and --no-telemetry the EAL puts nothing in its runtime directory; gone
    // now, it is not left behind by a run that ends in a finding (abort skips exit handlers).
    std::error_code ignored;
    std::filesystem::remove(rte_eal_get_runtime_dir(), ignored);
    const rte_mbuf_dynfield tag = {"ephemera_fuzz_tag", sizeof(Tag), alignof(Tag), 0};
    tag_offset = rte_mbuf_dynfield_register(&tag);
    const rte_mbuf_dynflag injected = {"ephemera_fuzz_injected", 0};
    const int bit = rte_mbuf_dynflag_register(&injected);
    if (tag_offset < 0 || bit < 0) {
        throw std::runtime_error("cannot register the mbuf tag");
    }
    injected_flag = std::uint64_t{1} << bit;
    // Room for the largest fragment table any world config allows (16 x 4 held pieces).
    mbufs = create_packet_pool(workers, 64);
    rte_mempool_obj_iter(mbufs.get(), poison_buffer_edges, nullptr);

    for (int side = 0; side < 2; ++side) {
        const std::string s = side == 0 ? "in" : "out";
        for (std::uint16_t q = 0; q < workers; ++q) {
            rx[side].push_back(
                make_ring("fz_" + s + "_rx" + std::to_string(q), kPortRingSize, sizeof(void*)));
            tx[side].push_back(
                make_ring("fz_" + s + "_tx" + std::to_string(q), kPortRingSize, sizeof(void*)));
        }
        const int id =
            rte_eth_from_rings(side == 0 ? "fz_inside" : "fz_outside", rx[side].data(), workers,
                               tx[side].data(), workers, static_cast<unsigned>(rte_socket_id()));
        if (id < 0) {
            throw std::runtime_error("rte_eth_from_rings failed");
        }
        char name[RTE_ETH_NAME_MAX_LEN];
        rte_eth_dev_get_name_by_port(static_cast<std::uint16_t>(id), name);
        port_names[side] = name;
        // net_ring ports start with the all-zero MAC and cannot set another; an added address
        // takes the first empty (all-zero) slot, which is the port's own. Each gets a distinct
        // unicast one, so that which port a frame leaves by shows in its source address.
        rte_ether_addr mac{{0x02, 0, 0, 0, static_cast<std::uint8_t>(0xa0 + 0x10 * side), 0x01}};
        rte_ether_addr got{};
        if (int rc = rte_eth_dev_mac_addr_add(static_cast<std::uint16_t>(id), &mac, 0);
            rc != 0 || rte_eth_macaddr_get(static_cast<std::uint16_t>(id), &got) != 0 ||
            !rte_is_same_ether_addr(&got, &mac)) {
            throw std::runtime_error("cannot give a ring port its MAC");
        }
    }
    // The production port setup (configure, queues, start), on the ring ports.
    const Config none;
    auto inside = find_port(none, "inside.port", port_names[0]);
    auto outside = find_port(none, "outside.port", port_names[1]);
    if (!std::holds_alternative<PortInfo>(inside) || !std::holds_alternative<PortInfo>(outside)) {
        throw std::runtime_error("the ring ports are not found by name");
    }
    ports = std::make_unique<Ports>(std::get<PortInfo>(inside), std::get<PortInfo>(outside),
                                    workers, mbufs.get());

    for (WorkerId from = 0; from < workers; ++from) {
        for (WorkerId to = 0; to < workers; ++to) {
            handoff.push_back(
                from == to ? nullptr
                           : make_ring("fz_ho_" + std::to_string(from) + "_" + std::to_string(to),
                                       kHandoffRingSize, sizeof(void*)));
        }
        arp_events.push_back(
            make_ring("fz_arp_" + std::to_string(from), kArpRingSize, sizeof(ArpEvent)));
    }
}

Platform::~Platform() = default;

const char* pool_mode_name(PoolMode mode) {
    switch (mode) {
    case PoolMode::dynamic:
        return "dynamic";
    case PoolMode::blocks:
        return "blocks";
    case PoolMode::adaptive:
        return "adaptive blocks";
    }
    return "?";
}

namespace {

PoolMode world_mode(std::uint64_t incarnation) {
    if (const char* v = std::getenv("EPHEMERA_FUZZ_MODE")) {
        const std::string_view mode = v;
        if (mode == "dynamic") {
            return PoolMode::dynamic;
        }
        if (mode == "blocks") {
            return PoolMode::blocks;
        }
        if (mode == "adaptive") {
            return PoolMode::adaptive;
        }
        throw std::runtime_error("EPHEMERA_FUZZ_MODE is dynamic, blocks or adaptive");
    }
    return static_cast<PoolMode>(incarnation % 3);
}

} // namespace

World::World(Platform& platform, std::uint64_t incarnation)
    : platform_(platform), incarnation_(incarnation), mode_(world_mode(incarnation)) {
    // Worlds alternate between a next hop learned by ARP and one given in the config; with
    // three pool modes in turn, six worlds make every pair.
    const bool static_next_hop = incarnation % 2 == 1;
    // The narrowest blocks range whose blocks fit every worker's share (three workers share
    // the range unevenly).
    std::optional<std::variant<Config, ConfigError>> parsed;
    for (const char* range : {"1024-1279", "1024-2047", "1024-4095"}) {
        parsed = parse_config(base_toml(platform.port_names, static_next_hop, mode_, range),
                              "fuzz.toml");
        if (const auto* c = std::get_if<Config>(&*parsed);
            c == nullptr || !check_blocks_fit(*c, platform.workers)) {
            break;
        }
    }
    if (const auto* e = std::get_if<ConfigError>(&*parsed)) {
        throw std::runtime_error("the fuzz config is refused: " + e->to_string());
    }
    if (const auto refusal = check_blocks_fit(std::get<Config>(*parsed), platform.workers)) {
        throw std::runtime_error("the fuzz config is refused: " + refusal->to_string());
    }
    base_ = std::get<Config>(std::move(*parsed));
    current_id_ = config_graph().node(base_);
    current_ = &config_graph().config(current_id_);
    shared_.config = current_;
    shared_.ownership = Ownership(platform.workers);
    shared_.workers = platform.workers;
    shared_.inside_port = platform.ports->inside().id;
    shared_.outside_port = platform.ports->outside().id;
    shared_.inside_mac = platform.ports->inside().mac;
    shared_.outside_mac = platform.ports->outside().mac;
    shared_.port_secret = SipKey{0x0123456789abcdefull ^ incarnation, 0xfedcba9876543210ull};
    // The workers' clock is the harness's (poll_once(now)); the TSC only sets their start,
    // which this makes 0.
    shared_.tsc_per_tick = std::numeric_limits<std::uint64_t>::max();
    shared_.start_tsc = rte_rdtsc();
    if (base_.outside.next_hop_mac) {
        shared_.next_hop_mac.store(pack_mac(*base_.outside.next_hop_mac));
    }
    shared_.handoff = platform.handoff;
    shared_.arp_events = platform.arp_events;
    shared_.mbufs = platform.mbufs.get();
    take_config(*current_);
    shared_.plans.resize(platform.workers);
    for (WorkerId w = 0; w < platform.workers; ++w) {
        compilers_.emplace_back(shared_.ownership, w);
    }
    publish_plans(*current_);
    for (WorkerId w = 0; w < platform.workers; ++w) {
        workers_.push_back(std::make_unique<Worker>(shared_, w));
    }
    ++totals().worlds;
}

World::~World() {
    // Let every timer run out (held fragments are freed by their timeout, held SYNs answered
    // or dropped), then every packet buffer must be back in the pool.
    pending_.clear();
    advance(kTicksPerSecond * 61);
    for (int i = 0; i < 64; ++i) {
        poll_round();
    }
    settle();
    if (const unsigned in_use = rte_mempool_in_use_count(platform_.mbufs.get()); in_use != 0) {
        violated(std::to_string(in_use) + " packet buffers never came back to the pool (a leak)");
    }
    // What a worker kept of the ARP ring is the platform's; nothing else outlives the world.
    ArpEvent ev{};
    for (rte_ring* ring : platform_.arp_events) {
        while (rte_ring_sc_dequeue_elem(ring, &ev, sizeof ev) == 0) {
        }
    }
}

void World::publish_plans(const Config& config) {
    // The config lives in the process's config graph for good: the plans share it unowned.
    const std::shared_ptr<const Config> shared(std::shared_ptr<const Config>{}, &config);
    std::vector<std::unique_ptr<WorkerPlan>> plans;
    for (std::size_t w = 0; w < compilers_.size(); ++w) {
        plans.push_back(compilers_[w].compile(shared, shared_.plans.newest(w)));
    }
    // No QSBR here: publish() returns at once, and the old plans wait in retired_.
    for (auto& old : shared_.plans.publish(std::move(plans))) {
        retired_.push_back(std::move(old));
    }
}

void World::take_config(const Config& next) {
    for (Ipv4Addr a : next.pool) {
        pool_ever_.insert(a.value());
    }
    for (const StaticMapping& s : next.statics) {
        static_hosts_.insert(s.inside.value());
        if (s.one_to_one()) {
            pool_ever_.insert(s.external.value()); // ours as much as a pool address
        }
    }
    most_ports_[0] = std::max(most_ports_[0], next.limits.subscriber_ports_udp);
    most_ports_[1] = std::max(most_ports_[1], next.limits.subscriber_ports_tcp);
    most_ports_[2] = std::max(most_ports_[2], next.limits.subscriber_ports_icmp);
    most_blocks_ = std::max(most_blocks_, next.blocks.max_blocks);
}

void World::add(Side side, unsigned queue, std::span<const std::uint8_t> frame) {
    pending_.push_back(Pending{side, queue % platform_.workers, Bytes(frame.begin(), frame.end())});
}

std::uint64_t World::counter_total(Counter c) const {
    std::uint64_t sum = 0;
    for (const auto& w : workers_) {
        sum += w->counters().get(c);
    }
    return sum;
}

void World::run() {
    if (pending_.empty()) {
        return;
    }
    // A lone inside packet: whatever refusal its owner counts is about it.
    std::optional<ParsedPacket> lone;
    WorkerId owner = 0;
    RefusalWatch before;
    if (pending_.size() == 1 && pending_[0].side == Side::inside) {
        const ParsedPacket p = parse_frame(pending_[0].frame);
        // Not a hairpin: its second pass, as an outside packet to a static entry's host, may
        // be refused for that host while its first pass made a mapping for the subscriber.
        if (p.kind == FrameKind::ipv4 && !pool_ever_.contains(p.dst.value())) {
            lone = p;
            owner = shared_.ownership.subscriber_owner(p.src);
            before = watch(owner);
        }
    }

    for (Pending& f : pending_) {
        rte_mbuf* m = rte_pktmbuf_alloc(platform_.mbufs.get());
        if (m == nullptr) {
            violated("the packet pool ran dry: buffers are leaking");
        }
        const auto length = static_cast<std::uint16_t>(
            std::min<std::size_t>(f.frame.size(), rte_pktmbuf_tailroom(m)));
        std::copy_n(f.frame.begin(), length, rte_pktmbuf_mtod(m, std::uint8_t*));
        m->data_len = length;
        m->pkt_len = length;
        Tag tag{0, f.side, 0, 0};
        const ParsedPacket p = parse_frame({f.frame.data(), length});
        if (p.kind == FrameKind::ipv4) {
            const std::uint8_t* ip = f.frame.data() + p.l3;
            tag.src = p.src.value();
            tag.dst = p.dst.value();
            if (!p.fragment && transport_checksum({ip, p.ip_total_len}) == L4Sum::invalid) {
                tag.flags |= kTagL4Invalid;
            }
            if (f.side == Side::inside) {
                inside_sources_.insert(p.src.value());
            } else if (pool_ever_.contains(p.src.value()) ||
                       inside_sources_.contains(p.src.value())) {
                tag.flags |= kTagOddSource;
            }
        }
        tag_field(platform_, m) = tag;
        m->ol_flags |= platform_.injected_flag;
        if (tracing()) {
            trace("in ", f.side, {f.frame.data(), length}, now_);
        }
        const auto s = static_cast<std::size_t>(f.side);
        if (rte_ring_sp_enqueue(platform_.rx[s][f.queue], m) != 0) {
            violated("a port's RX ring is full");
        }
        ++injected_[s];
        ++totals().frames_in;
    }
    pending_.clear();
    settle();
    if (lone) {
        check_refusal(*lone, owner, before);
    }
}

void World::poll_round() {
    for (auto& w : workers_) {
        w->poll_once(now_);
    }
    learn_next_hop();
    drain(Side::inside);
    drain(Side::outside);
}

// Polls until no ring holds a packet, then once more: a worker sends what it made after its
// last flush (held-SYN answers, ARP requests) on its next iteration.
void World::settle() {
    const auto busy = [this] {
        for (const auto& side : platform_.rx) {
            for (rte_ring* r : side) {
                if (rte_ring_count(r) != 0) {
                    return true;
                }
            }
        }
        for (rte_ring* r : platform_.handoff) {
            if (r != nullptr && rte_ring_count(r) != 0) {
                return true;
            }
        }
        return false;
    };
    int rounds = 0;
    do {
        poll_round();
        if (++rounds > kMaxRounds) {
            violated("the workers do not go quiet: packets circulate between them");
        }
    } while (busy());
    poll_round();

    // Every packet is counted once on receipt and once on each worker it passes.
    const std::uint64_t rx = counter_total(Counter::in2out_rx) + counter_total(Counter::out2in_rx);
    if (rx != injected_[0] + injected_[1]) {
        violated("received " + std::to_string(rx) + " packets by the counters, " +
                 std::to_string(injected_[0] + injected_[1]) + " were sent in");
    }
    if (counter_total(Counter::handoff_tx) != counter_total(Counter::handoff_rx)) {
        violated("handoff_tx " + std::to_string(counter_total(Counter::handoff_tx)) +
                 " != handoff_rx " + std::to_string(counter_total(Counter::handoff_rx)));
    }
    if (counter_total(Counter::out2in_tx) != drained_[0] ||
        counter_total(Counter::in2out_tx) != drained_[1]) {
        violated("the tx counters disagree with what the ports carried");
    }
}

// The control thread's part: the next hop's MAC from the workers' ARP events.
void World::learn_next_hop() {
    ArpEvent ev{};
    for (rte_ring* ring : platform_.arp_events) {
        while (rte_ring_sc_dequeue_elem(ring, &ev, sizeof ev) == 0) {
            MacAddr mac;
            std::memcpy(mac.bytes, ev.mac, 6);
            if (Ipv4Addr{ev.ip} != current_->outside.next_hop) {
                violated("an ARP event for " + Ipv4Addr{ev.ip}.to_string() +
                         ", which is not the next hop");
            }
            shared_.next_hop_mac.store(pack_mac(mac), std::memory_order_release);
        }
    }
}

void World::drain(Side side) {
    const auto s = static_cast<std::size_t>(side);
    rte_mbuf* burst[64];
    for (WorkerId w = 0; w < platform_.workers; ++w) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst(platform_.tx[s][w], reinterpret_cast<void**>(burst),
                                              64, nullptr)) != 0) {
            for (unsigned i = 0; i < n; ++i) {
                if (tracing()) {
                    trace("out", side,
                          {rte_pktmbuf_mtod(burst[i], const std::uint8_t*), burst[i]->data_len},
                          now_);
                }
                check_sent(side, w, burst[i]);
                rte_pktmbuf_free(burst[i]);
            }
            drained_[s] += n;
            totals().frames_out[s] += n;
        }
    }
}

void World::advance(Tick ticks) {
    if (ticks == 0) {
        return;
    }
    // A running worker polls many times a tick; here it polls at least once every 64 s of
    // the new time, and its expiry works through what came due a bounded amount per poll, as
    // on a real worker.
    constexpr Tick kStep = 64 * kTicksPerSecond;
    while (ticks != 0) {
        const Tick step = std::min(ticks, kStep);
        now_ += step;
        ticks -= step;
        poll_round();
    }
    for (int i = 0; i < 8; ++i) {
        poll_round();
    }
    settle();
}

// Polls until worker `w` has served its mailbox request `ticket` (it does every 64th iteration,
// a bounded step of a walk at a time).
void World::serve(Worker& w, std::uint32_t ticket) {
    constexpr int kMaxPolls = 64 * 16;
    for (int i = 0; !w.mailbox().answered(ticket); ++i) {
        if (i > kMaxPolls) {
            violated("worker " + std::to_string(w.id()) + " did not serve its mailbox");
        }
        poll_round();
    }
    settle();
}

void World::telemetry(std::uint8_t kind, std::uint8_t filter, std::uint8_t worker) {
    ++totals().telemetry_requests;
    const auto id = static_cast<WorkerId>(worker % shared_.workers);
    Worker& w = *workers_[id];
    Mailbox& box = w.mailbox();
    SessionFilter f;
    const std::uint8_t pick = filter >> 2;
    switch (filter & 3) {
    case 1:
        f.subscriber = inside_flows_.size() != 0
                           ? Ipv4Addr{inside_flows_[pick % inside_flows_.size()].src}
                           : Ipv4Addr{100, 64, 0, static_cast<std::uint8_t>(10 + pick % 12)};
        break;
    case 2:
        f.external = current_->pool[pick % current_->pool.size()];
        break;
    case 3:
        if (sent(Side::outside).size() != 0) {
            const Flow& flow = sent(Side::outside)[pick % sent(Side::outside).size()];
            f.external = Ipv4Addr{flow.src};
            f.external_port = flow.sport;
        }
        break;
    default:
        break;
    }
    const Mailbox::Request request{static_cast<Mailbox::Kind>(kind % 6), f,
                                   1 + std::size_t{filter} * 3};
    if (!box.idle()) {
        violated("worker " + std::to_string(id) + "'s mailbox is busy between requests");
    }
    const std::uint32_t ticket = box.post(request);
    serve(w, ticket);

    const Translator& t = w.translator();
    switch (request.kind) {
    case Mailbox::Kind::mappings:
        if (box.mapping_count != std::min<std::size_t>(t.live_mappings(), Mailbox::kMaxMappings)) {
            violated("the mappings listing has " + std::to_string(box.mapping_count) +
                     " entries, the worker " + std::to_string(t.live_mappings()));
        }
        for (std::size_t i = 0; i < box.mapping_count; ++i) {
            check_mapping(id, box.mappings[i]);
        }
        break;
    case Mailbox::Kind::ports: {
        std::size_t listed = 0; // every address but the 1:1 ones
        for (std::uint16_t a = 0; a < t.pool().size(); ++a) {
            listed += t.is_static_address(a) ? 0 : 1;
        }
        if (box.addresses.size() != listed ||
            box.free_ports.size() != box.addresses.size() * kProtocolCount) {
            violated("the ports listing does not cover the pool");
        }
        for (std::uint32_t free : box.free_ports) {
            if (free > box.usable_ports) {
                violated("more free ports than usable ones");
            }
        }
        if (box.block_counts.size() != box.addresses.size()) {
            violated("the ports listing's block counts do not cover the pool");
        }
        break;
    }
    case Mailbox::Kind::blocks: {
        // What `show blocks` lists: blocks in use of the subscriber asked about (or all of
        // them), whole, within the limit; every one when the limit allows.
        if (box.blocks.size() > std::min(request.limit, Mailbox::kMaxBlocks)) {
            violated("the blocks listing is longer than its limit");
        }
        std::size_t in_use = 0;
        for (std::uint16_t p = 0; p < t.pool().size(); ++p) {
            in_use += t.block_counts(p, now_).in_use;
        }
        if (!f.subscriber &&
            box.blocks.size() != std::min({in_use, request.limit, Mailbox::kMaxBlocks})) {
            violated("the blocks listing has " + std::to_string(box.blocks.size()) +
                     " blocks, the worker " + std::to_string(in_use) + " in use");
        }
        for (const BlockView& b : box.blocks) {
            if ((f.subscriber && b.subscriber != *f.subscriber) ||
                !pool_ever_.contains(b.address.value()) || b.first_port < 1024 ||
                b.last_port < b.first_port || b.ports == 0 || b.ports % kGranuleSlots != 0 ||
                b.in_use == 0 || b.in_use > b.ports * kProtocolCount) {
                violated("the blocks listing holds a block of " + b.subscriber.to_string() +
                         " on " + b.address.to_string() + " (ports " +
                         std::to_string(b.first_port) + "-" + std::to_string(b.last_port) + ", " +
                         std::to_string(b.in_use) + " of " + std::to_string(b.ports) +
                         " in use) that is wrong or not asked for");
            }
        }
        break;
    }
    case Mailbox::Kind::subscribers: {
        // What `ephemeractl top` shows: every subscriber counted once in the histogram, the
        // top lists bounded and in order.
        const SubscriberSummary& sum = box.subscribers;
        std::uint64_t counted = 0;
        for (std::uint64_t n : sum.ports_histogram) {
            counted += n;
        }
        if (sum.subscribers != t.live_subscribers() || counted != sum.subscribers) {
            violated("the subscriber summary counts " + std::to_string(sum.subscribers) +
                     " (histogram " + std::to_string(counted) + "), the worker has " +
                     std::to_string(t.live_subscribers()));
        }
        // Subscribers holding no port (only static mappings) are never listed.
        const auto& top = sum.by_ports();
        const std::uint64_t with_ports = sum.subscribers - sum.ports_histogram[0];
        if (top.size() != std::min<std::uint64_t>(with_ports, SubscriberSummary::kTop)) {
            violated("the top list by ports has " + std::to_string(top.size()) + " entries");
        }
        for (std::size_t i = 1; i < top.size(); ++i) {
            if (top[i].most_ports() > top[i - 1].most_ports()) {
                violated("the top list by ports is out of order");
            }
        }
        break;
    }
    case Mailbox::Kind::sessions:
    case Mailbox::Kind::flush:
        if (box.sessions.size() > std::min(request.limit, Mailbox::kMaxSessions)) {
            violated("the sessions listing is longer than its limit");
        }
        for (const SessionView& s : box.sessions) {
            if ((f.subscriber && s.inside != *f.subscriber) ||
                (f.external && s.external != *f.external) ||
                (f.external_port && s.external_port != *f.external_port)) {
                violated("the sessions listing holds a session its filter does not match");
            }
        }
        if (request.kind == Mailbox::Kind::flush) {
            // Flushed means gone: the same filter now lists nothing.
            const std::uint32_t again =
                box.post(Mailbox::Request{Mailbox::Kind::sessions, f, Mailbox::kMaxSessions});
            serve(w, again);
            if (!box.sessions.empty()) {
                violated("sessions remain after a flush with the same filter");
            }
        }
        break;
    }
}

void World::change_config(std::uint8_t which) {
    ConfigGraph& graph = config_graph();
    const std::size_t to = graph.apply(current_id_, which % std::size(kEdits));
    if (to == ConfigGraph::kRefused || to == current_id_) {
        return; // an address already there or not, a value already set: nothing changes
    }
    const Config& cfg = graph.config(to);
    if (const auto refusal = check_runtime_change(*current_, cfg)) {
        violated("a change the running dataplane takes was refused: " + refusal->to_string());
    }
    if (check_blocks_fit(cfg, shared_.workers)) {
        return; // ephemera refuses it too: a block would not fit some worker's share
    }
    ++totals().config_changes;
    for (Ipv4Addr a : current_->pool) {
        pool_shrunk_ =
            pool_shrunk_ || std::find(cfg.pool.begin(), cfg.pool.end(), a) == cfg.pool.end();
    }
    range_changed_ = range_changed_ || cfg.port_range != current_->port_range ||
                     cfg.reserved != current_->reserved;
    current_id_ = to;
    current_ = &cfg;
    take_config(cfg);
    // Each worker takes it up in its housekeeping, within 64 iterations; until then a frame
    // may leave under the old config (check_sent reads each worker's latched MTU).
    publish_plans(cfg);
    for (int i = 0; i < 64; ++i) {
        poll_round();
    }
    settle();
    retired_.clear(); // every worker has been through its housekeeping since
}

} // namespace ephemera::fuzz
