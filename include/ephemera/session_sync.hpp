// The worker's end of its HA sync ring (docs/ha.md): while a standby is attached, the session
// lifecycle records each session made, each change of its TCP state and each end, and refresh
// rounds add the sessions used since the last round; the sync thread on the control side drains
// the ring and streams the records to the standby. Like the NAT event ring (event_log.hpp) the
// worker stages a burst's records and hands them over with one single-producer enqueue, and a
// full ring never makes it wait: what does not fit is counted in ha_records_dropped, and the
// next refresh round (or the bulk round a reconnect asks for) carries the session again.
//
// The ring is the HA stream's alone, not shared with logging: a collector's backlog or a burst
// of log records must never cost the standby a record, and the standby's records (every
// session, with its MAC and TCP state) are not what a collector is sent.
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/session_state.hpp"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <array>
#include <cstdint>

namespace ephemera {

enum class SyncKind : std::uint8_t {
    upsert,    // the session as it stands (made, refreshed, or its TCP state changed)
    remove,    // the session ended
    bulk_done, // marker: this worker's bulk round `generation` is complete
};

struct SyncRecord {
    SessionState state;
    SyncKind kind = SyncKind::upsert;
    std::uint8_t reserved_[3] = {};
    std::uint32_t generation = 0; // bulk_done only
};
static_assert(sizeof(SyncRecord) % 4 == 0, "a ring element is a multiple of 4 bytes");

class SessionSync {
public:
    explicit SessionSync(CounterBlock& counters) : counters_(counters) {}

    // `ring`: created for the worker by the control thread, nullptr: HA off for good.
    void attach(rte_ring* ring) { ring_ = ring; }
    // Whether a standby is listening: records are made only then (the bulk round that its
    // arrival starts brings it everything that came before).
    void set_streaming(bool on) { streaming_ = ring_ != nullptr && on; }
    [[nodiscard]] bool streaming() const { return streaming_; }
    // Only the sessions of subscribers in prefix/mask are streamed (a migration hands over
    // those alone); mask 0: every session.
    void set_filter(std::uint32_t prefix, std::uint32_t mask) {
        filter_prefix_ = prefix & mask;
        filter_mask_ = mask;
    }

    void upsert(const SessionState& s) { stage(s, SyncKind::upsert); }
    void remove(const SessionState& s) { stage(s, SyncKind::remove); }
    void bulk_done(std::uint32_t generation) {
        SyncRecord r;
        r.kind = SyncKind::bulk_done;
        r.generation = generation;
        push(r);
    }
    // Room left in the ring: a refresh round only takes a step when its records will fit.
    [[nodiscard]] unsigned room() const {
        return ring_ != nullptr ? rte_ring_free_count(ring_) : 0;
    }

    // Hands the staged records to the ring: one enqueue for all of them.
    void flush() {
        if (staged_ == 0) {
            return;
        }
        const unsigned sent = rte_ring_sp_enqueue_burst_elem(ring_, stage_.data(),
                                                             sizeof(SyncRecord), staged_, nullptr);
        counters_.add(Counter::ha_records_sent, sent);
        if (sent != staged_) {
            counters_.add(Counter::ha_records_dropped, staged_ - sent);
        }
        staged_ = 0;
    }

private:
    static constexpr unsigned kStage = 64; // a burst's records, with room to spare

    void stage(const SessionState& s, SyncKind kind) {
        if (!streaming_ || (s.inside.value() & filter_mask_) != filter_prefix_) {
            return;
        }
        SyncRecord r;
        r.state = s;
        r.kind = kind;
        push(r);
    }
    void push(const SyncRecord& r) {
        if (staged_ == kStage) {
            flush();
        }
        stage_[staged_++] = r;
    }

    CounterBlock& counters_;
    rte_ring* ring_ = nullptr;
    bool streaming_ = false;
    std::uint32_t filter_prefix_ = 0;
    std::uint32_t filter_mask_ = 0;
    std::array<SyncRecord, kStage> stage_{};
    unsigned staged_ = 0;
};

} // namespace ephemera
