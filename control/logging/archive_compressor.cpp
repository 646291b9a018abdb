#include "archive_compressor.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace ephemera::logging {
namespace {

// Nice 19 rather than SCHED_IDLE: the logging thread and, on a small host, the workers or the
// packet generator share this CPU and must keep it, yet compression has to make progress under
// sustained load, where SCHED_IDLE could starve it for good and leave the disk filling with
// plain files five times the size. Failure is harmless: compression then competes as normal.
void lower_own_priority() {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
}

} // namespace

ArchiveCompressor::ArchiveCompressor() {
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error&) {
        ended_ = true;
        // No thread: enqueue counts every file as failed, and they stay plain until a start
        // that can compress them.
    }
}

ArchiveCompressor::~ArchiveCompressor() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cancel_.store(true, std::memory_order_relaxed);
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void ArchiveCompressor::enqueue(std::string plain_path) {
    {
        const std::lock_guard lock(mutex_);
        if (ended_) {
            failures_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        queue_.push_back(std::move(plain_path));
    }
    wake_.notify_one();
}

bool ArchiveCompressor::holds(const std::string& plain_path) const {
    const std::lock_guard lock(mutex_);
    if (busy_ == plain_path) {
        return true;
    }
    for (const std::string& q : queue_) {
        if (q == plain_path) {
            return true;
        }
    }
    return false;
}

void ArchiveCompressor::wait_idle() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return (queue_.empty() && busy_.empty()) || ended_; });
}

void ArchiveCompressor::hold(bool on) {
    {
        const std::lock_guard lock(mutex_);
        hold_ = on;
    }
    wake_.notify_all();
}

void ArchiveCompressor::wait_held() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return held_ || ended_; });
}

bool ArchiveCompressor::take() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) {
        return false; // what is queued stays plain for the next start's recovery
    }
    busy_ = std::move(queue_.front());
    queue_.pop_front();
    if (hold_) {
        held_ = true;
        done_.notify_all();
        wake_.wait(lock, [this] { return stop_ || !hold_; });
        held_ = false;
    }
    return true;
}

void ArchiveCompressor::run() {
    ::pthread_setname_np(::pthread_self(), "eph-compress");
    lower_own_priority();
    while (take()) {
        // Nothing may escape this thread: an exception here would end the process.
        try {
            std::string error;
            if (zstd_.compress(busy_, busy_ + ".zst", error, &cancel_)) {
                std::error_code ec;
                std::filesystem::remove(busy_, ec);
            } else if (!cancel_.load(std::memory_order_relaxed)) {
                failures_.fetch_add(1, std::memory_order_relaxed); // the plain file stays
            }
        } catch (...) {
            failures_.fetch_add(1, std::memory_order_relaxed);
        }
        {
            const std::lock_guard lock(mutex_);
            busy_.clear();
        }
        done_.notify_all();
    }
    {
        const std::lock_guard lock(mutex_);
        ended_ = true; // what is still queued stays plain
    }
    done_.notify_all();
}

} // namespace ephemera::logging
