#include "exposition.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <utility>

namespace ephemera::metrics {

namespace {

// Where a counter goes: its family and the one label that tells it from its siblings there
// (none when the family holds only this counter). Counters of one kind share a family, so
// that sum() and rate() over the label read naturally: every drop reason, every direction.
struct CounterSeries {
    std::string name;
    std::string label; // empty: no label beyond worker
    std::string value;
};

struct FamilyHelp {
    std::string_view name;
    std::string_view help;
};

// Families of counters that do not keep their counter's name.
constexpr FamilyHelp kGroupedHelp[] = {
    {"ephemera_received_packets_total",
     "Packets received by the worker, by direction (in2out: on the inside port)"},
    {"ephemera_transmitted_packets_total",
     "Frames sent by the worker, by direction (in2out: out of the outside port), answers and "
     "ARP included"},
    {"ephemera_translated_packets_total", "Packets translated by the worker, by direction"},
    {"ephemera_drops_total",
     "Packets dropped, by reason (the drop_* counters; ports_exhausted, subscriber_* and "
     "blocks_exhausted are mappings refused)"},
    {"ephemera_sessions_expired_total", "Sessions aged out, by the timeout that ended them"},
    {"ephemera_icmp_errors_translated_total", "ICMP errors translated (RFC 5508), by direction"},
};

// Help of the counters that keep their own name, from include/ephemera/counters.hpp.
constexpr FamilyHelp kCounterHelp[] = {
    {"mappings_created", "New endpoint-independent mappings (RFC 4787 REQ-1)"},
    {"sessions_created", "New 5-tuple sessions"},
    {"port_preserved", "New mappings that kept the subscriber's source port"},
    {"handoff_sent_packets", "Packets handed to their owning worker"},
    {"handoff_received_packets", "Packets received from another worker"},
    {"arp_replies_sent", "ARP replies sent"},
    {"arp_requests_sent", "ARP requests sent for the next hop"},
    {"arp_replies_received", "ARP replies from the next hop"},
    {"icmp_echo_replies_sent", "Pings to the inside gateway answered"},
    {"pool_echo_replies_sent", "Pings to a pool address answered"},
    {"hairpinned_packets", "Subscriber packets to a pool address turned back inside"},
    {"syn_held", "Unsolicited inbound SYNs held 6 s (RFC 5382 REQ-4)"},
    {"syn_held_cancelled", "Held SYNs dropped: the inside sent a SYN of that connection"},
    {"syn_held_overflow", "Held SYNs dropped: the hold queue was full"},
    {"syn_unreachable_sent", "Held SYNs answered with ICMP 3/3 after 6 s"},
    {"icmp_unreachable_sent", "ICMP 3/1 to a subscriber refused a mapping (RFC 6888 REQ-11)"},
    {"icmp_unreachable_rate_limited", "ICMP 3/1 held back by the rate limit"},
    {"mappings_released", "Mappings whose last session went; the port enters hold-down"},
    {"ports_held", "Ports that entered hold-down (RFC 6888 REQ-8)"},
    {"ports_returned", "Ports whose hold-down ended"},
    {"blocks_opened", "Port blocks given to subscribers"},
    {"blocks_released", "Port blocks whose last mapping ended"},
    {"static_mappings_created", "Mappings of a static entry, made by either side's first packet"},
    {"static_arp_requests_sent", "ARP requests for a static mapping's inside host"},
    {"log_records", "NAT event records handed to the logging thread"},
    {"log_records_dropped", "NAT event records not handed over: the worker's event ring was full"},
    {"ha_records_sent", "HA sync records handed to the sync thread"},
    {"ha_records_dropped", "HA sync records not handed over: the worker's sync ring was full"},
    {"ha_records_applied", "HA sync records from the active peer applied (standby)"},
    {"ha_records_refused", "HA sync records from the active peer that could not be applied"},
    {"moved_passed_inside", "Frames of subscribers moved to a peer box, passed to its inside MAC"},
    {"moved_passed_outside", "Replies to ports held for moved subscribers, passed to the peer"},
    {"ports_forwarded", "Ports of moved subscribers' mappings held here for their replies"},
    {"forwards_ended", "Ports held for moved subscribers let go after falling idle"},
    {"fragments_translated", "Later fragments translated as their first piece was"},
    {"fragments_held", "Later fragments kept until their first piece came"},
    {"fragments_timed_out", "Held fragments freed: their first piece never came in time"},
    {"fragments_evicted", "Held fragments freed: their slot went to a newer datagram"},
    {"packets_fragmented", "Packets split to fit the port's MTU"},
    {"fragments_sent", "Pieces those splits made"},
    {"icmp_too_big_sent", "ICMP 3/4 fragmentation needed sent to a DF sender"},
    {"icmp_time_exceeded_sent", "ICMP 11/0 sent for a packet whose TTL ran out here"},
    {"icmp_time_exceeded_rate_limited", "ICMP 11/0 held back by the rate limit"},
};

CounterSeries series_of(Counter c) {
    const std::string n(counter_name(c));
    const auto ends = [&](std::string_view tail) { return n.ends_with(tail); };
    if (n.starts_with("drop_")) {
        return {"ephemera_drops_total", "reason", n.substr(5)};
    }
    if (n.starts_with("expired_")) {
        return {"ephemera_sessions_expired_total", "timeout", n.substr(8)};
    }
    if (n == "in2out_rx" || n == "out2in_rx") {
        return {"ephemera_received_packets_total", "direction", n.substr(0, 6)};
    }
    if (n == "in2out_tx" || n == "out2in_tx") {
        return {"ephemera_transmitted_packets_total", "direction", n.substr(0, 6)};
    }
    if (ends("_translated") && (n.starts_with("in2out") || n.starts_with("out2in"))) {
        return {"ephemera_translated_packets_total", "direction", n.substr(0, 6)};
    }
    if (n.starts_with("icmp_errors_")) {
        return {"ephemera_icmp_errors_translated_total", "direction", n.substr(12)};
    }
    if (c == Counter::handoff_tx) {
        return {"ephemera_handoff_sent_packets_total", {}, {}};
    }
    if (c == Counter::handoff_rx) {
        return {"ephemera_handoff_received_packets_total", {}, {}};
    }
    if (c == Counter::hairpinned) {
        return {"ephemera_hairpinned_packets_total", {}, {}};
    }
    return {"ephemera_" + n + "_total", {}, {}};
}

std::string help_of(std::string_view family) {
    for (const auto& g : kGroupedHelp) {
        if (g.name == family) {
            return std::string(g.help);
        }
    }
    constexpr std::string_view prefix = "ephemera_";
    constexpr std::string_view suffix = "_total";
    const std::string_view bare =
        family.substr(prefix.size(), family.size() - prefix.size() - suffix.size());
    for (const auto& h : kCounterHelp) {
        if (h.name == bare) {
            return std::string(h.help);
        }
    }
    // A counter added without help here still shows, with where it is described.
    return "Counter " + std::string(bare) + " (include/ephemera/counters.hpp)";
}

Label worker_label(const WorkerSnapshot& w) {
    return {"worker", std::to_string(w.id)};
}

constexpr std::array<Protocol, kProtocolCount> kProtocols = {Protocol::udp, Protocol::tcp,
                                                             Protocol::icmp};

std::size_t at(Protocol p) {
    return static_cast<std::size_t>(proto_index(p));
}

// Families in the order they were first named.
class Builder {
public:
    Family& family(const std::string& name, Type type, const std::string& help) {
        const auto [it, added] = index_.try_emplace(name, out_.size());
        if (added) {
            out_.push_back(Family{name, help, type, {}});
        }
        return out_[it->second];
    }
    void add(const std::string& name, Type type, const std::string& help, std::vector<Label> labels,
             double value) {
        family(name, type, help).samples.push_back(Sample{std::move(labels), value});
    }
    std::vector<Family> take() { return std::move(out_); }

private:
    std::vector<Family> out_;
    std::map<std::string, std::size_t> index_;
};

void add_counters(Builder& b, const Snapshot& s) {
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        const CounterSeries series = series_of(static_cast<Counter>(i));
        const std::string help = help_of(series.name);
        for (const WorkerSnapshot& w : s.workers) {
            std::vector<Label> labels{worker_label(w)};
            if (!series.label.empty()) {
                labels.push_back({series.label, series.value});
            }
            b.add(series.name, Type::counter, help, std::move(labels),
                  static_cast<double>(w.counters[i]));
        }
    }
}

void add_worker_gauges(Builder& b, const Snapshot& s) {
    for (const WorkerSnapshot& w : s.workers) {
        for (Protocol p : kProtocols) {
            b.add("ephemera_sessions", Type::gauge, "Live sessions, by protocol",
                  {worker_label(w), {"protocol", std::string(protocol_name(p))}},
                  static_cast<double>(w.sessions_by_protocol[at(p)]));
        }
    }
    const auto per_worker = [&](const char* name, const char* help, auto value_of,
                                Type type = Type::gauge) {
        for (const WorkerSnapshot& w : s.workers) {
            b.add(name, type, help, {worker_label(w)}, static_cast<double>(value_of(w)));
        }
    };
    per_worker("ephemera_mappings", "Live endpoint-independent mappings",
               [](const WorkerSnapshot& w) { return w.mappings; });
    per_worker("ephemera_subscribers", "Subscribers with state on the worker",
               [](const WorkerSnapshot& w) { return w.subscribers; });
    per_worker("ephemera_ports_in_hold_down", "Ports in hold-down (RFC 6888 REQ-8)",
               [](const WorkerSnapshot& w) { return w.ports_in_hold_down; });
    per_worker("ephemera_worker_ports_per_address",
               "Ports of each pool address and protocol that the worker may hand out",
               [](const WorkerSnapshot& w) { return w.ports_per_address; });
    per_worker("ephemera_longest_iteration_seconds",
               "Longest poll-loop iteration since the pause window was last reset",
               [](const WorkerSnapshot& w) { return w.longest_iteration_seconds; });
    per_worker(
        "ephemera_plans_taken_total", "Configuration plans the worker took up",
        [](const WorkerSnapshot& w) { return w.plans_taken; }, Type::counter);
}

void add_ports(Builder& b, const Snapshot& s) {
    b.add("ephemera_port_use_known", Type::gauge,
          "1 when every worker reported its port use for this scrape in time, else 0 (and no "
          "ephemera_pool_ports_* samples)",
          {}, s.ports_known ? 1 : 0);
    for (const PortUse& a : s.ports) {
        for (Protocol p : kProtocols) {
            std::vector<Label> labels{{"pool_address", a.address},
                                      {"protocol", std::string(protocol_name(p))}};
            b.add("ephemera_pool_ports_used", Type::gauge,
                  "External ports in use, per pool address and protocol", labels,
                  static_cast<double>(a.used[at(p)]));
            b.add("ephemera_pool_ports_usable", Type::gauge,
                  "External ports that may be handed out, per pool address and protocol",
                  std::move(labels), static_cast<double>(a.usable[at(p)]));
        }
    }
    for (const PortUse& a : s.ports) {
        b.add("ephemera_pool_address_draining", Type::gauge,
              "1 for a pool address being removed: it takes no new mappings",
              {{"pool_address", a.address}}, a.draining ? 1 : 0);
    }
}

void add_logging(Builder& b, const Snapshot& s) {
    b.add("ephemera_log_records_taken_total", Type::counter,
          "NAT event records the logging thread took from the workers' rings", {},
          static_cast<double>(s.log_records_taken));
    const auto per_sink = [&](const char* name, const char* help,
                              std::uint64_t SinkSnapshot::*field) {
        for (const SinkSnapshot& k : s.sinks) {
            b.add(name, Type::counter, help, {{"sink", k.name}}, static_cast<double>(k.*field));
        }
    };
    per_sink("ephemera_log_sink_records_sent_total", "NAT event records a sink sent",
             &SinkSnapshot::records_sent);
    per_sink("ephemera_log_sink_records_dropped_total",
             "NAT event records a sink lost (backlog full, collector gone)",
             &SinkSnapshot::records_dropped);
    per_sink("ephemera_log_sink_messages_sent_total", "Messages (datagrams, frames) a sink sent",
             &SinkSnapshot::messages_sent);
    per_sink("ephemera_log_sink_sent_bytes_total", "Bytes a sink sent", &SinkSnapshot::bytes_sent);
    per_sink("ephemera_log_sink_errors_total", "Send or write errors of a sink",
             &SinkSnapshot::errors);
}

void add_ha(Builder& b, const HaSnapshot& h) {
    const auto gauge = [&](const char* name, const char* help, double v) {
        b.add(name, Type::gauge, help, {}, v);
    };
    const auto counter = [&](const char* name, const char* help, std::uint64_t v) {
        b.add(name, Type::counter, help, {}, static_cast<double>(v));
    };
    gauge("ephemera_ha_active", "1 while this box of the HA pair is the active one", h.active);
    gauge("ephemera_ha_peer_connected", "1 while the pair's sync link is up and paired",
          h.peer_connected);
    gauge("ephemera_ha_in_sync", "1 once the bulk round since pairing is complete", h.in_sync);
    gauge("ephemera_ha_lag_records", "Records sent to the standby and not yet acknowledged",
          static_cast<double>(h.lag_records));
    gauge("ephemera_ha_last_heard_seconds", "Time since the peer was last heard on the link",
          static_cast<double>(h.last_heard_ms_ago) / 1000.0);
    gauge("ephemera_ha_last_failover_timestamp_seconds",
          "Unix time of this box's last takeover (0: never)",
          static_cast<double>(h.last_failover_unix_ms) / 1000.0);
    counter("ephemera_ha_link_records_sent_total", "Session records streamed to the standby",
            h.records_sent);
    counter("ephemera_ha_link_records_received_total", "Session records received from the active",
            h.records_received);
    counter("ephemera_ha_link_records_discarded_total",
            "Session records drained while no standby was paired", h.records_discarded);
    counter("ephemera_ha_sequence_gaps_total", "Broken sync streams (a gap in the numbers)",
            h.sequence_gaps);
    counter("ephemera_ha_link_sent_bytes_total", "Bytes sent on the sync link", h.bytes_sent);
    counter("ephemera_ha_link_received_bytes_total", "Bytes received on the sync link",
            h.bytes_received);
    counter("ephemera_ha_pairings_total", "Times the pair was formed", h.pairings);
    counter("ephemera_ha_bulk_rounds_total", "Bulk rounds completed", h.bulk_rounds);
    counter("ephemera_ha_failovers_total", "Takeovers by this box", h.failovers);
    counter("ephemera_ha_split_brains_total", "Times both boxes were found active", h.split_brains);
}

void add_steering(Builder& b, const Snapshot& s) {
    b.add("ephemera_flow_rules", Type::gauge,
          "rte_flow rules installed on the outside port for steering", {},
          static_cast<double>(s.flow_rules));
    const char* help = "Steering mode of each port, fixed at start (value always 1)";
    if (!s.outside_steering.empty()) {
        b.add("ephemera_steering_info", Type::gauge, help,
              {{"port", "outside"}, {"mode", s.outside_steering}}, 1);
    }
    if (!s.inside_steering.empty()) {
        b.add("ephemera_steering_info", Type::gauge, help,
              {{"port", "inside"}, {"mode", s.inside_steering}}, 1);
    }
}

void add_alarms(Builder& b, const Snapshot& s) {
    if (!s.alarms_sampled) {
        return;
    }
    b.add("ephemera_pool_port_alarm_changes_total", Type::counter,
          "Pool port use alarms raised or cleared since start", {},
          static_cast<double>(s.alarm_changes));
    for (const PoolForecast& f : s.pool_forecasts) {
        std::vector<Label> labels{{"protocol", std::string(protocol_name(f.proto))}};
        b.add("ephemera_pool_port_alarm", Type::gauge,
              "1 while the pool's port use of the protocol is above its high watermark "
              "(alarms.pool_ports_high) and not yet back at its clear line",
              labels, f.alarm ? 1 : 0);
        if (f.ports_per_second) {
            b.add("ephemera_pool_ports_trend_per_second", Type::gauge,
                  "Ports in use per second, the slope of the pool's port use over the forecast "
                  "window (least squares)",
                  labels, *f.ports_per_second);
            // +Inf when not running out: an alert on "< 3600" then needs no special case.
            b.add("ephemera_pool_exhaustion_seconds", Type::gauge,
                  "Seconds until the pool's ports of the protocol run out at the current trend "
                  "(+Inf: not running out)",
                  std::move(labels),
                  f.seconds_to_exhaustion ? *f.seconds_to_exhaustion
                                          : std::numeric_limits<double>::infinity());
        }
    }
    for (const AddressForecast& f : s.address_forecasts) {
        b.add("ephemera_pool_address_exhaustion_seconds", Type::gauge,
              "Seconds until one pool address's ports of the protocol run out at its trend; "
              "only addresses that are running out",
              {{"pool_address", f.address}, {"protocol", std::string(protocol_name(f.proto))}},
              f.seconds_to_exhaustion);
    }
}

std::string_view type_name(Type t) {
    switch (t) {
    case Type::counter:
        return "counter";
    case Type::histogram:
        return "histogram";
    case Type::gauge:
        break;
    }
    return "gauge";
}

// A histogram's samples: cumulative buckets up to +Inf, then _sum and _count.
void add_histogram(Builder& b, const std::string& name, const std::string& help,
                   const Histogram& h) {
    Family& f = b.family(name, Type::histogram, help);
    std::uint64_t cumulative = 0;
    char le[32];
    for (std::size_t i = 0; i < h.bounds.size() && i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        std::snprintf(le, sizeof le, "%.15g", h.bounds[i]); // 0.1, not 0.10000000000000001
        f.samples.push_back(Sample{{{"le", le}}, static_cast<double>(cumulative), "_bucket"});
    }
    f.samples.push_back(Sample{{{"le", "+Inf"}}, static_cast<double>(h.count), "_bucket"});
    f.samples.push_back(Sample{{}, h.sum, "_sum"});
    f.samples.push_back(Sample{{}, static_cast<double>(h.count), "_count"});
}

// The top N as gauges, one series per rank: the subscriber holding the rank is a label, so the
// series stay N per list however many subscribers there are.
void add_top(Builder& b, const char* name, const char* help, const std::vector<TopSubscriber>& top,
             std::uint64_t TopSubscriber::*field) {
    for (std::size_t i = 0; i < top.size(); ++i) {
        b.add(name, Type::gauge, help,
              {{"rank", std::to_string(i + 1)},
               {"subscriber", top[i].subscriber},
               {"pool_address", top[i].pool_address}},
              static_cast<double>(top[i].*field));
    }
}

void add_subscribers(Builder& b, const Snapshot& s) {
    b.add("ephemera_subscriber_view_known", Type::gauge,
          "1 when every worker summarised its subscribers for this scrape in time, else 0 (and "
          "no ephemera_subscriber_* or ephemera_top_subscriber_* samples)",
          {}, s.subscribers_known ? 1 : 0);
    if (!s.subscribers_known) {
        return;
    }
    add_histogram(b, "ephemera_subscriber_ports",
                  "Subscribers by the ports they hold in their busiest protocol",
                  s.subscriber_ports);
    if (s.block_fill) {
        add_histogram(b, "ephemera_subscriber_block_fill",
                      "Subscribers holding port blocks by the fill of their blocks (ports in use "
                      "in the busiest protocol / ports of the blocks)",
                      *s.block_fill);
    }
    add_top(b, "ephemera_top_subscriber_ports",
            "Ports held in the busiest protocol by the subscribers holding the most, by rank",
            s.top_by_ports, &TopSubscriber::ports);
    add_top(b, "ephemera_top_subscriber_refusals",
            "New mappings refused to the subscribers refused the most, by rank", s.top_by_refusals,
            &TopSubscriber::refusals);
}

void append_value(std::string& out, double v) {
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    char buf[32];
    // Integers as integers (counters stay exact up to 2^53), the rest with full precision.
    if (v >= 0 && v < 9007199254740992.0 &&
        v == static_cast<double>(static_cast<std::uint64_t>(v))) {
        std::snprintf(buf, sizeof buf, "%llu",
                      static_cast<unsigned long long>(static_cast<std::uint64_t>(v)));
    } else {
        std::snprintf(buf, sizeof buf, "%.17g", v);
    }
    out += buf;
}

} // namespace

