// Syslog or IPFIX over UDP: one datagram per message, sent at once or not at all. Nothing is
// queued, as a datagram the kernel cannot take now (ENOBUFS, EAGAIN) or that the collector's
// host refused (ECONNREFUSED, reported on the next send after its ICMP port unreachable) is one
// the operator chose to lose by choosing UDP.
#include "socket_fd.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace ephemera::logging {
namespace {

class UdpTransport final : public Transport {
public:
    explicit UdpTransport(CollectorAddress to) : to_(to) { open_socket(); }

    bool send(std::span<const std::uint8_t> message) override {
        if (!fd_.valid()) {
            ++errors_;
            return false;
        }
        ssize_t n = -1;
        do {
            n = ::send(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 || static_cast<std::size_t>(n) != message.size()) {
            ++errors_;
            return false;
        }
        return true;
    }

    void poll(std::uint64_t) override {
        if (!fd_.valid()) {
            open_socket();
        }
    }

    [[nodiscard]] bool connected() const override { return true; }
    [[nodiscard]] std::uint64_t connections() const override { return connections_; }
    [[nodiscard]] std::uint64_t errors() const override { return errors_; }
    [[nodiscard]] std::size_t backlog() const override { return 0; }

private:
    // Connected, so that send() needs no address and an ICMP unreachable comes back as an
    // error on this socket instead of being dropped by the kernel.
    void open_socket() {
        SocketFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        const sockaddr_in sa = socket_address(to_);
        if (!fd.valid() ||
            ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
            ++errors_;
            return;
        }
        fd_ = std::move(fd);
        ++connections_;
    }

    CollectorAddress to_;
    SocketFd fd_;
    std::uint64_t connections_ = 0;
    std::uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Transport> open_udp_transport(CollectorAddress to) {
    return std::make_unique<UdpTransport>(to);
}

} // namespace ephemera::logging
