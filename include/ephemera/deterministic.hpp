// Deterministic NAT (RFC 7422): which pool address and ports a subscriber holds, and who holds a
// given pool address and port, computed from the config alone. No allocation state and no
// logging: the operator answers an abuse report with reverse() and an archived config file.
//
// Subscriber i (its offset in the subscriber prefix) gets pool address i / ratio and ports
// [lo + (i % ratio) * pps, lo + (i % ratio + 1) * pps - 1], where ratio = ceil(subscribers /
// pool addresses), pps = floor(port_range size / ratio) and lo is the low end of port_range.
// Pure arithmetic, no DPDK: ephemeractl links it as well as the dataplane.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/pool.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace ephemera {

// The arithmetic of the formula, apart from any address: what the parser checks against
// min_ports before a DeterministicMap is ever built.
struct DeterministicShape {
    std::uint64_t subscribers = 0;          // addresses in the prefix, 2^(32 - prefix_len)
    std::uint32_t pool_addresses = 0;       // pool size
    std::uint32_t ports = 0;                // ports in port_range
    std::uint64_t ratio = 0;                // subscribers per pool address, rounded up
    std::uint32_t ports_per_subscriber = 0; // floor(ports / ratio); 0 when ratio > ports
    // Pool addresses that hold at least one subscriber: the last ones stay unused when the
    // prefix is smaller than pool addresses times ratio.
    [[nodiscard]] std::uint64_t pool_addresses_used() const {
        return ratio == 0 ? 0 : (subscribers + ratio - 1) / ratio;
    }
};
DeterministicShape deterministic_shape(std::uint8_t prefix_len, std::uint32_t pool_addresses,
                                       PortRange port_range);

struct DeterministicRange {
    Ipv4Addr pool_address;
    std::uint16_t pool_index = 0; // position in Config::pool (file order)
    PortRange ports;
    constexpr bool operator==(const DeterministicRange&) const = default;
};

// Why reverse() found no subscriber, for messages.
enum class ReverseMiss : std::uint8_t {
    none,                // a subscriber holds it
    not_pool_address,    // the address is not in the pool
    pool_address_unused, // a pool address past the last one the prefix reaches
    outside_port_range,  // the port is below the offset (port_range's low end) or above its end
    unassigned_port,     // in the tail of port_range past ratio * ports per subscriber
    beyond_prefix,       // would be a subscriber past the end of the prefix
};
std::string_view reverse_miss_text(ReverseMiss m);

struct ReverseResult {
    std::optional<Ipv4Addr> subscriber;
    ReverseMiss miss = ReverseMiss::none;
};

class DeterministicMap {
public:
    // `prefix` is the first address of a /prefix_len; the caller has checked that every
    // subscriber gets at least one port (ports_per_subscriber() >= 1) and that the pool has
    // at most 65535 addresses, as parse_config does.
    DeterministicMap(Ipv4Addr prefix, std::uint8_t prefix_len, std::vector<Ipv4Addr> pool,
                     PortRange port_range);
    // From a config in deterministic mode.
    explicit DeterministicMap(const Config& config);

    // nullopt for an address outside the subscriber prefix.
    [[nodiscard]] std::optional<DeterministicRange> forward(Ipv4Addr inside) const;
    [[nodiscard]] std::optional<Ipv4Addr> reverse(Ipv4Addr pool_address, std::uint16_t port) const {
        return lookup_reverse(pool_address, port).subscriber;
    }
    [[nodiscard]] ReverseResult lookup_reverse(Ipv4Addr pool_address, std::uint16_t port) const;

    [[nodiscard]] const DeterministicShape& shape() const { return shape_; }
    [[nodiscard]] std::uint64_t ratio() const { return shape_.ratio; }
    [[nodiscard]] std::uint32_t ports_per_subscriber() const { return shape_.ports_per_subscriber; }
    [[nodiscard]] Ipv4Addr prefix() const { return prefix_; }
    [[nodiscard]] std::uint8_t prefix_len() const { return prefix_len_; }
    [[nodiscard]] PortRange port_range() const { return port_range_; }
    [[nodiscard]] const std::vector<Ipv4Addr>& pool() const { return pool_; }

private:
    Ipv4Addr prefix_;
    std::uint8_t prefix_len_ = 0;
    std::vector<Ipv4Addr> pool_;
    PortRange port_range_;
    DeterministicShape shape_;
    // Address -> index in pool_: the packet path asks for every outside packet in this mode
    // (Ownership::port_owner), so the pool's own open-addressing table, not a node map.
    PoolIndex pool_index_;
};

} // namespace ephemera
