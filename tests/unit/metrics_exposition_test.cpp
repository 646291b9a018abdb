// The Prometheus text exposition (control/metrics/exposition.cpp) of hand-built snapshots:
// exact text, escaping, valid names, one HELP and TYPE per family, no series twice, and every
// counter of every worker present once.
#include "../../control/metrics/exposition.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

namespace ephemera::metrics {
namespace {

std::size_t at(Protocol p) {
    return static_cast<std::size_t>(proto_index(p));
}

Snapshot two_workers() {
    Snapshot s;
    for (std::uint32_t id = 0; id < 2; ++id) {
        WorkerSnapshot w;
        w.id = id;
        for (std::size_t i = 0; i < kCounterCount; ++i) {
            w.counters[i] = 1000 * (id + 1) + i;
        }
        w.counters[static_cast<std::size_t>(Counter::in2out_rx)] = 10 + id;
        w.counters[static_cast<std::size_t>(Counter::drop_ports_exhausted)] = 7;
        w.sessions_by_protocol[at(Protocol::udp)] = 3 + id;
        w.sessions_by_protocol[at(Protocol::tcp)] = 1;
        w.subscribers = 2;
        w.ports_in_hold_down = 5;
        w.longest_iteration_seconds = 0.000125;
        s.workers.push_back(w);
    }
    s.ports_known = true;
    PortUse a;
    a.address = "198.18.0.10";
    a.used = {4, 1, 0};
    a.usable = {16384, 16384, 16384};
    s.ports.push_back(a);
    s.log_records_taken = 42;
    s.sinks.push_back({"syslog udp:127.0.0.1:514", 40, 2, 40, 4000, 0});
    s.outside_steering = "rss";
    s.inside_steering = "rss";
    s.flow_rules = 0;
    return s;
}

// The HELP and TYPE lines of `family` and its samples, as they stand in `text`.
std::string block(const std::string& text, const std::string& family) {
    std::istringstream in(text);
    std::string out;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("# HELP " + family + " ") || line == "# TYPE " + family + " counter" ||
            line == "# TYPE " + family + " gauge" || line.starts_with(family + "{") ||
            line.starts_with(family + " ")) {
            out += line + "\n";
        }
    }
    return out;
}

TEST(MetricsExposition, FormatOfHandBuiltFamilies) {
    std::vector<Family> f;
    f.push_back({"ephemera_demo_total",
                 "A counter\nover two lines \\ here",
                 Type::counter,
                 {{{{"worker", "0"}, {"reason", "a\"b"}}, 12}, {{{"worker", "1"}}, 0}}});
    f.push_back({"ephemera_empty", "left out", Type::gauge, {}});
    f.push_back({"ephemera_ratio", "A gauge", Type::gauge, {{{}, 0.25}}});
    EXPECT_EQ(format(f), "# HELP ephemera_demo_total A counter\\nover two lines \\\\ here\n"
                         "# TYPE ephemera_demo_total counter\n"
                         "ephemera_demo_total{worker=\"0\",reason=\"a\\\"b\"} 12\n"
                         "ephemera_demo_total{worker=\"1\"} 0\n"
                         "# HELP ephemera_ratio A gauge\n"
                         "# TYPE ephemera_ratio gauge\n"
                         "ephemera_ratio 0.25\n");
}

