// The translator's frame: construction, taking up plans, and the order of the stages over a
// burst (fast pass, slow pass, hairpin marks). The stages themselves: fast_path.cpp,
// slow_path.cpp, session_create.cpp, icmp_errors.cpp; time: lifecycle.cpp.
#include "ephemera/translator.hpp"

#include <rte_hash.h>

#include <algorithm>
#include <atomic>
#include <string>

namespace ephemera {

namespace {

// Each translator's tables get process-unique rte_hash names, so any number can coexist.
std::string unique_table_name(WorkerId worker) {
    static std::atomic<unsigned> instances{0};
    return "eph" + std::to_string(instances.fetch_add(1)) + "_w" + std::to_string(worker);
}

} // namespace

Translator::Translator(const WorkerPlan& plan, const Ownership& ownership, WorkerId worker,
                       SipKey port_secret, CounterBlock& counters, int socket, Tick start)
    : plan_(&plan), sized_for_(plan.policy), ownership_(ownership), worker_(worker),
      secret_(port_secret), counters_(counters),
      ports_(ownership, worker, plan.config->port_range, plan.config->reserved, 0, port_secret),
      events_(ports_, counters, ownership.workers()), sync_(counters),
      tables_(unique_table_name(worker), plan.policy.max_sessions, plan.policy.max_subscribers,
              socket),
      life_(tables_, ports_, counters_, start) {
    icmp_bucket_ = TokenBucket{plan.policy.icmp_burst, start};
    life_.set_events(&events_);
    life_.set_sync(&sync_);
    if (plan.config->ha.handover()) {
        // A box that may hand subscribers over holds their ports for the replies (at most a
        // quarter of a million per worker: a migration moves subscribers, not the whole box).
        forwards_ = std::make_unique<PortForwards>(
            std::min<std::uint32_t>(plan.policy.max_sessions, 1u << 18), socket);
        life_.set_forwards(forwards_.get());
    }
    apply(plan);
}

void Translator::apply(const WorkerPlan& plan) {
    plan_ = &plan;
    ports_.set_mask(plan.mask.get());
    ports_.set_addresses(plan.address_list, plan.out2in_list);
    life_.apply(plan);
    events_.apply(plan);
}

void Translator::in2out(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                        std::span<Verdict> verdicts) {
    for (std::size_t done = 0; done < packets.size(); done += kMaxBurst) {
        const std::size_t n = std::min(kMaxBurst, packets.size() - done);
        const auto burst = packets.subspan(done, n);
        const auto burst_verdicts = verdicts.subspan(done, n);
        const std::uint64_t slow = l2.tx_checksums.any()
                                       ? in2out_fast<true>(burst, now, l2, burst_verdicts)
                                       : in2out_fast<false>(burst, now, l2, burst_verdicts);
        // The fast path sends nothing that may hairpin: only the slow path's packets can.
        if (slow != 0) {
            in2out_slow(burst, slow, now, l2, burst_verdicts);
            mark_hairpins(burst, burst_verdicts, slow);
            events_.flush();
        }
    }
    sync_.flush(); // sessions made, TCP states changed (a test of a count when HA is off)
}

void Translator::out2in(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                        std::span<Verdict> verdicts) {
    for (std::size_t done = 0; done < packets.size(); done += kMaxBurst) {
        const std::size_t n = std::min(kMaxBurst, packets.size() - done);
        const auto burst = packets.subspan(done, n);
        const auto burst_verdicts = verdicts.subspan(done, n);
        const std::uint64_t slow = l2.tx_checksums.any()
                                       ? out2in_fast<true>(burst, now, l2, burst_verdicts)
                                       : out2in_fast<false>(burst, now, l2, burst_verdicts);
        if (slow != 0) {
            out2in_slow(burst, slow, now, l2, burst_verdicts);
            events_.flush();
        }
    }
    sync_.flush();
}

static_assert(Translator::kMaxBurst <= 64, "the stages mark packets in 64-bit masks");

std::optional<HeldSyn> Translator::take_due_syn(Tick now) {
    while (true) {
        std::optional<HeldSyn> due = held_syns_.take_due(now);
        if (!due || (policy().syn_unreachable && take_icmp_token(now))) {
            return due;
        }
        counters_.add(Counter::icmp_unreachable_rate_limited); // or switched off meanwhile
    }
}

std::size_t Translator::snapshot_mappings(std::span<MappingView> out) const {
    std::size_t written = 0;
    std::uint32_t next = 0;
    std::int32_t pos;
    while (written < out.size() && (pos = tables_.mappings.next(next)) >= 0) {
        const Mapping& m = tables_.mapping_records[static_cast<std::uint32_t>(pos)];
        out[written++] = MappingView{m.proto,
                                     m.inside,
                                     m.inside_port,
                                     pool().address(m.pool_index),
                                     m.external_port,
                                     m.sessions,
                                     (m.flags & kMappingStatic) != 0};
    }
    return written;
}

std::optional<Translator::SubscriberEntry> Translator::find_subscriber(Ipv4Addr inside) const {
    const std::int32_t pos = tables_.subscribers.lookup(SubscriberKey::of(inside));
    if (pos < 0) {
        return std::nullopt;
    }
    const auto index = static_cast<std::uint32_t>(pos);
    return SubscriberEntry{index, &tables_.subscriber_records[index]};
}

} // namespace ephemera
