// One run, phase after phase, and what it measured.
//
//   wait      ARP probes for the NAT's inside gateway every 100 ms, until the NAT answers
//             (ephemera) or the probe comes out of the outside port (a forwarder: the floor)
//   populate  the first packet of every flow, once, in the pseudo-random flow order, at
//             --new-flow-rate or as fast as the NAT takes them: RFC 9693's connection
//             establishment, counted when the reply of each new flow comes back
//   warmup    established traffic, not counted
//   measure   established traffic (and churn) at --rate or as fast as the NAT takes it; a flood
//             (flood.hpp), when asked for, runs for a window inside this phase
//   latency   optional: established traffic at a fixed share of the measured reply rate, so
//             latency is not just the depth of full queues
//   drain     no new packets; what is in flight comes back, so losses are exact
//
// SIGINT or SIGTERM (request_stop) ends the run early: a measure phase under way ends there and
// is reported, then the drain runs as usual.
#pragma once

#include "generator.hpp"
#include "stats.hpp"

#include <array>
#include <cstdint>
#include <optional>

namespace loadgen {

struct Window {
    Snapshot start;
    Snapshot end;
    double rate_pps = 0; // subscriber-side limit in force, 0 = none
};

struct RunResult {
    bool ready = false;
    double ready_wait_s = 0;
    int peer_pid = 0;
    std::optional<Window> populate;
    std::uint64_t populate_first_tx = 0;
    std::uint64_t populate_last_tx = 0;
    std::uint64_t populate_last_established = 0;
    std::optional<Window> measure;
    std::optional<Snapshot> flood_start; // the flood's window, inside the measure phase
    std::optional<Snapshot> flood_end;
    LongLivedSummary long_lived; // at the end of the measure phase
    std::optional<Window> latency;
    bool stopped = false; // ended early by request_stop()
    Snapshot final;
    std::array<std::uint64_t, kFloodKindCount> flood_sent{}; // per kFloodKinds entry
};

// Async-signal-safe: ends the run early (see above).
void request_stop();

// Runs the phases on the calling (main) lcore; `inline_servers` polls the server role in the
// same loop (nullptr when it has its own lcore).
RunResult run_phases(Shared& shared, Subscribers& subscribers, Servers* inline_servers);

} // namespace loadgen
