// Sessions moved between processes (docs/ha.md): the record and the state file as bytes, and a
// worker's export and restore. What a restore must give is what the far side sees: the same
// external address:port for the same flow, replies delivered to the same inside endpoint, and
// no restored port handed to anybody else.
#include "nat_harness.hpp"

#include "ephemera/session_state.hpp"
#include "ephemera/tcp_state.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace ephemera {
namespace {

using nat_test::Endpoint;
using nat_test::kA1;
using nat_test::kA2;
using nat_test::kC;
using nat_test::kC2;
using nat_test::kX;
using nat_test::Nat;
using nat_test::sec;

SessionState sample() {
    SessionState s;
    s.proto = Protocol::tcp;
    s.tcp_flags = 0x0f;
    s.mapping_flags = 0;
    s.inside = Ipv4Addr{100, 64, 1, 2};
    s.inside_port = 40001;
    s.external = Ipv4Addr{198, 18, 0, 100};
    s.external_port = 50123;
    s.remote = Ipv4Addr{198, 19, 0, 1};
    s.remote_port = 443;
    s.inside_mac = test::mac(0x02, 1, 2, 3, 4, 5);
    s.idle_ms = 1234;
    s.mapping_ms = 99999;
    return s;
}

TEST(SessionRecord, RoundTripsEveryField) {
    const SessionState s = sample();
    const RecordBytes bytes = encode(s);
    EXPECT_EQ(bytes[0], static_cast<std::uint8_t>(RecordType::session));
    EXPECT_EQ(bytes[1], 6); // protocol, then big-endian fields
    EXPECT_EQ(bytes[4], 100);
    EXPECT_EQ(bytes[5], 64);
    const auto back = decode_session(bytes);
    ASSERT_TRUE(std::holds_alternative<SessionState>(back));
    EXPECT_EQ(std::get<SessionState>(back), s);
}

TEST(SessionRecord, IcmpHasNoRemotePort) {
    SessionState s = sample();
    s.proto = Protocol::icmp;
    s.remote_port = 0;
    EXPECT_TRUE(std::holds_alternative<SessionState>(decode_session(encode(s))));
    s.remote_port = 7;
    EXPECT_EQ(std::get<RecordError>(decode_session(encode(s))), RecordError::bad_endpoint);
}

TEST(SessionRecord, RefusesWhatNoSessionHas) {
    RecordBytes bytes = encode(sample());
    bytes[0] = 9;
    EXPECT_EQ(std::get<RecordError>(decode_session(bytes)), RecordError::unknown_type);
    bytes = encode(sample());
    bytes[1] = 47; // GRE
    EXPECT_EQ(std::get<RecordError>(decode_session(bytes)), RecordError::bad_protocol);
    SessionState s = sample();
    s.external_port = 0;
    EXPECT_EQ(std::get<RecordError>(decode_session(encode(s))), RecordError::bad_endpoint);
    s = sample();
    s.remote = Ipv4Addr{};
    EXPECT_EQ(std::get<RecordError>(decode_session(encode(s))), RecordError::bad_endpoint);
}

StateFile two_records() {
    StateFile f;
    f.workers = 3;
    f.written_unix_ms = 1'800'000'000'123ull;
    SessionState b = sample();
    b.proto = Protocol::udp;
    b.inside_port = 5353;
    f.records = {encode(sample()), encode(b)};
    return f;
}

TEST(StateFile, RoundTrips) {
    const StateFile f = two_records();
    const auto bytes = encode_state_file(f);
    EXPECT_EQ(bytes.size(), StateFile::kHeaderSize + 2 * kRecordSize + StateFile::kTrailerSize);
    const auto back = decode_state_file(bytes);
    ASSERT_TRUE(std::holds_alternative<StateFile>(back)) << std::get<std::string>(back);
    const StateFile& g = std::get<StateFile>(back);
    EXPECT_EQ(g.workers, 3);
    EXPECT_EQ(g.written_unix_ms, f.written_unix_ms);
    EXPECT_EQ(g.records, f.records);
}

TEST(StateFile, EmptyIsValid) {
    StateFile f;
    const auto back = decode_state_file(encode_state_file(f));
    ASSERT_TRUE(std::holds_alternative<StateFile>(back));
    EXPECT_TRUE(std::get<StateFile>(back).records.empty());
}

TEST(StateFile, RefusesEveryCutOfIt) {
    const auto bytes = encode_state_file(two_records());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        const auto r = decode_state_file(std::span(bytes).first(n));
        ASSERT_TRUE(std::holds_alternative<std::string>(r)) << "accepted the first " << n;
    }
    auto longer = bytes;
    longer.push_back(0);
    const auto r = decode_state_file(longer);
    ASSERT_TRUE(std::holds_alternative<std::string>(r));
    EXPECT_NE(std::get<std::string>(r).find("truncated"), std::string::npos);
}

