// Hardware steering as pure functions: the rule set built from the ownership sends every port
// of every pool address to exactly its owner's queue (checked over all 65536 ports, both
// protocols, pool and non-pool addresses, 1..64 workers), the rule counts follow their
// formulas, the choice of mode follows the NIC's answers, and the Toeplitz model of RSS agrees
// with DPDK's rte_softrss and with the published RSS verification vectors.
#include "ephemera/ownership.hpp"
#include "ephemera/steering.hpp"

#include <rte_thash.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ephemera {
namespace {

constexpr std::array<WorkerId, 7> kWorkerCounts = {1, 2, 3, 4, 5, 8, 64};
constexpr PortRange kIana{49152, 65535};
constexpr PortRange kAllUser{1024, 65535};

// Three addresses, no two adjacent: one /32 rule each.
const std::vector<Ipv4Addr> kScattered = {
    Ipv4Addr{198, 18, 0, 1},
    Ipv4Addr{198, 18, 3, 77},
    Ipv4Addr{198, 19, 200, 254},
};
// A /30, then two single addresses: three blocks, six addresses.
const std::vector<Ipv4Addr> kPrefixed = {
    Ipv4Addr{198, 18, 0, 2}, Ipv4Addr{198, 18, 0, 0}, Ipv4Addr{198, 18, 0, 3},
    Ipv4Addr{198, 18, 0, 1}, Ipv4Addr{198, 18, 0, 9}, Ipv4Addr{198, 18, 1, 200},
};

bool in_pool(std::span<const Ipv4Addr> pool, Ipv4Addr a) {
    return std::find(pool.begin(), pool.end(), a) != pool.end();
}

// Addresses just outside the pool (each pool address +-1 when not itself in the pool), and the
// ends of the address space.
std::vector<Ipv4Addr> non_pool_probes(std::span<const Ipv4Addr> pool) {
    std::set<std::uint32_t> probes = {0u, 0xffffffffu};
    for (Ipv4Addr a : pool) {
        for (std::uint32_t v : {a.value() - 1, a.value() + 1}) {
            if (!in_pool(pool, Ipv4Addr{v})) {
                probes.insert(v);
            }
        }
    }
    std::vector<Ipv4Addr> out;
    for (std::uint32_t v : probes) {
        out.emplace_back(v);
    }
    return out;
}

// Matching rules and the first one's queue, in one pass over the rules.
struct Matches {
    std::size_t count = 0;
    std::optional<std::uint16_t> first;
};
Matches matches_of(std::span<const SteeringRule> rules, Ipv4Addr a, Protocol proto,
                   std::uint16_t port) {
    Matches m;
    for (const SteeringRule& r : rules) {
        if (r.matches(a, proto, port)) {
            if (m.count++ == 0) {
                m.first = r.queue;
            }
        }
    }
    return m;
}

// Every port of every pool address and protocol reaches exactly one rule, naming port_owner's
// queue (in the range: must; outside it: a match must still be the owner); non-pool addresses
// and ICMP match nothing. steer() and count_matches() are checked against the one-pass count on
// every 61st port.
void expect_exact_steering(std::span<const SteeringRule> rules, const Ownership& own,
                           std::span<const Ipv4Addr> pool, PortRange range) {
    for (Ipv4Addr a : pool) {
        for (Protocol proto : {Protocol::udp, Protocol::tcp}) {
            for (std::uint32_t port = 0; port <= 0xffff; ++port) {
                const auto p = static_cast<std::uint16_t>(port);
                const Matches m = matches_of(rules, a, proto, p);
                if (range.contains(p)) {
                    ASSERT_EQ(m.count, 1u)
                        << a.to_string() << " " << protocol_name(proto) << " " << p;
                } else {
                    ASSERT_LE(m.count, 1u)
                        << a.to_string() << " " << protocol_name(proto) << " " << p;
                }
                if (m.count == 1) {
                    ASSERT_EQ(*m.first, own.port_owner(a, p))
                        << a.to_string() << " " << protocol_name(proto) << " " << p << ", "
                        << own.workers() << " workers";
                }
                if (port % 61 == 0) {
                    ASSERT_EQ(steer(rules, a, proto, p), m.first);
                    ASSERT_EQ(count_matches(rules, a, proto, p), m.count);
                }
            }
        }
        for (std::uint32_t port = 0; port <= 0xffff; ++port) {
            ASSERT_EQ(matches_of(rules, a, Protocol::icmp, static_cast<std::uint16_t>(port)).count,
                      0u)
                << "ICMP identifiers are never matched in hardware";
        }
    }
    for (Ipv4Addr a : non_pool_probes(pool)) {
        for (Protocol proto : {Protocol::udp, Protocol::tcp}) {
            for (std::uint32_t port = 0; port <= 0xffff; ++port) {
                ASSERT_EQ(matches_of(rules, a, proto, static_cast<std::uint16_t>(port)).count, 0u)
                    << a.to_string() << " is not a pool address";
            }
        }
    }
}

TEST(Steering, AddressBlocksCoverExactlyThePool) {
    const auto blocks = address_blocks(kPrefixed);
    ASSERT_EQ(blocks.size(), 3u);
    EXPECT_EQ(blocks[0], (AddressBlock{Ipv4Addr{198, 18, 0, 0}, 30}));
    EXPECT_EQ(blocks[1], (AddressBlock{Ipv4Addr{198, 18, 0, 9}, 32}));
    EXPECT_EQ(blocks[2], (AddressBlock{Ipv4Addr{198, 18, 1, 200}, 32}));

    EXPECT_EQ(address_blocks(kScattered).size(), 3u);

    // An unaligned run: .1, .2-.3, .4-.5, .6.
    const std::vector<Ipv4Addr> run = {
        Ipv4Addr{10, 0, 0, 1}, Ipv4Addr{10, 0, 0, 2}, Ipv4Addr{10, 0, 0, 3}, Ipv4Addr{10, 0, 0, 4},
        Ipv4Addr{10, 0, 0, 5}, Ipv4Addr{10, 0, 0, 6}, Ipv4Addr{10, 0, 0, 6}};
    const std::vector<AddressBlock> expected = {
        {Ipv4Addr{10, 0, 0, 1}, 32},
        {Ipv4Addr{10, 0, 0, 2}, 31},
        {Ipv4Addr{10, 0, 0, 4}, 31},
        {Ipv4Addr{10, 0, 0, 6}, 32},
    };
    EXPECT_EQ(address_blocks(run), expected);

    // The top of the address space does not overflow.
    const std::vector<Ipv4Addr> top = {Ipv4Addr{0xfffffffe}, Ipv4Addr{0xffffffff}};
    EXPECT_EQ(address_blocks(top), (std::vector<AddressBlock>{{Ipv4Addr{0xfffffffe}, 31}}));
}

TEST(Steering, AddressBlocksAreExactDisjointAndMinimal) {
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        std::set<std::uint32_t> set;
        const std::uint32_t base = 0xc6120000u; // 198.18.0.0
        const int count = 1 + static_cast<int>(rng() % 64);
        for (int i = 0; i < count; ++i) {
            set.insert(base + rng() % 96);
        }
        std::vector<Ipv4Addr> pool;
        for (std::uint32_t v : set) {
            pool.emplace_back(v);
        }
        const auto blocks = address_blocks(pool);
        std::set<std::uint32_t> covered;
        for (const AddressBlock& b : blocks) {
            ASSERT_EQ(b.base.value() & ~b.mask(), 0u) << "block not aligned";
            for (std::uint64_t k = 0; k < b.size(); ++k) {
                ASSERT_TRUE(covered.insert(b.base.value() + static_cast<std::uint32_t>(k)).second)
                    << "blocks overlap";
            }
        }
        ASSERT_EQ(covered, set);
        // Minimal: no two blocks are the two halves of one larger aligned block.
        for (std::size_t i = 0; i + 1 < blocks.size(); ++i) {
            const AddressBlock& a = blocks[i];
            const AddressBlock& b = blocks[i + 1];
            if (a.prefix_len == b.prefix_len && a.prefix_len > 0) {
                const std::uint32_t parent_mask =
                    AddressBlock{a.base, static_cast<std::uint8_t>(a.prefix_len - 1)}.mask();
                ASSERT_NE(a.base.value() & parent_mask, b.base.value() & parent_mask)
                    << "two blocks could have been one";
            }
        }
    }
}