TEST(MetricsExposition, SnapshotText) {
    const std::string text = exposition(two_workers());
    EXPECT_EQ(block(text, "ephemera_received_packets_total"),
              "# HELP ephemera_received_packets_total Packets received by the worker, by "
              "direction (in2out: on the inside port)\n"
              "# TYPE ephemera_received_packets_total counter\n"
              "ephemera_received_packets_total{worker=\"0\",direction=\"in2out\"} 10\n"
              "ephemera_received_packets_total{worker=\"1\",direction=\"in2out\"} 11\n"
              "ephemera_received_packets_total{worker=\"0\",direction=\"out2in\"} 1001\n"
              "ephemera_received_packets_total{worker=\"1\",direction=\"out2in\"} 2001\n");
    EXPECT_EQ(block(text, "ephemera_sessions"),
              "# HELP ephemera_sessions Live sessions, by protocol\n"
              "# TYPE ephemera_sessions gauge\n"
              "ephemera_sessions{worker=\"0\",protocol=\"udp\"} 3\n"
              "ephemera_sessions{worker=\"0\",protocol=\"tcp\"} 1\n"
              "ephemera_sessions{worker=\"0\",protocol=\"icmp\"} 0\n"
              "ephemera_sessions{worker=\"1\",protocol=\"udp\"} 4\n"
              "ephemera_sessions{worker=\"1\",protocol=\"tcp\"} 1\n"
              "ephemera_sessions{worker=\"1\",protocol=\"icmp\"} 0\n");
    EXPECT_EQ(block(text, "ephemera_pool_ports_used"),
              "# HELP ephemera_pool_ports_used External ports in use, per pool address and "
              "protocol\n"
              "# TYPE ephemera_pool_ports_used gauge\n"
              "ephemera_pool_ports_used{pool_address=\"198.18.0.10\",protocol=\"udp\"} 4\n"
              "ephemera_pool_ports_used{pool_address=\"198.18.0.10\",protocol=\"tcp\"} 1\n"
              "ephemera_pool_ports_used{pool_address=\"198.18.0.10\",protocol=\"icmp\"} 0\n");
    EXPECT_EQ(block(text, "ephemera_log_sink_records_dropped_total"),
              "# HELP ephemera_log_sink_records_dropped_total NAT event records a sink lost "
              "(backlog full, collector gone)\n"
              "# TYPE ephemera_log_sink_records_dropped_total counter\n"
              "ephemera_log_sink_records_dropped_total{sink=\"syslog udp:127.0.0.1:514\"} 2\n");
    EXPECT_EQ(block(text, "ephemera_longest_iteration_seconds"),
              "# HELP ephemera_longest_iteration_seconds Longest poll-loop iteration since the "
              "pause window was last reset\n"
              "# TYPE ephemera_longest_iteration_seconds gauge\n"
              "ephemera_longest_iteration_seconds{worker=\"0\"} 0.000125\n"
              "ephemera_longest_iteration_seconds{worker=\"1\"} 0.000125\n");
    EXPECT_THAT(text, ::testing::HasSubstr(
                          "ephemera_drops_total{worker=\"1\",reason=\"ports_exhausted\"} 7\n"));
    EXPECT_THAT(text,
                ::testing::HasSubstr(
                    "ephemera_log_records_dropped_total{worker=\"0\"} " +
                    std::to_string(1000 + static_cast<int>(Counter::log_records_dropped)) + "\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_port_use_known 1\n"));
    EXPECT_THAT(text,
                ::testing::HasSubstr("ephemera_steering_info{port=\"outside\",mode=\"rss\"} 1\n"));
}

// Subscribers by port use: histograms with cumulative buckets and +Inf, and the top N as
// one gauge per rank.
Snapshot with_subscribers() {
    Snapshot s = two_workers();
    s.subscribers_known = true;
    s.subscriber_ports = Histogram{{0, 1, 2, 4}, {1, 2, 0, 3}, 17, 6};
    s.block_fill = Histogram{{0.1, 0.2}, {4, 1}, 0.35, 5};
    s.top_by_ports = {{"100.64.0.3", "198.18.0.10", 4, 0}, {"100.64.0.1", "198.18.0.10", 4, 2}};
    s.top_by_refusals = {{"100.64.0.1", "198.18.0.10", 4, 2}};
    return s;
}

