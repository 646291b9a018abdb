// The HA sync thread against a scripted peer on loopback (control/ha/sync_thread.hpp): the
// standby applies records in order to the owning worker's ring, acknowledges, drops a
// connection with a sequence gap and comes back for a bulk round, and takes over when the
// active goes; the active streams what its workers write, numbered, says when the bulk round
// is complete, refuses a peer that disagrees, and yields at start to a peer already active.
#include "../../control/ha/sync_thread.hpp"
#include "sync_peer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace ephemera::ha {
namespace {

using namespace std::chrono_literals;
using namespace sync_peer;

constexpr WorkerId kWorkers = 2;

SessionState session(std::uint32_t subscriber, std::uint16_t port) {
    SessionState s;
    s.proto = Protocol::udp;
    s.inside = Ipv4Addr{100, 64, 0, static_cast<std::uint8_t>(subscriber)};
    s.inside_port = port;
    s.external = Ipv4Addr{198, 18, 0, 100};
    s.external_port = static_cast<std::uint16_t>(port + 1000);
    s.remote = Ipv4Addr{198, 18, 0, 2};
    s.remote_port = 53;
    return s;
}

class SyncThreadTest : public ::testing::Test {
protected:
    void SetUp() override {
        shared_.workers = kWorkers;
        shared_.ownership = Ownership(kWorkers);
        config_.listen_address = kLoopback;
        config_.listen_port = free_port();
        config_.peer_address = kLoopback;
        config_.peer_port = free_port();
        config_.dead_interval_ms = 300;
        Config c;
        c.pool = {Ipv4Addr{198, 18, 0, 100}};
        terms_ = pairing_terms(c, kWorkers);
    }
    void TearDown() override {
        if (thread_) {
            thread_->stop();
        }
    }

    HaRole start(HaRole role) {
        config_.role = role;
        thread_ = std::make_unique<SyncThread>(config_, shared_, out_, in_, terms_);
        const HaRole got = thread_->prepare();
        thread_->start();
        return got;
    }
    std::vector<SyncRecord> applied(WorkerId w) {
        std::vector<SyncRecord> out(1024);
        out.resize(
            rte_ring_sc_dequeue_burst_elem(in_[w], out.data(), sizeof(SyncRecord), 1024, nullptr));
        return out;
    }
    HaReport report() { return thread_->report(); }

    // This box started active, a listener at its peer's address: the box's first probe (an
    // active with no standby asks once a second) and the hello it said.
    struct FirstProbe {
        logging::SocketFd listener;
        SyncLink link;
        Hello asked;
    };
    std::optional<FirstProbe> start_active_and_take_its_probe() {
        EXPECT_EQ(start(HaRole::active), HaRole::active);
        std::string error;
        auto listener = listen_on(kLoopback, config_.peer_port, error);
        EXPECT_TRUE(listener) << error;
        auto probe = listener ? accept_within(*listener, 3s) : std::nullopt;
        const auto asked = probe ? next_of<Hello>(*probe) : std::nullopt;
        if (!asked) {
            return std::nullopt;
        }
        return FirstProbe{std::move(*listener), std::move(*probe), *asked};
    }

    WorkerShared shared_{kWorkers};
    WorkerRings rings_{kWorkers};
    std::vector<rte_ring*>& out_ = rings_.out;
    std::vector<rte_ring*>& in_ = rings_.in;
    HaConfig config_;
    std::string terms_;
    std::unique_ptr<SyncThread> thread_;
};

TEST_F(SyncThreadTest, StandbyAppliesInOrderAcksAndTakesOverWhenTheActiveGoes) {
    std::string error;
    auto listener = listen_on(kLoopback, config_.peer_port, error);
    ASSERT_TRUE(listener) << error;
    ASSERT_EQ(start(HaRole::standby), HaRole::standby);
    EXPECT_TRUE(shared_.ha_standby.load());

    auto link = accept_within(*listener);
    ASSERT_TRUE(link);
    const auto hello = next_of<Hello>(*link);
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->role, HaRole::standby);
    EXPECT_EQ(hello->terms, terms_);
    link->send(Hello{HaRole::active, kWorkers, terms_});

    // Sessions of several subscribers, in order; the last ends the first.
    Records batch;
    std::vector<SessionState> sent;
    for (std::uint32_t sub = 10; sub < 16; ++sub) {
        sent.push_back(session(sub, 40000));
        batch.records.push_back(encode(sent.back()));
    }
    batch.records.push_back(encode(sent.front(), RecordType::session_removed));
    link->send(batch);
    ASSERT_TRUE(link->flush());

