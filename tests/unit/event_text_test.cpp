// The shared text form of NAT events (control/logging/event_text.hpp): what syslog's structured
// data and the archive's lines are made of.
#include "logging/event_text.hpp"

#include <gtest/gtest.h>

namespace ephemera::logging {
namespace {

std::string joined(const NatEvent& e) {
    std::string out;
    for (const auto& f : event_fields(e)) {
        out += std::string(f.key) + '=' + f.value + ' ';
    }
    return out;
}

TEST(EventText, MappingNamesBothEndpoints) {
    NatEvent e;
    e.kind = NatEventKind::mapping_created;
    e.proto = 17;
    e.worker = 1;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = 40000;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.external_port = 51234;
    EXPECT_EQ(joined(e), "event=mapping-create worker=1 proto=udp inside=100.64.0.10:40000 "
                         "outside=198.18.0.10:51234 ");
    e.remote = Ipv4Addr(198, 18, 1, 2).value();
    e.remote_port = 53;
    e.flags = NatEvent::kStaticMapping;
    EXPECT_EQ(joined(e), "event=mapping-create worker=1 proto=udp inside=100.64.0.10:40000 "
                         "outside=198.18.0.10:51234 remote=198.18.1.2:53 static=1 ");
    EXPECT_EQ(e.code(), NatEventCode::nat44_bib_create);
}

TEST(EventText, BlockNamesItsPortSpan) {
    NatEvent e;
    e.kind = NatEventKind::block_allocated;
    e.inside = Ipv4Addr(100, 64, 0, 7).value();
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.first_port = 1024;
    e.last_port = 1535;
    e.step = 2;
    e.ports = 256;
    EXPECT_EQ(joined(e), "event=block-alloc worker=0 inside=100.64.0.7 outside=198.18.0.10 "
                         "ports=1024-1535 step=2 count=256 ");
    EXPECT_EQ(e.code(), NatEventCode::port_block_allocation);
}

TEST(EventText, TimestampsRoundTripWithMilliseconds) {
    EXPECT_EQ(rfc3339_ms(1796464800123ULL), "2026-12-05T10:00:00.123Z");
    EXPECT_EQ(parse_rfc3339_ms("2026-12-05T10:00:00.123Z"), 1796464800123ULL);
    EXPECT_EQ(parse_rfc3339_ms("2026-12-05T10:00:00Z"), 1796464800000ULL);
    EXPECT_FALSE(parse_rfc3339_ms("2026-12-05 10:00"));
    EXPECT_FALSE(parse_rfc3339_ms("2026-13-05T10:00:00Z"));
    EXPECT_FALSE(parse_rfc3339_ms("2026-12-05T10:00:00.12Z"));
}

TEST(EventText, NamesRoundTrip) {
    for (std::size_t i = 0; i < kNatEventKindCount; ++i) {
        const auto kind = static_cast<NatEventKind>(i);
        EXPECT_EQ(nat_event_from_name(nat_event_name(kind)), kind);
    }
    EXPECT_FALSE(nat_event_from_name("mapping"));
}

} // namespace
} // namespace ephemera::logging
