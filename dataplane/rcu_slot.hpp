// One object the control thread publishes and every worker reads, reclaimed with rte_rcu_qsbr:
// the running config today. Who does what:
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
#include <cstdint>
#include <memory>
#include <thread>

namespace ephemera {

template <typename T>
class RcuSlot {
public:
    RcuSlot() = default;
    RcuSlot(const RcuSlot&) = delete;
    RcuSlot& operator=(const RcuSlot&) = delete;

    // The QSBR variable the workers are registered with (null: no workers, no waiting).
    void attach(rte_rcu_qsbr* qsbr) { qsbr_ = qsbr; }

    // Worker `thread_id`: the newest object (null: none published yet). `between` runs
    // between the two steps and does nothing in the dataplane; a test widens the gap there,
    // where a scheduler could open it, so that a wrong order shows at once.
    struct Nothing {
        void operator()() const {}
    };
    template <typename Between = Nothing>
    const T* latch(unsigned thread_id, Between&& between = Between{}) const {
        if (qsbr_ != nullptr) {
            rte_rcu_qsbr_quiescent(qsbr_, thread_id);
        }
        between();
        return newest_.load(std::memory_order_acquire);
    }

    // Control thread only. Returns the object `next` replaced, safe to free.
    std::unique_ptr<T> publish(std::unique_ptr<T> next) {
        newest_.store(next.get(), std::memory_order_release);
        if (qsbr_ != nullptr) {
            // rte_rcu_qsbr_synchronize() would spin; yielding instead lets a worker that
            // shares this CPU (lcores mapped onto fewer CPUs, as in the labs) reach its
            // quiescent state rather than wait out a scheduler slice.
            const std::uint64_t token = rte_rcu_qsbr_start(qsbr_);
            while (rte_rcu_qsbr_check(qsbr_, token, false) == 0) {
                std::this_thread::yield();
            }
        }
        std::swap(owned_, next);
        return next;
    }

    // Control thread only: the newest object (null: none published yet).
    [[nodiscard]] const T* newest() const { return owned_.get(); }

private:
    rte_rcu_qsbr* qsbr_ = nullptr;
    std::atomic<const T*> newest_{nullptr};
    std::unique_ptr<T> owned_; // what newest_ points at
};

} // namespace ephemera
