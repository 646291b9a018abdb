// The hand-over thread against a scripted peer on loopback (control/ha/handover.hpp): taking a
// drained box's sessions in (quiet adoption, each record to the worker that owns its
// subscriber, then the addresses answered and announced), refusing offers that cannot work by
// name, draining this box (silent, a bulk round, standby once the peer has everything),
// forwarding again when a drain fails, and moving some subscribers (held, then moved with the
// peer's MACs, then ha.migrate_hook).
#include "../../control/ha/handover.hpp"
#include "sync_peer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

namespace ephemera::ha {
namespace {

using namespace std::chrono_literals;
using namespace sync_peer;
using ::testing::HasSubstr;

constexpr WorkerId kWorkers = 2;

Config box_config(std::vector<Ipv4Addr> pool, Ipv4Addr gateway) {
    Config c;
    c.pool = std::move(pool);
    c.inside.gateway = gateway;
    return c;
}

const Config kThisBox = box_config({Ipv4Addr{198, 18, 0, 100}}, Ipv4Addr{100, 64, 255, 1});
const Config kOtherBox =
    box_config({Ipv4Addr{198, 18, 0, 102}, Ipv4Addr{198, 18, 0, 103}}, Ipv4Addr{100, 64, 255, 2});

SessionState session(std::uint8_t subscriber, std::uint16_t port) {
    SessionState s;
    s.proto = Protocol::udp;
    s.inside = Ipv4Addr{100, 64, 0, subscriber};
    s.inside_port = port;
    s.external = Ipv4Addr{198, 18, 0, 102};
    s.external_port = static_cast<std::uint16_t>(port + 1000);
    s.remote = Ipv4Addr{198, 18, 2, 2};
    s.remote_port = 53;
    return s;
}

struct Adoption {
    std::vector<Ipv4Addr> pool;
    bool answered;
    std::optional<Ipv4Addr> gateway;
};

class HandoverTest : public ::testing::Test {
protected:
    void SetUp() override {
        shared_.workers = kWorkers;
        shared_.ownership = Ownership(kWorkers);
        shared_.inside_mac = *MacAddr::parse("02:00:00:00:a0:01");
        shared_.outside_mac = *MacAddr::parse("02:00:00:00:b0:01");
        config_ = kThisBox;
        config_.ha.handover_address = kLoopback;
        config_.ha.handover_port = free_port();
    }
    void TearDown() override {
        if (thread_) {
            thread_->stop();
        }
    }

    void start() {
        HandoverHooks hooks;
        hooks.adopt = [this](const std::vector<Ipv4Addr>& pool, bool answered,
                             std::optional<Ipv4Addr> gateway) {
            const std::lock_guard lock(lock_);
            adoptions_.push_back({pool, answered, gateway});
            return ChangeResult{true, "adopted"};
        };
        hooks.move = [this](const Config::SubscriberMove& move, bool remove) {
            const std::lock_guard lock(lock_);
            moves_.emplace_back(move, remove);
            return ChangeResult{true, "moved"};
        };
        hooks.applied_refused = [this] {
            return std::make_pair(applied_.load(), std::uint64_t{0});
        };
        hooks.current = [this] {
            const std::lock_guard lock(lock_);
            return config_;
        };
        thread_ = std::make_unique<Handover>(config_.ha, shared_, out_, in_, std::move(hooks));
        thread_->prepare();
        thread_->start();
    }
    // Stands for the workers: takes what reached their apply rings, counts it applied.
    std::vector<SyncRecord> apply_all() {
        std::vector<SyncRecord> got;
        for (rte_ring* r : in_) {
            SyncRecord rec;
            while (rte_ring_sc_dequeue_elem(r, &rec, sizeof rec) == 0) {
                got.push_back(rec);
            }
        }
        applied_ += got.size();
        return got;
    }
    // A scripted box offering its sessions to this one: connected and its offer sent.
    std::optional<SyncLink> offer(const std::string& terms) {
        std::string error;
        auto link = SyncLink::connect(kLoopback, config_.ha.handover_port, 1000ms, error);
        EXPECT_TRUE(link) << error;
        if (link) {
            link->send(Hello{HaRole::none, kWorkers, terms, 0});
            link->flush();
        }
        return link;
    }
    std::string refusal_of(const std::string& terms) {
        auto link = offer(terms);
        const auto refused = link ? next_of<Refuse>(*link) : std::nullopt;
        return refused ? refused->reason : "(no refusal)";
    }
    std::vector<Adoption> adoptions() {
        const std::lock_guard lock(lock_);
        return adoptions_;
    }