TEST(StateFile, RefusesAnyAlteredByte) {
    const auto bytes = encode_state_file(two_records());
    // Past the magic and the version, whose own refusals are checked below.
    for (std::size_t i = 10; i < bytes.size(); ++i) {
        auto altered = bytes;
        altered[i] ^= 0x40;
        const auto r = decode_state_file(altered);
        ASSERT_TRUE(std::holds_alternative<std::string>(r)) << "byte " << i;
    }
}

TEST(StateFile, NamesWhatIsWrong) {
    auto bytes = encode_state_file(two_records());
    auto other = bytes;
    other[0] = 'X';
    EXPECT_NE(std::get<std::string>(decode_state_file(other)).find("not an ephemera state file"),
              std::string::npos);
    other = bytes;
    other[9] = 3; // version 3
    EXPECT_NE(std::get<std::string>(decode_state_file(other)).find("version 3"), std::string::npos);
    other = bytes;
    other[bytes.size() - 1] ^= 1;
    EXPECT_NE(std::get<std::string>(decode_state_file(other)).find("checksum"), std::string::npos);
}

// A file written before records carried the port block: 36-byte records, version 1. It is
// still read; its sessions hold no block.
TEST(StateFile, AVersion1FileIsReadAndItsSessionsHoldNoBlock) {
    SessionState with_block = sample();
    with_block.block_head = 12;
    with_block.block_granules = 4;
    with_block.block_age_ms = 5000;
    EXPECT_EQ(std::get<SessionState>(decode_session(encode(with_block))), with_block);

    const StateFile f = two_records();
    std::vector<std::uint8_t> v1;
    const auto v2 = encode_state_file(f);
    v1.assign(v2.begin(), v2.begin() + StateFile::kHeaderSize);
    v1[9] = 1;
    for (const RecordBytes& r : f.records) {
        v1.insert(v1.end(), r.begin(), r.begin() + kRecordSizeV1);
    }
    const std::uint64_t sum = fnv1a64(v1);
    for (int shift = 56; shift >= 0; shift -= 8) {
        v1.push_back(static_cast<std::uint8_t>(sum >> shift));
    }
    const auto back = decode_state_file(v1);
    ASSERT_TRUE(std::holds_alternative<StateFile>(back)) << std::get<std::string>(back);
    ASSERT_EQ(std::get<StateFile>(back).records.size(), 2u);
    const SessionState first =
        std::get<SessionState>(decode_session(std::get<StateFile>(back).records[0]));
    EXPECT_EQ(first, sample());
    EXPECT_EQ(first.block_granules, 0u);
}

// ---- export and restore through translators -----------------------------------------------

std::vector<SessionState> export_all(Translator& t, Tick now) {
    std::vector<SessionState> out;
    std::uint32_t cursor = 0;
    while (!t.export_sessions(cursor, 3, now, out)) { // a small step: the walk resumes
    }
    return out;
}

struct Flow {
    nat_test::FrameSpec spec;
    Endpoint external;
};

