// How long a worker's queues went unpolled at worst: the longest poll-loop iteration, and the
// longest of the iterations in which the worker took up a new plan (a config change), over a
// window that the control side may restart. Preemption by the host counts too (an iteration
// spans it): that is what the queues see. Beside them, the longest time spent taking up a plan
// itself (the latch and Translator::apply): the work a config change costs the worker, which
// a preemption on a shared host falls into only by rare chance.
//
// Who writes what:
//   worker     note() after every iteration, with that iteration's TSC cycles: the only writer
//              of the maxima, the plan count and the window start. At its next note() after a
//              reset request it clears the maxima, starts a new window and echoes the request
//              (release), so a requester that sees its ticket honoured reads only figures of
//              the new window from then on.
//   requester  request_reset() (the telemetry thread; one at a time, e.g. under a lock), then
//              reset_honoured(ticket); the figures at any time (relaxed loads).
// The maxima are stored as they grow, not every iteration: an iteration costs the worker one
// relaxed load of the request and a compare.
#pragma once

#include <atomic>
#include <cstdint>

namespace ephemera {

class PauseMeter {
public:
    // ---- worker side ----
    // One iteration of `cycles` that ended at TSC `end`; `take_up`: the cycles it spent taking
    // up a new plan, 0 when it took none.
    void note(std::uint64_t cycles, std::uint64_t end, std::uint64_t take_up) {
        const bool took_plan = take_up != 0;
        if (cycles > longest_.load(std::memory_order_relaxed)) {
            longest_.store(cycles, std::memory_order_relaxed);
        }
        if (took_plan) {
            plans_.store(plans_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            if (cycles > longest_plan_.load(std::memory_order_relaxed)) {
                longest_plan_.store(cycles, std::memory_order_relaxed);
            }
            if (take_up > longest_take_up_.load(std::memory_order_relaxed)) {
                longest_take_up_.store(take_up, std::memory_order_relaxed);
            }
        }
        const std::uint32_t requested = requested_.load(std::memory_order_relaxed);
        if (requested != honoured_.load(std::memory_order_relaxed)) {
            longest_.store(0, std::memory_order_relaxed);
            longest_plan_.store(0, std::memory_order_relaxed);
            longest_take_up_.store(0, std::memory_order_relaxed);
            plans_.store(0, std::memory_order_relaxed);
            window_start_.store(end, std::memory_order_relaxed);
            honoured_.store(requested, std::memory_order_release);
        }
    }
    // Before the first iteration: the window starts at `now` (TSC).
    void start(std::uint64_t now) { window_start_.store(now, std::memory_order_relaxed); }

    // ---- requester side ----
    // Asks for a new window; returns the ticket that reset_honoured() waits for.
    std::uint32_t request_reset() {
        const std::uint32_t ticket = requested_.load(std::memory_order_relaxed) + 1;
        requested_.store(ticket, std::memory_order_relaxed);
        return ticket;
    }
    [[nodiscard]] bool reset_honoured(std::uint32_t ticket) const {
        return honoured_.load(std::memory_order_acquire) == ticket;
    }

    // In TSC cycles, since the window started.
    [[nodiscard]] std::uint64_t longest() const { return longest_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t longest_with_plan() const {
        return longest_plan_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t longest_take_up() const {
        return longest_take_up_.load(std::memory_order_relaxed);
    }
    // Plans taken up in the window.
    [[nodiscard]] std::uint64_t plans() const { return plans_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t window_start() const {
        return window_start_.load(std::memory_order_relaxed);
    }

private:
    // Written by the worker; its own cache line, so that the requester's line is not pulled
    // away from the telemetry thread every time a maximum grows, and the other way round.
    alignas(64) std::atomic<std::uint64_t> longest_{0};
    std::atomic<std::uint64_t> longest_plan_{0};
    std::atomic<std::uint64_t> longest_take_up_{0};
    std::atomic<std::uint64_t> plans_{0};
    std::atomic<std::uint64_t> window_start_{0};
    std::atomic<std::uint32_t> honoured_{0};
    // Written by the requester.
    alignas(64) std::atomic<std::uint32_t> requested_{0};
};

} // namespace ephemera
