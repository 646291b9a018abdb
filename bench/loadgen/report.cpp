#include "report.hpp"

#include <algorithm>
#include <cstdio>

namespace loadgen {

namespace {

using nlohmann::json;

json latency_json(const Percentiles& p) {
    return json{{"samples", p.count}, {"p50", p.p50_us},    {"p90", p.p90_us},
                {"p99", p.p99_us},    {"p99.9", p.p999_us}, {"max", p.max_us}};
}

double seconds(std::uint64_t cycles, std::uint64_t hz) {
    return static_cast<double>(cycles) / static_cast<double>(hz);
}

std::uint64_t delta(const Window& w, Stat s) {
    return w.end[s] - w.start[s];
}

json window_json(const Window& w, std::uint64_t hz) {
    const double secs = seconds(w.end.tsc - w.start.tsc, hz);
    const auto mpps = [&](Stat s) { return static_cast<double>(delta(w, s)) / secs / 1e6; };
    const auto busy = static_cast<double>(delta(w, Stat::loop_busy_cycles));
    const auto idle = static_cast<double>(delta(w, Stat::loop_idle_cycles));
    const auto round_trips = static_cast<double>(delta(w, Stat::in_ok));
    const double wall_ns = secs * 1e9;
    const auto ns = [](std::uint64_t a, std::uint64_t b) { return static_cast<double>(a - b); };
    const CpuTimes& c0 = w.start.cpu;
    const CpuTimes& c1 = w.end.cpu;
    const double peer_threads = std::max<double>(1, c1.peer_threads);
    json cpu{
        {"loadgen_share", ns(c1.self_run_ns, c0.self_run_ns) / wall_ns},
        {"loadgen_waiting", ns(c1.self_wait_ns, c0.self_wait_ns) / wall_ns},
        {"loadgen_ns_per_round_trip",
         round_trips > 0 ? ns(c1.self_run_ns, c0.self_run_ns) / round_trips : 0},
    };
    if (c1.peer_threads != 0 && c0.peer_threads == c1.peer_threads) {
        cpu["peer_threads"] = c1.peer_threads;
        cpu["peer_share"] = ns(c1.peer_run_ns, c0.peer_run_ns) / wall_ns / peer_threads;
        cpu["peer_waiting"] = ns(c1.peer_wait_ns, c0.peer_wait_ns) / wall_ns / peer_threads;
        cpu["peer_ns_per_round_trip"] =
            round_trips > 0 ? ns(c1.peer_run_ns, c0.peer_run_ns) / round_trips : 0;
    }
    return json{
        {"cpu", cpu},
        {"seconds", secs},
        {"rate_limit_pps", w.rate_pps},
        {"sent_mpps", mpps(Stat::sub_tx)},
        {"out_mpps", mpps(Stat::out_ok)},
        {"back_mpps", mpps(Stat::in_ok)},
        {"sent", delta(w, Stat::sub_tx)},
        {"out_received", delta(w, Stat::out_ok)},
        {"back_received", delta(w, Stat::in_ok)},
        {"new_flows_sent", delta(w, Stat::sub_tx_new)},
        {"established", delta(w, Stat::in_established)},
        {"churned", delta(w, Stat::sub_churned)},
        {"deferred", delta(w, Stat::sub_tx_deferred)},
        // Frames per non-empty RX poll: small bursts mean more ring updates (cache lines that
        // cross between the two processes' CPUs) per packet.
        {"rx_burst_in", static_cast<double>(delta(w, Stat::in_rx)) /
                            std::max<double>(1, static_cast<double>(delta(w, Stat::in_rx_bursts)))},
        {"rx_burst_out",
         static_cast<double>(delta(w, Stat::out_rx)) /
             std::max<double>(1, static_cast<double>(delta(w, Stat::out_rx_bursts)))},
        // Share of the main lcore's loop that moved packets, and its TSC cycles per round trip
        // (one packet out and its reply back): how close the generator itself is to its limit.
        {"loadgen_busy", busy + idle > 0 ? busy / (busy + idle) : 0},
        {"loadgen_cycles_per_round_trip", round_trips > 0 ? busy / round_trips : 0},
        {"latency_rtt_us", latency_json(percentiles(w.end.rtt, w.start.rtt, hz))},
        {"latency_oneway_us", latency_json(percentiles(w.end.oneway, w.start.oneway, hz))},
    };
}

void print_latency(const char* label, const json& l) {
    if (l["samples"].get<std::uint64_t>() == 0) {
        return;
    }
    std::printf("  %-13s p50 %8.1f  p90 %8.1f  p99 %8.1f  p99.9 %8.1f  max %8.1f us\n", label,
                l["p50"].get<double>(), l["p90"].get<double>(), l["p99"].get<double>(),
                l["p99.9"].get<double>(), l["max"].get<double>());
}

} // namespace

std::uint64_t mistranslations(const Snapshot& s) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < kStatCount; ++i) {
        if (is_mistranslation(static_cast<Stat>(i))) {
            n += s.values[i];
        }
    }
    return n;
}

