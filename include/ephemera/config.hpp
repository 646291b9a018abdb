// The validated configuration. control/ parses and checks a TOML file into this struct; the
// dataplane only ever sees a Config that passed every check.
#pragma once

#include "ephemera/types.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ephemera {

enum class FilteringMode : std::uint8_t {
    endpoint_independent,   // RFC 4787 REQ-8 EIF: any remote may reach an existing mapping
    address_dependent,      // ADF: only remote addresses the subscriber has sent to
    address_port_dependent, // APDF: only remote address:port pairs the subscriber has sent to
};

std::string_view filtering_mode_name(FilteringMode m);

// Port-range presets, by the name the config file uses.
struct PortRangePreset {
    std::string_view name;
    PortRange range;
};
inline constexpr PortRangePreset kPortRangePresets[] = {
    {"iana", {49152, 65535}},
    {"linux", {32768, 60999}},
    {"freebsd", {10000, 65535}},
    {"legacy-bsd", {1024, 5000}},
};

struct Timeouts {
    // Seconds. Defaults and minimums from RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-2.
    std::uint32_t udp = 300;
    std::uint32_t tcp_established = 7440;
    std::uint32_t tcp_transitory = 240;
    std::uint32_t icmp = 60;

    // A freed external port is not handed out again for this long (RFC 6888 REQ-8).
    std::uint32_t port_hold_down = 120;
    // Whether packets from outside refresh the session they belong to (RFC 4787 REQ-6: MAY).
    // Outbound packets always do.
    bool inbound_refresh = false;

    static constexpr std::uint32_t kMinUdp = 120;
    static constexpr std::uint32_t kMinTcpEstablished = 7440;
    static constexpr std::uint32_t kMinTcpTransitory = 240;
    static constexpr std::uint32_t kMinIcmp = 60;
};

// Which checksums of the packets a port sends may be left to its NIC. What the port offers
// decides the rest, once at start (tx_checksum.hpp); a port that offers nothing computes every
// checksum in software whatever this says.
enum class ChecksumOffloadSetting : std::uint8_t {
    automatic, // the IPv4, UDP and TCP checksums, each where the port offers it
    // The IPv4 header checksum only. An RFC 1624 update carries a transport checksum that
    // arrived wrong out wrong; a NIC computing it afresh would make it right, hiding the
    // corruption from the receiver. The header checksum is checked on arrival anyway.
    ipv4,
    off, // every checksum in software
};
// The config file's spelling: "auto", "ipv4", "off".
std::string_view checksum_offload_name(ChecksumOffloadSetting s);

struct InsideConfig {
    std::string port;         // DPDK device name, e.g. "net_af_packet0"
    Ipv4Addr gateway;         // answered for ARP (and ping) on the inside
    std::uint16_t mtu = 1500; // largest IP packet sent out of this port (RFC 4787 REQ-13)
    ChecksumOffloadSetting checksum_offload = ChecksumOffloadSetting::automatic;
};

// Bounds of a port's MTU: 576 is what every IPv4 host must accept (RFC 791, RFC 1122 3.3.2).
inline constexpr std::uint16_t kMinMtu = 576;
inline constexpr std::uint16_t kMaxMtu = 9000;

struct OutsideConfig {
    std::string port;
    Ipv4Addr next_hop;                   // where every translated packet is sent
    std::optional<MacAddr> next_hop_mac; // static; otherwise learned by ARP
    std::uint16_t mtu = 1500;
    ChecksumOffloadSetting checksum_offload = ChecksumOffloadSetting::automatic;
};

// Virtual reassembly of fragments (RFC 4787 REQ-14), per worker: see fragments.hpp.
struct FragmentsConfig {
    std::uint32_t timeout = 5;          // s a datagram's record lives (RFC 791 suggests 15)
    std::uint32_t max_datagrams = 256;  // datagrams tracked at once
    std::uint32_t max_per_datagram = 8; // pieces held while their first piece is missing

    static constexpr std::uint32_t kMaxTimeout = 60;
    static constexpr std::uint32_t kMinDatagrams = 16;
    static constexpr std::uint32_t kMaxDatagrams = 65536;
    static constexpr std::uint32_t kMaxPerDatagram = 64;
    // Each held piece is a packet buffer: the pool grows by this much per worker at most.
    static constexpr std::uint32_t kMaxHeld = 16384;
};

