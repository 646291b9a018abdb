// ICMP error translation (RFC 5508 REQ-3 to REQ-6, RFC 4787 REQ-12, RFC 5382 REQ-9/10): reading
// the packet an error quotes, and rewriting the outer and the quoted headers together, so that
// the host the error reaches recognises its own packet in it.
//
// An error from outside reaches a pool address E about a packet that left as E:e -> R:r; the
// subscriber must see it as an error about I:i -> R:r. An error from a subscriber I about a
// packet it received (R:r -> I:i) must leave as an error from E about R:r -> E:e.
#pragma once

#include "ephemera/counters.hpp"
#include "ephemera/direction.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <span>

namespace ephemera {

constexpr bool is_icmp_error_type(std::uint8_t type) {
    return type == kIcmpDestUnreachable || type == kIcmpTimeExceeded ||
           type == kIcmpParameterProblem;
}

// Reads the quote of the ICMP error that `p` (already parsed up to its ICMP header: l3, l4,
// ip_total_len, icmp_type) describes and fills in its icmp_error block (see packet.hpp).
// REQ-3: the ICMP checksum of the whole message and the quoted IPv4 header's checksum must
// verify, quoted IP options are skipped, and the quoted transport checksum is not looked at.
// Returns Counter::count_ when the error can be translated, else the counter naming why not.
Counter parse_icmp_error(std::span<const std::uint8_t> frame, ParsedPacket& p);

// Which way an error crosses: out2in restores the quoted source (E:e -> I:i) and the outer
// destination (E -> I); in2out hides the quoted destination (I:i -> E:e) and the outer source
// (I -> E). Either way one address replaces another in both headers. (The session an error
// from a subscriber is about: SessionKey::of, keys.hpp.)

// Rewrites the error in place: the outer address and the quoted endpoint become `addr` and
// (`addr`, `port`), the outer TTL drops by one, and every checksum is updated (RFC 1624):
// the quoted IPv4 header, the quoted transport checksum when its field lies in the quote
// (a UDP checksum of 0 stays 0; TCP needs 18 quoted bytes; echo has no pseudo-header), the
// ICMP checksum over all of it, and the outer IPv4 header. Type, code and everything else
// stay. The caller checked the outer TTL is > 1.
void rewrite_icmp_error(std::uint8_t* frame, const ParsedPacket& p, Direction direction,
                        Ipv4Addr addr, std::uint16_t port);

} // namespace ephemera