    WorkerShared shared_{kWorkers};
    WorkerRings rings_{kWorkers};
    std::vector<rte_ring*>& out_ = rings_.out;
    std::vector<rte_ring*>& in_ = rings_.in;
    std::mutex lock_;
    Config config_;
    std::vector<Adoption> adoptions_;
    std::vector<std::pair<Config::SubscriberMove, bool>> moves_;
    std::atomic<std::uint64_t> applied_{0};
    std::unique_ptr<Handover> thread_;
};

TEST_F(HandoverTest, TakesADrainedBoxsSessionsInThenAnswersForItsAddresses) {
    start();
    auto link = offer(handover_terms(kOtherBox, kWorkers));
    ASSERT_TRUE(link);
    const auto accepted = next_of<Hello>(*link);
    ASSERT_TRUE(accepted);
    EXPECT_THAT(accepted->terms, HasSubstr("offer.inside_mac=02:00:00:00:a0:01"));
    // The drained box's pool is taken in quietly first: it still answers for it.
    ASSERT_EQ(adoptions().size(), 1u);
    EXPECT_EQ(adoptions()[0].pool, kOtherBox.pool);
    EXPECT_FALSE(adoptions()[0].answered);
    EXPECT_EQ(thread_->report().state, "receiving");

    Records batch;
    for (std::uint8_t sub = 10; sub < 16; ++sub) {
        batch.records.push_back(encode(session(sub, 40000)));
    }
    link->send(batch);
    link->send(BulkDone{1});
    link->flush();
    std::vector<SyncRecord> got;
    ASSERT_TRUE(eventually([&] {
        for (const SyncRecord& r : apply_all()) {
            got.push_back(r);
        }
        return got.size() == 6;
    }));
    // Each record reached the worker that owns its subscriber (checked on the way through).
    const auto done = next_of<HandoverDone>(*link);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->applied, 6u);
    EXPECT_EQ(done->refused, 0u);
    // Then it answers for the addresses and the gateway, and says so by gratuitous ARP.
    ASSERT_EQ(adoptions().size(), 2u);
    EXPECT_TRUE(adoptions()[1].answered);
    EXPECT_EQ(adoptions()[1].gateway, kOtherBox.inside.gateway);
    EXPECT_EQ(shared_.ha_announce_generation.load(), 1u);
    const HandoverReport r = thread_->report();
    EXPECT_EQ(r.state, "done");
    EXPECT_EQ(r.direction, "in");
    EXPECT_EQ(r.records_received, 6u);
    EXPECT_EQ(r.handovers_in, 1u);
}

TEST_F(HandoverTest, RecordsGoToTheWorkerOfTheirSubscriber) {
    start();
    auto link = offer(handover_terms(kOtherBox, kWorkers));
    ASSERT_TRUE(link && next_of<Hello>(*link));
    Records batch;
    for (std::uint8_t sub = 10; sub < 30; ++sub) {
        batch.records.push_back(encode(session(sub, 40000)));
    }
    link->send(batch);
    link->flush();
    std::size_t seen = 0;
    ASSERT_TRUE(eventually([&] {
        for (WorkerId w = 0; w < kWorkers; ++w) {
            SyncRecord rec;
            while (rte_ring_sc_dequeue_elem(in_[w], &rec, sizeof rec) == 0) {
                EXPECT_EQ(shared_.ownership.subscriber_owner(rec.state.inside), w);
                ++seen;
            }
        }
        return seen == 20;
    }));
}

TEST_F(HandoverTest, RefusesAnOfferThatCannotWorkByName) {
    start();
    Config overlapping = kOtherBox;
    overlapping.pool.push_back(kThisBox.pool[0]);
    EXPECT_THAT(refusal_of(handover_terms(overlapping, kWorkers)),
                HasSubstr("198.18.0.100 is in this box's own pool"));
    Config other_range = kOtherBox;
    other_range.port_range = {32768, 60999};
    EXPECT_THAT(refusal_of(handover_terms(other_range, kWorkers)),
                HasSubstr("disagree on pool.port_range"));
    EXPECT_THAT(refusal_of(handover_terms(kOtherBox, kWorkers * 2)), HasSubstr("workers"));
    Config deterministic = kOtherBox;
    deterministic.allocation = AllocationMode::deterministic;
    EXPECT_THAT(refusal_of(handover_terms(deterministic, kWorkers)),
                HasSubstr("deterministic allocation is not handed over"));
    Config same_gateway = kOtherBox;
    same_gateway.inside.gateway = kThisBox.inside.gateway;
    EXPECT_THAT(refusal_of(handover_terms(same_gateway, kWorkers)),
                HasSubstr("gateway 100.64.255.1 is this box's too"));
    // Nothing was taken in.
    EXPECT_TRUE(adoptions().empty());
    EXPECT_EQ(thread_->report().state, "failed");
}

TEST_F(HandoverTest, OneHandoverAtATime) {
    start();
    auto first = offer(handover_terms(kOtherBox, kWorkers));
    ASSERT_TRUE(first && next_of<Hello>(*first));
    EXPECT_THAT(refusal_of(handover_terms(kOtherBox, kWorkers)), HasSubstr("under way"));
    const ChangeResult drain = thread_->drain_to(kLoopback, free_port());
    EXPECT_FALSE(drain.ok);
    EXPECT_THAT(drain.message, HasSubstr("under way"));
}

// This box drained: the scripted peer accepts, takes the stream, and says all is in.
class DrainTest : public HandoverTest {
protected:
    void SetUp() override {
        HandoverTest::SetUp();
        std::string error;
        peer_port_ = free_port();
        listener_ = listen_on(kLoopback, peer_port_, error);
        ASSERT_TRUE(listener_) << error;
        start();
    }
    // Workers' part: every session once, then each worker's marker of the round.
    void workers_stream(std::uint32_t generation, std::size_t sessions) {
        for (std::size_t i = 0; i < sessions; ++i) {
            SyncRecord r;
            r.state = session(static_cast<std::uint8_t>(10 + i), 40000);
            ASSERT_EQ(rte_ring_sp_enqueue_elem(out_[i % kWorkers], &r, sizeof r), 0);
        }
        for (rte_ring* ring : out_) {
            SyncRecord marker;
            marker.kind = SyncKind::bulk_done;
            marker.generation = generation;
            ASSERT_EQ(rte_ring_sp_enqueue_elem(ring, &marker, sizeof marker), 0);
        }
    }
    std::uint16_t peer_port_ = 0;
    std::optional<logging::SocketFd> listener_;
};

TEST_F(DrainTest, FallsSilentStreamsEverySessionAndStaysSilentOnceThePeerHasThem) {
    ASSERT_TRUE(thread_->drain_to(kLoopback, peer_port_).ok);
    auto link = accept_within(*listener_);
    ASSERT_TRUE(link);
    const auto offered = next_of<Hello>(*link);
    ASSERT_TRUE(offered);
    EXPECT_EQ(term_value(offered->terms, "offer.pool"), "198.18.0.100");
    EXPECT_EQ(term_value(offered->terms, "offer.gateway"), "100.64.255.1");
    EXPECT_FALSE(shared_.ha_handing_over.load()); // not before the peer accepts
    link->send(Hello{HaRole::none, kWorkers, handover_terms(kOtherBox, kWorkers), 0});
    link->flush();
    ASSERT_TRUE(eventually([&] { return shared_.ha_handing_over.load(); }));
    EXPECT_TRUE(shared_.ha_streaming.load());
    const std::uint32_t generation = shared_.ha_bulk_generation.load();
    EXPECT_EQ(generation, 1u);
    workers_stream(generation, 5);

    std::size_t records = 0;
    std::optional<BulkDone> bulk;
    while (!bulk) {
        const auto m = next_message(*link);
        ASSERT_TRUE(m);
        if (const auto* r = std::get_if<Records>(&*m)) {
            EXPECT_EQ(r->first_sequence, records);
            records += r->records.size();
        } else if (const auto* b = std::get_if<BulkDone>(&*m)) {
            bulk = *b;
        }
    }
    EXPECT_EQ(records, 5u);
    EXPECT_EQ(bulk->generation, generation);
    link->send(HandoverDone{5, 0});
    link->flush();
    ASSERT_TRUE(eventually([&] { return thread_->report().state == "done"; }));
    // Silent for good, its tables emptied without a word to the log.
    EXPECT_TRUE(shared_.ha_standby.load());
    EXPECT_FALSE(shared_.ha_handing_over.load());
    EXPECT_FALSE(shared_.ha_streaming.load());
    EXPECT_EQ(shared_.ha_reset_generation.load(), 1u);
    EXPECT_EQ(thread_->report().handovers_out, 1u);
    const ChangeResult again = thread_->drain_to(kLoopback, peer_port_);
    EXPECT_FALSE(again.ok);
    EXPECT_THAT(again.message, HasSubstr("handed its sessions over already"));
}

TEST_F(DrainTest, ForwardsAgainWhenThePeerGoesBeforeItHasEverything) {
    ASSERT_TRUE(thread_->drain_to(kLoopback, peer_port_).ok);
    {
        auto link = accept_within(*listener_);
        ASSERT_TRUE(link && next_of<Hello>(*link));
        link->send(Hello{HaRole::none, kWorkers, handover_terms(kOtherBox, kWorkers), 0});
        link->flush();
        ASSERT_TRUE(eventually([&] { return shared_.ha_handing_over.load(); }));
    } // the peer hangs up
    ASSERT_TRUE(eventually([&] { return thread_->report().state == "failed"; }));
    EXPECT_FALSE(shared_.ha_handing_over.load());
    EXPECT_FALSE(shared_.ha_streaming.load());
    EXPECT_FALSE(shared_.ha_standby.load());
    EXPECT_THAT(thread_->report().error, HasSubstr("link to the peer broke"));
}

TEST_F(DrainTest, ARefusalLeavesThisBoxForwarding) {
    ASSERT_TRUE(thread_->drain_to(kLoopback, peer_port_).ok);
    auto link = accept_within(*listener_);
    ASSERT_TRUE(link && next_of<Hello>(*link));
    link->send(Refuse{"the boxes disagree on workers: here 2, peer 4"});
    link->flush();
    ASSERT_TRUE(eventually([&] { return thread_->report().state == "failed"; }));
    EXPECT_FALSE(shared_.ha_handing_over.load());
    EXPECT_EQ(shared_.ha_bulk_generation.load(), 0u);
    EXPECT_THAT(thread_->report().error, HasSubstr("refused by the peer: the boxes disagree"));
}

TEST_F(DrainTest, AMoveHoldsTheSubscribersThenPassesThemToThePeersMacsAndRunsTheHook) {
    {
        const std::lock_guard lock(lock_);
        config_.ha.migrate_hook = "/bin/true";
    }
    ASSERT_TRUE(thread_->migrate_to(Ipv4Addr{100, 64, 0, 0}, 24, kLoopback, peer_port_).ok);
    auto link = accept_within(*listener_);
    ASSERT_TRUE(link);
    const auto offered = next_of<Hello>(*link);
    ASSERT_TRUE(offered);
    EXPECT_EQ(term_value(offered->terms, "offer.subscribers"), "100.64.0.0/24");
    link->send(
        Hello{HaRole::none, kWorkers,
              handover_terms(kOtherBox, kWorkers) +
                  "\noffer.inside_mac=02:00:00:00:c0:01\noffer.outside_mac=02:00:00:00:c0:02",
              0});
    link->flush();
    ASSERT_TRUE(eventually([&] { return shared_.ha_bulk_generation.load() == 1; }));
    // The box keeps forwarding: only the moving subscribers are held.
    EXPECT_FALSE(shared_.ha_handing_over.load());
    workers_stream(1, 2);
    ASSERT_TRUE(next_of<BulkDone>(*link));
    link->send(HandoverDone{2, 0});
    link->flush();
    ASSERT_TRUE(eventually([&] { return !thread_->report().hook.empty(); }, 5s));
    const HandoverReport r = thread_->report();
    EXPECT_EQ(r.state, "done");
    EXPECT_EQ(r.migrations_out, 1u);
    EXPECT_EQ(r.hook, "exit 0");
    EXPECT_FALSE(shared_.ha_standby.load());
    const std::lock_guard lock(lock_);
    ASSERT_EQ(moves_.size(), 2u);
    EXPECT_FALSE(moves_[0].first.moved); // held
    EXPECT_FALSE(moves_[0].second);
    EXPECT_TRUE(moves_[1].first.moved); // then moved, with the peer's MACs
    EXPECT_EQ(moves_[1].first.peer_inside_mac, *MacAddr::parse("02:00:00:00:c0:01"));
    EXPECT_EQ(moves_[1].first.peer_outside_mac, *MacAddr::parse("02:00:00:00:c0:02"));
    EXPECT_EQ(moves_[1].first.length, 24);
}

} // namespace
} // namespace ephemera::ha
