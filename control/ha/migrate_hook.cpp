// Running ha.migrate_hook (migrate_hook.hpp).
#include "migrate_hook.hpp"

#include <dirent.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace ephemera::ha {

namespace {

constexpr std::chrono::milliseconds kPoll{5};
constexpr std::size_t kMaxCommandChars = 80;

std::string read_proc(pid_t pid, const char* what) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + what, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "PID COMMAND, state S, waiting in WCHAN" for every process of the group `pgid`: where a hook
// that ran out of time was stuck, for the operator (a router that does not answer, a lock).
std::string describe_group(pid_t pgid) {
    std::string out;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) {
        return out;
    }
    while (const dirent* entry = ::readdir(proc)) {
        char* end = nullptr;
        const long pid = std::strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0') {
            continue;
        }
        // "PID (COMM) STATE PPID PGRP ...": COMM may hold spaces and parentheses.
        const std::string stat = read_proc(static_cast<pid_t>(pid), "stat");
        const std::size_t close = stat.rfind(')');
        if (close == std::string::npos) {
            continue;
        }
        std::istringstream fields(stat.substr(close + 1));
        std::string state;
        long ppid = 0;
        long pgrp = 0;
        if (!(fields >> state >> ppid >> pgrp) || pgrp != pgid) {
            continue;
        }
        std::string command = read_proc(static_cast<pid_t>(pid), "cmdline");
        std::replace(command.begin(), command.end(), '\0', ' ');
        while (!command.empty() && command.back() == ' ') {
            command.pop_back();
        }
        if (command.size() > kMaxCommandChars) {
            command = command.substr(0, kMaxCommandChars) + "...";
        }
        std::string wchan = read_proc(static_cast<pid_t>(pid), "wchan");
        if (!out.empty()) {
            out += "; ";
        }
        out += std::to_string(pid) + " " + command + ", state " + state;
        if (!wchan.empty() && wchan != "0") {
            out += ", waiting in " + wchan;
        }
    }
    ::closedir(proc);
    return out;
}

// posix_spawn's attributes and file actions, released however the spawn goes.
class SpawnSetup {
public:
    SpawnSetup() {
        ::posix_spawnattr_init(&attr_);
        ::posix_spawn_file_actions_init(&actions_);
    }
    ~SpawnSetup() {
        ::posix_spawn_file_actions_destroy(&actions_);
        ::posix_spawnattr_destroy(&attr_);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    int clean_start() {
        sigset_t none;
        sigset_t all;
        sigemptyset(&none);
        sigfillset(&all);
        int err = ::posix_spawnattr_setflags(
            &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (err == 0) {
            err = ::posix_spawnattr_setpgroup(&attr_, 0); // a group of its own, led by the hook
        }
        if (err == 0) {
            err = ::posix_spawnattr_setsigmask(&attr_, &none);
        }
        if (err == 0) {
            err = ::posix_spawnattr_setsigdefault(&attr_, &all);
        }
        if (err == 0) {
            err = ::posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
        }
        return err;
    }

    const posix_spawnattr_t* attr() const { return &attr_; }
    const posix_spawn_file_actions_t* actions() const { return &actions_; }

private:
    posix_spawnattr_t attr_{};
    posix_spawn_file_actions_t actions_{};
};

} // namespace

HookOutcome run_migrate_hook(const std::string& path, const std::vector<std::string>& extra,
                             std::chrono::milliseconds timeout) {
    const auto started = std::chrono::steady_clock::now();
    const auto took = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
    };
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) {
        env.push_back(*e);
    }
    std::vector<std::string> owned = extra;
    for (std::string& e : owned) {
        env.push_back(e.data());
    }
    env.push_back(nullptr);
    std::string program = path;
    char* argv[] = {program.data(), nullptr};
    SpawnSetup setup;
    pid_t pid = 0;
    int err = setup.clean_start();
    if (err == 0) {
        err = ::posix_spawn(&pid, path.c_str(), setup.actions(), setup.attr(), argv, env.data());
    }
    if (err != 0) {
        return {std::string("cannot run: ") + std::strerror(err), took()};
    }
    const auto deadline = started + timeout;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            const std::string running = describe_group(pid);
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            std::string said = "killed after " + std::to_string(timeout.count()) + " ms";
            if (!running.empty()) {
                said += " (still running: " + running + ")";
            }
            return {said, took()};
        }
        std::this_thread::sleep_for(kPoll);
    }
    if (WIFEXITED(status)) {
        return {"exit " + std::to_string(WEXITSTATUS(status)), took()};
    }
    return {"ended by signal " + std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0),
            took()};
}

} // namespace ephemera::ha
