// The session table (flat_table.hpp) against a std::unordered_map model: random adds, lookups
// (one and bulk), removals and walks, up to a full table where keys must be moved between
// their two buckets, and the same positions for a key as long as it lives.
#include "ephemera/flat_table.hpp"
#include "ephemera/keys.hpp"
#include "ephemera/nat_table.hpp"

#include "packet_builder.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ephemera {
namespace {

using test::Rng;
using test::uniform;

using Table = FlatTable<SessionKey, Session>;

SessionKey random_key(Rng& rng) {
    static constexpr Protocol kProtocols[] = {Protocol::udp, Protocol::tcp, Protocol::icmp};
    return SessionKey::make(
        Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)}, uniform<std::uint16_t>(rng, 0, 0xffff),
        Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)}, uniform<std::uint16_t>(rng, 0, 0xffff),
        kProtocols[uniform<int>(rng, 0, 2)]);
}

// lookup_bulk's answers for `keys`, each hashed as the packet path hashes it.
std::vector<std::int32_t> bulk_positions(const Table& t, const std::vector<SessionKey>& keys) {
    std::vector<std::uint32_t> hashes;
    for (const SessionKey& k : keys) {
        hashes.push_back(Table::hash(k));
    }
    std::vector<std::int32_t> got(keys.size());
    t.lookup_bulk(keys.data(), hashes.data(), static_cast<std::uint32_t>(keys.size()), got.data());
    return got;
}

// The packet path hashes and compares keys by the words their fields make (SessionKey::words
// and the others), not from memory: the two must be the same bytes, or a hit would be looked
// for in the wrong bucket.
TEST(FlatTable, SessionKeyWordsAreItsBytes) {
    Rng rng(7);
    for (int i = 0; i < 1000; ++i) {
        const SessionKey k = random_key(rng);
        std::uint64_t bytes[2];
        std::memcpy(bytes, &k, sizeof k);
        ASSERT_EQ(k.words()[0], bytes[0]);
        ASSERT_EQ(k.words()[1], bytes[1]);
        SessionKey slot{};
        ASSERT_EQ(Table::put(slot, k), Table::hash(k));
        ASSERT_EQ(slot, k);
        // The mapping and subscriber keys the same way.
        const MappingKey m = MappingKey::of(k);
        std::uint64_t m_bytes;
        std::memcpy(&m_bytes, &m, sizeof m);
        ASSERT_EQ(m.words()[0], m_bytes);
        const SubscriberKey s = SubscriberKey::of(Ipv4Addr{k.inside_addr});
        std::uint64_t s_bytes;
        std::memcpy(&s_bytes, &s, sizeof s);
        ASSERT_EQ(s.words()[0], s_bytes);
    }
}

// The fast path takes a packet's session key words straight from the parsed fields: they must
// be the words of the key SessionKey::of builds, for every protocol (ICMP echo keys have no
// remote port) and for ICMP errors (the key of the quoted flow).
TEST(FlatTable, SessionKeyWordsOfAPacketAreThoseOfItsKey) {
    Rng rng(8);
    for (int i = 0; i < 20000; ++i) {
        ParsedPacket p;
        p.proto = std::array{Protocol::udp, Protocol::tcp, Protocol::icmp}[uniform<int>(rng, 0, 2)];
        p.src = Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)};
        p.dst = Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)};
        p.src_port = uniform<std::uint16_t>(rng, 0, 0xffff);
        p.dst_port = uniform<std::uint16_t>(rng, 0, 0xffff);
        p.icmp_error = uniform<int>(rng, 0, 3) == 0;
        p.inner_proto = std::array{Protocol::udp, Protocol::icmp}[uniform<int>(rng, 0, 1)];
        p.inner_src = Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)};
        p.inner_dst = Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)};
        p.inner_src_port = uniform<std::uint16_t>(rng, 0, 0xffff);
        p.inner_dst_port = uniform<std::uint16_t>(rng, 0, 0xffff);
        ASSERT_EQ(SessionKey::words_of(p), SessionKey::of(p).words()) << "case " << i;
        SessionKey slot{};
        ASSERT_EQ(Table::put_words(slot, SessionKey::words_of(p)), Table::hash(SessionKey::of(p)));
        ASSERT_EQ(slot, SessionKey::of(p));
    }
}