TEST(Steering, EveryPortReachesExactlyItsOwnerScatteredPool) {
    for (WorkerId workers : kWorkerCounts) {
        const Ownership own(workers);
        for (bool per_worker : {true, false}) {
            const auto rules =
                build_port_rules(own, kScattered, kIana, RuleOptions{.per_worker = per_worker});
            SCOPED_TRACE(testing::Message() << workers << " workers, per_worker " << per_worker);
            expect_exact_steering(rules, own, kScattered, kIana);
        }
    }
}

TEST(Steering, EveryPortReachesExactlyItsOwnerPrefixedPool) {
    for (WorkerId workers : kWorkerCounts) {
        const Ownership own(workers);
        for (bool aggregate : {true, false}) {
            const auto rules = build_port_rules(own, kPrefixed, kAllUser,
                                                RuleOptions{.aggregate_addresses = aggregate});
            SCOPED_TRACE(testing::Message() << workers << " workers, aggregate " << aggregate);
            expect_exact_steering(rules, own, kPrefixed, kAllUser);
        }
    }
}

// A range shorter than 128 ports leaves some buckets without a port: their rules are dropped,
// and the range's ports still all reach their owners.
TEST(Steering, ShortRangeDropsRulesOfBucketsWithoutPorts) {
    const PortRange tiny{1000, 1009}; // buckets 52..56
    for (WorkerId workers : kWorkerCounts) {
        const Ownership own(workers);
        const auto rules = build_port_rules(own, kScattered, tiny);
        SCOPED_TRACE(testing::Message() << workers << " workers");
        std::set<WorkerId> owners;
        for (unsigned b = 52; b <= 56; ++b) {
            owners.insert(own.bucket_owner(b));
        }
        const std::size_t per_block =
            std::has_single_bit(static_cast<unsigned>(workers)) ? owners.size() : 5;
        EXPECT_EQ(rules.size(), kScattered.size() * 2 * per_block);
        for (Ipv4Addr a : kScattered) {
            for (Protocol proto : {Protocol::udp, Protocol::tcp}) {
                for (std::uint32_t p = tiny.lo; p <= tiny.hi; ++p) {
                    const auto port = static_cast<std::uint16_t>(p);
                    ASSERT_EQ(count_matches(rules, a, proto, port), 1u);
                    ASSERT_EQ(steer(rules, a, proto, port), own.port_owner(a, port));
                }
            }
        }
    }
}