std::vector<Family> families(const Snapshot& s) {
    Builder b;
    add_counters(b, s);
    add_worker_gauges(b, s);
    add_ports(b, s);
    add_logging(b, s);
    if (s.ha) {
        add_ha(b, *s.ha);
    }
    add_steering(b, s);
    add_alarms(b, s);
    add_subscribers(b, s);
    return b.take();
}

std::string format(const std::vector<Family>& families) {
    std::string out;
    for (const Family& f : families) {
        if (f.samples.empty()) {
            continue;
        }
        out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
        out += "# TYPE " + f.name + " " + std::string(type_name(f.type)) + "\n";
        for (const Sample& sample : f.samples) {
            out += f.name + sample.suffix;
            if (!sample.labels.empty()) {
                out += '{';
                for (std::size_t i = 0; i < sample.labels.size(); ++i) {
                    out += i == 0 ? "" : ",";
                    out += sample.labels[i].name + "=\"" +
                           escape_label_value(sample.labels[i].value) + "\"";
                }
                out += '}';
            }
            out += ' ';
            append_value(out, sample.value);
            out += '\n';
        }
    }
    return out;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    for (char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

bool name_chars(std::string_view name, bool colon) {
    if (name.empty()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) {
            return false;
        }
    }
    return true;
}

} // namespace

bool valid_metric_name(std::string_view name) {
    return name_chars(name, true);
}

bool valid_label_name(std::string_view name) {
    return name_chars(name, false) && !name.starts_with("__");
}

} // namespace ephemera::metrics
