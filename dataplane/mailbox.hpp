// Telemetry's window into a worker: a request (what, and for which sessions) that the worker
// serves between bursts, a bounded step at a time, then marks served.
//
// The handshake, by tickets:
//   requester  post() writes the request and publishes ticket requested+1 (release); it may
//              post only while the mailbox is idle (served == requested), because the worker
//              reads the request until it marks the ticket served. One requester at a time
//              (the caller serialises, e.g. App::mailbox_lock). The answer is read once
//              answered(ticket) (acquire). A requester that stops waiting cancels its ticket.
//   worker     pending() between bursts: the request to work on, or null (none, or the one
//              posted was cancelled: then it is marked served at once, the walk dropped where
//              it stood). complete() writes nothing more and marks it served (release).
// So a request that timed out can never be overwritten while the worker still reads it, and
// the next requester finds the mailbox idle within one housekeeping of its cancel.
#pragma once

#include "ephemera/translator.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ephemera {

class Mailbox {
public:
    enum class Kind : std::uint8_t { mappings, ports, sessions, flush, blocks, subscribers };
    static constexpr std::size_t kMaxMappings = 4096;
    static constexpr std::size_t kMaxSessions = 512;
    static constexpr std::size_t kMaxBlocks = 512;
    // Sessions or block granules looked at per housekeeping.
    static constexpr std::uint32_t kWalkStep = 4096;
    // Subscriber records summarised per housekeeping: about 19 ns each
    // (bench/subscriber_summary_bench.cpp), so a step holds a burst back some 20 us, and a
    // worker's 500K subscribers take 500 housekeepings.
    static constexpr std::uint32_t kSubscriberStep = 1024;

    struct Request {
        Kind kind = Kind::mappings;
        SessionFilter filter;
        std::size_t limit = kMaxSessions;
    };

    Mailbox() {
        sessions.reserve(kMaxSessions);
        blocks.reserve(kMaxBlocks);
    }

    // ---- requester side ----
    [[nodiscard]] bool idle() const {
        return served_.load(std::memory_order_acquire) ==
               requested_.load(std::memory_order_relaxed);
    }
    // Precondition: idle(). Returns the request's ticket.
    std::uint32_t post(const Request& request) {
        request_ = request;
        const std::uint32_t ticket = requested_.load(std::memory_order_relaxed) + 1;
        requested_.store(ticket, std::memory_order_release);
        return ticket;
    }
    [[nodiscard]] bool answered(std::uint32_t ticket) const {
        return served_.load(std::memory_order_acquire) == ticket;
    }
    void cancel(std::uint32_t ticket) { cancelled_.store(ticket, std::memory_order_relaxed); }

    // ---- worker side ----
    const Request* pending() {
        const std::uint32_t ticket = requested_.load(std::memory_order_acquire);
        if (ticket == served_.load(std::memory_order_relaxed)) {
            return nullptr;
        }
        if (cancelled_.load(std::memory_order_relaxed) == ticket) {
            walking = false; // nobody waits for this answer any more
            served_.store(ticket, std::memory_order_release);
            return nullptr;
        }
        return &request_;
    }
    void complete() {
        walking = false;
        served_.store(requested_.load(std::memory_order_relaxed), std::memory_order_release);
    }

    // ---- the answer: written by the worker before complete() ----
    std::vector<MappingView> mappings = std::vector<MappingView>(kMaxMappings);
    std::size_t mapping_count = 0;
    std::vector<SessionView> sessions; // capacity kMaxSessions
    std::uint64_t flushed = 0;
    // Ports: every pool address this worker knows (draining ones too), in index order.
    std::vector<Ipv4Addr> addresses;
    std::vector<std::uint8_t> active;
    std::vector<std::uint32_t> free_ports; // [pool index][protocol]
    std::uint32_t usable_ports = 0;        // per address and protocol
    std::vector<BlockCounts> block_counts; // [pool index], blocks mode
    std::vector<BlockView> blocks;         // Kind::blocks (capacity kMaxBlocks)
    SubscriberSummary subscribers;         // Kind::subscribers: built a walk step at a time

    // ---- the worker's progress through a walk (worker only) ----
    bool walking = false;
    std::uint32_t cursor = 0;

private:
    Request request_; // written by the requester only while idle
    std::atomic<std::uint32_t> requested_{0};
    std::atomic<std::uint32_t> served_{0};
    std::atomic<std::uint32_t> cancelled_{0};
};

// Posts `request` to every mailbox and waits until each has answered, at most `timeout` in
// all, first for any cancelled request still in progress to end. false: some worker did not
// answer in time; what it was asked is cancelled (a finding in itself: a worker should answer
// within a few housekeepings). The caller serialises requesters.
bool ask_all(std::span<Mailbox* const> boxes, const Mailbox::Request& request,
             std::chrono::milliseconds timeout);

} // namespace ephemera
