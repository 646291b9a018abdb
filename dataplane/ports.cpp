#include "ports.hpp"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstring>
#include <stdexcept>

namespace ephemera {

namespace {

constexpr std::uint16_t kRxDescriptors = 1024;
constexpr std::uint16_t kTxDescriptors = 1024;
constexpr std::uint32_t kMempoolCache = 256;
// Per worker: RX and TX rings of both ports, the handoff rings into it, and in-flight bursts.
constexpr std::uint32_t kMbufsPerWorker = 2 * (kRxDescriptors + kTxDescriptors) + 2048 + 512;

[[noreturn]] void fail(const PortInfo& port, const std::string& step, int rc) {
    throw std::runtime_error("port " + port.name + ": " + step +
                             " failed: " + rte_strerror(rc < 0 ? -rc : rc));
}

} // namespace

std::variant<PortInfo, ConfigError> find_port(const Config& config, const std::string& key,
                                              const std::string& name) {
    std::uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
        std::string known;
        std::uint16_t p = 0;
        RTE_ETH_FOREACH_DEV(p) {
            char dev[RTE_ETH_NAME_MAX_LEN];
            if (rte_eth_dev_get_name_by_port(p, dev) == 0) {
                known += known.empty() ? "" : ", ";
                known += dev;
            }
        }
        return ConfigError{config.source, key,
                           "port '" + name + "' not found; the EAL has: " +
                               (known.empty() ? std::string("no ports (add --vdev?)") : known)};
    }
    PortInfo info;
    info.id = id;
    info.name = name;
    rte_ether_addr mac{};
    rte_eth_macaddr_get(id, &mac);
    std::memcpy(info.mac.bytes, mac.addr_bytes, 6);
    return info;
}

Ports::Ports(PortInfo inside, PortInfo outside, std::uint16_t queues, rte_mempool* pool)
    : inside_(std::move(inside)), outside_(std::move(outside)) {
    setup(inside_, queues, pool);
    inside_started_ = true;
    setup(outside_, queues, pool);
    outside_started_ = true;
}

void Ports::setup(const PortInfo& port, std::uint16_t queues, rte_mempool* pool) {
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port.id, &info); rc != 0) {
        fail(port, "reading device info", rc);
    }
    if (info.max_rx_queues < queues || info.max_tx_queues < queues) {
        throw std::runtime_error(
            "port " + port.name + ": " + std::to_string(queues) +
            " workers need as many RX and TX queues, the device has " +
            std::to_string(info.max_rx_queues) + " RX and " + std::to_string(info.max_tx_queues) +
            " TX (give net_af_packet qpairs=N, net_pcap one rx_pcap/tx_pcap per worker)");
    }
    rte_eth_conf conf{};
    if (&port == &inside_) {
        inside_steering_ = configure_inside_rss(info, queues, conf); // steering: RSS before start
    } else {
        configure_outside_rss(info, queues, conf, outside_rss_);
    }
    int configured = rte_eth_dev_configure(port.id, queues, queues, &conf);
    if (configured != 0 && &port == &outside_ && outside_rss_.unavailable.empty()) {
        // Our RSS key is an optimisation: a device that refuses it runs without RSS, as before.
        outside_rss_.unavailable = std::string("rte_eth_dev_configure refused RSS with our key: ") +
                                   rte_strerror(-configured);
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
        conf.rx_adv_conf.rss_conf = {};
        configured = rte_eth_dev_configure(port.id, queues, queues, &conf);
    }
    if (configured != 0) {
        fail(port, "configure", configured);
    }
    std::uint16_t rx_desc = kRxDescriptors;
    std::uint16_t tx_desc = kTxDescriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port.id, &rx_desc, &tx_desc); rc != 0) {
        fail(port, "adjusting descriptors", rc);
    }
    const int socket = rte_eth_dev_socket_id(port.id);
    for (std::uint16_t q = 0; q < queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(port.id, q, rx_desc, socket, nullptr, pool); rc != 0) {
            fail(port, "RX queue " + std::to_string(q) + " setup", rc);
        }
        if (int rc = rte_eth_tx_queue_setup(port.id, q, tx_desc, socket, nullptr); rc != 0) {
            fail(port, "TX queue " + std::to_string(q) + " setup", rc);
        }
    }
    if (int rc = rte_eth_dev_start(port.id); rc != 0) {
        fail(port, "start", rc);
    }
    // Frames for other hosts on the segment are filtered in software by destination MAC;
    // promiscuous mode is only needed by devices that would otherwise hide broadcasts.
    rte_eth_promiscuous_enable(port.id);
}

Ports::~Ports() {
    for (auto [port, started] :
         {std::pair{&inside_, inside_started_}, std::pair{&outside_, outside_started_}}) {
        if (started) {
            rte_eth_dev_stop(port->id);
            rte_eth_dev_close(port->id);
        }
    }
}

void MempoolDeleter::operator()(rte_mempool* pool) const {
    rte_mempool_free(pool);
}

MempoolPtr create_packet_pool(std::uint16_t workers, std::uint32_t held_per_worker) {
    const std::uint32_t count = (kMbufsPerWorker + held_per_worker) * workers + 4096;
    rte_mempool* pool =
        rte_pktmbuf_pool_create("eph_mbufs", count, kMempoolCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                static_cast<int>(rte_socket_id()));
    if (pool == nullptr) {
        throw std::runtime_error(std::string("cannot create the packet pool of ") +
                                 std::to_string(count) + " buffers: " + rte_strerror(rte_errno) +
                                 " (raise the EAL's -m)");
    }
    return MempoolPtr(pool);
}

} // namespace ephemera
