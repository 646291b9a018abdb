// RcuSlot (dataplane/rcu_slot.hpp) under stress: the control side publishes in a tight loop
// while workers latch and keep using what they latched, as a worker uses its config between
// two housekeepings. A replaced object is poisoned the moment publish() hands it back; a
// worker that ever reads a poisoned object holds one it was promised to no longer hold. Under
// ASan the graveyard's older objects are freed for real, so a late read is also a
// use-after-free report. With the report-after-load order this fails within a second.
#include "../../dataplane/rcu_slot.hpp"

#include <gtest/gtest.h>

#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_random.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

namespace ephemera {
namespace {

constexpr std::uint64_t kAlive = 0xa11ea11ea11ea11eull;
constexpr std::uint64_t kPoisoned = 0xdeaddeaddeaddeadull;

struct Published {
    explicit Published(std::uint64_t g) : generation(g) {
        for (auto& word : payload) {
            word = g;
        }
    }
    std::atomic<std::uint64_t> canary{kAlive};
    std::uint64_t generation;
    std::uint64_t payload[14];
};

struct QsbrDeleter {
    void operator()(rte_rcu_qsbr* q) const { rte_free(q); }
};

TEST(RcuSlot, NoWorkerEverHoldsAReplacedObject) {
    constexpr unsigned kWorkers = 1; // with the publisher, one thread per CPU here
    std::unique_ptr<rte_rcu_qsbr, QsbrDeleter> qsbr(static_cast<rte_rcu_qsbr*>(
        rte_zmalloc("rcu_slot_test", rte_rcu_qsbr_get_memsize(kWorkers), RTE_CACHE_LINE_SIZE)));
    ASSERT_NE(qsbr, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(qsbr.get(), kWorkers), 0);
    RcuSlot<Published> slot;
    slot.attach(qsbr.get());
    slot.publish(std::make_unique<Published>(0));

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> poisoned_reads{0};
    std::atomic<std::uint64_t> torn_reads{0};
    std::atomic<std::uint64_t> latches{0};
    std::vector<std::thread> workers;
    for (unsigned id = 0; id < kWorkers; ++id) {
        workers.emplace_back([&, id] {
            rte_rcu_qsbr_thread_register(qsbr.get(), id);
            rte_rcu_qsbr_thread_online(qsbr.get(), id);
            while (!stop.load(std::memory_order_relaxed)) {
                // Widen the gap between the latch's two steps. Yielding there hands the CPU
                // to the publisher when both share one (a loaded machine); spinning covers
                // the case where each has its own.
                const Published* p = slot.latch(id, [] {
                    std::this_thread::yield();
                    for (std::uint64_t spin = rte_rand_max(256); spin > 0; --spin) {
                        rte_pause();
                    }
                });
                latches.fetch_add(1, std::memory_order_relaxed);
                // Use it for a while, as a worker uses its config for a few bursts: long
                // enough for a publisher that wrongly thinks it is done with the object to
                // poison it under us.
                for (int k = 0; k < 32; ++k) {
                    rte_pause();
                    if (k == 16) {
                        std::this_thread::yield();
                    }
                    if (p->canary.load(std::memory_order_acquire) != kAlive) {
                        poisoned_reads.fetch_add(1, std::memory_order_relaxed);
                        break;
                    }
                    if (p->payload[k % 14] != p->generation) {
                        torn_reads.fetch_add(1, std::memory_order_relaxed);
                    }
                }
            }
            rte_rcu_qsbr_thread_offline(qsbr.get(), id);
            rte_rcu_qsbr_thread_unregister(qsbr.get(), id);
        });
    }

    // Replaced objects are poisoned at once and freed a while later (not at once, so that,
    // without ASan, the allocator does not hand the same memory straight back and revive
    // the canary).
    std::deque<std::unique_ptr<Published>> graveyard;
    std::uint64_t generation = 1;
    // Five seconds, or on a loaded machine (the publisher waits for the workers' quiescent
    // states, so it goes at their pace) as long as it takes to have stressed the slot enough,
    // up to a minute.
    const auto start = std::chrono::steady_clock::now();
    const auto stressed = [&] { return generation > 1000 && latches.load() > 1000; };
    while (poisoned_reads.load() == 0 && generation < 200000) {
        const auto elapsed = std::chrono::steady_clock::now() - start;
        if (elapsed >= std::chrono::seconds(60) ||
            (elapsed >= std::chrono::seconds(5) && stressed())) {
            break;
        }
        for (int i = 0; i < 64; ++i) {
            // A publisher that always published right after a latch would stay in phase with
            // the worker and never land between its two steps: wait a random while first
            // (yielding, for when the worker shares this CPU).
            for (std::uint64_t y = rte_rand_max(3); y > 0; --y) {
                std::this_thread::yield();
            }
            for (std::uint64_t spin = rte_rand_max(512); spin > 0; --spin) {
                rte_pause();
            }
            std::unique_ptr<Published> old =
                slot.publish(std::make_unique<Published>(generation++));
            old->canary.store(kPoisoned, std::memory_order_release);
            graveyard.push_back(std::move(old));
            if (graveyard.size() > 4096) {
                graveyard.pop_front();
            }
        }
    }
    stop = true;
    for (auto& t : workers) {
        t.join();
    }
    EXPECT_EQ(poisoned_reads.load(), 0u) << "a worker used an object after it was replaced";
    EXPECT_EQ(torn_reads.load(), 0u);
    EXPECT_GT(generation, 1000u) << "too few publications to stress anything";
    std::printf("%llu publications, %llu latches\n", static_cast<unsigned long long>(generation),
                static_cast<unsigned long long>(latches.load()));
    EXPECT_GT(latches.load(), 1000u);
}

} // namespace
} // namespace ephemera
