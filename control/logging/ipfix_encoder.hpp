// NAT events as IPFIX (RFC 7011) messages with the NAT information elements of RFC 8158.
//
// Every event shape has one fixed template; the table below is the single list of them, so the
// templates sent, the data records encoded and docs/logging.md cannot disagree. Template ids are
// fixed (not assigned at run time) so that a collector's captures stay comparable across
// restarts and versions.
#pragma once

#include "ephemera/nat_event.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace ephemera::logging {

// IANA "IPFIX Information Elements" ids and types (RFC 7012 for the flow elements, RFC 8158 for
// the NAT ones); every template uses the type's full size, no reduced-size encoding.
// tests/unit/ipfix_tshark_test.cpp has Wireshark's dissector name each one.
enum class IpfixIe : std::uint16_t {
    protocol_identifier = 4,                            // unsigned8
    source_transport_port = 7,                          // unsigned16
    source_ipv4_address = 8,                            // ipv4Address
    destination_transport_port = 11,                    // unsigned16
    destination_ipv4_address = 12,                      // ipv4Address
    post_nat_source_ipv4_address = 225,                 // ipv4Address
    post_napt_source_transport_port = 227,              // unsigned16
    nat_event = 230,                                    // unsigned8
    observation_time_milliseconds = 323,                // dateTimeMilliseconds (8 bytes)
    port_range_start = 361,                             // unsigned16
    port_range_end = 362,                               // unsigned16
    port_range_step_size = 363,                         // unsigned16
    port_range_num_ports = 364,                         // unsigned16
    nat_quota_exceeded_event = 466,                     // unsigned32
    nat_threshold_event = 467,                          // unsigned32
    max_session_entries = 471,                          // unsigned32
    max_bib_entries = 472,                              // unsigned32
    max_entries_per_user = 473,                         // unsigned32
    max_subscribers = 474,                              // unsigned32
    address_pool_high_threshold = 476,                  // unsigned32
    address_pool_low_threshold = 477,                   // unsigned32
    address_port_mapping_high_threshold = 478,          // unsigned32
    address_port_mapping_per_user_high_threshold = 480, // unsigned32
    global_address_mapping_high_threshold = 481,        // unsigned32
};

struct IpfixField {
    IpfixIe ie;
    std::uint16_t length;
};

// Template ids (RFC 7011: data set ids start at 256).
enum class IpfixTemplateId : std::uint16_t {
    mapping = 256,           // NAT44 BIB create/delete; static port forwards (address binding)
    mapping_remote,          // ... with the remote endpoint (logging.destination on)
    address_binding,         // static 1:1 entries
    port_block,              // port block allocation (also interim) and de-allocation
    ports_exhausted,         // NAT ports exhausted
    quota_sessions,          // quota exceeded: maximum session entries
    quota_mappings,          // ... maximum BIB entries
    quota_per_user,          // ... maximum entries per user
    quota_subscribers,       // ... maximum active hosts or subscribers
    threshold_pool_high,     // threshold reached: address pool high
    threshold_pool_low,      // ... address pool low
    threshold_address_ports, // ... address and port mapping high
    threshold_user_ports,    // ... address and port mapping per user high
    threshold_sessions,      // ... global address mapping high
};

namespace ipfix_fields {
using enum IpfixIe;
// RFC 8158's templates start with the timestamp and natEvent; the rest follow its order.
inline constexpr std::array<IpfixField, 7> kMapping = {{{observation_time_milliseconds, 8},
                                                        {nat_event, 1},
                                                        {source_ipv4_address, 4},
                                                        {post_nat_source_ipv4_address, 4},
                                                        {protocol_identifier, 1},
                                                        {source_transport_port, 2},
                                                        {post_napt_source_transport_port, 2}}};
// For NAT44 the destination is not translated, so destinationIPv4Address/Port say it all.
inline constexpr std::array<IpfixField, 9> kMappingRemote = {{{observation_time_milliseconds, 8},
                                                              {nat_event, 1},
                                                              {source_ipv4_address, 4},
                                                              {post_nat_source_ipv4_address, 4},
                                                              {protocol_identifier, 1},
                                                              {source_transport_port, 2},
                                                              {post_napt_source_transport_port, 2},
                                                              {destination_ipv4_address, 4},
                                                              {destination_transport_port, 2}}};
inline constexpr std::array<IpfixField, 4> kAddressBinding = {{{observation_time_milliseconds, 8},
                                                               {nat_event, 1},
                                                               {source_ipv4_address, 4},
                                                               {post_nat_source_ipv4_address, 4}}};
inline constexpr std::array<IpfixField, 8> kPortBlock = {{{observation_time_milliseconds, 8},
                                                          {nat_event, 1},
                                                          {source_ipv4_address, 4},
                                                          {post_nat_source_ipv4_address, 4},
                                                          {port_range_start, 2},
                                                          {port_range_end, 2},
                                                          {port_range_step_size, 2},
                                                          {port_range_num_ports, 2}}};
inline constexpr std::array<IpfixField, 4> kPortsExhausted = {{{observation_time_milliseconds, 8},
                                                               {nat_event, 1},
                                                               {post_nat_source_ipv4_address, 4},
                                                               {protocol_identifier, 1}}};
template <IpfixIe Limit>
inline constexpr std::array<IpfixField, 4> kQuota = {{{observation_time_milliseconds, 8},
                                                      {nat_event, 1},
                                                      {nat_quota_exceeded_event, 4},
                                                      {Limit, 4}}};
inline constexpr std::array<IpfixField, 5> kQuotaPerUser = {{{observation_time_milliseconds, 8},
                                                             {nat_event, 1},
                                                             {nat_quota_exceeded_event, 4},
                                                             {max_entries_per_user, 4},
                                                             {source_ipv4_address, 4}}};
// RFC 8158 names the pool by natPoolID in the pool thresholds; a NatEvent carries no pool id.
template <IpfixIe Watermark>
inline constexpr std::array<IpfixField, 4> kThreshold = {
    {{observation_time_milliseconds, 8}, {nat_event, 1}, {nat_threshold_event, 4}, {Watermark, 4}}};
template <IpfixIe Address, IpfixIe Watermark>
inline constexpr std::array<IpfixField, 5> kThresholdAt = {{{observation_time_milliseconds, 8},
                                                            {nat_event, 1},
                                                            {nat_threshold_event, 4},
                                                            {Address, 4},
                                                            {Watermark, 4}}};
} // namespace ipfix_fields

