// The IPFIX encoder (control/logging/ipfix_encoder.hpp) against messages built by hand from
// RFC 7011 (header, sets, template records) and RFC 8158 (the NAT information elements).
#include "logging/ipfix_encoder.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace ephemera::logging {
namespace {

using Bytes = std::vector<std::uint8_t>;

// "00 0a 01 68": the bytes a reader checks against the RFC's figures.
Bytes hex(std::string_view text) {
    Bytes out;
    int nibbles = 0;
    unsigned byte = 0;
    for (const char c : text) {
        if (c == ' ') {
            continue;
        }
        const unsigned v =
            c <= '9' ? static_cast<unsigned>(c - '0') : static_cast<unsigned>(c - 'a' + 10);
        byte = (byte << 4) | v;
        if (++nibbles == 2) {
            out.push_back(static_cast<std::uint8_t>(byte));
            nibbles = 0;
            byte = 0;
        }
    }
    return out;
}

std::uint32_t u32_at(const Bytes& b, std::size_t at) {
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
           (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}

std::uint16_t u16_at(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

constexpr std::uint32_t kExport = 1796464800;        // 2026-12-05T10:00:00Z
constexpr std::uint64_t kEventMs = 1796464800123ULL; // 00 00 01 a2 45 a5 71 7b

NatEvent mapping(std::uint16_t inside_port = 40000) {
    NatEvent e;
    e.time_ms = kEventMs;
    e.kind = NatEventKind::mapping_created;
    e.proto = 17;
    e.worker = 1;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = inside_port;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.external_port = 51234;
    return e;
}

NatEvent block() {
    NatEvent e;
    e.time_ms = kEventMs;
    e.kind = NatEventKind::block_allocated;
    e.inside = Ipv4Addr(100, 64, 0, 7).value();
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.first_port = 1024;
    e.last_port = 1535;
    e.step = 2;
    e.ports = 256;
    return e;
}

TEST(IpfixEncoder, TemplatesMessageHeaderAndFirstTemplate) {
    const IpfixEncoder enc(7);
    const Bytes m = enc.templates_message(kExport);
    // 14 templates of 71 fields in all: 16 + 4 + 14 * 4 + 71 * 4 = 360 bytes.
    ASSERT_EQ(m.size(), 360u);
    const Bytes head = hex("00 0a 01 68  6b 13 e0 a0  00 00 00 00  00 00 00 07" // header
                           "00 02 01 58"                                        // template set
                           "01 00 00 07"                                        // id 256, 7 fields
                           "01 43 00 08  00 e6 00 01  00 08 00 04  00 e1 00 04"
                           "00 04 00 01  00 07 00 02  00 e3 00 02");
    EXPECT_EQ(Bytes(m.begin(), m.begin() + static_cast<long>(head.size())), head);

    // Every template of the table, in order, and nothing after the last.
    std::size_t at = 20;
    for (const auto& t : kIpfixTemplates) {
        ASSERT_LE(at + 4, m.size());
        EXPECT_EQ(u16_at(m, at), static_cast<std::uint16_t>(t.id)) << t.name;
        ASSERT_EQ(u16_at(m, at + 2), t.fields.size()) << t.name;
        at += 4;
        for (const auto& f : t.fields) {
            EXPECT_EQ(u16_at(m, at), static_cast<std::uint16_t>(f.ie)) << t.name;
            EXPECT_EQ(u16_at(m, at + 2), f.length) << t.name;
            at += 4;
        }
    }
    EXPECT_EQ(at, m.size());
}

TEST(IpfixEncoder, BibCreateEveryByte) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    const NatEvent e = mapping();
    EXPECT_EQ(enc.data_messages({&e, 1}, kExport, kIpfixUdpMessageBytes, out), 1u);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].records, 1u);
    EXPECT_EQ(out[0].bytes, hex("00 0a 00 2a  6b 13 e0 a0  00 00 00 00  00 00 00 07"
                                "01 00 00 1a"             // data set of template 256
                                "00 00 01 a2 45 a5 71 7b" // observationTimeMilliseconds
                                "08"                      // natEvent: NAT44 BIB create
                                "64 40 00 0a"             // sourceIPv4Address
                                "c6 12 00 0a"             // postNATSourceIPv4Address
                                "11"                      // protocolIdentifier: UDP
                                "9c 40"                   // sourceTransportPort 40000
                                "c8 22"));                // postNAPTSourceTransportPort 51234
    EXPECT_EQ(enc.sequence(), 1u);
}

TEST(IpfixEncoder, RemoteEndpointHasItsOwnTemplate) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    NatEvent e = mapping();
    e.kind = NatEventKind::mapping_deleted;
    e.remote = Ipv4Addr(198, 18, 1, 2).value();
    e.remote_port = 53;
    enc.data_messages({&e, 1}, kExport, kIpfixUdpMessageBytes, out);
    ASSERT_EQ(out.size(), 1u);
    const Bytes& m = out[0].bytes;
    ASSERT_EQ(m.size(), 16u + 4 + 28);
    EXPECT_EQ(Bytes(m.begin() + 16, m.begin() + 20), hex("01 01 00 20"));
    EXPECT_EQ(m[28], 9); // NAT44 BIB delete
    EXPECT_EQ(Bytes(m.end() - 6, m.end()), hex("c6 12 01 02 00 35"));
}

