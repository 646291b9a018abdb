// NAT events as RFC 5424 syslog messages:
//   <PRI>1 TIMESTAMP HOSTNAME ephemera PROCID MSGID [nat@32473 event="..." ...] MSG
// The structured data carries the event's fields (event_text.hpp) for collectors that parse
// it; MSG repeats the endpoints in a short line for those that keep only the message, so that
// a grep for an address or address:port finds the event either way.
#pragma once

#include "ephemera/nat_event.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ephemera::logging {

// RFC 5612 documentation enterprise number until ephemera has its own.
inline constexpr std::string_view kSyslogSdId = "nat@32473";
inline constexpr std::string_view kSyslogAppName = "ephemera";
inline constexpr int kSyslogLocal0 = 16;
inline constexpr int kSyslogWarning = 4;
inline constexpr int kSyslogInformational = 6;

struct SyslogHeader {
    int facility = kSyslogLocal0; // 0..23 (RFC 5424 section 6.2.1)
    std::string hostname;         // empty: "-" (the nil value)
    std::uint32_t procid = 0;
};

// Warning for events that say something ran out or crossed a limit; informational otherwise.
int syslog_severity(NatEventKind kind);

// Formats messages for one header: the hostname is checked and the fields after the timestamp
// rendered once, so that a message costs no allocation once the caller's buffer has grown.
class SyslogFormatter {
public:
    explicit SyslogFormatter(const SyslogHeader& header);

    // The message for `e`, one line, without framing, appended to `out`.
    void append(std::string& out, const NatEvent& e) const;

private:
    int facility_;
    std::string after_time_; // " HOSTNAME APP-NAME PROCID "
};

// The message for `e`, one line, without framing.
std::string syslog_message(const NatEvent& e, const SyslogHeader& header);

// A PARAM-VALUE with '"', '\' and ']' escaped (RFC 5424 section 6.3.3).
std::string sd_escape(std::string_view value);

// RFC 6587 section 3.4.1 octet counting, for TCP: "LEN SP MSG".
std::string octet_counted(std::string_view message);
void append_octet_counted(std::string& out, std::string_view message);

// gethostname(); "-" when it fails.
std::string local_hostname();

} // namespace ephemera::logging