// Flows from two subscribers (UDP, TCP, ICMP echo) through `nat`, answered from outside.
std::vector<Flow> open_flows(Nat& nat, Tick now) {
    std::vector<Flow> flows;
    const auto add = [&](nat_test::FrameSpec spec) {
        const auto ext = nat.send_out(spec, now);
        EXPECT_TRUE(ext.has_value());
        EXPECT_TRUE(nat.send_in(nat_test::reply_to(spec, *ext), now).has_value());
        flows.push_back({spec, *ext});
    };
    add(nat_test::udp_from(kC, 40000, kA1, 53));
    add(nat_test::udp_from(kC, 40000, kA2, 53)); // same mapping, a second session
    add(nat_test::udp_from(kC2, 40001, kA1, 5000));
    nat_test::FrameSpec syn = nat_test::inside(test::tcp_spec(kC, 33000, kA1, 443));
    add(syn);
    nat_test::FrameSpec ping =
        nat_test::inside(test::icmp_spec(kC2, kA1, 0x4242), nat_test::kC2Mac);
    add(ping);
    return flows;
}

TEST(SessionTransfer, RestoredFlowsKeepTheirExternalEndpoints) {
    const Config config = nat_test::make_config(nat_test::pool_of(2));
    Nat before(config);
    const auto flows = open_flows(before, sec(10));
    const auto saved = export_all(before.translator(), sec(12));
    ASSERT_EQ(saved.size(), flows.size());
    for (const SessionState& s : saved) {
        EXPECT_EQ(s.idle_ms, 2000u);
        EXPECT_EQ(s.mapping_ms, 2000u);
    }

    // A new process: another secret, so a new flow would be placed elsewhere.
    Nat after(config, 1, 0, SipKey{1, 2}, sec(100));
    for (const SessionState& s : saved) {
        EXPECT_EQ(after.translator().restore(s, sec(100)), RestoreResult::restored)
            << s.inside.to_string() << ":" << s.inside_port;
    }
    EXPECT_EQ(after.translator().live_sessions(), flows.size());
    EXPECT_EQ(after.translator().live_mappings(), 4u); // kC:40000 carries two sessions
    EXPECT_EQ(after.translator().live_subscribers(), 2u);
    // Restored, not created: the counters of the new process say nothing was made.
    EXPECT_EQ(after.counters().get(Counter::sessions_created), 0u);
    EXPECT_EQ(after.counters().get(Counter::mappings_created), 0u);

    for (const Flow& f : flows) {
        // The server's next packet reaches the same inside endpoint, and the subscriber's
        // next packet leaves with the same external endpoint.
        const auto in = after.send_in(nat_test::reply_to(f.spec, f.external), sec(101));
        ASSERT_TRUE(in.has_value()) << "reply to " << f.external.addr.to_string() << ":"
                                    << f.external.port << " was not delivered";
        EXPECT_EQ(*in, (Endpoint{f.spec.src, f.spec.proto == Protocol::icmp ? f.spec.icmp_id
                                                                            : f.spec.src_port}));
        nat_test::FrameSpec again = f.spec;
        again.tcp_flags = tcp_flag::ack;
        EXPECT_EQ(after.send_out(again, sec(101)), f.external);
    }
    EXPECT_EQ(after.counters().get(Counter::sessions_created), 0u);
}

