// NAT events: what a worker (or the control thread) records when a public address:port changes
// hands, for the logging thread to send to collectors (IPFIX, syslog) and to the archive that
// answers "who held this address:port at time T" (docs/logging.md).
//
// A record is fixed-size and self-contained, so a worker writes it into its own ring with one
// copy and never waits; every sink encodes the same record. The RFC 8158 numbers each kind
// becomes on the wire live here too, next to the kinds, so that the IPFIX encoder, the syslog
// formatter and the archive cannot drift apart.
#pragma once

#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ephemera {

enum class NatEventKind : std::uint8_t {
    mapping_created,       // dynamic or static mapping made (RFC 8158 NAT44 BIB create)
    mapping_deleted,       // ... its last session ended (NAT44 BIB delete)
    block_allocated,       // port block given to a subscriber (port block allocation)
    block_released,        // ... its last mapping ended (port block de-allocation)
    block_interim,         // ... still held: repeated every logging.interim (allocation again)
    static_added,          // a static entry configured (address binding create)
    static_removed,        // ... removed (address binding delete)
    deterministic_formula, // the deterministic formula in force, at start and on each change
    ports_exhausted,       // no free port (or block) on the subscriber's pool address
    quota_exceeded,        // a subscriber at a limit, or a table full (see NatQuota)
    threshold_reached,     // a use crossed its configured watermark (see NatThreshold)
    count_
};
inline constexpr std::size_t kNatEventKindCount = static_cast<std::size_t>(NatEventKind::count_);

// Names in syslog messages, the archive and the config's logging.events list.
inline constexpr std::array<std::string_view, kNatEventKindCount> kNatEventNames = {
    "mapping-create",  "mapping-delete", "block-alloc",   "block-release",
    "block-interim",   "static-add",     "static-remove", "det-formula",
    "ports-exhausted", "quota-exceeded", "threshold"};

constexpr std::string_view nat_event_name(NatEventKind k) {
    return kNatEventNames[static_cast<std::size_t>(k)];
}
std::optional<NatEventKind> nat_event_from_name(std::string_view name);

// RFC 8158 section 4.1, natEvent (IANA IE 230), as IANA's "NAT Event Type" registry numbers
// them. Early drafts (and some vendors' exporters) numbered BIB create 6, block allocation 14 and
// so on; collectors decode the registry's values, so those are the ones on the wire.
enum class NatEventCode : std::uint8_t {
    nat_addresses_exhausted = 3,
    nat44_session_create = 4,
    nat44_session_delete = 5,
    nat44_bib_create = 8,
    nat44_bib_delete = 9,
    nat_ports_exhausted = 12,
    quota_exceeded = 13,
    address_binding_create = 14,
    address_binding_delete = 15,
    port_block_allocation = 16,
    port_block_deallocation = 17,
    threshold_reached = 18,
};

// RFC 8158 section 4.1, natQuotaExceededEvent (IE 466): which limit was hit.
enum class NatQuota : std::uint8_t {
    none = 0,
    max_sessions = 1,         // the worker's session table is full
    max_bib_entries = 2,      // ... its mapping capacity
    max_entries_per_user = 3, // a subscriber at its session, port or block limit
    max_subscribers = 4,      // the worker's subscriber table is full
};

// RFC 8158 section 4.1, natThresholdEvent (IE 467): which watermark was crossed.
enum class NatThreshold : std::uint8_t {
    none = 0,
    address_pool_high = 1,
    address_pool_low = 2,
    address_port_high = 3,          // ports in use on one pool address (a worker's share)
    address_port_per_user_high = 4, // ports in use by one subscriber
    global_mapping_high = 5,        // sessions in the worker's table
};

// One event. 56 bytes; which fields mean something depends on the kind:
//   mapping_*      proto, inside:inside_port, external:external_port, remote:remote_port when
//                  logging.destination is on (0 otherwise), flags kStaticMapping
//   block_*        inside, external, ports first..last every `step`, `ports` of them
//   static_*       proto (0 for 1:1), inside:inside_port, external:external_port
//   deterministic_formula  inside/prefix_len: the subscriber prefix; external..external_last:
//                  the pool; ports first..last per subscriber, `ports` each, `value` = ratio
//   ports_exhausted  proto, inside, external
//   quota_exceeded   quota, proto, inside (0 when a table is full), value = the limit
//   threshold_reached  threshold, external (pool address or 0), inside (subscriber or 0),
//                  value = the watermark in percent
struct NatEvent {
    std::uint64_t time_ms = 0; // Unix time in milliseconds, taken where the event happened
    NatEventKind kind = NatEventKind::mapping_created;
    std::uint8_t proto = 0; // IP protocol number, 0: none
    std::uint16_t worker = 0;
    std::uint32_t inside = 0; // host byte order, as Ipv4Addr::value()
    std::uint16_t inside_port = 0;
    std::uint16_t external_port = 0;
    std::uint32_t external = 0;
    std::uint32_t external_last = 0;
    std::uint32_t remote = 0;
    std::uint16_t remote_port = 0;
    std::uint16_t first_port = 0;
    std::uint16_t last_port = 0;
    std::uint16_t step = 0;
    std::uint16_t ports = 0;
    NatQuota quota = NatQuota::none;
    NatThreshold threshold = NatThreshold::none;
    std::uint32_t value = 0;
    std::uint8_t prefix_len = 0;
    std::uint8_t flags = 0;
    std::uint8_t reserved_[2] = {};

    static constexpr std::uint8_t kStaticMapping = 1;

    [[nodiscard]] NatEventCode code() const;
};
static_assert(sizeof(NatEvent) == 56, "NatEvent is a ring element: keep it a multiple of 8");

} // namespace ephemera
