#include "ports.hpp"

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstring>
#include <stdexcept>
#include <unistd.h>

namespace loadgen {

namespace {

constexpr std::uint16_t kRxDescriptors = 1024;
constexpr std::uint16_t kTxDescriptors = 1024;
constexpr unsigned kMempoolCache = 256;

[[noreturn]] void fail(const std::string& port, const std::string& step, int rc) {
    throw std::runtime_error("port " + port + ": " + step +
                             " failed: " + rte_strerror(rc < 0 ? -rc : rc));
}

} // namespace

void MempoolDeleter::operator()(rte_mempool* pool) const {
    rte_mempool_free(pool);
}

MempoolPtr create_mbuf_pool(const char* name, unsigned count) {
    rte_mempool* pool =
        rte_pktmbuf_pool_create(name, count, kMempoolCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                static_cast<int>(rte_socket_id()));
    if (pool == nullptr) {
        throw std::runtime_error("cannot create a pool of " + std::to_string(count) +
                                 " mbufs: " + rte_strerror(rte_errno) + " (raise the EAL's -m)");
    }
    return MempoolPtr(pool);
}

std::string memif_server_devargs(const std::string& socket_path, const Mac& mac) {
    ::unlink(socket_path.c_str()); // a listener cannot bind over a leftover socket file
    return "role=server,socket=" + socket_path + ",socket-abstract=no,mac=" + mac.to_string();
}

LoadPort::LoadPort(const std::string& name, const std::string& devargs, std::uint16_t queues,
                   rte_mempool* pool)
    : name_(name) {
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id_) != 0) {
        // Hot-plugging through the EAL (bus "vdev" is implied by the net_ prefix).
        if (int rc = rte_dev_probe((name + "," + devargs).c_str()); rc != 0) {
            fail(name, "creating vdev with " + devargs, rc);
        }
        created_ = true;
        if (rte_eth_dev_get_port_by_name(name.c_str(), &id_) != 0) {
            throw std::runtime_error("port " + name + ": created but not found");
        }
    }
    rte_ether_addr mac{};
    rte_eth_macaddr_get(id_, &mac);
    std::memcpy(mac_.bytes.data(), mac.addr_bytes, 6);

    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(id_, &info); rc != 0) {
        fail(name, "reading device info", rc);
    }
    device_ = info.device;
    if (info.max_rx_queues < queues || info.max_tx_queues < queues) {
        throw std::runtime_error("port " + name + ": " + std::to_string(queues) +
                                 " queues asked for, the device has " +
                                 std::to_string(info.max_rx_queues));
    }
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(id_, queues, queues, &conf); rc != 0) {
        fail(name, "configure", rc);
    }
    std::uint16_t rx_desc = kRxDescriptors;
    std::uint16_t tx_desc = kTxDescriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id_, &rx_desc, &tx_desc); rc != 0) {
        fail(name, "adjusting descriptors", rc);
    }
    const int socket = rte_eth_dev_socket_id(id_);
    for (std::uint16_t q = 0; q < queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(id_, q, rx_desc, socket, nullptr, pool); rc != 0) {
            fail(name, "RX queue " + std::to_string(q) + " setup", rc);
        }
        if (int rc = rte_eth_tx_queue_setup(id_, q, tx_desc, socket, nullptr); rc != 0) {
            fail(name, "TX queue " + std::to_string(q) + " setup", rc);
        }
    }
    if (int rc = rte_eth_dev_start(id_); rc != 0) {
        fail(name, "start", rc);
    }
    started_ = true;
    rte_eth_promiscuous_enable(id_);
}

LoadPort::~LoadPort() {
    if (started_) {
        rte_eth_dev_stop(id_);
    }
    rte_eth_dev_close(id_);
    if (created_ && device_ != nullptr) {
        rte_dev_remove(device_); // removes the memif listener socket too
    }
}

bool LoadPort::link_up() const {
    rte_eth_link link{};
    return rte_eth_link_get_nowait(id_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

} // namespace loadgen