// Port blocks (RFC 6888 section 4) move with their sessions: the block that held a port
// becomes the subscriber's again, the same granules, so its next mapping takes a port of it
// and no other subscriber gets one.
TEST(SessionTransfer, ASubscribersPortBlockComesBackWithItsSessions) {
    Config config = nat_test::make_config({kX});
    config.allocation = AllocationMode::blocks;
    config.blocks.block_size = 64;
    config.blocks.max_blocks = 2;
    Nat before(config);
    const auto a = before.send_out(nat_test::udp_from(kC, 40000, kA1, 53), sec(1));
    const auto b = before.send_out(nat_test::udp_from(kC, 40001, kA1, 53), sec(1));
    ASSERT_TRUE(a && b);
    const auto saved = export_all(before.translator(), sec(3));
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_EQ(saved[0].block_granules, 1u);
    EXPECT_EQ(saved[0].block_head, saved[1].block_head); // one block holds both
    EXPECT_EQ(saved[0].block_age_ms, 2000u);

    Nat after(config, 1, 0, SipKey{9, 9}, sec(50));
    for (const SessionState& s : saved) {
        ASSERT_EQ(after.translator().restore(s, sec(50)), RestoreResult::restored);
    }
    const auto sub = after.translator().find_subscriber(kC);
    ASSERT_TRUE(sub);
    ASSERT_EQ(sub->record->blocks.count, 1u);
    const std::uint32_t ref = sub->record->blocks.first;
    EXPECT_EQ(block_granule(ref), saved[0].block_head);
    EXPECT_EQ(after.translator().ports().block(ref).in_use, 2u);
    const auto [lo, hi] = after.translator().ports().block_span(ref);
    // Its next mapping takes a port of the same block; another subscriber's does not.
    const auto next = after.send_out(nat_test::udp_from(kC, 40002, kA1, 53), sec(51));
    ASSERT_TRUE(next);
    EXPECT_GE(next->port, lo);
    EXPECT_LE(next->port, hi);
    const auto other = after.send_out(nat_test::udp_from(kC2, 40000, kA1, 53), sec(51));
    ASSERT_TRUE(other);
    EXPECT_TRUE(other->port < lo || other->port > hi);
    // A session whose block's granules are someone else's is refused.
    SessionState stolen = saved[0];
    stolen.inside = kC2;
    stolen.inside_port = 41000;
    EXPECT_EQ(after.translator().restore(stolen, sec(51)), RestoreResult::port_unavailable);
    // A record written where the pool had no blocks cannot be placed in one.
    SessionState no_block = saved[0];
    no_block.block_granules = 0;
    no_block.inside_port = 42000;
    EXPECT_EQ(Nat(config).translator().restore(no_block, sec(50)), RestoreResult::unsupported_mode);
}

TEST(SessionTransfer, RestoredPortsAreNotGivenToNewFlows) {
    // A range of 8 ports: after restoring 2 mappings, 6 new ones fit and every one differs.
    const Config config = nat_test::make_config({kX}, {60000, 60007});
    Nat before(config);
    before.send_out(nat_test::udp_from(kC, 60000, kA1, 53));
    before.send_out(nat_test::udp_from(kC, 60001, kA1, 53));
    const auto saved = export_all(before.translator(), nat_test::kT0);
    Nat after(config, 1, 0, SipKey{7, 7});
    for (const SessionState& s : saved) {
        ASSERT_EQ(after.translator().restore(s, nat_test::kT0), RestoreResult::restored);
    }
    std::vector<std::uint16_t> ports;
    for (const SessionState& s : saved) {
        ports.push_back(s.external_port);
    }
    for (std::uint16_t p = 1; p <= 6; ++p) {
        const auto ext =
            after.send_out(nat_test::udp_from(kC, static_cast<std::uint16_t>(p), kA1, 53));
        ASSERT_TRUE(ext.has_value()) << "flow " << p;
        ports.push_back(ext->port);
    }
    std::sort(ports.begin(), ports.end());
    EXPECT_EQ(std::adjacent_find(ports.begin(), ports.end()), ports.end());
    EXPECT_FALSE(after.send_out(nat_test::udp_from(kC, 7, kA1, 53)).has_value());
}

