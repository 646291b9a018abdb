// The checks of an allocation mode that need what the parser does not know: the worker count.
// ephemera runs them at start, after the EAL gave it its lcores, and on every runtime change.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/types.hpp"

#include <optional>

namespace ephemera {

// In blocks mode, that each of `workers` workers can give at least one block of the smallest
// size: a refusal on pool.blocks.block_size (or min_block_size) otherwise.
std::optional<ConfigError> check_blocks_fit(const Config& config, WorkerId workers);

} // namespace ephemera
