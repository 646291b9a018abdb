// The bytes a stream transport holds while its collector is away or slow. Fixed capacity and
// whole messages only: a message that does not fit is refused, never cut, so that what reaches
// the collector stays framed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace ephemera::logging {

class ByteRing {
public:
    explicit ByteRing(std::size_t capacity) : buf_(capacity) {}

    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t capacity() const { return buf_.size(); }
    [[nodiscard]] bool empty() const { return size_ == 0; }

    // All of `bytes`, or nothing when they do not fit.
    bool push(std::span<const std::uint8_t> bytes) {
        if (bytes.empty()) {
            return true;
        }
        if (bytes.size() > buf_.size() - size_) {
            return false;
        }
        const std::size_t tail = (head_ + size_) % buf_.size();
        const std::size_t first = std::min(bytes.size(), buf_.size() - tail);
        std::memcpy(buf_.data() + tail, bytes.data(), first);
        std::memcpy(buf_.data(), bytes.data() + first, bytes.size() - first);
        size_ += bytes.size();
        return true;
    }

    // The oldest bytes that sit in one piece (the rest follow after a wrap).
    [[nodiscard]] std::span<const std::uint8_t> front() const {
        if (size_ == 0) {
            return {};
        }
        return {buf_.data() + head_, std::min(size_, buf_.size() - head_)};
    }

    void pop(std::size_t n) {
        n = std::min(n, size_);
        if (n == 0) {
            return;
        }
        head_ = (head_ + n) % buf_.size();
        size_ -= n;
        if (size_ == 0) {
            head_ = 0;
        }
    }

private:
    std::vector<std::uint8_t> buf_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace ephemera::logging
