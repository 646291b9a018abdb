// External ports: PortSlice (which ports of the range a worker owns, as dense slots),
// PortBitmap (free slots, found by a bounded bit scan) and PortAllocator (RFC 6056 Algorithm 4
// with port preservation, parity and class: RFC 4787 REQ-3a/REQ-4, RFC 6888 REQ-13..15).
#include "packet_builder.hpp"

#include "ephemera/config.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/port_allocator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ephemera {
namespace {

using test::Rng;
using test::uniform;

struct NamedRange {
    std::string name;
    PortRange range;
};

std::vector<NamedRange> test_ranges() {
    std::vector<NamedRange> r;
    for (const auto& preset : kPortRangePresets) {
        r.push_back({std::string(preset.name), preset.range});
    }
    r.push_back({"1025-5000", {1025, 5000}}); // starts on an odd port: pair (1024, 1025) is cut
    r.push_back({"1024-5001", {1024, 5001}}); // ends on an odd port... and one past a pair
    r.push_back({"1023-1025", {1023, 1025}}); // three ports across the class boundary
    r.push_back({"500-2000", {500, 2000}});   // both classes
    r.push_back({"64-ports", {40000, 40063}});
    r.push_back({"one-port", {40001, 40001}});
    return r;
}

// A few reserved ranges inside `range` (not overlapping), as a config could hold them.
std::vector<PortRange> reserved_in(PortRange range) {
    std::vector<PortRange> out;
    if (range.size() >= 100) {
        out.push_back({range.lo, range.lo}); // the very first port
        out.push_back(
            {static_cast<std::uint16_t>(range.lo + 10), static_cast<std::uint16_t>(range.lo + 37)});
        out.push_back({range.hi, range.hi}); // the very last port
    }
    return out;
}

bool is_reserved(std::span<const PortRange> reserved, std::uint16_t port) {
    return std::any_of(reserved.begin(), reserved.end(),
                       [port](const PortRange& r) { return r.contains(port); });
}

constexpr SipKey kSecret{0x0123456789abcdefull, 0xfedcba9876543210ull};
const Ipv4Addr kPoolAddr{198, 18, 0, 100};

PortRequest request(Ipv4Addr inside, std::uint16_t port, Protocol proto = Protocol::udp,
                    std::uint16_t pool_index = 0) {
    return PortRequest{inside, port, proto, pool_index, Ipv4Addr{kPoolAddr.value() + pool_index}};
}

// ---- PortSlice ----------------------------------------------------------------------------

// Slots number every port a worker owns, in port order, whatever the range: the range is a
// mask over them, so it can change without renumbering live mappings.
// Algorithm 4's start position is (offset + counter) mod the pairs of a class: the
// division-free remainder must equal %, for every divisor a range can give and at the ends of
// the 32-bit values.
TEST(FastModulo, EqualsTheRemainderOperator) {
    Rng rng(1624);
    std::vector<std::uint32_t> divisors = {
        1,     2,     3,     7,     255,   256,         257,         4096,       16128,
        32256, 32767, 32768, 65535, 65536, 0x7fffffffu, 0xfffffffeu, 0xffffffffu};
    for (int i = 0; i < 200; ++i) {
        divisors.push_back(uniform<std::uint32_t>(rng, 1, 40000));
    }
    for (const std::uint32_t d : divisors) {
        const FastModulo mod(d);
        for (const std::uint32_t x :
             {0u, 1u, d - 1, d, d + 1, 0x7fffffffu, 0xfffffffeu, 0xffffffffu}) {
            ASSERT_EQ(mod.of(x), x % d) << x << " mod " << d;
        }
        for (int i = 0; i < 2000; ++i) {
            const std::uint32_t x = uniform<std::uint32_t>(rng, 0, ~0u);
            ASSERT_EQ(mod.of(x), x % d) << x << " mod " << d;
        }
    }
}

TEST(PortSlice, SlotsMapToEveryOwnedPortAndBack) {
    for (WorkerId workers = 1; workers <= 4; ++workers) {
        const Ownership own(workers);
        for (WorkerId w = 0; w < workers; ++w) {
            SCOPED_TRACE("worker " + std::to_string(w) + " of " + std::to_string(workers));
            const PortSlice slice(own, w);
            ASSERT_EQ(slice.slot_count() % 2, 0u);
            std::optional<std::uint16_t> previous;
            for (std::uint32_t s = 0; s < slice.slot_count(); ++s) {
                const std::uint16_t port = slice.port_of(s);
                ASSERT_EQ(port & 1u, s & 1u) << "a slot's low bit is its port's parity";
                ASSERT_EQ(own.port_owner(kPoolAddr, port), w) << port;
                if (previous) {
                    ASSERT_GT(port, *previous) << "slots are in port order";
                }
                previous = port;
                ASSERT_EQ(slice.slot_of(port), s) << port;
            }
            std::uint32_t owned = 0;
            for (std::uint32_t p = 0; p <= 0xffff; ++p) {
                const auto port = static_cast<std::uint16_t>(p);
                const auto slot = slice.slot_of(port);
                ASSERT_EQ(slot.has_value(), own.port_owner(kPoolAddr, port) == w) << port;
                owned += slot.has_value() ? 1 : 0;
            }
            ASSERT_EQ(slice.slot_count(), owned);
        }
    }
}

TEST(PortSlice, LowerBoundIsTheFirstSlotAtOrAbovePort) {
    for (const auto& [name, range] : test_ranges()) {
        for (WorkerId workers : {1, 3}) {
            const Ownership own(workers);
            const PortSlice slice(own, workers - 1);
            SCOPED_TRACE(name + ", " + std::to_string(workers) + " workers");
            std::uint32_t expected = 0; // advances as the port grows: a linear merge
            for (std::uint32_t p = 0; p <= 0xffff; ++p) {
                while (expected < slice.slot_count() && slice.port_of(expected) < p) {
                    ++expected;
                }
                ASSERT_EQ(slice.lower_bound(static_cast<std::uint16_t>(p)), expected) << p;
            }
        }
    }
}

// The workers' usable ports partition the range minus the reserved ports.
TEST(PortSlice, WorkersPartitionTheRangeMinusReserved) {
    for (const auto& [name, range] : test_ranges()) {
        const auto reserved = reserved_in(range);
        std::uint32_t reserved_count = 0;
        for (const auto& r : reserved) {
            reserved_count += r.size();
        }
        for (WorkerId workers = 1; workers <= 4; ++workers) {
            SCOPED_TRACE(name + ", " + std::to_string(workers) + " workers");
            const Ownership own(workers);
            std::vector<PortAllocator> allocators;
            std::uint32_t usable = 0;
            for (WorkerId w = 0; w < workers; ++w) {
                allocators.emplace_back(own, w, range, reserved, 1, kSecret);
                usable += allocators.back().usable_ports();
                EXPECT_EQ(allocators.back().free_ports(0, Protocol::udp),
                          allocators.back().usable_ports());
            }
            EXPECT_EQ(usable, range.size() - reserved_count);
            for (std::uint32_t p = 0; p <= 0xffff; ++p) {
                const auto port = static_cast<std::uint16_t>(p);
                unsigned free_somewhere = 0;
                for (const auto& a : allocators) {
                    free_somewhere += a.is_free(0, Protocol::udp, port) ? 1 : 0;
                }
                const bool expect = range.contains(port) && !is_reserved(reserved, port);
                ASSERT_EQ(free_somewhere, expect ? 1u : 0u) << "port " << port;
            }
        }
    }
}

// ---- PortBitmap ---------------------------------------------------------------------------

// What find_free must return, by brute force.
std::optional<std::uint32_t> reference_find(const std::vector<bool>& free, std::uint32_t start,
                                            unsigned parity, std::uint32_t lo, std::uint32_t hi) {
    for (std::uint32_t k = 0; k <= hi - lo; ++k) {
        const std::uint32_t s = lo + (start - lo + k) % (hi - lo + 1);
        if ((s & 1u) == parity && free[s]) {
            return s;
        }
    }
    return std::nullopt;
}

TEST(PortBitmap, StartsAllFree) {
    for (std::uint32_t n : {1u, 63u, 64u, 65u, 4096u, 4097u}) {
        const PortBitmap b(n);
        EXPECT_EQ(b.free_count(), n);
        for (std::uint32_t s = 0; s < n; ++s) {
            ASSERT_TRUE(b.is_free(s));
        }
    }
}

TEST(PortBitmap, TakeAndReleaseAreIdempotent) {
    PortBitmap b(100);
    b.take(5);
    b.take(5);
    EXPECT_FALSE(b.is_free(5));
    EXPECT_EQ(b.free_count(), 99u);
    b.release(5);
    b.release(5);
    EXPECT_TRUE(b.is_free(5));
    EXPECT_EQ(b.free_count(), 100u);
}

TEST(PortBitmap, FindFreeWrapsToLo) {
    PortBitmap b(200);
    for (std::uint32_t s = 0; s < 200; ++s) {
        if (s != 10 && s != 11) {
            b.take(s);
        }
    }
    EXPECT_EQ(b.find_free(150, 0, 0, 199), 10u);
    EXPECT_EQ(b.find_free(150, 1, 0, 199), 11u);
    EXPECT_EQ(b.find_free(11, 0, 0, 199), 10u); // start just past the only candidate
    EXPECT_EQ(b.find_free(10, 0, 0, 199), 10u); // start on it
    EXPECT_EQ(b.find_free(150, 0, 12, 199), std::nullopt) << "10 lies below lo";
    EXPECT_EQ(b.find_free(5, 0, 0, 9), std::nullopt) << "10 lies above hi";
}

TEST(PortBitmap, SingleSlotInterval) {
    PortBitmap b(130);
    EXPECT_EQ(b.find_free(77, 1, 77, 77), 77u);
    EXPECT_EQ(b.find_free(77, 0, 77, 77), std::nullopt) << "77 is odd";
    EXPECT_EQ(b.find_free(64, 0, 64, 64), 64u);
    EXPECT_EQ(b.find_free(129, 1, 129, 129), 129u) << "the last slot";
    b.take(77);
    EXPECT_EQ(b.find_free(77, 1, 77, 77), std::nullopt);

    PortBitmap one(1);
    EXPECT_EQ(one.find_free(0, 0, 0, 0), 0u);
    EXPECT_EQ(one.find_free(0, 1, 0, 0), std::nullopt);
    one.take(0);
    EXPECT_EQ(one.find_free(0, 0, 0, 0), std::nullopt);
    EXPECT_EQ(one.free_count(), 0u);
}

TEST(PortBitmap, ParityWithNoCandidates) {
    for (std::uint32_t n : {2u, 64u, 200u, 64u * 64u * 3u + 10u}) {
        PortBitmap b(n);
        for (std::uint32_t s = 0; s < n; s += 2) {
            b.take(s);
        }
        SCOPED_TRACE(n);
        EXPECT_EQ(b.find_free(0, 0, 0, n - 1), std::nullopt);
        EXPECT_EQ(b.find_free(n / 2, 0, 0, n - 1), std::nullopt);
        EXPECT_EQ(b.find_free(n - 1, 1, 0, n - 1), n - 1);
        EXPECT_EQ(b.find_free(0, 1, 0, n - 1), 1u);
        EXPECT_EQ(b.free_count(), n / 2);
    }
}

TEST(PortBitmap, FindFreeMatchesBruteForce) {
    Rng rng(6056);
    const std::uint32_t sizes[] = {1,   2,    3,    63,   64,          65,   127,  128,
                                   129, 1000, 4096, 4097, 64 * 64 + 5, 8195, 16384};
    const double densities[] = {0.0, 0.001, 0.02, 0.5, 0.98, 1.0};
    for (std::uint32_t n : sizes) {
        for (double density : densities) {
            PortBitmap b(n);
            std::vector<bool> free(n, true);
            std::bernoulli_distribution keep(density);
            for (std::uint32_t s = 0; s < n; ++s) {
                if (!keep(rng)) {
                    b.take(s);
                    free[s] = false;
                }
            }
            ASSERT_EQ(b.free_count(),
                      static_cast<std::uint32_t>(std::count(free.begin(), free.end(), true)));
            for (int q = 0; q < 300; ++q) {
                // Mix whole-bitmap intervals with narrow ones and ones inside a word.
                std::uint32_t lo = uniform<std::uint32_t>(rng, 0, n - 1);
                std::uint32_t hi = uniform<std::uint32_t>(rng, lo, n - 1);
                if (q % 3 == 0) {
                    lo = 0;
                    hi = n - 1;
                } else if (q % 3 == 1) {
                    hi = std::min(n - 1, lo + uniform<std::uint32_t>(rng, 0, 70));
                }
                const std::uint32_t start = uniform<std::uint32_t>(rng, lo, hi);
                const unsigned parity = uniform<unsigned>(rng, 0, 1);
                ASSERT_EQ(b.find_free(start, parity, lo, hi),
                          reference_find(free, start, parity, lo, hi))
                    << "n " << n << ", density " << density << ", start " << start << ", parity "
                    << parity << ", [" << lo << ", " << hi << "]";
                // Churn: flip a random slot so the summaries are exercised too.
                const std::uint32_t s = uniform<std::uint32_t>(rng, 0, n - 1);
                if (free[s]) {
                    b.take(s);
                } else {
                    b.release(s);
                }
                free[s] = !free[s];
                ASSERT_EQ(b.is_free(s), free[s]);
            }
        }
    }
}

// The same under a mask (a port range with reserved ranges): free is "allowed and unused", and
// a summary hit whose unused slots the mask forbids must not end the search.
TEST(PortBitmap, FindFreeUnderAMaskMatchesBruteForce) {
    Rng rng(4787);
    const Ownership ownership(4);
    const PortSlice slice(ownership, 1);
    const std::uint32_t n = slice.slot_count();
    for (int round = 0; round < 12; ++round) {
        const auto lo_port = uniform<std::uint16_t>(rng, 0, 60000);
        const PortRange range{lo_port, uniform<std::uint16_t>(rng, lo_port, 65535)};
        std::vector<PortRange> reserved;
        for (int r = 0; r < round % 4; ++r) {
            const auto from = uniform<std::uint16_t>(rng, 0, 65000);
            reserved.push_back(PortRange{
                from, static_cast<std::uint16_t>(from + uniform<std::uint16_t>(rng, 0, 500))});
        }
        const PortMask mask(slice, range, reserved);
        PortBitmap b(n);
        std::vector<bool> free(n);
        std::bernoulli_distribution keep(round % 3 == 0 ? 0.002 : 0.3);
        for (std::uint32_t s = 0; s < n; ++s) {
            if (!keep(rng)) {
                b.take(s, &mask);
            }
            free[s] = !b.is_used(s) && mask.allows(s);
        }
        ASSERT_EQ(b.free_count(&mask),
                  static_cast<std::uint32_t>(std::count(free.begin(), free.end(), true)));
        for (int q = 0; q < 400; ++q) {
            std::uint32_t lo = uniform<std::uint32_t>(rng, 0, n - 1);
            std::uint32_t hi = uniform<std::uint32_t>(rng, lo, n - 1);
            if (q % 2 == 0) {
                lo = 0;
                hi = n - 1;
            }
            const std::uint32_t start = uniform<std::uint32_t>(rng, lo, hi);
            const unsigned parity = uniform<unsigned>(rng, 0, 1);
            ASSERT_EQ(b.find_free(start, parity, lo, hi, &mask),
                      reference_find(free, start, parity, lo, hi))
                << "round " << round << ", start " << start << ", parity " << parity << ", [" << lo
                << ", " << hi << "]";
        }
        // The allocator's search over a port class: the same answer as over the class's
        // interval under the whole mask (RFC 4787 REQ-3a keeps a port's class).
        for (const bool system : {false, true}) {
            const MaskClass& c = mask.port_class(system);
            if (c.empty()) {
                continue;
            }
            for (int q = 0; q < 200; ++q) {
                const std::uint32_t start = uniform<std::uint32_t>(rng, c.lo, c.hi);
                const unsigned parity = uniform<unsigned>(rng, 0, 1);
                const auto expected = reference_find(free, start, parity, c.lo, c.hi);
                ASSERT_EQ(b.find_free_in(c, start, parity), expected.value_or(PortBitmap::kNoSlot))
                    << "round " << round << (system ? ", system" : ", user") << " class, start "
                    << start << ", parity " << parity;
            }
        }
    }
}

// The class search through churn: slots taken (as a search finds them and otherwise) and
// released at random, down to a handful free and one parity used up, with every summary word
// of a whole slice (one worker: 16 of them) in play. Each answer is the brute force's, so the
// summaries and the top word above them stay right as words fill and empty.
TEST(PortBitmap, FindFreeInThroughChurnMatchesBruteForce) {
    Rng rng(6056);
    const Ownership ownership(1);
    const PortSlice slice(ownership, 0);
    const std::uint32_t n = slice.slot_count();
    const std::vector<PortRange> reserved{{5000, 5100}, {40000, 40999}};
    const PortMask mask(slice, PortRange{1024, 65535}, reserved);
    const MaskClass& c = mask.port_class(false);
    PortBitmap b(n);
    std::vector<bool> free(n);
    for (std::uint32_t s = 0; s < n; ++s) {
        free[s] = mask.allows(s);
    }
    const auto check = [&](const char* phase) {
        for (int q = 0; q < 40; ++q) {
            const std::uint32_t start = uniform<std::uint32_t>(rng, c.lo, c.hi);
            const unsigned parity = uniform<unsigned>(rng, 0, 1);
            const auto expected = reference_find(free, start, parity, c.lo, c.hi);
            ASSERT_EQ(b.find_free_in(c, start, parity), expected.value_or(PortBitmap::kNoSlot))
                << phase << ": start " << start << ", parity " << parity << ", "
                << b.free_count(&mask) << " free";
        }
    };
    const auto release_one_at_random = [&] {
        const std::uint32_t s = uniform<std::uint32_t>(rng, c.lo, c.hi);
        if (b.is_used(s) && mask.allows(s)) {
            b.release(s, &mask);
            free[s] = true;
        }
    };
    // Fill by searches (take_found) to a few free, releasing one now and then; take every even
    // slot; then release at random, a third of the slots' draws.
    for (std::uint32_t round = 0; b.free_count(&mask) > 8; ++round) {
        const std::uint32_t start = uniform<std::uint32_t>(rng, c.lo, c.hi);
        std::uint32_t slot = b.find_free_in(c, start, round & 1u);
        if (slot == PortBitmap::kNoSlot) { // that parity is used up: the other, as allocate does
            slot = b.find_free_in(c, start, (round & 1u) ^ 1u);
        }
        ASSERT_NE(slot, PortBitmap::kNoSlot);
        b.take_found(slot, mask);
        free[slot] = false;
        if (round % 7 == 0) {
            release_one_at_random();
        }
        if (round % 512 == 0) {
            check("filling");
        }
    }
    check("nearly full");
    for (std::uint32_t s = c.lo; s <= c.hi; s += 2) {
        b.take(s, &mask);
        free[s] = false;
    }
    check("no even slot free");
    for (int r = 0; r < 20000; ++r) {
        release_one_at_random();
        if (r % 1000 == 0) {
            check("emptying");
        }
    }
    check("emptied");
}

// ---- PortAllocator ------------------------------------------------------------------------

// Every usable port is handed out exactly once, then nullopt; released ports come back.
TEST(PortAllocator, EveryPortOnceUntilExhaustion) {
    for (const auto& [name, range] : test_ranges()) {
        for (WorkerId workers : {1, 2, 4}) {
            const Ownership own(workers);
            const WorkerId w = workers - 1;
            const auto reserved = reserved_in(range);
            PortAllocator alloc(own, w, range, reserved, 2, kSecret);
            SCOPED_TRACE(name + ", worker " + std::to_string(w) + " of " + std::to_string(workers));
            Rng rng(range.lo * 7u + workers);
            // Ask in one class only (user if the slice has any): the class is preferred until it
            // is used up, then the other class serves.
            bool has_user = false;
            bool has_system = false;
            for (std::uint32_t p = range.lo; p <= range.hi; ++p) {
                if (alloc.owns(static_cast<std::uint16_t>(p))) {
                    (p < 1024 ? has_system : has_user) = true;
                }
            }
            std::set<std::uint16_t> granted;
            std::vector<std::uint16_t> order;
            while (true) {
                const std::uint16_t inside_port = has_user
                                                      ? uniform<std::uint16_t>(rng, 1024, 65535)
                                                      : uniform<std::uint16_t>(rng, 0, 1023);
                const Ipv4Addr inside{uniform<std::uint32_t>(rng, 0, ~0u)};
                const auto before = alloc.free_ports(0, Protocol::udp);
                const auto grant = alloc.allocate(request(inside, inside_port));
                if (!grant) {
                    break;
                }
                ASSERT_GT(before, 0u);
                ASSERT_TRUE(granted.insert(grant->port).second)
                    << "port " << grant->port << " handed out twice";
                order.push_back(grant->port);
                ASSERT_TRUE(range.contains(grant->port)) << grant->port;
                ASSERT_TRUE(alloc.owns(grant->port)) << grant->port;
                ASSERT_EQ(own.port_owner(kPoolAddr, grant->port), w);
                ASSERT_FALSE(is_reserved(reserved, grant->port)) << grant->port;
                ASSERT_FALSE(alloc.is_free(0, Protocol::udp, grant->port));
                ASSERT_EQ(alloc.free_ports(0, Protocol::udp), before - 1);
                ASSERT_EQ(grant->preserved, grant->port == inside_port);
            }
            if (has_user && has_system) {
                // RFC 4787 REQ-3a: every user-class port went before the first system-class one.
                const auto first_system = std::find_if(order.begin(), order.end(),
                                                       [](std::uint16_t p) { return p < 1024; });
                ASSERT_NE(first_system, order.end());
                for (auto it = first_system; it != order.end(); ++it) {
                    ASSERT_LT(*it, 1024) << "a user port was left while system ports went out";
                }
            }
            EXPECT_EQ(granted.size(), alloc.usable_ports());
            EXPECT_EQ(alloc.free_ports(0, Protocol::udp), 0u);
            EXPECT_FALSE(alloc.allocate(request(Ipv4Addr{1}, 1025)).has_value());
            // Other addresses and protocols have their own ports.
            EXPECT_EQ(alloc.free_ports(1, Protocol::udp), alloc.usable_ports());
            EXPECT_EQ(alloc.free_ports(0, Protocol::tcp), alloc.usable_ports());
            EXPECT_EQ(alloc.free_ports(0, Protocol::icmp), alloc.usable_ports());

            // Release every other one; exactly those come back, then nullopt again.
            std::set<std::uint16_t> released;
            bool odd = false;
            for (std::uint16_t p : granted) {
                if ((odd = !odd)) {
                    alloc.release(0, Protocol::udp, p);
                    released.insert(p);
                }
            }
            EXPECT_EQ(alloc.free_ports(0, Protocol::udp), released.size());
            std::set<std::uint16_t> again;
            while (auto grant = alloc.allocate(request(
                       Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)}, has_user ? 2000 : 100))) {
                ASSERT_TRUE(again.insert(grant->port).second) << grant->port;
            }
            EXPECT_EQ(again, released);
        }
    }
}

