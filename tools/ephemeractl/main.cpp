// ephemeractl [--prefix PREFIX] [--socket PATH] [--json] COMMAND ...
//
// The command line only: it turns argv into one Command (commands.hpp) or a usage error.
#include "commands.hpp"
#include "det.hpp"
#include "log_verify.hpp"
#include "plan_command.hpp"
#include "request.hpp"
#include "telemetry_client.hpp"
#include "top_view.hpp"
#include "whois_command.hpp"

#include "ephemera/config.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

using namespace ephemeractl;

namespace {

// A CLI11 validator from one of request.hpp's checks; the message repeats the bad value.
CLI::Validator checked(std::string (*check)(std::string_view)) {
    return CLI::Validator(
        [check](std::string& text) {
            const std::string why = check(text);
            return why.empty() ? why : "'" + text + "': " + why;
        },
        std::string{});
}

std::string check_prefix(std::string_view text) {
    if (text.empty() || text.find('/') != std::string_view::npos) {
        return "a file prefix is a non-empty name without '/'";
    }
    return {};
}

struct Cli {
    CLI::App app{"Inspect and steer a running ephemera NAT44 through DPDK telemetry.",
                 "ephemeractl"};
    std::string prefix = "ephemera";
    std::string socket;
    Display display;
    std::optional<Command> command;   // set by the callback of the subcommand that ran
    std::optional<DetCommand> det;    // or this, by det forward / det reverse
    std::function<Outcome()> offline; // or this: log verify, whois (no running ephemera
                                      // needed)
    bool show_logging = false;        // or this: several requests
    std::optional<TopOptions> top;    // or this: top, once or refreshing

    Cli();

private:
    void add_show();
    void add_lists();
    void add_changes();
    void add_static();
    void add_det();
    void add_log();
    void add_whois();
    void add_plan();
    void add_top();

    // Storage for subcommand arguments; CLI11 writes into these while parsing.
    std::uint32_t worker_ = 0;
    std::uint32_t limit_ = 0;
    SessionQuery sessions_;
    SessionQuery blocks_;
    FlushFilter flush_;
    std::string drain_to_;
    std::string migrate_prefix_;
    std::string migrate_to_;
    std::string key_;
    std::string value_;
    std::string address_;
    std::vector<std::string> spec_; // static add|remove, word by word
    std::string det_config_;
    LogVerifyCommand verify_;
    TopOptions top_;
    WhoisCommand whois_;
    PlanCommand plan_;
    std::uint32_t pool_size_ = 0;
    std::uint32_t ports_per_address_ = 0;
};

Cli::Cli() {
    app.fallthrough(); // global options may also follow the subcommand
    app.require_subcommand(1);
    app.footer("Exit status: 0 ok; 1 refused by ephemera; 2 no connection, or no valid reply; "
               "64 bad command line.");
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return "ephemeractl: " + std::string(e.what()) +
               "\nRun with --help for more information.\n";
    });
    app.add_option("--prefix", prefix,
                   "EAL --file-prefix of the ephemera to talk to; its telemetry socket is "
                   "/var/run/dpdk/PREFIX/dpdk_telemetry.v2")
        ->envname("EPHEMERA_PREFIX")
        ->capture_default_str()
        ->check(checked(check_prefix))
        ->type_name("PREFIX");
    app.add_option("--socket", socket,
                   "telemetry socket path, overriding --prefix; for tests and unusual runtime "
                   "dirs")
        ->type_name("PATH");
    app.add_flag("--json", display.json, "print the reply's data as JSON instead of tables");
    add_show();
    add_lists();
    add_changes();
    add_static();
    add_det();
    add_log();
    add_whois();
    add_plan();
    add_top();
}

