// ephemera-log-volume: NAT event log volume per subscriber per day, measured (docs/logging.md).
//
// One synthetic subscriber day goes through a real Translator once per allocation mode, with a
// NAT event ring attached and the mode's default logging.events (control/config_logging.cpp,
// default_events). The records drained from the ring are encoded with the real encoders: the
// RFC 5424 syslog message, the IPFIX data messages and the archive's record line, and the
// archive lines are compressed with zstd at level 3, as a rotated archive file is. Only records
// stamped inside the reported day count; the day is preceded by 3 h of warm-up, so that it
// begins with mappings and blocks in place.
//
// Population: bench/block_sim.cpp's. Most subscribers peak at tens of ports in use (lognormal,
// median 24), 1.5 % at hundreds to thousands (Pareto from 500, capped at 6000); each follows a
// residential day (low at 04:00, high at 21:00) shifted by up to 1.5 h either way. Flows arrive
// as a Poisson process whose rate gives that concurrency; a flow lasts a lognormal time (median
// 5 s, heavy tail, capped at 6 h) and is TCP (70 %) or UDP (30 %). Most subscribers also keep one
// to three long-lived TCP connections open day and night, one after another (lognormal, median
// 1 h). Every flow has its own inside port, so it is one mapping (and one session).
//
// Packets: a TCP flow is SYN out, SYN-ACK in, an ACK out every hour it lasts, then FIN out and
// FIN in (the session turns transitory: 240 s). A UDP flow is a packet out at its start, one
// every 120 s while it lasts and one at its end (then the 300 s UDP timeout). Expiry runs every
// simulated second, the interim walk every 10 s; the ring is drained every second.
//
// Modes (a pool of one address per 32 subscribers, ports 1024-65535, one worker, default limits
// and timeouts):
//   dynamic                 events mapping, static, exhaustion
//   blocks 256              events block, static, exhaustion; max_blocks 8, no interim records
//   blocks 256, interim 1 h the same with pool.blocks.interim = 3600
//   deterministic           events deterministic, static, exhaustion; the subscribers' prefix
//                           spread over the pool (2016 ports each), plus the one formula record
//                           of a start
//
// Syslog messages have hostname "cgn-01" and procid 4242; IPFIX data messages are packed up to
// 1400 bytes (what the sink sends over UDP) from batches of 4096 records, so they are full, as on
// a NAT with many subscribers. Refusal records (ports-exhausted, quota-exceeded) are counted
// apart: at most one a second per reason and worker, they are a cost of the NAT, not of each
// subscriber; so are IPFIX template messages, archive seals and file headers, printed last.
//
// With --archive DIR each mode's records are also written through the real ArchiveSink into
// DIR/<mode>/ on the simulated clock (seals every second or 1024 records, rotation every hour,
// zstd), so `ephemeractl log verify` and `ephemeractl whois` can be run on the result.
//
// --archive-key FILE gives the seals an HMAC with that key (logging.archive.hmac_key_file).
//
// Usage: ephemera-log-volume [--subscribers N] [--seed N] [--archive DIR [--archive-key FILE]]
#include "population.hpp"

#include "ephemera/checksum.hpp"
#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/deterministic.hpp"
#include "ephemera/nat_event.hpp"
#include "ephemera/nat_events.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/tcp_state.hpp"
#include "ephemera/translator.hpp"
#include "ephemera/types.hpp"
#include "ephemera/worker_plan.hpp"
#include "logging/archive_format.hpp"
#include "logging/archive_writer.hpp"
#include "logging/event_text.hpp"
#include "logging/ipfix_encoder.hpp"
#include "logging/syslog_format.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ephemera;
namespace lg = ephemera::logging;

constexpr std::int64_t kMs = 1000;
constexpr std::int64_t kWarmup = 3 * 3600 * kMs;
constexpr std::int64_t kDay = 24 * 3600 * kMs;
constexpr std::int64_t kEnd = kWarmup + kDay;
// The reported day: 2026-12-05T00:00:00Z; the simulation starts 3 h before.
constexpr std::uint64_t kDayStartUnixMs = 1796428800000ULL;
constexpr std::uint64_t kSimStartUnixMs = kDayStartUnixMs - kWarmup;

