// Objects the control thread publishes and workers read, reclaimed with rte_rcu_qsbr: each
// worker's plan (worker_plan.hpp). Who does what:
//   control thread  publish(): makes an object the newest, waits until every registered
//                   worker has reported a quiescent state since, then hands back the one it
//                   replaced, which no worker holds any more, to be freed.
//   worker          latch(), between bursts: reports a quiescent state, then takes the
//                   newest object, which it may use until its next latch().
// The order inside latch() is what makes freeing safe. Had the worker loaded first and then
// reported, a publish landing between the two would count that report as "past the change"
// while the worker still held the old object, and the control thread would free it under
// the worker (use after free until the next latch).
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace ephemera {

// One slot per reader (worker): each worker latches its own object, and one publication
// replaces any number of them with one wait. (RcuSlot below is the one-slot case.)
template <typename T>
class RcuSlots {
public:
    explicit RcuSlots(std::size_t readers = 1) : newest_(readers), owned_(readers) {}
    RcuSlots(const RcuSlots&) = delete;
    RcuSlots& operator=(const RcuSlots&) = delete;

    // The QSBR variable the workers are registered with (null: no workers, no waiting).
    void attach(rte_rcu_qsbr* qsbr) { qsbr_ = qsbr; }
    [[nodiscard]] std::size_t size() const { return owned_.size(); }
    // Before anything is published: one slot per reader.
    void resize(std::size_t readers) {
        std::vector<std::atomic<const T*>> newest(readers);
        newest_.swap(newest);
        owned_.clear();
        owned_.resize(readers);
    }

    // Worker `thread_id`, reading slot `slot`: the newest object (null: none published yet).
    // `between` runs between the two steps and does nothing in the dataplane; a test widens
    // the gap there, where a scheduler could open it, so that a wrong order shows at once.
    struct Nothing {
        void operator()() const {}
    };
    template <typename Between = Nothing>
    const T* latch(unsigned thread_id, std::size_t slot, Between&& between = Between{}) const {
        if (qsbr_ != nullptr) {
            rte_rcu_qsbr_quiescent(qsbr_, thread_id);
        }
        between();
        return newest_[slot].load(std::memory_order_acquire);
    }

    // Control thread only. Makes next[i] the newest object of slot i (a null next[i] leaves
    // slot i alone), waits until every worker has been quiescent since, and returns the
    // objects replaced, safe to free.
    std::vector<std::unique_ptr<T>> publish(std::vector<std::unique_ptr<T>> next) {
        for (std::size_t i = 0; i < next.size() && i < owned_.size(); ++i) {
            if (next[i] != nullptr) {
                newest_[i].store(next[i].get(), std::memory_order_release);
            }
        }
        if (qsbr_ != nullptr) {
            // rte_rcu_qsbr_synchronize() would spin; yielding instead lets a worker that
            // shares this CPU (lcores mapped onto fewer CPUs, as in the labs) reach its
            // quiescent state rather than wait out a scheduler slice.
            const std::uint64_t token = rte_rcu_qsbr_start(qsbr_);
            while (rte_rcu_qsbr_check(qsbr_, token, false) == 0) {
                std::this_thread::yield();
            }
        }
        for (std::size_t i = 0; i < next.size() && i < owned_.size(); ++i) {
            if (next[i] != nullptr) {
                std::swap(owned_[i], next[i]);
            }
        }
        return next;
    }

    // Control thread only: slot i's newest object (null: none published yet).
    [[nodiscard]] const T* newest(std::size_t slot) const { return owned_[slot].get(); }

private:
    rte_rcu_qsbr* qsbr_ = nullptr;
    std::vector<std::atomic<const T*>> newest_;
    std::vector<std::unique_ptr<T>> owned_; // what newest_ points at
};

// One object every worker reads.
template <typename T>
class RcuSlot {
public:
    void attach(rte_rcu_qsbr* qsbr) { slots_.attach(qsbr); }

    template <typename Between = typename RcuSlots<T>::Nothing>
    const T* latch(unsigned thread_id, Between&& between = Between{}) const {
        return slots_.latch(thread_id, 0, std::forward<Between>(between));
    }
    std::unique_ptr<T> publish(std::unique_ptr<T> next) {
        std::vector<std::unique_ptr<T>> one;
        one.push_back(std::move(next));
        return std::move(slots_.publish(std::move(one)).front());
    }
    [[nodiscard]] const T* newest() const { return slots_.newest(0); }

private:
    RcuSlots<T> slots_{1};
};

} // namespace ephemera