void Cli::add_show() {
    CLI::App* show = app.add_subcommand("show", "show config, stats, ports, alarms, ha, blocks, "
                                                "pauses, static mappings, logging or one worker");
    // Not require_subcommand(1): CLI11 would then say only "A subcommand is required" for
    // `show nope`; this way it names the stray word, and a bare `show` lists the choices.
    show->callback([this] {
        if (!command) {
            throw CLI::ValidationError("show",
                                       "give one of config, stats, ports, alarms, ha, blocks, "
                                       "pauses, static, logging, worker N");
        }
    });
    show->add_subcommand("config", "the running configuration, ports and next hop")
        ->callback([this] {
            command = Command{config_request(), Shape::settings, {}};
        });
    CLI::App* stats = show->add_subcommand("stats", "counter totals over all workers");
    stats->add_flag("--all", display.all, "also show counters that are zero");
    stats->callback([this] { command = Command{stats_request(), Shape::counters, {}}; });
    show->add_subcommand("alarms", "pool port use alarms and the time to exhaustion forecast")
        ->callback([this] {
            command = Command{alarms_request(), Shape::settings, {}};
        });
    show->add_subcommand("ha", "the HA pair: role, sync link, records streamed, failovers")
        ->callback([this] {
            command = Command{Request{"/ephemera/ha", {}}, Shape::settings, {}};
        });
    show->add_subcommand("ports", "external port use per pool address and protocol")
        ->callback([this] {
            command = Command{ports_request(), Shape::ports, {}};
        });
    show->add_subcommand("pauses", "each worker's longest loop iteration since its window was "
                                   "reset, and the longest that took up a config change")
        ->callback([this] {
            command = Command{pauses_request(), Shape::pauses, {}};
        });
    CLI::App* blocks = show->add_subcommand("blocks", "port blocks in use (pool.mode blocks): "
                                                      "span, fill, holder and age");
    blocks->add_option("--subscriber", blocks_.subscriber, "only this subscriber's")
        ->check(checked(check_ipv4))
        ->type_name("ADDR");
    CLI::Option* blocks_limit =
        blocks->add_option("--limit", limit_, "at most N (the server's default otherwise)")
            ->check(checked(check_positive))
            ->type_name("N");
    blocks->callback([this, blocks_limit] {
        if (blocks_limit->count() > 0) {
            blocks_.limit = limit_;
        }
        command = Command{blocks_request(blocks_), Shape::lines, "no blocks in use"};
    });
    show->add_subcommand("static", "static mappings: port forwards and 1:1")->callback([this] {
        command = Command{statics_request(), Shape::statics, {}};
    });
    CLI::App* logging = show->add_subcommand(
        "logging", "NAT event logging: records the workers handed over and dropped, and per "
                   "sink (archive, syslog and IPFIX collectors) records sent and dropped, "
                   "messages, bytes and errors; then each worker's share");
    logging->footer("The logging settings in force are in show config (logging_*). "
                    "logging.events and logging.destination change with set; collectors and "
                    "the archive change in the config file, then reload.");
    logging->callback([this] {
        show_logging = true;
        command = Command{logging_request(), Shape::logging, {}};
    });
    CLI::App* one = show->add_subcommand("worker", "one worker's counters and gauges");
    one->add_option("N", worker_, "worker number, from 0")->required()->check(checked(check_index));
    one->add_flag("--all", display.all, "also show counters that are zero");
    one->callback([this] { command = Command{worker_request(worker_), Shape::counters, {}}; });
}

void Cli::add_lists() {
    CLI::App* mappings = app.add_subcommand("mappings", "live translations, one per line");
    CLI::Option* mappings_limit =
        mappings->add_option("--limit", limit_, "at most N (the server's default otherwise)")
            ->check(checked(check_positive))
            ->type_name("N");
    mappings->callback([this, mappings_limit] {
        const auto n = mappings_limit->count() > 0 ? std::optional(limit_) : std::nullopt;
        command = Command{mappings_request(n), Shape::lines, "no live mappings"};
    });

    CLI::App* list = app.add_subcommand("sessions", "live sessions, one per line");
    list->add_option("--subscriber", sessions_.subscriber, "only this subscriber's")
        ->check(checked(check_ipv4))
        ->type_name("ADDR");
    list->add_option("--external", sessions_.external,
                     "only those on this external address and port")
        ->check(checked(check_endpoint))
        ->type_name("ADDR:PORT");
    CLI::Option* sessions_limit =
        list->add_option("--limit", limit_, "at most N (the server's default otherwise)")
            ->check(checked(check_positive))
            ->type_name("N");
    list->callback([this, sessions_limit] {
        if (sessions_limit->count() > 0) {
            sessions_.limit = limit_;
        }
        command = Command{sessions_request(sessions_), Shape::lines, "no matching sessions"};
    });
}

