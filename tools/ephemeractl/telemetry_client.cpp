#include "telemetry_client.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace ephemeractl {

namespace {

// The greeting is a few dozen bytes; this leaves room for fields a later DPDK may add.
constexpr std::size_t kGreetingCapacity = 4096;

std::string errno_text(int err) {
    return std::strerror(err);
}

} // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        UniqueFd old(fd_);
        fd_ = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

int UniqueFd::release() noexcept {
    return std::exchange(fd_, -1);
}

std::string socket_path_for_prefix(const std::string& prefix) {
    return "/var/run/dpdk/" + prefix + "/dpdk_telemetry.v2";
}

TelemetryClient::TelemetryClient(const std::string& socket_path, std::chrono::milliseconds timeout)
    : path_(socket_path) {
    const std::string hint = "; is ephemera running, and is --prefix (or EPHEMERA_PREFIX) its "
                             "EAL --file-prefix?";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof(addr.sun_path)) {
        throw TelemetryError("cannot connect to " + path_ + ": path longer than " +
                             std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (fd_.get() < 0) {
        throw TelemetryError("cannot create a unix socket: " + errno_text(errno));
    }
    // Bounds every recv and send: a server that stops answering makes us fail, not hang.
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        throw TelemetryError("cannot connect to " + path_ + ": " + errno_text(errno) + hint);
    }

    Greeting greeting = parse_greeting(receive(kGreetingCapacity, "the greeting", ""), path_);
    greeting_ = std::move(greeting.json);
    max_output_len_ = greeting.max_output_len;
}

Greeting parse_greeting(const std::string& text, const std::string& path) {
    Json json = Json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
        throw TelemetryError(path + ": the greeting is not a JSON object; is this a DPDK "
                                    "telemetry v2 socket?");
    }
    std::size_t max_output_len = kDefaultMaxOutputLen;
    if (const auto it = json.find("max_output_len");
        it != json.end() && it->is_number_unsigned() && it->get<std::size_t>() > 0) {
        max_output_len = it->get<std::size_t>();
    }
    return {std::move(json), max_output_len};
}

Json parse_reply(const std::string& text, const std::string& command) {
    Json reply = Json::parse(text, nullptr, false);
    if (reply.is_discarded()) {
        throw TelemetryError(command + ": the reply is not JSON");
    }
    if (!reply.is_object() || reply.size() != 1 || !reply.contains(command)) {
        throw TelemetryError(command + ": the reply is not {\"" + command + "\": ...}");
    }
    return std::move(reply[command]);
}

std::string TelemetryClient::receive(std::size_t capacity, const std::string& what,
                                     const std::string& limit_note) {
    // One byte more than the largest legal message, so that a message of exactly `capacity`
    // bytes is not mistaken for a truncated one.
    std::vector<char> buffer(capacity + 1);
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
    if (n < 0) {
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            throw TelemetryError(path_ + ": no answer for " + what + " (timed out)");
        }
        throw TelemetryError(path_ + ": cannot read " + what + ": " + errno_text(err));
    }
    if (n == 0) {
        throw TelemetryError(path_ + ": the server closed the connection before " + what +
                             " (too many telemetry clients?)");
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<std::size_t>(n) > capacity) {
        throw TelemetryError(path_ + ": " + what + " is longer than " + std::to_string(capacity) +
                             " bytes" + limit_note);
    }
    return {buffer.data(), static_cast<std::size_t>(n)};
}

Json TelemetryClient::query(const Request& request) {
    const std::string wire = request.wire();
    if (wire.size() > kMaxRequestLen) {
        throw TelemetryError(request.command + ": request longer than " +
                             std::to_string(kMaxRequestLen) + " bytes");
    }
    if (::send(fd_.get(), wire.data(), wire.size(), MSG_NOSIGNAL) < 0) {
        throw TelemetryError(path_ + ": cannot send " + request.command + ": " + errno_text(errno));
    }
    const std::string what = "the reply to " + request.command;
    return parse_reply(receive(max_output_len_, what, " (max_output_len in the server's greeting)"),
                       request.command);
}

} // namespace ephemeractl
