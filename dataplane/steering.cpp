#include "ephemera/steering.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace ephemera {

namespace {

constexpr std::array<Protocol, 2> kSteeredProtocols = {Protocol::udp, Protocol::tcp};

// Buckets that own at least one port of the range. Every aligned 128-port block holds all 64
// buckets, so only a range shorter than 128 ports can miss one.
std::array<bool, Ownership::kBuckets> buckets_in_range(PortRange range) {
    std::array<bool, Ownership::kBuckets> in{};
    if (range.hi < range.lo) {
        return in;
    }
    if (range.size() >= 2 * Ownership::kBuckets) {
        in.fill(true);
        return in;
    }
    for (std::uint32_t p = range.lo; p <= range.hi; ++p) {
        in[Ownership::bucket_of(static_cast<std::uint16_t>(p))] = true;
    }
    return in;
}

// True when bucket b belongs to worker b & (workers - 1), so one masked rule per worker says
// the same as one rule per bucket.
bool owners_follow_low_bits(const Ownership& ownership) {
    const WorkerId workers = ownership.workers();
    if (!std::has_single_bit(static_cast<unsigned>(workers))) {
        return false;
    }
    for (unsigned b = 0; b < Ownership::kBuckets; ++b) {
        if (ownership.bucket_owner(b) != (b & (workers - 1u))) {
            return false;
        }
    }
    return true;
}

// Ports a rule covers, in units of (address, bucket): how much traffic it saves from handoff.
std::uint64_t coverage(const SteeringRule& rule) {
    const auto masked_bits =
        std::popcount(static_cast<unsigned>(rule.port_mask & Ownership::kPortMask));
    return rule.address_count() * (Ownership::kBuckets >> masked_bits);
}

struct ValidatedSet {
    std::vector<SteeringRule> rules;
    std::vector<bool> valid;
    std::uint64_t covered = 0;
    std::size_t valid_count = 0;
    std::string first_error;
};

ValidatedSet validate_all(std::vector<SteeringRule> rules, const FlowNic& nic) {
    ValidatedSet set;
    set.rules = std::move(rules);
    set.valid.assign(set.rules.size(), false);
    for (std::size_t i = 0; i < set.rules.size(); ++i) {
        if (i >= kMaxFlowRules) {
            if (set.first_error.empty()) {
                set.first_error = "more than " + std::to_string(kMaxFlowRules) + " rules";
            }
            break;
        }
        if (auto error = nic.validate(set.rules[i])) {
            if (set.first_error.empty()) {
                set.first_error = std::move(*error);
            }
            continue;
        }
        set.valid[i] = true;
        ++set.valid_count;
        set.covered += coverage(set.rules[i]);
    }
    return set;
}

} // namespace

std::string_view steering_name(OutsideSteering mode) {
    switch (mode) {
    case OutsideSteering::rte_flow:
        return "rte_flow";
    case OutsideSteering::rss_buckets:
        return "rss-buckets";
    case OutsideSteering::partial:
        return "partial";
    case OutsideSteering::handoff:
        break;
    }
    return "handoff";
}

std::string_view steering_name(InsideSteering mode) {
    return mode == InsideSteering::rss_src ? "rss-src" : "handoff";
}

std::vector<AddressBlock> address_blocks(std::span<const Ipv4Addr> addresses) {
    std::vector<std::uint64_t> sorted;
    sorted.reserve(addresses.size());
    for (Ipv4Addr a : addresses) {
        sorted.push_back(a.value());
    }
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

    std::vector<AddressBlock> blocks;
    std::size_t i = 0;
    while (i < sorted.size()) {
        // A run of consecutive addresses [first, last] ...
        std::size_t j = i;
        while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) {
            ++j;
        }
        // ... cut into the largest aligned blocks, lowest first.
        std::uint64_t first = sorted[i];
        const std::uint64_t last = sorted[j];
        while (first <= last) {
            std::uint64_t size = first == 0 ? (std::uint64_t{1} << 32) : (first & (~first + 1));
            while (first + size - 1 > last) {
                size >>= 1;
            }
            blocks.push_back(AddressBlock{Ipv4Addr{static_cast<std::uint32_t>(first)},
                                          static_cast<std::uint8_t>(32 - std::countr_zero(size))});
            first += size;
        }
        i = j + 1;
    }
    return blocks;
}

