// Syslog (RFC 6587) or IPFIX (RFC 7011 section 10.4) over TCP. The socket never blocks the
// logging thread: connect() runs in the background and is checked on each poll, and what the
// socket does not take waits in a bounded backlog of whole messages. A connection that fails
// or breaks is made again after a backoff that doubles from 100 ms to 5 s, so a collector
// that is down costs one connect attempt per backoff and not one per pass.
#include "byte_ring.hpp"
#include "socket_fd.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <deque>

namespace ephemera::logging {
namespace {

constexpr std::uint64_t kFirstBackoffMs = 100;
constexpr std::uint64_t kMaxBackoffMs = 5000;
// A SYN to a host that never answers is retried by the kernel for about two minutes; give up
// sooner and let the backoff schedule the next attempt.
constexpr std::uint64_t kConnectTimeoutMs = 5000;

class TcpTransport final : public Transport {
public:
    TcpTransport(CollectorAddress to, std::size_t backlog_bytes)
        : to_(to), backlog_(backlog_bytes) {}

    bool send(std::span<const std::uint8_t> message) override {
        if (message.empty()) {
            return true;
        }
        if (!backlog_.push(message)) {
            return false;
        }
        lengths_.push_back(message.size());
        if (state_ == State::up) {
            write_backlog();
        }
        return true;
    }

    void send_batch(std::span<const std::span<const std::uint8_t>> messages,
                    std::span<std::uint8_t> sent) override {
        for (std::size_t i = 0; i < messages.size(); ++i) {
            const bool taken = messages[i].empty() || backlog_.push(messages[i]);
            sent[i] = taken ? 1 : 0;
            if (taken && !messages[i].empty()) {
                lengths_.push_back(messages[i].size());
            }
        }
        if (state_ == State::up) {
            write_backlog();
        }
    }

    void poll(std::uint64_t now_ms) override {
        now_ms_ = now_ms;
        switch (state_) {
        case State::down:
            if (now_ms >= next_attempt_ms_) {
                start_connect();
            }
            break;
        case State::connecting:
            check_connect();
            break;
        case State::up:
            check_peer();
            if (state_ == State::up) {
                write_backlog();
            }
            break;
        }
    }

    [[nodiscard]] bool connected() const override { return state_ == State::up; }
    [[nodiscard]] std::uint64_t connections() const override { return connections_; }
    [[nodiscard]] std::uint64_t errors() const override { return errors_; }
    [[nodiscard]] std::size_t backlog() const override { return backlog_.size(); }
    [[nodiscard]] std::uint64_t messages_cut() const override { return cut_; }
    void set_greeting(std::vector<std::uint8_t> bytes) override { greeting_ = std::move(bytes); }

private:
    enum class State : std::uint8_t { down, connecting, up };

    void start_connect() {
        fd_ = SocketFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd_.valid()) {
            fail();
            return;
        }
        const sockaddr_in sa = socket_address(to_);
        if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
            on_connected();
        } else if (errno == EINPROGRESS) {
            state_ = State::connecting;
            connect_started_ms_ = now_ms_;
        } else {
            fail();
        }
    }

    void check_connect() {
        pollfd p{fd_.get(), POLLOUT, 0};
        if (::poll(&p, 1, 0) <= 0) {
            if (now_ms_ >= connect_started_ms_ + kConnectTimeoutMs) {
                fail();
            }
            return;
        }
        int error = 0;
        socklen_t len = sizeof error;
        if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
            fail();
            return;
        }
        on_connected();
    }

    void on_connected() {
        state_ = State::up;
        ++connections_;
        backoff_ms_ = kFirstBackoffMs;
        // A fresh socket's send buffer takes a greeting of a few hundred bytes whole; one that
        // does not is a connection to give up on.
        if (!greeting_.empty()) {
            const ssize_t n =
                ::send(fd_.get(), greeting_.data(), greeting_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n != static_cast<ssize_t>(greeting_.size())) {
                fail();
                return;
            }
        }
        write_backlog();
    }

    // A collector sends nothing back, so end of stream or an error on a read is how a
    // connection closed by the collector shows while there is nothing to write. Whatever it
    // does send is discarded, a bounded amount per pass so that a chatty peer cannot hold
    // the logging thread.
    void check_peer() {
        std::uint8_t sink[512];
        for (int reads = 0; reads < 16; ++reads) {
            const ssize_t n = ::recv(fd_.get(), sink, sizeof sink, MSG_DONTWAIT);
            if (n > 0) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            fail();
            return;
        }
    }

    void write_backlog() {
        while (!backlog_.empty()) {
            const auto bytes = backlog_.front();
            const ssize_t n =
                ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    fail();
                }
                return;
            }
            written(static_cast<std::size_t>(n));
        }
    }

    void written(std::size_t n) {
        backlog_.pop(n);
        head_written_ += n;
        while (!lengths_.empty() && head_written_ >= lengths_.front()) {
            head_written_ -= lengths_.front();
            lengths_.pop_front();
        }
    }

    // The collector saw the first part of the message at the head, if any, on the connection
    // now gone; the rest alone on the next one would break its framing, so it goes too.
    void fail() {
        ++errors_;
        fd_.reset();
        state_ = State::down;
        if (head_written_ > 0) {
            backlog_.pop(lengths_.front() - head_written_);
            lengths_.pop_front();
            head_written_ = 0;
            ++cut_;
        }
        next_attempt_ms_ = now_ms_ + backoff_ms_;
        backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
    }

    CollectorAddress to_;
    SocketFd fd_;
    State state_ = State::down;
    ByteRing backlog_;
    std::deque<std::size_t> lengths_; // of the messages in backlog_, oldest first
    std::size_t head_written_ = 0;    // bytes of lengths_.front() on the current connection
    std::uint64_t now_ms_ = 0;        // of the last poll: send() has no clock of its own
    std::uint64_t next_attempt_ms_ = 0;
    std::uint64_t connect_started_ms_ = 0;
    std::uint64_t backoff_ms_ = kFirstBackoffMs;
    std::uint64_t connections_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t cut_ = 0;
    std::vector<std::uint8_t> greeting_;
};

} // namespace

std::unique_ptr<Transport> open_tcp_transport(CollectorAddress to, std::size_t backlog_bytes) {
    return std::make_unique<TcpTransport>(to, backlog_bytes);
}

} // namespace ephemera::logging