json make_report(const RunConfig& cfg, const RunResult& r, std::uint64_t hz,
                 const ReportContext& ctx) {
    json j;
    j["tool"] = "ephemera-loadgen";
    j["config"] = {
        {"subscribers", cfg.model.subscribers()},
        {"flows_per_subscriber", cfg.model.flows_per_subscriber()},
        {"flows", cfg.model.flows()},
        {"servers", cfg.model.servers()},
        {"proto", std::string(proto_mix_name(cfg.model.mix()))},
        {"frame_size", cfg.frame_len + 4},
        {"queues", cfg.queues},
        {"steering", cfg.steering == Steering::owner ? "owner" : "rss"},
        {"expect", cfg.translated ? "translated" : "untranslated"},
        {"rate_pps", cfg.rate_pps},
        {"new_flow_rate", cfg.new_flow_rate},
        {"churn_per_s", cfg.churn_rate},
        {"long_lived", cfg.long_lived},
        {"gap_limit_s", cfg.gap_limit_s},
        {"window", cfg.window},
        {"latency_load", cfg.latency_load},
        {"duration_s", cfg.measure_s},
        {"pool", ctx.pool},
        {"port_range", ctx.port_range},
        {"in_port", ctx.in_port},
        {"out_port", ctx.out_port},
        {"in_socket", ctx.in_socket},
        {"out_socket", ctx.out_socket},
        {"tsc_hz", hz},
    };
    j["ready"] = r.ready;
    j["stopped_early"] = r.stopped;
    j["ready_wait_s"] = r.ready_wait_s;
    if (r.populate) {
        const Window& w = *r.populate;
        const std::uint64_t established = delta(w, Stat::in_established);
        const double setup = r.populate_last_established > r.populate_first_tx
                                 ? seconds(r.populate_last_established - r.populate_first_tx, hz)
                                 : 0;
        const double offered = r.populate_last_tx > r.populate_first_tx
                                   ? seconds(r.populate_last_tx - r.populate_first_tx, hz)
                                   : 0;
        j["populate"] = {
            {"flows", cfg.model.flows()},
            {"new_flows_sent", delta(w, Stat::sub_tx_new)},
            {"established", established},
            {"not_established",
             cfg.model.flows() - std::min<std::uint64_t>(established, cfg.model.flows())},
            {"seconds", setup},
            {"sessions_per_s", setup > 0 ? static_cast<double>(established) / setup : 0},
            {"offered_per_s", offered > 0 ? static_cast<double>(cfg.model.flows()) / offered : 0},
            {"latency_rtt_us", latency_json(percentiles(w.end.rtt, w.start.rtt, hz))},
        };
    }
    if (r.measure) {
        j["measure"] = window_json(*r.measure, hz);
    }
    if (r.measure && cfg.long_lived != 0) {
        const LongLivedSummary& l = r.long_lived;
        j["long_lived"] = {
            {"flows", l.flows},          {"established", l.established},
            {"silent_at_end", l.silent}, {"over_gap_limit", l.over_gap},
            {"max_gap_s", l.max_gap_s},  {"gap_limit_s", cfg.gap_limit_s},
        };
    }
    if (r.latency) {
        j["latency"] = window_json(*r.latency, hz);
    }
    if (cfg.flood.type != FloodType::none) {
        json flood{{"type", std::string(flood_type_name(cfg.flood.type))},
                   {"rate_pps", cfg.flood.rate_pps},
                   {"start_s", cfg.flood.start_s},
                   {"duration_s", cfg.flood.duration_s},
                   {"sources", cfg.flood.sources}};
        json kinds = json::array();
        for (std::size_t k = 0; k < kFloodKindCount; ++k) {
            if (kFloodKinds[k].type == cfg.flood.type) {
                kinds.push_back({{"name", std::string(kFloodKinds[k].name)},
                                 {"side", kFloodKinds[k].outside ? "outside" : "inside"},
                                 {"sent", r.flood_sent[k]},
                                 {"expect", std::string(kFloodKinds[k].expect)}});
            }
        }
        flood["kinds"] = kinds;
        if (r.measure && r.flood_start && r.flood_end) {
            // The flows' throughput before, during and after the flood.
            flood["before"] =
                window_json(Window{r.measure->start, *r.flood_start, cfg.rate_pps}, hz);
            flood["during"] = window_json(Window{*r.flood_start, *r.flood_end, cfg.rate_pps}, hz);
            flood["after"] = window_json(Window{*r.flood_end, r.measure->end, cfg.rate_pps}, hz);
            const auto during = [&](Stat s) { return (*r.flood_end)[s] - (*r.flood_start)[s]; };
            flood["sent"] = during(Stat::flood_tx);
            flood["offers"] = during(Stat::flood_offers);
            flood["offers_ring_full"] = during(Stat::flood_ring_full);
            flood["sent_mpps"] = static_cast<double>(during(Stat::flood_tx)) /
                                 seconds(r.flood_end->tsc - r.flood_start->tsc, hz) / 1e6;
        }
        j["flood"] = flood;
    }
    const Snapshot& f = r.final;
    const std::uint64_t sent = f[Stat::sub_tx];
    // What came back that was not the flows' (flood frames the NAT passed on, ICMP it sent)
    // is counted apart, so losses stay exact under a flood.
    const std::uint64_t out_rx = f[Stat::out_rx] - f[Stat::out_flood] - f[Stat::out_icmp];
    const std::uint64_t replies = f[Stat::out_reply_tx];
    const std::uint64_t back_rx = f[Stat::in_rx] - f[Stat::in_flood] - f[Stat::in_icmp];
    j["totals"] = {
        {"sent", sent},
        {"out_received", out_rx},
        {"replies_sent", replies},
        {"back_received", back_rx},
        // Frames we did not send (probes, ARP answers) are few and counted on both sides.
        {"lost_out", sent > out_rx ? sent - out_rx : 0},
        {"lost_back", replies > back_rx ? replies - back_rx : 0},
        {"reply_dropped_by_loadgen", f[Stat::out_reply_dropped]},
        {"flood_sent", f[Stat::flood_tx]},
        {"flood_out", f[Stat::out_flood]},
        {"flood_back", f[Stat::in_flood]},
        {"icmp_out", f[Stat::out_icmp]},
        {"icmp_back", f[Stat::in_icmp]},
    };
    json reasons = json::object();
    for (std::size_t i = 0; i < kStatCount; ++i) {
        if (is_mistranslation(static_cast<Stat>(i)) && f.values[i] != 0) {
            reasons[std::string(kStatNames[i])] = f.values[i];
        }
    }
    j["checks"] = {
        {"mistranslations", mistranslations(f)},
        {"by_reason", reasons},
        {"pairing_violations", f[Stat::out_pairing_violation]},
        {"reordered", f[Stat::in_reordered]},
        {"stale_generation_replies", f[Stat::in_stale_gen]},
    };
    json counters = json::object();
    for (std::size_t i = 0; i < kStatCount; ++i) {
        counters[std::string(kStatNames[i])] = f.values[i];
    }
    j["counters"] = counters;
    return j;
}

