#include "ephemera/mode_checks.hpp"

#include "ephemera/ownership.hpp"
#include "ephemera/port_allocator.hpp"

#include <string>

namespace ephemera {

std::optional<ConfigError> check_blocks_fit(const Config& config, WorkerId workers) {
    if (config.allocation != AllocationMode::blocks) {
        return std::nullopt;
    }
    const BlocksConfig& b = config.blocks;
    const std::uint32_t smallest = b.adaptive ? b.min_block_size : b.block_size;
    const Ownership ownership(workers);
    for (WorkerId w = 0; w < ownership.workers(); ++w) {
        const PortSlice slice(ownership, w);
        const PortMask mask(slice, config.port_range, config.reserved);
        if (blocks_that_fit(mask, smallest / kGranuleSlots) == 0) {
            return ConfigError{
                config.source, b.adaptive ? "pool.blocks.min_block_size" : "pool.blocks.block_size",
                "a block of " + std::to_string(smallest) + " ports does not fit in worker " +
                    std::to_string(w) + "'s share of port_range " +
                    std::to_string(config.port_range.lo) + "-" +
                    std::to_string(config.port_range.hi) + " with " + std::to_string(workers) +
                    " workers (" + std::to_string(mask.usable()) +
                    " ports; blocks take ports from 1024 up, cut at multiples of 64 of the "
                    "worker's share): use smaller blocks, fewer workers or a wider port_range"};
        }
    }
    return std::nullopt;
}

} // namespace ephemera
