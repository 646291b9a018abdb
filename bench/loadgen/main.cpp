// ephemera-loadgen [EAL options] -- [options]
//
// Plays S subscribers x F flows into a NAT44 over two ports and the servers behind it, checks
// every packet both ways, and reports throughput each way, new sessions per second, losses,
// mistranslations and latency (see run.hpp for the phases, generator.hpp for the checks).
//
// Topology without a NIC: this process holds two net_memif ports as role=server, with sockets
// SOCKET_DIR/NAME-in.sock and NAME-out.sock; the NAT (ephemera) or the floor (dpdk-testpmd
// --forward-mode=io) holds the client ends. Start this first: a memif client cannot start
// without its server. Typical use is through bench/load-run.sh.
#include "generator.hpp"
#include "ports.hpp"
#include "report.hpp"
#include "run.hpp"

#include <CLI/CLI.hpp>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace loadgen;

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitStartup = 3;
constexpr int kExitNotReady = 4;
constexpr int kExitMistranslated = 5;

extern "C" void on_stop_signal(int) {
    request_stop();
}

struct Options {
    std::string name = "load";
    std::string socket_dir = "/run/ephemera-load";
    std::string in_port = "net_memif_in";
    std::string out_port = "net_memif_out";
    std::string in_mac = "02:4c:47:00:00:01";
    std::string out_mac = "02:4c:47:00:00:02";
    std::string dut_in_mac = "02:45:50:00:00:01";
    std::string dut_out_mac = "02:45:50:00:00:02";
    std::uint32_t subscribers = 1024;
    std::uint32_t flows = 64;
    std::uint32_t servers = 256;
    std::string proto = "mix";
    unsigned frame_size = 64;
    double duration = 10;
    double warmup = 1;
    double rate = 0;
    double new_flow_rate = 0;
    double churn = 0;
    double catch_up = 0;
    std::uint32_t long_lived = 0;
    double gap_limit = 60;
    std::string flood = "none";
    double flood_rate = 0;
    double flood_start = 0;
    double flood_duration = 0;
    std::uint32_t flood_sources = 65536;
    std::string stats_jsonl;
    double latency_load = 0;
    double latency_duration = 3;
    double drain = 0.5;
    double ready_timeout = 120;
    bool no_populate = false;
    bool untranslated = false;
    std::string pool = "198.19.0.0/24";
    std::string port_range = "1024-65535";
    std::string next_hop = "198.18.0.1";
    std::string gateway = "100.64.0.1";
    unsigned queues = 1;
    std::string steering = "rss";
    std::string json;
    bool quiet = false;
    unsigned mbufs = 65535;
    std::uint32_t window = 1024;
    std::string peer_pid_file;
};

// "a.b.c.d/len" (all addresses of the prefix) or "a.b.c.d-e.f.g.h".
bool parse_pool(const std::string& text, std::uint32_t& lo, std::uint32_t& hi) {
    if (const auto slash = text.find('/'); slash != std::string::npos) {
        const auto base = parse_ipv4(text.substr(0, slash));
        const int len = std::atoi(text.substr(slash + 1).c_str());
        if (!base || len < 8 || len > 32) {
            return false;
        }
        const std::uint32_t mask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
        lo = *base & mask;
        hi = lo | ~mask;
        return true;
    }
    const auto dash = text.find('-');
    const auto a = parse_ipv4(text.substr(0, dash));
    const auto b = dash == std::string::npos ? a : parse_ipv4(text.substr(dash + 1));
    if (!a || !b || *a > *b) {
        return false;
    }
    lo = *a;
    hi = *b;
    return true;
}

bool parse_range(const std::string& text, std::uint16_t& lo, std::uint16_t& hi) {
    const auto dash = text.find('-');
    if (dash == std::string::npos) {
        return false;
    }
    const long a = std::atol(text.substr(0, dash).c_str());
    const long b = std::atol(text.substr(dash + 1).c_str());
    if (a < 1 || b > 65535 || a > b) {
        return false;
    }
    lo = static_cast<std::uint16_t>(a);
    hi = static_cast<std::uint16_t>(b);
    return true;
}

