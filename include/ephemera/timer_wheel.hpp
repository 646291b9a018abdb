// A hashed timer wheel over session positions, one slot per tick, 65536 slots (4096 s at 16
// ticks per second). Refreshing a session costs nothing here: a session is scheduled once, and
// when its slot comes round the owner checks whether it has really timed out; if not, it is
// scheduled again for its new due time ("lazy" expiry, as Linux conntrack's and VPP's
// scavengers do). Due times past the horizon are clamped to it and re-checked then.
//
// Work is bounded by the caller's budget, so a worker never stalls on a slot with many
// entries: it resumes where it stopped on the next call. Lists are doubly linked so that a
// session whose timeout gets shorter (a TCP session going transitory) can be moved earlier.
#pragma once

#include "ephemera/table_memory.hpp"
#include "ephemera/types.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ephemera {

class TimerWheel {
public:
    static constexpr std::uint32_t kSlots = 1u << 16;
    static constexpr std::uint32_t kNone = 0xffffffffu;

    // `ids` is the number of distinct ids (session positions) that can be scheduled.
    TimerWheel(std::uint32_t ids, Tick start)
        : heads_(kSlots, kNone), next_(ids, kNone), prev_(ids, kNone), cursor_(start) {}

    // Schedules `id` (not currently scheduled) to come due at `due`.
    void schedule(std::uint32_t id, Tick due) {
        if (static_cast<std::int32_t>(due - cursor_) < 0) {
            due = cursor_;
        } else if (due - cursor_ >= kSlots) {
            due = cursor_ + kSlots - 1;
        }
        const std::uint32_t slot = due & (kSlots - 1);
        std::uint32_t& head = heads_[slot];
        next_[id] = head;
        prev_[id] = kHeadOf | slot;
        if (head != kNone) {
            prev_[head] = id;
        }
        head = id;
        ++scheduled_;
    }

    [[nodiscard]] bool is_scheduled(std::uint32_t id) const { return prev_[id] != kNone; }

    void unschedule(std::uint32_t id) {
        const std::uint32_t prev = prev_[id];
        const std::uint32_t next = next_[id];
        if (prev == kNone) {
            return;
        }
        if (prev & kHeadOf) {
            heads_[prev & (kSlots - 1)] = next;
        } else {
            next_[prev] = next;
        }
        if (next != kNone) {
            prev_[next] = prev;
        }
        next_[id] = kNone;
        prev_[id] = kNone;
        --scheduled_;
    }

    void reschedule(std::uint32_t id, Tick due) {
        unschedule(id);
        schedule(id, due);
    }

    // Calls on_due(id) for ids whose slot time is <= now, at most `budget` of them; returns
    // how many it called. on_due may schedule() the id again (for a later tick).
    //
    // Ending a session reads lines at random places, each named by the one before (its entry
    // names its bucket and its mapping; the mapping names its bucket, its subscriber and its
    // port's index entry): a chain of misses at a million sessions. Due ids are taken off the
    // wheel up to kChunk at a time and run through a software pipeline of kPrefetchStages
    // stages: prefetch(id, 0) asks for an id's first lines, prefetch(id, 1) reads them
    // kDistance ids later and asks for the next, and so on; on_due(id) runs kDistance ids
    // after the last stage. Each stage's lines thus have kDistance sessions' work to arrive,
    // and a chunk's misses overlap with its work instead of stalling it.
    static constexpr std::uint32_t kChunk = 64;
    static constexpr std::uint32_t kDistance = 4;
    static constexpr std::uint32_t kPrefetchStages = 3;
    template <typename Prefetch, typename OnDue>
    std::uint32_t advance(Tick now, std::uint32_t budget, Prefetch&& prefetch, OnDue&& on_due) {
        constexpr std::uint32_t kLag = kPrefetchStages * kDistance;
        std::uint32_t done = 0;
        std::uint32_t ids[kChunk];
        while (done < budget) {
            const std::uint32_t n = take_due(now, std::min(kChunk, budget - done), ids);
            if (n == 0) {
                break;
            }
            // Step i: stage s for the id s * kDistance behind, on_due for the id kLag behind,
            // each where that id exists. Between filling and draining every one does.
            const auto step = [&](std::uint32_t i) {
                for (std::uint32_t stage = 0; stage < kPrefetchStages; ++stage) {
                    const std::uint32_t behind = stage * kDistance;
                    if (i >= behind && i - behind < n) {
                        prefetch(ids[i - behind], stage);
                    }
                }
                if (i >= kLag) {
                    on_due(ids[i - kLag]); // may schedule it again, always for a later tick
                }
            };
            std::uint32_t i = 0;
            for (; i < std::min(n, kLag); ++i) {
                step(i);
            }
            for (; i < n; ++i) { // i >= kLag: no test needed
                static_assert(kPrefetchStages == 3);
                prefetch(ids[i], 0);
                prefetch(ids[i - kDistance], 1);
                prefetch(ids[i - 2 * kDistance], 2);
                on_due(ids[i - kLag]);
            }
            for (; i < n + kLag; ++i) {
                step(i);
            }
            done += n;
        }
        return done;
    }

    [[nodiscard]] std::uint32_t scheduled() const { return scheduled_; }
    [[nodiscard]] Tick cursor() const { return cursor_; }

private:
    // Takes up to `want` due ids off the wheel into `ids`; how many.
    std::uint32_t take_due(Tick now, std::uint32_t want, std::uint32_t* ids) {
        std::uint32_t n = 0;
        while (n < want && static_cast<std::int32_t>(now - cursor_) >= 0) {
            const std::uint32_t head = heads_[cursor_ & (kSlots - 1)];
            if (head == kNone) {
                if (now == cursor_) {
                    break; // stay on the current tick: it may still get entries
                }
                ++cursor_;
                continue;
            }
            unschedule(head);
            ids[n++] = head;
        }
        return n;
    }

    // prev_ of a list's first entry is kHeadOf | its slot; kNone means "not scheduled".
    static constexpr std::uint32_t kHeadOf = 0x80000000u;

    // Read at random session positions (on huge pages where the kernel allows: table_memory.hpp).
    RecordVector<std::uint32_t> heads_;
    RecordVector<std::uint32_t> next_;
    RecordVector<std::uint32_t> prev_;
    Tick cursor_;
    std::uint32_t scheduled_ = 0;
};

} // namespace ephemera
