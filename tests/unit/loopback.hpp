// Real sockets on 127.0.0.1 for the logging transport tests: a collector's side of UDP and
// TCP, with every wait bounded so that a broken transport fails a test instead of hanging it.
#pragma once

#include "logging/socket_fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace ephemera::logging::testing {

inline std::uint64_t steady_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

inline std::uint16_t bound_port(const SocketFd& fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

// Bound to 127.0.0.1:port (0: any free port), and listening when it is a stream socket.
inline SocketFd bound_socket(int type, std::uint16_t port = 0) {
    SocketFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in sa = loopback(port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
        (type == SOCK_STREAM && ::listen(fd.get(), 8) != 0)) {
        fd.reset();
    }
    return fd;
}

// A port nothing listens on (right after this returns; the kernel does not hand out a port
// it just freed again at once).
inline std::uint16_t unused_port(int type) {
    return bound_port(bound_socket(type));
}

inline CollectorAddress collector(std::uint16_t port) {
    return CollectorAddress{Ipv4Addr(127, 0, 0, 1), port};
}

inline bool readable(const SocketFd& fd, int timeout_ms) {
    pollfd p{fd.get(), POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) > 0;
}

inline std::optional<std::string> receive_datagram(const SocketFd& fd, int timeout_ms = 2000) {
    if (!readable(fd, timeout_ms)) {
        return std::nullopt;
    }
    char buf[65536];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    return n < 0 ? std::nullopt : std::optional<std::string>(std::string(buf, buf + n));
}

inline SocketFd accept_within(const SocketFd& listener, int timeout_ms = 2000) {
    if (!readable(listener, timeout_ms)) {
        return SocketFd();
    }
    return SocketFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

// Reads until `size` bytes came or `timeout_ms` passed, calling `pump` (a transport's poll)
// between reads, since the transport writes its backlog only when polled.
inline std::string read_stream(const SocketFd& fd, std::size_t size,
                               const std::function<void()>& pump, int timeout_ms = 3000) {
    std::string out;
    const std::uint64_t until = steady_ms() + static_cast<std::uint64_t>(timeout_ms);
    while (out.size() < size && steady_ms() < until) {
        pump();
        if (!readable(fd, 5)) {
            continue;
        }
        char buf[65536];
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        out.append(buf, buf + n);
    }
    return out;
}

// Polls `pump` until `done` holds or `timeout_ms` passed.
inline bool poll_until(const std::function<void()>& pump, const std::function<bool()>& done,
                       int timeout_ms = 3000) {
    const std::uint64_t until = steady_ms() + static_cast<std::uint64_t>(timeout_ms);
    while (!done()) {
        if (steady_ms() >= until) {
            return false;
        }
        pump();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

} // namespace ephemera::logging::testing
