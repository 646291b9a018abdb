// Counts every allocation through the global operator new of the test binary that links
// count_allocations.cpp, so that a test can show a code path allocates nothing.
#pragma once

#include <cstdint>

namespace ephemera::testing {

std::uint64_t allocation_count();

} // namespace ephemera::testing