struct IpfixTemplate {
    IpfixTemplateId id;
    std::string_view name; // for docs and tests
    std::span<const IpfixField> fields;
};

inline constexpr std::array<IpfixTemplate, 14> kIpfixTemplates = {{
    {IpfixTemplateId::mapping, "mapping", ipfix_fields::kMapping},
    {IpfixTemplateId::mapping_remote, "mapping-remote", ipfix_fields::kMappingRemote},
    {IpfixTemplateId::address_binding, "address-binding", ipfix_fields::kAddressBinding},
    {IpfixTemplateId::port_block, "port-block", ipfix_fields::kPortBlock},
    {IpfixTemplateId::ports_exhausted, "ports-exhausted", ipfix_fields::kPortsExhausted},
    {IpfixTemplateId::quota_sessions, "quota-sessions",
     ipfix_fields::kQuota<IpfixIe::max_session_entries>},
    {IpfixTemplateId::quota_mappings, "quota-mappings",
     ipfix_fields::kQuota<IpfixIe::max_bib_entries>},
    {IpfixTemplateId::quota_per_user, "quota-per-user", ipfix_fields::kQuotaPerUser},
    {IpfixTemplateId::quota_subscribers, "quota-subscribers",
     ipfix_fields::kQuota<IpfixIe::max_subscribers>},
    {IpfixTemplateId::threshold_pool_high, "threshold-pool-high",
     ipfix_fields::kThreshold<IpfixIe::address_pool_high_threshold>},
    {IpfixTemplateId::threshold_pool_low, "threshold-pool-low",
     ipfix_fields::kThreshold<IpfixIe::address_pool_low_threshold>},
    {IpfixTemplateId::threshold_address_ports, "threshold-address-ports",
     ipfix_fields::kThresholdAt<IpfixIe::post_nat_source_ipv4_address,
                                IpfixIe::address_port_mapping_high_threshold>},
    {IpfixTemplateId::threshold_user_ports, "threshold-user-ports",
     ipfix_fields::kThresholdAt<IpfixIe::source_ipv4_address,
                                IpfixIe::address_port_mapping_per_user_high_threshold>},
    {IpfixTemplateId::threshold_sessions, "threshold-sessions",
     ipfix_fields::kThreshold<IpfixIe::global_address_mapping_high_threshold>},
}};

const IpfixTemplate& ipfix_template(IpfixTemplateId id);
// Bytes of one data record of `t`.
std::size_t ipfix_record_size(const IpfixTemplate& t);
// The template an event is encoded with. nullopt: the event has no IPFIX form.
// deterministic_formula has none: RFC 8158 has no natEvent for a formula, and a collector can
// derive nothing from an address binding that names a whole prefix; syslog and the archive
// carry it. Events whose quota or threshold is `none` are malformed and have none either.
std::optional<IpfixTemplateId> ipfix_template_for(const NatEvent& e);

inline constexpr std::uint16_t kIpfixVersion = 10;
inline constexpr std::size_t kIpfixHeaderBytes = 16;
inline constexpr std::size_t kIpfixSetHeaderBytes = 4;
inline constexpr std::uint16_t kIpfixTemplateSetId = 2;
inline constexpr std::uint16_t kIpfixPort = 4739;
inline constexpr std::size_t kIpfixUdpMessageBytes = 1400; // below a 1500 MTU with headers

struct IpfixMessage {
    std::vector<std::uint8_t> bytes;
    std::uint32_t records = 0; // data records in it
};

class IpfixEncoder {
public:
    explicit IpfixEncoder(std::uint32_t observation_domain) : domain_(observation_domain) {}

    // One message with a template set holding every template of kIpfixTemplates. Template
    // records do not count in the sequence number (RFC 7011 section 3.1).
    [[nodiscard]] std::vector<std::uint8_t> templates_message(std::uint32_t export_time_s) const;

    // Appends the data messages for `events` to `out`: consecutive records of one template share
    // a set, and no message exceeds `max_message_bytes` (raised to fit one record and lowered to
    // 65535, the most a message's length field says). Events without an IPFIX form are passed
    // over. Returns the records encoded.
    std::size_t data_messages(std::span<const NatEvent> events, std::uint32_t export_time_s,
                              std::size_t max_message_bytes, std::vector<IpfixMessage>& out);

    // RFC 7011 section 3.1: the sequence number counts the data records sent "in the current
    // stream", so an exporter that opens a new transport session may start again at 0. The
    // sink does not (its TCP backlog carries numbered messages across connections).
    void reset_sequence() { sequence_ = 0; }
    [[nodiscard]] std::uint32_t sequence() const { return sequence_; }
    [[nodiscard]] std::uint32_t observation_domain() const { return domain_; }

private:
    std::uint32_t domain_;
    std::uint32_t sequence_ = 0; // data records sent before the next message, modulo 2^32
};

} // namespace ephemera::logging
