// Running ha.migrate_hook, the operator's program that tells the inside routers where moved
// subscribers went (docs/ha.md, "Moving live subscribers").
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ephemera::ha {

struct HookOutcome {
    // "exit N", "ended by signal N", "cannot run: REASON" or "killed after N ms (still
    // running: PID COMMAND, state S, waiting in WCHAN; ...)": shown as `handover_hook`.
    std::string said;
    std::chrono::milliseconds took{0};
};

// Runs `path` with ephemera's environment and `extra` (NAME=VALUE each) and waits at most
// `timeout`. The hook gets a process group of its own, so that a timeout kills whatever it
// started too, not only the hook, and it starts clean: only stdin, stdout and stderr of
// ephemera's descriptors (a program it leaves running must not hold the hand-over listener or
// a sync link open), no signal blocked and none ignored.
HookOutcome run_migrate_hook(const std::string& path, const std::vector<std::string>& extra,
                             std::chrono::milliseconds timeout);

} // namespace ephemera::ha
