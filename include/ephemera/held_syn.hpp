// Unsolicited inbound TCP SYNs held for RFC 5382 REQ-4: a SYN from outside that no mapping
// admits is answered (ICMP 3/3) only if, within 6 s, the subscriber side has not sent a SYN of
// that connection itself; if it has, the held SYN is dropped silently, so simultaneous open and
// hole punching work. Each worker keeps its own bounded queue: the SYN and the outbound SYN
// that cancels it are both about a port this worker owns.
//
// All held SYNs wait the same time, so arrival order is due order and a ring is the queue.
// A full ring forgets its oldest SYN, which is then dropped silently (REQ-4a): under a SYN
// flood the queue bounds memory and the replies, it never grows.
#pragma once

#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace ephemera {

// A connection as the outside sees it: remote endpoint to external endpoint.
struct HeldSynKey {
    std::uint32_t external_addr = 0;
    std::uint32_t remote_addr = 0;
    std::uint16_t external_port = 0;
    std::uint16_t remote_port = 0;
    bool operator==(const HeldSynKey&) const = default;
};

struct HeldSyn {
    // Ethernet + IP header (options included) + the first 8 bytes of TCP: what the 3/3
    // quotes (RFC 792), with the sender's MAC to answer to.
    static constexpr std::size_t kMaxFrame = 14 + 60 + 8;

    HeldSynKey key;
    Tick due = 0;
    std::uint16_t ip_total_len = 0; // of the original packet
    std::uint8_t frame_len = 0;
    std::array<std::uint8_t, kMaxFrame> frame{};
};

class HeldSyns {
public:
    // `capacity` is rounded up to a power of two.
    explicit HeldSyns(std::uint32_t capacity);

    // Holds a SYN until `due`. Returns false when the oldest held SYN had to make room.
    bool hold(const HeldSynKey& key, std::span<const std::uint8_t> frame,
              std::uint16_t ip_total_len, Tick due);
    // An outbound SYN of `key`'s connection was sent: forget the held SYN. True if one was.
    bool cancel(const HeldSynKey& key);
    // The oldest held SYN whose time has come (and that was not cancelled), or nullopt.
    std::optional<HeldSyn> take_due(Tick now);

    [[nodiscard]] bool empty() const { return live_ == 0; }
    [[nodiscard]] std::uint32_t size() const { return live_; }

private:
    static constexpr std::uint16_t kNone = 0xffff;

    [[nodiscard]] std::uint32_t bucket_of(const HeldSynKey& k) const;
    void unlink(std::uint32_t slot);

    std::vector<HeldSyn> ring_;
    std::vector<std::uint8_t> live_slot_; // 1 while the slot holds an uncancelled SYN
    std::vector<std::uint16_t> next_;     // chain of slots in the same bucket
    std::vector<std::uint16_t> bucket_;   // bucket -> first slot
    std::uint32_t mask_ = 0;              // ring size - 1
    std::uint32_t head_ = 0;              // oldest slot in use
    std::uint32_t used_ = 0;              // slots between head and tail (live or cancelled)
    std::uint32_t live_ = 0;
};

} // namespace ephemera
