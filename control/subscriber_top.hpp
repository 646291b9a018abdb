// Per-subscriber port use at scale: the workers' subscriber summaries (a mailbox walk each,
// subscriber_summary.hpp) merged into one, for /ephemera/top, `ephemeractl top` and the
// metrics. Bounded whatever the number of subscribers: two top N lists and two histograms.
#pragma once

#include "app.hpp"

#include "ephemera/subscriber_summary.hpp"

#include <chrono>
#include <optional>

namespace ephemera {

// Asks every worker for its summary and merges them (the caller holds app.mailbox_lock);
// nullopt when a worker did not finish its walk within `timeout`.
std::optional<SubscriberSummary> gather_subscribers(App& app, std::chrono::milliseconds timeout);

} // namespace ephemera