// blocks x 2 protocols x (workers if a power of two, else 64 buckets); per bucket always 64.
TEST(Steering, RuleCountsFollowTheFormula) {
    for (WorkerId workers = 1; workers <= Ownership::kMaxWorkers; ++workers) {
        const Ownership own(workers);
        const bool pow2 = std::has_single_bit(static_cast<unsigned>(workers));
        const std::size_t per_block = pow2 ? workers : Ownership::kBuckets;
        EXPECT_EQ(build_port_rules(own, kScattered, kIana).size(), 3 * 2 * per_block) << workers;
        EXPECT_EQ(build_port_rules(own, kPrefixed, kIana).size(), 3 * 2 * per_block) << workers;
        EXPECT_EQ(build_port_rules(own, kPrefixed, kIana, RuleOptions{.aggregate_addresses = false})
                      .size(),
                  6 * 2 * per_block)
            << workers;
        EXPECT_EQ(build_port_rules(own, kScattered, kIana, RuleOptions{.per_worker = false}).size(),
                  3 * 2 * Ownership::kBuckets)
            << workers;
    }
}

TEST(Steering, RuleShapes) {
    // Power of two: one rule per worker, mask (workers - 1) << 1, spec w << 1.
    {
        const Ownership own(8);
        const auto rules = build_port_rules(own, kScattered, kIana);
        for (const SteeringRule& r : rules) {
            EXPECT_EQ(r.port_mask, 0x000e);
            EXPECT_EQ(r.port_spec, r.queue << 1);
            EXPECT_EQ(r.dst_mask, 0xffffffffu);
            EXPECT_TRUE(r.proto == Protocol::udp || r.proto == Protocol::tcp);
        }
    }
    // Otherwise one rule per bucket, mask 0x007e, spec b << 1, queue = owner of b.
    {
        const Ownership own(3);
        const auto rules = build_port_rules(own, kScattered, kIana);
        for (const SteeringRule& r : rules) {
            EXPECT_EQ(r.port_mask, Ownership::kPortMask);
            EXPECT_EQ(r.queue, own.bucket_owner(r.port_spec >> 1));
        }
    }
    // A /30 block is one rule with a /30 address mask.
    {
        const Ownership own(2);
        const auto rules = build_port_rules(own, kPrefixed, kIana);
        EXPECT_EQ(rules.front().dst, (Ipv4Addr{198, 18, 0, 0}));
        EXPECT_EQ(rules.front().dst_mask, 0xfffffffcu);
    }
}

