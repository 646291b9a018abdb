#include "ephemera/supported_modes.hpp"

#include <string>

namespace ephemera {

std::optional<ConfigError> check_modes_supported(const Config& config) {
    switch (config.allocation) {
    case AllocationMode::dynamic:
        return std::nullopt;
    case AllocationMode::blocks:
    case AllocationMode::deterministic:
        break;
    }
    return ConfigError{config.source, "pool.mode",
                       "the dataplane does not translate mode \"" +
                           std::string{allocation_mode_name(config.allocation)} +
                           "\" yet; ephemeractl det works offline from this file (--config)"};
}

} // namespace ephemera
