// The operator's view of port blocks: a bounded walk over a worker's block records, for
// `ephemeractl show blocks` (control asks through the worker's mailbox).
#include "ephemera/translator.hpp"

#include <rte_hash.h>

namespace ephemera {

bool Translator::walk_blocks(std::optional<Ipv4Addr> subscriber, Tick now, std::uint32_t& cursor,
                             std::uint32_t budget, std::vector<BlockView>& out,
                             std::size_t limit) const {
    const std::uint32_t per_address = ports_.slice().slot_count() / kGranuleSlots;
    const std::uint32_t end = static_cast<std::uint32_t>(pool().size()) * per_address;
    for (std::uint32_t seen = 0; cursor < end && seen < budget; ++cursor, ++seen) {
        const auto pool_index = static_cast<std::uint16_t>(cursor / per_address);
        const std::uint32_t granule = cursor % per_address;
        const std::uint32_t ref = block_ref(pool_index, granule);
        const PortBlock& b = ports_.block(ref);
        if (b.holder == kNoHolder || b.head != granule || out.size() >= limit) {
            continue;
        }
        // The subscriber's address is the key of its record in the subscriber table.
        void* key = nullptr;
        if (rte_hash_get_key_with_position(tables_.subscribers.raw(),
                                           static_cast<std::int32_t>(b.holder), &key) != 0) {
            continue;
        }
        const Ipv4Addr holder{*static_cast<const std::uint32_t*>(key)};
        if (subscriber && *subscriber != holder) {
            continue;
        }
        const auto [lo, hi] = ports_.block_span(ref);
        const Tick timeout = policy().blocks.active_timeout;
        out.push_back(BlockView{pool().address(pool_index), lo, hi,
                                static_cast<std::uint16_t>(b.granules * kGranuleSlots), b.in_use,
                                holder, now - b.opened, timeout != 0 && now - b.opened >= timeout});
    }
    return cursor >= end;
}

} // namespace ephemera