TEST(FlatTable, StartsEmptyAndMisses) {
    Table t(1000);
    Rng rng(1);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_GE(t.capacity(), 1000u);
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(t.lookup(random_key(rng)), Table::kMiss);
    }
    std::uint32_t cursor = 0;
    EXPECT_EQ(t.next(cursor), Table::kMiss);
}

TEST(FlatTable, AddFindsTheSamePositionAgainAndRemoveFreesIt) {
    Table t(16);
    Rng rng(2);
    const SessionKey k = random_key(rng);
    const std::int32_t pos = t.add(k);
    ASSERT_GE(pos, 0);
    EXPECT_EQ(t.add(k), pos) << "adding a present key returns its position";
    EXPECT_EQ(t.lookup(k), pos);
    EXPECT_EQ(t.key(static_cast<std::uint32_t>(pos)), k);
    t.value(static_cast<std::uint32_t>(pos)).external_port = 4242;
    EXPECT_EQ(t.entry(static_cast<std::uint32_t>(pos)).value.external_port, 4242);
    t.remove_at(static_cast<std::uint32_t>(pos));
    EXPECT_EQ(t.lookup(k), Table::kMiss);
    EXPECT_FALSE(t.live(static_cast<std::uint32_t>(pos)));
    EXPECT_EQ(t.size(), 0u);
}

// holds(pos, key) is what a caller that remembers a key's position checks before trusting it:
// true only while that key lives there, whatever the position (freed, reused, out of range).
TEST(FlatTable, HoldsOnlyTheKeyLivingAtThePosition) {
    Table t(16);
    Rng rng(3);
    const SessionKey k = random_key(rng);
    const SessionKey other = random_key(rng);
    const auto pos = static_cast<std::uint32_t>(t.add(k));
    EXPECT_TRUE(t.holds(pos, k));
    EXPECT_FALSE(t.holds(pos, other));
    EXPECT_FALSE(t.holds(t.capacity(), k));
    EXPECT_FALSE(t.holds(0xffffffffu, k));
    t.remove_at(pos);
    EXPECT_FALSE(t.holds(pos, k)) << "a freed position holds nothing";
    ASSERT_EQ(t.add(other), static_cast<std::int32_t>(pos)) << "the freed position is reused";
    EXPECT_FALSE(t.holds(pos, k));
    EXPECT_TRUE(t.holds(pos, other));
}

