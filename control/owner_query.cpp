#include "owner_query.hpp"

#include <charconv>

namespace ephemera {

namespace {

// Decimal digits only, 0..65535.
std::optional<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > 0xffff) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

} // namespace

std::optional<OwnerQuery> parse_owner_query(std::string_view text) {
    const std::size_t colon = text.find(':');
    const auto address = Ipv4Addr::parse(text.substr(0, colon));
    if (!address) {
        return std::nullopt;
    }
    OwnerQuery q;
    q.address = *address;
    if (colon == std::string_view::npos) {
        return q;
    }
    const std::string_view ports = text.substr(colon + 1);
    const std::size_t dash = ports.find('-');
    const auto lo = parse_port(ports.substr(0, dash));
    const auto hi = dash == std::string_view::npos ? lo : parse_port(ports.substr(dash + 1));
    if (!lo || !hi || *lo > *hi) {
        return std::nullopt;
    }
    q.subscriber = false;
    q.lo = *lo;
    q.hi = *hi;
    return q;
}

std::string describe_owner(const Ownership& ownership, const OwnerQuery& query) {
    const std::string address = query.address.to_string();
    if (query.subscriber) {
        return "subscriber " + address + " worker " +
               std::to_string(ownership.subscriber_owner(query.address)) + "\n";
    }
    std::string out;
    for (std::uint32_t port = query.lo; port <= query.hi; ++port) {
        const auto p = static_cast<std::uint16_t>(port);
        out += "port " + address + ":" + std::to_string(port) + " worker " +
               std::to_string(ownership.port_owner(query.address, p)) + "\n";
    }
    return out;
}

} // namespace ephemera