struct Limits {
    // Sessions across all workers; each worker gets an equal share.
    std::uint32_t max_sessions = 1u << 20;
    // Subscribers across all workers (0: as many as sessions). Each worker's subscriber table
    // is sized by its share of this, not by the session limit: a subscriber holds many
    // sessions, so sizing it like the session table wastes most of it (RFC 6888 REQ-5).
    std::uint32_t max_subscribers = 0;
    // What the tables are sized for: never more subscribers than sessions.
    [[nodiscard]] std::uint32_t subscribers() const {
        return max_subscribers == 0 ? max_sessions : std::min(max_subscribers, max_sessions);
    }
    // The config file's default: one subscriber per 16 sessions, but never fewer than 65536
    // (nor more than max_sessions), so small setups keep one subscriber per session.
    static constexpr std::uint32_t default_subscribers(std::uint32_t max_sessions) {
        return std::min(max_sessions, std::max(max_sessions / 16, std::uint32_t{65536}));
    }
    // Per subscriber (RFC 6888 REQ-4, REQ-5): sessions, and external ports per protocol.
    std::uint32_t subscriber_sessions = 8192;
    std::uint32_t subscriber_ports_udp = 4096;
    std::uint32_t subscriber_ports_tcp = 4096;
    std::uint32_t subscriber_ports_icmp = 4096;
    // New mappings per second per subscriber, as a token bucket (0: no rate limit).
    std::uint32_t subscriber_mapping_rate = 1000;
    std::uint32_t subscriber_mapping_burst = 1000;
};

// What a subscriber is told when no mapping can be made for it (RFC 6888 REQ-11), and the pace
// of every ICMP error ephemera originates (3/1 and Time Exceeded, RFC 5508 section 7.2).
struct IcmpConfig {
    bool unreachable = true;              // send ICMP destination unreachable 3/1
    std::uint32_t unreachable_rate = 100; // errors per second per worker, 3/1 and 11/0 (0: none)
    // RFC 5382 REQ-4: answer an unsolicited inbound TCP SYN with ICMP 3/3 once it has waited
    // 6 s without an outbound SYN of its connection. Off: such SYNs are dropped silently
    // (REQ-4a, the usual policy of a carrier NAT).
    bool unsolicited_syn_unreachable = false;
};

// How a pool hands out external ports (docs/allocation.md).
enum class AllocationMode : std::uint8_t {
    dynamic,       // one port per new mapping from the worker's share (NAPT), the default
    blocks,        // port-block allocation: a subscriber's mappings take ports from its blocks
    deterministic, // RFC 7422: each subscriber's address and port range follow from a formula
};
// The config file's spelling: "dynamic", "blocks", "deterministic".
std::string_view allocation_mode_name(AllocationMode m);

// Port-block allocation ([pool.blocks]). A block is `block_size` consecutive ports of the
// owning worker's share of one pool address (with several workers the share is strided, so a
// block spans more ports than it holds; docs/allocation.md).
struct BlocksConfig {
    std::uint32_t block_size = 256; // ports per block: a multiple of 64, 64..4096
    std::uint32_t max_blocks = 8;   // blocks per subscriber at once, 1..64
    // A block older than this takes no new ports (its mappings live on), so its log record has
    // an end (Juniper's active-block-timeout). Seconds; 0: never.
    std::uint32_t active_block_timeout = 0;
    // Seconds between interim records of a long-lived block (NAT event logging); 0: none.
    std::uint32_t interim = 0;
    // Adaptive sizing: each subscriber's next block is a power of two in
    // [min_block_size, max_block_size] chosen from its demand, within a budget of block
    // records per subscriber per day (include/ephemera/block_sizing.hpp).
    bool adaptive = false;
    std::uint32_t min_block_size = 64;
    std::uint32_t max_block_size = 4096;
    std::uint32_t records_per_day = 24;

    static constexpr std::uint32_t kGranule = 64; // block sizes are multiples of this
    static constexpr std::uint32_t kMinBlockSize = 64;
    static constexpr std::uint32_t kMaxBlockSize = 4096;
    static constexpr std::uint32_t kMaxBlocks = 64;
};

