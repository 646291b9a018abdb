// A subscriber record as the per-subscriber summary sees it (subscriber_summary.hpp): one place
// for the fields a walk copies, so that the summary benchmark walks as the translator does.
#pragma once

#include "ephemera/nat_table.hpp"
#include "ephemera/subscriber_summary.hpp"

#include <optional>

namespace ephemera {

// Ports, sessions and refusals of `sub`; nullopt for a released record, which keeps its place
// in the table with nothing in it. The address and the blocks are the walker's to fill.
inline std::optional<SubscriberSample> sample_of(const Subscriber& sub) {
    if (sub.mappings == 0 && sub.sessions == 0) {
        return std::nullopt;
    }
    SubscriberSample s;
    s.ports = {sub.ports[0], sub.ports[1], sub.ports[2]};
    s.sessions = sub.sessions;
    s.refusals = sub.refusals;
    return s;
}

} // namespace ephemera
