// The sync link's sockets (sync_link.hpp).
#include "sync_link.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

namespace ephemera::ha {

namespace {

void tune(int fd) {
    const int one = 1;
    // Records and heartbeats go at once: the detection time is counted in heartbeats.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::string text_of(const sockaddr_in& a) {
    return Ipv4Addr{ntohl(a.sin_addr.s_addr)}.to_string() + ":" + std::to_string(ntohs(a.sin_port));
}

} // namespace

std::optional<SyncLink> SyncLink::connect(Ipv4Addr address, std::uint16_t port,
                                          std::chrono::milliseconds timeout, std::string& error) {
    logging::SocketFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        error = std::string("socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    const sockaddr_in to = logging::socket_address({address, port});
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
        error = "no answer within " + std::to_string(timeout.count()) + " ms";
        return std::nullopt;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
        error = std::strerror(so_error);
        return std::nullopt;
    }
    tune(fd.get());
    return SyncLink(std::move(fd), text_of(to));
}

SyncLink::SyncLink(logging::SocketFd fd, std::string peer)
    : fd_(std::move(fd)), peer_(std::move(peer)) {
    tune(fd_.get());
}

bool SyncLink::flush() {
    while (written_ < out_.size()) {
        const ssize_t n =
            ::send(fd_.get(), out_.data() + written_, out_.size() - written_, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            error_ = std::string("send: ") + std::strerror(errno);
            return false;
        }
        written_ += static_cast<std::size_t>(n);
        bytes_sent_ += static_cast<std::uint64_t>(n);
    }
    if (written_ == out_.size()) {
        out_.clear();
        written_ = 0;
    } else if (written_ > (1u << 20)) {
        out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(written_));
        written_ = 0;
    }
    return true;
}

bool SyncLink::receive() {
    std::uint8_t buffer[1 << 16];
    for (;;) {
        const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
        if (n > 0) {
            bytes_received_ += static_cast<std::uint64_t>(n);
            reader_.feed(std::span(buffer, static_cast<std::size_t>(n)));
            continue;
        }
        if (n == 0) {
            error_ = "closed by the peer";
            return false;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return true;
        }
        error_ = std::string("recv: ") + std::strerror(errno);
        return false;
    }
}

std::optional<logging::SocketFd> listen_on(Ipv4Addr address, std::uint16_t port,
                                           std::string& error) {
    logging::SocketFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        error = std::string("socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in at = logging::socket_address({address, port});
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(fd.get(), 4) != 0) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    return fd;
}

std::optional<SyncLink> accept_from(const logging::SocketFd& listener) {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const int fd = ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&from), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        return std::nullopt;
    }
    return SyncLink(logging::SocketFd(fd), text_of(from));
}

} // namespace ephemera::ha