TEST(PortAllocator, ReleaseOfUnownedOrFreePortIsHarmless) {
    const Ownership own(2);
    PortAllocator alloc(own, 0, {49152, 65535}, {}, 1, kSecret);
    const auto usable = alloc.usable_ports();
    alloc.release(0, Protocol::udp, 80);    // out of range
    alloc.release(0, Protocol::udp, 49154); // free already
    for (std::uint16_t p = 49152; p < 49152 + 256; ++p) {
        if (!alloc.owns(p)) {
            alloc.release(0, Protocol::udp, p); // another worker's
        }
    }
    EXPECT_EQ(alloc.free_ports(0, Protocol::udp), usable);
}

// RFC 4787 REQ-4: even stays even and odd stays odd while ports of that parity remain; then
// the other parity beats no mapping.
TEST(PortAllocator, ParityPreservedWhilePortsOfThatParityRemain) {
    for (WorkerId workers : {1, 3}) {
        const Ownership own(workers);
        const PortRange range{1024, 5000};
        PortAllocator alloc(own, 0, range, {}, 1, kSecret);
        std::uint32_t free_of[2] = {0, 0};
        for (std::uint32_t p = range.lo; p <= range.hi; ++p) {
            if (alloc.is_free(0, Protocol::udp, static_cast<std::uint16_t>(p))) {
                ++free_of[p & 1u];
            }
        }
        ASSERT_GT(free_of[0], 0u);
        ASSERT_GT(free_of[1], 0u);
        Rng rng(4787 + workers);
        unsigned crossed = 0;
        while (free_of[0] + free_of[1] > 0) {
            // Inside ports outside the range (never preserved), three in four even.
            auto inside_port = uniform<std::uint16_t>(rng, 5002, 65535);
            inside_port = static_cast<std::uint16_t>((inside_port & ~1u) |
                                                     (uniform<int>(rng, 0, 3) == 0 ? 1u : 0u));
            const unsigned parity = inside_port & 1u;
            const auto grant =
                alloc.allocate(request(Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)}, inside_port));
            ASSERT_TRUE(grant.has_value()) << "ports remain: " << free_of[0] + free_of[1];
            EXPECT_FALSE(grant->preserved);
            if (free_of[parity] > 0) {
                ASSERT_EQ(grant->port & 1u, parity)
                    << "port " << grant->port << " for inside port " << inside_port << " while "
                    << free_of[parity] << " ports of its parity remain";
            } else {
                ++crossed;
            }
            --free_of[grant->port & 1u];
        }
        EXPECT_GT(crossed, 0u) << "the cross-parity fallback was not exercised";
        EXPECT_FALSE(alloc.allocate(request(Ipv4Addr{1}, 6000)).has_value());
    }
}

