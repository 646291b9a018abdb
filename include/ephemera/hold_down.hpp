// Freed external ports wait here before they can be handed out again (RFC 6888 REQ-8: a port
// SHOULD NOT be reused for 120 s, so a late packet of the old flow cannot reach a new
// subscriber). The hold-down time is the same for every port, so release order is free order
// and a FIFO suffices.
//
// The FIFO is a chain of fixed-size chunks. Every pool address brings chunks for all of its
// ports (AddressPorts, built by the control thread when the address is added), which the
// worker adds to the queue's free chunks the first time it sees the address: the capacity is
// every port slot the worker has, so the queue can never be full and a port is never released
// early, and growing it with the pool costs the worker a pointer splice per address, never an
// allocation or a copy of what is queued.
#pragma once

#include "ephemera/types.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ephemera {

struct HeldPort {
    std::uint32_t slot_and_proto; // slot << 2 | protocol index
    std::uint16_t pool_index;
    std::uint16_t reserved_;
    Tick release_at;
};

struct HoldChunk {
    static constexpr std::size_t kPorts = 512;
    HeldPort ports[kPorts];
    HoldChunk* next;
    std::uint32_t head; // first queued entry
    std::uint32_t tail; // one past the last
};

// Chunks for `ports` entries, to donate() to a queue.
struct HoldChunks {
    explicit HoldChunks(std::size_t ports)
        : count((ports + HoldChunk::kPorts - 1) / HoldChunk::kPorts),
          chunks(std::make_unique<HoldChunk[]>(count)) {}
    std::size_t count;
    std::unique_ptr<HoldChunk[]> chunks;
};

class HoldDownQueue {
public:
    // Entries fill the chunks in order, so the queue may hold a partly used head chunk and a
    // partly filled tail chunk at once: one chunk more than its entries need. That one is the
    // queue's own, so that the donated chunks' entries (capacity()) always fit.
    HoldDownQueue() : spare_(std::make_unique<HoldChunk>()) {
        spare_->next = nullptr;
        free_ = spare_.get();
    }

    // Adds capacity: the chunks must outlive the queue's use of them.
    void donate(HoldChunks& chunks) {
        for (std::size_t i = 0; i < chunks.count; ++i) {
            chunks.chunks[i].next = free_;
            free_ = &chunks.chunks[i];
        }
        capacity_ += chunks.count * HoldChunk::kPorts;
    }

    // Precondition: size() < capacity() (the donated chunks cover every port that can be held).
    void push(HeldPort port) {
        if (tail_ == nullptr || tail_->tail == HoldChunk::kPorts) {
            HoldChunk* c = free_;
            free_ = c->next;
            c->next = nullptr;
            c->head = 0;
            c->tail = 0;
            (tail_ == nullptr ? head_ : tail_->next) = c;
            tail_ = c;
        }
        tail_->ports[tail_->tail++] = port;
        ++size_;
    }

    // Pops ports whose time has come, at most `budget`; calls release(port) for each.
    template <typename Release>
    std::uint32_t release_due(Tick now, std::uint32_t budget, Release&& release) {
        std::uint32_t done = 0;
        while (done < budget && size_ > 0) {
            const HeldPort& port = head_->ports[head_->head];
            if (static_cast<std::int32_t>(now - port.release_at) < 0) {
                break;
            }
            release(port);
            ++done;
            --size_;
            if (++head_->head == head_->tail) { // chunk used up: back to the free ones
                HoldChunk* used = head_;
                head_ = used->next;
                if (head_ == nullptr) {
                    tail_ = nullptr;
                }
                used->next = free_;
                free_ = used;
            }
        }
        return done;
    }

    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t capacity() const { return capacity_; }

private:
    HoldChunk* head_ = nullptr;
    HoldChunk* tail_ = nullptr;
    HoldChunk* free_ = nullptr;
    std::unique_ptr<HoldChunk> spare_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

} // namespace ephemera
