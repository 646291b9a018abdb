// Steering return traffic to the worker that owns it, as pure functions (no DPDK calls):
//
//  - Outside port, hardware rules: port_owner() reads only bits 1..6 of the destination port, so
//    a NIC can match it. build_port_rules() turns the Ownership into rules of the shape
//    "IPv4 dst = pool block, UDP|TCP dst port = spec under mask -> queue", and steer() evaluates
//    a rule set the way a NIC would (first match), for the exhaustive test. The edge
//    (dataplane/flow_steering.cpp) turns the rules into rte_flow and asks the NIC;
//    plan_outside_steering() decides from the NIC's answers which rules to install and what
//    mode the port runs in. Whatever is not matched in hardware reaches some queue by RSS and
//    is handed off in software, so a rule set only ever saves handoffs: correctness never
//    depends on it.
//  - ICMP echo identifiers sit inside the ICMP header, which rte_flow cannot match on most NICs:
//    ICMP always goes by software handoff, and no rule is built for it.
//  - The third mode, RSS on port buckets: where the NIC lets us set the RSS key and RETA but
//    not match port masks, bucket_rss_key() is a Toeplitz key under which the low six bits of
//    an IPv4 UDP/TCP packet's hash depend on the destination port's bucket bits (1..6) and on
//    nothing else, and bucket_reta() the RETA that sends each bucket to its owner, so the NIC
//    and port_owner() agree without any change to ownership or the allocator. ToeplitzRss
//    models the NIC's hash (checked against DPDK's rte_softrss).
#pragma once

#include "ephemera/ownership.hpp"
#include "ephemera/types.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera {

enum class OutsideSteering : std::uint8_t {
    rte_flow,    // every rule installed: return traffic arrives on its owner's queue
    rss_buckets, // RSS key and RETA set so that a UDP/TCP packet's queue is its port's owner
    partial,     // some rules installed, the rest by handoff
    handoff,     // no rule installed: every packet on a non-owner queue is handed off
};
enum class InsideSteering : std::uint8_t {
    rss_src, // RSS on the source address only: one subscriber's packets all reach one queue
    handoff, // default RSS (or none); packets on a non-owner queue are handed off
};
std::string_view steering_name(OutsideSteering mode);
std::string_view steering_name(InsideSteering mode);

// An aligned CIDR block of pool addresses: base/prefix_len, every address of it in the pool.
struct AddressBlock {
    Ipv4Addr base;
    std::uint8_t prefix_len = 32;
    [[nodiscard]] constexpr std::uint32_t mask() const {
        return prefix_len == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_len);
    }
    [[nodiscard]] constexpr std::uint64_t size() const {
        return std::uint64_t{1} << (32 - prefix_len);
    }
    [[nodiscard]] constexpr bool contains(Ipv4Addr a) const {
        return (a.value() & mask()) == base.value();
    }
    constexpr bool operator==(const AddressBlock&) const = default;
};

// The fewest aligned blocks that cover exactly the given addresses (duplicates ignored), in
// ascending order: 198.18.0.0-198.18.0.3 and 198.18.0.9 give 198.18.0.0/30 and 198.18.0.9/32.
std::vector<AddressBlock> address_blocks(std::span<const Ipv4Addr> addresses);

// One hardware rule: IPv4 dst under dst_mask, protocol, L4 dst port under port_mask -> queue.
// Queue w is worker w's RX queue (each worker owns queue w of both ports).
struct SteeringRule {
    Protocol proto = Protocol::udp;
    Ipv4Addr dst;
    std::uint32_t dst_mask = 0xffffffff;
    std::uint16_t port_spec = 0;
    std::uint16_t port_mask = 0;
    std::uint16_t queue = 0;

    [[nodiscard]] constexpr bool matches(Ipv4Addr a, Protocol p, std::uint16_t port) const {
        return p == proto && (a.value() & dst_mask) == dst.value() &&
               (port & port_mask) == port_spec;
    }
    // Pool addresses this rule covers.
    [[nodiscard]] constexpr std::uint64_t address_count() const {
        return std::uint64_t{~dst_mask} + 1;
    }
    constexpr bool operator==(const SteeringRule&) const = default;
};

struct RuleOptions {
    // One rule per CIDR block of the pool (address_blocks) instead of one per address.
    bool aggregate_addresses = true;
    // With a power-of-two worker count, one rule per worker (mask (workers - 1) << 1) instead
    // of one per bucket (mask 0x007e).
    bool per_worker = true;
};

