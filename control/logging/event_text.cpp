#include "event_text.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace ephemera {

std::optional<NatEventKind> nat_event_from_name(std::string_view name) {
    for (std::size_t i = 0; i < kNatEventKindCount; ++i) {
        if (kNatEventNames[i] == name) {
            return static_cast<NatEventKind>(i);
        }
    }
    return std::nullopt;
}

NatEventCode NatEvent::code() const {
    switch (kind) {
    case NatEventKind::mapping_created:
        return NatEventCode::nat44_bib_create;
    case NatEventKind::mapping_deleted:
        return NatEventCode::nat44_bib_delete;
    case NatEventKind::block_allocated:
    case NatEventKind::block_interim:
        return NatEventCode::port_block_allocation;
    case NatEventKind::block_released:
        return NatEventCode::port_block_deallocation;
    case NatEventKind::static_added:
    case NatEventKind::deterministic_formula:
        return NatEventCode::address_binding_create;
    case NatEventKind::static_removed:
        return NatEventCode::address_binding_delete;
    case NatEventKind::ports_exhausted:
        return NatEventCode::nat_ports_exhausted;
    case NatEventKind::quota_exceeded:
        return NatEventCode::quota_exceeded;
    case NatEventKind::threshold_reached:
    case NatEventKind::count_:
        break;
    }
    return NatEventCode::threshold_reached;
}

} // namespace ephemera

namespace ephemera::logging {

std::string_view protocol_name(std::uint8_t proto) {
    switch (proto) {
    case 1:
        return "icmp";
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 0:
        return "any";
    default:
        return "other";
    }
}

std::string_view quota_name(NatQuota q) {
    switch (q) {
    case NatQuota::max_sessions:
        return "sessions";
    case NatQuota::max_bib_entries:
        return "mappings";
    case NatQuota::max_entries_per_user:
        return "subscriber";
    case NatQuota::max_subscribers:
        return "subscribers";
    case NatQuota::none:
        break;
    }
    return "none";
}

std::string_view threshold_name(NatThreshold t) {
    switch (t) {
    case NatThreshold::address_pool_high:
        return "pool-high";
    case NatThreshold::address_pool_low:
        return "pool-low";
    case NatThreshold::address_port_high:
        return "address-ports";
    case NatThreshold::address_port_per_user_high:
        return "subscriber-ports";
    case NatThreshold::global_mapping_high:
        return "sessions";
    case NatThreshold::none:
        break;
    }
    return "none";
}

std::vector<EventField> event_fields(const NatEvent& e) {
    std::vector<EventField> f;
    f.reserve(FieldList::kMaxFields);
    visit_fields(e, [&](std::string_view key, std::string_view value) {
        f.push_back({key, std::string(value)});
    });
    return f;
}

FieldList::FieldList(const NatEvent& e) {
    visit_fields(e, [&](std::string_view key, std::string_view value) {
        keys_[count_] = key;
        values_[count_].add(value);
        ++count_;
    });
}

std::string_view FieldList::get(std::string_view key) const {
    for (std::size_t i = 0; i < count_; ++i) {
        if (keys_[i] == key) {
            return values_[i].view();
        }
    }
    return {};
}

void TimestampText::append(std::string& out, std::uint64_t unix_ms) {
    const std::uint64_t second = unix_ms / 1000;
    if (!valid_ || second != second_) {
        const auto seconds = static_cast<std::time_t>(second);
        std::tm tm{};
        gmtime_r(&seconds, &tm);
        const int n = std::snprintf(prefix_.data(), prefix_.size(),
                                    "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        prefix_len_ = std::min(static_cast<std::size_t>(std::max(n, 0)), prefix_.size() - 1);
        second_ = second;
        valid_ = true;
    }
    const auto ms = static_cast<unsigned>(unix_ms % 1000);
    const char tail[4] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                          static_cast<char>('0' + ms % 10), 'Z'};
    out.append(prefix_.data(), prefix_len_);
    out.append(tail, 4);
}

void append_rfc3339_ms(std::string& out, std::uint64_t unix_ms) {
    thread_local TimestampText text;
    text.append(out, unix_ms);
}

std::string rfc3339_ms(std::uint64_t unix_ms) {
    std::string out;
    append_rfc3339_ms(out, unix_ms);
    return out;
}

std::optional<std::uint64_t> parse_rfc3339_ms(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SS[.mmm]Z
    auto number = [&](std::size_t at, std::size_t len, int& out) {
        if (at + len > text.size()) {
            return false;
        }
        const auto* first = text.data() + at;
        const auto [p, ec] = std::from_chars(first, first + len, out);
        return ec == std::errc{} && p == first + len;
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
    if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
        (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':' ||
        !number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) || !number(11, 2, hour) ||
        !number(14, 2, minute) || !number(17, 2, second)) {
        return std::nullopt;
    }
    std::size_t at = 19;
    if (text[at] == '.') {
        if (!number(at + 1, 3, millis)) {
            return std::nullopt;
        }
        at += 4;
    }
    if (at + 1 != text.size() || text[at] != 'Z' || month < 1 || month > 12 || day < 1 ||
        day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t t = timegm(&tm);
    if (t < 0) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(t) * 1000 + static_cast<std::uint64_t>(millis);
}

} // namespace ephemera::logging