std::vector<SteeringRule> build_port_rules(const Ownership& ownership,
                                           std::span<const Ipv4Addr> pool, PortRange range,
                                           RuleOptions options) {
    std::vector<AddressBlock> blocks;
    if (options.aggregate_addresses) {
        blocks = address_blocks(pool);
    } else {
        for (const AddressBlock& b : address_blocks(pool)) {
            for (std::uint64_t k = 0; k < b.size(); ++k) {
                blocks.push_back(
                    AddressBlock{Ipv4Addr{static_cast<std::uint32_t>(b.base.value() + k)}, 32});
            }
        }
    }
    const auto in_range = buckets_in_range(range);
    const WorkerId workers = ownership.workers();
    const bool per_worker = options.per_worker && owners_follow_low_bits(ownership);
    const auto worker_mask = static_cast<std::uint16_t>((workers - 1u) << 1);

    std::vector<SteeringRule> rules;
    for (const AddressBlock& block : blocks) {
        for (Protocol proto : kSteeredProtocols) {
            SteeringRule rule;
            rule.proto = proto;
            rule.dst = block.base;
            rule.dst_mask = block.mask();
            if (per_worker) {
                for (WorkerId w = 0; w < workers; ++w) {
                    bool any = false;
                    for (unsigned b = w; b < Ownership::kBuckets; b += workers) {
                        any = any || in_range[b];
                    }
                    if (!any) {
                        continue;
                    }
                    rule.port_spec = static_cast<std::uint16_t>(w << 1);
                    rule.port_mask = worker_mask;
                    rule.queue = w;
                    rules.push_back(rule);
                }
            } else {
                for (unsigned b = 0; b < Ownership::kBuckets; ++b) {
                    if (!in_range[b]) {
                        continue;
                    }
                    rule.port_spec = static_cast<std::uint16_t>(b << 1);
                    rule.port_mask = Ownership::kPortMask;
                    rule.queue = ownership.bucket_owner(b);
                    rules.push_back(rule);
                }
            }
        }
    }
    return rules;
}

std::optional<std::uint16_t> steer(std::span<const SteeringRule> rules, Ipv4Addr dst,
                                   Protocol proto, std::uint16_t port) {
    for (const SteeringRule& r : rules) {
        if (r.matches(dst, proto, port)) {
            return r.queue;
        }
    }
    return std::nullopt;
}

std::size_t count_matches(std::span<const SteeringRule> rules, Ipv4Addr dst, Protocol proto,
                          std::uint16_t port) {
    return static_cast<std::size_t>(
        std::count_if(rules.begin(), rules.end(),
                      [&](const SteeringRule& r) { return r.matches(dst, proto, port); }));
}

std::string OutsideSteeringPlan::describe() const {
    const std::string rss_note = rss_reason.empty() ? "" : "; RSS: " + rss_reason;
    switch (mode) {
    case OutsideSteering::rte_flow:
        return "rte_flow (" + std::to_string(installed_count) + " rules)";
    case OutsideSteering::rss_buckets:
        return "rss-buckets (RSS key and RETA of " + std::to_string(reta.size()) +
               " entries on port bits 1..6" +
               (installed_count > 0 ? ", and " + std::to_string(installed_count) + " rules" : "") +
               ")";
    case OutsideSteering::partial:
        return "partial (" + std::to_string(installed_count) + " of " +
               std::to_string(rules.size()) + " rules" + rss_note + ")";
    case OutsideSteering::handoff:
        break;
    }
    return "handoff (" + reason + rss_note + ")";
}

