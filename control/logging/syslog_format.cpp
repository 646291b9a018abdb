#include "syslog_format.hpp"

#include "event_text.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <vector>

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

std::string_view field(const std::vector<EventField>& fields, std::string_view key) {
    const auto it =
        std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.key == key; });
    return it == fields.end() ? std::string_view{} : std::string_view(it->value);
}

// The short line after the structured data: what a reader of a plain log file needs to tell
// who had which address:port, with the event name first since such files drop the MSGID.
std::string human_text(const NatEvent& e, const std::vector<EventField>& fields) {
    std::string out(nat_event_name(e.kind));
    const auto add = [&](std::string_view word) {
        if (!word.empty()) {
            out += ' ';
            out += word;
        }
    };
    const auto add_named = [&](std::string_view name, std::string_view key) {
        if (!field(fields, key).empty()) {
            add(name);
            add(field(fields, key));
        }
    };
    switch (e.kind) {
    case NatEventKind::mapping_created:
    case NatEventKind::mapping_deleted:
    case NatEventKind::static_added:
    case NatEventKind::static_removed:
    case NatEventKind::ports_exhausted:
        add(field(fields, "inside"));
        add("->");
        add(field(fields, "outside"));
        add(field(fields, "proto"));
        add_named("remote", "remote");
        if (!field(fields, "static").empty()) {
            add("static");
        }
        break;
    case NatEventKind::block_allocated:
    case NatEventKind::block_released:
    case NatEventKind::block_interim:
        add(field(fields, "inside"));
        add("->");
        add(field(fields, "outside"));
        add_named("ports", "ports");
        break;
    case NatEventKind::deterministic_formula:
        add(field(fields, "prefix"));
        add("->");
        add(field(fields, "pool"));
        add_named("ports", "ports");
        add_named("per", "per");
        break;
    case NatEventKind::quota_exceeded:
        add(field(fields, "quota"));
        add(field(fields, "inside"));
        add_named("limit", "limit");
        break;
    case NatEventKind::threshold_reached:
        add(field(fields, "threshold"));
        add(field(fields, "outside"));
        add(field(fields, "inside"));
        add(std::string(field(fields, "percent")) + '%');
        break;
    case NatEventKind::count_:
        break;
    }
    return out;
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
    for (const char c : value) {
        if (c == '"' || c == '\\' || c == ']') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

std::string syslog_message(const NatEvent& e, const SyslogHeader& header) {
    const auto fields = event_fields(e);
    const int facility = std::clamp(header.facility, 0, 23);
    std::string out;
    out.reserve(256);
    out += '<';
    out += std::to_string(facility * 8 + syslog_severity(e.kind));
    out += ">1 ";
    out += rfc3339_ms(e.time_ms);
    out += ' ';
    out += header_field(header.hostname, kMaxHostname);
    out += ' ';
    out += kSyslogAppName;
    out += ' ';
    out += std::to_string(header.procid);
    out += ' ';
    out += nat_event_name(e.kind);
    out += " [";
    out += kSyslogSdId;
    for (const auto& f : fields) {
        out += ' ';
        out += f.key;
        out += "=\"";
        out += sd_escape(f.value);
        out += '"';
    }
    out += "] ";
    out += human_text(e, fields);
    return out;
}

std::string octet_counted(std::string_view message) {
    std::string out = std::to_string(message.size());
    out += ' ';
    out += message;
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