// RFC 4787 REQ-3a / RFC 7857 port preservation: the subscriber's own port when it is free,
// owned and in range; otherwise another one.
TEST(PortAllocator, SourcePortPreservedWhenFreeAndOwned) {
    const Ownership own(2);
    const PortRange range{10000, 65535};
    const std::vector<PortRange> reserved = {{20000, 20009}};
    PortAllocator alloc(own, 1, range, reserved, 1, kSecret);

    std::uint16_t mine = 0;
    std::uint16_t theirs = 0;
    for (std::uint16_t p = 30000; mine == 0 || theirs == 0; ++p) {
        (own.port_owner(kPoolAddr, p) == 1 ? mine : theirs) = p;
    }
    const Ipv4Addr c1{100, 64, 0, 1};
    const Ipv4Addr c2{100, 64, 0, 2};

    const auto first = alloc.allocate(request(c1, mine));
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->port, mine);
    EXPECT_TRUE(first->preserved);

    // Taken already: another subscriber with the same source port gets another port, same
    // parity and class.
    const auto second = alloc.allocate(request(c2, mine));
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(second->port, mine);
    EXPECT_FALSE(second->preserved);
    EXPECT_EQ(second->port & 1u, mine & 1u);

    // The same port on another protocol is a different port space.
    const auto tcp = alloc.allocate(request(c2, mine, Protocol::tcp));
    ASSERT_TRUE(tcp.has_value());
    EXPECT_EQ(tcp->port, mine);
    EXPECT_TRUE(tcp->preserved);

    // Reserved: never handed out, not even to preserve.
    for (std::uint16_t p = 20000; p <= 20009; ++p) {
        if (!alloc.owns(p)) {
            continue;
        }
        const auto g = alloc.allocate(request(c1, p));
        ASSERT_TRUE(g.has_value());
        EXPECT_FALSE(g->preserved) << p;
        EXPECT_FALSE(is_reserved(reserved, g->port)) << g->port;
        EXPECT_EQ(g->port & 1u, p & 1u);
    }

    // Another worker's port, and a port outside the range: not preserved.
    const auto other = alloc.allocate(request(c1, theirs));
    ASSERT_TRUE(other.has_value());
    EXPECT_FALSE(other->preserved);
    EXPECT_NE(other->port, theirs);
    const auto outside = alloc.allocate(request(c1, 5000));
    ASSERT_TRUE(outside.has_value());
    EXPECT_FALSE(outside->preserved);
    EXPECT_TRUE(range.contains(outside->port));
    EXPECT_EQ(outside->port & 1u, 0u);

    // Released, the port can be preserved again.
    alloc.release(0, Protocol::udp, mine);
    const auto back = alloc.allocate(request(c2, mine));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->port, mine);
    EXPECT_TRUE(back->preserved);
}

