#include "flow_steering.hpp"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>

#include <array>
#include <cerrno>
#include <cstdio>

namespace ephemera {

namespace {

// One rule's pattern and actions. rte_flow.h hides its default item masks from C++, so every
// item that matches anything carries its own spec and mask:
//   ETH (any) / IPV4 dst under dst_mask / UDP|TCP dst port under port_mask -> QUEUE.
// The items point into this object, so it stays where it was built.
class FlowPattern {
public:
    explicit FlowPattern(const SteeringRule& rule) {
        attr_.ingress = 1;
        ip_spec_.hdr.dst_addr = rte_cpu_to_be_32(rule.dst.value());
        ip_mask_.hdr.dst_addr = rte_cpu_to_be_32(rule.dst_mask);
        pattern_[0].type = RTE_FLOW_ITEM_TYPE_ETH;
        pattern_[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
        pattern_[1].spec = &ip_spec_;
        pattern_[1].mask = &ip_mask_;
        if (rule.proto == Protocol::tcp) {
            tcp_spec_.hdr.dst_port = rte_cpu_to_be_16(rule.port_spec);
            tcp_mask_.hdr.dst_port = rte_cpu_to_be_16(rule.port_mask);
            pattern_[2].type = RTE_FLOW_ITEM_TYPE_TCP;
            pattern_[2].spec = &tcp_spec_;
            pattern_[2].mask = &tcp_mask_;
        } else {
            udp_spec_.hdr.dst_port = rte_cpu_to_be_16(rule.port_spec);
            udp_mask_.hdr.dst_port = rte_cpu_to_be_16(rule.port_mask);
            pattern_[2].type = RTE_FLOW_ITEM_TYPE_UDP;
            pattern_[2].spec = &udp_spec_;
            pattern_[2].mask = &udp_mask_;
        }
        pattern_[3].type = RTE_FLOW_ITEM_TYPE_END;
        queue_.index = rule.queue;
        actions_[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
        actions_[0].conf = &queue_;
        actions_[1].type = RTE_FLOW_ACTION_TYPE_END;
    }
    FlowPattern(const FlowPattern&) = delete;
    FlowPattern& operator=(const FlowPattern&) = delete;

    int validate(std::uint16_t port, rte_flow_error* error) const {
        return rte_flow_validate(port, &attr_, pattern_.data(), actions_.data(), error);
    }
    rte_flow* create(std::uint16_t port, rte_flow_error* error) const {
        return rte_flow_create(port, &attr_, pattern_.data(), actions_.data(), error);
    }

private:
    rte_flow_attr attr_{};
    rte_flow_item_ipv4 ip_spec_{};
    rte_flow_item_ipv4 ip_mask_{};
    rte_flow_item_udp udp_spec_{};
    rte_flow_item_udp udp_mask_{};
    rte_flow_item_tcp tcp_spec_{};
    rte_flow_item_tcp tcp_mask_{};
    std::array<rte_flow_item, 4> pattern_{};
    rte_flow_action_queue queue_{};
    std::array<rte_flow_action, 2> actions_{};
};

std::string driver_name(std::uint16_t port) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port, &info) != 0 || info.driver_name == nullptr) {
        return "port " + std::to_string(port);
    }
    return info.driver_name;
}

std::string flow_error(const std::string& driver, const char* step, int rc,
                       const rte_flow_error& error) {
    if (rc == -ENOSYS) {
        return driver + " has no rte_flow support";
    }
    const int code = rc < 0 ? -rc : rc;
    return driver + ": " + step + ": " +
           (error.message != nullptr ? error.message : rte_strerror(code));
}

} // namespace

std::string InsideSteeringChoice::describe() const {
    if (mode == InsideSteering::rss_src) {
        return std::string(steering_name(mode));
    }
    return "handoff (" + reason + ")";
}

InsideSteeringChoice configure_inside_rss(const rte_eth_dev_info& info, std::uint16_t queues,
                                          rte_eth_conf& conf) {
    constexpr std::uint64_t kSourceOnly = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_L3_SRC_ONLY;
    InsideSteeringChoice choice;
    if (queues < 2) {
        choice.reason = "one worker: every packet is already on its owner's queue";
        return choice;
    }
    if ((info.flow_type_rss_offloads & kSourceOnly) != kSourceOnly) {
        choice.reason = std::string(info.driver_name != nullptr ? info.driver_name : "the device") +
                        " has no RSS on the source address only";
        return choice;
    }
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = nullptr; // the driver's key
    conf.rx_adv_conf.rss_conf.rss_hf = kSourceOnly;
    choice.mode = InsideSteering::rss_src;
    return choice;
}

OutsideFlowSteering::OutsideFlowSteering(std::uint16_t port_id, const Ownership& ownership,
                                         std::span<const Ipv4Addr> pool, PortRange range)
    : port_(port_id) {
    const std::string driver = driver_name(port_id);
    FlowNic nic;
    nic.validate = [&](const SteeringRule& rule) -> std::optional<std::string> {
        const FlowPattern flow(rule);
        rte_flow_error error{};
        const int rc = flow.validate(port_, &error);
        if (rc != 0) {
            return flow_error(driver, "rte_flow_validate", rc, error);
        }
        return std::nullopt;
    };
    nic.create = [&](const SteeringRule& rule) -> std::optional<std::string> {
        const FlowPattern flow(rule);
        rte_flow_error error{};
        rte_flow* created = flow.create(port_, &error);
        if (created == nullptr) {
            return flow_error(driver, "rte_flow_create", -rte_errno, error);
        }
        flows_.push_back(created);
        return std::nullopt;
    };
    try {
        plan_ = plan_outside_steering(ownership, pool, range, nic);
    } catch (...) {
        remove_flows();
        throw;
    }
}

OutsideFlowSteering::~OutsideFlowSteering() {
    remove_flows();
}

void OutsideFlowSteering::remove_flows() {
    for (rte_flow* flow : flows_) {
        rte_flow_error error{};
        if (rte_flow_destroy(port_, flow, &error) != 0) {
            std::fprintf(stderr, "ephemera: port %u: removing a steering rule failed: %s\n",
                         static_cast<unsigned>(port_),
                         error.message != nullptr ? error.message : rte_strerror(rte_errno));
        }
    }
    flows_.clear();
}

} // namespace ephemera
