// The telemetry mailbox handshake (dataplane/mailbox.hpp): a request is served, a cancelled
// one is dropped by the worker, and a requester never rewrites a request the worker still
// reads, also when it gave up waiting for it.
#include "../../dataplane/mailbox.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace ephemera {
namespace {

using namespace std::chrono_literals;

TEST(Mailbox, PostedRequestIsServedAndAnswered) {
    Mailbox box;
    EXPECT_TRUE(box.idle());
    EXPECT_EQ(box.pending(), nullptr);
    const std::uint32_t ticket = box.post({Mailbox::Kind::sessions, {}, 7});
    EXPECT_FALSE(box.idle());
    EXPECT_FALSE(box.answered(ticket));
    const Mailbox::Request* r = box.pending();
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->kind, Mailbox::Kind::sessions);
    EXPECT_EQ(r->limit, 7u);
    box.complete();
    EXPECT_TRUE(box.answered(ticket));
    EXPECT_TRUE(box.idle());
    EXPECT_EQ(box.pending(), nullptr);
}

TEST(Mailbox, CancelledRequestEndsTheWalkWhereItStands) {
    Mailbox box;
    const std::uint32_t ticket = box.post({Mailbox::Kind::flush, {}, 0});
    ASSERT_NE(box.pending(), nullptr);
    box.walking = true; // the worker is part way through a walk
    box.cursor = 4096;
    box.cancel(ticket);
    EXPECT_FALSE(box.idle()); // until the worker looks again
    EXPECT_EQ(box.pending(), nullptr);
    EXPECT_FALSE(box.walking);
    EXPECT_TRUE(box.idle());
    // The next request starts afresh.
    const std::uint32_t next = box.post({Mailbox::Kind::mappings, {}, 1});
    EXPECT_NE(next, ticket);
    ASSERT_NE(box.pending(), nullptr);
    EXPECT_EQ(box.pending()->kind, Mailbox::Kind::mappings);
}

TEST(Mailbox, AskAllWaitsForEveryWorker) {
    Mailbox a;
    Mailbox b;
    std::atomic<bool> stop{false};
    std::thread worker([&] {
        while (!stop.load()) {
            for (Mailbox* box : {&a, &b}) {
                if (box->pending() != nullptr) {
                    box->flushed = 42;
                    box->complete();
                }
            }
            std::this_thread::sleep_for(50us);
        }
    });
    Mailbox* boxes[] = {&a, &b};
    EXPECT_TRUE(ask_all(boxes, {Mailbox::Kind::flush, {}, 0}, 2000ms));
    EXPECT_EQ(a.flushed, 42u);
    EXPECT_EQ(b.flushed, 42u);
    stop = true;
    worker.join();
}

TEST(Mailbox, AskAllGivesUpAndCancelsWhenAWorkerDoesNotAnswer) {
    Mailbox box;
    Mailbox* boxes[] = {&box};
    EXPECT_FALSE(ask_all(boxes, {Mailbox::Kind::sessions, {}, 5}, 20ms));
    // Not idle: the worker has not looked yet. Once it does, the request is dropped.
    EXPECT_FALSE(box.idle());
    EXPECT_EQ(box.pending(), nullptr);
    EXPECT_TRUE(box.idle());
}

// A slow worker walks each request over many steps and checks that what it reads stays what
// was posted; requesters time out on it again and again. Before cancellation existed, the
// next requester rewrote the request under the walking worker.
TEST(Mailbox, TimedOutRequestIsNeverRewrittenWhileTheWorkerReadsIt) {
    Mailbox box;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> walks{0};
    std::atomic<std::uint64_t> torn{0};
    std::thread worker([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            const Mailbox::Request* r = box.pending();
            if (r == nullptr) {
                std::this_thread::yield();
                continue;
            }
            if (!box.walking) {
                box.walking = true;
                box.cursor = 0;
            }
            const std::size_t limit = r->limit;
            std::this_thread::sleep_for(200us); // one housekeeping's step of a long walk
            if (r->limit != limit || r->filter.external_port != limit) {
                torn.fetch_add(1);
            }
            if (++box.cursor == 8) {
                walks.fetch_add(1);
                box.complete();
            }
        }
    });
    Mailbox* boxes[] = {&box};
    std::size_t asked = 0;
    std::size_t answered = 0;
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < until) {
        ++asked;
        SessionFilter filter;
        filter.external_port = static_cast<std::uint16_t>(asked); // read back by the worker
        // Some requests wait long enough for the walk (8 x 200 us), most do not.
        const auto timeout = asked % 4 == 0 ? 50ms : 1ms;
        answered += ask_all(boxes, {Mailbox::Kind::sessions, filter, asked}, timeout) ? 1 : 0;
    }
    stop = true;
    worker.join();
    EXPECT_EQ(torn.load(), 0u);
    EXPECT_GT(answered, 0u);
    EXPECT_GT(asked, answered); // some did time out: the case under test happened
}

} // namespace
} // namespace ephemera