// The rules that send every (pool address, UDP|TCP, port) to port_owner's queue. Rules are
// disjoint, so the order does not matter; they are listed by block, protocol, then port spec.
// Count: blocks x 2 protocols x (workers when per_worker applies, else 64 buckets), less the
// buckets (or workers) that own no port of `range` (only ranges shorter than 128 ports miss
// any). A port outside `range` on a pool address still matches the rule of its bucket and
// reaches its owner, as in software; an address outside the pool, and ICMP, match none.
std::vector<SteeringRule> build_port_rules(const Ownership& ownership,
                                           std::span<const Ipv4Addr> pool, PortRange range,
                                           RuleOptions options = {});

// The queue the first matching rule names (what a NIC does), or nullopt: no rule matches and
// the packet goes wherever RSS puts it.
std::optional<std::uint16_t> steer(std::span<const SteeringRule> rules, Ipv4Addr dst,
                                   Protocol proto, std::uint16_t port);
std::size_t count_matches(std::span<const SteeringRule> rules, Ipv4Addr dst, Protocol proto,
                          std::uint16_t port);

// The NIC as plan_outside_steering() sees it: validate a rule (rte_flow_validate), create it
// (rte_flow_create). Each returns nullopt on success, else the driver's reason.
struct FlowNic {
    std::function<std::optional<std::string>(const SteeringRule&)> validate;
    std::function<std::optional<std::string>(const SteeringRule&)> create;
};

// The NIC's RSS as plan_outside_steering() sees it. The port was configured (before start)
// with `key` for IPv4 UDP and TCP when it offered that; `program` sets the RETA and reads the
// key and RETA back, returning nullopt when the NIC holds exactly what was asked, else why not.
struct RssNic {
    std::string unavailable; // why the port cannot take our key and RETA; empty: it can
    std::vector<std::uint8_t> key;
    std::size_t reta_size = 0;
    std::function<std::optional<std::string>(std::span<const std::uint16_t> reta)> program;
};

struct OutsideSteeringPlan {
    OutsideSteering mode = OutsideSteering::handoff;
    std::vector<SteeringRule> rules; // the chosen rule set
    std::vector<bool> installed;     // per rule: created on the NIC
    std::size_t installed_count = 0;
    std::string reason;              // why rules were refused (first refusal), or why none tried
    std::string rss_reason;          // why RSS on port buckets was not used (empty when it was)
    std::vector<std::uint16_t> reta; // rss_buckets: the RETA programmed

    // "rte_flow (N rules)" |
    // "rss-buckets (RSS key and RETA of N entries on port bits 1..6[, and N rules])" |
    // "partial (N of M rules[; RSS: reason])" | "handoff (reason[; RSS: reason])"
    [[nodiscard]] std::string describe() const;
};

// At most this many rules are offered to a NIC; beyond it the rest is left to handoff (a pool
// of many scattered addresses with 64 buckets would otherwise ask for 128 rules per address).
inline constexpr std::size_t kMaxFlowRules = 8192;

// Builds the rules (aggregated blocks first; when the NIC refuses some and the pool has
// multi-address blocks, also one rule per address, keeping whichever set covers more ports),
// validates each and creates the valid ones. A rule that validates but fails to create counts
// as refused (net_tap validates port masks that its create then refuses). With one worker
// nothing needs steering and nothing is asked.
//
// When not every rule is installed and `rss` is given, RSS on port buckets is tried next: the
// RETA from bucket_reta() is programmed and, if the NIC holds it and the key, the mode is
// rss_buckets (rules that were installed stay: they agree with it). Else partial or handoff.
OutsideSteeringPlan plan_outside_steering(const Ownership& ownership,
                                          std::span<const Ipv4Addr> pool, PortRange range,
                                          const FlowNic& nic, const RssNic* rss = nullptr);

// --- The Toeplitz model of RSS -------------------------------------------------------------------

// The Toeplitz hash NICs use for RSS (Microsoft's RSS definition): for every set bit i of the
// input, bit 0 being the most significant bit of input[0], XOR in the 32 key bits that start at
// key bit i. The key must be at least input.size() + 4 bytes long.
std::uint32_t toeplitz_hash(std::span<const std::uint8_t> key, std::span<const std::uint8_t> input);

// A packet coming back from the outside to a translated flow, as the outside NIC hashes it:
// source = the remote endpoint, destination = (pool address, external port).
struct ReturnTuple {
    Ipv4Addr remote;
    std::uint16_t remote_port = 0;
    Ipv4Addr pool;
    std::uint16_t external_port = 0;
};

// RSS input of an IPv4 TCP/UDP packet: source address, destination address, source port,
// destination port, each in network byte order (12 bytes).
std::array<std::uint8_t, 12> rss_input(const ReturnTuple& t);

