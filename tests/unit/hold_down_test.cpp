// The hold-down queue (hold_down.hpp): FIFO order across chunk boundaries, nothing released
// before its time, capacity from donated chunks, and chunks reused as the queue drains.
#include "ephemera/hold_down.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ephemera {
namespace {

HeldPort port(std::uint32_t n, Tick at) {
    return HeldPort{n, static_cast<std::uint16_t>(n % 7), 0, at};
}

TEST(HoldDownQueue, ReleasesInOrderAcrossChunksAndNeverEarly) {
    HoldChunks a(HoldChunk::kPorts * 2 + 3); // three chunks
    HoldChunks b(10);                        // one more
    HoldDownQueue q;
    q.donate(a);
    q.donate(b);
    EXPECT_EQ(q.capacity(), 4 * HoldChunk::kPorts);
    const std::uint32_t n = 4 * HoldChunk::kPorts;
    for (std::uint32_t i = 0; i < n; ++i) {
        q.push(port(i, 100 + i / 100)); // release times rise with the push order
    }
    EXPECT_EQ(q.size(), n);
    std::vector<std::uint32_t> got;
    const auto take = [&](Tick now, std::uint32_t budget) {
        return q.release_due(now, budget, [&](const HeldPort& p) {
            EXPECT_LE(p.release_at, now) << "released before its time";
            got.push_back(p.slot_and_proto);
        });
    };
    EXPECT_EQ(take(99, 1000), 0u);
    EXPECT_EQ(take(100, 1000), 100u); // the first hundred are due at 100
    EXPECT_EQ(take(105, 50), 50u);    // the budget holds
    EXPECT_EQ(take(105, 1000), 450u);
    EXPECT_EQ(take(1000, 100000), n - 600);
    ASSERT_EQ(got.size(), n);
    for (std::uint32_t i = 0; i < n; ++i) {
        ASSERT_EQ(got[i], i) << "out of order";
    }
    EXPECT_EQ(q.size(), 0u);
    // Drained chunks are free again: the full capacity can be used once more.
    for (std::uint32_t i = 0; i < n; ++i) {
        q.push(port(i, 2000));
    }
    EXPECT_EQ(take(2000, 100000), n);
}

TEST(HoldDownQueue, InterleavedPushAndReleaseReusesChunks) {
    HoldChunks a(HoldChunk::kPorts * 2); // two chunks only
    HoldDownQueue q;
    q.donate(a);
    std::uint32_t next = 0;
    std::uint32_t expect = 0;
    for (Tick t = 0; t < 100; ++t) {
        for (int k = 0; k < 300; ++k) { // 300 a tick, each held 2 ticks: at most 900 queued
            q.push(port(next++, t + 2));
        }
        q.release_due(t, 100000, [&](const HeldPort& p) {
            ASSERT_EQ(p.slot_and_proto, expect++);
            ASSERT_LE(p.release_at, t);
        });
        ASSERT_LE(q.size(), q.capacity());
    }
}

} // namespace
} // namespace ephemera
