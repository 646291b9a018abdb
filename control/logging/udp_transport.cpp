// Syslog or IPFIX over UDP: one datagram per message, sent at once or not at all. Nothing is
// queued, as a datagram the kernel cannot take now (ENOBUFS, EAGAIN) or that the collector's
// host refused (ECONNREFUSED, reported on the next send after its ICMP port unreachable) is one
// the operator chose to lose by choosing UDP.
#include "socket_fd.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
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

    void send_batch(std::span<const std::span<const std::uint8_t>> messages,
                    std::span<std::uint8_t> sent) override {
        std::size_t at = 0;
        while (at < messages.size()) {
            if (!fd_.valid()) {
                for (; at < messages.size(); ++at) {
                    sent[at] = 0;
                    ++errors_;
                }
                return;
            }
            const std::size_t n = std::min(messages.size() - at, kBatch);
            for (std::size_t i = 0; i < n; ++i) {
                iov_[i] = {const_cast<std::uint8_t*>(messages[at + i].data()),
                           messages[at + i].size()};
                headers_[i] = {};
                headers_[i].msg_hdr.msg_iov = &iov_[i];
                headers_[i].msg_hdr.msg_iovlen = 1;
            }
            int done = -1;
            do {
                done = ::sendmmsg(fd_.get(), headers_.data(), static_cast<unsigned>(n),
                                  MSG_NOSIGNAL | MSG_DONTWAIT);
            } while (done < 0 && errno == EINTR);
            // The kernel stops at the first datagram it cannot take: that one is lost (as
            // send() would lose it) and the rest are tried again.
            const std::size_t ok = done < 0 ? 0 : static_cast<std::size_t>(done);
            for (std::size_t i = 0; i < ok; ++i) {
                const bool whole = headers_[i].msg_len == messages[at + i].size();
                sent[at + i] = whole ? 1 : 0;
                errors_ += whole ? 0 : 1;
            }
            at += ok;
            if (ok < n) {
                sent[at] = 0;
                ++errors_;
                ++at;
            }
        }
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

    static constexpr std::size_t kBatch = 64; // datagrams per sendmmsg

    CollectorAddress to_;
    SocketFd fd_;
    std::array<mmsghdr, kBatch> headers_{};
    std::array<iovec, kBatch> iov_{};
    std::uint64_t connections_ = 0;
    std::uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Transport> open_udp_transport(CollectorAddress to) {
    return std::make_unique<UdpTransport>(to);
}

} // namespace ephemera::logging
