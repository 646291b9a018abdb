// ephemera [EAL options] -- --config FILE [--stats-json FILE]
// ephemera --check-config FILE
// ephemera --owner --workers N ADDR[:PORT[-HI]]...
#include "app.hpp"
#include "metrics/endpoint.hpp"
#include "owner_query.hpp"
#include "session_keeper.hpp"

#include "ephemera/mode_checks.hpp"

#include <CLI/CLI.hpp>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

using namespace ephemera;

namespace {

constexpr int kExitConfig = 2;
constexpr int kExitStartup = 3;
constexpr unsigned kHandoffRingSize = 2048;
constexpr unsigned kArpRingSize = 64;
// Per worker, each way: a bulk round waits for room, so this bounds only live bursts.
constexpr unsigned kSyncRingSize = 65536;

struct Options {
    std::string config;
    std::string check_config;
    std::string stats_json;
    std::string port_secret; // "K0:K1" in hex; reproducible port choice for golden tests
    bool owner = false;      // --owner: print who owns each query and exit
    unsigned owner_workers = 0;
    std::vector<std::string> owner_queries;
};

int worker_main(void* arg) {
    static_cast<Worker*>(arg)->run();
    return 0;
}

int report_config_error(const ConfigError& e);

// --owner: the queries were checked while parsing the command line. With --config, ownership
// is the config's (in deterministic mode a port's owner is its subscriber's worker).
int print_owners(const Options& opts) {
    const auto workers = static_cast<WorkerId>(opts.owner_workers);
    Ownership ownership(workers);
    if (!opts.config.empty()) {
        auto result = load_config_file(opts.config);
        if (auto* e = std::get_if<ConfigError>(&result)) {
            return report_config_error(*e);
        }
        ownership = Ownership::for_config(std::get<Config>(result), workers);
    }
    for (const std::string& text : opts.owner_queries) {
        std::fputs(describe_owner(ownership, *parse_owner_query(text)).c_str(), stdout);
    }
    return 0;
}

int report_config_error(const ConfigError& e) {
    std::fprintf(stderr, "ephemera: config refused: %s\n", e.to_string().c_str());
    return kExitConfig;
}

rte_ring* make_ring(const std::string& name, unsigned size, unsigned esize, unsigned flags) {
    rte_ring* r =
        esize == sizeof(void*)
            ? rte_ring_create(name.c_str(), size, static_cast<int>(rte_socket_id()), flags)
            : rte_ring_create_elem(name.c_str(), esize, size, static_cast<int>(rte_socket_id()),
                                   flags);
    if (r == nullptr) {
        throw std::runtime_error("cannot create ring " + name);
    }
    return r;
}

// Everything between a valid config and running workers. Errors here throw and are reported
// before any packet is forwarded.
int run(App& app, const Options& opts) {
    // Worker lcores are every lcore the EAL was given except the main one, which runs control.
    unsigned lcore = 0;
    RTE_LCORE_FOREACH_WORKER(lcore) {
        app.worker_lcores.push_back(lcore);
    }
    if (app.worker_lcores.empty()) {
        std::fprintf(stderr, "ephemera: no worker lcores: give the EAL at least two (-l 0-1); "
                             "the first one runs control\n");
        return kExitStartup;
    }
    if (app.worker_lcores.size() > Ownership::kMaxWorkers) {
        std::fprintf(stderr, "ephemera: at most %u workers\n", Ownership::kMaxWorkers);
        return kExitStartup;
    }
    const auto workers = static_cast<WorkerId>(app.worker_lcores.size());
    if (const auto refused = check_blocks_fit(app.config, workers)) {
        return report_config_error(*refused);
    }

    auto inside = find_port(app.config, "inside.port", app.config.inside.port);
    if (auto* e = std::get_if<ConfigError>(&inside)) {
        return report_config_error(*e);
    }
    auto outside = find_port(app.config, "outside.port", app.config.outside.port);
    if (auto* e = std::get_if<ConfigError>(&outside)) {
        return report_config_error(*e);
    }

    std::get<PortInfo>(inside).checksum_offload = app.config.inside.checksum_offload;
    std::get<PortInfo>(outside).checksum_offload = app.config.outside.checksum_offload;

    WorkerShared& shared = app.shared;
    shared.config = &app.config;
    shared.ownership = Ownership::for_config(app.config, workers);
    shared.workers = workers;
    // A fresh 128-bit secret per start keys port selection (RFC 6056 section 3.3.4).
    shared.port_secret = SipKey{rte_rand(), rte_rand()};
    if (!opts.port_secret.empty()) {
        const auto colon = opts.port_secret.find(':');
        shared.port_secret = SipKey{std::stoull(opts.port_secret.substr(0, colon), nullptr, 16),
                                    std::stoull(opts.port_secret.substr(colon + 1), nullptr, 16)};
    }
    shared.tsc_per_tick = std::max<std::uint64_t>(1, rte_get_tsc_hz() / kTicksPerSecond);
    shared.start_tsc = rte_rdtsc();
    shared.tsc_per_ms = std::max<std::uint64_t>(1, rte_get_tsc_hz() / 1000);
    shared.start_unix_ms = unix_ms_now();
    if (app.config.outside.next_hop_mac) {
        shared.next_hop_mac.store(pack_mac(*app.config.outside.next_hop_mac));
    }

    // Buffers as large as the largest frame either port hands over (net_af_packet: whole
    // datagrams the kernel reassembled, as large as its ring frames).
    const std::uint16_t frame_room = std::max(rx_frame_room(std::get<PortInfo>(inside).id),
                                              rx_frame_room(std::get<PortInfo>(outside).id));
    app.mbufs = create_packet_pool(
        workers, app.config.fragments.max_datagrams * app.config.fragments.max_per_datagram,
        frame_room);
    shared.mbufs = app.mbufs.get();
    app.ports = std::make_unique<Ports>(std::get<PortInfo>(inside), std::get<PortInfo>(outside),
                                        workers, app.mbufs.get());
    shared.inside_port = app.ports->inside().id;
    shared.outside_port = app.ports->outside().id;
    shared.inside_mac = app.ports->inside().mac;
    shared.outside_mac = app.ports->outside().mac;
    shared.inside_tx_checksums = app.ports->inside_tx_checksums().enabled;
    shared.outside_tx_checksums = app.ports->outside_tx_checksums().enabled;
    // Steering: rules go on a started port; what the NIC refuses is handed off by the workers.
    app.steering = std::make_unique<OutsideFlowSteering>(shared.outside_port, shared.ownership,
                                                         app.config.pool, app.config.port_range,
                                                         app.ports->outside_rss());

    for (WorkerId from = 0; from < workers; ++from) {
        for (WorkerId to = 0; to < workers; ++to) {
            shared.handoff.push_back(
                from == to
                    ? nullptr
                    : make_ring("eph_ho_" + std::to_string(from) + "_" + std::to_string(to),
                                kHandoffRingSize, sizeof(void*), RING_F_SP_ENQ | RING_F_SC_DEQ));
        }
        shared.arp_events.push_back(make_ring("eph_arp_" + std::to_string(from), kArpRingSize,
                                              sizeof(ArpEvent), RING_F_SP_ENQ | RING_F_SC_DEQ));
        // Created whether or not a sink is on, so that logging can be switched on at run time.
        shared.event_rings.push_back(make_ring("eph_log_" + std::to_string(from),
                                               app.config.logging.ring_size, sizeof(NatEvent),
                                               RING_F_SP_ENQ | RING_F_SC_DEQ));
    }
    if (app.config.ha.paired() || app.config.ha.handover()) {
        for (WorkerId w = 0; w < workers; ++w) {
            shared.sync_rings.push_back(make_ring("eph_sync_" + std::to_string(w), kSyncRingSize,
                                                  sizeof(SyncRecord),
                                                  RING_F_SP_ENQ | RING_F_SC_DEQ));
            shared.apply_rings.push_back(make_ring("eph_apply_" + std::to_string(w), kSyncRingSize,
                                                   sizeof(SyncRecord),
                                                   RING_F_SP_ENQ | RING_F_SC_DEQ));
        }
    }
    if (app.config.ha.paired()) {
        shared.ha_refresh_interval = app.config.ha.refresh_interval * kTicksPerSecond;
        shared.ha_freeze_cycles = std::uint64_t{app.config.ha.dead_interval_ms} * shared.tsc_per_ms;
        // The role is settled before any worker exists: a standby's workers never forward.
        app.sync = std::make_unique<ha::SyncThread>(app.config.ha, shared, shared.sync_rings,
                                                    shared.apply_rings,
                                                    ha::pairing_terms(app.config, workers));
        const HaRole role = app.sync->prepare();
        std::printf("ephemera: ha: %s, sync link %s:%u, peer %s:%u\n",
                    role == HaRole::active ? "active" : "standby",
                    app.config.ha.listen_address.to_string().c_str(),
                    static_cast<unsigned>(app.config.ha.listen_port),
                    app.config.ha.peer_address.to_string().c_str(),
                    static_cast<unsigned>(app.config.ha.peer_port));
    }
    // Each worker's first plan, compiled here as every later one is on the control thread.
    shared.plans.resize(workers);
    {
        const auto config = std::make_shared<const Config>(app.config);
        std::vector<std::unique_ptr<WorkerPlan>> plans;
        for (WorkerId w = 0; w < workers; ++w) {
            app.plan_compilers.emplace_back(shared.ownership, w);
            plans.push_back(app.plan_compilers.back().compile(config, nullptr));
        }
        shared.plans.publish(std::move(plans)); // no worker runs yet: nothing to wait for
    }
    for (WorkerId w = 0; w < workers; ++w) {
        app.workers.push_back(std::make_unique<Worker>(shared, w));
    }

    std::printf("%s", describe_config(app.config).c_str());
    std::printf("ephemera: inside %s (port %u, %s), outside %s (port %u, %s), %u worker(s)\n",
                app.ports->inside().name.c_str(), shared.inside_port,
                shared.inside_mac.to_string().c_str(), app.ports->outside().name.c_str(),
                shared.outside_port, shared.outside_mac.to_string().c_str(),
                static_cast<unsigned>(workers));
    std::printf("ephemera: packet buffers hold frames of up to %u bytes\n",
                static_cast<unsigned>(frame_room));
    std::printf("ephemera: outside steering: %s\n", app.steering->plan().describe().c_str());
    std::printf("ephemera: inside steering: %s\n", app.ports->inside_steering().describe().c_str());
    std::printf("ephemera: inside checksum offload: %s\n",
                app.ports->inside_tx_checksums().describe().c_str());
    std::printf("ephemera: outside checksum offload: %s\n",
                app.ports->outside_tx_checksums().describe().c_str());
    for (WorkerId w = 0; w < workers; ++w) {
        std::printf("ephemera: worker %u on lcore %u owns %u ports per pool address\n",
                    static_cast<unsigned>(w), app.worker_lcores[w],
                    app.workers[w]->translator().ports().usable_ports());
    }
    std::fflush(stdout);

    // RCU for config changes: one reader thread id per worker (Worker::run registers it).
    const std::size_t qsbr_size = rte_rcu_qsbr_get_memsize(workers);
    app.qsbr_memory =
        static_cast<rte_rcu_qsbr*>(rte_zmalloc("eph_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
    if (app.qsbr_memory == nullptr || rte_rcu_qsbr_init(app.qsbr_memory, workers) != 0) {
        throw std::runtime_error("cannot set up RCU for config changes");
    }
    shared.qsbr = app.qsbr_memory;
    shared.plans.attach(app.qsbr_memory);
    app.runtime = std::make_unique<Runtime>(app);
    if (app.config.ha.handover()) {
        ha::HandoverHooks hooks;
        hooks.adopt = [&app](const std::vector<Ipv4Addr>& pool, bool answered,
                             std::optional<Ipv4Addr> gateway) {
            return app.runtime->adopt(pool, answered, gateway);
        };
        hooks.move = [&app](const Config::SubscriberMove& move, bool remove) {
            return app.runtime->move_subscribers(move, remove);
        };
        hooks.applied_refused = [&app] {
            return std::make_pair(counter_total(app, Counter::ha_records_applied),
                                  counter_total(app, Counter::ha_records_refused));
        };
        hooks.current = [&app] { return app.runtime->current(); };
        app.handover = std::make_unique<ha::Handover>(app.config.ha, shared, shared.sync_rings,
                                                      shared.apply_rings, std::move(hooks));
        app.handover->prepare(); // a listen address that cannot be bound stops ephemera here
        std::printf("ephemera: hand-over: taking drained boxes' sessions on %s:%u\n",
                    app.config.ha.handover_address.to_string().c_str(),
                    static_cast<unsigned>(app.config.ha.handover_port));
    }

    app.logging = std::make_unique<LoggingThread>(shared.event_rings);
    for (const std::string& warning : app.logging->configure(app.config, nullptr)) {
        std::fprintf(stderr, "ephemera: logging: %s\n", warning.c_str());
    }
    app.logging->start();
    app.pool_alarms = std::make_unique<PoolAlarms>(app.config.alarms);
    TelemetryRegistration telemetry = register_telemetry(app);
    // Before the workers start: a listener that cannot be opened stops ephemera here (the
    // exception is reported by main), before any packet is forwarded.
    const std::unique_ptr<MetricsEndpoint> metrics =
        MetricsEndpoint::start(app, app.config.metrics);
    if (metrics) {
        std::printf("ephemera: metrics on http://%s:%u/metrics\n",
                    app.config.metrics.address.to_string().c_str(),
                    static_cast<unsigned>(app.config.metrics.port));
    }
    // Before any worker runs: the sessions of the last clean stop come back first, so that
    // their ports are taken before a new flow could be given one of them.
    if (!app.config.ha.state_file.empty()) {
        const RestoreReport restored = restore_sessions(app, app.config.ha.state_file);
        std::printf("ephemera: %s\n", restored.describe(app.config.ha.state_file).c_str());
    }
    if (app.sync) {
        app.sync->start();
    }
    if (app.handover) {
        app.handover->start();
    }
    for (WorkerId w = 0; w < workers; ++w) {
        rte_eal_remote_launch(worker_main, app.workers[w].get(), app.worker_lcores[w]);
    }
    std::printf("ephemera: running\n");
    std::fflush(stdout);

    run_control_loop(app);

    // Telemetry and metrics stop first: a command or scrape in progress may still need the
    // workers' mailboxes, and none may reach the App once it is going.
    if (metrics) {
        metrics->close();
    }
    telemetry.close();
    shared.stop.store(true, std::memory_order_relaxed);
    rte_eal_mp_wait_lcore();
    if (app.sync) {
        app.sync->stop(); // after the workers: their last records go to the standby first
    }
    if (app.handover) {
        app.handover->stop();
    }
    // The running config's file (a reload may have set it): the workers are out of their
    // loops, so their tables are read as they stood.
    if (const std::string state_file = app.runtime->current().ha.state_file; !state_file.empty()) {
        const SaveReport saved = save_sessions(app, state_file);
        if (saved.saved) {
            std::printf("ephemera: saved %llu sessions to %s (%llu bytes)\n",
                        static_cast<unsigned long long>(saved.sessions), state_file.c_str(),
                        static_cast<unsigned long long>(saved.bytes));
        } else {
            std::fprintf(stderr, "ephemera: sessions not saved: %s\n", saved.error.c_str());
        }
    }
    app.logging->stop(); // after the workers: their last records go out too
    rte_free(app.qsbr_memory);
    app.qsbr_memory = nullptr;
    print_stats(app);
    if (!opts.stats_json.empty() && !write_stats_json(app, opts.stats_json)) {
        std::fprintf(stderr, "ephemera: cannot write %s\n", opts.stats_json.c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    // DPDK's convention: EAL options, then "--", then ours. Without "--", all options are ours.
    int separator = argc;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--") {
            separator = i;
            break;
        }
    }
    std::vector<char*> eal_args(argv, argv + (separator == argc ? 1 : separator));
    std::vector<std::string> app_args;
    for (int i = (separator == argc ? 1 : separator + 1); i < argc; ++i) {
        app_args.emplace_back(argv[i]);
    }

    CLI::App cli{"ephemera: a carrier-grade NAT44 on DPDK"};
    cli.footer("Usage: ephemera [EAL options] -- --config FILE [--stats-json FILE]\n"
               "       ephemera --check-config FILE\n"
               "       ephemera --owner --workers N ADDR[:PORT[-HI]]...");
    Options opts;
    auto* config_opt = cli.add_option("--config", opts.config, "Configuration file (TOML)");
    auto* check_opt = cli.add_option("--check-config", opts.check_config,
                                     "Validate a configuration file and exit");
    cli.add_option("--stats-json", opts.stats_json,
                   "Write the final counters to this file as JSON at exit");
    cli.add_option("--port-secret", opts.port_secret,
                   "Fix the port-selection secret (K0:K1, hex) instead of drawing one: makes "
                   "port choice reproducible, for tests only")
        ->check([](const std::string& v) {
            const auto colon = v.find(':');
            const auto hex = [](const std::string& s) {
                return !s.empty() && s.size() <= 16 &&
                       s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
            };
            return colon != std::string::npos && hex(v.substr(0, colon)) && hex(v.substr(colon + 1))
                       ? std::string()
                       : std::string("expected K0:K1, two 64-bit hex numbers");
        });
    config_opt->excludes(check_opt);
    auto* owner_opt = cli.add_flag(
        "--owner", opts.owner,
        "Print the worker that owns each subscriber ADDR, or each external port ADDR:PORT or "
        "ADDR:LO-HI, with --workers N workers (and the ownership of --config FILE's mode, if "
        "given), and exit (the function the workers use)");
    auto* workers_opt = cli.add_option("--workers", opts.owner_workers, "Worker count for --owner")
                            ->check(CLI::Range(1u, static_cast<unsigned>(Ownership::kMaxWorkers)));
    auto* queries_opt =
        cli.add_option("query", opts.owner_queries, "ADDR, ADDR:PORT or ADDR:LO-HI (--owner)")
            ->check([](const std::string& v) {
                return parse_owner_query(v) ? std::string()
                                            : "expected ADDR, ADDR:PORT or ADDR:LO-HI, got " + v;
            });
    owner_opt->needs(workers_opt)->needs(queries_opt)->excludes(check_opt);
    workers_opt->needs(owner_opt);
    queries_opt->needs(owner_opt);
    std::reverse(app_args.begin(), app_args.end()); // CLI11 takes its vector in reverse
    try {
        cli.parse(app_args);
    } catch (const CLI::ParseError& e) {
        return cli.exit(e);
    }

    if (opts.owner) {
        return print_owners(opts);
    }
    if (!opts.check_config.empty()) {
        auto result = load_config_file(opts.check_config);
        if (auto* e = std::get_if<ConfigError>(&result)) {
            return report_config_error(*e);
        }
        std::printf("%s", describe_config(std::get<Config>(result)).c_str());
        std::printf("ephemera: %s is valid\n", opts.check_config.c_str());
        return 0;
    }
    if (opts.config.empty()) {
        std::fprintf(stderr, "ephemera: --config FILE is required (see --help)\n");
        return kExitConfig;
    }
    // The config is checked before the EAL starts: a bad file never gets as far as a port.
    auto result = load_config_file(opts.config);
    if (auto* e = std::get_if<ConfigError>(&result)) {
        return report_config_error(*e);
    }

    install_signal_handlers();
    const int consumed = rte_eal_init(static_cast<int>(eal_args.size()), eal_args.data());
    if (consumed < 0) {
        std::fprintf(stderr, "ephemera: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
        return kExitStartup;
    }
    int rc = 0;
    {
        App app;
        app.config = std::move(std::get<Config>(result));
        try {
            rc = run(app, opts);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ephemera: %s\n", e.what());
            app.shared.stop.store(true);
            rte_eal_mp_wait_lcore();
            rc = kExitStartup;
        }
    }
    rte_eal_cleanup();
    return rc;
}