void Cli::add_changes() {
    CLI::App* set = app.add_subcommand(
        "set", "change one setting of the running config, e.g. set timeouts.udp 600");
    set->add_option("KEY", key_, "dotted config key: timeouts.udp, filtering.mode, ...")
        ->required()
        ->check(checked(check_set_key))
        ->type_name("KEY");
    set->add_option("VALUE", value_, "new value; ephemera checks it as it checks the file")
        ->required()
        ->check(checked(check_set_value))
        ->type_name("VALUE");
    set->footer(
        "Logging: set logging.events GROUP,GROUP,... (mapping, block, static, deterministic, "
        "exhaustion; none for no records) and set logging.destination true|false take effect "
        "at once. logging.ring_size needs a restart (the rings are sized at start); the "
        "syslog and IPFIX collectors and the archive change in the config file, then "
        "ephemeractl reload.");
    set->callback([this] { command = Command{set_request(key_, value_), Shape::action, {}}; });

    CLI::App* pool = app.add_subcommand("pool", "add or remove a pool address");
    pool->callback([this] {
        if (!command) {
            throw CLI::ValidationError("pool", "give add ADDR or remove ADDR");
        }
    });
    for (const bool add : {true, false}) {
        CLI::App* change = pool->add_subcommand(add ? "add" : "remove",
                                                add ? "start using ADDR for new mappings"
                                                    : "stop using ADDR; its mappings drain");
        change->add_option("ADDR", address_, "pool address")
            ->required()
            ->check(checked(check_ipv4))
            ->type_name("ADDR");
        change->callback([this, add] {
            command = Command{pool_request(add, address_), Shape::action, {}};
        });
    }

    CLI::App* flusher = app.add_subcommand("flush", "remove sessions and mappings now "
                                                    "(at least one filter)");
    flusher
        ->add_option("--subscriber", flush_.subscriber, "this subscriber's sessions and mappings")
        ->check(checked(check_ipv4))
        ->type_name("ADDR");
    flusher
        ->add_option("--external", flush_.external,
                     "the mapping on this external address and port, and its sessions")
        ->check(checked(check_endpoint))
        ->type_name("ADDR:PORT");
    flusher->add_option("--address", flush_.address, "everything on this pool address")
        ->check(checked(check_ipv4))
        ->type_name("ADDR");
    flusher->callback([this] {
        if (flush_.empty()) {
            throw CLI::ValidationError("flush",
                                       "give at least one of --subscriber, --external, --address");
        }
        command = Command{flush_request(flush_), Shape::action, {}};
    });

    CLI::App* drain = app.add_subcommand(
        "drain", "hand every session to a scale-out peer (its ha.handover address), which "
                 "takes over this box's addresses; this box then forwards nothing");
    drain->add_option("--to", drain_to_, "the peer's ha.handover ADDRESS:PORT")
        ->required()
        ->type_name("ADDR:PORT");
    drain->callback([this] {
        command = Command{Request{"/ephemera/drain", drain_to_}, Shape::action, {}};
    });

    CLI::App* migrate = app.add_subcommand(
        "migrate", "move the subscribers of a prefix, with their sessions, to a scale-out peer "
                   "(its ha.handover address); what of theirs still reaches this box goes on to "
                   "the peer");
    migrate->add_option("--subscriber", migrate_prefix_, "the subscribers, PREFIX/LENGTH")
        ->required()
        ->type_name("PREFIX/LEN");
    migrate->add_option("--to", migrate_to_, "the peer's ha.handover ADDRESS:PORT")
        ->required()
        ->type_name("ADDR:PORT");
    migrate->callback([this] {
        command = Command{
            Request{"/ephemera/migrate", migrate_prefix_ + " " + migrate_to_}, Shape::action, {}};
    });

    app.add_subcommand("reload", "re-read the config file and apply what changed (the way to "
                                 "change logging collectors and the archive)")
        ->callback([this] {
            command = Command{reload_request(), Shape::action, {}};
        });

    CLI::App* reset = app.add_subcommand("reset", "restart a measurement window");
    reset->callback([this] {
        if (!command) {
            throw CLI::ValidationError("reset", "give pauses");
        }
    });
    reset
        ->add_subcommand("pauses", "restart every worker's longest-pause window (show pauses "
                                   "then covers only what follows)")
        ->callback([this] {
            command = Command{pauses_reset_request(), Shape::action, {}};
        });
}

