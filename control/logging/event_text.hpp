// A NAT event as named fields: the one text form that syslog messages (structured data) and the
// archive's lines share, so that one grep for "198.18.0.10:51234" or "100.64.0.7" finds an event
// in either. docs/logging.md lists the fields of each kind.
#pragma once

#include "ephemera/nat_event.hpp"
#include "value_text.hpp"

#include <array>
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
//
// visit_fields calls emit(std::string_view key, std::string_view value) for each, the value
// valid only during the call; it allocates nothing, so the logging thread uses it.
// event_fields is the same as owned strings, for callers off that path.
template <class Emit>
void visit_fields(const NatEvent& e, Emit&& emit);
std::vector<EventField> event_fields(const NatEvent& e);

// The fields of one event held on the stack, for a formatter that needs them more than once
// (syslog: the structured data, then the short text that picks some of them again).
class FieldList {
public:
    static constexpr std::size_t kMaxFields = 9;

    explicit FieldList(const NatEvent& e);

    // Empty when the event has no such field.
    [[nodiscard]] std::string_view get(std::string_view key) const;
    [[nodiscard]] std::size_t size() const { return count_; }
    [[nodiscard]] std::string_view key(std::size_t i) const { return keys_[i]; }
    [[nodiscard]] std::string_view value(std::size_t i) const { return values_[i].view(); }

private:
    std::array<std::string_view, kMaxFields> keys_{};
    std::array<ValueText, kMaxFields> values_;
    std::size_t count_ = 0;
};

// "2026-12-05T10:00:00.123Z": RFC 3339 in UTC with milliseconds (RFC 5424 TIMESTAMP).
std::string rfc3339_ms(std::uint64_t unix_ms);

// The same, appended to `out`. Records arrive in time order, so the text up to the second is
// kept from the last call and the calendar is worked out (gmtime_r) once per second, not once
// per record.
class TimestampText {
public:
    void append(std::string& out, std::uint64_t unix_ms);

private:
    static constexpr std::size_t kPrefixCapacity = 40;

    bool valid_ = false;
    std::uint64_t second_ = 0;
    std::array<char, kPrefixCapacity> prefix_{}; // "YYYY-MM-DDTHH:MM:SS."
    std::size_t prefix_len_ = 0;
};
// Through this thread's own TimestampText.
void append_rfc3339_ms(std::string& out, std::uint64_t unix_ms);
// The reverse; also takes whole seconds ("2026-12-05T10:00:00Z"). nullopt: not that form.
std::optional<std::uint64_t> parse_rfc3339_ms(std::string_view text);

std::string_view protocol_name(std::uint8_t proto); // "udp", "tcp", "icmp", "any" (0)
std::string_view quota_name(NatQuota q);
std::string_view threshold_name(NatThreshold t);

template <class Emit>
void visit_fields(const NatEvent& e, Emit&& emit) {
    ValueText v;
    const auto number = [&](std::uint64_t n) { return v.clear().add_uint(n).view(); };
    const auto address = [&](std::uint32_t a) { return v.clear().add_address(a).view(); };
    const auto endpoint = [&](std::uint32_t a, std::uint16_t port) {
        return v.clear().add_endpoint(a, port).view();
    };
    const auto port_span = [&] {
        return v.clear().add_uint(e.first_port).add('-').add_uint(e.last_port).view();
    };
    emit(std::string_view("event"), nat_event_name(e.kind));
    emit(std::string_view("worker"), number(e.worker));
    switch (e.kind) {
    case NatEventKind::mapping_created:
    case NatEventKind::mapping_deleted:
        emit(std::string_view("proto"), protocol_name(e.proto));
        emit(std::string_view("inside"), endpoint(e.inside, e.inside_port));
        emit(std::string_view("outside"), endpoint(e.external, e.external_port));
        if (e.remote != 0) {
            emit(std::string_view("remote"), endpoint(e.remote, e.remote_port));
        }
        if ((e.flags & NatEvent::kStaticMapping) != 0) {
            emit(std::string_view("static"), std::string_view("1"));
        }
        break;
    case NatEventKind::block_allocated:
    case NatEventKind::block_released:
    case NatEventKind::block_interim:
        emit(std::string_view("inside"), address(e.inside));
        emit(std::string_view("outside"), address(e.external));
        emit(std::string_view("ports"), port_span());
        emit(std::string_view("step"), number(e.step));
        emit(std::string_view("count"), number(e.ports));
        // With several workers the span holds only the ports worker `worker` owns.
        if (e.value > 1) {
            emit(std::string_view("workers"), number(e.value));
        }
        break;
    case NatEventKind::static_added:
    case NatEventKind::static_removed:
        emit(std::string_view("proto"), protocol_name(e.proto));
        if (e.proto == 0) {
            emit(std::string_view("inside"), address(e.inside));
            emit(std::string_view("outside"), address(e.external));
        } else {
            emit(std::string_view("inside"), endpoint(e.inside, e.inside_port));
            emit(std::string_view("outside"), endpoint(e.external, e.external_port));
        }
        break;
    case NatEventKind::deterministic_formula:
        emit(std::string_view("prefix"),
             v.clear().add_address(e.inside).add('/').add_uint(e.prefix_len).view());
        emit(std::string_view("pool"),
             v.clear().add_address(e.external).add('-').add_address(e.external_last).view());
        emit(std::string_view("ports"), port_span());
        emit(std::string_view("per"), number(e.ports));
        emit(std::string_view("ratio"), number(e.value));
        break;
    case NatEventKind::ports_exhausted:
        emit(std::string_view("proto"), protocol_name(e.proto));
        emit(std::string_view("inside"), address(e.inside));
        emit(std::string_view("outside"), address(e.external));
        break;
    case NatEventKind::quota_exceeded:
        emit(std::string_view("quota"), quota_name(e.quota));
        emit(std::string_view("proto"), protocol_name(e.proto));
        if (e.inside != 0) {
            emit(std::string_view("inside"), address(e.inside));
        }
        emit(std::string_view("limit"), number(e.value));
        break;
    case NatEventKind::threshold_reached:
        emit(std::string_view("threshold"), threshold_name(e.threshold));
        if (e.external != 0) {
            emit(std::string_view("outside"), address(e.external));
        }
        if (e.inside != 0) {
            emit(std::string_view("inside"), address(e.inside));
        }
        if (e.proto != 0) {
            emit(std::string_view("proto"), protocol_name(e.proto));
        }
        emit(std::string_view("percent"), number(e.value));
        break;
    case NatEventKind::count_:
        break;
    }
}

} // namespace ephemera::logging