// Filled to every position it has (buckets up to 90 % full, so keys get moved to their other
// bucket and along cuckoo paths), with churn, checked against a model after every step.
// Fills a table of `capacity` to every position it has (buckets up to 90 % full, so keys get
// moved to their other bucket and along cuckoo paths), churns it, and checks it against a
// model throughout. `random_key(rng)` makes the keys.
template <typename T, typename MakeKey>
void fill_and_churn(std::uint32_t capacity, MakeKey random_key) {
    using Key = std::decay_t<decltype(random_key(std::declval<Rng&>()))>;
    struct Hash {
        std::size_t operator()(const Key& k) const { return T::hash(k); }
    };
    T t(capacity);
    std::unordered_map<Key, std::int32_t, Hash> model;
    Rng rng(capacity);
    std::vector<Key> live;
    const auto check_some = [&](int probes) {
        for (int i = 0; i < probes && !live.empty(); ++i) {
            const Key& k = live[uniform<std::size_t>(rng, 0, live.size() - 1)];
            ASSERT_EQ(t.lookup(k), model.at(k));
        }
        for (int i = 0; i < probes; ++i) {
            const Key k = random_key(rng);
            ASSERT_EQ(t.lookup(k), model.count(k) ? model.at(k) : T::kMiss);
        }
    };
    // Fill to capacity: every add succeeds, positions are distinct and in range.
    std::set<std::int32_t> positions;
    while (model.size() < t.capacity()) {
        const Key k = random_key(rng);
        if (model.count(k)) {
            continue;
        }
        const std::int32_t pos = t.add(k);
        ASSERT_GE(pos, 0) << "full at " << model.size() << " of " << t.capacity();
        ASSERT_LT(static_cast<std::uint32_t>(pos), t.capacity());
        ASSERT_TRUE(positions.insert(pos).second);
        model[k] = pos;
        live.push_back(k);
    }
    ASSERT_EQ(t.size(), t.capacity());
    EXPECT_EQ(t.add(random_key(rng)), T::kMiss) << "a full table refuses";
    check_some(200);
    // Every live key is still where it was put.
    for (const Key& k : live) {
        ASSERT_EQ(t.lookup(k), model.at(k));
    }
    // Churn: remove and add in turns, with lookups between.
    for (int round = 0; round < 3000; ++round) {
        const std::size_t i = uniform<std::size_t>(rng, 0, live.size() - 1);
        t.remove_at(static_cast<std::uint32_t>(model.at(live[i])));
        model.erase(live[i]);
        live[i] = live.back();
        live.pop_back();
        Key k;
        do {
            k = random_key(rng);
        } while (model.count(k));
        const std::int32_t pos = t.add(k);
        ASSERT_GE(pos, 0);
        model[k] = pos;
        live.push_back(k);
        if (round % 100 == 0) {
            check_some(20);
        }
    }
    // A walk sees every live key once.
    std::set<std::int32_t> seen;
    std::uint32_t cursor = 0;
    for (std::int32_t pos; (pos = t.next(cursor)) != T::kMiss;) {
        ASSERT_TRUE(seen.insert(pos).second);
        ASSERT_EQ(model.at(t.key(static_cast<std::uint32_t>(pos))), pos);
    }
    EXPECT_EQ(seen.size(), model.size());
}

// 7372 and 58982 fill their buckets to 90 %: cuckoo moves are needed there.
constexpr std::uint32_t kCapacities[] = {7u, 64u, 1000u, 7372u, 50000u, 58982u};

TEST(FlatTable, MatchesAModelThroughFillAndChurn) {
    for (std::uint32_t capacity : kCapacities) {
        SCOPED_TRACE(capacity);
        fill_and_churn<Table>(capacity, random_key);
    }
}

// The worker's mapping and subscriber tables: 8-byte keys, the records kept elsewhere, so an
// entry is the key alone.
TEST(FlatTable, KeyOnlyTablesOfMappingsAndSubscribersMatchAModel) {
    static_assert(sizeof(MappingTable::Entry) == 8 && alignof(MappingTable::Entry) == 8);
    static_assert(sizeof(SubscriberTable::Entry) == 8);
    const auto random_mapping = [](Rng& rng) {
        static constexpr Protocol kProtocols[] = {Protocol::udp, Protocol::tcp, Protocol::icmp};
        return MappingKey::make(Ipv4Addr{uniform<std::uint32_t>(rng, 0, ~0u)},
                                uniform<std::uint16_t>(rng, 0, 0xffff),
                                kProtocols[uniform<int>(rng, 0, 2)]);
    };
    // Subscribers of one /16: keys that differ in their low bits only.
    const auto random_subscriber = [](Rng& rng) {
        return SubscriberKey::of(
            Ipv4Addr{Ipv4Addr{100, 64, 0, 0}.value() + uniform<std::uint32_t>(rng, 0, 0xffff)});
    };
    for (std::uint32_t capacity : kCapacities) {
        SCOPED_TRACE(capacity);
        fill_and_churn<MappingTable>(capacity, random_mapping);
        if (capacity <= 7372) { // a /16 holds 65,536: room to churn
            fill_and_churn<SubscriberTable>(capacity, random_subscriber);
        }
    }
}