// Pool addresses: one per 32 subscribers of the prefix, so that deterministic mode gives each
// subscriber 2016 ports (64512 / 32) whatever the population's size.
constexpr std::uint32_t kSubscribersPerAddress = 32;
constexpr Ipv4Addr kPoolFirst{198, 18, 0, 1};
constexpr Ipv4Addr kPrefix{100, 64, 0, 0};
constexpr PortRange kPortRange{1024, 65535};
constexpr SipKey kSecret{0x5eed5eed5eed5eedull, 0x0123456789abcdefull};
constexpr std::size_t kIpfixBatch = 4096;
constexpr std::int64_t kUdpRefresh = 120 * kMs;
constexpr std::int64_t kTcpKeepalive = 3600 * kMs;

constexpr MacAddr kInsidePortMac{{0x02, 0, 0, 0, 0, 0x01}};
constexpr MacAddr kOutsidePortMac{{0x02, 0, 0, 0, 0, 0x02}};
constexpr MacAddr kNextHopMac{{0x02, 0, 0, 0, 0, 0x03}};
constexpr MacAddr kSubscriberMac{{0x02, 0, 0, 0, 0x01, 0x00}};
constexpr L2Context kL2{kInsidePortMac, kOutsidePortMac, kNextHopMac};

constexpr std::uint16_t kFrameLen = 60;
constexpr std::uint16_t kIpTotalLen = kFrameLen - kEthHeaderLen;
constexpr std::uint16_t kL4Len = kIpTotalLen - kIpv4MinHeaderLen;

// ---- the population (bench/block_sim.cpp) ---------------------------------------------------

struct Flow {
    std::int64_t start = 0; // ms since the simulation start
    std::int64_t stop = 0;  // its last packet
    std::uint32_t subscriber = 0;
    std::uint32_t remote = 0;
    std::uint16_t inside_port = 0;
    std::uint16_t remote_port = 0;
    bool tcp = false;
    bool refused = false;
    std::uint32_t external = 0;
    std::uint16_t external_port = 0;
};

// Subscriber `id`'s flows, appended to `flows`, inside ports assigned so that no two flows of
// the subscriber share one while either could still hold a mapping.
void generate(std::uint64_t seed, std::uint32_t id, std::vector<Flow>& flows,
              std::vector<std::int64_t>& port_free_at) {
    std::mt19937_64 rng(population::splitmix(seed * 0x100000001b3ull + id));
    const population::Shape shape = population::draw_shape(rng);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    const double shift = shape.shift;
    std::lognormal_distribution<double> duration(std::log(5.0), 2.0);
    std::exponential_distribution<double> gap(shape.peak / population::kMeanHold);
    const std::size_t first = flows.size();
    const double end = static_cast<double>(kEnd) / kMs;
    for (double t = 0;;) {
        t += gap(rng);
        if (t >= end) {
            break;
        }
        const double hour = (t - static_cast<double>(kWarmup) / kMs) / 3600.0 - shift;
        if (uni(rng) >= population::profile(hour)) {
            continue;
        }
        const double d = std::min(duration(rng), 6 * 3600.0);
        Flow f;
        f.subscriber = id;
        f.start = static_cast<std::int64_t>(t * kMs);
        f.stop = static_cast<std::int64_t>((t + d) * kMs);
        f.tcp = uni(rng) < 0.7;
        flows.push_back(f);
    }
    const int background = uni(rng) < 0.1 ? 0 : 1 + static_cast<int>(uni(rng) * 3);
    std::lognormal_distribution<double> long_lived(std::log(3600.0), 1.0);
    std::exponential_distribution<double> pause(1.0 / 30);
    for (int c = 0; c < background; ++c) {
        for (double at = uni(rng) * 3600; at < end;) {
            const double stop_at = at + long_lived(rng);
            Flow f;
            f.subscriber = id;
            f.start = static_cast<std::int64_t>(at * kMs);
            f.stop = static_cast<std::int64_t>(stop_at * kMs);
            f.tcp = true;
            flows.push_back(f);
            at = stop_at + pause(rng);
        }
    }
    std::sort(flows.begin() + static_cast<std::ptrdiff_t>(first), flows.end(),
              [](const Flow& a, const Flow& b) { return a.start < b.start; });
    // Inside ports 1024..65535 in turn, skipping one whose last flow may still be mapped.
    std::fill(port_free_at.begin(), port_free_at.end(), 0);
    std::uint32_t cursor = 0;
    const auto span = static_cast<std::uint32_t>(port_free_at.size());
    for (std::size_t i = first; i < flows.size(); ++i) {
        Flow& f = flows[i];
        for (std::uint32_t tries = 0; tries < span; ++tries, cursor = (cursor + 1) % span) {
            if (port_free_at[cursor] <= f.start) {
                break;
            }
        }
        f.inside_port = static_cast<std::uint16_t>(1024 + cursor);
        port_free_at[cursor] = f.stop + 400 * kMs; // past the timeouts and a hold-down
        cursor = (cursor + 1) % span;
        const std::uint64_t r = population::splitmix(seed ^ (i * 0x9e3779b97f4a7c15ull));
        f.remote = Ipv4Addr{198, 19, 0, 0}.value() | static_cast<std::uint32_t>(r & 0xffff);
        static constexpr std::uint16_t kPorts[] = {443, 443, 443, 80, 5228, 993, 8443, 3478};
        f.remote_port = f.tcp ? kPorts[(r >> 16) % 8] : ((r >> 16) % 2 ? 443 : 53);
    }
}

