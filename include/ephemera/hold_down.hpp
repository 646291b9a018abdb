// Freed external ports wait here before they can be handed out again (RFC 6888 REQ-8: a port
// SHOULD NOT be reused for 120 s, so a late packet of the old flow cannot reach a new
// subscriber). The hold-down time is the same for every port, so release order is free order
// and a FIFO suffices. Its capacity is every port slot the worker has, so it can never be full
// and a port is never released early, also when the pool is exhausted.
#pragma once

#include "ephemera/types.hpp"

#include <cstdint>
#include <vector>

namespace ephemera {

struct HeldPort {
    std::uint32_t location; // PortAllocator location: (pool index, protocol, slot)
    Tick release_at;
};

class HoldDownQueue {
public:
    explicit HoldDownQueue(std::size_t capacity) : ring_(capacity == 0 ? 1 : capacity) {}

    void push(std::uint32_t location, Tick release_at) {
        ring_[(head_ + size_) % ring_.size()] = HeldPort{location, release_at};
        ++size_;
    }

    // Pops ports whose time has come, at most `budget`; calls release(location) for each.
    template <typename Release>
    std::uint32_t release_due(Tick now, std::uint32_t budget, Release&& release) {
        std::uint32_t done = 0;
        while (done < budget && size_ > 0 &&
               static_cast<std::int32_t>(now - ring_[head_].release_at) >= 0) {
            release(ring_[head_].location);
            head_ = (head_ + 1) % ring_.size();
            --size_;
            ++done;
        }
        return done;
    }

    // More room, when the pool grows: the queue keeps its order.
    void grow(std::size_t capacity) {
        if (capacity <= ring_.size()) {
            return;
        }
        std::vector<HeldPort> ring(capacity);
        for (std::size_t i = 0; i < size_; ++i) {
            ring[i] = ring_[(head_ + i) % ring_.size()];
        }
        ring_ = std::move(ring);
        head_ = 0;
    }

    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t capacity() const { return ring_.size(); }

private:
    std::vector<HeldPort> ring_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace ephemera
