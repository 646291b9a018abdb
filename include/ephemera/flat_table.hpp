// A worker's session table: a bucketised cuckoo hash built for the packet path, where
// rte_hash's general bulk lookup costs more instructions per key (about 156 here) than a whole
// translation should. One worker owns it; nothing here is thread-safe or needs to be.
//
// Layout (memory decides the cost at a million sessions):
//   buckets  64 bytes each, one cache line: 8 slots of a 16-bit tag (from the key's hash, 0 =
//            empty) and the 32-bit position of the entry, and how many keys that hash here live
//            in their other bucket.
//   entries  the key and its record side by side (an entry of a session table is 32 bytes),
//            indexed by position, so a hit costs two cache lines: the bucket, then the entry,
//            which the caller reads anyway for the record. Positions are dense in
//            [0, capacity) and stable while the key lives.
// Each key has two buckets, its primary (hash & mask) and an alternate derived from the primary
// and the tag (partial-key cuckoo hashing, so a key can move without rehashing it). With 8
// slots per bucket and the table sized to at most about 90 % of its slots, an insert finds a
// free slot in one of its two buckets almost always; otherwise a bounded breadth-first search
// moves a few keys over. A lookup reads the alternate bucket only when the primary has
// overflowed, so a single lookup's miss usually costs one cache line; a bulk lookup's costs two,
// as it reads the entry its key's first candidate slot names (slot 0's when no tag matches)
// before it knows the key is not there.
//
// The hash is CRC-32C of the key (two or one crc32 instructions, SSE4.2), the same family
// rte_hash uses, computed inline. A key of all zero bytes marks a free entry: no key may be
// all zero (a session key always holds its protocol number).
#pragma once

#include "ephemera/prefetch.hpp"
#include "ephemera/table_memory.hpp"

#include <nmmintrin.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace ephemera {

template <typename Key, typename Value>
class FlatTable {
    static_assert(sizeof(Key) == 8 || sizeof(Key) == 16, "keys are one or two 64-bit words");
    static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>);
    struct Bucket;

