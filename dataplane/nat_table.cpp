#include "ephemera/nat_table.hpp"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>

#include <algorithm>
#include <stdexcept>

namespace ephemera {

HashTable::HashTable(const std::string& name, std::uint32_t entries, std::uint32_t key_len,
                     int socket) {
    rte_hash_parameters params{};
    params.name = name.c_str();
    // rte_hash wants at least 8 entries and rounds buckets up to a power of two.
    params.entries = std::max<std::uint32_t>(entries, 64);
    params.key_len = key_len;
    params.hash_func = rte_hash_crc;
    params.hash_func_init_val = 0;
    params.socket_id = socket;
    // The extendable bucket table guarantees that `entries` keys always fit: without it a
    // cuckoo table can refuse an insert well before it is full, which would show up as a
    // spurious "sessions exhausted".
    params.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    hash_ = rte_hash_create(&params);
    if (hash_ == nullptr) {
        throw std::runtime_error("cannot create hash table " + name + ": " +
                                 rte_strerror(rte_errno));
    }
    capacity_ = static_cast<std::uint32_t>(rte_hash_max_key_id(hash_)) + 1;
}

HashTable::~HashTable() {
    rte_hash_free(hash_);
}

std::int32_t HashTable::lookup(const void* key) const {
    return rte_hash_lookup(hash_, key);
}
std::int32_t HashTable::add(const void* key) {
    return rte_hash_add_key(hash_, key);
}
std::int32_t HashTable::remove(const void* key) {
    return rte_hash_del_key(hash_, key);
}

void HashTable::lookup_bulk(const void** keys, std::uint32_t n, std::int32_t* positions) const {
    while (n > 0) {
        const std::uint32_t chunk = std::min<std::uint32_t>(n, RTE_HASH_LOOKUP_BULK_MAX);
        rte_hash_lookup_bulk(hash_, keys, chunk, positions);
        keys += chunk;
        positions += chunk;
        n -= chunk;
    }
}

NatTables::NatTables(const std::string& name, std::uint32_t max_sessions,
                     std::uint32_t max_subscribers, int socket)
    : subscribers(max_subscribers, socket), mappings(max_sessions, socket),
      sessions(max_sessions, socket),
      permissions(name + "_prm", max_sessions, sizeof(PermissionKey), socket),
      subscriber_records(subscribers.capacity()), mapping_records(mappings.capacity()),
      mapping_created(mappings.capacity()), permission_counts(permissions.capacity(), 0) {}

} // namespace ephemera
