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
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
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

// Whether a TCP socket can be bound to `port` on loopback now.
inline bool bindable(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(kLoopback.value());
    a.sin_port = htons(port);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// Where the kernel's ephemeral ports start (net.ipv4.ip_local_port_range).
inline std::uint16_t ephemeral_range_start() {
    unsigned low = 32768;
    if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
        if (std::fscanf(f, "%u", &low) != 1) {
            low = 32768;
        }
        std::fclose(f);
    }
    return static_cast<std::uint16_t>(low);
}

// A loopback port no socket is bound to, taken below the kernel's ephemeral range. A port from
// inside that range, once released, can become any process's next outgoing connection's source port
// before the test listens on it (a CI run, with the unit programs side by side, saw EADDRINUSE so).
// Each call gives another port; the first is random so that programs running side by side seldom
// try the same ones.
inline std::uint16_t free_port() {
    constexpr unsigned kLowest = 10000;
    static const unsigned end = ephemeral_range_start();
    if (end <= kLowest + 1000) {
        throw std::runtime_error("ip_local_port_range starts below " +
                                 std::to_string(kLowest + 1000) +
                                 ": no room for the tests' listening ports");
    }
    static std::atomic<unsigned> next{std::random_device{}() % (end - kLowest)};
    for (unsigned tries = 0; tries < end - kLowest; ++tries) {
        const auto port = static_cast<std::uint16_t>(kLowest + next.fetch_add(1) % (end - kLowest));
        if (bindable(port)) {
            return port;
        }
    }
    throw std::runtime_error("no free loopback port below the ephemeral range");
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