// Deterministic NAT ([pool.deterministic], RFC 7422): subscriber i of `subscribers` (its offset
// in the prefix) gets pool address i / ratio and the i % ratio-th run of ports_per_subscriber
// ports of port_range, ratio = subscribers per pool address. No per-subscriber allocation
// state, no logging needed. port_range's low end is RFC 7422's offset and must be at least 1024;
// pool.reserved is refused in this mode, since a reserved port would cut some subscribers'
// runs only (include/ephemera/deterministic.hpp, docs/allocation.md).
struct DeterministicConfig {
    Ipv4Addr prefix; // first address of the subscriber prefix
    std::uint8_t prefix_len = 0;
    std::uint32_t min_ports = 1024; // refused when a subscriber would get fewer
};

// A static mapping ([[static]] in the file, `ephemeractl static add` at run time): reachable
// from outside with no earlier outbound packet, and the one external endpoint its inside
// endpoint's own outbound flows use (docs/allocation.md, "Static mappings").
//  - A port forward: pool address:port of one protocol (tcp or udp) <-> inside address:port.
//    The port lies outside the dynamic part of pool.port_range (below it, above it, or in
//    pool.reserved), so dynamic and block allocation never hand it out.
//  - 1:1 (no ports, no protocol): the inside address owns `external` whole, every port of
//    every protocol, both directions. `external` is then not one of pool.addresses.
struct StaticMapping {
    Ipv4Addr external;
    Ipv4Addr inside;
    std::uint16_t external_port = 0; // 0: 1:1
    std::uint16_t inside_port = 0;
    Protocol proto = Protocol::tcp; // port forwards only: tcp or udp
    [[nodiscard]] bool one_to_one() const { return external_port == 0; }
    bool operator==(const StaticMapping&) const = default;
};

// Bounds on [[static]]: entries in all, and 1:1 entries among them, since each 1:1 address
// costs the dataplane per-address port state as a pool address does.
inline constexpr std::size_t kMaxStatics = 65536;
inline constexpr std::size_t kMaxOneToOne = 1024;

// [logging] (docs/logging.md): where NAT events go. Collectors are reached from the control
// side's kernel sockets; an unreachable one is a warning and a counter, never a refusal.
struct LogCollector {
    Ipv4Addr address;
    std::uint16_t port = 0;
    bool tcp = false; // RFC 6587 octet counting (syslog) or RFC 7011 over TCP (IPFIX)
    bool operator==(const LogCollector&) const = default;
};

struct SyslogCollector : LogCollector {
    std::uint8_t facility = 16; // local0
    bool operator==(const SyslogCollector&) const = default;
};

struct IpfixCollector : LogCollector {
    std::uint32_t observation_domain = 1;
    std::uint32_t template_refresh = 60; // s between template resends over UDP
    bool operator==(const IpfixCollector&) const = default;
};

struct ArchiveConfig {
    std::string path;                // directory; empty: no archive
    std::uint32_t rotate_size = 64;  // MiB
    std::uint32_t rotate_age = 3600; // s
    std::uint32_t retention = 90;    // days
    bool compress = true;            // closed files become .zst
    std::string hmac_key_file;       // empty: SHA-256 chain only
    bool operator==(const ArchiveConfig&) const = default;
};

struct LoggingConfig {
    std::uint32_t events = 0;        // bit per NatEventKind that is logged (all by default)
    bool destination = false;        // mapping records carry the first remote endpoint
    std::uint32_t ring_size = 65536; // records per worker ring, a power of two
    std::vector<SyslogCollector> syslog;
    std::vector<IpfixCollector> ipfix;
    ArchiveConfig archive;
    // Watermarks for threshold events, in percent (0: none): ports in use on one pool address
    // (a worker's share, per protocol) and sessions in a worker's table. A watermark is
    // reported once when crossed upwards and again only after use fell 5 points below it.
    std::uint32_t address_ports_threshold = 90;
    std::uint32_t sessions_threshold = 90;
    // ... and a subscriber's ports of one protocol, in percent of limits.subscriber_ports_*.
    std::uint32_t subscriber_ports_threshold = 90;

    static constexpr std::uint32_t kMinRing = 1024;
    static constexpr std::uint32_t kMaxRing = 1u << 22;
    static constexpr std::size_t kMaxCollectors = 8;