OutsideSteeringPlan plan_outside_steering(const Ownership& ownership,
                                          std::span<const Ipv4Addr> pool, PortRange range,
                                          const FlowNic& nic, const RssNic* rss) {
    OutsideSteeringPlan plan;
    if (ownership.workers() == 1) {
        plan.reason = "one worker: every packet is already on its owner's queue";
        return plan;
    }
    if (ownership.by_subscriber()) {
        plan.reason = "deterministic mode: a port's owner follows the subscriber that holds it, "
                      "not the port's bits";
        return plan;
    }
    ValidatedSet chosen = validate_all(build_port_rules(ownership, pool, range), nic);
    if (chosen.valid_count < chosen.rules.size()) {
        // A NIC may refuse a partial address mask but take full ones (i40e and ice FDIR want
        // full masks): offer one rule per address too, and keep the set that covers more.
        const bool has_blocks =
            std::any_of(chosen.rules.begin(), chosen.rules.end(),
                        [](const SteeringRule& r) { return r.dst_mask != ~0u; });
        if (has_blocks) {
            ValidatedSet exact = validate_all(
                build_port_rules(ownership, pool, range, RuleOptions{.aggregate_addresses = false}),
                nic);
            if (exact.covered > chosen.covered) {
                chosen = std::move(exact);
            }
        }
    }
    plan.rules = std::move(chosen.rules);
    plan.installed.assign(plan.rules.size(), false);
    plan.reason = std::move(chosen.first_error);
    for (std::size_t i = 0; i < plan.rules.size(); ++i) {
        if (!chosen.valid[i]) {
            continue;
        }
        if (auto error = nic.create(plan.rules[i])) {
            if (plan.reason.empty()) {
                plan.reason = std::move(*error);
            }
            continue;
        }
        plan.installed[i] = true;
        ++plan.installed_count;
    }
    if (plan.installed_count == plan.rules.size() && !plan.rules.empty()) {
        plan.mode = OutsideSteering::rte_flow;
        plan.reason.clear();
        return plan;
    }
    if (rss != nullptr) {
        if (!rss->unavailable.empty()) {
            plan.rss_reason = rss->unavailable;
        } else {
            try {
                std::vector<std::uint16_t> reta = bucket_reta(ownership, rss->key, rss->reta_size);
                if (auto error = rss->program(reta)) {
                    plan.rss_reason = std::move(*error);
                } else {
                    plan.mode = OutsideSteering::rss_buckets;
                    plan.reta = std::move(reta);
                    return plan;
                }
            } catch (const std::invalid_argument& e) {
                plan.rss_reason = e.what();
            }
        }
    }
    if (plan.installed_count > 0) {
        plan.mode = OutsideSteering::partial;
    } else {
        plan.mode = OutsideSteering::handoff;
        plan.reason = plan.rules.empty() ? std::string("no rules to install")
                                         : "no rule accepted: " + plan.reason;
    }
    return plan;
}

// --- Predictable RSS --------------------------------------------------------------------------

std::uint32_t toeplitz_hash(std::span<const std::uint8_t> key,
                            std::span<const std::uint8_t> input) {
    // `window` holds key bits i .. i + 31 while input bit i is looked at.
    std::uint32_t window = std::uint32_t{key[0]} << 24 | std::uint32_t{key[1]} << 16 |
                           std::uint32_t{key[2]} << 8 | key[3];
    std::uint32_t hash = 0;
    for (std::size_t j = 0; j < input.size(); ++j) {
        const std::uint8_t next = key[j + 4];
        for (int bit = 7; bit >= 0; --bit) {
            if ((input[j] >> bit) & 1u) {
                hash ^= window;
            }
            window = window << 1 | ((next >> bit) & 1u);
        }
    }
    return hash;
}

std::array<std::uint8_t, 12> rss_input(const ReturnTuple& t) {
    const auto put32 = [](std::uint8_t* out, std::uint32_t v) {
        out[0] = static_cast<std::uint8_t>(v >> 24);
        out[1] = static_cast<std::uint8_t>(v >> 16);
        out[2] = static_cast<std::uint8_t>(v >> 8);
        out[3] = static_cast<std::uint8_t>(v);
    };
    std::array<std::uint8_t, 12> in{};
    put32(&in[0], t.remote.value());
    put32(&in[4], t.pool.value());
    in[8] = static_cast<std::uint8_t>(t.remote_port >> 8);
    in[9] = static_cast<std::uint8_t>(t.remote_port);
    in[10] = static_cast<std::uint8_t>(t.external_port >> 8);
    in[11] = static_cast<std::uint8_t>(t.external_port);
    return in;
}

ToeplitzRss::ToeplitzRss(std::span<const std::uint8_t> key, std::vector<std::uint16_t> reta)
    : key_(key.begin(), key.end()), reta_(std::move(reta)) {
    if (key_.size() < kMinKeySize) {
        throw std::invalid_argument("RSS key of " + std::to_string(key_.size()) +
                                    " bytes: an IPv4 4-tuple needs at least 16");
    }
    if (reta_.empty() || !std::has_single_bit(reta_.size())) {
        throw std::invalid_argument("RETA of " + std::to_string(reta_.size()) +
                                    " entries: must be a power of two");
    }
    for (unsigned v = 0; v < 256; ++v) {
        std::array<std::uint8_t, 12> in{};
        in[10] = static_cast<std::uint8_t>(v);
        port_part_[0][v] = toeplitz_hash(key_, in);
        in[10] = 0;
        in[11] = static_cast<std::uint8_t>(v);
        port_part_[1][v] = toeplitz_hash(key_, in);
    }
}

