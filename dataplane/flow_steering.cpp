#include "flow_steering.hpp"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <vector>

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

constexpr std::uint64_t kBucketRssTypes =
    RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV4_TCP;

// Writes the RETA, then reads the RETA and the key back: a driver may take values it does not
// apply, and only what the NIC really holds makes the queues agree with port_owner().
std::optional<std::string> program_reta(std::uint16_t port, const std::string& driver,
                                        std::span<const std::uint8_t> key,
                                        std::span<const std::uint16_t> reta) {
    const auto size = static_cast<std::uint16_t>(reta.size());
    std::vector<rte_eth_rss_reta_entry64> table(reta.size() / RTE_ETH_RETA_GROUP_SIZE);
    for (std::size_t i = 0; i < reta.size(); ++i) {
        auto& group = table[i / RTE_ETH_RETA_GROUP_SIZE];
        group.mask |= std::uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
        group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = reta[i];
    }
    if (int rc = rte_eth_dev_rss_reta_update(port, table.data(), size); rc != 0) {
        return driver + ": rte_eth_dev_rss_reta_update: " + rte_strerror(-rc);
    }
    std::vector<rte_eth_rss_reta_entry64> back(table.size());
    for (auto& group : back) {
        group.mask = ~std::uint64_t{0};
    }
    if (int rc = rte_eth_dev_rss_reta_query(port, back.data(), size); rc != 0) {
        return driver + ": rte_eth_dev_rss_reta_query: " + rte_strerror(-rc);
    }
    for (std::size_t i = 0; i < reta.size(); ++i) {
        if (back[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] != reta[i]) {
            return driver + ": the RETA reads back different (entry " + std::to_string(i) + ")";
        }
    }
    std::vector<std::uint8_t> key_back(key.size(), 0);
    rte_eth_rss_conf conf{};
    conf.rss_key = key_back.data();
    conf.rss_key_len = static_cast<std::uint8_t>(key_back.size());
    if (int rc = rte_eth_dev_rss_hash_conf_get(port, &conf); rc != 0) {
        return driver + ": rte_eth_dev_rss_hash_conf_get: " + rte_strerror(-rc);
    }
    if (!std::equal(key.begin(), key.end(), key_back.begin())) {
        return driver + ": the RSS key reads back different";
    }
    if ((conf.rss_hf & kBucketRssTypes) != kBucketRssTypes) {
        return driver + ": RSS on IPv4 UDP and TCP is not on";
    }
    return std::nullopt;
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

void configure_outside_rss(const rte_eth_dev_info& info, std::uint16_t queues, rte_eth_conf& conf,
                           RssNic& rss) {
    const std::string driver = info.driver_name != nullptr ? info.driver_name : "the device";
    rss = RssNic{};
    if (queues < 2) {
        rss.unavailable = "one worker";
        return;
    }
    if ((info.flow_type_rss_offloads & kBucketRssTypes) != kBucketRssTypes) {
        rss.unavailable = driver + " has no RSS on IPv4 UDP and TCP";
        return;
    }
    if (info.hash_key_size < ToeplitzRss::kMinKeySize) {
        rss.unavailable =
            driver + " takes no RSS key (hash_key_size " + std::to_string(info.hash_key_size) + ")";
        return;
    }
    if (info.reta_size < Ownership::kBuckets || !std::has_single_bit(info.reta_size)) {
        rss.unavailable = driver + " has a RETA of " + std::to_string(info.reta_size) +
                          " entries, port buckets need a power of two of at least 64";
        return;
    }
    rss.key = bucket_rss_key(info.hash_key_size);
    rss.reta_size = info.reta_size;
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = rss.key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<std::uint8_t>(rss.key.size());
    conf.rx_adv_conf.rss_conf.rss_hf = kBucketRssTypes;
}

OutsideFlowSteering::OutsideFlowSteering(std::uint16_t port_id, const Ownership& ownership,
                                         std::span<const Ipv4Addr> pool, PortRange range,
                                         RssNic rss)
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
    if (rss.unavailable.empty()) {
        rss.program = [&](std::span<const std::uint16_t> reta) {
            return program_reta(port_, driver, rss.key, reta);
        };
    }
    try {
        plan_ = plan_outside_steering(ownership, pool, range, nic, &rss);
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