TEST(MetricsExposition, SubscriberHistogramsAndTopN) {
    const std::string text = exposition(with_subscribers());
    EXPECT_THAT(text, ::testing::HasSubstr("# TYPE ephemera_subscriber_ports histogram\n"
                                           "ephemera_subscriber_ports_bucket{le=\"0\"} 1\n"
                                           "ephemera_subscriber_ports_bucket{le=\"1\"} 3\n"
                                           "ephemera_subscriber_ports_bucket{le=\"2\"} 3\n"
                                           "ephemera_subscriber_ports_bucket{le=\"4\"} 6\n"
                                           "ephemera_subscriber_ports_bucket{le=\"+Inf\"} 6\n"
                                           "ephemera_subscriber_ports_sum 17\n"
                                           "ephemera_subscriber_ports_count 6\n"));
    EXPECT_THAT(text,
                ::testing::HasSubstr("ephemera_subscriber_block_fill_bucket{le=\"0.1\"} 4\n"
                                     "ephemera_subscriber_block_fill_bucket{le=\"0.2\"} 5\n"));
    EXPECT_THAT(text, ::testing::HasSubstr(
                          "ephemera_top_subscriber_ports{rank=\"2\",subscriber=\"100.64.0.1\","
                          "pool_address=\"198.18.0.10\"} 4\n"));
    EXPECT_THAT(text, ::testing::HasSubstr(
                          "ephemera_top_subscriber_refusals{rank=\"1\",subscriber=\"100.64.0.1\","
                          "pool_address=\"198.18.0.10\"} 2\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_subscriber_view_known 1\n"));
}

TEST(MetricsExposition, SubscriberSummaryUnknownHasNoSubscriberSamples) {
    Snapshot s = with_subscribers();
    s.subscribers_known = false;
    const std::string text = exposition(s);
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_subscriber_view_known 0\n"));
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("# TYPE ephemera_subscriber_ports")));
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("ephemera_top_subscriber_ports{")));
}

TEST(MetricsExposition, PortUseUnknownHasNoPortSamples) {
    Snapshot s = two_workers();
    s.ports_known = false;
    s.ports.clear();
    const std::string text = exposition(s);
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_port_use_known 0\n"));
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("ephemera_pool_ports_used")));
}

// The pool alarms: a forecast that is not running out is +Inf (the text format's spelling),
// one without a trend yet has no sample, and only addresses running out have a series.
TEST(MetricsExposition, PoolAlarmsAndForecasts) {
    Snapshot s = two_workers();
    EXPECT_THAT(exposition(s), ::testing::Not(::testing::HasSubstr("ephemera_pool_port_alarm")));
    s.alarms_sampled = true;
    s.alarm_changes = 3;
    s.pool_forecasts = {{Protocol::udp, true, 2.5, 120.0},
                        {Protocol::tcp, false, -1.0, std::nullopt},
                        {Protocol::icmp, false, std::nullopt, std::nullopt}};
    s.address_forecasts = {{"198.18.0.10", Protocol::udp, 60.5}};
    const std::string text = exposition(s);
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_pool_port_alarm_changes_total 3\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_pool_port_alarm{protocol=\"udp\"} 1\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_pool_port_alarm{protocol=\"icmp\"} 0\n"));
    EXPECT_THAT(
        text, ::testing::HasSubstr("ephemera_pool_ports_trend_per_second{protocol=\"udp\"} 2.5\n"));
    EXPECT_THAT(text,
                ::testing::HasSubstr("ephemera_pool_exhaustion_seconds{protocol=\"udp\"} 120\n"));
    EXPECT_THAT(text,
                ::testing::HasSubstr("ephemera_pool_exhaustion_seconds{protocol=\"tcp\"} +Inf\n"));
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr(
                          "ephemera_pool_exhaustion_seconds{protocol=\"icmp\"}")));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_pool_address_exhaustion_seconds{pool_address="
                                           "\"198.18.0.10\",protocol=\"udp\"} 60.5\n"));
}

TEST(MetricsExposition, LabelValuesAreEscaped) {
    EXPECT_EQ(escape_label_value("plain"), "plain");
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    EXPECT_EQ(escape_help("x\\y\nz\"q"), "x\\\\y\\nz\"q"); // quotes stay in help
    Snapshot s = two_workers();
    s.sinks[0].name = "archive /var/log/\"nat\"\\x\n";
    EXPECT_THAT(exposition(s),
                ::testing::HasSubstr(
                    "ephemera_log_sink_errors_total{sink=\"archive /var/log/\\\"nat\\\"\\\\x\\n\"} "
                    "0\n"));
}

TEST(MetricsExposition, NameChecks) {
    EXPECT_TRUE(valid_metric_name("ephemera_drops_total"));
    EXPECT_TRUE(valid_metric_name("a:b_c9"));
    EXPECT_FALSE(valid_metric_name("9abc"));
    EXPECT_FALSE(valid_metric_name("a-b"));
    EXPECT_FALSE(valid_metric_name(""));
    EXPECT_TRUE(valid_label_name("pool_address"));
    EXPECT_FALSE(valid_label_name("a:b"));
    EXPECT_FALSE(valid_label_name("__name"));
}

