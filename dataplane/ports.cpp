#include "ports.hpp"

#include <rte_devargs.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace ephemera {

namespace {

constexpr std::uint16_t kRxDescriptors = 1024;
constexpr std::uint16_t kTxDescriptors = 1024;
constexpr std::uint32_t kMempoolCache = 256;
// Per worker: RX and TX rings of both ports, the handoff rings into it, and in-flight bursts.
constexpr std::uint32_t kMbufsPerWorker = 2 * (kRxDescriptors + kTxDescriptors) + 2048 + 512;

// tx_checksum.hpp names DPDK's offload bits without including DPDK.
static_assert(tx_offload_capa::ipv4_cksum == RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
static_assert(tx_offload_capa::udp_cksum == RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
static_assert(tx_offload_capa::tcp_cksum == RTE_ETH_TX_OFFLOAD_TCP_CKSUM);

std::uint64_t tx_offloads(TxChecksums enabled) {
    return (enabled.has(TxChecksums::ipv4) ? RTE_ETH_TX_OFFLOAD_IPV4_CKSUM : 0) |
           (enabled.has(TxChecksums::udp) ? RTE_ETH_TX_OFFLOAD_UDP_CKSUM : 0) |
           (enabled.has(TxChecksums::tcp) ? RTE_ETH_TX_OFFLOAD_TCP_CKSUM : 0);
}

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
    TxChecksumChoice& tx = &port == &inside_ ? inside_tx_ : outside_tx_;
    tx = choose_tx_checksums(info.tx_offload_capa, port.checksum_offload,
                             info.driver_name != nullptr ? info.driver_name : port.name);
    conf.txmode.offloads = tx_offloads(tx.enabled);
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

MempoolPtr create_packet_pool(std::uint16_t workers, std::uint32_t held_per_worker,
                              std::uint16_t data_room) {
    const std::uint32_t count = (kMbufsPerWorker + held_per_worker) * workers + 4096;
    const auto buffer = static_cast<std::uint16_t>(
        std::min<std::uint32_t>(0xffff, std::uint32_t{data_room} + RTE_PKTMBUF_HEADROOM));
    rte_mempool* pool = rte_pktmbuf_pool_create("eph_mbufs", count, kMempoolCache, 0, buffer,
                                                static_cast<int>(rte_socket_id()));
    if (pool == nullptr) {
        throw std::runtime_error(std::string("cannot create the packet pool of ") +
                                 std::to_string(count) + " buffers of " + std::to_string(buffer) +
                                 " bytes: " + rte_strerror(rte_errno) + " (raise the EAL's -m)");
    }
    return MempoolPtr(pool);
}

namespace {

// net_af_packet's header in each ring frame that is not copied (TPACKET2_HDRLEN less the
// sockaddr_ll it includes), as its rx queue setup counts it.
constexpr std::uint32_t kAfPacketFrameHeader = 32;
constexpr std::uint32_t kAfPacketDefaultFrame = 2048;

// The value of `key` in a "k1=v1,k2=v2" device argument string.
std::optional<std::uint32_t> devarg(std::string_view args, std::string_view key) {
    while (!args.empty()) {
        const std::string_view item = args.substr(0, args.find(','));
        args.remove_prefix(std::min(args.size(), item.size() + 1));
        if (item.size() > key.size() && item.starts_with(key) && item[key.size()] == '=') {
            std::uint32_t value = 0;
            const std::string_view text = item.substr(key.size() + 1);
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec == std::errc() && end == text.data() + text.size()) {
                return value;
            }
        }
    }
    return std::nullopt;
}

} // namespace

std::uint16_t rx_frame_room(std::uint16_t port) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port, &info) != 0 || info.device == nullptr ||
        info.driver_name == nullptr || std::string_view(info.driver_name) != "net_af_packet") {
        return kDefaultFrameRoom;
    }
    std::uint32_t frame = kAfPacketDefaultFrame;
    if (const rte_devargs* args = rte_dev_devargs(info.device);
        args != nullptr && args->args != nullptr) {
        frame = devarg(args->args, "framesz").value_or(kAfPacketDefaultFrame);
    }
    const std::uint32_t room = frame > kAfPacketFrameHeader ? frame - kAfPacketFrameHeader : 0;
    return static_cast<std::uint16_t>(
        std::clamp<std::uint32_t>(room, kDefaultFrameRoom, 0xffff - RTE_PKTMBUF_HEADROOM));
}

} // namespace ephemera