    // Whether any sink is on: with none, workers write no records at all.
    [[nodiscard]] bool any_sink() const {
        return !syslog.empty() || !ipfix.empty() || !archive.path.empty();
    }
    bool operator==(const LoggingConfig&) const = default;
};

// logging.events as the file spells it: the event groups whose records are all on, in
// order ("mapping", "block", "static", "deterministic", "exhaustion").
std::vector<std::string> logging_event_groups(std::uint32_t events);

// Pool-wide port use alarms and the exhaustion forecast (control/alarms/pool_watch.hpp): the
// control side samples the workers' port use once a second.
struct AlarmsConfig {
    std::uint32_t pool_ports_high = 90;  // percent of a protocol's pool ports in use: raised
    std::uint32_t pool_ports_clear = 80; // ... cleared at or below this; below high
    std::uint32_t forecast_window = 900; // s of port use the forecast fits its trend to
    static constexpr std::uint32_t kMinWindow = 10;
    static constexpr std::uint32_t kMaxWindow = 7 * 86400;
    bool operator==(const AlarmsConfig&) const = default;
};

// [metrics] (docs/metrics.md): the Prometheus /metrics listener, opened at start on the control
// side. Off when the table or its listen key is absent.
struct MetricsConfig {
    Ipv4Addr address;
    std::uint16_t port = 0; // 0: off
    [[nodiscard]] bool enabled() const { return port != 0; }
    bool operator==(const MetricsConfig&) const = default;
};

// [ha] (docs/ha.md): sessions kept across a restart. The file is written when ephemera stops
// and read (then set aside) when it starts; empty: off.
enum class HaRole : std::uint8_t { none, active, standby };

struct HaConfig {
    std::string state_file;
    // An active/standby pair (off while role is none): the sync link's two ends, and when the
    // standby takes over.
    HaRole role = HaRole::none; // the role at start; a box may change it by failover
    Ipv4Addr listen_address;    // this box's end of the sync link
    std::uint16_t listen_port = 0;
    Ipv4Addr peer_address; // the other box's listen address
    std::uint16_t peer_port = 0;
    std::uint32_t dead_interval_ms = 1000; // the active silent this long: the standby takes over
    std::uint32_t refresh_interval = 10;   // s between refresh rounds of used sessions
    [[nodiscard]] bool paired() const { return role != HaRole::none; }
    // Scale-out (docs/ha.md, "Draining a box"): where this box takes a drained box's sessions
    // in (port 0: no hand-over, neither in nor out). Boxes of a pair have none.
    Ipv4Addr handover_address;
    std::uint16_t handover_port = 0;
    [[nodiscard]] bool handover() const { return handover_port != 0; }
    // Run after subscribers moved to a peer (`ephemeractl migrate`), to tell the inside routers
    // to send them there: an executable, given EPHEMERA_SUBSCRIBERS (PREFIX/LENGTH),
    // EPHEMERA_PEER (its ha.handover) and EPHEMERA_PEER_GATEWAY (its inside gateway). Empty:
    // none (the operator tells the routers).
    std::string migrate_hook;
    // How long the hook may take before it is killed with whatever it started: the hand-over
    // thread waits for it, so that the routers are told before the next move starts.
    std::uint32_t migrate_hook_timeout_s = 10;

    static constexpr std::uint32_t kMinDeadInterval = 100;
    static constexpr std::uint32_t kMaxDeadInterval = 60000;
    // At most half the shortest timeout a config may set (ICMP's 60 s), so the standby hears
    // of a session in use before its copy could time out.
    static constexpr std::uint32_t kMaxRefreshInterval = 30;
    static constexpr std::uint32_t kMaxMigrateHookTimeout = 600;
    bool operator==(const HaConfig&) const = default;
};

