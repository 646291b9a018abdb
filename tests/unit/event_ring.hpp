// A worker's NAT event ring for tests, as main() makes one per worker: attach it to a
// Translator and take() what the worker handed over. Needs the EAL (core-tests has it).
#pragma once

#include "ephemera/nat_event.hpp"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <atomic>
#include <string>
#include <vector>

namespace ephemera::test {

class EventRing {
public:
    explicit EventRing(unsigned size = 1024) {
        static std::atomic<int> n{0};
        const std::string name = "test_events_" + std::to_string(n++);
        ring_ = rte_ring_create_elem(name.c_str(), sizeof(NatEvent), size, -1,
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
    }
    ~EventRing() { rte_ring_free(ring_); }
    EventRing(const EventRing&) = delete;
    EventRing& operator=(const EventRing&) = delete;
    [[nodiscard]] rte_ring* get() const { return ring_; }

    std::vector<NatEvent> take() {
        std::vector<NatEvent> out(rte_ring_count(ring_));
        const unsigned n = rte_ring_sc_dequeue_burst_elem(
            ring_, out.data(), sizeof(NatEvent), static_cast<unsigned>(out.size()), nullptr);
        out.resize(n);
        return out;
    }

private:
    rte_ring* ring_ = nullptr;
};

} // namespace ephemera::test
