// The kernel sockets under the collector transports: one owner per descriptor, and the
// collector's address in the form connect() takes.
#pragma once

#include "transport.hpp"

#include <netinet/in.h>
#include <unistd.h>

#include <utility>

namespace ephemera::logging {

class SocketFd {
public:
    SocketFd() = default;
    explicit SocketFd(int fd) : fd_(fd) {}
    ~SocketFd() { reset(); }
    SocketFd(SocketFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    SocketFd& operator=(SocketFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    SocketFd(const SocketFd&) = delete;
    SocketFd& operator=(const SocketFd&) = delete;

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

private:
    int fd_ = -1;
};

sockaddr_in socket_address(CollectorAddress to);

std::unique_ptr<Transport> open_udp_transport(CollectorAddress to);
std::unique_ptr<Transport> open_tcp_transport(CollectorAddress to, std::size_t backlog_bytes);

} // namespace ephemera::logging
