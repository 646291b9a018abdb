#include "ephemera/table_memory.hpp"

#include <rte_malloc.h>

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace ephemera {

namespace {

// A block starts with one cache line saying where it came from.
struct alignas(64) Header {
    bool from_eal;
};
static_assert(sizeof(Header) == 64);

constexpr std::size_t kHugePage = std::size_t{2} << 20;

} // namespace

void* table_alloc(std::size_t bytes, int socket) {
    const std::size_t total = sizeof(Header) + bytes;
    void* block = rte_zmalloc_socket("eph_table", total, 64, socket);
    bool from_eal = block != nullptr;
    if (block == nullptr) {
        block = std::aligned_alloc(64, (total + 63) / 64 * 64);
        if (block == nullptr) {
            throw std::bad_alloc();
        }
        std::memset(block, 0, total);
    }
    static_cast<Header*>(block)->from_eal = from_eal;
    return static_cast<std::uint8_t*>(block) + sizeof(Header);
}

void* huge_page_alloc(std::size_t bytes, std::size_t alignment) {
    if (bytes < kHugePage) {
        return ::operator new (bytes, std::align_val_t{alignment});
    }
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    // Advice only: where the kernel has no THP, the block is ordinary memory.
    (void)madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

void huge_page_free(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    if (bytes < kHugePage) {
        ::operator delete (p, std::align_val_t{alignment});
    } else {
        std::free(p);
    }
}

void table_free(void* p) noexcept {
    if (p == nullptr) {
        return;
    }
    void* block = static_cast<std::uint8_t*>(p) - sizeof(Header);
    if (static_cast<Header*>(block)->from_eal) {
        rte_free(block);
    } else {
        std::free(block);
    }
}

} // namespace ephemera
