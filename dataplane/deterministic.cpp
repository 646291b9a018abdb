#include "ephemera/deterministic.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

namespace ephemera {

DeterministicShape deterministic_shape(std::uint8_t prefix_len, std::uint32_t pool_addresses,
                                       PortRange port_range) {
    DeterministicShape s;
    s.subscribers = std::uint64_t{1} << (32 - std::min<std::uint8_t>(prefix_len, 32));
    s.pool_addresses = pool_addresses;
    s.ports = port_range.size();
    if (pool_addresses == 0) {
        return s;
    }
    s.ratio = (s.subscribers + pool_addresses - 1) / pool_addresses;
    s.ports_per_subscriber = s.ratio > s.ports ? 0 : static_cast<std::uint32_t>(s.ports / s.ratio);
    return s;
}

std::string_view reverse_miss_text(ReverseMiss m) {
    switch (m) {
    case ReverseMiss::none:
        return "held by a subscriber";
    case ReverseMiss::not_pool_address:
        return "the address is not in the pool";
    case ReverseMiss::pool_address_unused:
        return "the pool address holds no subscriber (the prefix ends before it)";
    case ReverseMiss::outside_port_range:
        return "the port is outside port_range";
    case ReverseMiss::unassigned_port:
        return "the port is in the unassigned tail of port_range";
    case ReverseMiss::beyond_prefix:
        break;
    }
    return "the port's range would belong to an address past the end of the subscriber prefix";
}

DeterministicMap::DeterministicMap(Ipv4Addr prefix, std::uint8_t prefix_len,
                                   std::vector<Ipv4Addr> pool, PortRange port_range)
    : prefix_(prefix), prefix_len_(prefix_len), pool_(std::move(pool)), port_range_(port_range),
      shape_(deterministic_shape(prefix_len, static_cast<std::uint32_t>(pool_.size()), port_range)),
      pool_index_(pool_) {}

DeterministicMap::DeterministicMap(const Config& config)
    : DeterministicMap(config.deterministic.prefix, config.deterministic.prefix_len, config.pool,
                       config.port_range) {}

std::optional<DeterministicRange> DeterministicMap::forward(Ipv4Addr inside) const {
    const std::uint64_t offset = std::uint64_t{inside.value()} - prefix_.value();
    if (inside.value() < prefix_.value() || offset >= shape_.subscribers ||
        shape_.ports_per_subscriber == 0) {
        return std::nullopt;
    }
    const auto index = static_cast<std::uint16_t>(offset / shape_.ratio);
    const std::uint64_t lo =
        port_range_.lo + (offset % shape_.ratio) * std::uint64_t{shape_.ports_per_subscriber};
    return DeterministicRange{
        pool_[index], index,
        PortRange{static_cast<std::uint16_t>(lo),
                  static_cast<std::uint16_t>(lo + shape_.ports_per_subscriber - 1)}};
}

ReverseResult DeterministicMap::lookup_reverse(Ipv4Addr pool_address, std::uint16_t port) const {
    const std::uint16_t index = pool_index_.find(pool_address);
    if (index == kNoPool || shape_.ports_per_subscriber == 0) {
        return {std::nullopt, ReverseMiss::not_pool_address};
    }
    if (index >= shape_.pool_addresses_used()) {
        return {std::nullopt, ReverseMiss::pool_address_unused};
    }
    if (!port_range_.contains(port)) {
        return {std::nullopt, ReverseMiss::outside_port_range};
    }
    const std::uint64_t slot = (port - port_range_.lo) / shape_.ports_per_subscriber;
    if (slot >= shape_.ratio) {
        return {std::nullopt, ReverseMiss::unassigned_port};
    }
    const std::uint64_t offset = index * shape_.ratio + slot;
    if (offset >= shape_.subscribers) {
        return {std::nullopt, ReverseMiss::beyond_prefix};
    }
    return {Ipv4Addr{static_cast<std::uint32_t>(prefix_.value() + offset)}, ReverseMiss::none};
}

} // namespace ephemera