    std::vector<std::vector<SyncRecord>> got(kWorkers);
    ASSERT_TRUE(eventually([&] {
        for (WorkerId w = 0; w < kWorkers; ++w) {
            for (const SyncRecord& r : applied(w)) {
                got[w].push_back(r);
            }
        }
        return got[0].size() + got[1].size() == batch.records.size();
    }));
    // Each on the ring of the worker that owns its subscriber, in the order sent.
    for (WorkerId w = 0; w < kWorkers; ++w) {
        std::vector<SessionState> expected;
        for (const SessionState& s : sent) {
            if (shared_.ownership.subscriber_owner(s.inside) == w) {
                expected.push_back(s);
            }
        }
        std::vector<SessionState> upserts;
        for (const SyncRecord& r : got[w]) {
            if (r.kind == SyncKind::upsert) {
                upserts.push_back(r.state);
            }
        }
        EXPECT_EQ(upserts, expected) << "worker " << w;
    }
    const WorkerId first_owner = shared_.ownership.subscriber_owner(sent.front().inside);
    EXPECT_EQ(got[first_owner].back().kind, SyncKind::remove);
    EXPECT_EQ(got[first_owner].back().state, sent.front());

    const auto ack = next_of<Ack>(*link);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->next_sequence, batch.records.size());
    EXPECT_TRUE(report().peer_connected);
    EXPECT_FALSE(report().in_sync); // until the bulk round is said to be complete
    link->send(BulkDone{1});
    ASSERT_TRUE(link->flush());
    EXPECT_TRUE(eventually([&] { return report().in_sync; }));

    // The active goes (its kernel closes the connection): the standby takes over.
    link.reset();
    ASSERT_TRUE(eventually([&] { return report().role == "active"; }));
    EXPECT_FALSE(shared_.ha_standby.load());
    EXPECT_EQ(report().failovers, 1u);
    EXPECT_THAT(report().last_failover_reason, ::testing::HasSubstr("closed the sync link"));
}

TEST_F(SyncThreadTest, StandbyDropsAStreamWithAGapAndPairsAgain) {
    std::string error;
    auto listener = listen_on(kLoopback, config_.peer_port, error);
    ASSERT_TRUE(listener) << error;
    start(HaRole::standby);
    auto link = accept_within(*listener);
    ASSERT_TRUE(link && next_of<Hello>(*link));
    link->send(Hello{HaRole::active, kWorkers, terms_});
    link->send(Records{0, {encode(session(10, 1)), encode(session(10, 2))}});
    link->send(Records{5, {encode(session(10, 3))}}); // 2, 3 and 4 never came
    ASSERT_TRUE(link->flush());

    // The standby hangs up rather than apply past the gap, and does not take over: the active
    // is there. Its next connection starts the sequence again (with a bulk round).
    auto again = accept_within(*listener);
    ASSERT_TRUE(again);
    EXPECT_EQ(report().sequence_gaps, 1u);
    EXPECT_EQ(report().role, "standby");
    EXPECT_EQ(report().failovers, 0u);
    ASSERT_TRUE(next_of<Hello>(*again));
    again->send(Hello{HaRole::active, kWorkers, terms_});
    // The first record again: the same session twice is one upsert more, not a new session.
    again->send(Records{0, {encode(session(10, 1))}});
    ASSERT_TRUE(again->flush());
    const auto ack = next_of<Ack>(*again);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->next_sequence, 1u);
    std::size_t records = 0;
    for (WorkerId w = 0; w < kWorkers; ++w) {
        records += applied(w).size();
    }
    EXPECT_EQ(records, 3u); // two before the gap, one after; none past the gap
    EXPECT_EQ(report().records_received, 3u);
}

TEST_F(SyncThreadTest, StandbyTakesOverWhenTheActiveFallsSilent) {
    std::string error;
    auto listener = listen_on(kLoopback, config_.peer_port, error);
    ASSERT_TRUE(listener) << error;
    start(HaRole::standby);
    auto link = accept_within(*listener);
    ASSERT_TRUE(link && next_of<Hello>(*link));
    link->send(Hello{HaRole::active, kWorkers, terms_});
    ASSERT_TRUE(link->flush());
    ASSERT_TRUE(eventually([&] { return report().peer_connected; }));
    // No heartbeat, connection left open (a frozen or unplugged active).
    const auto silent_from = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually([&] { return report().role == "active"; }, 2s));
    const auto took = std::chrono::steady_clock::now() - silent_from;
    EXPECT_GE(took, 250ms);
    EXPECT_THAT(report().last_failover_reason, ::testing::HasSubstr("no word from the active"));
}

