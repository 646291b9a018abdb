// The record arrays' allocator (table_memory.hpp): a large array lies on 2 MB boundaries in a
// region the kernel was asked to back with transparent huge pages, a small one is ordinary.
#include "ephemera/nat_table.hpp"
#include "ephemera/table_memory.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ephemera {
namespace {

// The VmFlags of the mapping of this process that holds `address` ("" when none does).
std::string vm_flags_at(const void* address) {
    const auto at = reinterpret_cast<std::uintptr_t>(address);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        std::uintptr_t from = 0;
        std::uintptr_t to = 0;
        char dash = 0;
        std::istringstream range(line);
        if (range >> std::hex >> from >> dash >> to && dash == '-') {
            inside = from <= at && at < to;
        } else if (inside && line.rfind("VmFlags:", 0) == 0) {
            return line;
        }
    }
    return "";
}

TEST(HugePageAllocator, LargeArraysAreAlignedAndAdvisedForHugePages) {
    if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
        GTEST_SKIP() << "this kernel has no transparent huge pages to advise";
    }
    RecordVector<Mapping> records(std::size_t{1} << 17); // 4 MB of 32-byte records
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(records.data()) % (std::uintptr_t{2} << 20), 0u);
    const std::string flags = vm_flags_at(records.data());
    ASSERT_FALSE(flags.empty()) << "no mapping holds the records";
    EXPECT_NE(flags.find(" hg"), std::string::npos) << flags; // MADV_HUGEPAGE
    records.back().inside_port = 80;                          // the whole array is usable
    EXPECT_EQ(records.back().inside_port, 80);
}

TEST(HugePageAllocator, SmallArraysAreOrdinaryAndAlignedAsTheirType) {
    RecordVector<std::uint32_t> index(1000, 7u);
    EXPECT_EQ(index[999], 7u);
    EXPECT_EQ(vm_flags_at(index.data()).find(" hg"), std::string::npos);
    for (std::size_t n : {1u, 3u, 1000u}) {
        RecordVector<Mapping> records(n); // 32-byte aligned records
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(records.data()) % alignof(Mapping), 0u) << n;
    }
}

} // namespace
} // namespace ephemera