// ---- packets ----------------------------------------------------------------------------------

enum class Step : std::uint8_t { udp, tcp_open, tcp_keepalive, tcp_close };

struct PacketEvent {
    std::int64_t at;
    std::uint32_t flow;
    Step step;
    bool operator<(const PacketEvent& o) const {
        return at != o.at ? at < o.at : flow != o.flow ? flow < o.flow : step < o.step;
    }
};

std::vector<PacketEvent> packet_events(const std::vector<Flow>& flows) {
    std::vector<PacketEvent> out;
    out.reserve(flows.size() * 3);
    for (std::uint32_t i = 0; i < flows.size(); ++i) {
        const Flow& f = flows[i];
        if (f.tcp) {
            out.push_back({f.start, i, Step::tcp_open});
            for (std::int64_t t = f.start + kTcpKeepalive; t < f.stop && t < kEnd;
                 t += kTcpKeepalive) {
                out.push_back({t, i, Step::tcp_keepalive});
            }
            if (f.stop < kEnd) {
                out.push_back({f.stop, i, Step::tcp_close});
            }
        } else {
            out.push_back({f.start, i, Step::udp});
            for (std::int64_t t = f.start + kUdpRefresh; t < f.stop && t < kEnd; t += kUdpRefresh) {
                out.push_back({t, i, Step::udp});
            }
            if (f.stop > f.start && f.stop < kEnd) {
                out.push_back({f.stop, i, Step::udp});
            }
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::uint64_t pseudo_header_sum(const std::uint8_t* ip) {
    const std::uint8_t proto_len[4] = {0, ip[ipv4_off::protocol],
                                       static_cast<std::uint8_t>(kL4Len >> 8),
                                       static_cast<std::uint8_t>(kL4Len & 0xff)};
    return checksum_partial({ip + ipv4_off::src, 8}, checksum_partial(proto_len));
}

// A 60-byte UDP or TCP frame with correct IPv4 and L4 checksums.
void write_frame(std::uint8_t* frame, bool inbound, bool tcp, std::uint8_t tcp_flags, Ipv4Addr src,
                 std::uint16_t src_port, Ipv4Addr dst, std::uint16_t dst_port) {
    std::memset(frame, 0, kFrameLen);
    std::memcpy(frame, (inbound ? kOutsidePortMac : kInsidePortMac).bytes, 6);
    std::memcpy(frame + 6, (inbound ? kNextHopMac : kSubscriberMac).bytes, 6);
    store_be16(frame + 12, kEtherTypeIpv4);
    std::uint8_t* ip = frame + kEthHeaderLen;
    ip[0] = 0x45;
    store_be16(ip + 2, kIpTotalLen);
    ip[ipv4_off::ttl] = 64;
    const Protocol proto = tcp ? Protocol::tcp : Protocol::udp;
    ip[ipv4_off::protocol] = static_cast<std::uint8_t>(proto);
    store_be32(ip + ipv4_off::src, src.value());
    store_be32(ip + ipv4_off::dst, dst.value());
    store_wire16(ip + ipv4_off::checksum, checksum_full({ip, kIpv4MinHeaderLen}));
    std::uint8_t* l4 = ip + kIpv4MinHeaderLen;
    store_be16(l4, src_port);
    store_be16(l4 + 2, dst_port);
    if (tcp) {
        l4[12] = 5 << 4;
        l4[13] = tcp_flags;
        store_be16(l4 + 14, 65535);
    } else {
        store_be16(l4 + 4, kL4Len);
    }
    std::uint16_t sum = checksum_full({l4, kL4Len}, pseudo_header_sum(ip));
    if (!tcp && sum == 0) {
        sum = 0xffff;
    }
    store_wire16(l4 + l4_checksum_offset(proto), sum);
}

// ---- the modes ------------------------------------------------------------------------------

constexpr std::uint32_t bit(NatEventKind k) {
    return 1u << static_cast<unsigned>(k);
}
constexpr std::uint32_t kMappingGroup =
    bit(NatEventKind::mapping_created) | bit(NatEventKind::mapping_deleted);
constexpr std::uint32_t kBlockGroup = bit(NatEventKind::block_allocated) |
                                      bit(NatEventKind::block_released) |
                                      bit(NatEventKind::block_interim);
constexpr std::uint32_t kCommonGroups =
    bit(NatEventKind::static_added) | bit(NatEventKind::static_removed) |
    bit(NatEventKind::ports_exhausted) | bit(NatEventKind::quota_exceeded);

struct Mode {
    const char* name;   // for the table
    const char* dir;    // for --archive
    const char* events; // the default groups, for the table
    AllocationMode allocation;
    std::uint32_t interim; // s
};

constexpr std::array<Mode, 4> kModes = {{
    {"dynamic", "dynamic", "mapping", AllocationMode::dynamic, 0},
    {"blocks 256", "blocks", "block", AllocationMode::blocks, 0},
    {"blocks 256, interim 1 h", "blocks-interim", "block", AllocationMode::blocks, 3600},
    {"deterministic", "deterministic", "deterministic", AllocationMode::deterministic, 0},
}};

std::uint8_t prefix_len_for(std::uint32_t subscribers) {
    std::uint8_t bits = 0;
    while ((std::uint64_t{1} << bits) < subscribers) {
        ++bits;
    }
    return static_cast<std::uint8_t>(32 - bits);
}

std::uint32_t pool_addresses(std::uint32_t subscribers) {
    const std::uint32_t prefix = 1u << (32 - prefix_len_for(subscribers));
    return std::max<std::uint32_t>(1, prefix / kSubscribersPerAddress);
}

Config mode_config(const Mode& m, std::uint32_t subscribers) {
    Config c;
    c.source = "log_volume";
    for (std::uint32_t i = 0; i < pool_addresses(subscribers); ++i) {
        c.pool.emplace_back(kPoolFirst.value() + i);
    }
    c.port_range = kPortRange;
    c.port_range_name = "1024-65535";
    c.allocation = m.allocation;
    c.blocks.block_size = 256;
    c.blocks.max_blocks = 8;
    c.blocks.interim = m.interim;
    c.deterministic.prefix = kPrefix;
    c.deterministic.prefix_len = prefix_len_for(subscribers);
    c.limits.max_sessions = 1u << 19;
    c.limits.max_subscribers = 1u << 16;
    c.logging.archive.path = "/nonexistent"; // a sink is on: the worker records
    c.logging.events = kCommonGroups | (m.allocation == AllocationMode::dynamic  ? kMappingGroup
                                        : m.allocation == AllocationMode::blocks ? kBlockGroup
                                                                                 : 0);
    if (m.allocation == AllocationMode::deterministic) {
        c.logging.events |= bit(NatEventKind::deterministic_formula);
    }
    return c;
}

// ---- what the records cost -----------------------------------------------------------------

struct Volume {
    std::array<std::uint64_t, kNatEventKindCount> records{};
    std::uint64_t total = 0;
    std::uint64_t syslog = 0;     // messages (UDP datagram payloads)
    std::uint64_t syslog_tcp = 0; // ... with RFC 6587 octet counting
    std::uint64_t ipfix = 0;      // data messages, headers included
    std::uint64_t ipfix_messages = 0;
    std::uint64_t archive = 0; // record lines
    std::uint64_t archive_zst = 0;
    std::uint64_t flows = 0;   // flows started in the day
    std::uint64_t refused = 0; // ... whose first packet was dropped
    std::uint64_t ring_dropped = 0;
    double seconds = 0; // the run's wall time
};

// Refusal records (ports-exhausted, quota-exceeded) are at most one a second per reason and
// worker, however many subscribers are refused: a cost of the NAT, counted apart.
bool is_refusal(NatEventKind k) {
    return k == NatEventKind::ports_exhausted || k == NatEventKind::quota_exceeded ||
           k == NatEventKind::threshold_reached;
}

struct ModeVolume {
    Volume identity; // what says who held which port: mappings, blocks, statics, the formula
    Volume refusals;
};

class Meter {
public:
    explicit Meter(Volume& v) : v_(v), ipfix_(1) {
        header_.hostname = "cgn-01";
        header_.procid = 4242;
    }

    void add(const NatEvent& e) {
        if (e.time_ms < kDayStartUnixMs || e.time_ms >= kDayStartUnixMs + kDay) {
            return;
        }
        ++v_.records[static_cast<std::size_t>(e.kind)];
        ++v_.total;
        const std::string msg = lg::syslog_message(e, header_);
        v_.syslog += msg.size();
        v_.syslog_tcp += lg::octet_counted(msg).size();
        const std::uint64_t hour = (e.time_ms - kDayStartUnixMs) / 3'600'000;
        if (hour != hour_) {
            compress();
            hour_ = hour;
        }
        text_ += lg::format_record(e);
        text_ += '\n';
        ipfix_pending_.push_back(e);
        if (ipfix_pending_.size() == kIpfixBatch) {
            encode_ipfix();
        }
    }

    void finish() {
        compress();
        encode_ipfix();
    }

private:
    // One archive file per hour of records (rotate_age 3600 s), compressed whole.
    void compress() {
        if (text_.empty()) {
            return;
        }
        v_.archive += text_.size();
        std::string packed(ZSTD_compressBound(text_.size()), '\0');
        const std::size_t n =
            ZSTD_compress(packed.data(), packed.size(), text_.data(), text_.size(), 3);
        if (ZSTD_isError(n) == 0) {
            v_.archive_zst += n;
        }
        text_.clear();
    }

    void encode_ipfix() {
        if (ipfix_pending_.empty()) {
            return;
        }
        std::vector<lg::IpfixMessage> out;
        ipfix_.data_messages(ipfix_pending_,
                             static_cast<std::uint32_t>(ipfix_pending_.back().time_ms / 1000),
                             lg::kIpfixUdpMessageBytes, out);
        for (const auto& m : out) {
            v_.ipfix += m.bytes.size();
        }
        v_.ipfix_messages += out.size();
        ipfix_pending_.clear();
    }

    Volume& v_;
    lg::SyslogHeader header_;
    lg::IpfixEncoder ipfix_;
    std::vector<NatEvent> ipfix_pending_;
    std::string text_;
    std::uint64_t hour_ = 0;
};

// The encoding on a second thread, batch by batch, while the translator runs on this one.
class AsyncMeter {
public:
    explicit AsyncMeter(ModeVolume& v)
        : identity_(v.identity), refusals_(v.refusals), thread_([this] { run(); }) {}
    ~AsyncMeter() { finish(); }
    AsyncMeter(const AsyncMeter&) = delete;
    AsyncMeter& operator=(const AsyncMeter&) = delete;

    void add(const NatEvent& e) {
        batch_.push_back(e);
        if (batch_.size() == kIpfixBatch) {
            hand_over();
        }
    }
    void finish() {
        if (!thread_.joinable()) {
            return;
        }
        hand_over();
        {
            const std::lock_guard lock(mutex_);
            done_ = true;
        }
        ready_.notify_one();
        thread_.join();
        identity_.finish();
        refusals_.finish();
    }

private:
    void hand_over() {
        if (batch_.empty()) {
            return;
        }
        {
            const std::lock_guard lock(mutex_);
            queue_.push_back(std::move(batch_));
        }
        ready_.notify_one();
        batch_ = {};
        batch_.reserve(kIpfixBatch);
    }
    void run() {
        for (;;) {
            std::vector<NatEvent> batch;
            {
                std::unique_lock lock(mutex_);
                ready_.wait(lock, [this] { return done_ || !queue_.empty(); });
                if (queue_.empty()) {
                    return;
                }
                batch = std::move(queue_.front());
                queue_.pop_front();
            }
            for (const NatEvent& e : batch) {
                (is_refusal(e.kind) ? refusals_ : identity_).add(e);
            }
        }
    }

    Meter identity_;
    Meter refusals_;
    std::vector<NatEvent> batch_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::vector<NatEvent>> queue_;
    bool done_ = false;
    std::thread thread_;
};

Tick tick_of(std::int64_t ms) {
    return static_cast<Tick>(kTicksPerSecond + ms * kTicksPerSecond / kMs);
}

// One mode through the translator: every flow's packets in time order, expiry every second.
ModeVolume run_mode(const Mode& mode, std::uint32_t subscribers, std::vector<Flow> flows,
                    const std::vector<PacketEvent>& packets, const std::string& archive_dir,
                    const std::vector<std::uint8_t>& archive_key) {
    const auto started = std::chrono::steady_clock::now();
    const Config config = mode_config(mode, subscribers);
    const Ownership ownership = Ownership::for_config(config, 1);
    const PlanCompiler compiler(ownership, 0);
    const auto plan = compiler.compile(std::make_shared<const Config>(config), nullptr);
    CounterBlock counters;
    Translator translator(*plan, ownership, 0, kSecret, counters, -1, 0);
    static int rings = 0;
    const std::string ring_name = "log_volume_" + std::to_string(rings++);
    rte_ring* ring = rte_ring_create_elem(ring_name.c_str(), sizeof(NatEvent), 1u << 16, -1,
                                          RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (ring == nullptr) {
        std::fprintf(stderr, "rte_ring_create_elem: %s\n", rte_strerror(rte_errno));
        std::exit(1);
    }
    translator.attach_event_ring(ring);

    ModeVolume mv;
    Volume& v = mv.identity;
    AsyncMeter meter(mv);
    std::unique_ptr<lg::ArchiveSink> archive;
    if (!archive_dir.empty()) {
        lg::ArchiveOptions o;
        o.directory = archive_dir + "/" + mode.dir;
        o.hmac_key = archive_key;
        std::filesystem::remove_all(o.directory);
        std::filesystem::create_directories(o.directory);
        archive = std::make_unique<lg::ArchiveSink>(o, kSimStartUnixMs);
    }
    std::vector<NatEvent> drained(4096);
    const auto drain = [&](std::int64_t now) {
        for (;;) {
            const unsigned n =
                rte_ring_sc_dequeue_burst_elem(ring, drained.data(), sizeof(NatEvent),
                                               static_cast<unsigned>(drained.size()), nullptr);
            if (n == 0) {
                break;
            }
            for (unsigned i = 0; i < n; ++i) {
                meter.add(drained[i]);
            }
            if (archive) {
                archive->write({drained.data(), n}, kSimStartUnixMs + now);
            }
        }
        if (archive) {
            archive->poll(kSimStartUnixMs + now);
        }
    };
    if (mode.allocation == AllocationMode::deterministic) {
        // The logging thread's record of the formula, at start.
        const NatEvent f = formula_event(DeterministicMap(config), kSimStartUnixMs);
        if (archive) {
            archive->write({&f, 1}, kSimStartUnixMs);
        }
        NatEvent counted = f;
        counted.time_ms = kDayStartUnixMs; // one a day counted: as if the NAT started today
        meter.add(counted);
    }

    std::int64_t next_second = 0;
    const auto housekeeping = [&](std::int64_t until) {
        while (next_second <= until) {
            const Tick now = tick_of(next_second);
            translator.set_time_ms(kSimStartUnixMs + static_cast<std::uint64_t>(next_second));
            while (translator.expire(now, 1000) != 0) {
            }
            if (mode.interim != 0 && next_second % (10 * kMs) == 0) {
                translator.log_interim(now, pool_addresses(subscribers) * 1024);
            }
            drain(next_second);
            next_second += kMs;
        }
    };

    alignas(64) std::uint8_t frame[128];
    std::array<Verdict, 1> verdict{};
    const auto send = [&](bool inbound, const Flow& f, std::uint8_t tcp_flags, Tick now) {
        if (inbound) {
            write_frame(frame, true, f.tcp, tcp_flags, Ipv4Addr{f.remote}, f.remote_port,
                        Ipv4Addr{f.external}, f.external_port);
        } else {
            write_frame(frame, false, f.tcp, tcp_flags, Ipv4Addr{kPrefix.value() + f.subscriber},
                        f.inside_port, Ipv4Addr{f.remote}, f.remote_port);
        }
        PacketRef ref;
        ref.frame = frame;
        ref.length = kFrameLen;
        ref.capacity = sizeof frame;
        ref.parsed = parse_frame({frame, kFrameLen});
        std::array<PacketRef, 1> refs{ref};
        verdict[0] = Verdict::drop;
        if (inbound) {
            translator.out2in(refs, now, kL2, verdict);
        } else {
            translator.in2out(refs, now, kL2, verdict);
        }
        return verdict[0] == Verdict::forward;
    };

    for (const PacketEvent& p : packets) {
        housekeeping(p.at - 1);
        Flow& f = flows[p.flow];
        const Tick now = tick_of(p.at);
        translator.set_time_ms(kSimStartUnixMs + static_cast<std::uint64_t>(p.at));
        const bool first = p.step == Step::tcp_open || (p.step == Step::udp && p.at == f.start);
        if (first) {
            const bool in_day = p.at >= kWarmup;
            v.flows += in_day;
            if (!send(false, f, tcp_flag::syn, now)) {
                f.refused = true;
                v.refused += in_day;
                continue;
            }
            const std::uint8_t* ip = frame + kEthHeaderLen;
            f.external = load_be32(ip + ipv4_off::src);
            f.external_port =
                static_cast<std::uint16_t>(ip[kIpv4MinHeaderLen] << 8 | ip[kIpv4MinHeaderLen + 1]);
            if (f.tcp) {
                send(true, f, tcp_flag::syn | tcp_flag::ack, now);
            }
            continue;
        }
        if (f.refused) {
            continue;
        }
        switch (p.step) {
        case Step::udp:
            send(false, f, 0, now);
            break;
        case Step::tcp_keepalive:
            send(false, f, tcp_flag::ack, now);
            break;
        case Step::tcp_close:
            send(false, f, tcp_flag::fin | tcp_flag::ack, now);
            send(true, f, tcp_flag::fin | tcp_flag::ack, now);
            break;
        case Step::tcp_open:
            break;
        }
    }
    housekeeping(kEnd);
    meter.finish();
    v.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (archive) {
        archive->flush(kSimStartUnixMs + kEnd);
        archive.reset();
    }
    v.ring_dropped = counters.get(Counter::log_records_dropped);
    rte_ring_free(ring);
    return mv;
}

// ---- main -----------------------------------------------------------------------------------

std::uint32_t parse_number(const char* s) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v > 0xffffffffUL) {
        std::fprintf(stderr, "not a number: %s\n", s);
        std::exit(2);
    }
    return static_cast<std::uint32_t>(v);
}

bool init_eal(const char* program) {
    std::vector<std::string> args = {program,
                                     "--no-huge",
                                     "-m",
                                     "512",
                                     "--no-pci",
                                     "--file-prefix",
                                     "log-volume-" + std::to_string(getpid()),
                                     "-l",
                                     "0",
                                     "--log-level=error"};
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
        return false;
    }
    return true;
}

double per(std::uint64_t x, std::uint32_t subscribers) {
    return static_cast<double>(x) / subscribers;
}

} // namespace

