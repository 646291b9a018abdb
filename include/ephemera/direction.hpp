// Which way a packet crosses the NAT. One type for every place that cares: the port a packet
// came in on (in2out: the inside port), the side an ICMP error is rewritten for, the datagram
// a fragment belongs to.
#pragma once

#include <cstdint>
#include <string_view>

namespace ephemera {

enum class Direction : std::uint8_t {
    in2out = 0, // from a subscriber, received on the inside port, sent out of the outside one
    out2in = 1, // from outside, received on the outside port, sent out of the inside one
};

constexpr Direction reverse(Direction d) {
    return d == Direction::in2out ? Direction::out2in : Direction::in2out;
}

constexpr std::string_view direction_name(Direction d) {
    return d == Direction::in2out ? "in2out" : "out2in";
}

} // namespace ephemera
