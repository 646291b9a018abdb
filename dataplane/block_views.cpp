// The operator's view of port blocks: a bounded walk over a worker's block records, for
// `ephemeractl show blocks` (control asks through the worker's mailbox).
#include "ephemera/translator.hpp"

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
        if (!tables_.subscribers.live(b.holder)) {
            continue;
        }
        const Ipv4Addr holder = tables_.subscribers.key(b.holder).address();
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

namespace ephemera {

// Interim records (RFC 6888's concern that a long-held block's allocation record may be far in
// the past, rotated away or lost over UDP): a held block's record is sent again every
// pool.blocks.interim. The walk visits every block granule in turn, a budget at a time, so a
// pass over a worker's blocks takes granules / budget housekeeping calls, far less than the
// shortest interim allowed.
std::uint32_t Translator::log_interim(Tick now, std::uint32_t budget) {
    const Tick every = policy().block_interim;
    if (every == 0 || !events_.wants(NatEventKind::block_interim) ||
        policy().allocation != AllocationMode::blocks) {
        return 0;
    }
    const std::uint32_t per_address = ports_.slice().slot_count() / kGranuleSlots;
    const std::uint32_t end = static_cast<std::uint32_t>(pool().size()) * per_address;
    std::uint32_t seen = 0;
    for (; seen < budget && end != 0; ++seen, ++interim_cursor_) {
        if (interim_cursor_ >= end) {
            interim_cursor_ = 0;
        }
        const auto pool_index = static_cast<std::uint16_t>(interim_cursor_ / per_address);
        const std::uint32_t granule = interim_cursor_ % per_address;
        const std::uint32_t ref = block_ref(pool_index, granule);
        PortBlock& b = ports_.block_record(ref);
        if (b.holder == kNoHolder || b.head != granule) {
            continue;
        }
        // The count of whole periods since it opened, mod 256: one record per period, and a
        // pass that comes late still sends one.
        const auto periods = static_cast<std::uint8_t>((now - b.opened) / every);
        if (periods == b.interims) {
            continue;
        }
        b.interims = periods;
        if (tables_.subscribers.live(b.holder)) {
            events_.block(NatEventKind::block_interim, ref,
                          tables_.subscribers.key(b.holder).address());
        }
    }
    events_.flush();
    return seen;
}

} // namespace ephemera