// Every family and label named validly, counters ending in _total, one HELP and TYPE per
// family, no series twice, and every counter of every worker exactly once.
TEST(MetricsExposition, HaPairOnlyWhenPaired) {
    Snapshot s = two_workers();
    EXPECT_THAT(exposition(s), ::testing::Not(::testing::HasSubstr("ephemera_ha_active")));
    HaSnapshot h;
    h.active = false;
    h.peer_connected = true;
    h.in_sync = true;
    h.records_received = 1000;
    h.bytes_received = 36500;
    h.last_heard_ms_ago = 250;
    h.failovers = 2;
    h.last_failover_unix_ms = 1'800'000'000'500ull;
    s.ha = h;
    const std::string text = exposition(s);
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_ha_active 0\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_ha_in_sync 1\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_ha_link_records_received_total 1000\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_ha_link_received_bytes_total 36500\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_ha_last_heard_seconds 0.25\n"));
    EXPECT_THAT(text, ::testing::HasSubstr("ephemera_ha_failovers_total 2\n"));
    EXPECT_THAT(text,
                ::testing::HasSubstr("ephemera_ha_last_failover_timestamp_seconds 1800000000.5\n"));
}

TEST(MetricsExposition, NamesValidAndSeriesUnique) {
    Snapshot s = with_subscribers();
    s.ha = HaSnapshot{}; // its families beside the workers' ha_records_* counters
    const std::vector<Family> all = families(s);
    std::set<std::string> names;
    std::set<std::string> series;
    std::size_t worker_counter_samples = 0;
    for (const Family& f : all) {
        EXPECT_TRUE(valid_metric_name(f.name)) << f.name;
        EXPECT_TRUE(f.name.starts_with("ephemera_")) << f.name;
        EXPECT_EQ(f.type == Type::counter, f.name.ends_with("_total")) << f.name;
        EXPECT_TRUE(names.insert(f.name).second) << "family twice: " << f.name;
        EXPECT_FALSE(f.help.empty()) << f.name;
        for (const Sample& sample : f.samples) {
            std::string key = f.name + sample.suffix;
            std::set<std::string> label_names;
            for (const Label& l : sample.labels) {
                EXPECT_TRUE(valid_label_name(l.name)) << f.name << " " << l.name;
                EXPECT_TRUE(label_names.insert(l.name).second) << f.name << " " << l.name;
                key += "|" + l.name + "=" + l.value;
            }
            EXPECT_TRUE(series.insert(key).second) << "series twice: " << key;
        }
    }
    // A family is never also another's name with a suffix Prometheus derives (_total of a
    // gauge would clash with a counter of the bare name).
    for (const std::string& n : names) {
        if (n.ends_with("_total")) {
            EXPECT_EQ(names.count(n.substr(0, n.size() - 6)), 0u) << n;
        }
    }
    const std::string text = format(all);
    std::istringstream in(text);
    std::size_t help = 0;
    std::size_t type = 0;
    for (std::string line; std::getline(in, line);) {
        help += line.starts_with("# HELP ") ? 1 : 0;
        type += line.starts_with("# TYPE ") ? 1 : 0;
        if (!line.starts_with("#")) {
            EXPECT_THAT(line,
                        ::testing::MatchesRegex("[a-zA-Z_:][a-zA-Z0-9_:]*(\\{.*\\})? [0-9.e+-]+"));
        }
    }
    EXPECT_EQ(help, names.size());
    EXPECT_EQ(type, names.size());
    for (const Family& f : all) {
        for (const Sample& sample : f.samples) {
            if (f.type == Type::counter && !sample.labels.empty() &&
                sample.labels[0].name == "worker" && f.name != "ephemera_plans_taken_total") {
                ++worker_counter_samples;
            }
        }
    }
    EXPECT_EQ(worker_counter_samples, kCounterCount * s.workers.size());
}

} // namespace
} // namespace ephemera::metrics
