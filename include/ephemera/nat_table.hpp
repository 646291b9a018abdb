// One worker's translation state: subscribers, endpoint-independent mappings, 5-tuple sessions,
// and the outside-to-inside index. Only the owning worker reads or writes any of it.
//
//   subscribers  FlatTable inside address             -> Subscriber (anchor pool address)
//   mappings     FlatTable (inside addr, port, proto) -> Mapping    (RFC 4787 REQ-1: one per
//                                                                     inside endpoint)
//   sessions     FlatTable (inside addr, port, remote addr, port, proto) -> Session
//   permissions  rte_hash  (mapping, remote addr)      -> count of sessions (address-dependent
//                                                                     filtering only)
// The outside-to-inside index ((pool index, protocol, slot of external port) -> mapping) lives
// with each address's ports (AddressPorts, port_allocator.hpp), so that a new pool address
// brings its own.
//
// Records live in arrays indexed by the key's position in its table, so a hit costs one hash
// probe and one array read, and no allocator runs on the packet path. The subscriber and
// mapping tables are flat tables too (flat_table.hpp): a new flow inserts into them and an
// expiry removes from them, and rte_hash's general add and delete cost several times what
// these do; the permission table, used only by address-dependent filtering, stays an rte_hash.
// Every table is sized once, at start, for the worker's share of limits.max_sessions.
#pragma once

#include "ephemera/flat_table.hpp"
#include "ephemera/keys.hpp"
#include "ephemera/policy.hpp"
#include "ephemera/port_blocks.hpp"
#include "ephemera/table_memory.hpp"
#include "ephemera/types.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct rte_hash;

namespace ephemera {

// The in2out hit path reads only this record: the external endpoint is copied from the
// mapping so that translating an established flow touches one cache line beyond the hash.
// 16 bytes, so no record straddles two cache lines; `state` and `flags` hold the TCP state
// machine and per-session marks when session lifecycle lands.
struct Session {
    std::uint32_t mapping;
    Tick last_seen;
    std::uint16_t external_port;
    std::uint16_t pool_index;
    std::uint8_t state;
    std::uint8_t flags;
    std::uint16_t reserved_;
};
static_assert(sizeof(Session) == 16);

// 32 bytes and 32-aligned, so the out2in path's one record read is one cache line.
struct alignas(32) Mapping {
    Ipv4Addr inside;
    std::uint16_t inside_port;
    std::uint16_t external_port;
    std::uint16_t pool_index;
    Protocol proto;
    std::uint8_t flags; // kMappingStatic, kMappingMoved
    std::uint32_t subscriber;
    std::uint32_t sessions; // a mapping lives while it has sessions
    MacAddr inside_mac;     // where replies go on the inside (the subscriber or its router)
    std::uint16_t moved_to; // kMappingMoved: the index in Config::moved_subscribers
    // The position of its latest session (made, or found from outside by the hash): where an
    // inbound packet of a mapping with one session looks first, which spares the session
    // table's bucket and the hash. Never trusted: the entry there must hold the packet's key
    // (a position freed and reused holds another key, or none).
    std::uint32_t last_session;
};
static_assert(sizeof(Mapping) == 32);
// A static entry's mapping: its external endpoint is the entry's, not a port of the pool's
// allocation (no bitmap, no out2in index entry, no hold-down when it ends).
inline constexpr std::uint8_t kMappingStatic = 1;
// Its subscriber moved to a peer box (port_forwards.hpp): when it ends here, its external port
// stays held and passes the replies on to the peer.
inline constexpr std::uint8_t kMappingMoved = 2;

struct Subscriber {
    std::uint16_t pool_index; // paired pooling: every mapping of this subscriber uses it
    std::uint16_t watermarks; // bit per ProtoIndex: its port watermark was reported (nat_events)
    SubscriberBlocks blocks;  // pool.mode = "blocks": the blocks it holds
    // New mappings refused it (its limits, its rate, or no port or block left for it) since
    // its record was made; what the subscriber top N ranks by (subscriber_summary.hpp). In
    // what would otherwise be padding.
    std::uint32_t refusals;
    std::uint64_t port_key; // PortAllocator::port_key(inside, pool address): Algorithm 4's seed
    std::uint32_t mappings; // all protocols; the record lives while > 0
    std::uint32_t ports[kProtocolCount]; // mappings (= external ports) per protocol
    std::uint32_t sessions;
    TokenBucket new_mappings; // RFC 6888 REQ-4: the subscriber's rate of new mappings

    // Ports held in the busiest protocol: what a block has to cover (each protocol has the
    // block's every port).
    [[nodiscard]] std::uint32_t most_ports() const {
        return std::max({ports[0], ports[1], ports[2]});
    }
};
// Two records to a 64-byte line and a half: a million subscribers' records stay near 70 MB.
static_assert(sizeof(Subscriber) == 72);

// Owns an rte_hash and frees it (the permission table).
class HashTable {
public:
    HashTable(const std::string& name, std::uint32_t entries, std::uint32_t key_len, int socket);
    ~HashTable();
    HashTable(const HashTable&) = delete;
    HashTable& operator=(const HashTable&) = delete;

    // Positions are dense in [0, capacity()): they index the record arrays.
    [[nodiscard]] std::int32_t lookup(const void* key) const;
    [[nodiscard]] std::int32_t add(const void* key);
    std::int32_t remove(const void* key);
    // positions[i] = position or a negative value on a miss.
    void lookup_bulk(const void** keys, std::uint32_t n, std::int32_t* positions) const;
    [[nodiscard]] std::uint32_t capacity() const { return capacity_; }

private:
    rte_hash* hash_ = nullptr;
    std::uint32_t capacity_ = 0;
};

using SessionTable = FlatTable<SessionKey, Session>;
// The subscriber and mapping tables keep their records in arrays of their own (read far more
// often than the key), so their entries hold the key alone.
struct KeyOnly {};
using SubscriberTable = FlatTable<SubscriberKey, KeyOnly>;
using MappingTable = FlatTable<MappingKey, KeyOnly>;

class NatTables {
public:
    // `name` makes the rte_hash names unique per worker.
    NatTables(const std::string& name, std::uint32_t max_sessions, std::uint32_t max_subscribers,
              int socket);

    SubscriberTable subscribers;
    MappingTable mappings;
    // The packet path's table: key and record side by side (flat_table.hpp).
    SessionTable sessions;
    HashTable permissions;

    RecordVector<Subscriber> subscriber_records;
    RecordVector<Mapping> mapping_records;
    // When each mapping was made (HA's state of a session reports its age): by the mapping's
    // position, out of the record, which the packet path reads.
    RecordVector<Tick> mapping_created;
    std::vector<std::uint32_t> permission_counts;
};

} // namespace ephemera
