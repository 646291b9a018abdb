#include "ipfix_encoder.hpp"

#include <algorithm>

namespace ephemera::logging {
namespace {

// Every multi-byte IPFIX value is in network byte order (RFC 7011 section 6).
void put(std::vector<std::uint8_t>& out, std::uint64_t value, std::size_t bytes) {
    for (std::size_t i = bytes; i-- > 0;) {
        out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
    }
}

void set_u16(std::vector<std::uint8_t>& out, std::size_t at, std::size_t value) {
    out[at] = static_cast<std::uint8_t>(value >> 8);
    out[at + 1] = static_cast<std::uint8_t>(value);
}

// RFC 7011 section 3.1; the length is patched once the message is complete.
void put_header(std::vector<std::uint8_t>& out, std::uint32_t export_time_s, std::uint32_t sequence,
                std::uint32_t domain) {
    put(out, kIpfixVersion, 2);
    put(out, 0, 2);
    put(out, export_time_s, 4);
    put(out, sequence, 4);
    put(out, domain, 4);
}

std::uint64_t field_value(IpfixIe ie, const NatEvent& e) {
    switch (ie) {
    case IpfixIe::protocol_identifier:
        return e.proto;
    case IpfixIe::source_transport_port:
        return e.inside_port;
    case IpfixIe::source_ipv4_address:
        return e.inside;
    case IpfixIe::destination_transport_port:
        return e.remote_port;
    case IpfixIe::destination_ipv4_address:
        return e.remote;
    case IpfixIe::post_nat_source_ipv4_address:
        return e.external;
    case IpfixIe::post_napt_source_transport_port:
        return e.external_port;
    case IpfixIe::nat_event:
        return static_cast<std::uint64_t>(e.code());
    case IpfixIe::observation_time_milliseconds:
        return e.time_ms;
    case IpfixIe::port_range_start:
        return e.first_port;
    case IpfixIe::port_range_end:
        return e.last_port;
    case IpfixIe::port_range_step_size:
        return e.step;
    case IpfixIe::port_range_num_ports:
        return e.ports;
    case IpfixIe::nat_quota_exceeded_event:
        return static_cast<std::uint64_t>(e.quota);
    case IpfixIe::nat_threshold_event:
        return static_cast<std::uint64_t>(e.threshold);
    case IpfixIe::max_session_entries:
    case IpfixIe::max_bib_entries:
    case IpfixIe::max_entries_per_user:
    case IpfixIe::max_subscribers:
    case IpfixIe::address_pool_high_threshold:
    case IpfixIe::address_pool_low_threshold:
    case IpfixIe::address_port_mapping_high_threshold:
    case IpfixIe::address_port_mapping_per_user_high_threshold:
    case IpfixIe::global_address_mapping_high_threshold:
        return e.value;
    }
    return 0;
}

std::optional<IpfixTemplateId> quota_template(NatQuota q) {
    switch (q) {
    case NatQuota::max_sessions:
        return IpfixTemplateId::quota_sessions;
    case NatQuota::max_bib_entries:
        return IpfixTemplateId::quota_mappings;
    case NatQuota::max_entries_per_user:
        return IpfixTemplateId::quota_per_user;
    case NatQuota::max_subscribers:
        return IpfixTemplateId::quota_subscribers;
    case NatQuota::none:
        break;
    }
    return std::nullopt;
}

std::optional<IpfixTemplateId> threshold_template(NatThreshold t) {
    switch (t) {
    case NatThreshold::address_pool_high:
        return IpfixTemplateId::threshold_pool_high;
    case NatThreshold::address_pool_low:
        return IpfixTemplateId::threshold_pool_low;
    case NatThreshold::address_port_high:
        return IpfixTemplateId::threshold_address_ports;
    case NatThreshold::address_port_per_user_high:
        return IpfixTemplateId::threshold_user_ports;
    case NatThreshold::global_mapping_high:
        return IpfixTemplateId::threshold_sessions;
    case NatThreshold::none:
        break;
    }
    return std::nullopt;
}

constexpr bool ids_follow_the_table() {
    for (std::size_t i = 0; i < kIpfixTemplates.size(); ++i) {
        if (static_cast<std::size_t>(kIpfixTemplates[i].id) != 256 + i) {
            return false;
        }
    }
    return true;
}
static_assert(ids_follow_the_table(), "ipfix_template() finds a template by its id's position");

// The largest record, so that a message bound always leaves room for one.
std::size_t largest_record() {
    std::size_t n = 0;
    for (const auto& t : kIpfixTemplates) {
        n = std::max(n, ipfix_record_size(t));
    }
    return n;
}

} // namespace

const IpfixTemplate& ipfix_template(IpfixTemplateId id) {
    return kIpfixTemplates[static_cast<std::size_t>(id) -
                           static_cast<std::size_t>(IpfixTemplateId::mapping)];
}

std::size_t ipfix_record_size(const IpfixTemplate& t) {
    std::size_t n = 0;
    for (const auto& f : t.fields) {
        n += f.length;
    }
    return n;
}

std::optional<IpfixTemplateId> ipfix_template_for(const NatEvent& e) {
    switch (e.kind) {
    case NatEventKind::mapping_created:
    case NatEventKind::mapping_deleted:
        return e.remote != 0 ? IpfixTemplateId::mapping_remote : IpfixTemplateId::mapping;
    case NatEventKind::block_allocated:
    case NatEventKind::block_released:
    case NatEventKind::block_interim:
        return IpfixTemplateId::port_block;
    case NatEventKind::static_added:
    case NatEventKind::static_removed:
        // RFC 8158's address binding names addresses only; a port forward needs its ports too,
        // which the mapping template carries (natEvent still says address binding).
        return e.proto == 0 ? IpfixTemplateId::address_binding : IpfixTemplateId::mapping;
    case NatEventKind::ports_exhausted:
        return IpfixTemplateId::ports_exhausted;
    case NatEventKind::quota_exceeded:
        return quota_template(e.quota);
    case NatEventKind::threshold_reached:
        return threshold_template(e.threshold);
    case NatEventKind::deterministic_formula:
    case NatEventKind::count_:
        break;
    }
    return std::nullopt;
}

std::vector<std::uint8_t> IpfixEncoder::templates_message(std::uint32_t export_time_s) const {
    std::vector<std::uint8_t> out;
    out.reserve(512);
    put_header(out, export_time_s, sequence_, domain_);
    const std::size_t set_at = out.size();
    put(out, kIpfixTemplateSetId, 2);
    put(out, 0, 2);
    for (const auto& t : kIpfixTemplates) {
        put(out, static_cast<std::uint16_t>(t.id), 2);
        put(out, t.fields.size(), 2);
        for (const auto& f : t.fields) {
            put(out, static_cast<std::uint16_t>(f.ie), 2);
            put(out, f.length, 2);
        }
    }
    set_u16(out, set_at + 2, out.size() - set_at);
    set_u16(out, 2, out.size());
    return out;
}

std::size_t IpfixEncoder::data_messages(std::span<const NatEvent> events,
                                        std::uint32_t export_time_s, std::size_t max_message_bytes,
                                        std::vector<IpfixMessage>& out) {
    static const std::size_t smallest_bound =
        kIpfixHeaderBytes + kIpfixSetHeaderBytes + largest_record();
    const std::size_t bound = std::clamp<std::size_t>(max_message_bytes, smallest_bound, 0xffff);

    IpfixMessage* message = nullptr;
    std::size_t set_at = 0;
    std::optional<IpfixTemplateId> set_template;
    std::size_t encoded = 0;

    auto close_set = [&] {
        if (set_template) {
            set_u16(message->bytes, set_at + 2, message->bytes.size() - set_at);
            set_template.reset();
        }
    };
    auto close_message = [&] {
        if (message != nullptr) {
            close_set();
            set_u16(message->bytes, 2, message->bytes.size());
            sequence_ += message->records;
            message = nullptr;
        }
    };

    for (const auto& e : events) {
        const auto id = ipfix_template_for(e);
        if (!id) {
            continue;
        }
        const IpfixTemplate& t = ipfix_template(*id);
        const std::size_t record = ipfix_record_size(t);
        const bool same_set = message != nullptr && set_template == id;
        const std::size_t needed = record + (same_set ? 0 : kIpfixSetHeaderBytes);
        if (message != nullptr && message->bytes.size() + needed > bound) {
            close_message();
        }
        if (message == nullptr) {
            message = &out.emplace_back();
            message->bytes.reserve(bound);
            put_header(message->bytes, export_time_s, sequence_, domain_);
        }
        if (set_template != id) {
            close_set();
            set_at = message->bytes.size();
            put(message->bytes, static_cast<std::uint16_t>(*id), 2);
            put(message->bytes, 0, 2);
            set_template = id;
        }
        for (const auto& f : t.fields) {
            put(message->bytes, field_value(f.ie, e), f.length);
        }
        ++message->records;
        ++encoded;
    }
    close_message();
    return encoded;
}

} // namespace ephemera::logging
