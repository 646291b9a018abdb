#include "ephemera/ownership.hpp"

#include <algorithm>

namespace ephemera {

Ownership::Ownership(WorkerId workers) : workers_(std::clamp<WorkerId>(workers, 1, kMaxWorkers)) {
    for (unsigned b = 0; b < kBuckets; ++b) {
        bucket_owner_[b] = static_cast<WorkerId>(b % workers_);
    }
}

} // namespace ephemera
