#include "subscriber_top.hpp"

#include "port_use.hpp"

namespace ephemera {

std::optional<SubscriberSummary> gather_subscribers(App& app, std::chrono::milliseconds timeout) {
    if (!ask_workers(app, Mailbox::Kind::subscribers, {}, 0, timeout)) {
        return std::nullopt;
    }
    SubscriberSummary merged;
    for (const auto& w : app.workers) {
        merged.merge(w->mailbox().subscribers);
    }
    return merged;
}

} // namespace ephemera
