#include "ephemera/ownership.hpp"

#include <algorithm>
#include <utility>

namespace ephemera {

Ownership::Ownership(WorkerId workers, std::shared_ptr<const DeterministicMap> deterministic)
    : workers_(std::clamp<WorkerId>(workers, 1, kMaxWorkers)),
      deterministic_(std::move(deterministic)) {
    for (unsigned b = 0; b < kBuckets; ++b) {
        bucket_owner_[b] = static_cast<WorkerId>(b % workers_);
    }
}

Ownership Ownership::for_config(const Config& config, WorkerId workers) {
    if (config.allocation != AllocationMode::deterministic) {
        return Ownership(workers);
    }
    return Ownership(workers, std::make_shared<const DeterministicMap>(config));
}

} // namespace ephemera