// --- choosing the mode from the NIC's answers ----------------------------------------------

struct FakeNic {
    std::function<bool(const SteeringRule&)> validates = [](const SteeringRule&) { return true; };
    std::function<bool(const SteeringRule&)> creates = [](const SteeringRule&) { return true; };
    std::size_t validate_calls = 0;
    std::size_t create_calls = 0;
    std::vector<SteeringRule> created;

    FlowNic nic() {
        FlowNic n;
        n.validate = [this](const SteeringRule& r) -> std::optional<std::string> {
            ++validate_calls;
            return validates(r) ? std::nullopt : std::optional<std::string>("fake: refused");
        };
        n.create = [this](const SteeringRule& r) -> std::optional<std::string> {
            ++create_calls;
            if (!creates(r)) {
                return "fake: create failed";
            }
            created.push_back(r);
            return std::nullopt;
        };
        return n;
    }
};

TEST(SteeringPlan, NoFlowSupportMeansHandoff) {
    FakeNic fake;
    fake.validates = [](const SteeringRule&) { return false; };
    const auto plan = plan_outside_steering(Ownership(2), kScattered, kIana, fake.nic());
    EXPECT_EQ(plan.mode, OutsideSteering::handoff);
    EXPECT_EQ(plan.installed_count, 0u);
    EXPECT_EQ(fake.create_calls, 0u);
    EXPECT_EQ(plan.describe(), "handoff (no rule accepted: fake: refused)");
    EXPECT_EQ(steering_name(plan.mode), "handoff");
}

TEST(SteeringPlan, AllAcceptedMeansRteFlow) {
    FakeNic fake;
    const auto plan = plan_outside_steering(Ownership(4), kScattered, kIana, fake.nic());
    EXPECT_EQ(plan.mode, OutsideSteering::rte_flow);
    EXPECT_EQ(plan.installed_count, 3u * 2 * 4);
    EXPECT_EQ(fake.created.size(), plan.installed_count);
    EXPECT_EQ(plan.describe(), "rte_flow (24 rules)");
    expect_exact_steering(fake.created, Ownership(4), kScattered, kIana);
}

// net_tap validates rules that its kernel side then refuses: a failed create is a refusal.
TEST(SteeringPlan, ValidThenRefusedAtCreateMeansHandoff) {
    FakeNic fake;
    fake.creates = [](const SteeringRule&) { return false; };
    const auto plan = plan_outside_steering(Ownership(2), kScattered, kIana, fake.nic());
    EXPECT_EQ(plan.mode, OutsideSteering::handoff);
    EXPECT_EQ(plan.describe(), "handoff (no rule accepted: fake: create failed)");
}

TEST(SteeringPlan, SomeAcceptedMeansPartial) {
    FakeNic fake;
    fake.validates = [](const SteeringRule& r) { return r.proto == Protocol::udp; };
    const auto plan = plan_outside_steering(Ownership(3), kScattered, kIana, fake.nic());
    EXPECT_EQ(plan.mode, OutsideSteering::partial);
    EXPECT_EQ(plan.installed_count, 3u * 64);
    EXPECT_EQ(plan.describe(), "partial (192 of 384 rules)");
    EXPECT_EQ(plan.reason, "fake: refused");
    // The installed half steers UDP exactly; TCP is left to RSS and handoff.
    for (Ipv4Addr a : kScattered) {
        for (std::uint32_t p = kIana.lo; p <= kIana.hi; ++p) {
            const auto port = static_cast<std::uint16_t>(p);
            ASSERT_EQ(steer(fake.created, a, Protocol::udp, port),
                      Ownership(3).port_owner(a, port));
            ASSERT_FALSE(steer(fake.created, a, Protocol::tcp, port));
        }
    }
}

