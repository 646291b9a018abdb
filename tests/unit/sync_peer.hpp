// A scripted peer's tools for the tests of the control side's sync and hand-over threads
// (sync_thread_test.cpp, handover_test.cpp): a free loopback port, waiting for a condition,
// and reading the next message, or the next of one type, from a link.
#pragma once

#include "../../control/ha/sync_link.hpp"

#include "ephemera/session_sync.hpp"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ephemera::ha::sync_peer {

using namespace std::chrono_literals;

// Each worker's sync ring (out: the workers write it) and apply ring (in: they read it), as
// main() makes them; freed with this.
struct WorkerRings {
    explicit WorkerRings(WorkerId workers) {
        static std::atomic<unsigned> instance{0};
        const std::string tag = "peer" + std::to_string(instance.fetch_add(1));
        for (WorkerId w = 0; w < workers; ++w) {
            for (auto* rings : {&out, &in}) {
                const std::string name = tag + (rings == &out ? "o" : "i") + std::to_string(w);
                rings->push_back(rte_ring_create_elem(name.c_str(), sizeof(SyncRecord), 1024,
                                                      SOCKET_ID_ANY,
                                                      RING_F_SP_ENQ | RING_F_SC_DEQ));
                if (rings->back() == nullptr) {
                    throw std::runtime_error("cannot create ring " + name);
                }
            }
        }
    }
    ~WorkerRings() {
        for (auto* rings : {&out, &in}) {
            for (rte_ring* r : *rings) {
                rte_ring_free(r);
            }
        }
    }
    WorkerRings(const WorkerRings&) = delete;
    WorkerRings& operator=(const WorkerRings&) = delete;

    std::vector<rte_ring*> out;
    std::vector<rte_ring*> in;
};

inline const Ipv4Addr kLoopback{127, 0, 0, 1};

// A port nobody listens on now (bound to 0 and released).
inline std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(kLoopback.value());
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return pred();
}

// The next message from `link` within `timeout`.
inline std::optional<Message> next_message(SyncLink& link, std::chrono::milliseconds timeout = 3s) {
    std::optional<Message> m;
    eventually(
        [&] {
            link.receive();
            m = link.next();
            return m.has_value();
        },
        timeout);
    return m;
}

template <typename T>
std::optional<T> next_of(SyncLink& link, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto m = next_message(link, 100ms);
        if (m && std::holds_alternative<T>(*m)) {
            return std::get<T>(*m);
        }
    }
    return std::nullopt;
}

inline std::optional<SyncLink> accept_within(const logging::SocketFd& listener,
                                             std::chrono::milliseconds timeout = 3s) {
    std::optional<SyncLink> got;
    eventually(
        [&] {
            got = accept_from(listener);
            return got.has_value();
        },
        timeout);
    return got;
}

} // namespace ephemera::ha::sync_peer
