// Control compiles, workers apply. A WorkerPlan is everything one worker needs from a config,
// ready to use: the policy in packet-path units, the pool with its per-address port state, and
// the port mask of the range. The control thread builds it (PlanCompiler), off the worker's
// core; the worker takes it between bursts by swapping pointers (Translator::apply): no
// allocation, no table reset and nothing the size of a table runs on the worker because the
// config changed.
//
// Lifetimes: a plan is immutable once published, except for the AddressPorts it points to,
// which are the worker's live port state (written by that worker only). Each new plan shares
// the previous plan's AddressPorts and mask (shared_ptr, counted on the control thread only),
// adding AddressPorts for new addresses, so state carries over; a plan is freed by the control
// thread once the worker no longer holds it (RcuSlot).
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/policy.hpp"
#include "ephemera/pool.hpp"
#include "ephemera/port_allocator.hpp"
#include "ephemera/static_table.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace ephemera {

struct WorkerPlan {
    std::shared_ptr<const Config> config; // the whole config (shared by every worker's plan)
    Policy policy;
    // Every address this worker knows, draining ones too: an address keeps its index for life
    // and gets it back when it returns to the config.
    PoolIndex pool{std::span<const Ipv4Addr>{}};
    // By pool index: in the config's pool (kPoolAddress), the external address of a 1:1 static
    // mapping (kStaticAddress: never anchored to, no port of it handed out), a drained box's
    // (below), or draining (0).
    std::vector<std::uint8_t> active;
    static constexpr std::uint8_t kPoolAddress = 1;
    static constexpr std::uint8_t kStaticAddress = 2;
    // A drained box's address (Config::adopted_pool): its sessions are carried on here, none
    // is made; answered by ARP (kAdoptedAddress) once the hand-over is complete, not before
    // (kAdoptedQuiet), while the drained box may still answer for it.
    static constexpr std::uint8_t kAdoptedAddress = 3;
    static constexpr std::uint8_t kAdoptedQuiet = 4;
    // The static mappings (static_table.hpp), shared by every worker's plan of one config.
    std::shared_ptr<const StaticTable> statics;
    // The port state every 1:1 address shares on this worker: its out2in index stays empty and
    // no port of it is handed out or held, so one will do however many 1:1 addresses there are.
    std::shared_ptr<AddressPorts> static_address_ports;
    std::shared_ptr<const PortMask> mask;
    std::vector<std::shared_ptr<AddressPorts>> address_ports; // by pool index
    std::vector<AddressPorts*> address_list;                  // the same, for the allocator
    std::vector<std::uint32_t*> out2in_list;                  // each one's out2in.data()
};

// Builds one worker's plans. Construct it once per worker (it keeps the worker's port slice).
class PlanCompiler {
public:
    PlanCompiler(const Ownership& ownership, WorkerId worker);

    // The plan for `config`, carrying over `previous`'s port state (null: the first plan).
    [[nodiscard]] std::unique_ptr<WorkerPlan> compile(std::shared_ptr<const Config> config,
                                                      const WorkerPlan* previous) const;

    [[nodiscard]] const PortSlice& slice() const { return slice_; }
    [[nodiscard]] WorkerId workers() const { return workers_; }

private:
    PortSlice slice_;
    WorkerId workers_;
};

} // namespace ephemera