void print_report(const json& j) {
    const json& c = j["config"];
    std::printf("\nephemera-loadgen: %llu subscribers x %llu flows = %llu flows, %s, %d-byte "
                "frames, %d queue(s), expect %s\n",
                c["subscribers"].get<unsigned long long>(),
                c["flows_per_subscriber"].get<unsigned long long>(),
                c["flows"].get<unsigned long long>(), c["proto"].get<std::string>().c_str(),
                c["frame_size"].get<int>(), c["queues"].get<int>(),
                c["expect"].get<std::string>().c_str());
    if (!j["ready"].get<bool>()) {
        std::printf("  not ready: nothing answered the probe\n");
        return;
    }
    std::printf("  ready after %.2f s\n", j["ready_wait_s"].get<double>());
    if (j.contains("populate")) {
        const json& p = j["populate"];
        std::printf("  populate      %llu new flows, %llu established in %.3f s: %.3f M "
                    "sessions/s (offered %.3f M/s)\n",
                    p["new_flows_sent"].get<unsigned long long>(),
                    p["established"].get<unsigned long long>(), p["seconds"].get<double>(),
                    p["sessions_per_s"].get<double>() / 1e6,
                    p["offered_per_s"].get<double>() / 1e6);
    }
    for (const char* name : {"measure", "latency"}) {
        if (!j.contains(name)) {
            continue;
        }
        const json& m = j[name];
        std::printf("  %-13s %.2f s%s: sent %.3f Mpps, out (in2out) %.3f Mpps, back (out2in) "
                    "%.3f Mpps",
                    name, m["seconds"].get<double>(),
                    m["rate_limit_pps"].get<double>() > 0 ? " (rate-limited)" : "",
                    m["sent_mpps"].get<double>(), m["out_mpps"].get<double>(),
                    m["back_mpps"].get<double>());
        if (m["churned"].get<std::uint64_t>() != 0) {
            std::printf(", churned %llu, new established %llu",
                        m["churned"].get<unsigned long long>(),
                        m["established"].get<unsigned long long>());
        }
        std::printf("\n  %-13s busy %.0f %%, %.0f cycles per round trip; CPU share %.0f %%",
                    "  loadgen", 100 * m["loadgen_busy"].get<double>(),
                    m["loadgen_cycles_per_round_trip"].get<double>(),
                    100 * m["cpu"]["loadgen_share"].get<double>());
        if (m["cpu"].contains("peer_share")) {
            std::printf("; peer CPU share %.0f %% (%.0f ns per round trip)",
                        100 * m["cpu"]["peer_share"].get<double>(),
                        m["cpu"]["peer_ns_per_round_trip"].get<double>());
        }
        std::printf("\n");
        print_latency("  round trip", m["latency_rtt_us"]);
        print_latency("  one way out", m["latency_oneway_us"]);
    }
    if (j.contains("long_lived")) {
        const json& l = j["long_lived"];
        std::printf("  long-lived    %llu flows, %llu established, %llu silent at the end, %llu "
                    "with a gap over %.0f s (longest %.1f s)\n",
                    l["flows"].get<unsigned long long>(),
                    l["established"].get<unsigned long long>(),
                    l["silent_at_end"].get<unsigned long long>(),
                    l["over_gap_limit"].get<unsigned long long>(), l["gap_limit_s"].get<double>(),
                    l["max_gap_s"].get<double>());
    }
    if (j.contains("flood") && j["flood"].contains("during")) {
        const json& fl = j["flood"];
        std::printf("  flood         %s: %llu frames sent (%.3f Mpps), ring full at %llu of %llu "
                    "offers; "
                    "flows back %.3f / %.3f / %.3f Mpps before / during / after\n",
                    fl["type"].get<std::string>().c_str(), fl["sent"].get<unsigned long long>(),
                    fl["sent_mpps"].get<double>(), fl["offers_ring_full"].get<unsigned long long>(),
                    fl["offers"].get<unsigned long long>(), fl["before"]["back_mpps"].get<double>(),
                    fl["during"]["back_mpps"].get<double>(),
                    fl["after"]["back_mpps"].get<double>());
    }
    const json& t = j["totals"];
    std::printf("  totals        sent %llu, out %llu, replies %llu, back %llu; lost out %llu, "
                "lost back %llu\n",
                t["sent"].get<unsigned long long>(), t["out_received"].get<unsigned long long>(),
                t["replies_sent"].get<unsigned long long>(),
                t["back_received"].get<unsigned long long>(),
                t["lost_out"].get<unsigned long long>(), t["lost_back"].get<unsigned long long>());
    const json& k = j["checks"];
    std::string reasons;
    if (!k["by_reason"].empty()) {
        reasons.append(" ").append(k["by_reason"].dump());
    }
    std::printf("  checks        mistranslations %llu%s, pairing violations %llu, reordered "
                "%llu\n",
                k["mistranslations"].get<unsigned long long>(), reasons.c_str(),
                k["pairing_violations"].get<unsigned long long>(),
                k["reordered"].get<unsigned long long>());
    std::fflush(stdout);
}

} // namespace loadgen
