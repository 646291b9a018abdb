// One field value of a NAT event as text, formatted on the stack: the logging thread formats
// about a million of them a second, and a heap string per value was most of its time.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ephemera::logging {

class ValueText {
public:
    // The longest value is a pool span, "255.255.255.255-255.255.255.255" (31 bytes).
    static constexpr std::size_t kCapacity = 48;

    // Leaves the buffer unwritten: a FieldList holds nine of these per message, and zeroing
    // them cost more than formatting the values.
    ValueText() {}

    ValueText& clear() {
        len_ = 0;
        return *this;
    }
    ValueText& add(char c) {
        buf_[len_++] = c;
        return *this;
    }
    ValueText& add(std::string_view s) {
        std::memcpy(buf_.data() + len_, s.data(), s.size());
        len_ += s.size();
        return *this;
    }
    ValueText& add_uint(std::uint64_t v) {
        const auto r = std::to_chars(buf_.data() + len_, buf_.data() + buf_.size(), v);
        len_ = static_cast<std::size_t>(r.ptr - buf_.data());
        return *this;
    }
    // Dotted quad of a host-order address, as Ipv4Addr::to_string prints it.
    ValueText& add_address(std::uint32_t a) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            add_octet(static_cast<std::uint8_t>(a >> shift));
            if (shift != 0) {
                add('.');
            }
        }
        return *this;
    }
    ValueText& add_endpoint(std::uint32_t a, std::uint16_t port) {
        return add_address(a).add(':').add_uint(port);
    }

    [[nodiscard]] std::string_view view() const { return {buf_.data(), len_}; }

private:
    // Hand-written rather than to_chars: four of these per address, and the value is < 256.
    void add_octet(std::uint8_t v) {
        if (v >= 100) {
            add(static_cast<char>('0' + v / 100));
            v %= 100;
            add(static_cast<char>('0' + v / 10));
        } else if (v >= 10) {
            add(static_cast<char>('0' + v / 10));
        }
        add(static_cast<char>('0' + v % 10));
    }

    std::array<char, kCapacity> buf_;
    std::size_t len_ = 0;
};

} // namespace ephemera::logging
