// Virtual reassembly of IPv4 fragments (RFC 4787 REQ-14), the way a shallow reassembler does
// it: pieces are never joined. The first piece (offset 0) carries the transport header, so it
// alone decides the translation; the table remembers that decision per datagram and the later
// pieces follow it. Later pieces that arrive before the first are held (as opaque handles: the
// worker stores mbuf pointers) until it comes, up to a cap per datagram.
//
// One table per worker, plain C++ (no DPDK), every array sized at construction: nothing is
// allocated on the packet path. Bounds:
//  - at most `max_datagrams` datagrams, and `max_per_datagram` held pieces each;
//  - an entry ends when its datagram is complete (every byte up to the last piece's end seen)
//    or `timeout` after it was made; held pieces then go back to the worker to free;
//  - when full, a new datagram takes the slot of an expired entry, else of the oldest entry
//    still waiting for its first piece. Entries whose first piece was seen are never
//    displaced: a flood of pieces whose first never comes only displaces its own kind, and
//    datagrams that arrive in order keep working. Unfragmented packets never look here.
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/direction.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace ephemera {

// A datagram: RFC 791 names it by (source, destination, protocol, identification). The
// direction keeps a worker's inside and outside datagrams apart.
struct FragmentKey {
    std::uint32_t src = 0;
    std::uint32_t dst = 0;
    std::uint16_t id = 0;
    std::uint8_t proto = 0;
    std::uint8_t direction = 0;
    constexpr bool operator==(const FragmentKey&) const = default;

    static FragmentKey of(const ParsedPacket& p, Direction d) {
        return FragmentKey{p.src.value(), p.dst.value(), p.ip_id,
                           static_cast<std::uint8_t>(p.proto), static_cast<std::uint8_t>(d)};
    }
};

constexpr std::uint32_t fragment_hash(const FragmentKey& k) {
    const std::uint32_t h = k.src * 0x9e3779b1u ^ k.dst;
    return mix32(h ^ (std::uint32_t{k.id} << 16 | std::uint32_t{k.proto} << 8 | k.direction) *
                         0x85ebca6bu);
}

// The worker that gathers an outside datagram's pieces until the first one names the external
// port, hence the port's owner. A pure function of the datagram, so every receiving worker
// agrees on it without asking.
constexpr WorkerId fragment_owner(const FragmentKey& key, WorkerId workers) {
    return static_cast<WorkerId>(fragment_hash(key) % workers);
}

// Where an outside piece goes on a worker with more than one. A piece from another worker
// was sent either to its fragment owner (when that is us) or, by the fragment owner, to the
// port owner (when it is not: an owner never hands a piece to itself).
enum class OutsideFragmentRole : std::uint8_t {
    send_to_fragment_owner, // received from the port; another worker gathers this datagram
    fragment_owner,         // gather here; the first piece decides the port owner
    port_owner,             // the fragment owner sent it: translate, hold nothing
};

constexpr OutsideFragmentRole outside_fragment_role(WorkerId self, WorkerId fragment_owner_id,
                                                    bool from_handoff) {
    if (fragment_owner_id == self) {
        return OutsideFragmentRole::fragment_owner;
    }
    return from_handoff ? OutsideFragmentRole::port_owner
                        : OutsideFragmentRole::send_to_fragment_owner;
}

// What the first piece's translation did to the datagram.
struct FragmentTranslation {
    Ipv4Addr address; // in2out: the new source; out2in: the new destination
    MacAddr mac;      // the Ethernet destination the first piece was sent to
};

enum class FragmentAction : std::uint8_t {
    translate,    // the first piece was translated: rewrite with `translation` and send
    hand_off,     // the first piece went to worker `worker`: hand this one there too
    held,         // kept until the first piece comes; the table owns the handle now
    drop_refused, // the first piece was refused (no mapping, filtered, ...)
    drop_unknown, // no record and holding is not ours to do (port owner)
    drop_full,    // no room for another datagram
    drop_cap,     // the datagram already holds max_per_datagram pieces
};

struct FragmentResult {
    FragmentAction action = FragmentAction::drop_unknown;
    FragmentTranslation translation;
    WorkerId worker = 0;
};

struct FragmentLimits {
    std::uint32_t max_datagrams = 256;
    std::uint32_t max_per_datagram = 8;
    Tick timeout = 5 * kTicksPerSecond;
};

class FragmentTable {
public:
    using Handle = void*;
    // Called for each held piece the table gives up (timeout, eviction, refused first piece).
    using Release = void (*)(Handle handle, void* context);

    FragmentTable(const FragmentLimits& limits, CounterBlock& counters, Release release,
                  void* context);

    // A later piece (offset > 0). With `may_hold` false (the port owner, which is sent pieces
    // only after their first), an unknown datagram is not recorded.
    FragmentResult later(const FragmentKey& key, const ParsedPacket& piece, Handle handle,
                         bool may_hold, Tick now);

    // The first piece was translated here: later pieces follow `translation`. The pieces held
    // so far are written to `out` (at least max_per_datagram long) in arrival order, for the
    // caller to rewrite and send after the first; returns how many.
    std::size_t translated(const FragmentKey& key, const ParsedPacket& first,
                           const FragmentTranslation& translation, Tick now, std::span<Handle> out);
    // The first piece was handed to `worker` (its port owner); held pieces go to `out` for
    // the caller to hand over after it.
    std::size_t routed(const FragmentKey& key, const ParsedPacket& first, WorkerId worker, Tick now,
                       std::span<Handle> out);
    // The first piece was dropped: later pieces are dropped too, held ones released.
    void refused(const FragmentKey& key, const ParsedPacket& first, Tick now);

    // Ends entries older than the timeout (at most `budget`); returns how many ended.
    std::uint32_t expire(Tick now, std::uint32_t budget);

    [[nodiscard]] std::uint32_t live() const { return live_; }
    [[nodiscard]] std::uint32_t held() const { return held_total_; }
    [[nodiscard]] std::uint32_t capacity() const { return limits_.max_datagrams; }
    [[nodiscard]] const FragmentLimits& limits() const { return limits_; }

private:
    static constexpr std::uint32_t kNone = 0xffffffffu;
    enum class State : std::uint8_t { pending, translated, routed, refused };
    enum List : std::uint8_t { kFree = 0, kPending = 1, kResolved = 2 };

    struct Entry {
        FragmentKey key;
        std::uint32_t chain = kNone; // next entry in the same hash bucket
        std::uint32_t prev = kNone;  // neighbours in the entry's list, oldest first
        std::uint32_t next = kNone;
        Tick created = 0;
        std::uint32_t bytes = 0; // payload bytes seen, held pieces included
        std::uint32_t end = 0;   // the datagram's length, once its last piece is seen
        State state = State::pending;
        List list = kFree;
        std::uint16_t held = 0;
        WorkerId worker = 0;
        FragmentTranslation translation;
    };
    struct ListEnds {
        std::uint32_t head = kNone;
        std::uint32_t tail = kNone;
    };

    std::uint32_t find(const FragmentKey& key) const;
    std::uint32_t allocate(const FragmentKey& key, Tick now);
    void release_entry(std::uint32_t e, Counter held_fate);
    void link(std::uint32_t e, List list);
    void unlink(std::uint32_t e);
    void resolve(std::uint32_t e, State state, Tick now);
    // Counts the piece's bytes; ends the entry (returning true) when the datagram is complete.
    bool account(std::uint32_t e, const ParsedPacket& piece);
    std::uint32_t first_seen(const FragmentKey& key, Tick now);
    std::size_t take_held(std::uint32_t e, std::span<Handle> out);
    [[nodiscard]] bool expired(std::uint32_t e, Tick now) const {
        return now - entries_[e].created >= limits_.timeout;
    }

    FragmentLimits limits_;
    CounterBlock& counters_;
    Release release_;
    void* context_;
    std::vector<Entry> entries_;
    std::vector<std::uint32_t> buckets_;
    std::uint32_t bucket_mask_ = 0;
    std::vector<Handle> handles_; // entry e holds handles_[e * max_per_datagram ...]
    ListEnds lists_[3];
    std::uint32_t live_ = 0;
    std::uint32_t held_total_ = 0;
};

} // namespace ephemera
