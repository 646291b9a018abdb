// `ephemera --owner --workers N QUERY...`: which worker owns a subscriber or an external port,
// by the same functions the workers use (include/ephemera/ownership.hpp). Tests and tools ask
// the binary instead of carrying their own copy of the ownership function.
//
//   ADDR          a subscriber (inside address): subscriber_owner(ADDR)
//   ADDR:PORT     an external port (or ICMP identifier) on pool address ADDR: port_owner
//   ADDR:LO-HI    every port from LO to HI, one line each
//
// One line per answer, in query order: "subscriber ADDR worker W" or "port ADDR:PORT worker W".
#pragma once

#include "ephemera/ownership.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ephemera {

struct OwnerQuery {
    Ipv4Addr address;
    bool subscriber = true; // no port given
    std::uint16_t lo = 0;   // ports lo..hi when !subscriber
    std::uint16_t hi = 0;
};

// nullopt when `text` is none of the three forms (dotted quad, decimal ports, lo <= hi).
std::optional<OwnerQuery> parse_owner_query(std::string_view text);

// The answer lines for one query.
std::string describe_owner(const Ownership& ownership, const OwnerQuery& query);

} // namespace ephemera