// A NIC that wants full address masks gets one rule per address instead of per block.
TEST(SteeringPlan, FullAddressMasksOnlyFallsBackToOneRulePerAddress) {
    FakeNic fake;
    fake.validates = [](const SteeringRule& r) { return r.dst_mask == 0xffffffffu; };
    const Ownership own(2);
    const auto plan = plan_outside_steering(own, kPrefixed, kIana, fake.nic());
    EXPECT_EQ(plan.mode, OutsideSteering::rte_flow);
    EXPECT_EQ(plan.installed_count, 6u * 2 * 2);
    expect_exact_steering(fake.created, own, kPrefixed, kIana);
}

TEST(SteeringPlan, OneWorkerAsksNothing) {
    FakeNic fake;
    const auto plan = plan_outside_steering(Ownership(1), kScattered, kIana, fake.nic());
    EXPECT_EQ(plan.mode, OutsideSteering::handoff);
    EXPECT_EQ(fake.validate_calls, 0u);
    EXPECT_NE(plan.describe().find("one worker"), std::string::npos);
}

TEST(SteeringPlan, AtMostMaxFlowRulesAreOffered) {
    // 65 scattered addresses x 2 protocols x 64 buckets = 8320 rules at 3 workers.
    std::vector<Ipv4Addr> pool;
    for (std::uint32_t i = 0; i < 65; ++i) {
        pool.emplace_back(0xc6120000u + 2 * i);
    }
    FakeNic fake;
    const auto plan = plan_outside_steering(Ownership(3), pool, kIana, fake.nic());
    EXPECT_EQ(plan.rules.size(), 8320u);
    EXPECT_EQ(fake.validate_calls, kMaxFlowRules);
    EXPECT_EQ(plan.installed_count, kMaxFlowRules);
    EXPECT_EQ(plan.mode, OutsideSteering::partial);
}

TEST(SteeringPlan, ModeNames) {
    EXPECT_EQ(steering_name(OutsideSteering::rte_flow), "rte_flow");
    EXPECT_EQ(steering_name(OutsideSteering::partial), "partial");
    EXPECT_EQ(steering_name(OutsideSteering::handoff), "handoff");
    EXPECT_EQ(steering_name(InsideSteering::rss_src), "rss-src");
    EXPECT_EQ(steering_name(InsideSteering::handoff), "handoff");
}

// --- Toeplitz / predictable RSS -----------------------------------------------------------

// The key of Microsoft's RSS verification suite, used by DPDK's app/test/test_thash.c.
constexpr std::array<std::uint8_t, 40> kMsKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

std::uint32_t softrss(const ReturnTuple& t, std::span<const std::uint8_t> key, bool l4) {
    rte_thash_tuple tuple{};
    tuple.v4.src_addr = t.remote.value();
    tuple.v4.dst_addr = t.pool.value();
    tuple.v4.sport = t.remote_port;
    tuple.v4.dport = t.external_port;
    return rte_softrss(reinterpret_cast<std::uint32_t*>(&tuple),
                       l4 ? RTE_THASH_V4_L4_LEN : RTE_THASH_V4_L3_LEN, key.data());
}

// The IPv4 table of DPDK's app/test/test_thash.c (from the 82599 datasheet's RSS verification
// suite): source, destination, source port, destination port, L3 hash, L3+L4 hash.
TEST(Toeplitz, VerificationSuiteVectors) {
    struct Vector {
        Ipv4Addr src, dst;
        std::uint16_t sport, dport;
        std::uint32_t l3, l3l4;
    };
    const Vector vectors[] = {
        {{66, 9, 149, 187}, {161, 142, 100, 80}, 2794, 1766, 0x323e8fc2, 0x51ccc178},
        {{199, 92, 111, 2}, {65, 69, 140, 83}, 14230, 4739, 0xd718262a, 0xc626b0ea},
        {{24, 19, 198, 95}, {12, 22, 207, 184}, 12898, 38024, 0xd2d0a5de, 0x5c2b394a},
        {{38, 27, 205, 30}, {209, 142, 163, 6}, 48228, 2217, 0x82989176, 0xafc7327f},
        {{153, 39, 163, 191}, {202, 188, 127, 2}, 44251, 1303, 0x5d1809c5, 0x10e828a2},
    };
    const auto rss = ToeplitzRss::round_robin(kMsKey, 128, 4);
    for (const Vector& v : vectors) {
        const ReturnTuple t{v.src, v.sport, v.dst, v.dport};
        const auto in = rss_input(t);
        EXPECT_EQ(toeplitz_hash(kMsKey, std::span(in).first(8)), v.l3) << v.src.to_string();
        EXPECT_EQ(rss.hash(t), v.l3l4) << v.src.to_string();
        EXPECT_EQ(softrss(t, kMsKey, false), v.l3);
        EXPECT_EQ(softrss(t, kMsKey, true), v.l3l4);
    }
}

