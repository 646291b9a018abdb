#include "request.hpp"

#include <charconv>
#include <utility>
#include <vector>

namespace ephemeractl {

namespace {

// A decimal number without sign or leading zeros ("0" itself is fine), at most `max`.
std::optional<std::uint32_t> parse_decimal(std::string_view text, std::uint32_t max) {
    if (text.empty() || (text.size() > 1 && text.front() == '0')) {
        return std::nullopt;
    }
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > max) {
        return std::nullopt;
    }
    return value;
}

// "k1=v1;k2=v2" from the parts that are present, in the order given.
std::string join_params(const std::vector<std::pair<std::string_view, std::string>>& parts) {
    std::string out;
    for (const auto& [key, value] : parts) {
        if (!out.empty()) {
            out += ';';
        }
        out += key;
        out += '=';
        out += value;
    }
    return out;
}

} // namespace

std::string check_ipv4(std::string_view text) {
    int octets = 0;
    std::size_t pos = 0;
    while (true) {
        const std::size_t dot = text.find('.', pos);
        const std::string_view octet =
            text.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
        if (!parse_decimal(octet, 255)) {
            return "not an IPv4 address (want a dotted quad such as 198.18.0.100)";
        }
        ++octets;
        if (dot == std::string_view::npos) {
            break;
        }
        pos = dot + 1;
    }
    if (octets != 4) {
        return "not an IPv4 address (want a dotted quad such as 198.18.0.100)";
    }
    return {};
}

std::string check_endpoint(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return "want ADDR:PORT, such as 198.18.0.100:49152";
    }
    if (!check_ipv4(text.substr(0, colon)).empty()) {
        return "address part is not an IPv4 dotted quad (want ADDR:PORT, such as "
               "198.18.0.100:49152)";
    }
    if (!parse_decimal(text.substr(colon + 1), 65535)) {
        return "port must be a number from 0 to 65535";
    }
    return {};
}

std::string check_positive(std::string_view text) {
    if (!parse_decimal(text, UINT32_MAX) || text == "0") {
        return "must be a positive integer";
    }
    return {};
}

std::string check_index(std::string_view text) {
    if (!parse_decimal(text, UINT32_MAX)) {
        return "must be a worker number: 0, 1, ...";
    }
    return {};
}

std::string check_set_key(std::string_view text) {
    if (text.empty()) {
        return "empty key";
    }
    for (const char c : text) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return "a key is a dotted config name such as timeouts.udp";
        }
    }
    return {};
}

std::string check_set_value(std::string_view text) {
    if (text.empty()) {
        return "empty value";
    }
    for (const char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return "control characters are not allowed in a value";
        }
    }
    return {};
}

Request config_request() {
    return {"/ephemera/config", {}};
}
Request stats_request() {
    return {"/ephemera/stats", {}};
}
Request ports_request() {
    return {"/ephemera/ports", {}};
}

Request worker_request(std::uint32_t worker) {
    return {"/ephemera/worker", std::to_string(worker)};
}

Request mappings_request(std::optional<std::uint32_t> limit) {
    return {"/ephemera/mappings", limit ? std::to_string(*limit) : std::string{}};
}

Request sessions_request(const SessionQuery& query) {
    std::vector<std::pair<std::string_view, std::string>> parts;
    if (query.subscriber) {
        parts.emplace_back("subscriber", *query.subscriber);
    }
    if (query.external) {
        parts.emplace_back("external", *query.external);
    }
    if (query.limit) {
        parts.emplace_back("limit", std::to_string(*query.limit));
    }
    return {"/ephemera/sessions", join_params(parts)};
}

Request blocks_request(const SessionQuery& query) {
    std::vector<std::pair<std::string_view, std::string>> parts;
    if (query.subscriber) {
        parts.emplace_back("subscriber", *query.subscriber);
    }
    if (query.limit) {
        parts.emplace_back("limit", std::to_string(*query.limit));
    }
    return {"/ephemera/blocks", join_params(parts)};
}

Request set_request(std::string_view key, std::string_view value) {
    return {"/ephemera/set", std::string(key) + "=" + std::string(value)};
}

Request pool_request(bool add, std::string_view address) {
    return {"/ephemera/pool", (add ? "add=" : "remove=") + std::string(address)};
}

Request statics_request() {
    return {"/ephemera/static", {}};
}

Request static_request(bool add, std::string_view spec) {
    return {"/ephemera/static", (add ? "add=" : "remove=") + std::string(spec)};
}

Request flush_request(const FlushFilter& filter) {
    std::vector<std::pair<std::string_view, std::string>> parts;
    if (filter.subscriber) {
        parts.emplace_back("subscriber", *filter.subscriber);
    }
    if (filter.external) {
        parts.emplace_back("external", *filter.external);
    }
    if (filter.address) {
        parts.emplace_back("address", *filter.address);
    }
    return {"/ephemera/flush", join_params(parts)};
}

Request reload_request() {
    return {"/ephemera/reload", {}};
}

Request alarms_request() {
    return {"/ephemera/alarms", {}};
}

Request logging_request() {
    return {"/ephemera/logging", {}};
}

Request pauses_request() {
    return {"/ephemera/pauses", {}};
}

Request pauses_reset_request() {
    return {"/ephemera/pauses", "reset"};
}

} // namespace ephemeractl