// RFC 4787 REQ-3a: source ports 0-1023 map into 0-1023, 1024-65535 stay in 1024-65535, when
// the range has ports of that class.
TEST(PortAllocator, PortClassKeptWhenTheRangeHasIt) {
    for (WorkerId workers : {1, 2}) {
        const Ownership own(workers);
        const PortRange range{500, 2000};
        PortAllocator alloc(own, 0, range, {}, 1, kSecret);
        std::uint32_t free_system = 0;
        std::uint32_t free_user = 0;
        for (std::uint32_t p = range.lo; p <= range.hi; ++p) {
            if (alloc.is_free(0, Protocol::udp, static_cast<std::uint16_t>(p))) {
                ++(p < 1024 ? free_system : free_user);
            }
        }
        Rng rng(1023 + workers);
        // Alternate classes with source ports outside the range (never preserved).
        for (int i = 0; free_system > 0 || free_user > 0; ++i) {
            const bool system = (i % 2 == 0 && free_system > 0) || free_user == 0;
            const std::uint16_t inside_port = system ? uniform<std::uint16_t>(rng, 1, 499)
                                                     : uniform<std::uint16_t>(rng, 2001, 65535);
            const auto grant =
                alloc.allocate(request(Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)}, inside_port));
            ASSERT_TRUE(grant.has_value()) << "system " << free_system << ", user " << free_user;
            if (system) {
                ASSERT_LT(grant->port, 1024) << "inside port " << inside_port;
                --free_system;
            } else {
                ASSERT_GE(grant->port, 1024) << "inside port " << inside_port;
                --free_user;
            }
            ASSERT_TRUE(range.contains(grant->port));
        }
    }
}

