// The Prometheus text exposition format (version 0.0.4) of ephemera's figures. A Snapshot is
// what the scrape read from the running process (metrics/gather.cpp); turning it into text
// needs no DPDK, so the format is tested on hand-built snapshots (docs/metrics.md lists the
// metrics).
#pragma once

#include "../logging/sink.hpp"

#include "ephemera/counters.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ephemera::metrics {

struct WorkerSnapshot {
    std::uint32_t id = 0;
    std::array<std::uint64_t, kCounterCount> counters{};
    std::uint64_t sessions = 0;
    std::uint64_t mappings = 0;
    std::uint64_t subscribers = 0;
    std::uint64_t ports_in_hold_down = 0;
    std::uint64_t ports_per_address = 0;
    std::array<std::uint64_t, kProtocolCount> sessions_by_protocol{}; // by ProtoIndex
    double longest_iteration_seconds = 0;
    std::uint64_t plans_taken = 0;
};

// One pool address's ports, summed over the workers as /ephemera/ports sums them.
struct PortUse {
    std::string address;
    std::array<std::uint64_t, kProtocolCount> used{}; // by ProtoIndex
    std::array<std::uint64_t, kProtocolCount> usable{};
    bool draining = false;
};

using SinkSnapshot = logging::SinkReport;

// The pool alarms' state (control/alarms/pool_watch.hpp): per protocol, pool-wide.
struct PoolForecast {
    Protocol proto = Protocol::udp;
    bool alarm = false;
    std::optional<double> ports_per_second;      // nullopt: no trend yet
    std::optional<double> seconds_to_exhaustion; // nullopt: not running out (or no trend)
};

// A pool address that is running out at its trend (addresses that are not are left out, so
// that the series stay few on a pool of thousands).
struct AddressForecast {
    std::string address;
    Protocol proto = Protocol::udp;
    double seconds_to_exhaustion = 0;
};

// A histogram as a scrape shows it: non-cumulative counts per upper bound (the exposition adds
// them up, and +Inf), their sum and how many were counted.
struct Histogram {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts; // one per bound
    double sum = 0;
    std::uint64_t count = 0;
};

// One place of a subscriber top N (control/subscriber_top.hpp).
struct TopSubscriber {
    std::string subscriber;
    std::string pool_address;
    std::uint64_t ports = 0; // in its busiest protocol
    std::uint64_t refusals = 0;
};

// The HA pair's sync link (control/ha/sync_thread.hpp), when ha.role is set.
struct HaSnapshot {
    bool active = false;
    bool peer_connected = false;
    bool in_sync = false;
    std::uint64_t records_sent = 0;
    std::uint64_t records_received = 0;
    std::uint64_t records_discarded = 0;
    std::uint64_t sequence_gaps = 0;
    std::uint64_t lag_records = 0;
    std::uint64_t last_heard_ms_ago = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t pairings = 0;
    std::uint64_t bulk_rounds = 0;
    std::uint64_t failovers = 0;
    std::uint64_t split_brains = 0;
    std::uint64_t last_failover_unix_ms = 0;
};

struct Snapshot {
    std::vector<WorkerSnapshot> workers;
    // Port use needs every worker's answer; false when one did not come in time, and then
    // `ports` is empty rather than partial.
    bool ports_known = false;
    std::vector<PortUse> ports;
    std::uint64_t log_records_taken = 0; // by the logging thread, from every worker's ring
    std::vector<SinkSnapshot> sinks;
    std::string outside_steering; // steering modes, fixed at start
    std::string inside_steering;
    std::uint64_t flow_rules = 0;
    bool alarms_sampled = false; // the pool alarms have taken a sample
    std::vector<PoolForecast> pool_forecasts;
    std::vector<AddressForecast> address_forecasts;
    std::uint64_t alarm_changes = 0;
    // The subscriber summary needs every worker's walk; false when one did not finish in time,
    // and then nothing below is shown.
    bool subscribers_known = false;
    Histogram subscriber_ports;
    std::optional<Histogram> block_fill; // blocks mode only
    std::vector<TopSubscriber> top_by_ports;
    std::vector<TopSubscriber> top_by_refusals;
    std::optional<HaSnapshot> ha;
};

enum class Type : std::uint8_t { counter, gauge, histogram };

struct Label {
    std::string name;
    std::string value;
};

struct Sample {
    // A constructor rather than an aggregate, so that {labels, value} leaves the suffix empty.
    Sample(std::vector<Label> labels_ = {}, double value_ = 0, std::string suffix_ = {})
        : labels(std::move(labels_)), value(value_), suffix(std::move(suffix_)) {}

    std::vector<Label> labels;
    double value = 0;   // exact for integers below 2^53, which a scrape's counters stay under
    std::string suffix; // a histogram's "_bucket", "_sum" or "_count"
};

struct Family {
    std::string name;
    std::string help;
    Type type = Type::gauge;
    std::vector<Sample> samples;
};

// Every metric of `s`, in a fixed order; families without samples are left out.
std::vector<Family> families(const Snapshot& s);
// The families as text: "# HELP", "# TYPE", then the samples, each line ending in '\n'.
std::string format(const std::vector<Family>& families);
inline std::string exposition(const Snapshot& s) {
    return format(families(s));
}

// Label values escape backslash, double quote and newline; help texts backslash and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
// [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]* (names starting "__" are reserved).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

} // namespace ephemera::metrics
