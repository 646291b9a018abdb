// A NAT event as named fields: the one text form that syslog messages (structured data) and the
// archive's lines share, so that one grep for "198.18.0.10:51234" or "100.64.0.7" finds an event
// in either. docs/logging.md lists the fields of each kind.
#pragma once

#include "ephemera/nat_event.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera::logging {

struct EventField {
    std::string_view key;
    std::string value;
};

// The fields of `e` after its time, in a fixed order: event, worker, then the kind's own
// (docs/logging.md). Values never hold spaces, quotes, '=' or ']'.
std::vector<EventField> event_fields(const NatEvent& e);

// "2026-12-05T10:00:00.123Z": RFC 3339 in UTC with milliseconds (RFC 5424 TIMESTAMP).
std::string rfc3339_ms(std::uint64_t unix_ms);
// The reverse; also takes whole seconds ("2026-12-05T10:00:00Z"). nullopt: not that form.
std::optional<std::uint64_t> parse_rfc3339_ms(std::string_view text);

std::string_view protocol_name(std::uint8_t proto); // "udp", "tcp", "icmp", "any" (0)
std::string_view quota_name(NatQuota q);
std::string_view threshold_name(NatThreshold t);

} // namespace ephemera::logging
