// Where a static mapping's inside host is on the inside segment (its MAC, or its router's).
// A dynamic mapping learns it from the subscriber's first packet; a static one may be reached
// from outside before its host has sent anything, so the worker that owns the host keeps the
// MACs it learns (from the host's packets and ARP) and, for a host it does not know yet, asks
// with an ARP request on the inside port. The packet that found the MAC missing is dropped and
// counted (drop_static_unresolved); TCP's SYN retry and any UDP resend get through once the
// host answers.
//
// A direct-mapped cache: a fixed array, no allocation, an entry overwritten by a colliding
// address (which is asked for again). One per worker, written by that worker only.
#pragma once

#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <optional>

namespace ephemera {

class InsideNeighbors {
public:
    static constexpr std::uint32_t kEntries = 4096;
    static constexpr std::uint32_t kMaxWanted = 16; // ARP requests waiting for the worker
    static constexpr Tick kRetry = kTicksPerSecond; // ask for one address at most once a second
    // A learned MAC is trusted this long; after it a packet still gets it, and a request
    // goes out to confirm it (the host may have moved).
    static constexpr Tick kRefresh = 300 * kTicksPerSecond;

    [[nodiscard]] std::optional<MacAddr> find(Ipv4Addr host, Tick now) {
        Entry& e = entries_[slot(host)];
        if (e.host != host || !e.known) {
            want(host, now);
            return std::nullopt;
        }
        if (now - e.learned > kRefresh) {
            want(host, now);
        }
        return e.mac;
    }
    void learn(Ipv4Addr host, const MacAddr& mac, Tick now) {
        Entry& e = entries_[slot(host)];
        e = Entry{host, mac, now, now, true};
    }
    // The next address to ask for, oldest first (the worker sends the requests).
    std::optional<Ipv4Addr> take_wanted() {
        if (wanted_count_ == 0) {
            return std::nullopt;
        }
        const Ipv4Addr a = wanted_[wanted_head_];
        wanted_head_ = (wanted_head_ + 1) % kMaxWanted;
        --wanted_count_;
        return a;
    }

private:
    struct Entry {
        Ipv4Addr host;
        MacAddr mac;
        Tick learned = 0;
        Tick asked = 0;
        bool known = false;
    };
    static std::uint32_t slot(Ipv4Addr a) { return (a.value() * 0x9e3779b1u) >> 20; }

    void want(Ipv4Addr host, Tick now) {
        Entry& e = entries_[slot(host)];
        if (e.host != host) {
            e = Entry{host, {}, 0, now, false}; // a colliding host loses its entry
        } else if (now - e.asked < kRetry && e.asked != 0) {
            return;
        }
        e.asked = now == 0 ? 1 : now;
        if (wanted_count_ == kMaxWanted) {
            return; // asked again on its next packet
        }
        wanted_[(wanted_head_ + wanted_count_) % kMaxWanted] = host;
        ++wanted_count_;
    }

    std::array<Entry, kEntries> entries_{};
    std::array<Ipv4Addr, kMaxWanted> wanted_{};
    std::uint32_t wanted_head_ = 0;
    std::uint32_t wanted_count_ = 0;
};

} // namespace ephemera
