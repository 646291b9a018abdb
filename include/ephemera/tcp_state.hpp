// The TCP session state of RFC 7857 section 2 (after RFC 6146's NAT64 machine), kept as the
// set of control flags seen each way. A session is established once a SYN has gone each way,
// which covers the three-way handshake and simultaneous open alike (RFC 5382 REQ-2); a FIN
// each way, or an RST, makes it transitory. A later packet without RST on an established
// session takes it back out of the RST state, since an RST may be spoofed or refused.
#pragma once

#include <cstdint>

namespace ephemera {

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t ack = 0x10;
} // namespace tcp_flag

namespace tcp_seen {
inline constexpr std::uint8_t syn_out = 0x01; // inside to outside
inline constexpr std::uint8_t syn_in = 0x02;
inline constexpr std::uint8_t fin_out = 0x04;
inline constexpr std::uint8_t fin_in = 0x08;
inline constexpr std::uint8_t rst = 0x10;
} // namespace tcp_seen

// The session's TCP marks after a packet with `flags` went out (outbound) or came in.
constexpr std::uint8_t tcp_track(std::uint8_t seen, std::uint8_t flags, bool outbound) {
    if (flags & tcp_flag::syn) {
        seen |= outbound ? tcp_seen::syn_out : tcp_seen::syn_in;
    }
    if (flags & tcp_flag::fin) {
        seen |= outbound ? tcp_seen::fin_out : tcp_seen::fin_in;
    }
    if (flags & tcp_flag::rst) {
        seen |= tcp_seen::rst;
    } else if (seen & tcp_seen::rst) {
        seen &= static_cast<std::uint8_t>(~tcp_seen::rst);
    }
    return seen;
}

constexpr bool tcp_established(std::uint8_t seen) {
    const bool both_syn =
        (seen & (tcp_seen::syn_out | tcp_seen::syn_in)) == (tcp_seen::syn_out | tcp_seen::syn_in);
    const bool both_fin =
        (seen & (tcp_seen::fin_out | tcp_seen::fin_in)) == (tcp_seen::fin_out | tcp_seen::fin_in);
    return both_syn && !both_fin && !(seen & tcp_seen::rst);
}

// Whether a packet's flags can change the state: only these need the session on the way in.
constexpr bool tcp_is_control(std::uint8_t flags) {
    return (flags & (tcp_flag::syn | tcp_flag::fin | tcp_flag::rst)) != 0;
}

} // namespace ephemera
