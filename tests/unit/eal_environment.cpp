// The core tests' main(): the translation core keeps its tables in rte_hash, which needs the
// EAL's memory, so the EAL is initialised once for the whole binary (one rte_eal_init per
// process) in a GoogleTest environment: no hugepages, no PCI, no ports, only the main lcore.
#include <gtest/gtest.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace {

// The first CPU this process may run on: "-l 0" would fail under a CPU mask without CPU 0.
int first_allowed_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) {
                return cpu;
            }
        }
    }
    return 0;
}

class EalEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        std::vector<std::string> args = {
            "core-tests",
            "-l",
            std::to_string(first_allowed_cpu()),
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--file-prefix",
            prefix_,
            "--log-level=error",
        };
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        const int rc = rte_eal_init(static_cast<int>(args.size()), argv.data());
        ASSERT_GE(rc, 0) << "rte_eal_init failed: " << rte_strerror(rte_errno);
        initialised_ = true;
        runtime_dir_ = rte_eal_get_runtime_dir();
    }

    void TearDown() override {
        if (!initialised_) {
            return;
        }
        EXPECT_EQ(rte_eal_cleanup(), 0);
        // The EAL leaves its runtime directory (config and fbarray files, a few MiB) behind;
        // with a per-process prefix every run would add one. Remove ours, and only ours.
        const std::filesystem::path dir(runtime_dir_);
        if (dir.filename().string().starts_with(prefix_)) {
            std::error_code ignored;
            std::filesystem::remove_all(dir, ignored);
        }
    }

private:
    bool initialised_ = false;
    std::string prefix_ = "core-tests-" + std::to_string(getpid());
    std::string runtime_dir_;
};

} // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    // GoogleTest owns the environment and deletes it after the run.
    ::testing::AddGlobalTestEnvironment(new EalEnvironment);
    return RUN_ALL_TESTS();
}
