// The load generator's two ports. By default each is a net_memif server created here (so the
// sockets exist before the NAT or the floor forwarder starts and connects as the client); a
// device the EAL already has (a --vdev, or a real NIC) can be named instead.
#pragma once

#include "frame.hpp"

#include <cstdint>
#include <memory>
#include <string>

struct rte_device;
struct rte_mempool;

namespace loadgen {

struct MempoolDeleter {
    void operator()(rte_mempool* pool) const;
};
using MempoolPtr = std::unique_ptr<rte_mempool, MempoolDeleter>;
MempoolPtr create_mbuf_pool(const char* name, unsigned count);

class LoadPort {
public:
    // If `name` is an existing EAL device it is used as is; otherwise a vdev `name` is created
    // with `devargs`. Throws std::runtime_error naming the failing step.
    LoadPort(const std::string& name, const std::string& devargs, std::uint16_t queues,
             rte_mempool* pool);
    ~LoadPort();
    LoadPort(const LoadPort&) = delete;
    LoadPort& operator=(const LoadPort&) = delete;

    [[nodiscard]] std::uint16_t id() const { return id_; }
    [[nodiscard]] const Mac& mac() const { return mac_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] bool link_up() const;

private:
    std::string name_;
    std::uint16_t id_ = 0;
    Mac mac_;
    rte_device* device_ = nullptr;
    bool created_ = false;
    bool started_ = false;
};

// "role=server,socket=PATH,socket-abstract=no,mac=MAC" for a memif listener at PATH; a stale
// socket file from an earlier run is removed first.
std::string memif_server_devargs(const std::string& socket_path, const Mac& mac);

} // namespace loadgen