TEST(Toeplitz, AgreesWithRteSoftrss) {
    std::mt19937 rng(20240607);
    for (int round = 0; round < 200; ++round) {
        std::array<std::uint8_t, 40> key{};
        for (auto& b : key) {
            b = static_cast<std::uint8_t>(rng());
        }
        const auto rss = ToeplitzRss::round_robin(key, 512, 7);
        for (int i = 0; i < 100; ++i) {
            const ReturnTuple t{
                Ipv4Addr{static_cast<std::uint32_t>(rng())}, static_cast<std::uint16_t>(rng()),
                Ipv4Addr{static_cast<std::uint32_t>(rng())}, static_cast<std::uint16_t>(rng())};
            const std::uint32_t expected = softrss(t, key, true);
            ASSERT_EQ(rss.hash(t), expected);
            ASSERT_EQ(rss.queue_of(t), (expected & 511) % 7);
            ASSERT_TRUE(rss.lands_on(t, static_cast<std::uint16_t>((expected & 511) % 7)));
            const auto in = rss_input(t);
            ASSERT_EQ(toeplitz_hash(key, std::span(in).first(8)), softrss(t, key, false));
        }
    }
}

// ports_landing_on (one hash plus a table XOR per port) equals hashing every port, and the
// queues partition the range.
TEST(Toeplitz, PortsLandingOnMatchesFullHashes) {
    const Ipv4Addr remote{203, 0, 113, 7};
    const Ipv4Addr pool{198, 18, 0, 1};
    for (std::uint16_t queues : {2, 3, 4}) {
        const auto rss = ToeplitzRss::round_robin(kMsKey, 128, queues);
        std::size_t total = 0;
        for (std::uint16_t q = 0; q < queues; ++q) {
            const auto ports = rss.ports_landing_on(remote, 443, pool, kAllUser, q);
            std::size_t expected = 0;
            for (std::uint32_t p = kAllUser.lo; p <= kAllUser.hi; ++p) {
                const ReturnTuple t{remote, 443, pool, static_cast<std::uint16_t>(p)};
                if (rss.queue_of(t) == q) {
                    ASSERT_LT(expected, ports.size());
                    ASSERT_EQ(ports[expected], p);
                    ASSERT_EQ(softrss(t, kMsKey, true), rss.hash(t));
                    ++expected;
                }
            }
            EXPECT_EQ(expected, ports.size());
            EXPECT_FALSE(ports.empty()) << "queue " << q << " of " << queues;
            total += ports.size();
        }
        EXPECT_EQ(total, kAllUser.size());
    }
}

TEST(Toeplitz, RefusesShortKeysAndOddRetas) {
    const std::array<std::uint8_t, 12> short_key{};
    EXPECT_THROW(ToeplitzRss(short_key, std::vector<std::uint16_t>(128)), std::invalid_argument);
    EXPECT_THROW(ToeplitzRss(kMsKey, std::vector<std::uint16_t>(100)), std::invalid_argument);
    EXPECT_THROW(ToeplitzRss(kMsKey, std::vector<std::uint16_t>{}), std::invalid_argument);
    EXPECT_NO_THROW(ToeplitzRss(kMsKey, std::vector<std::uint16_t>(512)));
}

// --- RSS on port buckets (the third mode) ------------------------------------------------

