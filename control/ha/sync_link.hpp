// One end of the HA sync link's TCP connection (sync_protocol.hpp): a non-blocking socket, the
// frames waiting to be written, and the frames read so far. Owned by the sync thread.
#pragma once

#include "../logging/socket_fd.hpp"
#include "sync_protocol.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ephemera::ha {

class SyncLink {
public:
    // Connects within `timeout`; nullopt with `error` set when it cannot.
    static std::optional<SyncLink> connect(Ipv4Addr address, std::uint16_t port,
                                           std::chrono::milliseconds timeout, std::string& error);
    // A connection accepted on a listening socket.
    explicit SyncLink(logging::SocketFd fd, std::string peer);

    void send(const Message& m) { append_frame(m, out_); }
    // Writes what is queued, as much as the socket takes; false: the connection failed.
    bool flush();
    // Reads what has arrived; false: closed by the peer or failed (error() says which).
    bool receive();
    std::optional<Message> next() { return reader_.next(); }

    [[nodiscard]] std::size_t queued() const { return out_.size() - written_; }
    [[nodiscard]] const std::string& peer() const { return peer_; }
    [[nodiscard]] const std::string& error() const {
        return reader_.error().empty() ? error_ : reader_.error();
    }
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] std::uint64_t bytes_sent() const { return bytes_sent_; }
    [[nodiscard]] std::uint64_t bytes_received() const { return bytes_received_; }

private:
    logging::SocketFd fd_;
    std::string peer_;
    std::vector<std::uint8_t> out_;
    std::size_t written_ = 0;
    FrameReader reader_;
    std::string error_;
    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_received_ = 0;
};

// The listening end; nullopt with `error` set when the address cannot be bound.
std::optional<logging::SocketFd> listen_on(Ipv4Addr address, std::uint16_t port,
                                           std::string& error);
// A pending connection, or nullopt.
std::optional<SyncLink> accept_from(const logging::SocketFd& listener);

} // namespace ephemera::ha
