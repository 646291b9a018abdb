// Which allocation modes the dataplane translates. The parser accepts every mode the config
// file can describe (ephemeractl det works from such a file offline); ephemera itself refuses to
// run a mode its workers cannot apply, at start, in --check-config and on reload.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/types.hpp"

#include <optional>

namespace ephemera {

// nullopt when the dataplane translates config.allocation; otherwise a refusal on "pool.mode".
std::optional<ConfigError> check_modes_supported(const Config& config);

// In blocks mode, that each of `workers` workers can give at least one block of the smallest
// size: a refusal on pool.blocks.block_size (or min_block_size) otherwise.
std::optional<ConfigError> check_blocks_fit(const Config& config, WorkerId workers);

} // namespace ephemera