TEST(IpfixEncoder, BlockAllocationRecord) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    const NatEvent e = block();
    enc.data_messages({&e, 1}, kExport, kIpfixUdpMessageBytes, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].bytes, hex("00 0a 00 2d  6b 13 e0 a0  00 00 00 00  00 00 00 07"
                                "01 03 00 1d"             // data set of template 259
                                "00 00 01 a2 45 a5 71 7b" // observationTimeMilliseconds
                                "10"                      // natEvent: port block allocation
                                "64 40 00 07"             // sourceIPv4Address
                                "c6 12 00 0a"             // postNATSourceIPv4Address
                                "04 00 05 ff"             // portRangeStart, portRangeEnd
                                "00 02 01 00"));          // portRangeStepSize, portRangeNumPorts
}

TEST(IpfixEncoder, SequenceCountsDataRecordsOfEarlierMessages) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    const std::vector<NatEvent> three = {mapping(1), mapping(2), block()};
    const std::vector<NatEvent> two = {mapping(3), mapping(4)};
    enc.data_messages(three, kExport, kIpfixUdpMessageBytes, out);
    enc.data_messages(two, kExport + 1, kIpfixUdpMessageBytes, out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(u32_at(out[0].bytes, 8), 0u);
    EXPECT_EQ(u32_at(out[1].bytes, 8), 3u);
    EXPECT_EQ(u32_at(out[1].bytes, 4), kExport + 1);
    // Templates carry the count so far and do not add to it.
    EXPECT_EQ(u32_at(enc.templates_message(kExport), 8), 5u);
    EXPECT_EQ(enc.sequence(), 5u);
    enc.reset_sequence();
    EXPECT_EQ(enc.sequence(), 0u);
}

TEST(IpfixEncoder, SplitsAtMaxBytes) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    std::vector<NatEvent> events;
    for (std::uint16_t i = 0; i < 7; ++i) {
        events.push_back(mapping(static_cast<std::uint16_t>(1000 + i)));
    }
    const std::size_t max = 16 + 4 + 3 * 22; // three mapping records
    EXPECT_EQ(enc.data_messages(events, kExport, max, out), 7u);
    ASSERT_EQ(out.size(), 3u);
    const std::uint32_t records[] = {3, 3, 1};
    const std::uint32_t sequence[] = {0, 3, 6};
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(out[i].records, records[i]);
        EXPECT_EQ(u32_at(out[i].bytes, 8), sequence[i]);
        EXPECT_EQ(out[i].bytes.size(), 16 + 4 + 22 * records[i]);
        EXPECT_EQ(u16_at(out[i].bytes, 2), out[i].bytes.size());
        EXPECT_LE(out[i].bytes.size(), max);
    }
    // Source port of the fourth record starts the second message.
    EXPECT_EQ(u16_at(out[1].bytes, 20 + 18), 1003);
}

TEST(IpfixEncoder, NewTemplateOpensANewSetOrMessage) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    const std::vector<NatEvent> events = {mapping(1), block(), mapping(2)};
    enc.data_messages(events, kExport, kIpfixUdpMessageBytes, out);
    ASSERT_EQ(out.size(), 1u);
    const Bytes& m = out[0].bytes;
    EXPECT_EQ(m.size(), 16u + (4 + 22) + (4 + 25) + (4 + 22));
    EXPECT_EQ(u16_at(m, 16), 256);
    EXPECT_EQ(u16_at(m, 16 + 26), 259);
    EXPECT_EQ(u16_at(m, 16 + 26 + 29), 256);

    // A set header that no longer fits starts the next message.
    out.clear();
    const std::vector<NatEvent> pair = {mapping(1), block()};
    enc.data_messages(pair, kExport, 16 + 26 + 29 - 1, out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(u16_at(out[1].bytes, 16), 259);
}

TEST(IpfixEncoder, EventsWithoutAnIpfixFormArePassedOver) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    NatEvent formula;
    formula.kind = NatEventKind::deterministic_formula;
    NatEvent no_quota;
    no_quota.kind = NatEventKind::quota_exceeded;
    const std::vector<NatEvent> events = {formula, no_quota};
    EXPECT_EQ(enc.data_messages(events, kExport, kIpfixUdpMessageBytes, out), 0u);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(enc.sequence(), 0u);
}

TEST(IpfixEncoder, QuotaAndThresholdRecords) {
    IpfixEncoder enc(7);
    std::vector<IpfixMessage> out;
    NatEvent quota;
    quota.time_ms = kEventMs;
    quota.kind = NatEventKind::quota_exceeded;
    quota.quota = NatQuota::max_entries_per_user;
    quota.inside = Ipv4Addr(100, 64, 0, 7).value();
    quota.value = 2000;
    NatEvent threshold;
    threshold.time_ms = kEventMs;
    threshold.kind = NatEventKind::threshold_reached;
    threshold.threshold = NatThreshold::address_port_high;
    threshold.external = Ipv4Addr(198, 18, 0, 10).value();
    threshold.value = 90;
    const std::vector<NatEvent> events = {quota, threshold};
    enc.data_messages(events, kExport, kIpfixUdpMessageBytes, out);
    ASSERT_EQ(out.size(), 1u);
    const Bytes& m = out[0].bytes;
    EXPECT_EQ(Bytes(m.begin() + 16, m.end()),
              hex("01 07 00 19  00 00 01 a2 45 a5 71 7b  0d  00 00 00 03  00 00 07 d0"
                  "64 40 00 07"
                  "01 0b 00 19  00 00 01 a2 45 a5 71 7b  12  00 00 00 03  c6 12 00 0a"
                  "00 00 00 5a"));
}

} // namespace
} // namespace ephemera::logging
