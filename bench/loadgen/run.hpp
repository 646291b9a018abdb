// One run, phase after phase, and what it measured.
//
//   wait      ARP probes for the NAT's inside gateway every 100 ms, until the NAT answers
//             (ephemera) or the probe comes out of the outside port (a forwarder: the floor)
//   populate  the first packet of every flow, once, in the pseudo-random flow order, at
//             --new-flow-rate or as fast as the NAT takes them: RFC 9693's connection
//             establishment, counted when the reply of each new flow comes back
//   warmup    established traffic, not counted
//   measure   established traffic (and churn) at --rate or as fast as the NAT takes it
//   latency   optional: established traffic at a fixed share of the measured reply rate, so
//             latency is not just the depth of full queues
//   drain     no new packets; what is in flight comes back, so losses are exact
#pragma once

#include "generator.hpp"
#include "stats.hpp"

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
    std::optional<Window> latency;
    Snapshot final;
};

// Runs the phases on the calling (main) lcore; `inline_servers` polls the server role in the
// same loop (nullptr when it has its own lcore).
RunResult run_phases(Shared& shared, Subscribers& subscribers, Servers* inline_servers);

} // namespace loadgen