template <typename T>
T must(const std::optional<T>& v, const std::string& what, const std::string& text) {
    if (!v) {
        throw CLI::ValidationError(what, "cannot parse '" + text + "'");
    }
    return *v;
}

// Command line to RunConfig; throws CLI::ValidationError.
RunConfig make_config(const Options& o) {
    RunConfig c;
    const ProtoMix mix = o.proto == "udp"   ? ProtoMix::udp
                         : o.proto == "tcp" ? ProtoMix::tcp
                                            : ProtoMix::mix;
    if (std::uint64_t{o.subscribers} * o.flows > (std::uint64_t{1} << 28)) {
        throw CLI::ValidationError("--subscribers x --flows", "at most 2^28 flows");
    }
    if (o.subscribers > (1u << 22) - 512) {
        throw CLI::ValidationError("--subscribers", "at most 4 M - 512 (100.64.1.0 onwards)");
    }
    c.model = FlowModel(o.subscribers, o.flows, o.servers, mix);
    c.frame_len = static_cast<std::uint16_t>(o.frame_size - 4);
    c.translated = !o.untranslated;
    if (!parse_pool(o.pool, c.pool_lo, c.pool_hi)) {
        throw CLI::ValidationError("--pool", "expected a.b.c.d/len or a.b.c.d-e.f.g.h");
    }
    if (!parse_range(o.port_range, c.port_lo, c.port_hi)) {
        throw CLI::ValidationError("--port-range", "expected LO-HI within 1-65535");
    }
    c.next_hop_ip = must(parse_ipv4(o.next_hop), "--next-hop", o.next_hop);
    c.gateway_ip = must(parse_ipv4(o.gateway), "--gateway", o.gateway);
    c.probe_ip = FlowModel::kSubscriberBase - 254; // 100.64.0.2, never a flow's subscriber
    c.lg_in_mac = must(Mac::parse(o.in_mac), "--in-mac", o.in_mac);
    c.lg_out_mac = must(Mac::parse(o.out_mac), "--out-mac", o.out_mac);
    c.dut_in_mac = must(Mac::parse(o.dut_in_mac), "--dut-in-mac", o.dut_in_mac);
    c.dut_out_mac = must(Mac::parse(o.dut_out_mac), "--dut-out-mac", o.dut_out_mac);
    c.queues = static_cast<std::uint16_t>(o.queues);
    c.steering = o.steering == "owner" ? Steering::owner : Steering::rss;
    c.ownership = ephemera::Ownership(static_cast<ephemera::WorkerId>(o.queues));
    c.rate_pps = o.rate;
    c.new_flow_rate = o.new_flow_rate;
    c.churn_rate = o.churn;
    c.catch_up_s = o.catch_up;
    if (o.long_lived > c.model.flows()) {
        throw CLI::ValidationError("--long-lived", "more than the flows there are");
    }
    c.long_lived = o.long_lived;
    c.gap_limit_s = o.gap_limit;
    c.flood.type = o.flood == "syn"         ? FloodType::syn
                   : o.flood == "outside"   ? FloodType::outside
                   : o.flood == "malformed" ? FloodType::malformed
                                            : FloodType::none;
    c.flood.rate_pps = o.flood_rate;
    c.flood.start_s = o.flood_start;
    c.flood.duration_s = o.flood_duration;
    c.flood.sources = o.flood_sources;
    if (c.flood.type != FloodType::none &&
        (o.flood_duration <= 0 || o.flood_start + o.flood_duration > o.duration)) {
        throw CLI::ValidationError("--flood-duration",
                                   "the flood must have a duration and end within --duration");
    }
    c.stats_jsonl = o.stats_jsonl;
    c.window = o.window;
    c.peer_pid_file = o.peer_pid_file;
    c.latency_load = o.latency_load;
    c.warmup_s = o.warmup;
    c.measure_s = o.duration;
    c.latency_s = o.latency_duration;
    c.drain_s = o.drain;
    c.ready_timeout_s = o.ready_timeout;
    c.populate = !o.no_populate;
    c.progress = !o.quiet;
    return c;
}

