#include "transport.hpp"

#include "socket_fd.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace ephemera::logging {

std::string CollectorAddress::to_string() const {
    return address.to_string() + ':' + std::to_string(port);
}

std::optional<CollectorAddress> CollectorAddress::parse(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    const auto address = Ipv4Addr::parse(text.substr(0, colon));
    const std::string_view digits = text.substr(colon + 1);
    // Port 0 reaches no collector; a leading zero or sign is a typo, not a port.
    if (!address || digits.empty() || digits.size() > 5 || digits.front() == '0' ||
        digits.front() == '+') {
        return std::nullopt;
    }
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc{} || end != digits.data() + digits.size() || port > 65535) {
        return std::nullopt;
    }
    return CollectorAddress{*address, static_cast<std::uint16_t>(port)};
}

std::string_view transport_name(TransportKind kind) {
    return kind == TransportKind::tcp ? "tcp" : "udp";
}

sockaddr_in socket_address(CollectorAddress to) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(to.port);
    sa.sin_addr.s_addr = htonl(to.address.value());
    return sa;
}

std::unique_ptr<Transport> Transport::open(TransportKind kind, CollectorAddress to,
                                           std::size_t backlog_bytes) {
    if (kind == TransportKind::tcp) {
        return open_tcp_transport(to, backlog_bytes);
    }
    return open_udp_transport(to);
}

} // namespace ephemera::logging