ToeplitzRss ToeplitzRss::round_robin(std::span<const std::uint8_t> key, std::size_t reta_size,
                                     std::uint16_t queues) {
    std::vector<std::uint16_t> reta(reta_size);
    for (std::size_t i = 0; i < reta_size; ++i) {
        reta[i] = static_cast<std::uint16_t>(i % std::max<std::uint16_t>(queues, 1));
    }
    return ToeplitzRss(key, std::move(reta));
}

std::uint32_t ToeplitzRss::hash(const ReturnTuple& t) const {
    return toeplitz_hash(key_, rss_input(t));
}

std::vector<std::uint16_t> ToeplitzRss::ports_landing_on(Ipv4Addr remote, std::uint16_t remote_port,
                                                         Ipv4Addr pool, PortRange range,
                                                         std::uint16_t queue) const {
    std::vector<std::uint16_t> ports;
    if (range.hi < range.lo) {
        return ports;
    }
    const std::uint32_t base = hash(ReturnTuple{remote, remote_port, pool, 0});
    for (std::uint32_t p = range.lo; p <= range.hi; ++p) {
        const std::uint32_t h = base ^ port_part_[0][p >> 8] ^ port_part_[1][p & 0xff];
        if (queue_of_hash(h) == queue) {
            ports.push_back(static_cast<std::uint16_t>(p));
        }
    }
    return ports;
}

// --- RSS on port buckets ----------------------------------------------------------------------

namespace {

constexpr std::size_t kBucketKeyBit = 120; // see steering.hpp: hash bit b <- port bit 6 - b
constexpr std::uint32_t kBucketHashMask = Ownership::kBuckets - 1;
constexpr std::size_t kRssInputBits = 96;
// The destination port's bits 1..6 in the RSS input (bit 0 = MSB of byte 0): 95 - 6 .. 95 - 1.
constexpr std::size_t kFirstBucketInputBit = 89;
constexpr std::size_t kLastBucketInputBit = 94;

} // namespace

std::vector<std::uint8_t> bucket_rss_key(std::size_t key_size) {
    if (key_size < ToeplitzRss::kMinKeySize) {
        throw std::invalid_argument("RSS key of " + std::to_string(key_size) +
                                    " bytes: an IPv4 4-tuple needs at least 16");
    }
    std::vector<std::uint8_t> key(key_size, 0);
    key[kBucketKeyBit / 8] = static_cast<std::uint8_t>(0x80u >> (kBucketKeyBit % 8));
    return key;
}

std::vector<std::uint16_t> bucket_reta(const Ownership& ownership,
                                       std::span<const std::uint8_t> key, std::size_t reta_size) {
    if (reta_size < Ownership::kBuckets || !std::has_single_bit(reta_size)) {
        throw std::invalid_argument("RETA of " + std::to_string(reta_size) +
                                    " entries: port buckets need a power of two of at least 64");
    }
    if (key.size() < ToeplitzRss::kMinKeySize) {
        throw std::invalid_argument("RSS key of " + std::to_string(key.size()) +
                                    " bytes: an IPv4 4-tuple needs at least 16");
    }
    // The hash is linear: the low bits depend on input bit i alone through hash(e_i).
    for (std::size_t i = 0; i < kRssInputBits; ++i) {
        if (i >= kFirstBucketInputBit && i <= kLastBucketInputBit) {
            continue;
        }
        std::array<std::uint8_t, 12> in{};
        in[i / 8] = static_cast<std::uint8_t>(0x80u >> (i % 8));
        if ((toeplitz_hash(key, in) & kBucketHashMask) != 0) {
            throw std::invalid_argument("the RSS key lets bit " + std::to_string(i) +
                                        " of the IPv4 4-tuple reach the RETA index");
        }
    }
    std::array<int, Ownership::kBuckets> owner_of_index{};
    owner_of_index.fill(-1);
    for (unsigned bucket = 0; bucket < Ownership::kBuckets; ++bucket) {
        ReturnTuple t{};
        t.external_port = static_cast<std::uint16_t>(bucket << 1);
        const std::uint32_t index = toeplitz_hash(key, rss_input(t)) & kBucketHashMask;
        if (owner_of_index[index] >= 0) {
            throw std::invalid_argument("the RSS key gives two port buckets the same RETA entry");
        }
        owner_of_index[index] = ownership.bucket_owner(bucket);
    }
    std::vector<std::uint16_t> reta(reta_size);
    for (std::size_t i = 0; i < reta_size; ++i) {
        reta[i] = static_cast<std::uint16_t>(owner_of_index[i & kBucketHashMask]);
    }
    return reta;
}

} // namespace ephemera
