#include "ephemera/worker_plan.hpp"

#include <algorithm>

namespace ephemera {

namespace {

std::uint32_t share_of(std::uint32_t total, WorkerId workers) {
    return std::max<std::uint32_t>(1, (total + workers - 1) / workers);
}

constexpr Tick seconds(std::uint32_t s) {
    return s * kTicksPerSecond;
}

} // namespace

Policy Policy::from(const Config& config, WorkerId workers) {
    Policy p;
    p.filtering = config.filtering;
    p.timeout[static_cast<std::size_t>(ProtoIndex::udp)] = seconds(config.timeouts.udp);
    p.timeout[static_cast<std::size_t>(ProtoIndex::tcp)] = seconds(config.timeouts.tcp_established);
    p.timeout[static_cast<std::size_t>(ProtoIndex::icmp)] = seconds(config.timeouts.icmp);
    p.tcp_transitory = seconds(config.timeouts.tcp_transitory);
    p.hold_down = seconds(config.timeouts.port_hold_down);
    p.inbound_refresh = config.timeouts.inbound_refresh;
    p.max_sessions = share_of(config.limits.max_sessions, workers);
    p.max_subscribers = share_of(config.limits.subscribers(), workers);
    p.subscriber_sessions = config.limits.subscriber_sessions;
    p.subscriber_ports = {config.limits.subscriber_ports_udp, config.limits.subscriber_ports_tcp,
                          config.limits.subscriber_ports_icmp};
    // Buckets count in 1/kTicksPerSecond of an item, so a rate per second is a rate per tick.
    p.mapping_rate = config.limits.subscriber_mapping_rate;
    p.mapping_burst = config.limits.subscriber_mapping_burst * kTicksPerSecond;
    p.icmp_unreachable = config.icmp.unreachable && config.icmp.unreachable_rate > 0;
    p.icmp_rate = config.icmp.unreachable_rate;
    p.icmp_burst = std::max<std::uint32_t>(config.icmp.unreachable_rate, 1) * kTicksPerSecond;
    p.gateway = config.inside.gateway;
    p.syn_unreachable = config.icmp.unsolicited_syn_unreachable;
    p.inside_mtu = config.inside.mtu;
    p.outside_mtu = config.outside.mtu;
    p.allocation = config.allocation;
    p.blocks.granules = config.blocks.block_size / kGranuleSlots;
    p.blocks.max_blocks = config.blocks.max_blocks;
    p.blocks.active_timeout = seconds(config.blocks.active_block_timeout);
    p.blocks.adaptive = config.blocks.adaptive;
    p.blocks.sizing = make_block_sizing(config.blocks);
    p.log_events = config.logging.any_sink() ? config.logging.events : 0;
    p.log_destination = config.logging.destination;
    p.block_interim = seconds(config.blocks.interim);
    p.port_threshold = static_cast<std::uint8_t>(config.logging.address_ports_threshold);
    p.session_threshold = static_cast<std::uint8_t>(config.logging.sessions_threshold);
    p.subscriber_port_threshold =
        static_cast<std::uint8_t>(config.logging.subscriber_ports_threshold);
    return p;
}

bool Policy::shortens_timeouts(const Policy& before) const {
    bool shorter = tcp_transitory < before.tcp_transitory;
    for (std::size_t p = 0; p < kProtocolCount; ++p) {
        shorter = shorter || timeout[p] < before.timeout[p];
    }
    return shorter;
}

PlanCompiler::PlanCompiler(const Ownership& ownership, WorkerId worker)
    : slice_(ownership, worker), workers_(ownership.workers()) {}

std::unique_ptr<WorkerPlan> PlanCompiler::compile(std::shared_ptr<const Config> config,
                                                  const WorkerPlan* previous) const {
    auto plan = std::make_unique<WorkerPlan>();
    plan->policy = Policy::from(*config, workers_);

    // Addresses keep their index; new ones are appended with fresh port state.
    std::vector<Ipv4Addr> all;
    if (previous != nullptr) {
        all.assign(previous->pool.addresses().begin(), previous->pool.addresses().end());
        plan->address_ports = previous->address_ports;
    }
    plan->active.assign(all.size(), 0);
    const bool holds = config->allocation != AllocationMode::deterministic;
    for (Ipv4Addr a : config->pool) {
        const auto known = std::find(all.begin(), all.end(), a);
        if (known != all.end()) {
            const auto index = static_cast<std::size_t>(known - all.begin());
            plan->active[index] = WorkerPlan::kPoolAddress;
            if (previous != nullptr &&
                plan->address_ports[index] == previous->static_address_ports) {
                // A former 1:1 address joins the pool: it gets port state of its own.
                plan->address_ports[index] =
                    std::make_shared<AddressPorts>(slice_.slot_count(), holds);
            }
            continue;
        }
        all.push_back(a);
        plan->active.push_back(WorkerPlan::kPoolAddress);
        plan->address_ports.push_back(std::make_shared<AddressPorts>(slice_.slot_count(), holds));
    }

    // The 1:1 addresses join the index (ARP, hairpins and sessions name them by it) but never
    // the allocation: the config refuses one that is also in the pool.
    if (previous != nullptr && previous->config->statics == config->statics) {
        plan->statics = previous->statics;
    } else {
        plan->statics = std::make_shared<const StaticTable>(config->statics);
    }
    plan->static_address_ports = previous != nullptr ? previous->static_address_ports : nullptr;
    for (Ipv4Addr a : plan->statics->one_to_one_addresses()) {
        const auto known = std::find(all.begin(), all.end(), a);
        if (known != all.end()) {
            plan->active[static_cast<std::size_t>(known - all.begin())] =
                WorkerPlan::kStaticAddress;
            continue;
        }
        if (plan->static_address_ports == nullptr) {
            plan->static_address_ports =
                std::make_shared<AddressPorts>(slice_.slot_count(), /*holds=*/false);
        }
        all.push_back(a);
        plan->active.push_back(WorkerPlan::kStaticAddress);
        plan->address_ports.push_back(plan->static_address_ports);
    }
    // A drained box's addresses (docs/ha.md, "Draining a box"): its sessions come in on them
    // with their own ports, so each has port state of its own; nothing is allocated there.
    for (const Config::AdoptedAddress& adopted : config->adopted_pool) {
        const std::uint8_t state =
            adopted.answered ? WorkerPlan::kAdoptedAddress : WorkerPlan::kAdoptedQuiet;
        const auto known = std::find(all.begin(), all.end(), adopted.address);
        if (known != all.end()) {
            auto& current = plan->active[static_cast<std::size_t>(known - all.begin())];
            if (current == 0 || current == WorkerPlan::kAdoptedQuiet) {
                current = state; // not in this box's own pool or statics
            }
            continue;
        }
        all.push_back(adopted.address);
        plan->active.push_back(state);
        plan->address_ports.push_back(std::make_shared<AddressPorts>(slice_.slot_count(), holds));
    }
    plan->pool = PoolIndex(all);
    for (const auto& a : plan->address_ports) {
        plan->address_list.push_back(a.get());
        plan->out2in_list.push_back(a->out2in.data());
    }

    if (previous != nullptr && previous->config->port_range == config->port_range &&
        previous->config->reserved == config->reserved) {
        plan->mask = previous->mask;
    } else {
        plan->mask = std::make_shared<const PortMask>(slice_, config->port_range, config->reserved);
    }
    plan->config = std::move(config);
    return plan;
}

} // namespace ephemera
