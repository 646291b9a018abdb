// Memory for a worker's large tables: from the EAL's heap on the worker's NUMA socket (so on
// hugepages when the EAL has them, as rte_hash's own tables are), else, in a process without
// the EAL's memory, from the C++ heap. Zeroed and cache-line aligned.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

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

// The allocator of the large arrays that stay on the ordinary heap (the mapping and subscriber
// records, the outside-to-inside port index, the timer wheel's links): a block of 2 MB or more
// is 2 MB aligned and marked for transparent huge pages (madvise), so a read at a random place
// costs its cache miss without a TLB miss on top, as the tables on the EAL's hugepages do. It
// matters where the kernel's THP setting is "madvise" or "always"; with "never" it changes
// nothing. Smaller blocks are ordinary allocations (aligned as T asks).
void* huge_page_alloc(std::size_t bytes, std::size_t alignment); // throws std::bad_alloc
void huge_page_free(void* p, std::size_t bytes, std::size_t alignment) noexcept;

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <typename U>
    constexpr HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(huge_page_alloc(n * sizeof(T), alignof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { huge_page_free(p, n * sizeof(T), alignof(T)); }
    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const noexcept {
        return true;
    }
};

template <typename T>
using RecordVector = std::vector<T, HugePageAllocator<T>>;

} // namespace ephemera
