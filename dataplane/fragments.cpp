#include "ephemera/fragments.hpp"

#include <algorithm>
#include <bit>

namespace ephemera {

FragmentTable::FragmentTable(const FragmentLimits& limits, CounterBlock& counters, Release release,
                             void* context)
    : limits_(limits), counters_(counters), release_(release), context_(context),
      entries_(limits.max_datagrams),
      buckets_(std::bit_ceil(std::max<std::uint32_t>(2 * limits.max_datagrams, 2)), kNone),
      bucket_mask_(static_cast<std::uint32_t>(buckets_.size() - 1)),
      handles_(std::size_t{limits.max_datagrams} * limits.max_per_datagram, nullptr) {
    for (std::uint32_t e = 0; e < limits_.max_datagrams; ++e) {
        link(e, kFree);
    }
}

std::uint32_t FragmentTable::find(const FragmentKey& key) const {
    for (std::uint32_t e = buckets_[fragment_hash(key) & bucket_mask_]; e != kNone;
         e = entries_[e].chain) {
        if (entries_[e].key == key) {
            return e;
        }
    }
    return kNone;
}

void FragmentTable::link(std::uint32_t e, List list) {
    Entry& entry = entries_[e];
    ListEnds& ends = lists_[list];
    entry.list = list;
    entry.prev = ends.tail;
    entry.next = kNone;
    if (ends.tail != kNone) {
        entries_[ends.tail].next = e;
    } else {
        ends.head = e;
    }
    ends.tail = e;
}

void FragmentTable::unlink(std::uint32_t e) {
    Entry& entry = entries_[e];
    ListEnds& ends = lists_[entry.list];
    (entry.prev != kNone ? entries_[entry.prev].next : ends.head) = entry.next;
    (entry.next != kNone ? entries_[entry.next].prev : ends.tail) = entry.prev;
    entry.prev = entry.next = kNone;
}

// A new entry for `key`: a free slot, else an expired entry's, else the oldest one still
// waiting for its first piece. kNone when every entry has seen its first piece and is young.
std::uint32_t FragmentTable::allocate(const FragmentKey& key, Tick now) {
    std::uint32_t e = lists_[kFree].head;
    if (e == kNone) {
        const std::uint32_t oldest_pending = lists_[kPending].head;
        const std::uint32_t oldest_resolved = lists_[kResolved].head;
        if (oldest_resolved != kNone && expired(oldest_resolved, now)) {
            release_entry(oldest_resolved, Counter::fragments_timed_out);
        } else if (oldest_pending != kNone) {
            release_entry(oldest_pending, expired(oldest_pending, now)
                                              ? Counter::fragments_timed_out
                                              : Counter::fragments_evicted);
        } else {
            return kNone;
        }
        e = lists_[kFree].head;
    }
    unlink(e);
    Entry& entry = entries_[e];
    entry.key = key;
    entry.created = now;
    entry.bytes = 0;
    entry.end = 0;
    entry.state = State::pending;
    entry.held = 0;
    entry.worker = 0;
    entry.translation = FragmentTranslation{};
    std::uint32_t& bucket = buckets_[fragment_hash(key) & bucket_mask_];
    entry.chain = bucket;
    bucket = e;
    link(e, kPending);
    ++live_;
    return e;
}

// Ends an entry; its held pieces (if any) go back to the worker, counted under `held_fate`.
void FragmentTable::release_entry(std::uint32_t e, Counter held_fate) {
    Entry& entry = entries_[e];
    if (entry.held != 0) {
        Handle* held = &handles_[std::size_t{e} * limits_.max_per_datagram];
        for (std::uint16_t i = 0; i < entry.held; ++i) {
            release_(held[i], context_);
        }
        counters_.add(held_fate, entry.held);
        held_total_ -= entry.held;
        entry.held = 0;
    }
    std::uint32_t* link_to = &buckets_[fragment_hash(entry.key) & bucket_mask_];
    while (*link_to != e) {
        link_to = &entries_[*link_to].chain;
    }
    *link_to = entry.chain;
    entry.chain = kNone;
    unlink(e);
    link(e, kFree);
    --live_;
}

// The first piece came: the entry's timeout starts again from now, so that each list stays in
// age order and expiry only ever looks at its head.
void FragmentTable::resolve(std::uint32_t e, State state, Tick now) {
    entries_[e].state = state;
    entries_[e].created = now;
    unlink(e);
    link(e, kResolved);
}

bool FragmentTable::account(std::uint32_t e, const ParsedPacket& piece) {
    Entry& entry = entries_[e];
    const std::uint32_t payload = ip_payload_length(piece);
    entry.bytes += payload;
    if (!piece.more_fragments) {
        entry.end = std::uint32_t{piece.fragment_offset} + payload;
    }
    if (entry.state != State::pending && entry.end != 0 && entry.bytes >= entry.end) {
        release_entry(e, Counter::drop_fragment_orphan); // holds nothing once resolved
        return true;
    }
    return false;
}

FragmentResult FragmentTable::later(const FragmentKey& key, const ParsedPacket& piece,
                                    Handle handle, bool may_hold, Tick now) {
    std::uint32_t e = find(key);
    if (e != kNone && expired(e, now)) {
        release_entry(e, Counter::fragments_timed_out);
        e = kNone;
    }
    FragmentResult result;
    if (e == kNone) {
        if (!may_hold) {
            result.action = FragmentAction::drop_unknown;
            return result;
        }
        e = allocate(key, now);
        if (e == kNone) {
            result.action = FragmentAction::drop_full;
            return result;
        }
    }
    Entry& entry = entries_[e];
    switch (entry.state) {
    case State::pending:
        if (entry.held >= limits_.max_per_datagram) {
            result.action = FragmentAction::drop_cap;
            return result;
        }
        handles_[std::size_t{e} * limits_.max_per_datagram + entry.held++] = handle;
        ++held_total_;
        counters_.add(Counter::fragments_held);
        result.action = FragmentAction::held;
        break;
    case State::translated:
        result.action = FragmentAction::translate;
        result.translation = entry.translation;
        break;
    case State::routed:
        result.action = FragmentAction::hand_off;
        result.worker = entry.worker;
        break;
    case State::refused:
        result.action = FragmentAction::drop_refused;
        break;
    }
    account(e, piece);
    return result;
}

// The entry a first piece resolves: the existing one, else a new one (kNone if none fits).
std::uint32_t FragmentTable::first_seen(const FragmentKey& key, Tick now) {
    std::uint32_t e = find(key);
    if (e != kNone && (expired(e, now) || entries_[e].state != State::pending)) {
        // A stale entry, or a repeated first piece: start over from this one.
        release_entry(e, Counter::fragments_timed_out);
        e = kNone;
    }
    if (e == kNone) {
        e = allocate(key, now);
    }
    return e;
}

std::size_t FragmentTable::take_held(std::uint32_t e, std::span<Handle> out) {
    Entry& entry = entries_[e];
    const std::size_t n = std::min<std::size_t>(entry.held, out.size());
    const Handle* held = &handles_[std::size_t{e} * limits_.max_per_datagram];
    std::copy(held, held + n, out.begin());
    held_total_ -= entry.held;
    entry.held = 0;
    return n;
}

std::size_t FragmentTable::translated(const FragmentKey& key, const ParsedPacket& first,
                                      const FragmentTranslation& translation, Tick now,
                                      std::span<Handle> out) {
    const std::uint32_t e = first_seen(key, now);
    if (e == kNone) {
        return 0; // table full of young resolved datagrams: later pieces will be dropped
    }
    const std::size_t n = take_held(e, out);
    entries_[e].translation = translation;
    resolve(e, State::translated, now);
    account(e, first);
    return n;
}

std::size_t FragmentTable::routed(const FragmentKey& key, const ParsedPacket& first,
                                  WorkerId worker, Tick now, std::span<Handle> out) {
    const std::uint32_t e = first_seen(key, now);
    if (e == kNone) {
        return 0;
    }
    const std::size_t n = take_held(e, out);
    entries_[e].worker = worker;
    resolve(e, State::routed, now);
    account(e, first);
    return n;
}

void FragmentTable::refused(const FragmentKey& key, const ParsedPacket& first, Tick now) {
    const std::uint32_t e = first_seen(key, now);
    if (e == kNone) {
        return;
    }
    Entry& entry = entries_[e];
    if (entry.held != 0) {
        Handle* held = &handles_[std::size_t{e} * limits_.max_per_datagram];
        for (std::uint16_t i = 0; i < entry.held; ++i) {
            release_(held[i], context_);
        }
        counters_.add(Counter::drop_fragment_orphan, entry.held);
        held_total_ -= entry.held;
        entry.held = 0;
    }
    resolve(e, State::refused, now);
    account(e, first);
}

std::uint32_t FragmentTable::expire(Tick now, std::uint32_t budget) {
    std::uint32_t done = 0;
    for (List list : {kPending, kResolved}) {
        while (done < budget && lists_[list].head != kNone && expired(lists_[list].head, now)) {
            release_entry(lists_[list].head, Counter::fragments_timed_out);
            ++done;
        }
    }
    return done;
}

} // namespace ephemera