// As documented in port_allocator.hpp: a request falls back to the other class only when the
// range has no port of its own class; a class that has run out does not spill over.
// RFC 4787 REQ-3a is RECOMMENDED: once a class is used up, the other class still serves, so a
// flow is never refused while the range has a free port.
TEST(PortAllocator, ExhaustedClassSpillsOverToTheOtherClass) {
    const Ownership own(1);
    PortAllocator alloc(own, 0, {1000, 1100}, {}, 1, kSecret); // 24 system ports, 77 user
    for (int i = 0; i < 24; ++i) {
        const auto g = alloc.allocate(request(Ipv4Addr{7}, 1));
        ASSERT_TRUE(g.has_value());
        EXPECT_LT(g->port, 1024);
    }
    EXPECT_EQ(alloc.free_ports(0, Protocol::udp), 77u);
    const auto spilled = alloc.allocate(request(Ipv4Addr{7}, 1));
    ASSERT_TRUE(spilled.has_value());
    EXPECT_GE(spilled->port, 1024);
    int more = 0;
    while (alloc.allocate(request(Ipv4Addr{7}, 3000))) {
        ++more;
    }
    EXPECT_EQ(more, 76);
    EXPECT_EQ(alloc.free_ports(0, Protocol::udp), 0u);
}

// has_free (which pool address still has room, for paired pooling) answers for both classes
// and both parities: true while any allowed port of the protocol is free, false once the last
// goes, and true again when one of either class comes back.
TEST(PortAllocator, HasFreeWhileAnyPortOfEitherClassRemains) {
    const Ownership own(1);
    PortAllocator alloc(own, 0, {1000, 1100}, {}, 1, kSecret); // 24 system ports, 77 user
    std::vector<std::uint16_t> system;
    std::vector<std::uint16_t> user;
    for (int i = 0; i < 101; ++i) {
        EXPECT_TRUE(alloc.has_free(0, Protocol::udp)) << "after " << i << " allocations";
        const auto g = alloc.allocate(request(Ipv4Addr{7}, static_cast<std::uint16_t>(1 + i)));
        ASSERT_TRUE(g.has_value());
        (g->port < 1024 ? system : user).push_back(g->port);
    }
    EXPECT_FALSE(alloc.has_free(0, Protocol::udp));
    EXPECT_TRUE(alloc.has_free(0, Protocol::tcp)); // each protocol has its own ports
    ASSERT_EQ(system.size(), 24u);
    ASSERT_EQ(user.size(), 77u);
    for (const std::uint16_t port : {system.back(), user.front()}) {
        alloc.release(0, Protocol::udp, port);
        EXPECT_TRUE(alloc.has_free(0, Protocol::udp)) << "port " << port << " released";
        ASSERT_TRUE(alloc.claim(0, Protocol::udp, port));
        EXPECT_FALSE(alloc.has_free(0, Protocol::udp)) << "port " << port << " taken again";
    }
}