void Cli::add_static() {
    CLI::App* statics = app.add_subcommand("static", "add or remove a static mapping (a port "
                                                     "forward, or 1:1)");
    statics->callback([this] {
        if (!command) {
            throw CLI::ValidationError("static", "give add SPEC or remove SPEC");
        }
    });
    for (const bool add : {true, false}) {
        CLI::App* change = statics->add_subcommand(
            add ? "add" : "remove",
            add ? "forward tcp|udp EXTERNAL:PORT to INSIDE:PORT, or EXTERNAL to INSIDE whole (1:1)"
                : "the mapping of tcp|udp EXTERNAL:PORT, or of EXTERNAL (1:1)");
        change
            ->add_option("SPEC", spec_,
                         add ? "tcp|udp EXTERNAL:PORT INSIDE:PORT, or EXTERNAL INSIDE"
                             : "tcp|udp EXTERNAL:PORT, or EXTERNAL")
            ->required()
            ->expected(add ? 2 : 1, add ? 3 : 2)
            ->type_name("WORDS");
        // ephemera's own reading of the spelling: what passes here, the server reads alike.
        change->callback([this, add] {
            std::string text;
            for (const std::string& word : spec_) {
                text += text.empty() ? word : " " + word;
            }
            const auto entry = ephemera::parse_static_spec(text, add);
            if (const auto* e = std::get_if<ephemera::ConfigError>(&entry)) {
                throw CLI::ValidationError(add ? "static add" : "static remove", e->reason);
            }
            const auto& m = std::get<ephemera::StaticMapping>(entry);
            command = Command{static_request(add, add ? ephemera::static_mapping_text(m)
                                                      : ephemera::static_external_text(m)),
                              Shape::action,
                              {}};
        });
    }
}

void Cli::add_det() {
    CLI::App* det_app = app.add_subcommand(
        "det", "deterministic NAT (RFC 7422): a subscriber's pool address and ports, or who "
               "held a pool address and port; from --config FILE or the running ephemera");
    det_app->fallthrough(); // --config may follow forward or reverse
    det_app
        ->add_option("--config", det_config_,
                     "compute from this config file (e.g. an archived one) instead of asking "
                     "the running ephemera")
        ->type_name("FILE");
    det_app->footer("Exit status: 0 found; 1 no such subscriber, no subscriber holds the port, "
                    "or the pool is not in deterministic mode; 2 no config (file refused, no "
                    "connection, malformed reply); 64 bad command line.");
    det_app->callback([this] {
        if (!det) {
            throw CLI::ValidationError("det", "give forward ADDR or reverse ADDR:PORT");
        }
        det->config_file = det_config_;
    });
    CLI::App* forward =
        det_app->add_subcommand("forward", "the pool address and port range of subscriber ADDR");
    forward->add_option("ADDR", address_, "subscriber address")
        ->required()
        ->check(checked(check_ipv4))
        ->type_name("ADDR");
    forward->callback([this] { det = DetCommand{false, address_, {}}; });
    CLI::App* reverse = det_app->add_subcommand(
        "reverse", "the subscriber that holds port PORT of pool address ADDR");
    reverse->add_option("ADDR:PORT", key_, "pool address and port")
        ->required()
        ->check(checked(check_endpoint))
        ->type_name("ADDR:PORT");
    reverse->callback([this] { det = DetCommand{true, key_, {}}; });
}