public:
    static constexpr std::uint32_t kSlots = 8;
    static constexpr std::int32_t kMiss = -1;

    // Aligned to its size (a power of two up to a cache line), so no entry straddles two. An
    // empty Value (a table whose records live elsewhere) takes no room.
    static constexpr std::size_t kValueBytes = std::is_empty_v<Value> ? 0 : sizeof(Value);
    struct alignas(std::min<std::size_t>(64, std::bit_ceil(sizeof(Key) + kValueBytes))) Entry {
        Key key;
        [[no_unique_address]] Value value;
    };

    // Room for `capacity` keys (positions 0 .. capacity-1), the buckets at most 90 % full,
    // in memory of NUMA socket `socket` (-1: any; see table_memory.hpp).
    explicit FlatTable(std::uint32_t capacity, int socket = -1)
        : capacity_(std::max<std::uint32_t>(capacity, 1)),
          mask_(std::bit_ceil(std::max<std::uint32_t>(
                    static_cast<std::uint32_t>((std::uint64_t{capacity_} * 10 + 71) / 72), 2)) -
                1),
          buckets_(make_table_array<Bucket>(std::size_t{mask_} + 1, socket)),
          entries_(make_table_array<Entry>(capacity_, socket)), free_(capacity_) {
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            free_[i] = capacity_ - 1 - i; // positions handed out from 0 upwards
        }
    }

    using Words = std::array<std::uint64_t, sizeof(Key) / 8>;

    // The key as the 64-bit words it is hashed and compared by. A key that can say its words
    // itself (`words()`, built from its fields in registers) is not read back from memory.
    static Words words_of(const Key& key) {
        if constexpr (requires { key.words(); }) {
            return key.words();
        } else {
            Words words;
            std::memcpy(words.data(), &key, sizeof(Key));
            return words;
        }
    }
    static std::uint32_t hash_words(const Words& words) {
        std::uint32_t h = static_cast<std::uint32_t>(_mm_crc32_u64(0, words[0]));
        if constexpr (sizeof(Key) == 16) {
            h = static_cast<std::uint32_t>(_mm_crc32_u64(h, words[1]));
        }
        return h;
    }
    static std::uint32_t hash(const Key& key) { return hash_words(words_of(key)); }
    // Writes `key` to `slot` (a burst's key array) and returns its hash, both from the key's
    // words: hashing the slot just written would load 8 bytes that several narrower stores
    // still hold, which the CPU cannot forward (a stall of a dozen cycles or more per key).
    static std::uint32_t put(Key& slot, const Key& key) { return put_words(slot, words_of(key)); }
    static std::uint32_t put_words(Key& slot, const Words& words) {
        std::memcpy(&slot, words.data(), sizeof(Key));
        return hash_words(words);
    }

    [[nodiscard]] std::int32_t lookup(const Key& key) const { return lookup(key, hash(key)); }
    [[nodiscard]] std::int32_t lookup(const Key& key, std::uint32_t h) const {
        const std::uint32_t b = h & mask_;
        const std::uint16_t t = tag_of(h);
        if (const std::int32_t pos = find_in(b, t, key); pos != kMiss) {
            return pos;
        }
        if (buckets_[b].overflow == 0) {
            return kMiss;
        }
        return find_in(alternate(b, t), t, key);
    }

    // Asks for a key's first bucket by its hash: what a caller building a burst's keys does as
    // soon as it has each hash, so that the bucket is on its way before lookup_bulk reads it.
    // It holds the table's base and mask: the caller's stores of keys and hashes cannot make
    // the compiler load them again for every key, as read through the table they would be.
    class BucketPrefetch {
    public:
        void operator()(std::uint32_t h) const { prefetch(&buckets_[h & mask_]); }

    private:
        friend FlatTable;
        BucketPrefetch(const Bucket* buckets, std::uint32_t mask)
            : buckets_(buckets), mask_(mask) {}
        const Bucket* buckets_;
        std::uint32_t mask_;
    };
    [[nodiscard]] BucketPrefetch bucket_prefetch() const {
        return BucketPrefetch(buckets_.get(), mask_);
    }

    // positions[i] = the position of keys[i] (whose hash is hashes[i]) or kMiss; in stages
    // over up to kMaxBulk keys at a time: each key's first candidate entry is asked for from
    // its bucket, then compared. The caller hashes as it builds the keys and has asked for
    // each key's bucket then (bucket_prefetch).
    static constexpr std::uint32_t kMaxBulk = 64;
    void lookup_bulk(const Key* keys, const std::uint32_t* hashes, std::uint32_t n,
                     std::int32_t* positions) const {
        for (std::uint32_t done = 0; done < n; done += kMaxBulk) {
            lookup_some(keys + done, hashes + done, std::min(kMaxBulk, n - done), positions + done);
        }
    }

private:
    void lookup_some(const Key* keys, const std::uint32_t* hashes, std::uint32_t n,
                     std::int32_t* positions) const {
        // The table's fields in locals: the int32 positions written below may alias them, so
        // read through `this` they would be loaded again for every key.
        const Bucket* const buckets = buckets_.get();
        const Entry* const entries = entries_.get();
        const std::uint32_t mask = mask_;
        std::uint32_t first[kMaxBulk];
        // The entry of each key's first candidate slot (slot 0's when no tag matches). An
        // entry holding the key is the key's position whatever led to it (a key lives at one
        // position, and a free entry's key is all zero), so the last stage needs neither the
        // bucket nor the tag match again on a hit: one compare per key.
        for (std::uint32_t i = 0; i < n; ++i) {
            const Bucket& bk = buckets[hashes[i] & mask];
            first[i] = bk.pos[std::countr_zero(match(bk, tag_of(hashes[i])) | 0x100) & 7];
            prefetch(&entries[first[i]]);
        }
        for (std::uint32_t i = 0; i < n; ++i) {
            positions[i] = same(entries[first[i]].key, keys[i])
                               ? static_cast<std::int32_t>(first[i])
                               : lookup_beyond_first(hashes[i], keys[i]);
        }
    }
    // Out of line: a key not in its first candidate's entry is a miss (a new flow), or, one
    // time in thousands, behind another tag match or in its alternate bucket. Inlined, this
    // path's registers made the loop above keep its own on the stack.
    [[gnu::noinline]] std::int32_t lookup_beyond_first(std::uint32_t h, const Key& key) const {
        return lookup(key, h);
    }

