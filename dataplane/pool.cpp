#include "ephemera/pool.hpp"

#include "ephemera/rewrite.hpp"

#include <bit>

namespace ephemera {

PoolIndex::PoolIndex(std::span<const Ipv4Addr> addresses)
    : addresses_(addresses.begin(), addresses.end()) {
    const std::size_t table = std::bit_ceil(std::max<std::size_t>(addresses_.size() * 4, 16));
    slots_.assign(table, Slot{});
    mask_ = static_cast<std::uint32_t>(table - 1);
    for (std::size_t i = 0; i < addresses_.size(); ++i) {
        std::uint32_t s = hash(addresses_[i]) & mask_;
        while (slots_[s].index != kNoPool) {
            s = (s + 1) & mask_;
        }
        slots_[s] = Slot{addresses_[i], static_cast<std::uint16_t>(i)};
        const std::uint32_t bit = hash(addresses_[i]) & (kFilterBits - 1);
        filter_[bit >> 6] |= 1ull << (bit & 63);
        wire_.push_back(wire32(addresses_[i].value()));
    }
}

} // namespace ephemera
