// ha.migrate_hook's runner (control/ha/migrate_hook.hpp): what the hook is given and what a
// timeout kills. Each hook is a small sh script that writes what it saw to a file.
#include "../../control/ha/migrate_hook.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace ephemera::ha {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class MigrateHookTest : public ::testing::Test {
protected:
    void SetUp() override {
        char dir[] = "/tmp/ephemera-hook-test-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        dir_ = dir;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string hook(const std::string& body) {
        const std::string path = dir_ + "/hook";
        std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
        ::chmod(path.c_str(), 0755);
        return path;
    }
    std::string out() const { return dir_ + "/out"; }
    std::string read_out() const {
        std::ifstream in(out());
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    std::string dir_;
};

TEST_F(MigrateHookTest, TheHookSeesItsVariablesAndItsExitStatusIsReported) {
    const HookOutcome o = run_migrate_hook(
        hook("echo \"$EPHEMERA_SUBSCRIBERS $EPHEMERA_PEER\" > " + out() + "\nexit 3"),
        {"EPHEMERA_SUBSCRIBERS=100.64.0.14/32", "EPHEMERA_PEER=198.19.1.1:5890"}, 5s);
    EXPECT_EQ(o.said, "exit 3");
    EXPECT_EQ(read_out(), "100.64.0.14/32 198.19.1.1:5890\n");
}

TEST_F(MigrateHookTest, AProgramThatCannotRunIsNamedSo) {
    EXPECT_EQ(run_migrate_hook(dir_ + "/missing", {}, 5s).said,
              "cannot run: No such file or directory");
}

// A program the hook leaves running must not keep ephemera's sockets (the hand-over listener,
// a sync link, the af_packet rings) open after ephemera ends.
TEST_F(MigrateHookTest, TheHookGetsNoneOfEphemerasDescriptorsButTheStandardThree) {
    constexpr int kLeaked = 200; // above what sh uses for itself
    const int fd = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::dup2(fd, kLeaked), kLeaked);
    ::close(fd);
    const HookOutcome o = run_migrate_hook(
        hook("for n in 0 1 2 " + std::to_string(kLeaked) + "; do [ -e /proc/$$/fd/$n ] && " +
             "echo \"$n open\" || echo \"$n closed\"; done > " + out()),
        {}, 5s);
    ::close(kLeaked);
    EXPECT_EQ(o.said, "exit 0");
    EXPECT_EQ(read_out(), "0 open\n1 open\n2 open\n200 closed\n");
}

bool signal_bit(const std::string& status, const std::string& field, int sig) {
    const std::size_t at = status.find(field + ":\t");
    if (at == std::string::npos) {
        return true; // unreadable counts as set: the test fails
    }
    const unsigned long long mask =
        std::strtoull(status.c_str() + at + field.size() + 2, nullptr, 16);
    return (mask >> (sig - 1)) & 1u;
}

// ephemera ignores SIGPIPE on its sockets and its threads may block signals: the hook starts
// as any program would (a `cmd | head` in it ends on SIGPIPE, a SIGTERM ends it).
TEST_F(MigrateHookTest, TheHookStartsWithNoSignalBlockedOrIgnored) {
    sigset_t usr1;
    sigset_t before;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, &before), 0);
    const auto pipe_before = std::signal(SIGPIPE, SIG_IGN);
    const HookOutcome o = run_migrate_hook(hook("cat /proc/self/status > " + out()), {}, 5s);
    std::signal(SIGPIPE, pipe_before);
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    EXPECT_EQ(o.said, "exit 0");
    const std::string status = read_out();
    EXPECT_FALSE(signal_bit(status, "SigBlk", SIGUSR1)) << status;
    EXPECT_FALSE(signal_bit(status, "SigIgn", SIGPIPE)) << status;
}

bool gone_or_zombie(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) {
        return true;
    }
    const std::size_t close = stat.rfind(')');
    return close != std::string::npos && stat.compare(close + 2, 1, "Z") == 0;
}

// A hook stuck behind something it started (a router that does not answer) is killed with it,
// and the report says what was still running and where it waited.
TEST_F(MigrateHookTest, ATimeoutKillsTheHookWithWhatItStartedAndSaysWhatWasRunning) {
    const auto started = std::chrono::steady_clock::now();
    const HookOutcome o =
        run_migrate_hook(hook("sleep 30 &\necho $! > " + out() + "\nwait"), {}, 300ms);
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_THAT(o.said, StartsWith("killed after 300 ms (still running: "));
    EXPECT_THAT(o.said, HasSubstr("sleep 30, state S"));
    EXPECT_GE(o.took, 300ms);
    EXPECT_LT(waited, 5s);
    const pid_t sleeper = static_cast<pid_t>(std::atoi(read_out().c_str()));
    ASSERT_GT(sleeper, 0);
    bool ended = false;
    for (int i = 0; i < 200 && !ended; ++i) {
        ended = gone_or_zombie(sleeper);
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(ended) << "the hook's child " << sleeper << " outlived the timeout";
}

} // namespace
} // namespace ephemera::ha