TEST(FlatTable, BulkLookupEqualsOneByOne) {
    Table t(20000);
    Rng rng(77);
    std::vector<SessionKey> keys;
    for (int i = 0; i < 18000; ++i) {
        keys.push_back(random_key(rng));
        ASSERT_GE(t.add(keys.back()), 0);
    }
    for (int round = 0; round < 200; ++round) {
        const std::uint32_t n = uniform<std::uint32_t>(rng, 1, 100);
        std::vector<SessionKey> probe(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            probe[i] = uniform<int>(rng, 0, 1) ? keys[uniform<std::size_t>(rng, 0, keys.size() - 1)]
                                               : random_key(rng);
        }
        const std::vector<std::int32_t> got = bulk_positions(t, probe);
        for (std::uint32_t i = 0; i < n; ++i) {
            ASSERT_EQ(got[i], t.lookup(probe[i])) << i;
        }
    }
}

// Keys that collide on their primary bucket (forced by searching for them) all fit: they spill
// to their alternate buckets and are found there.
TEST(FlatTable, KeysOfOneBucketSpillToTheirOtherBucket) {
    Table t(4096);
    Rng rng(99);
    const std::uint32_t mask = t.buckets() - 1;
    const SessionKey first = random_key(rng);
    const std::uint32_t bucket = Table::hash(first) & mask;
    std::vector<SessionKey> same{first};
    while (same.size() < 40) {
        const SessionKey k = random_key(rng);
        if ((Table::hash(k) & mask) == bucket) {
            same.push_back(k);
        }
    }
    std::vector<std::int32_t> pos;
    for (const SessionKey& k : same) {
        pos.push_back(t.add(k));
        ASSERT_GE(pos.back(), 0);
    }
    for (std::size_t i = 0; i < same.size(); ++i) {
        ASSERT_EQ(t.lookup(same[i]), pos[i]) << i;
    }
    for (std::size_t i = 0; i < same.size(); i += 2) {
        t.remove_at(static_cast<std::uint32_t>(pos[i]));
    }
    for (std::size_t i = 0; i < same.size(); ++i) {
        ASSERT_EQ(t.lookup(same[i]), i % 2 ? pos[i] : Table::kMiss) << i;
    }
    // The bulk lookup reads only each key's first candidate entry before its out-of-line
    // search: the keys behind another candidate or in their alternate bucket are found too,
    // and the removed ones (their slots keep a stale position) miss.
    const std::vector<std::int32_t> got = bulk_positions(t, same);
    for (std::size_t i = 0; i < same.size(); ++i) {
        ASSERT_EQ(got[i], i % 2 ? pos[i] : Table::kMiss) << i;
    }
}

// Through churn (removals free positions that later keys take, and leave their slots' stale
// positions behind), a bulk lookup answers as the table's contents say: the position each
// present key was given, a miss for every removed or never-added key.
TEST(FlatTable, BulkLookupThroughChurnMatchesAModel) {
    Table t(3000);
    Rng rng(2024);
    std::unordered_map<std::uint64_t, std::pair<SessionKey, std::int32_t>> present;
    std::vector<SessionKey> removed;
    const auto id = [](const SessionKey& k) {
        return std::hash<std::string_view>{}(
            std::string_view(reinterpret_cast<const char*>(&k), sizeof k));
    };
    for (int step = 0; step < 40000; ++step) {
        if (present.size() < 2600 && uniform<int>(rng, 0, 2) != 0) {
            const SessionKey k = random_key(rng);
            const std::int32_t pos = t.add(k);
            ASSERT_GE(pos, 0);
            present[id(k)] = {k, pos};
        } else if (!present.empty()) {
            auto it = present.begin();
            std::advance(
                it, uniform<std::size_t>(rng, 0, std::min<std::size_t>(present.size(), 64) - 1));
            ASSERT_EQ(t.remove(it->second.first), it->second.second);
            removed.push_back(it->second.first);
            present.erase(it);
        }
        if (step % 500 != 0) {
            continue;
        }
        std::vector<SessionKey> probe;
        std::vector<std::int32_t> want;
        for (const auto& [key_id, entry] : present) {
            probe.push_back(entry.first);
            want.push_back(entry.second);
        }
        for (const SessionKey& k : removed) {
            if (!present.contains(id(k))) {
                probe.push_back(k);
                want.push_back(Table::kMiss);
            }
        }
        ASSERT_EQ(bulk_positions(t, probe), want) << "step " << step;
    }
}

} // namespace
} // namespace ephemera