// Every port of 0-65535, under DPDK's own Toeplitz (rte_softrss) over the full IPv4 4-tuple
// with several remote endpoints and pool addresses, lands on port_owner's queue through the
// RETA bucket_reta() builds, for NIC key sizes 40 and 52, RETA sizes 64, 128 and 512, and 2..64
// workers; and the RETA index's low six bits are the port's bucket bits, reversed.
TEST(BucketRss, EveryPortLandsOnItsOwnerUnderRteSoftrss) {
    constexpr std::array<WorkerId, 6> kWorkers = {2, 3, 4, 5, 8, 64};
    constexpr std::array<std::size_t, 3> kRetaSizes = {64, 128, 512};
    struct Endpoint {
        Ipv4Addr remote;
        std::uint16_t remote_port;
        Ipv4Addr pool;
    };
    const Endpoint endpoints[] = {
        {Ipv4Addr{0, 0, 0, 0}, 0, Ipv4Addr{0, 0, 0, 0}},
        {Ipv4Addr{255, 255, 255, 255}, 65535, Ipv4Addr{255, 255, 255, 255}},
        {Ipv4Addr{203, 0, 113, 7}, 443, Ipv4Addr{198, 18, 0, 1}},
        {Ipv4Addr{8, 8, 8, 8}, 53, Ipv4Addr{198, 19, 255, 254}},
    };
    for (const std::size_t key_size : {std::size_t{40}, std::size_t{52}}) {
        const std::vector<std::uint8_t> key = bucket_rss_key(key_size);
        ASSERT_EQ(key.size(), key_size);
        std::vector<Ownership> ownerships;
        std::vector<std::vector<std::vector<std::uint16_t>>> retas; // [workers][reta size]
        for (const WorkerId w : kWorkers) {
            ownerships.emplace_back(w);
            retas.emplace_back();
            for (const std::size_t size : kRetaSizes) {
                retas.back().push_back(bucket_reta(ownerships.back(), key, size));
                ASSERT_EQ(retas.back().back().size(), size);
            }
        }
        for (const Endpoint& e : endpoints) {
            for (std::uint32_t p = 0; p <= 0xffff; ++p) {
                const auto port = static_cast<std::uint16_t>(p);
                const ReturnTuple t{e.remote, e.remote_port, e.pool, port};
                const std::uint32_t h = softrss(t, key, true);
                ASSERT_EQ(h & 63u, bucket_hash_bits(port)) << "port " << p;
                for (std::size_t w = 0; w < kWorkers.size(); ++w) {
                    for (std::size_t r = 0; r < kRetaSizes.size(); ++r) {
                        ASSERT_EQ(retas[w][r][h & (kRetaSizes[r] - 1)],
                                  ownerships[w].port_owner(e.pool, port))
                            << "port " << p << ", " << kWorkers[w] << " workers, RETA "
                            << kRetaSizes[r] << ", key " << key_size;
                    }
                }
            }
        }
    }
}

// Each worker gets the RETA entries of exactly its buckets: the queues share the ports as
// port_owner shares them.
TEST(BucketRss, RetaGivesEachWorkerItsBuckets) {
    const auto key = bucket_rss_key(40);
    for (const WorkerId w : kWorkerCounts) {
        const Ownership ownership(w);
        const auto reta = bucket_reta(ownership, key, 128);
        std::vector<std::size_t> entries(w, 0);
        for (const std::uint16_t q : reta) {
            ASSERT_LT(q, w);
            ++entries[q];
        }
        for (WorkerId q = 0; q < w; ++q) {
            std::size_t buckets = 0;
            for (unsigned b = 0; b < Ownership::kBuckets; ++b) {
                buckets += ownership.bucket_owner(b) == q ? 1 : 0;
            }
            EXPECT_EQ(entries[q], 2 * buckets) << w << " workers, queue " << q;
        }
    }
}

TEST(BucketRss, RefusesOtherKeysAndRetaSizes) {
    const Ownership ownership(4);
    const auto key = bucket_rss_key(40);
    EXPECT_THROW(bucket_reta(ownership, key, 32), std::invalid_argument);
    EXPECT_THROW(bucket_reta(ownership, key, 96), std::invalid_argument);
    EXPECT_THROW(bucket_reta(ownership, kMsKey, 128), std::invalid_argument); // hashes addresses
    std::vector<std::uint8_t> zero(40, 0); // every port on one entry
    EXPECT_THROW(bucket_reta(ownership, zero, 128), std::invalid_argument);
    EXPECT_THROW(bucket_rss_key(12), std::invalid_argument);
}

