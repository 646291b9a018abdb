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

#include "ephemera/types.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
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
    // how many it called. on_due may schedule() the id again (for a later tick). A batch at a
    // time: up to kBatch due ids are taken off the wheel, handed to prefetch(ids) together,
    // then to on_due one by one. Ending a session reads several lines at random places (its
    // entry, its buckets, its mapping, its port's index entry), each a cache miss at a million
    // sessions; asked for a batch ahead, those misses overlap instead of following one another.
    static constexpr std::uint32_t kBatch = 16;
    template <typename Prefetch, typename OnDue>
    std::uint32_t advance(Tick now, std::uint32_t budget, Prefetch&& prefetch, OnDue&& on_due) {
        std::uint32_t done = 0;
        std::uint32_t ids[kBatch];
        while (done < budget) {
            std::uint32_t n = 0;
            const std::uint32_t want = std::min(kBatch, budget - done);
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
            if (n == 0) {
                break;
            }
            prefetch(std::span<const std::uint32_t>(ids, n));
            for (std::uint32_t i = 0; i < n; ++i) {
                on_due(ids[i]); // may schedule ids[i] again, always for a later tick
            }
            done += n;
        }
        return done;
    }

    [[nodiscard]] std::uint32_t scheduled() const { return scheduled_; }
    [[nodiscard]] Tick cursor() const { return cursor_; }

private:
    // prev_ of a list's first entry is kHeadOf | its slot; kNone means "not scheduled".
    static constexpr std::uint32_t kHeadOf = 0x80000000u;

    std::vector<std::uint32_t> heads_;
    std::vector<std::uint32_t> next_;
    std::vector<std::uint32_t> prev_;
    Tick cursor_;
    std::uint32_t scheduled_ = 0;
};

} // namespace ephemera
