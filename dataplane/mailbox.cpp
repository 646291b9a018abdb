#include "mailbox.hpp"

#include <thread>

namespace ephemera {

bool ask_all(std::span<Mailbox* const> boxes, const Mailbox::Request& request,
             std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const auto wait_for = [deadline](const auto& done) {
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return true;
    };
    for (Mailbox* box : boxes) {
        if (!wait_for([box] { return box->idle(); })) {
            return false;
        }
    }
    std::vector<std::uint32_t> tickets;
    tickets.reserve(boxes.size());
    for (Mailbox* box : boxes) {
        tickets.push_back(box->post(request));
    }
    bool answered = true;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        Mailbox* box = boxes[i];
        if (!answered || !wait_for([box, ticket = tickets[i]] { return box->answered(ticket); })) {
            answered = false;
            box->cancel(tickets[i]);
        }
    }
    return answered;
}

} // namespace ephemera