struct FakeRss {
    std::optional<std::string> answer; // what program() returns
    std::vector<std::uint16_t> programmed;
    std::size_t calls = 0;

    RssNic nic(std::size_t reta_size = 128) {
        RssNic n;
        n.key = bucket_rss_key(40);
        n.reta_size = reta_size;
        n.program = [this](std::span<const std::uint16_t> reta) {
            ++calls;
            programmed.assign(reta.begin(), reta.end());
            return answer;
        };
        return n;
    }
};

TEST(SteeringPlan, RefusedRulesThenRssMeansRssBuckets) {
    FakeNic fake;
    fake.validates = [](const SteeringRule&) { return false; };
    FakeRss rss;
    const RssNic nic = rss.nic();
    const auto plan = plan_outside_steering(Ownership(3), kScattered, kIana, fake.nic(), &nic);
    EXPECT_EQ(plan.mode, OutsideSteering::rss_buckets);
    EXPECT_EQ(steering_name(plan.mode), "rss-buckets");
    EXPECT_EQ(rss.calls, 1u);
    EXPECT_EQ(rss.programmed, bucket_reta(Ownership(3), nic.key, 128));
    EXPECT_EQ(plan.reta, rss.programmed);
    EXPECT_EQ(plan.describe(), "rss-buckets (RSS key and RETA of 128 entries on port bits 1..6)");
}

TEST(SteeringPlan, PartialRulesThenRssKeepsTheRules) {
    FakeNic fake;
    fake.validates = [](const SteeringRule& r) { return r.proto == Protocol::udp; };
    FakeRss rss;
    const RssNic nic = rss.nic();
    const auto plan = plan_outside_steering(Ownership(4), kScattered, kIana, fake.nic(), &nic);
    EXPECT_EQ(plan.mode, OutsideSteering::rss_buckets);
    EXPECT_EQ(plan.installed_count, 12u);
    EXPECT_EQ(plan.describe(),
              "rss-buckets (RSS key and RETA of 128 entries on port bits 1..6, and 12 rules)");
}

TEST(SteeringPlan, AllRulesMeansRssIsNotAsked) {
    FakeNic fake;
    FakeRss rss;
    const RssNic nic = rss.nic();
    const auto plan = plan_outside_steering(Ownership(4), kScattered, kIana, fake.nic(), &nic);
    EXPECT_EQ(plan.mode, OutsideSteering::rte_flow);
    EXPECT_EQ(rss.calls, 0u);
}

TEST(SteeringPlan, RssRefusedOrUnavailableMeansHandoffWithBothReasons) {
    FakeNic fake;
    fake.validates = [](const SteeringRule&) { return false; };
    FakeRss rss;
    rss.answer = "fake: RETA reads back different";
    RssNic nic = rss.nic();
    auto plan = plan_outside_steering(Ownership(2), kScattered, kIana, fake.nic(), &nic);
    EXPECT_EQ(plan.mode, OutsideSteering::handoff);
    EXPECT_EQ(plan.describe(), "handoff (no rule accepted: fake: refused; RSS: fake: RETA reads "
                               "back different)");

    nic.unavailable = "fake has no RSS key";
    plan = plan_outside_steering(Ownership(2), kScattered, kIana, fake.nic(), &nic);
    EXPECT_EQ(plan.describe(),
              "handoff (no rule accepted: fake: refused; RSS: fake has no RSS key)");

    const RssNic small = rss.nic(32);
    plan = plan_outside_steering(Ownership(2), kScattered, kIana, fake.nic(), &small);
    EXPECT_EQ(plan.mode, OutsideSteering::handoff);
    EXPECT_NE(plan.rss_reason.find("RETA of 32 entries"), std::string::npos) << plan.rss_reason;
}

TEST(SteeringPlan, OneWorkerAsksNoRss) {
    FakeNic fake;
    FakeRss rss;
    const RssNic nic = rss.nic();
    const auto plan = plan_outside_steering(Ownership(1), kScattered, kIana, fake.nic(), &nic);
    EXPECT_EQ(plan.mode, OutsideSteering::handoff);
    EXPECT_EQ(rss.calls, 0u);
}

} // namespace
} // namespace ephemera
