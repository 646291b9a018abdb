// The HA sync link's frames (control/ha/sync_protocol.hpp): each message through bytes and
// back, whatever the reads' boundaries; malformed frames refused by name; and the pairing
// terms two boxes compare.
#include "../../control/ha/sync_protocol.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ephemera::ha {
namespace {

SessionState session(std::uint16_t port) {
    SessionState s;
    s.proto = Protocol::udp;
    s.inside = Ipv4Addr{100, 64, 0, 11};
    s.inside_port = port;
    s.external = Ipv4Addr{198, 18, 0, 100};
    s.external_port = static_cast<std::uint16_t>(port + 1000);
    s.remote = Ipv4Addr{198, 18, 0, 2};
    s.remote_port = 53;
    return s;
}

std::vector<Message> every_kind() {
    Records r;
    r.first_sequence = 0x0102030405060708ull;
    r.records = {encode(session(40000)), encode(session(40001), RecordType::session_removed)};
    return {Hello{HaRole::standby, 4, "pool.addresses=198.18.0.100\nworkers=4"},
            Refuse{"peer disagrees on pool.addresses"},
            r,
            Ack{77},
            BulkDone{3},
            Heartbeat{1'800'000'000'000ull},
            HandoverDone{70'000, 12}};
}

std::vector<Message> read_all(FrameReader& reader) {
    std::vector<Message> out;
    while (auto m = reader.next()) {
        out.push_back(*m);
    }
    return out;
}

bool same(const Message& a, const Message& b) {
    if (a.index() != b.index()) {
        return false;
    }
    return std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            const T& y = std::get<T>(b);
            if constexpr (std::is_same_v<T, Hello>) {
                return x.role == y.role && x.workers == y.workers && x.terms == y.terms;
            } else if constexpr (std::is_same_v<T, Refuse>) {
                return x.reason == y.reason;
            } else if constexpr (std::is_same_v<T, Records>) {
                return x.first_sequence == y.first_sequence && x.records == y.records;
            } else if constexpr (std::is_same_v<T, Ack>) {
                return x.next_sequence == y.next_sequence;
            } else if constexpr (std::is_same_v<T, BulkDone>) {
                return x.generation == y.generation;
            } else if constexpr (std::is_same_v<T, HandoverDone>) {
                return x.applied == y.applied && x.refused == y.refused;
            } else {
                return x.unix_ms == y.unix_ms;
            }
        },
        a);
}

TEST(SyncProtocol, EveryMessageRoundTrips) {
    std::vector<std::uint8_t> bytes;
    const auto sent = every_kind();
    for (const Message& m : sent) {
        append_frame(m, bytes);
    }
    FrameReader reader;
    reader.feed(bytes);
    const auto got = read_all(reader);
    ASSERT_EQ(got.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        EXPECT_TRUE(same(got[i], sent[i])) << "message " << i;
    }
    EXPECT_TRUE(reader.error().empty());
    EXPECT_EQ(reader.buffered(), 0u);
}

TEST(SyncProtocol, AnyReadBoundaryGivesTheSameMessages) {
    std::vector<std::uint8_t> bytes;
    const auto sent = every_kind();
    for (const Message& m : sent) {
        append_frame(m, bytes);
    }
    for (const std::size_t step : {1u, 2u, 3u, 7u, 64u}) {
        FrameReader reader;
        std::vector<Message> got;
        for (std::size_t at = 0; at < bytes.size(); at += step) {
            reader.feed(std::span(bytes).subspan(at, std::min(step, bytes.size() - at)));
            for (auto& m : read_all(reader)) {
                got.push_back(std::move(m));
            }
        }
        ASSERT_EQ(got.size(), sent.size()) << "reads of " << step << " bytes";
        for (std::size_t i = 0; i < sent.size(); ++i) {
            EXPECT_TRUE(same(got[i], sent[i])) << "message " << i << ", reads of " << step;
        }
    }
}

// The error a single frame of `body` (type byte first) gets.
std::string error_of(std::vector<std::uint8_t> body) {
    std::vector<std::uint8_t> bytes{0, 0, 0, 0};
    const auto n = static_cast<std::uint32_t>(body.size());
    bytes[0] = static_cast<std::uint8_t>(n >> 24);
    bytes[1] = static_cast<std::uint8_t>(n >> 16);
    bytes[2] = static_cast<std::uint8_t>(n >> 8);
    bytes[3] = static_cast<std::uint8_t>(n);
    bytes.insert(bytes.end(), body.begin(), body.end());
    FrameReader reader;
    reader.feed(bytes);
    EXPECT_FALSE(reader.next().has_value());
    // Nothing more after an error, even a good frame.
    std::vector<std::uint8_t> good;
    append_frame(Ack{1}, good);
    reader.feed(good);
    EXPECT_FALSE(reader.next().has_value());
    return reader.error();
}

TEST(SyncProtocol, MalformedFramesAreRefusedByName) {
    EXPECT_THAT(error_of({}), ::testing::HasSubstr("a frame of 0 bytes"));
    EXPECT_THAT(error_of({99}), ::testing::HasSubstr("unknown message type 99"));
    EXPECT_THAT(error_of({4, 0, 0, 0}), ::testing::HasSubstr("malformed frame of type 4"));
    EXPECT_THAT(error_of({4, 0, 0, 0, 0, 0, 0, 0, 1, 9}),
                ::testing::HasSubstr("malformed frame of type 4")); // a byte too many
    EXPECT_THAT(error_of({1, 'X', 'P', 'H', 'A', 0, 1, 2, 0, 1, 0, 0}),
                ::testing::HasSubstr("not an ephemera sync peer"));
    EXPECT_THAT(error_of({1, 'E', 'P', 'H', 'A', 0, 9, 2, 0, 1, 0, 0}),
                ::testing::HasSubstr("sync protocol version 9"));
    // A records frame whose count promises more than it holds, or more than a frame may.
    EXPECT_THAT(error_of({3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3}),
                ::testing::HasSubstr("malformed frame of type 3"));
    EXPECT_THAT(error_of({3, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}),
                ::testing::HasSubstr("records frame of 65535 records"));

    FrameReader huge;
    huge.feed(std::vector<std::uint8_t>{0x7f, 0, 0, 0, 4});
    EXPECT_FALSE(huge.next().has_value());
    EXPECT_THAT(huge.error(), ::testing::HasSubstr("a frame of 2130706432 bytes"));
}

TEST(SyncProtocol, AFrameCutShortWaitsForTheRest) {
    std::vector<std::uint8_t> bytes;
    append_frame(every_kind()[2], bytes);
    FrameReader reader;
    reader.feed(std::span(bytes).first(bytes.size() - 1));
    EXPECT_FALSE(reader.next().has_value());
    EXPECT_TRUE(reader.error().empty());
    reader.feed(std::span(bytes).last(1));
    EXPECT_TRUE(reader.next().has_value());
}

Config base() {
    Config c;
    c.pool = {Ipv4Addr{198, 18, 0, 100}, Ipv4Addr{198, 18, 0, 101}};
    c.port_range = {49152, 65535};
    return c;
}

TEST(PairingTerms, TheSameConfigAgreesWhateverTheOrderOfItsPool) {
    Config a = base();
    Config b = base();
    std::swap(b.pool[0], b.pool[1]);
    EXPECT_EQ(pairing_terms(a, 2), pairing_terms(b, 2));
    EXPECT_EQ(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)), "");
    // What only one box needs to know may differ.
    b.timeouts.udp = 600;
    b.logging.events = 0;
    EXPECT_EQ(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)), "");
}