public:
    // The key's position, inserting it if it is not there; kMiss when the table is full (or,
    // never seen at the sizes used, no bucket could be freed for it).
    std::int32_t add(const Key& key) { return add(key, hash(key)); }
    std::int32_t add(const Key& key, std::uint32_t h) {
        if (const std::int32_t pos = lookup(key, h); pos != kMiss) {
            return pos;
        }
        return insert(key, h);
    }
    // add() for a key known to be absent (its lookup just missed): no second lookup.
    std::int32_t insert(const Key& key, std::uint32_t h) {
        if (free_.empty()) {
            return kMiss;
        }
        const std::uint32_t b = h & mask_;
        const std::uint16_t t = tag_of(h);
        const std::uint32_t a = alternate(b, t);
        std::uint32_t slot;
        std::uint32_t bucket;
        if (free_slot(b, slot)) {
            bucket = b;
        } else if (free_slot(a, slot)) {
            bucket = a;
        } else if (make_room(b, a, bucket, slot)) {
            // a path of moves freed `slot` in `bucket` (one of b, a)
        } else {
            return kMiss;
        }
        const std::uint32_t pos = free_.back();
        free_.pop_back();
        place(bucket, slot, t, pos, b);
        entries_[pos].key = key;
        ++size_;
        return static_cast<std::int32_t>(pos);
    }

    // Removes the key at `pos` (a live position).
    void remove_at(std::uint32_t pos) { remove_at(pos, hash(entries_[pos].key)); }
    // The same, `h` being that key's hash (the caller has just looked it up).
    void remove_at(std::uint32_t pos, std::uint32_t h) {
        assert(live(pos) && hash(entries_[pos].key) == h); // a caller's position and key agree
        const std::uint32_t b = h & mask_;
        const std::uint16_t t = tag_of(h);
        if (!clear_slot(b, t, pos)) {
            clear_slot(alternate(b, t), t, pos);
            --buckets_[b].overflow;
        }
        entries_[pos].key = Key{};
        free_.push_back(pos);
        --size_;
    }
    // Removes `key` if present; returns its former position or kMiss.
    std::int32_t remove(const Key& key) {
        const std::uint32_t h = hash(key);
        const std::int32_t pos = lookup(key, h);
        if (pos != kMiss) {
            remove_at(static_cast<std::uint32_t>(pos), h);
        }
        return pos;
    }

    // Ask for the lines a coming lookup or remove will read: an entry, a key's first bucket.
    void prefetch_entry(std::uint32_t pos) const { prefetch(&entries_[pos]); }
    void prefetch_bucket(const Key& key) const { prefetch(&buckets_[hash(key) & mask_]); }

    [[nodiscard]] Entry& entry(std::uint32_t pos) { return entries_[pos]; }
    [[nodiscard]] const Entry& entry(std::uint32_t pos) const { return entries_[pos]; }
    [[nodiscard]] Value& value(std::uint32_t pos) { return entries_[pos].value; }
    [[nodiscard]] const Value& value(std::uint32_t pos) const { return entries_[pos].value; }
    [[nodiscard]] const Key& key(std::uint32_t pos) const { return entries_[pos].key; }
    [[nodiscard]] bool live(std::uint32_t pos) const { return !same(entries_[pos].key, Key{}); }
    // Whether position `pos` holds `key` (any `pos`: one out of range holds nothing). What a
    // caller that remembers a key's position checks before trusting it.
    [[nodiscard]] bool holds(std::uint32_t pos, const Key& key) const {
        return pos < capacity_ && same(entries_[pos].key, key);
    }

    // The next live position at or after `cursor`, advancing it past the one returned; kMiss
    // when the walk is over. Entries may be removed (and others added) during a walk; a key
    // that lives throughout is seen once.
    std::int32_t next(std::uint32_t& cursor) const {
        while (cursor < capacity_) {
            const std::uint32_t pos = cursor++;
            if (live(pos)) {
                return static_cast<std::int32_t>(pos);
            }
        }
        return kMiss;
    }

    [[nodiscard]] std::uint32_t capacity() const { return capacity_; }
    [[nodiscard]] std::uint32_t size() const { return size_; }
    [[nodiscard]] std::uint32_t buckets() const { return mask_ + 1; }
    [[nodiscard]] std::size_t bytes() const {
        return sizeof(Bucket) * (mask_ + 1) + sizeof(Entry) * capacity_ +
               sizeof(std::uint32_t) * capacity_;
    }