TEST(PortAllocator, OtherClassUsedWhenTheRangeHasNone) {
    const Ownership own(1);
    // Only user ports: a system-class source port still gets a mapping.
    PortAllocator user_only(own, 0, {49152, 65535}, {}, 1, kSecret);
    for (std::uint16_t inside : {0, 22, 80, 1023}) {
        const auto g = user_only.allocate(request(Ipv4Addr{9}, inside));
        ASSERT_TRUE(g.has_value()) << inside;
        EXPECT_GE(g->port, 49152) << inside;
        EXPECT_EQ(g->port & 1u, inside & 1u);
    }
    // Only system ports: a user-class source port gets one of them.
    PortAllocator system_only(own, 0, {512, 1023}, {}, 1, kSecret);
    for (std::uint16_t inside : {1024, 40001, 65535}) {
        const auto g = system_only.allocate(request(Ipv4Addr{9}, inside));
        ASSERT_TRUE(g.has_value()) << inside;
        EXPECT_LT(g->port, 1024) << inside;
        EXPECT_GE(g->port, 512) << inside;
    }
}

std::vector<std::uint16_t> grant_sequence(SipKey secret, std::uint32_t seed) {
    const Ownership own(2);
    PortAllocator alloc(own, 0, {32768, 60999}, {}, 4, secret);
    Rng rng(seed);
    std::vector<std::uint16_t> out;
    for (int i = 0; i < 200; ++i) {
        // Outside the range: every choice is the algorithm's, none is preservation.
        const auto g = alloc.allocate(request(Ipv4Addr{uniform<std::uint32_t>(rng, 0, 1000)},
                                              uniform<std::uint16_t>(rng, 1024, 32767),
                                              Protocol::udp, uniform<std::uint16_t>(rng, 0, 3)));
        out.push_back(g ? g->port : 0);
    }
    return out;
}

