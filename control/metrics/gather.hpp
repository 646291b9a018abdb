// What a scrape reads from the running process, on civetweb's thread: counters and gauges are
// atomics, steering is fixed at start, and port use and the subscriber summary come from a
// mailbox round trip each to the workers, bounded in time (the scrape then reports
// ephemera_port_use_known 0 or ephemera_subscriber_view_known 0).
#pragma once

#include "exposition.hpp"

#include <chrono>

namespace ephemera {

struct App;

namespace metrics {

inline constexpr std::chrono::milliseconds kPortUseTimeout{500};
// A walk over every subscriber record, kWalkStep a housekeeping: a million subscribers take a
// few hundred housekeepings per worker.
inline constexpr std::chrono::milliseconds kSubscribersTimeout{500};

Snapshot gather(App& app);

} // namespace metrics
} // namespace ephemera