private:
    struct alignas(64) Bucket {
        std::uint16_t tag[kSlots];
        std::uint32_t pos[kSlots];
        std::uint32_t overflow; // keys whose primary bucket this is, living in their alternate
        std::uint32_t reserved[3];
    };
    static_assert(sizeof(Bucket) == 64);

    // 0 marks an empty slot, so a tag has its low bit set: one OR, where mapping a zero to
    // another value costs a compare and a select per key (the bulk lookup's second stage), for
    // one false candidate in 32,768 instead of 65,536.
    static std::uint16_t tag_of(std::uint32_t h) { return static_cast<std::uint16_t>(h >> 16 | 1); }
    [[nodiscard]] std::uint32_t alternate(std::uint32_t b, std::uint16_t t) const {
        // An involution: the alternate of the alternate is b again.
        return (b ^ (std::uint32_t{t} * 0x5bd1e995u >> 7)) & mask_;
    }
    // Slots of `bk` whose tag is t, one bit each: eight 16-bit compares at once, narrowed to
    // bytes so that the byte mask is the slot mask.
    static std::uint32_t match(const Bucket& bk, std::uint16_t t) {
        const __m128i tags = _mm_load_si128(reinterpret_cast<const __m128i*>(bk.tag));
        const __m128i eq = _mm_cmpeq_epi16(tags, _mm_set1_epi16(static_cast<short>(t)));
        return static_cast<std::uint32_t>(
            _mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())));
    }
    // Keys compare as their 64-bit words (padding is zero in every key made): a stored key's
    // read from memory, the probe's from its fields (it may have just been built).
    static bool same(const Key& stored, const Key& probe) {
        std::uint64_t x[sizeof(Key) / 8];
        std::memcpy(x, &stored, sizeof(Key));
        const Words y = words_of(probe);
        if constexpr (sizeof(Key) == 16) {
            return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
        } else {
            return x[0] == y[0];
        }
    }
    std::int32_t find_among(const Bucket& bk, std::uint32_t mask, const Key& key) const {
        while (mask != 0) {
            const std::uint32_t pos = bk.pos[std::countr_zero(mask)];
            if (same(entries_[pos].key, key)) {
                return static_cast<std::int32_t>(pos);
            }
            mask &= mask - 1;
        }
        return kMiss;
    }
    std::int32_t find_in(std::uint32_t b, std::uint16_t t, const Key& key) const {
        return find_among(buckets_[b], match(buckets_[b], t), key);
    }
    bool free_slot(std::uint32_t b, std::uint32_t& slot) const {
        const std::uint32_t empty = match(buckets_[b], 0);
        if (empty == 0) {
            return false;
        }
        slot = static_cast<std::uint32_t>(std::countr_zero(empty));
        return true;
    }
    // Puts (t, pos) in bucket `bucket` slot `slot`; `primary` is the key's primary bucket.
    void place(std::uint32_t bucket, std::uint32_t slot, std::uint16_t t, std::uint32_t pos,
               std::uint32_t primary) {
        buckets_[bucket].tag[slot] = t;
        buckets_[bucket].pos[slot] = pos;
        if (bucket != primary) {
            ++buckets_[primary].overflow;
        }
    }
    bool clear_slot(std::uint32_t b, std::uint16_t t, std::uint32_t pos) {
        std::uint32_t mask = match(buckets_[b], t);
        while (mask != 0) {
            const std::uint32_t s = static_cast<std::uint32_t>(std::countr_zero(mask));
            if (buckets_[b].pos[s] == pos) {
                buckets_[b].tag[s] = 0;
                return true;
            }
            mask &= mask - 1;
        }
        return false;
    }
    template <typename Node>
    static bool on_path(const Node* nodes, std::int32_t at, std::uint32_t bucket) {
        for (; at >= 0; at = nodes[static_cast<std::uint32_t>(at)].parent) {
            if (nodes[static_cast<std::uint32_t>(at)].bucket == bucket) {
                return true;
            }
        }
        return false;
    }
    // Frees a slot in bucket b or a by moving keys along a cuckoo path found breadth-first
    // (at most kSearch buckets looked at). On success, `bucket`/`slot` name the freed slot.
    bool make_room(std::uint32_t b, std::uint32_t a, std::uint32_t& bucket, std::uint32_t& slot);

    std::uint32_t capacity_;
    std::uint32_t mask_;
    std::unique_ptr<Bucket[], TableFree> buckets_;
    std::unique_ptr<Entry[], TableFree> entries_;
    std::vector<std::uint32_t> free_;
    std::uint32_t size_ = 0;
};

