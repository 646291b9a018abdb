// The static mappings of a config (config.hpp, StaticMapping), compiled for the packet path:
// which inside endpoint an outside packet to a static external endpoint belongs to, and which
// external endpoint an inside endpoint's flows use. Built by the control thread with each
// plan, immutable once published, shared by every worker's plan.
//
// A port forward names one (address, protocol, port) on each side; a 1:1 mapping names an
// address on each side and keeps every port (and ICMP identifier) of every protocol. Lookups
// are binary searches over sorted arrays: they run on the slow path, and on the classify
// stage only after a one-bit filter said the packet may be static (see may_be_static()).
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ephemera {

struct StaticEndpoint {
    Ipv4Addr address;
    std::uint16_t port = 0;
};

class StaticTable {
public:
    StaticTable() = default;
    explicit StaticTable(std::span<const StaticMapping> entries);

    [[nodiscard]] bool empty() const { return forwards_out_.empty() && one_to_one_out_.empty(); }

    // False when an outside packet to (address, port) surely belongs to no static mapping:
    // a bit per port that some forward uses, and a bit filter over the 1:1 addresses.
    [[nodiscard]] bool may_be_static(Ipv4Addr external, std::uint16_t port) const {
        return forward_ports_.test(port) || may_be_one_to_one(external);
    }
    // The inside endpoint that owns (external, proto, port), if a static mapping names one.
    [[nodiscard]] std::optional<StaticEndpoint> inside_of(Ipv4Addr external, Protocol proto,
                                                          std::uint16_t port) const;
    // The external endpoint of an inside endpoint's flows, if a static mapping names one.
    [[nodiscard]] std::optional<StaticEndpoint> external_of(Ipv4Addr inside, Protocol proto,
                                                            std::uint16_t port) const;
    // Whether `inside` is the inside address of some static mapping (its MAC is worth
    // learning: an outside packet may need it before the host has sent anything).
    [[nodiscard]] bool is_inside_host(Ipv4Addr inside) const;
    // The external addresses of the 1:1 mappings, in config order.
    [[nodiscard]] std::span<const Ipv4Addr> one_to_one_addresses() const { return one_to_one_; }

private:
    struct Entry {
        std::uint64_t key; // address << 24 | protocol << 16 | port (1:1: address only)
        StaticEndpoint other;
    };
    static constexpr std::uint64_t key_of(Ipv4Addr a, Protocol proto, std::uint16_t port) {
        return std::uint64_t{a.value()} << 24 |
               std::uint64_t{static_cast<std::uint8_t>(proto)} << 16 | port;
    }
    static constexpr std::uint32_t kFilterBits = 4096;
    static std::uint32_t filter_bit(Ipv4Addr a) {
        return ((a.value() * 0x9e3779b1u) >> 7) & (kFilterBits - 1);
    }
    [[nodiscard]] bool may_be_one_to_one(Ipv4Addr a) const {
        return one_to_one_filter_.test(filter_bit(a));
    }
    static const Entry* find(const std::vector<Entry>& sorted, std::uint64_t key);

    std::vector<Entry> forwards_out_;    // by external (address, protocol, port)
    std::vector<Entry> forwards_in_;     // by inside (address, protocol, port)
    std::vector<Entry> one_to_one_out_;  // by external address
    std::vector<Entry> one_to_one_in_;   // by inside address
    std::vector<Ipv4Addr> inside_hosts_; // sorted, unique
    std::vector<Ipv4Addr> one_to_one_;
    std::bitset<65536> forward_ports_;
    std::bitset<kFilterBits> one_to_one_filter_;
};

} // namespace ephemera
