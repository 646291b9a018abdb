// The two DPDK ports (inside, outside): looked up by name, configured with one RX and one TX
// queue per worker, started, and stopped and closed again when this object goes away.
#pragma once

#include "flow_steering.hpp"

#include "ephemera/config.hpp"
#include "ephemera/tx_checksum.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

struct rte_mempool;

namespace ephemera {

struct PortInfo {
    std::uint16_t id = 0;
    std::string name;
    MacAddr mac;
    ChecksumOffloadSetting checksum_offload = ChecksumOffloadSetting::automatic; // from the config
};

// Resolves a configured device name; the error names the config key and lists the devices the
// EAL has, so a typo is obvious.
std::variant<PortInfo, ConfigError> find_port(const Config& config, const std::string& key,
                                              const std::string& name);

class Ports {
public:
    // Both ports must already exist (find_port). Throws std::runtime_error naming the port
    // and the failing step, which main reports before any traffic flows.
    Ports(PortInfo inside, PortInfo outside, std::uint16_t queues, rte_mempool* pool);
    ~Ports();
    Ports(const Ports&) = delete;
    Ports& operator=(const Ports&) = delete;

    [[nodiscard]] const PortInfo& inside() const { return inside_; }
    [[nodiscard]] const PortInfo& outside() const { return outside_; }
    // Steering: whether the inside port hashes on the source address (chosen at configure).
    [[nodiscard]] const InsideSteeringChoice& inside_steering() const { return inside_steering_; }
    // What the outside port's RSS can do for steering (configure_outside_rss; the RETA is
    // programmed by OutsideFlowSteering).
    [[nodiscard]] const RssNic& outside_rss() const { return outside_rss_; }
    // The checksums each port computes on transmit, enabled at configure: what its setting
    // allows of what it offers. An offload the port lacks is no error, even where the setting
    // names it: the checksum is computed in software, as on a port that offers nothing, and
    // the reason is shown (describe()).
    [[nodiscard]] const TxChecksumChoice& inside_tx_checksums() const { return inside_tx_; }
    [[nodiscard]] const TxChecksumChoice& outside_tx_checksums() const { return outside_tx_; }

private:
    void setup(const PortInfo& port, std::uint16_t queues, rte_mempool* pool);

    PortInfo inside_;
    PortInfo outside_;
    bool inside_started_ = false;
    bool outside_started_ = false;
    InsideSteeringChoice inside_steering_;
    RssNic outside_rss_; // holds the key rte_eth_dev_configure reads
    TxChecksumChoice inside_tx_;
    TxChecksumChoice outside_tx_;
};

// A standard packet buffer's room for a frame (RTE_MBUF_DEFAULT_DATAROOM).
inline constexpr std::uint16_t kDefaultFrameRoom = 2048;

// The packet buffer pool, sized for every queue's descriptors plus the handoff rings.
struct MempoolDeleter {
    void operator()(rte_mempool* pool) const;
};
using MempoolPtr = std::unique_ptr<rte_mempool, MempoolDeleter>;
// Buffers for every worker's queues and rings, plus `held_per_worker` that a worker's fragment
// table may hold while their datagrams' first pieces are missing, each with `data_room` bytes
// for a frame (rx_frame_room of the ports).
MempoolPtr create_packet_pool(std::uint16_t workers, std::uint32_t held_per_worker = 0,
                              std::uint16_t data_room = kDefaultFrameRoom);

// The largest frame `port` hands a worker in one buffer, and so the buffers' data room it
// needs. DPDK 22.11's net_af_packet copies each frame of its ring (devargs framesz, 2048 bytes
// by default, less its 32-byte header) into one buffer, and refuses buffers smaller than
// that. Its sockets ask the kernel to reassemble IP fragments (PACKET_FANOUT with the defrag
// flag), so what arrives is whole datagrams; a port given framesz=8192 takes datagrams of up to
// 8160 bytes, split again to the MTU on the way out, and buffers follow. Other ports: one
// standard buffer (2048 bytes).
std::uint16_t rx_frame_room(std::uint16_t port);

} // namespace ephemera