template <typename Key, typename Value>
bool FlatTable<Key, Value>::make_room(std::uint32_t b, std::uint32_t a, std::uint32_t& bucket,
                                      std::uint32_t& slot) {
    // Breadth-first over buckets: each node is (bucket, parent node, slot moved from parent).
    constexpr std::uint32_t kSearch = 256;
    struct Node {
        std::uint32_t bucket;
        std::int32_t parent;
        std::uint32_t slot; // the parent's slot whose key moves into this bucket
    };
    std::array<Node, kSearch> nodes;
    std::uint32_t count = 0;
    nodes[count++] = Node{b, -1, 0};
    nodes[count++] = Node{a, -1, 0};
    for (std::uint32_t head = 0; head < count; ++head) {
        const Node node = nodes[head];
        for (std::uint32_t s = 0; s < kSlots && count < kSearch; ++s) {
            // Where the key in this slot could go.
            const std::uint32_t pos = buckets_[node.bucket].pos[s];
            const std::uint32_t h = hash(entries_[pos].key);
            const std::uint32_t primary = h & mask_;
            const std::uint32_t other =
                node.bucket == primary ? alternate(primary, tag_of(h)) : primary;
            if (on_path(nodes.data(), static_cast<std::int32_t>(head), other)) {
                continue; // a path through a bucket twice could move one slot twice
            }
            nodes[count] = Node{other, static_cast<std::int32_t>(head), s};
            std::uint32_t free;
            if (!free_slot(other, free)) {
                ++count;
                continue;
            }
            // Move keys back along the path, from the free slot to the root.
            std::int32_t at = static_cast<std::int32_t>(count);
            std::uint32_t to_bucket = other;
            std::uint32_t to_slot = free;
            while (nodes[static_cast<std::uint32_t>(at)].parent >= 0) {
                const Node& n = nodes[static_cast<std::uint32_t>(at)];
                const std::uint32_t from_bucket =
                    nodes[static_cast<std::uint32_t>(n.parent)].bucket;
                Bucket& from = buckets_[from_bucket];
                const std::uint32_t moved = from.pos[n.slot];
                const std::uint32_t mh = hash(entries_[moved].key);
                const std::uint32_t mp = mh & mask_;
                // Leaving its primary raises the overflow count; returning to it lowers it.
                if (from_bucket == mp) {
                    ++buckets_[mp].overflow;
                } else if (to_bucket == mp) {
                    --buckets_[mp].overflow;
                }
                buckets_[to_bucket].tag[to_slot] = from.tag[n.slot];
                buckets_[to_bucket].pos[to_slot] = moved;
                from.tag[n.slot] = 0;
                to_bucket = from_bucket;
                to_slot = n.slot;
                at = n.parent;
            }
            bucket = to_bucket;
            slot = to_slot;
            return true;
        }
    }
    return false;
}

} // namespace ephemera