int run(const Options& opts, const RunConfig& cfg) {
    const unsigned extra_lcores = rte_lcore_count() - 1;
    if (extra_lcores > 1) {
        std::fprintf(stderr, "ephemera-loadgen: uses one or two lcores (subscribers, servers); "
                             "the rest stay idle\n");
    }
    MempoolPtr pool = create_mbuf_pool("lg_mbufs", opts.mbufs);
    const std::string in_sock = opts.socket_dir + "/" + opts.name + "-in.sock";
    const std::string out_sock = opts.socket_dir + "/" + opts.name + "-out.sock";
    LoadPort in(opts.in_port, memif_server_devargs(in_sock, cfg.lg_in_mac), cfg.queues, pool.get());
    LoadPort out(opts.out_port, memif_server_devargs(out_sock, cfg.lg_out_mac), cfg.queues,
                 pool.get());
    RunConfig port_cfg = cfg;
    port_cfg.in_port = in.id();
    port_cfg.out_port = out.id();
    // A device given by name keeps its own MAC; frames and checks use what the port has.
    port_cfg.lg_in_mac = in.mac();
    port_cfg.lg_out_mac = out.mac();
    std::printf("ephemera-loadgen: inside %s (%s, %s), outside %s (%s, %s); waiting for the "
                "peer\n",
                in.name().c_str(), in.mac().to_string().c_str(), in_sock.c_str(),
                out.name().c_str(), out.mac().to_string().c_str(), out_sock.c_str());
    std::fflush(stdout);

    Shared shared(port_cfg);
    shared.mbufs = pool.get();
    shared.tsc_hz = rte_get_tsc_hz();
    // The flow records are zeroed (so touched) here, not on the first packet measured.
    Subscribers subscribers(shared);
    Servers servers(shared);

    unsigned server_lcore = RTE_MAX_LCORE;
    if (extra_lcores >= 1) {
        server_lcore = rte_get_next_lcore(rte_lcore_id(), 1, 0);
        rte_eal_remote_launch(Servers::lcore_main, &servers, server_lcore);
    }
    RunResult result =
        run_phases(shared, subscribers, server_lcore == RTE_MAX_LCORE ? &servers : nullptr);
    shared.phase.store(Phase::done, std::memory_order_relaxed);
    rte_eal_mp_wait_lcore();
    for (std::size_t k = 0; k < kFloodKindCount; ++k) {
        result.flood_sent[k] = subscribers.flood().sent(k) + servers.flood().sent(k);
    }
    if (!result.ready) {
        std::fprintf(stderr, "ephemera-loadgen: links: inside %s, outside %s\n",
                     in.link_up() ? "up" : "down", out.link_up() ? "up" : "down");
    }

    const ReportContext ctx{in.name(), out.name(), in_sock, out_sock, opts.pool, opts.port_range};
    const nlohmann::json report = make_report(port_cfg, result, shared.tsc_hz, ctx);
    print_report(report);
    if (!opts.json.empty()) {
        std::ofstream file(opts.json);
        file << report.dump(2) << "\n";
        if (!file) {
            std::fprintf(stderr, "ephemera-loadgen: cannot write %s\n", opts.json.c_str());
        }
    }
    if (!result.ready) {
        return kExitNotReady;
    }
    return mistranslations(result.final) == 0 ? 0 : kExitMistranslated;
}

} // namespace