struct Config {
    std::string source;         // file the config came from, for messages
    std::vector<Ipv4Addr> pool; // public addresses, in file order, no duplicates
    PortRange port_range{49152, 65535};
    std::string port_range_name = "iana"; // preset name or "lo-hi" as written
    std::vector<PortRange> reserved;      // never allocated; inside port_range, not overlapping
    AllocationMode allocation = AllocationMode::dynamic;
    BlocksConfig blocks;               // allocation == blocks
    DeterministicConfig deterministic; // allocation == deterministic
    InsideConfig inside;
    OutsideConfig outside;
    Timeouts timeouts;
    FilteringMode filtering = FilteringMode::endpoint_independent;
    Limits limits;
    IcmpConfig icmp;
    FragmentsConfig fragments;
    std::vector<StaticMapping> statics; // [[static]], in file order
    LoggingConfig logging;
    AlarmsConfig alarms;
    MetricsConfig metrics;
    HaConfig ha;
    // What this box took over from drained boxes (docs/ha.md, "Draining a box"). Never read
    // from a file: a hand-over sets it at run time. The pool addresses carry the drained box's
    // sessions on (no new mapping is made on them); they are answered by ARP once the sessions
    // are in (`answered`), and so is the drained box's inside gateway.
    struct AdoptedAddress {
        Ipv4Addr address;
        bool answered = false;
        bool operator==(const AdoptedAddress&) const = default;
    };
    std::vector<AdoptedAddress> adopted_pool;
    std::vector<Ipv4Addr> adopted_gateways;
    // Subscribers this box moved to a peer (`ephemeractl migrate`, docs/ha.md "Moving live
    // subscribers"). Never read from a file. While `moved` is false their sessions are on the
    // way and their packets from the inside are held (dropped); once it is true, whatever of
    // theirs still reaches this box is passed to the peer's MAC on the segment it came from,
    // and the ports of their moved mappings stay held here, passing the replies on, until
    // they fall idle.
    struct SubscriberMove {
        Ipv4Addr prefix;
        std::uint8_t length = 32;
        bool moved = false;
        MacAddr peer_inside_mac;
        MacAddr peer_outside_mac;
        std::string peer; // the peer's ha.handover, for messages
        [[nodiscard]] bool contains(Ipv4Addr a) const {
            const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
            return (a.value() & mask) == (prefix.value() & mask);
        }
        bool operator==(const SubscriberMove&) const = default;
    };
    std::vector<SubscriberMove> moved_subscribers;
};

// A refusal: which file, which key (dotted TOML path, e.g. "pool.addresses[1]"), and why.
struct ConfigError {
    std::string file;
    std::string key;
    std::string reason;
    // "FILE: KEY: REASON", the line every refusal prints.
    [[nodiscard]] std::string to_string() const;
};

// Whether `text` is UTF-8 throughout (no stray, truncated or overlong sequence, surrogate, or
// code point beyond U+10FFFF).
bool is_valid_utf8(std::string_view text);

// Why toml++ must not be given `text`, or nothing: it is not UTF-8 (key "(encoding)"), or it
// has a non-ASCII character outside strings and comments, or one that toml++ 3.3.0 misreads
// in a multi-line string (key "(syntax)"); the reason names the line and column. parse_config()
// checks this first; config_edit.cpp checks the values it parses.
std::optional<ConfigError> check_toml_text(std::string_view text, const std::string& source);

// Parses TOML text. `source` names the file in errors. Every check that needs no running
// port happens here; port names are checked against the EAL's devices by
// check_port_names() once the EAL is up.
std::variant<Config, ConfigError> parse_config(std::string_view toml_text, std::string source);
std::variant<Config, ConfigError> load_config_file(const std::string& path);

// A short multi-line human summary of a validated config (pool, port range, reserved ports,
// allocation mode and its settings, ports, gateway, next hop, timeouts, filtering, limits,
// static mappings), for `ephemera --check-config`.
// Every line ends in '\n'.
std::string describe_config(const Config& config);

// A static mapping as the command line spells it (ephemeractl static add|remove, and the
// telemetry command behind it): "tcp 198.18.0.10:8080 100.64.0.5:80" (or udp) for a port
// forward, "198.18.0.20 100.64.0.50" for 1:1. Without `with_inside`, the external side alone
// ("tcp 198.18.0.10:8080", "198.18.0.20"), which is how a removal names a mapping; inside is
// then 0.0.0.0. Only the spelling is checked: whether the mapping fits a config is for the
// parser to say (edit_static).
std::variant<StaticMapping, ConfigError> parse_static_spec(std::string_view text,
                                                           bool with_inside = true);
// The spelling parse_static_spec reads: the whole mapping, or its external side alone.
std::string static_mapping_text(const StaticMapping& m);
std::string static_external_text(const StaticMapping& m);

} // namespace ephemera
