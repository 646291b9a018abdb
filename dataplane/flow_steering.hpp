// Hardware steering at the edges, with the DPDK calls: rte_flow rules on the outside port (the
// rules and the choice of mode are pure, in include/ephemera/steering.hpp) and RSS on the
// source address on the inside port. Whatever the NIC does not take is handed off in software
// by the workers, which check the owner of every packet whatever the mode.
#pragma once

#include "ephemera/ownership.hpp"
#include "ephemera/steering.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

struct rte_eth_conf;
struct rte_eth_dev_info;
struct rte_flow;

namespace ephemera {

struct InsideSteeringChoice {
    InsideSteering mode = InsideSteering::handoff;
    std::string reason; // for handoff

    // "rss-src" | "handoff (reason)"
    [[nodiscard]] std::string describe() const;
};

// Call before rte_eth_dev_configure of the inside port: where the device hashes IPv4 on the
// source address only (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_L3_SRC_ONLY), sets `conf` up for that RSS
// and says rss-src; otherwise leaves `conf` alone and says handoff.
InsideSteeringChoice configure_inside_rss(const rte_eth_dev_info& info, std::uint16_t queues,
                                          rte_eth_conf& conf);

// Call before rte_eth_dev_configure of the outside port: where the device hashes IPv4 UDP and
// TCP with a key we may set and has a RETA of at least 64 entries, sets `conf` up for RSS with
// bucket_rss_key() (held in rss.key, which must outlive the configure call) and fills rss.key
// and rss.reta_size; otherwise says why not in rss.unavailable and leaves `conf` alone. The
// RETA is programmed later, and only if the rte_flow rules do not cover every port
// (OutsideFlowSteering).
void configure_outside_rss(const rte_eth_dev_info& info, std::uint16_t queues, rte_eth_conf& conf,
                           RssNic& rss);

// Create after rte_eth_dev_start of the outside port (most drivers take rules only on a started
// port) and destroy before the port stops: the destructor removes every flow it created. The
// mode is chosen in this order: rte_flow rules; else RSS on port buckets (`rss`, from
// configure_outside_rss), where the RETA is programmed and read back with the key; else
// handoff.
class OutsideFlowSteering {
public:
    OutsideFlowSteering(std::uint16_t port_id, const Ownership& ownership,
                        std::span<const Ipv4Addr> pool, PortRange range, RssNic rss);
    ~OutsideFlowSteering();
    OutsideFlowSteering(const OutsideFlowSteering&) = delete;
    OutsideFlowSteering& operator=(const OutsideFlowSteering&) = delete;

    [[nodiscard]] const OutsideSteeringPlan& plan() const { return plan_; }

private:
    void remove_flows();

    std::uint16_t port_;
    std::vector<rte_flow*> flows_;
    OutsideSteeringPlan plan_;
};

} // namespace ephemera
