#include "ephemera/table_memory.hpp"

#include <rte_malloc.h>

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
