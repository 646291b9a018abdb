// Big-endian fields in byte buffers, for what leaves the process: the session records and
// state file (session_state.hpp) and the HA sync link's frames (control/ha/sync_protocol.hpp).
// Neither is on the packet path: the records are encoded by the control side's threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ephemera {

// Appends fields to a byte vector.
class ByteWriter {
public:
    explicit ByteWriter(std::vector<std::uint8_t>& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) {
        u8(static_cast<std::uint8_t>(v >> 8));
        u8(static_cast<std::uint8_t>(v));
    }
    void u32(std::uint32_t v) {
        u16(static_cast<std::uint16_t>(v >> 16));
        u16(static_cast<std::uint16_t>(v));
    }
    void u64(std::uint64_t v) {
        u32(static_cast<std::uint32_t>(v >> 32));
        u32(static_cast<std::uint32_t>(v));
    }
    void bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
    // A u16 length, then the text (cut at 65,535 bytes).
    void text(const std::string& t) {
        const std::size_t n = std::min<std::size_t>(t.size(), 0xffff);
        u16(static_cast<std::uint16_t>(n));
        out_.insert(out_.end(), t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n));
    }

private:
    std::vector<std::uint8_t>& out_;
};

// Reads fields; a read past the end gives 0 and marks the reader bad instead.
class ByteReader {
public:
    explicit ByteReader(std::span<const std::uint8_t> in) : in_(in) {}
    std::uint8_t u8() {
        if (at_ + 1 > in_.size()) {
            bad_ = true;
            return 0;
        }
        return in_[at_++];
    }
    std::uint16_t u16() {
        const std::uint16_t hi = u8();
        return static_cast<std::uint16_t>(hi << 8 | u8());
    }
    std::uint32_t u32() {
        const std::uint32_t hi = u16();
        return hi << 16 | u16();
    }
    std::uint64_t u64() {
        const std::uint64_t hi = u32();
        return hi << 32 | u32();
    }
    bool bytes(std::span<std::uint8_t> out) {
        if (at_ + out.size() > in_.size()) {
            bad_ = true;
            return false;
        }
        std::copy_n(in_.begin() + static_cast<std::ptrdiff_t>(at_), out.size(), out.begin());
        at_ += out.size();
        return true;
    }
    std::string text() {
        const std::size_t n = u16();
        if (at_ + n > in_.size()) {
            bad_ = true;
            return {};
        }
        std::string s(in_.begin() + static_cast<std::ptrdiff_t>(at_),
                      in_.begin() + static_cast<std::ptrdiff_t>(at_ + n));
        at_ += n;
        return s;
    }
    // Every byte read, none past the end.
    [[nodiscard]] bool whole() const { return !bad_ && at_ == in_.size(); }
    [[nodiscard]] bool bad() const { return bad_; }

private:
    std::span<const std::uint8_t> in_;
    std::size_t at_ = 0;
    bool bad_ = false;
};

} // namespace ephemera