void Cli::add_log() {
    CLI::App* log = app.add_subcommand("log", "the local NAT event archive");
    log->callback([this] {
        if (!offline) {
            throw CLI::ValidationError("log", "give verify DIR");
        }
    });
    CLI::App* verify = log->add_subcommand(
        "verify", "check the hash chain of the archive in DIR: every record, block and file");
    verify->add_option("DIR", verify_.directory, "archive directory")->required()->type_name("DIR");
    verify
        ->add_option("--key-file", verify_.key_file,
                     "the operator key the archive was written with: check every seal's hmac")
        ->type_name("FILE");
    verify->footer("Exit status: 0 chain intact (unsealed tails are listed: a crash or the "
                   "running writer); 1 a break, or no archive in DIR; 2 key file unreadable.");
    verify->callback([this] { offline = [this] { return log_verify(verify_); }; });
}

void Cli::add_whois() {
    CLI::App* w = app.add_subcommand(
        "whois", "the subscriber that held a public ADDR:PORT at a given time, and what proves "
                 "it: the running ephemera's live table, the archive, or the deterministic "
                 "formula, asked in that order");
    w->add_option("ADDR:PORT", whois_.endpoint, "public address and port")
        ->required()
        ->check(checked(check_endpoint))
        ->type_name("ADDR:PORT");
    w->add_option("--at", whois_.at, "when, in UTC: 2026-12-05T10:00:00Z, or now")
        ->capture_default_str()
        ->check(checked(check_time))
        ->type_name("TIME");
    w->add_option("--proto", whois_.proto, "only this protocol's mappings")
        ->check(CLI::IsMember({"udp", "tcp", "icmp"}))
        ->type_name("udp|tcp|icmp");
    w->add_option("--archive", whois_.archive,
                  "answer from the archive in DIR (default: the running ephemera's "
                  "logging.archive.path)")
        ->type_name("DIR");
    w->add_option("--config", whois_.config_file,
                  "then from the deterministic formula of this config file (default: the "
                  "running ephemera's, in pool.mode deterministic)")
        ->type_name("FILE");
    w->footer("With ephemera running (--prefix, --socket), its live table is asked first: its "
              "sessions on ADDR:PORT prove who holds it from their last packet until now. "
              "Exit status: 0 found; 1 nobody held it, as far as the sources say; 2 config "
              "refused; 64 bad command line (or no source: no running ephemera, no --archive, "
              "no --config).");
    w->callback([this] {
        offline = [this] {
            return run_whois(whois_, socket.empty() ? socket_path_for_prefix(prefix) : socket);
        };
    });
}