TEST(SessionTransfer, RefusesWhatItCannotRebuild) {
    const Config config = nat_test::make_config(nat_test::pool_of(2));
    Nat before(config);
    before.send_out(nat_test::udp_from(kC, 40000, kA1, 53), sec(1));
    const SessionState s = export_all(before.translator(), sec(1)).at(0);

    Nat after(config);
    EXPECT_EQ(after.translator().restore(s, sec(1)), RestoreResult::restored);
    EXPECT_EQ(after.translator().restore(s, sec(1)), RestoreResult::duplicate);

    SessionState stale = s;
    stale.idle_ms = 301'000; // UDP's 300 s passed while it was away
    EXPECT_EQ(Nat(config).translator().restore(stale, sec(1)), RestoreResult::expired);

    SessionState elsewhere = s;
    elsewhere.external = Ipv4Addr{203, 0, 113, 1};
    EXPECT_EQ(Nat(config).translator().restore(elsewhere, sec(1)), RestoreResult::not_in_pool);

    // The new config's range no longer holds the port.
    Nat narrow(nat_test::make_config(nat_test::pool_of(2), {1024, 2047}));
    EXPECT_EQ(narrow.translator().restore(s, sec(1)), RestoreResult::port_unavailable);
    EXPECT_EQ(narrow.translator().live_subscribers(), 0u) << "a refusal left a subscriber";
    EXPECT_EQ(narrow.translator().live_mappings(), 0u);

    // A second session of the same inside endpoint that claims another external port.
    SessionState other_port = s;
    other_port.remote = kA2;
    other_port.external_port = static_cast<std::uint16_t>(s.external_port ^ 1);
    EXPECT_EQ(after.translator().restore(other_port, sec(1)), RestoreResult::conflict);
    // Paired pooling: the subscriber's next mapping on the other address.
    SessionState other_address = s;
    other_address.inside_port = 40002;
    other_address.external = s.external == config.pool[0] ? config.pool[1] : config.pool[0];
    EXPECT_EQ(after.translator().restore(other_address, sec(1)), RestoreResult::conflict);
    EXPECT_EQ(after.translator().live_sessions(), 1u);
}

TEST(SessionTransfer, EachWorkerTakesOnlyWhatItOwns) {
    // Written by one worker, restored into two: each record is accepted by exactly one.
    const Config config = nat_test::make_config(nat_test::pool_of(2));
    Nat one(config);
    for (std::uint16_t i = 0; i < 40; ++i) {
        one.send_out(nat_test::udp_from(Ipv4Addr{kC.value() + i}, 40000, kA1, 53));
    }
    const auto saved = export_all(one.translator(), nat_test::kT0);
    ASSERT_EQ(saved.size(), 40u);
    Nat w0(config, 2, 0);
    Nat w1(config, 2, 1);
    std::size_t restored = 0;
    std::size_t not_owned = 0;
    for (const SessionState& s : saved) {
        for (Nat* w : {&w0, &w1}) {
            const RestoreResult r = w->translator().restore(s, nat_test::kT0);
            restored += r == RestoreResult::restored;
            not_owned += r == RestoreResult::not_owned;
        }
    }
    // With two workers each owns half the ports: a session whose subscriber and port fell to
    // different workers cannot be rebuilt on either and must be refused by both.
    EXPECT_EQ(restored + not_owned, 80u);
    EXPECT_EQ(restored, w0.translator().live_sessions() + w1.translator().live_sessions());
    EXPECT_GT(restored, 0u);
}

TEST(SessionTransfer, TcpStateAndAgeCarryOver) {
    const Config config = nat_test::make_config();
    Nat before(config);
    nat_test::FrameSpec syn = nat_test::inside(test::tcp_spec(kC, 33000, kA1, 443));
    const auto ext = before.send_out(syn, sec(1));
    ASSERT_TRUE(ext.has_value());
    nat_test::FrameSpec synack = nat_test::reply_to(syn, *ext);
    synack.tcp_flags = tcp_flag::syn | tcp_flag::ack;
    ASSERT_TRUE(before.send_in(synack, sec(1)).has_value());
    const SessionState s = export_all(before.translator(), sec(61)).at(0);
    EXPECT_EQ(s.idle_ms, 60'000u);

    // Established: 7440 s; a transitory session (4 min) would be gone at 60 s + 300 s.
    Nat after(config);
    ASSERT_EQ(after.translator().restore(s, sec(1)), RestoreResult::restored);
    nat_test::expire_all(after.translator(), sec(1 + 300));
    EXPECT_EQ(after.translator().live_sessions(), 1u);
    // It ages from where it stood: 7440 s less the 60 s it had already been idle.
    nat_test::expire_all(after.translator(), sec(1 + 7440 - 60 - 2));
    EXPECT_EQ(after.translator().live_sessions(), 1u);
    nat_test::expire_all(after.translator(), sec(1 + 7440 - 60 + 2));
    EXPECT_EQ(after.translator().live_sessions(), 0u);
    EXPECT_EQ(after.translator().live_mappings(), 0u);
}

} // namespace
} // namespace ephemera
