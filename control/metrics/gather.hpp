// What a scrape reads from the running process, on civetweb's thread: counters and gauges are
// atomics, steering is fixed at start, and port use comes from one mailbox round trip to the
// workers, bounded in time (the scrape then reports ephemera_port_use_known 0).
#pragma once

#include "exposition.hpp"

#include <chrono>

namespace ephemera {

struct App;

namespace metrics {

inline constexpr std::chrono::milliseconds kPortUseTimeout{500};

Snapshot gather(App& app);

} // namespace metrics
} // namespace ephemera
