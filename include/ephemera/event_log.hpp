// The worker's end of its NAT event ring (nat_event.hpp, docs/logging.md): the slow path fills
// records into a small staging array, and the translator hands them over with one
// single-producer burst enqueue at the end of each call (flush()), so that the ring's tail,
// which the logging thread polls from another core, moves once a burst rather than once a
// record. A full ring never makes the worker wait: what does not fit is counted in
// log_records_dropped and the worker moves on. The logging thread is the ring's only consumer.
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/nat_event.hpp"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <array>
#include <cstdint>

namespace ephemera {

class EventLog {
public:
    // Exhaustion and quota records are rate limited per reason: a subscriber hammering a full
    // pool would otherwise log a record per packet (what floods collectors).
    static constexpr std::uint64_t kRefusalIntervalMs = 1000;
    enum class RefusalSlot : std::uint8_t {
        ports,
        sessions,
        subscribers,
        subscriber_quota,
        count_
    };

    // `ring`: created for the worker by the control thread, nullptr: logging off for good.
    void attach(rte_ring* ring, WorkerId worker) {
        ring_ = ring;
        worker_ = worker;
    }
    // The kinds the plan in force logs (bit per NatEventKind; 0 while no sink is on).
    void set_events(std::uint32_t kinds, bool destination) {
        kinds_ = ring_ != nullptr ? kinds : 0;
        destination_ = destination;
    }
    // The worker's wall clock, set once per loop iteration (a burst's records share it).
    void set_time_ms(std::uint64_t unix_ms) { now_ms_ = unix_ms; }
    [[nodiscard]] std::uint64_t time_ms() const { return now_ms_; }

    [[nodiscard]] bool wants(NatEventKind kind) const {
        return (kinds_ >> static_cast<unsigned>(kind) & 1u) != 0;
    }
    [[nodiscard]] bool destination() const { return destination_; }

    // Whether a refusal record of this reason is due (at most one per interval per reason).
    bool refusal_due(RefusalSlot slot) {
        std::uint64_t& last = last_refusal_ms_[static_cast<std::size_t>(slot)];
        if (last != 0 && now_ms_ - last < kRefusalIntervalMs) {
            return false;
        }
        last = now_ms_ == 0 ? 1 : now_ms_;
        return true;
    }

    // Stamps and stages `e` (flushing first when the stage is full); never waits.
    void emit(NatEvent& e, CounterBlock& counters) {
        e.time_ms = now_ms_;
        e.worker = worker_;
        if (staged_ == kStage) {
            flush(counters);
        }
        stage_[staged_++] = e;
    }
    // Hands the staged records to the ring: one enqueue for all of them.
    void flush(CounterBlock& counters) {
        if (staged_ == 0) {
            return;
        }
        const unsigned sent = rte_ring_sp_enqueue_burst_elem(ring_, stage_.data(), sizeof(NatEvent),
                                                             staged_, nullptr);
        counters.add(Counter::log_records, sent);
        if (sent != staged_) {
            counters.add(Counter::log_records_dropped, staged_ - sent);
        }
        staged_ = 0;
    }

private:
    static constexpr unsigned kStage = 64; // a burst's new mappings, with room to spare

    rte_ring* ring_ = nullptr;
    std::array<NatEvent, kStage> stage_{};
    unsigned staged_ = 0;
    std::uint32_t kinds_ = 0;
    bool destination_ = false;
    WorkerId worker_ = 0;
    std::uint64_t now_ms_ = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(RefusalSlot::count_)> last_refusal_ms_{};
};

} // namespace ephemera