// The NIC's queue choice for 4-tuple IPv4 TCP/UDP RSS: queue = reta[hash mod reta size].
class ToeplitzRss {
public:
    // The NIC's key (hash_key_size in rte_eth_dev_info: 40 bytes on most NICs, 52 on some; an
    // IPv4 4-tuple uses its first 16) and RETA (queue per entry). The RETA size must be a power
    // of two, as NICs index it with the hash's low bits. Throws std::invalid_argument when the
    // key is shorter than 16 bytes or the RETA size is not a power of two.
    ToeplitzRss(std::span<const std::uint8_t> key, std::vector<std::uint16_t> reta);
    // The usual RETA: entry i -> queue i mod queues.
    static ToeplitzRss round_robin(std::span<const std::uint8_t> key, std::size_t reta_size,
                                   std::uint16_t queues);

    [[nodiscard]] std::uint32_t hash(const ReturnTuple& t) const;
    [[nodiscard]] std::uint16_t queue_of_hash(std::uint32_t h) const {
        return reta_[h & (reta_.size() - 1)];
    }
    [[nodiscard]] std::uint16_t queue_of(const ReturnTuple& t) const {
        return queue_of_hash(hash(t));
    }
    [[nodiscard]] bool lands_on(const ReturnTuple& t, std::uint16_t queue) const {
        return queue_of(t) == queue;
    }
    // The ports of `range` whose return tuple (remote:remote_port -> pool:port) lands on
    // `queue`, ascending. The hash is linear over XOR, so this is one full hash plus one table
    // XOR per port: hash(t with port p) = hash(t with port 0) ^ hash(zero tuple with port p).
    [[nodiscard]] std::vector<std::uint16_t> ports_landing_on(Ipv4Addr remote,
                                                              std::uint16_t remote_port,
                                                              Ipv4Addr pool, PortRange range,
                                                              std::uint16_t queue) const;

    static constexpr std::size_t kMinKeySize = 16;

private:
    std::vector<std::uint8_t> key_;
    std::vector<std::uint16_t> reta_;
    // Hash contribution of the destination port's high and low byte (linearity).
    std::array<std::array<std::uint32_t, 256>, 2> port_part_{};
};

// --- RSS on port buckets (the third mode) --------------------------------------------------------
//
// Toeplitz hash bit b (0 = least significant) is the XOR, over the set input bits i (bit 0 =
// the most significant bit of the first byte), of key bit i + 31 - b. In the 12-byte IPv4
// UDP/TCP input (rss_input) bit k of the destination port is input bit 95 - k. With key bit
// 120 set and every key bit from 26 to 126 otherwise clear, input bit i reaches hash bits 0..5
// only when i = 89 + b, that is port bit 6 - b: the hash's low six bits are the bucket bits of
// the destination port (Ownership::bucket_of) in reverse order, whatever the addresses, the
// source port and the other port bits. Queue = RETA[hash mod RETA size], so a RETA that repeats
// every 64 entries (entry i -> owner of the bucket whose bits reversed are i mod 64) sends every
// UDP/TCP packet to its destination port's owner: what the rte_flow rules do, from one key.
// Other IPv4 packets (ICMP, fragments) hash on the addresses only, to 0 in those bits: queue 0.

// The key (key_size bytes, at least ToeplitzRss::kMinKeySize; NICs report theirs as
// hash_key_size, 40 on most). Throws std::invalid_argument when shorter.
std::vector<std::uint8_t> bucket_rss_key(std::size_t key_size);

// The low six hash bits for a port under bucket_rss_key (the model's own statement of it).
constexpr unsigned bucket_hash_bits(std::uint16_t port) {
    const unsigned bucket = Ownership::bucket_of(port);
    unsigned reversed = 0;
    for (unsigned b = 0; b < 6; ++b) {
        reversed |= ((bucket >> b) & 1u) << (5 - b);
    }
    return reversed;
}

// The RETA under `key` (the key the NIC reports): entry i -> the owner of the bucket whose ports
// hash to i mod 64. Checked from the Toeplitz model, not assumed: every input bit but the
// destination port's bits 1..6 must leave the low six hash bits alone, and the 64 buckets must
// give 64 different values. Throws std::invalid_argument saying what fails (a key that is not
// ours, a RETA smaller than 64 entries or not a power of two).
std::vector<std::uint16_t> bucket_reta(const Ownership& ownership,
                                       std::span<const std::uint8_t> key, std::size_t reta_size);

} // namespace ephemera