void Cli::add_plan() {
    CLI::App* p = app.add_subcommand(
        "plan", "the share of subscribers refused a port at the peak, and the pool size, ports "
                "per address or block size that would keep it under --target; from the running "
                "ephemera's distribution of ports per subscriber, or --histogram FILE");
    p->add_option("--target", plan_.target,
                  "the refusal rate to stay under, as a fraction of subscribers: 0.001 is 0.1%")
        ->capture_default_str()
        ->check(CLI::Validator(
            [](std::string& text) {
                double v = 0;
                return CLI::detail::lexical_cast(text, v) && v > 0 && v < 1
                           ? std::string{}
                           : "'" + text + "': a fraction between 0 and 1, exclusive";
            },
            "(0,1)"))
        ->type_name("RATE");
    p->add_option("--histogram", plan_.histogram_file,
                  "plan offline from this JSON file: {\"subscribers\": N, \"ports_le\": [...], "
                  "\"ports_count\": [...]}, as /ephemera/top gives them")
        ->type_name("FILE");
    // Offline only: the pool the histogram is planned against.
    CLI::Option* pool =
        p->add_option("--pool-size", pool_size_, "pool addresses (with --histogram)")
            ->check(checked(check_positive))
            ->type_name("N");
    CLI::Option* ports =
        p->add_option("--ports-per-address", ports_per_address_,
                      "usable ports per address and protocol: the range less reserved ports "
                      "(with --histogram)")
            ->check(checked(check_positive))
            ->type_name("N");
    CLI::Option* workers = p->add_option("--workers", plan_.workers,
                                         "workers (with --histogram); each owns a "
                                         "share of every address")
                               ->capture_default_str()
                               ->check(checked(check_positive))
                               ->type_name("N");
    CLI::Option* mode = p->add_option("--mode", plan_.mode, "pool.mode (with --histogram)")
                            ->capture_default_str()
                            ->check(CLI::IsMember({"dynamic", "blocks"}))
                            ->type_name("dynamic|blocks");
    CLI::Option* size = p->add_option("--block-size", plan_.block_size,
                                      "ports per block (with --histogram --mode blocks)")
                            ->capture_default_str()
                            ->check(checked(check_positive))
                            ->type_name("N");
    CLI::Option* max = p->add_option("--max-blocks", plan_.max_blocks,
                                     "blocks per subscriber (with --histogram --mode blocks)")
                           ->capture_default_str()
                           ->check(checked(check_positive))
                           ->type_name("N");
    p->footer("Model: subscribers fall on pool addresses (and workers) at random, as the pairing "
              "hash spreads them; a subscriber in a histogram bucket uses the bucket's upper "
              "bound; an address (worker share) that runs out refuses the subscriber that does "
              "not fit and every later one. The rates are a Monte Carlo estimate with a fixed "
              "seed. Deterministic mode has no shared pool to plan. Exit status: 0 planned; 1 "
              "the pool cannot be planned (deterministic mode); 2 no connection or no valid "
              "reply; 64 bad command line or histogram file.");
    p->callback([this, pool, ports, workers, mode, size, max] {
        if (plan_.histogram_file.empty()) {
            for (const CLI::Option* o : {pool, ports, workers, mode, size, max}) {
                if (o->count() > 0) {
                    throw CLI::ValidationError("plan", o->get_name() +
                                                           " is only for --histogram: a running "
                                                           "ephemera says its own pool");
                }
            }
        }
        if (pool->count() > 0) {
            plan_.pool_size = pool_size_;
        }
        if (ports->count() > 0) {
            plan_.ports_per_address = ports_per_address_;
        }
        offline = [this] {
            return run_plan(socket.empty() ? socket_path_for_prefix(prefix) : socket, plan_,
                            display);
        };
    });
}

void Cli::add_top() {
    CLI::App* t = app.add_subcommand(
        "top", "subscribers by ports in use or by refusals, and how many hold how many ports, "
               "redrawn every second until Ctrl-C");
    t->add_flag("--once", top_.once, "print the view once and exit (for scripts)");
    t->add_option("-n", top_.rows, "rows of the top list (at most 20)")
        ->capture_default_str()
        ->check(CLI::Range(1, 20))
        ->type_name("N");
    t->add_option("--by", top_.by, "rank by ports in use (busiest protocol) or by refusals")
        ->capture_default_str()
        ->check(CLI::IsMember({"ports", "refusals"}))
        ->type_name("ports|refusals");
    t->callback([this] {
        top = top_;
        command = Command{{"/ephemera/top", {}}, Shape::settings, {}};
    });
}

} // namespace

int main(int argc, char** argv) {
    Cli cli;
    try {
        cli.app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int status = cli.app.exit(e); // prints help, or the error
        return status == 0 ? kExitOk : kExitUsage;
    }
    const std::string path = cli.socket.empty() ? socket_path_for_prefix(cli.prefix) : cli.socket;
    if (cli.det) {
        return run_det(path, *cli.det, cli.display);
    }
    if (cli.offline) {
        const Outcome outcome = cli.offline();
        std::fputs(outcome.err.c_str(), stderr);
        std::fputs(outcome.out.c_str(), stdout);
        return outcome.status;
    }
    if (!cli.command) {
        return kExitUsage; // unreachable: every leaf subcommand sets one
    }
    if (cli.top) {
        return run_top(path, *cli.top, cli.display);
    }
    if (cli.show_logging) {
        return run_show_logging(path, cli.display);
    }
    return run_command(path, *cli.command, cli.display);
}
