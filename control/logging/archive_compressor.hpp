// Compresses the archive's closed files to .log.zst on a thread of its own, so that the logging
// thread never waits for zstd: at a million records a second a 64 MiB file takes seconds to
// compress, and while the logging thread is busy the workers' rings overflow.
//
// The queue lives only in memory. Destroying the compressor abandons the file under way at its
// next 1 MiB read (its temporary file removed) and leaves it and the queued ones plain: the
// archive's recovery at the next start compresses every closed plain file it finds, and
// readers read plain files all the same. Abandoning rather than finishing, because a sink
// retired by a reconfiguration is destroyed on the logging thread, which must not wait seconds
// for a 64 MiB file compressed at the lowest priority.
#pragma once

#include "archive_files.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace ephemera::logging {

class ArchiveCompressor {
public:
    ArchiveCompressor();
    ~ArchiveCompressor();
    ArchiveCompressor(const ArchiveCompressor&) = delete;
    ArchiveCompressor& operator=(const ArchiveCompressor&) = delete;

    // Queues a closed plain file; it becomes `plain_path + ".zst"` and the plain file is
    // unlinked. Never waits for compression.
    void enqueue(std::string plain_path);
    // Whether `plain_path` is queued or under way: retention must leave it alone, or the
    // compressor would read a deleted file or rename its .zst back into the directory.
    [[nodiscard]] bool holds(const std::string& plain_path) const;
    // Files that could not be compressed (they stay plain). Read by the owner's thread and
    // folded into its own counters, which only that thread writes.
    [[nodiscard]] std::uint64_t failures() const {
        return failures_.load(std::memory_order_relaxed);
    }

    // For tests. wait_idle: until nothing is queued or under way. hold(true): the compressor
    // takes the next file and waits before compressing it, until hold(false) or destruction
    // (which then abandons it); wait_held: until it waits so, with a file taken.
    void wait_idle();
    void hold(bool on);
    void wait_held();

private:
    void run();
    // Blocks until there is a file to compress (then takes it as busy_) or until stop.
    bool take();

    mutable std::mutex mutex_;
    std::condition_variable wake_; // the compressor: work, stop, hold released
    std::condition_variable done_; // waiters: idle, held
    std::deque<std::string> queue_;
    std::string busy_; // under way, empty when none
    bool stop_ = false;
    bool hold_ = false;
    bool held_ = false;
    bool ended_ = false; // the thread is gone or never started: waiting would be forever
    std::atomic<bool> cancel_{false}; // stop_, read without the lock between two reads
    std::atomic<std::uint64_t> failures_{0};
    FileCompressor zstd_; // touched by the thread only
    std::thread thread_;  // last: started once everything it uses exists
};

} // namespace ephemera::logging