TEST_F(SyncThreadTest, ActiveStreamsWhatWorkersWriteAndSaysWhenTheBulkRoundIsDone) {
    ASSERT_EQ(start(HaRole::active), HaRole::active); // nobody at the peer's address
    EXPECT_FALSE(shared_.ha_standby.load());
    EXPECT_FALSE(shared_.ha_streaming.load());

    std::string error;
    auto link = SyncLink::connect(kLoopback, config_.listen_port, 1000ms, error);
    ASSERT_TRUE(link) << error;
    link->send(Hello{HaRole::standby, kWorkers, terms_});
    ASSERT_TRUE(link->flush());
    const auto hello = next_of<Hello>(*link);
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->role, HaRole::active);
    ASSERT_TRUE(eventually([&] { return shared_.ha_streaming.load(); }));
    const std::uint32_t generation = shared_.ha_bulk_generation.load();
    EXPECT_EQ(generation, 1u);

    // What the workers' bulk rounds write: sessions, then each worker's marker.
    for (WorkerId w = 0; w < kWorkers; ++w) {
        SyncRecord r;
        r.state = session(20 + w, 7);
        ASSERT_EQ(rte_ring_sp_enqueue_elem(out_[w], &r, sizeof r), 0);
        r.kind = SyncKind::remove;
        ASSERT_EQ(rte_ring_sp_enqueue_elem(out_[w], &r, sizeof r), 0);
        SyncRecord done;
        done.kind = SyncKind::bulk_done;
        done.generation = generation;
        ASSERT_EQ(rte_ring_sp_enqueue_elem(out_[w], &done, sizeof done), 0);
    }
    std::uint64_t next = 0;
    std::size_t removes = 0;
    std::optional<BulkDone> bulk;
    eventually([&] {
        link->receive();
        while (auto m = link->next()) {
            if (const auto* r = std::get_if<Records>(&*m)) {
                EXPECT_EQ(r->first_sequence, next);
                next += r->records.size();
                for (const RecordBytes& b : r->records) {
                    removes += record_type(b) == RecordType::session_removed;
                }
            } else if (const auto* b = std::get_if<BulkDone>(&*m)) {
                bulk = *b;
            }
        }
        return bulk.has_value();
    });
    ASSERT_TRUE(bulk);
    EXPECT_EQ(bulk->generation, generation);
    EXPECT_EQ(next, 4u);
    EXPECT_EQ(removes, 2u);
    EXPECT_TRUE(report().in_sync);
    EXPECT_EQ(report().records_sent, 4u);
    EXPECT_EQ(report().lag_records, 4u);
    link->send(Ack{4});
    ASSERT_TRUE(link->flush());
    EXPECT_TRUE(eventually([&] { return report().lag_records == 0; }));

    // The standby goes: the workers stop making records.
    link.reset();
    EXPECT_TRUE(eventually([&] { return !shared_.ha_streaming.load(); }));
    EXPECT_EQ(report().role, "active");
    EXPECT_EQ(report().failovers, 0u);
}

TEST_F(SyncThreadTest, ActiveRefusesAStandbyThatDisagrees) {
    start(HaRole::active);
    std::string error;
    auto link = SyncLink::connect(kLoopback, config_.listen_port, 1000ms, error);
    ASSERT_TRUE(link) << error;
    Config other;
    other.pool = {Ipv4Addr{198, 18, 0, 100}, Ipv4Addr{198, 18, 0, 101}};
    link->send(Hello{HaRole::standby, kWorkers, pairing_terms(other, kWorkers)});
    ASSERT_TRUE(link->flush());
    const auto refused = next_of<Refuse>(*link);
    ASSERT_TRUE(refused);
    EXPECT_THAT(refused->reason, ::testing::HasSubstr("disagrees on pool.addresses"));
    EXPECT_THAT(report().refused, ::testing::HasSubstr("pool.addresses"));
    EXPECT_FALSE(shared_.ha_streaming.load());
    EXPECT_EQ(report().pairings, 0u);
}