int main(int argc, char** argv) {
    std::uint32_t subscribers = 256;
    std::uint64_t seed = 1;
    std::string archive_dir;
    std::vector<std::uint8_t> archive_key;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        const char* value = argv[++i];
        if (a == "--subscribers") {
            subscribers = parse_number(value);
        } else if (a == "--seed") {
            seed = parse_number(value);
        } else if (a == "--archive") {
            archive_dir = value;
        } else if (a == "--archive-key") {
            auto key = lg::read_key_file(value);
            if (!key) {
                std::fprintf(stderr, "%s: unreadable or empty\n", value);
                return 2;
            }
            archive_key = std::move(*key);
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    // Memory grows with the flows: about 3.5 MB a subscriber.
    if (subscribers == 0 || subscribers > 1024) {
        std::fprintf(stderr, "--subscribers: 1..1024\n");
        return 2;
    }
    if (!init_eal(argv[0])) {
        return 1;
    }
    const auto started = std::chrono::steady_clock::now();
    std::vector<Flow> flows;
    std::vector<std::int64_t> port_free_at(65536 - 1024);
    for (std::uint32_t id = 0; id < subscribers; ++id) {
        generate(seed, id, flows, port_free_at);
    }
    const std::vector<PacketEvent> packets = packet_events(flows);

    std::vector<ModeVolume> volumes;
    for (const Mode& m : kModes) {
        volumes.push_back(run_mode(m, subscribers, flows, packets, archive_dir, archive_key));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    const Volume& d = volumes.front().identity;
    std::printf("Population: %u subscribers (seed %llu), %.0f flows per subscriber in the day, "
                "%zu packets in 27 h; pool of %u addresses, ports %u-%u, one worker.\n\n",
                subscribers, static_cast<unsigned long long>(seed), per(d.flows, subscribers),
                packets.size(), pool_addresses(subscribers), kPortRange.lo, kPortRange.hi);
    std::printf("Records that say who held which port, per subscriber per day (bytes: what goes "
                "on the wire or to disk, without UDP/TCP/IP headers; refusal records apart, "
                "below):\n\n");
    std::printf("| mode | events | flows refused | records | syslog | syslog (TCP) | IPFIX | "
                "archive | archive zstd |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t i = 0; i < kModes.size(); ++i) {
        const Volume& v = volumes[i].identity;
        const double records = per(v.total, subscribers);
        std::printf("| %s | %s | %.2f %% | %.*f | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
                    kModes[i].name, kModes[i].events,
                    v.flows == 0 ? 0.0 : 100.0 * static_cast<double>(v.refused) / v.flows,
                    records < 10 ? 2 : 0, records, per(v.syslog, subscribers),
                    per(v.syslog_tcp, subscribers), per(v.ipfix, subscribers),
                    per(v.archive, subscribers), per(v.archive_zst, subscribers));
    }
    std::printf("\nRefusal records (ports-exhausted, quota-exceeded) for the whole NAT in the day: "
                "at most one a second per reason and worker, so they do not grow with the "
                "subscribers refused:\n\n");
    std::printf("| mode | ports-exhausted | quota-exceeded | syslog | IPFIX | archive | archive "
                "zstd |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t i = 0; i < kModes.size(); ++i) {
        const Volume& r = volumes[i].refusals;
        std::printf("| %s | %llu | %llu | %llu | %llu | %llu | %llu |\n", kModes[i].name,
                    static_cast<unsigned long long>(
                        r.records[static_cast<std::size_t>(NatEventKind::ports_exhausted)]),
                    static_cast<unsigned long long>(
                        r.records[static_cast<std::size_t>(NatEventKind::quota_exceeded)]),
                    static_cast<unsigned long long>(r.syslog),
                    static_cast<unsigned long long>(r.ipfix),
                    static_cast<unsigned long long>(r.archive),
                    static_cast<unsigned long long>(r.archive_zst));
    }
    std::printf("\nRecords per subscriber per day by kind, and bytes per record (the first "
                "table's records):\n\n");
    std::printf("| mode |");
    std::vector<std::size_t> kinds;
    for (std::size_t k = 0; k < kNatEventKindCount; ++k) {
        bool any = false;
        for (const ModeVolume& v : volumes) {
            any |= v.identity.records[k] != 0;
        }
        if (any) {
            kinds.push_back(k);
            std::printf(" %s |", std::string(kNatEventNames[k]).c_str());
        }
    }
    std::printf(" syslog B/rec | IPFIX B/rec | archive B/rec | zstd ratio | ring drops |\n|---|");
    for (std::size_t k = 0; k < kinds.size() + 5; ++k) {
        std::printf("---:|");
    }
    std::printf("\n");
    for (std::size_t i = 0; i < kModes.size(); ++i) {
        const Volume& v = volumes[i].identity;
        std::printf("| %s |", kModes[i].name);
        for (const std::size_t k : kinds) {
            std::printf(" %.2f |", per(v.records[k], subscribers));
        }
        const auto t = static_cast<double>(std::max<std::uint64_t>(v.total, 1));
        std::printf(" %.1f | %.1f | %.1f | %.1f | %llu |\n", v.syslog / t, v.ipfix / t,
                    v.archive / t,
                    v.archive_zst == 0 ? 0.0 : static_cast<double>(v.archive) / v.archive_zst,
                    static_cast<unsigned long long>(v.ring_dropped));
    }

    // Per NAT, whatever the number of subscribers.
    lg::IpfixEncoder encoder(1);
    const std::size_t templates = encoder.templates_message(0).size();
    lg::Seal seal;
    seal.seq = 12345;
    seal.records = 1024;
    const std::size_t seal_bytes = lg::format_seal(seal).size() + 1;
    seal.hmac = lg::Digest{};
    const std::size_t seal_hmac_bytes = lg::format_seal(seal).size() + 1;
    const std::size_t header = lg::format_header({lg::Digest{}, 1}).size() + 1;
    std::printf("\nPer NAT, not per subscriber: an IPFIX template message of %zu bytes per "
                "collector every template_refresh (60 s: %.0f KB a day over UDP; once per "
                "connection over TCP); an archive seal line of %zu bytes (%zu with hmac) per "
                "second with records or per 1024 records (at most %.1f MB a day from the "
                "clock), and a %zu-byte header per archive file.\n",
                templates, templates * 1440 / 1e3, seal_bytes, seal_hmac_bytes,
                seal_hmac_bytes * 86400 / 1e6, header);
    std::printf("Ran in %.1f s (", seconds);
    for (std::size_t i = 0; i < kModes.size(); ++i) {
        std::printf("%s%s %.1f s", i == 0 ? "" : ", ", kModes[i].name, volumes[i].identity.seconds);
    }
    std::printf(").\n");
    rte_eal_cleanup();
    return 0;
}
