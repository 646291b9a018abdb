// Syslog messages for NAT events (control/logging/syslog_format.hpp) byte for byte, and the
// syslog sink over real UDP and TCP sockets on 127.0.0.1.
#include "logging/syslog_format.hpp"
#include "logging/syslog_sink.hpp"
#include "loopback.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

namespace ephemera::logging {
namespace {

using namespace testing;

constexpr std::uint64_t kTime = 1796464800123ULL; // 2026-12-05T10:00:00.123Z

SyslogHeader header() {
    return SyslogHeader{kSyslogLocal0, "nat1", 4242};
}

NatEvent mapping() {
    NatEvent e;
    e.time_ms = kTime;
    e.kind = NatEventKind::mapping_created;
    e.proto = 17;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = 40000;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.external_port = 51234;
    return e;
}

TEST(SyslogFormat, MappingEvent) {
    EXPECT_EQ(syslog_message(mapping(), header()),
              "<134>1 2026-12-05T10:00:00.123Z nat1 ephemera 4242 mapping-create "
              "[nat@32473 event=\"mapping-create\" worker=\"0\" proto=\"udp\" "
              "inside=\"100.64.0.10:40000\" outside=\"198.18.0.10:51234\"] "
              "mapping-create 100.64.0.10:40000 -> 198.18.0.10:51234 udp");
}

TEST(SyslogFormat, MappingWithDestinationAndStaticFlag) {
    NatEvent e = mapping();
    e.kind = NatEventKind::mapping_deleted;
    e.worker = 3;
    e.remote = Ipv4Addr(198, 18, 1, 2).value();
    e.remote_port = 53;
    e.flags = NatEvent::kStaticMapping;
    EXPECT_EQ(syslog_message(e, header()),
              "<134>1 2026-12-05T10:00:00.123Z nat1 ephemera 4242 mapping-delete "
              "[nat@32473 event=\"mapping-delete\" worker=\"3\" proto=\"udp\" "
              "inside=\"100.64.0.10:40000\" outside=\"198.18.0.10:51234\" "
              "remote=\"198.18.1.2:53\" static=\"1\"] "
              "mapping-delete 100.64.0.10:40000 -> 198.18.0.10:51234 udp remote 198.18.1.2:53 "
              "static");
}

TEST(SyslogFormat, BlockEvent) {
    NatEvent e;
    e.time_ms = kTime;
    e.kind = NatEventKind::block_allocated;
    e.worker = 1;
    e.inside = Ipv4Addr(100, 64, 0, 7).value();
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.first_port = 1024;
    e.last_port = 1535;
    e.step = 2;
    e.ports = 256;
    EXPECT_EQ(syslog_message(e, header()),
              "<134>1 2026-12-05T10:00:00.123Z nat1 ephemera 4242 block-alloc "
              "[nat@32473 event=\"block-alloc\" worker=\"1\" inside=\"100.64.0.7\" "
              "outside=\"198.18.0.10\" ports=\"1024-1535\" step=\"2\" count=\"256\"] "
              "block-alloc 100.64.0.7 -> 198.18.0.10 ports 1024-1535");
}

TEST(SyslogFormat, QuotaEventIsAWarning) {
    NatEvent e;
    e.time_ms = kTime;
    e.kind = NatEventKind::quota_exceeded;
    e.quota = NatQuota::max_entries_per_user;
    e.proto = 6;
    e.inside = Ipv4Addr(100, 64, 0, 7).value();
    e.value = 2000;
    EXPECT_EQ(syslog_message(e, header()),
              "<132>1 2026-12-05T10:00:00.123Z nat1 ephemera 4242 quota-exceeded "
              "[nat@32473 event=\"quota-exceeded\" worker=\"0\" quota=\"subscriber\" "
              "proto=\"tcp\" inside=\"100.64.0.7\" limit=\"2000\"] "
              "quota-exceeded subscriber 100.64.0.7 limit 2000");
}

TEST(SyslogFormat, ThresholdEvent) {
    NatEvent e;
    e.time_ms = kTime;
    e.kind = NatEventKind::threshold_reached;
    e.threshold = NatThreshold::address_port_high;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.value = 90;
    EXPECT_EQ(syslog_message(e, header()),
              "<132>1 2026-12-05T10:00:00.123Z nat1 ephemera 4242 threshold "
              "[nat@32473 event=\"threshold\" worker=\"0\" threshold=\"address-ports\" "
              "outside=\"198.18.0.10\" percent=\"90\"] threshold address-ports 198.18.0.10 90%");
}

TEST(SyslogFormat, SeverityAndFacility) {
    for (std::size_t i = 0; i < kNatEventKindCount; ++i) {
        const auto kind = static_cast<NatEventKind>(i);
        const bool warning = kind == NatEventKind::ports_exhausted ||
                             kind == NatEventKind::quota_exceeded ||
                             kind == NatEventKind::threshold_reached;
        EXPECT_EQ(syslog_severity(kind), warning ? 4 : 6) << nat_event_name(kind);
    }
    SyslogHeader h = header();
    h.facility = 1; // user
    EXPECT_EQ(syslog_message(mapping(), h).substr(0, 6), "<14>1 ");
    h.facility = 23; // local7
    EXPECT_EQ(syslog_message(mapping(), h).substr(0, 7), "<190>1 ");
}

TEST(SyslogFormat, HostnameIsOneHeaderField) {
    SyslogHeader h = header();
    h.hostname = "";
    EXPECT_EQ(syslog_message(mapping(), h).substr(0, 38), "<134>1 2026-12-05T10:00:00.123Z - ephe");
    h.hostname = "nat 1\n";
    EXPECT_EQ(syslog_message(mapping(), h).substr(32, 14), "nat1 ephemera ");
    EXPECT_FALSE(local_hostname().empty());
    EXPECT_EQ(local_hostname().find(' '), std::string::npos);
}

TEST(SyslogFormat, EscapesParamValues) {
    EXPECT_EQ(sd_escape(R"(a"b\c]d)"), R"(a\"b\\c\]d)");
    EXPECT_EQ(sd_escape("198.18.0.10:51234"), "198.18.0.10:51234");
}

TEST(SyslogFormat, OctetCountingFrame) {
    EXPECT_EQ(octet_counted("<134>1 x"), "8 <134>1 x");
    EXPECT_EQ(octet_counted(""), "0 ");
    const std::string m = syslog_message(mapping(), header());
    EXPECT_EQ(octet_counted(m), std::to_string(m.size()) + " " + m);
}

TEST(SyslogSink, SendsOneDatagramPerEvent) {
    const SocketFd receiver = bound_socket(SOCK_DGRAM);
    SyslogOptions o;
    o.collector = collector(bound_port(receiver));
    o.hostname = "nat1";
    SyslogSink sink(o);
    EXPECT_EQ(sink.name(), "syslog udp " + o.collector.to_string());
    NatEvent events[2] = {mapping(), mapping()};
    events[1].external_port = 51235;
    sink.write(events, kTime);
    const auto first = receive_datagram(receiver);
    const auto second = receive_datagram(receiver);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(first->substr(0, 37), "<134>1 2026-12-05T10:00:00.123Z nat1 ");
    EXPECT_NE(second->find("198.18.0.10:51235"), std::string::npos);
    EXPECT_EQ(sink.stats().records_sent, 2U);
    EXPECT_EQ(sink.stats().messages_sent, 2U);
    EXPECT_EQ(sink.stats().bytes_sent, first->size() + second->size());
    EXPECT_EQ(sink.stats().records_dropped, 0U);
}

TEST(SyslogSink, FramesEachEventOverTcp) {
    const SocketFd listener = bound_socket(SOCK_STREAM);
    SyslogOptions o;
    o.transport = TransportKind::tcp;
    o.collector = collector(bound_port(listener));
    o.hostname = "nat1";
    SyslogSink sink(o);
    EXPECT_EQ(sink.name(), "syslog tcp " + o.collector.to_string());
    const NatEvent events[2] = {mapping(), mapping()};
    sink.write(events, kTime); // queued: not connected before the first poll
    const auto pump = [&] { sink.poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return sink.transport().backlog() == 0; }));
    const SocketFd peer = accept_within(listener);
    ASSERT_TRUE(peer.valid());
    const SyslogHeader h{kSyslogLocal0, "nat1", static_cast<std::uint32_t>(::getpid())};
    const std::string framed = octet_counted(syslog_message(mapping(), h));
    EXPECT_EQ(read_stream(peer, 2 * framed.size(), pump), framed + framed);
    EXPECT_EQ(sink.stats().bytes_sent, 2 * framed.size());
}

TEST(SyslogSink, CountsWhatTheBacklogRefuses) {
    SyslogOptions o;
    o.transport = TransportKind::tcp;
    o.collector = collector(unused_port(SOCK_STREAM));
    o.backlog_bytes = 300; // one message fits, not two
    SyslogSink sink(o);
    const NatEvent events[3] = {mapping(), mapping(), mapping()};
    sink.write(events, kTime);
    EXPECT_EQ(sink.stats().records_sent, 1U);
    EXPECT_EQ(sink.stats().records_dropped, 2U);
    const auto pump = [&] { sink.poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return sink.stats().errors > 0; }));
}

} // namespace
} // namespace ephemera::logging