// RFC 4787 REQ-11 (deterministic) and RFC 6056 section 3.3.4 (keyed by a secret): the same
// secret and requests give the same ports; another secret gives other ports.
TEST(PortAllocator, DeterministicForASecretDifferentAcrossSecrets) {
    const auto a = grant_sequence(kSecret, 1);
    EXPECT_EQ(a, grant_sequence(kSecret, 1));
    const auto b = grant_sequence(SipKey{kSecret.k0 ^ 1, kSecret.k1}, 1);
    const auto c = grant_sequence(SipKey{kSecret.k0, kSecret.k1 + 1}, 1);
    std::size_t same_ab = 0;
    std::size_t same_ac = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        same_ab += a[i] == b[i];
        same_ac += a[i] == c[i];
    }
    // Different secrets pick independently; a few coincidences are expected, not most.
    EXPECT_LT(same_ab, a.size() / 10);
    EXPECT_LT(same_ac, a.size() / 10);
}

// RFC 6888 REQ-15 / RFC 6056 section 3.3.4: where a subscriber's ports start is keyed by the
// secret, so the first ports of consecutive subscribers are scattered over the range, not
// consecutive (as the traditional BSD counter would make them).
TEST(PortAllocator, FirstPortsOfSubscribersAreScattered) {
    const Ownership own(1);
    PortAllocator alloc(own, 0, {1024, 65535}, {}, 1, kSecret);
    std::vector<std::uint16_t> ports;
    for (std::uint32_t i = 0; i < 100; ++i) {
        const Ipv4Addr inside{Ipv4Addr{100, 64, 0, 1}.value() + i};
        const auto g = alloc.allocate(request(inside, 80)); // 80: not in range, not preserved
        ASSERT_TRUE(g.has_value());
        ports.push_back(g->port);
    }
    unsigned small_steps = 0;
    for (std::size_t i = 1; i < ports.size(); ++i) {
        const int step = int{ports[i]} - int{ports[i - 1]};
        small_steps += (step > -64 && step < 64) ? 1 : 0;
    }
    EXPECT_LT(small_steps, 5u);
    // Spread over the range: both halves used.
    const auto below = std::count_if(ports.begin(), ports.end(),
                                     [](std::uint16_t p) { return p < 1024 + 64512 / 2; });
    EXPECT_GT(below, 25);
    EXPECT_LT(below, 75);
}

