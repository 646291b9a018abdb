// Port use per pool address and protocol, from the workers' answers to a ports request: what
// `ephemeractl show ports` lists and what the pool alarms watch (control/pool_alarms.hpp).
#pragma once

#include "alarms/pool_watch.hpp"
#include "app.hpp"

#include <chrono>
#include <optional>

namespace ephemera {

// Puts one request in every worker's mailbox and waits until all have served it (see
// ask_all). The caller holds app.mailbox_lock.
bool ask_workers(App& app, Mailbox::Kind kind, const SessionFilter& filter = {},
                 std::size_t limit = Mailbox::kMaxSessions,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// The table the workers' mailboxes hold after they answered a ports request. Each worker owns
// its share of an address, except in deterministic mode, where every worker numbers every
// port: there the range counts once and the ports in use add up. nullopt when the workers
// listed different addresses (a pool change between their answers): no figures rather than
// mixed ones.
std::optional<alarms::PortUseTable> port_use_from_mailboxes(const App& app);

// Asks the workers and sums their answers (the caller holds app.mailbox_lock); nullopt when a
// worker did not answer within `timeout` or the answers disagree.
std::optional<alarms::PortUseTable> gather_port_use(App& app, std::chrono::milliseconds timeout);

} // namespace ephemera
