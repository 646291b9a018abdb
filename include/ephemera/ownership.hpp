// Who owns what.
//
// External ports: the owner of (pool address, port) is a pure function of bits 1..6 of the
// port. Those six bits pick one of 64 buckets, and bucket b belongs to worker b % workers.
//  - Bits 1..6, not bit 0: parity preservation (RFC 4787 REQ-4) needs each worker to own even
//    and odd ports alike, so a port and its parity twin (p ^ 1) always share an owner.
//  - A fixed mask (0x007e): hardware steering can express it as one rte_flow rule per bucket
//    (UDP/TCP dst port, spec = b << 1, mask = 0x007e -> queue of owner(b)); with a power-of-two
//    worker count the rules collapse to one per worker (mask = (workers - 1) << 1).
//  - The address is not an input: every worker owns the same share of every pool address, so
//    a subscriber anchored to any address (paired pooling) has ports on its own worker, and the
//    rules need not grow with the pool.
//  - 64 buckets spread 1..64 workers within one bucket of even, and each bucket holds ports
//    from the whole range, so ownership does not depend on the configured range.
//
// Subscribers: a subscriber (inside address) belongs to hash(address) % workers, so all of its
// flows, its mappings and its per-subscriber limits live on one worker.
//
// Deterministic NAT (RFC 7422) is the exception for external ports: each subscriber holds a
// fixed run of ports that the formula gives it, and that run spans every bucket. There the
// owner of (pool address, port) is the owner of the subscriber that the formula says holds
// it, still a pure function of the address, the port and the config; every worker numbers
// every port (PortSlice), and hardware rules on port bits do not apply (steering.hpp).
#pragma once

#include "ephemera/deterministic.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <memory>

namespace ephemera {

class Ownership {
public:
    static constexpr unsigned kBuckets = 64;
    static constexpr std::uint16_t kPortMask = 0x007e;
    static constexpr WorkerId kMaxWorkers = kBuckets;

    explicit Ownership(WorkerId workers,
                       std::shared_ptr<const DeterministicMap> deterministic = nullptr);
    // The ownership a config asks for: by port bits, or by subscriber in deterministic mode.
    static Ownership for_config(const Config& config, WorkerId workers);

    [[nodiscard]] WorkerId workers() const { return workers_; }

    static constexpr unsigned bucket_of(std::uint16_t port) { return (port & kPortMask) >> 1; }

    // Owner of an external port (or ICMP identifier) on a pool address. A deterministic port
    // no subscriber holds goes to its bucket's owner, which finds no mapping for it.
    [[nodiscard]] WorkerId port_owner(Ipv4Addr pool_address, std::uint16_t port) const {
        if (deterministic_ != nullptr) [[unlikely]] {
            if (const auto holder = deterministic_->reverse(pool_address, port)) {
                return subscriber_owner(*holder);
            }
        }
        return bucket_owner_[bucket_of(port)];
    }
    // Whether the owner of a port depends on more than its bits 1..6 (deterministic mode):
    // then every worker may own any port of any address.
    [[nodiscard]] bool by_subscriber() const { return deterministic_ != nullptr; }
    [[nodiscard]] const DeterministicMap* deterministic() const { return deterministic_.get(); }
    [[nodiscard]] WorkerId bucket_owner(unsigned bucket) const { return bucket_owner_[bucket]; }

    // Owner of a subscriber's flows.
    [[nodiscard]] WorkerId subscriber_owner(Ipv4Addr inside) const {
        return static_cast<WorkerId>(subscriber_hash(inside) % workers_);
    }

    // A 32-bit mix (the murmur3 finaliser): consecutive subscriber addresses spread evenly.
    static constexpr std::uint32_t subscriber_hash(Ipv4Addr a) { return mix32(a.value()); }

private:
    WorkerId workers_;
    std::array<WorkerId, kBuckets> bucket_owner_{};
    std::shared_ptr<const DeterministicMap> deterministic_;
};

} // namespace ephemera