TEST(PairingTerms, NamesTheFirstDifference) {
    const Config a = base();
    Config b = base();
    b.pool.pop_back();
    EXPECT_EQ(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)),
              "pool.addresses: here 198.18.0.100,198.18.0.101, peer 198.18.0.100");
    b = base();
    b.port_range = {32768, 60999};
    EXPECT_EQ(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)),
              "pool.port_range: here 49152-65535, peer 32768-60999");
    b = base();
    b.reserved = {{50000, 50010}};
    EXPECT_THAT(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)),
                ::testing::StartsWith("pool.reserved: "));
    b = base();
    b.allocation = AllocationMode::blocks;
    EXPECT_THAT(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)),
                ::testing::StartsWith("pool.mode: here dynamic"));
    // The same external port must have the same owner on both boxes.
    EXPECT_EQ(first_difference(pairing_terms(a, 2), pairing_terms(a, 4)),
              "workers: here 2, peer 4");
    b = base();
    StaticMapping m;
    m.external = Ipv4Addr{198, 18, 0, 100};
    m.external_port = 8080;
    m.inside = Ipv4Addr{100, 64, 0, 5};
    m.inside_port = 80;
    b.statics = {m};
    EXPECT_THAT(first_difference(pairing_terms(a, 2), pairing_terms(b, 2)),
                ::testing::StartsWith("static: here , peer tcp 198.18.0.100:8080"));
}

// Scale-out boxes have pools and gateways of their own: the hand-over's terms leave them out
// of what must agree, and offer them.
TEST(HandoverTerms, BoxesWithTheirOwnPoolsAgreeAndTheOfferNamesThePoolAndGateway) {
    const Config a = base();
    Config b = base();
    b.pool = {Ipv4Addr{198, 18, 0, 102}, Ipv4Addr{198, 18, 0, 103}};
    b.inside.gateway = Ipv4Addr{100, 64, 255, 2};
    b.timeouts.udp = 600;
    EXPECT_EQ(
        first_difference(agreed_part(handover_terms(a, 2)), agreed_part(handover_terms(b, 2))), "");
    EXPECT_EQ(term_value(handover_terms(b, 2), "offer.pool"), "198.18.0.102,198.18.0.103");
    EXPECT_EQ(term_value(handover_terms(b, 2), "offer.gateway"), "100.64.255.2");
    EXPECT_EQ(term_value(handover_terms(b, 2), "pool.mode"), "dynamic");
    EXPECT_EQ(term_value(handover_terms(b, 2), "offer"), "");
    EXPECT_EQ(agreed_part(handover_terms(b, 2)).find("offer."), std::string::npos);
}

TEST(HandoverTerms, NamesWhatTheBoxesMustShare) {
    const Config a = base();
    Config b = base();
    b.port_range = {32768, 60999};
    EXPECT_EQ(
        first_difference(agreed_part(handover_terms(a, 2)), agreed_part(handover_terms(b, 2))),
        "pool.port_range: here 49152-65535, peer 32768-60999");
    // The same subscriber and port must have the same owner on both boxes.
    EXPECT_EQ(
        first_difference(agreed_part(handover_terms(a, 2)), agreed_part(handover_terms(a, 4))),
        "workers: here 2, peer 4");
    b = base();
    b.reserved = {{50000, 50010}};
    EXPECT_THAT(
        first_difference(agreed_part(handover_terms(a, 2)), agreed_part(handover_terms(b, 2))),
        ::testing::StartsWith("pool.reserved: "));
}

} // namespace
} // namespace ephemera::ha
