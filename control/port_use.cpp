#include "port_use.hpp"

namespace ephemera {

bool ask_workers(App& app, Mailbox::Kind kind, const SessionFilter& filter, std::size_t limit,
                 std::chrono::milliseconds timeout) {
    std::vector<Mailbox*> boxes;
    for (auto& w : app.workers) {
        boxes.push_back(&w->mailbox());
    }
    return ask_all(boxes, {kind, filter, limit}, timeout);
}

std::optional<alarms::PortUseTable> port_use_from_mailboxes(const App& app) {
    alarms::PortUseTable table;
    if (app.workers.empty()) {
        return table;
    }
    const Mailbox& first = app.workers.front()->mailbox();
    for (const auto& w : app.workers) {
        const Mailbox& box = w->mailbox();
        if (box.addresses != first.addresses ||
            box.free_ports.size() != first.addresses.size() * kProtocolCount) {
            return std::nullopt;
        }
    }
    const bool shared_range = app.shared.ownership.by_subscriber();
    table.addresses = first.addresses;
    table.draining.resize(first.addresses.size());
    for (std::size_t a = 0; a < first.addresses.size(); ++a) {
        table.draining[a] = first.active[a] == 0;
    }
    table.use.resize(first.addresses.size() * kProtocolCount);
    for (std::size_t a = 0; a < first.addresses.size(); ++a) {
        for (std::size_t p = 0; p < kProtocolCount; ++p) {
            alarms::PortUse& u = table.use[a * kProtocolCount + p];
            for (const auto& w : app.workers) {
                const Mailbox& box = w->mailbox();
                const std::uint32_t free = box.free_ports[a * kProtocolCount + p];
                u.used += box.usable_ports - std::min(free, box.usable_ports);
                u.usable += box.usable_ports;
            }
            if (shared_range) {
                u.usable = first.usable_ports;
                u.used = std::min(u.used, u.usable);
            }
        }
    }
    return table;
}

std::optional<alarms::PortUseTable> gather_port_use(App& app, std::chrono::milliseconds timeout) {
    if (!ask_workers(app, Mailbox::Kind::ports, {}, 0, timeout)) {
        return std::nullopt;
    }
    return port_use_from_mailboxes(app);
}

} // namespace ephemera