int main(int argc, char** argv) {
    int separator = argc;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--") {
            separator = i;
            break;
        }
    }
    std::vector<char*> eal_args(argv, argv + separator);
    std::vector<std::string> app_args;
    for (int i = separator + 1; i < argc; ++i) {
        app_args.emplace_back(argv[i]);
    }

    CLI::App cli{"ephemera-loadgen: stateful NAT44 load generator and checker over two DPDK "
                 "ports (RFC 9693 method)"};
    cli.footer("Usage: ephemera-loadgen [EAL options] -- [options]\n"
               "Exit status: 0 ok, 2 usage, 3 start-up failed, 4 the peer never answered, "
               "5 mistranslations seen.");
    Options o;
    cli.add_option("--name", o.name, "Socket name: SOCKET_DIR/NAME-in.sock, NAME-out.sock")
        ->capture_default_str();
    cli.add_option("--socket-dir", o.socket_dir, "Where the memif sockets go")
        ->capture_default_str();
    cli.add_option("--in-port", o.in_port,
                   "Inside device: an EAL device of that name, else a memif server created "
                   "under this name")
        ->capture_default_str();
    cli.add_option("--out-port", o.out_port, "Outside device, likewise")->capture_default_str();
    cli.add_option("--in-mac", o.in_mac, "MAC of our inside memif port")->capture_default_str();
    cli.add_option("--out-mac", o.out_mac, "MAC of our outside memif port (the NAT's next_hop_mac)")
        ->capture_default_str();
    cli.add_option("--dut-in-mac", o.dut_in_mac, "MAC of the NAT's inside port")
        ->capture_default_str();
    cli.add_option("--dut-out-mac", o.dut_out_mac, "MAC of the NAT's outside port")
        ->capture_default_str();
    cli.add_option("-S,--subscribers", o.subscribers, "Subscribers (100.64.1.0 onwards)")
        ->check(CLI::Range(1u, (1u << 22) - 512))
        ->capture_default_str();
    cli.add_option("-F,--flows", o.flows, "Flows per subscriber")
        ->check(CLI::Range(1u, 32768u))
        ->capture_default_str();
    cli.add_option("--servers", o.servers, "Server addresses (198.18.16.0 onwards)")
        ->check(CLI::Range(1u, 65536u))
        ->capture_default_str();
    cli.add_option("--proto", o.proto, "udp, tcp or mix (even flows UDP, odd TCP)")
        ->check(CLI::IsMember({"udp", "tcp", "mix"}))
        ->capture_default_str();
    cli.add_option("--frame-size", o.frame_size, "Ethernet frame size with FCS, 64..1518")
        ->check(CLI::Range(64u, 1518u))
        ->capture_default_str();
    cli.add_option("--duration", o.duration, "Seconds of measurement")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cli.add_option("--warmup", o.warmup, "Seconds of established traffic before measuring")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--rate", o.rate, "Packets/s sent by the subscribers; 0: as fast as taken")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--new-flow-rate", o.new_flow_rate,
                   "New flows/s while populating; 0: as fast as taken")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--catch-up", o.catch_up,
                   "Seconds of --rate the generator may save up and send late when it lost its "
                   "CPU for a while (keeps the average rate on a shared host; 0: four bursts)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--churn", o.churn,
                   "Flows/s moved to a new source port while measuring (each a new session)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--long-lived", o.long_lived,
                   "Flows 0..N-1 never churn: established flows whose replies are watched for "
                   "gaps (a soak's flows that must never break)")
        ->capture_default_str();
    cli.add_option("--gap-limit", o.gap_limit,
                   "Seconds without a reply after which a long-lived flow counts as silent")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cli.add_option("--flood", o.flood,
                   "During the measure phase: syn (inside, from many subscriber addresses), "
                   "outside (to random pool ports) or malformed (both sides); see flood.hpp")
        ->check(CLI::IsMember({"none", "syn", "outside", "malformed"}))
        ->capture_default_str();
    cli.add_option("--flood-rate", o.flood_rate,
                   "Flood frames/s per side; 0: as fast as the port takes them")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--flood-start", o.flood_start, "Seconds into the measure phase it starts")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--flood-duration", o.flood_duration, "Seconds it lasts")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cli.add_option("--flood-sources", o.flood_sources,
                   "syn: distinct subscriber addresses, from 100.96.0.0")
        ->check(CLI::Range(1u, 1u << 21))
        ->capture_default_str();
    cli.add_option("--stats-jsonl", o.stats_jsonl,
                   "Append one JSON line of every counter each second to this file");
    cli.add_option("--latency-load", o.latency_load,
                   "After measuring, run at this fraction of the measured reply rate and report "
                   "latency there (0: skip)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    cli.add_option("--latency-duration", o.latency_duration, "Seconds of that latency phase")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cli.add_option("--drain", o.drain,
                   "Seconds at the end with nothing sent, for what is in flight to come back")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cli.add_option("--ready-timeout", o.ready_timeout, "Seconds to wait for the peer")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cli.add_flag("--no-populate", o.no_populate, "Skip the populate phase");
    cli.add_flag("--expect-untranslated", o.untranslated,
                 "The peer forwards without translating (the floor: testpmd io forwarding); "
                 "replies are built from what arrives");
    cli.add_option("--pool", o.pool, "NAT pool, a.b.c.d/len or a.b.c.d-e.f.g.h")
        ->capture_default_str();
    cli.add_option("--port-range", o.port_range, "NAT external port range LO-HI")
        ->capture_default_str();
    cli.add_option("--next-hop", o.next_hop, "The NAT's next hop (we answer ARP for it)")
        ->capture_default_str();
    cli.add_option("--gateway", o.gateway, "The NAT's inside gateway (probed by ARP)")
        ->capture_default_str();
    cli.add_option("--queues", o.queues, "Queues per port: the NAT's worker count")
        ->check(CLI::Range(1u, static_cast<unsigned>(kMaxQueues)))
        ->capture_default_str();
    cli.add_option("--steering", o.steering,
                   "rss: queue by 5-tuple hash; owner: queue of the owning ephemera worker "
                   "(what rte_flow steering gives)")
        ->check(CLI::IsMember({"rss", "owner"}))
        ->capture_default_str();
    cli.add_option("--window", o.window,
                   "Packets in flight at most (sent, reply not back yet); 0: no limit, send as "
                   "fast as the port takes them")
        ->capture_default_str();
    cli.add_option("--mbufs", o.mbufs, "Packet buffers")->capture_default_str();
    cli.add_option("--peer-pid-file", o.peer_pid_file,
                   "File holding the peer's pid (written once it runs): its polling threads' "
                   "CPU time goes into the report");
    cli.add_option("--json", o.json, "Write the report as JSON to this file");
    cli.add_flag("-q,--quiet", o.quiet, "No progress line each second");
    std::reverse(app_args.begin(), app_args.end()); // CLI11 takes its vector in reverse
    RunConfig cfg;
    try {
        cli.parse(app_args);
        cfg = make_config(o);
    } catch (const CLI::ParseError& e) {
        return cli.exit(e) == 0 ? 0 : kExitUsage;
    }

    const int consumed = rte_eal_init(static_cast<int>(eal_args.size()), eal_args.data());
    if (consumed < 0) {
        std::fprintf(stderr, "ephemera-loadgen: EAL initialisation failed: %s\n",
                     rte_strerror(rte_errno));
        return kExitStartup;
    }
    // After the EAL, which installs no handlers of its own: a stop signal ends the run early but
    // cleanly (drained and reported), so a caller can end an open-ended soak.
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    int rc = 0;
    try {
        rc = run(o, cfg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ephemera-loadgen: %s\n", e.what());
        rc = kExitStartup;
    }
    rte_eal_cleanup();
    return rc;
}
