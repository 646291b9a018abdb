// Text forms of the address types: strict parsers for configuration input and canonical
// printers for logs and telemetry. No toml++ here: the dataplane links this too.
#include "ephemera/types.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ephemera {

namespace {

constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// One hex digit's value, or -1.
constexpr int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// One dotted-quad part: 1 to 3 decimal digits, 0..255, no leading zero unless the part is "0"
// (inet_aton reads "010" as octal 8; a NAT config must never guess).
std::optional<std::uint8_t> parse_octet(std::string_view part) {
    if (part.empty() || part.size() > 3) {
        return std::nullopt;
    }
    if (part.size() > 1 && part[0] == '0') {
        return std::nullopt;
    }
    unsigned value = 0;
    for (char c : part) {
        if (!is_digit(c)) {
            return std::nullopt;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 255) {
        return std::nullopt;
    }
    return static_cast<std::uint8_t>(value);
}

} // namespace

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view text) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t dot = text.find('.');
        const bool last = i == 3;
        if (last != (dot == std::string_view::npos)) {
            return std::nullopt; // too few or too many parts
        }
        const std::string_view part = last ? text : text.substr(0, dot);
        const auto octet = parse_octet(part);
        if (!octet) {
            return std::nullopt;
        }
        value = value << 8 | *octet;
        if (!last) {
            text.remove_prefix(dot + 1);
        }
    }
    return Ipv4Addr{value};
}

std::string Ipv4Addr::to_string() const {
    std::string out;
    out.reserve(15);
    for (int shift = 24; shift >= 0; shift -= 8) {
        out += std::to_string((value_ >> shift) & 0xffu);
        if (shift != 0) {
            out += '.';
        }
    }
    return out;
}

std::optional<MacAddr> MacAddr::parse(std::string_view text) {
    // Exactly "hh:hh:hh:hh:hh:hh", either case.
    if (text.size() != 17) {
        return std::nullopt;
    }
    MacAddr mac;
    for (std::size_t i = 0; i < 6; ++i) {
        const std::size_t at = i * 3;
        if (i != 0 && text[at - 1] != ':') {
            return std::nullopt;
        }
        const int hi = hex_value(text[at]);
        const int lo = hex_value(text[at + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        mac.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return mac;
}

std::string MacAddr::to_string() const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(17);
    for (std::size_t i = 0; i < 6; ++i) {
        if (i != 0) {
            out += ':';
        }
        out += kHex[bytes[i] >> 4];
        out += kHex[bytes[i] & 0x0f];
    }
    return out;
}

} // namespace ephemera