// A bounded scan, not trial and error: at 99.9% occupancy and beyond, every request succeeds
// while one port of its class remains, and the very last port is found.
TEST(PortAllocator, SucceedsAtHighOccupancyWhileAPortRemains) {
    for (WorkerId workers : {1, 4}) {
        const Ownership own(workers);
        const std::vector<PortRange> reserved = {{40000, 40999}};
        PortAllocator alloc(own, workers - 1, {1024, 65535}, reserved, 1, kSecret);
        const std::uint32_t usable = alloc.usable_ports();
        Rng rng(999 + workers);
        for (std::uint32_t taken = 0; taken < usable; ++taken) {
            const auto g = alloc.allocate(request(Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)},
                                                  uniform<std::uint16_t>(rng, 0, 65535)));
            ASSERT_TRUE(g.has_value()) << "occupancy " << taken << "/" << usable;
        }
        EXPECT_EQ(alloc.free_ports(0, Protocol::udp), 0u);
        EXPECT_FALSE(alloc.allocate(request(Ipv4Addr{1}, 2)).has_value());

        // Free one random port; whatever the request's parity, it is found.
        Rng pick(5);
        std::uint16_t port = 0;
        do {
            port = uniform<std::uint16_t>(pick, 1024, 65535);
        } while (!alloc.owns(port) || (port >= 40000 && port <= 40999));
        for (unsigned parity : {0u, 1u}) {
            alloc.release(0, Protocol::udp, port);
            const auto g =
                alloc.allocate(request(Ipv4Addr{3}, static_cast<std::uint16_t>(2 * 1000 + parity)));
            ASSERT_TRUE(g.has_value());
            EXPECT_EQ(g->port, port);
        }
    }
}

// Bug: the class of a request is decided by the slots of the slice, reserved ports included.
// When every port of a class is reserved (RFC 7422 asks to remove at least 0-1023, e.g.
// port_range 1-65535 with reserved 1-1023), "the range has ports of this class" is true, yet
// none can ever be allocated: each request of that class fails while thousands of ports of the
// other class are free. Expected: such a request falls back to the other class (as when the
// range has no port of its class at all); RFC 6888 REQ-11 drops only when no mapping can be
// created.
TEST(PortAllocator, ClassWhosePortsAreAllReservedFallsBack) {
    const Ownership own(1);
    const std::vector<PortRange> reserved = {{1, 1023}};
    PortAllocator alloc(own, 0, {1, 65535}, reserved, 1, kSecret);
    ASSERT_EQ(alloc.usable_ports(), 65535u - 1023u);
    for (std::uint16_t inside : {123, 500, 1023}) {
        const auto g = alloc.allocate(request(Ipv4Addr{100, 64, 0, 1}, inside));
        ASSERT_TRUE(g.has_value()) << "source port " << inside << ": no port although "
                                   << alloc.free_ports(0, Protocol::udp) << " are free";
        EXPECT_GE(g->port, 1024) << inside;
        EXPECT_EQ(g->port & 1u, inside & 1u) << inside;
    }
    // The same with the user class reserved away: a user-class request gets a system port.
    const std::vector<PortRange> user_reserved = {{1024, 1100}};
    PortAllocator system(own, 0, {600, 1100}, user_reserved, 1, kSecret);
    const auto g = system.allocate(request(Ipv4Addr{100, 64, 0, 1}, 40000));
    ASSERT_TRUE(g.has_value()) << system.free_ports(0, Protocol::udp) << " ports are free";
    EXPECT_LT(g->port, 1024);
}

} // namespace
} // namespace ephemera