TEST_F(SyncThreadTest, ABoxConfiguredActiveYieldsToAPeerThatIsActive) {
    std::string error;
    auto listener = listen_on(kLoopback, config_.peer_port, error);
    ASSERT_TRUE(listener) << error;
    // The peer, active since it took over, answers the probe with its role.
    std::thread peer([&] {
        auto link = accept_within(*listener);
        if (link && next_of<Hello>(*link)) {
            link->send(Hello{HaRole::active, kWorkers, terms_});
            link->flush();
            std::this_thread::sleep_for(100ms);
        }
    });
    const HaRole role = start(HaRole::active);
    peer.join();
    EXPECT_EQ(role, HaRole::standby);
    EXPECT_TRUE(shared_.ha_standby.load());
    EXPECT_EQ(report().role, "standby");
}

// After a cut sync link or a frozen box, both boxes may be active. The one with no standby
// asks its peer once a second; the one active since earlier steps down, empties its tables
// and pairs as the other's standby.
TEST_F(SyncThreadTest, OfTwoActivesTheEarlierStepsDownAndPairsAsStandby) {
    auto probe = start_active_and_take_its_probe();
    ASSERT_TRUE(probe);
    EXPECT_EQ(probe->asked.role, HaRole::active);
    ASSERT_GT(probe->asked.active_since_ms, 0u);
    probe->link.send(Hello{HaRole::active, kWorkers, terms_, probe->asked.active_since_ms + 1000});
    ASSERT_TRUE(probe->link.flush());
    const logging::SocketFd& listener = probe->listener;

    ASSERT_TRUE(eventually([&] { return report().role == "standby"; }));
    EXPECT_TRUE(shared_.ha_standby.load());
    EXPECT_EQ(report().split_brains, 1u);
    EXPECT_EQ(shared_.ha_reset_generation.load(), 1u);
    // It waits for its workers to empty their tables before it pairs ...
    EXPECT_FALSE(accept_within(listener, 300ms).has_value());
    shared_.ha_resets_done.fetch_add(kWorkers);
    // ... then comes as a standby.
    auto link = accept_within(listener);
    ASSERT_TRUE(link);
    const auto hello = next_of<Hello>(*link);
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->role, HaRole::standby);
    EXPECT_EQ(report().failovers, 0u);
}

TEST_F(SyncThreadTest, OfTwoActivesTheLaterStaysActive) {
    auto probe = start_active_and_take_its_probe();
    ASSERT_TRUE(probe);
    probe->link.send(Hello{HaRole::active, kWorkers, terms_, probe->asked.active_since_ms - 1000});
    ASSERT_TRUE(probe->link.flush());
    ASSERT_TRUE(eventually([&] { return report().split_brains == 1; }));
    EXPECT_EQ(report().role, "active");
    EXPECT_FALSE(shared_.ha_standby.load());
    EXPECT_EQ(shared_.ha_reset_generation.load(), 0u);
}

// A worker that stood still past the dead interval (a frozen process) holds its traffic and
// asks; the sync thread asks the peer at once and answers: still active, or stepped down.
TEST_F(SyncThreadTest, AFrozenActiveAsksThePeerBeforeForwardingAgain) {
    ASSERT_EQ(start(HaRole::active), HaRole::active);
    std::string error;
    auto listener = listen_on(kLoopback, config_.peer_port, error);
    ASSERT_TRUE(listener) << error;
    // Nobody answers yet (the listener accepts, says nothing): the probe gives up and the
    // box stays active.
    shared_.ha_confirm_requests.fetch_add(1);
    ASSERT_TRUE(eventually([&] { return shared_.ha_confirmed.load() == 1; }));
    EXPECT_EQ(report().role, "active");
    // The standby took over during the freeze: it is active since later.
    // Every caller is answered (the once-a-second probe and connections the first request
    // left in the backlog come too), until the box has stepped down.
    std::atomic<bool> done{false};
    std::thread peer([&] {
        while (!done.load()) {
            auto link = accept_within(*listener, 100ms);
            if (!link) {
                continue;
            }
            const auto asked = next_of<Hello>(*link, 500ms);
            if (asked && asked->role == HaRole::active) {
                link->send(Hello{HaRole::active, kWorkers, terms_, asked->active_since_ms + 5000});
                link->flush();
            }
        }
    });
    shared_.ha_confirm_requests.fetch_add(1);
    const bool confirmed = eventually([&] { return shared_.ha_confirmed.load() == 2; });
    const bool stepped_down = eventually([&] { return report().role == "standby"; });
    done.store(true);
    peer.join();
    EXPECT_TRUE(confirmed);
    EXPECT_TRUE(stepped_down);
    EXPECT_TRUE(shared_.ha_standby.load());
    EXPECT_EQ(report().split_brains, 1u);
}

} // namespace
} // namespace ephemera::ha
