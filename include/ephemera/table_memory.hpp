// Memory for a worker's large tables: from the EAL's heap on the worker's NUMA socket (so on
// hugepages when the EAL has them, as rte_hash's own tables are), else, in a process without
// the EAL's memory, from the C++ heap. Zeroed and cache-line aligned.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace ephemera {

void* table_alloc(std::size_t bytes, int socket); // throws std::bad_alloc
void table_free(void* p) noexcept;

struct TableFree {
    void operator()(void* p) const noexcept { table_free(p); }
};

// An array of `n` value-initialised T (trivial types only: memory comes zeroed).
template <typename T>
std::unique_ptr<T[], TableFree> make_table_array(std::size_t n, int socket) {
    static_assert(std::is_trivially_default_constructible_v<T>);
    return std::unique_ptr<T[], TableFree>(static_cast<T*>(table_alloc(sizeof(T) * n, socket)));
}

} // namespace ephemera
