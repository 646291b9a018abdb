// The worker's pause meter (dataplane/pause_meter.hpp): maxima kept as iterations are noted, a
// reset that takes effect at the worker's next iteration and only then, and a requester that,
// once its reset is honoured, never reads a figure of the window before.
#include "../../dataplane/pause_meter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace ephemera {
namespace {

TEST(PauseMeter, KeepsTheLongestIterationTheLongestThatTookAPlanAndTheLongestTakeUp) {
    PauseMeter m;
    m.start(1000);
    EXPECT_EQ(m.window_start(), 1000u);
    m.note(100, 1100, 0);
    m.note(50, 1150, 0);
    EXPECT_EQ(m.longest(), 100u);
    EXPECT_EQ(m.longest_with_plan(), 0u);
    EXPECT_EQ(m.plans(), 0u);
    m.note(70, 1220, 9);
    EXPECT_EQ(m.longest(), 100u);
    EXPECT_EQ(m.longest_with_plan(), 70u);
    m.note(300, 1520, 4);
    m.note(400, 1920, 0);
    EXPECT_EQ(m.longest(), 400u);
    EXPECT_EQ(m.longest_with_plan(), 300u);
    // The longest take-up, not the take-up of the longest iteration with a plan.
    EXPECT_EQ(m.longest_take_up(), 9u);
    EXPECT_EQ(m.plans(), 2u);
    EXPECT_EQ(m.window_start(), 1000u);
}

TEST(PauseMeter, ResetTakesEffectAtTheNextIterationOnly) {
    PauseMeter m;
    m.start(0);
    m.note(5000, 5000, 30);
    const std::uint32_t ticket = m.request_reset();
    EXPECT_FALSE(m.reset_honoured(ticket));
    EXPECT_EQ(m.longest(), 5000u); // the worker has not looked yet
    // The iteration that sees the request still belongs to the old window.
    m.note(7000, 12000, 0);
    EXPECT_TRUE(m.reset_honoured(ticket));
    EXPECT_EQ(m.longest(), 0u);
    EXPECT_EQ(m.longest_with_plan(), 0u);
    EXPECT_EQ(m.longest_take_up(), 0u);
    EXPECT_EQ(m.plans(), 0u);
    EXPECT_EQ(m.window_start(), 12000u);
    m.note(20, 12020, 0);
    EXPECT_EQ(m.longest(), 20u);
    // A second request gets its own ticket; the first stays honoured in the past only.
    const std::uint32_t second = m.request_reset();
    EXPECT_NE(second, ticket);
    EXPECT_FALSE(m.reset_honoured(second));
    m.note(1, 12021, 0);
    EXPECT_TRUE(m.reset_honoured(second));
    EXPECT_EQ(m.longest(), 0u);
}

// A worker thread notes short iterations and, when asked, one long one; the requester sees the
// long one, resets, and from the moment its reset is honoured reads only short ones.
TEST(PauseMeter, AfterAnHonouredResetOnlyTheNewWindowIsSeen) {
    constexpr std::uint64_t kShort = 10;
    constexpr std::uint64_t kLong = 1'000'000;
    PauseMeter m;
    std::atomic<bool> stop{false};
    std::atomic<int> slow_requests{0};
    std::thread worker([&] {
        std::uint64_t now = 0;
        int slow_done = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const bool slow = slow_done < slow_requests.load(std::memory_order_acquire);
            const std::uint64_t cycles = slow ? kLong : kShort;
            slow_done += slow ? 1 : 0;
            now += cycles;
            m.note(cycles, now, 0);
        }
    });
    for (int round = 1; round <= 50; ++round) {
        slow_requests.store(round, std::memory_order_release);
        while (m.longest() < kLong) {
            std::this_thread::yield();
        }
        const std::uint32_t ticket = m.request_reset();
        while (!m.reset_honoured(ticket)) {
            std::this_thread::yield();
        }
        ASSERT_LE(m.longest(), kShort) << "round " << round;
        ASSERT_GT(m.window_start(), 0u);
    }
    stop.store(true);
    worker.join();
}

} // namespace
} // namespace ephemera
