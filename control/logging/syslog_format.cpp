#include "syslog_format.hpp"

#include "event_text.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>

namespace ephemera::logging {
namespace {

constexpr std::size_t kMaxHostname = 255; // RFC 5424 section 6.2.4

// RFC 5424 header fields are PRINTUSASCII (33..126); anything else would shift the fields a
// collector parses after it.
std::string header_field(std::string_view text, std::size_t max) {
    std::string out;
    for (const char c : text.substr(0, max)) {
        if (c >= 33 && c <= 126) {
            out += c;
        }
    }
    return out.empty() ? std::string("-") : out;
}

// The short line after the structured data: what a reader of a plain log file needs to tell
// who had which address:port, with the event name first since such files drop the MSGID.
void append_human_text(std::string& out, const NatEvent& e, const FieldList& fields) {
    out += nat_event_name(e.kind);
    const auto add = [&](std::string_view word) {
        if (!word.empty()) {
            out += ' ';
            out += word;
        }
    };
    const auto add_named = [&](std::string_view name, std::string_view key) {
        if (!fields.get(key).empty()) {
            add(name);
            add(fields.get(key));
        }
    };
    switch (e.kind) {
    case NatEventKind::mapping_created:
    case NatEventKind::mapping_deleted:
    case NatEventKind::static_added:
    case NatEventKind::static_removed:
    case NatEventKind::ports_exhausted:
        add(fields.get("inside"));
        add("->");
        add(fields.get("outside"));
        add(fields.get("proto"));
        add_named("remote", "remote");
        if (!fields.get("static").empty()) {
            add("static");
        }
        break;
    case NatEventKind::block_allocated:
    case NatEventKind::block_released:
    case NatEventKind::block_interim:
        add(fields.get("inside"));
        add("->");
        add(fields.get("outside"));
        add_named("ports", "ports");
        break;
    case NatEventKind::deterministic_formula:
        add(fields.get("prefix"));
        add("->");
        add(fields.get("pool"));
        add_named("ports", "ports");
        add_named("per", "per");
        break;
    case NatEventKind::quota_exceeded:
        add(fields.get("quota"));
        add(fields.get("inside"));
        add_named("limit", "limit");
        break;
    case NatEventKind::threshold_reached:
        add(fields.get("threshold"));
        add(fields.get("outside"));
        add(fields.get("inside"));
        out += ' ';
        out += fields.get("percent");
        out += '%';
        break;
    case NatEventKind::count_:
        break;
    }
}

constexpr bool needs_escape(char c) {
    return c == '"' || c == '\\' || c == ']';
}

void append_sd_escaped(std::string& out, std::string_view value) {
    // Event values never need escaping (event_text.hpp): append them whole.
    if (std::none_of(value.begin(), value.end(), [](char c) { return needs_escape(c); })) {
        out += value;
        return;
    }
    for (const char c : value) {
        if (needs_escape(c)) {
            out += '\\';
        }
        out += c;
    }
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[20];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

} // namespace

int syslog_severity(NatEventKind kind) {
    switch (kind) {
    case NatEventKind::ports_exhausted:
    case NatEventKind::quota_exceeded:
    case NatEventKind::threshold_reached:
        return kSyslogWarning;
    default:
        return kSyslogInformational;
    }
}

std::string sd_escape(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    append_sd_escaped(out, value);
    return out;
}

SyslogFormatter::SyslogFormatter(const SyslogHeader& header)
    : facility_(std::clamp(header.facility, 0, 23)) {
    after_time_ += ' ';
    after_time_ += header_field(header.hostname, kMaxHostname);
    after_time_ += ' ';
    after_time_ += kSyslogAppName;
    after_time_ += ' ';
    append_uint(after_time_, header.procid);
    after_time_ += ' ';
}

void SyslogFormatter::append(std::string& out, const NatEvent& e) const {
    const FieldList fields(e);
    out += '<';
    append_uint(out, static_cast<std::uint64_t>(facility_ * 8 + syslog_severity(e.kind)));
    out += ">1 ";
    append_rfc3339_ms(out, e.time_ms);
    out += after_time_;
    out += nat_event_name(e.kind);
    out += " [";
    out += kSyslogSdId;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        out += ' ';
        out += fields.key(i);
        out += "=\"";
        append_sd_escaped(out, fields.value(i));
        out += '"';
    }
    out += "] ";
    append_human_text(out, e, fields);
}

std::string syslog_message(const NatEvent& e, const SyslogHeader& header) {
    std::string out;
    out.reserve(256);
    SyslogFormatter(header).append(out, e);
    return out;
}

void append_octet_counted(std::string& out, std::string_view message) {
    append_uint(out, message.size());
    out += ' ';
    out += message;
}

std::string octet_counted(std::string_view message) {
    std::string out;
    append_octet_counted(out, message);
    return out;
}

std::string local_hostname() {
    char name[HOST_NAME_MAX + 1] = {};
    if (::gethostname(name, sizeof name - 1) != 0) {
        return "-";
    }
    return header_field(name, kMaxHostname);
}

} // namespace ephemera::logging
