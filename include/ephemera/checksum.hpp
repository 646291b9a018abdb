// Internet checksums: full computation (RFC 1071) for verification and tests, and the
// incremental update of RFC 1624 (eqn. 3: HC' = ~(~HC + ~m + m')) that the packet path uses.
//
// All 16-bit words here are "wire words": two bytes loaded from the packet as they lie in memory
// (see load_wire16). One's-complement addition commutes with byte swapping, so the arithmetic is
// the same in either byte order, and no packet field needs converting to update a checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace ephemera {

inline std::uint16_t load_wire16(const std::uint8_t* p) {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store_wire16(std::uint8_t* p, std::uint16_t v) {
    std::memcpy(p, &v, sizeof v);
}

// A one's-complement sum of any width folded to 16 bits: 0 only for a zero sum. Adding a word
// to itself rotated by half its width leaves the sum of its halves, end-around carry included,
// in its upper half (the carry out of the lower half is exactly that carry): 64 bits to 32,
// then 32 to 16, with no loop.
constexpr std::uint16_t fold_checksum(std::uint64_t sum) {
    const auto high32 = static_cast<std::uint32_t>((sum + (sum >> 32 | sum << 32)) >> 32);
    return static_cast<std::uint16_t>((high32 + (high32 >> 16 | high32 << 16)) >> 16);
}

// One's-complement sum of a byte range, as wire words; an odd tail byte is padded with zero.
// Read four bytes at a time: a 32-bit word is its two wire words' sum modulo 0xffff (2^16 is 1
// there), and a 64-bit sum of 32-bit words does not overflow below 16 GiB.
inline std::uint64_t checksum_partial(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0) {
    std::size_t i = 0;
    for (; i + 4 <= bytes.size(); i += 4) {
        std::uint32_t word;
        std::memcpy(&word, bytes.data() + i, sizeof word);
        sum += word;
    }
    if (i + 2 <= bytes.size()) {
        sum += load_wire16(bytes.data() + i);
        i += 2;
    }
    if (i < bytes.size()) {
        std::uint8_t tail[2] = {bytes[i], 0};
        sum += load_wire16(tail);
    }
    return sum;
}

// The checksum to store over `bytes` (whose checksum field must be zero), as a wire word.
inline std::uint16_t checksum_full(std::span<const std::uint8_t> bytes, std::uint64_t sum = 0) {
    return static_cast<std::uint16_t>(~fold_checksum(checksum_partial(bytes, sum)));
}

// RFC 1624 eqn. 3 for one 16-bit word changing from old_word to new_word.
constexpr std::uint16_t checksum_adjust16(std::uint16_t checksum, std::uint16_t old_word,
                                          std::uint16_t new_word) {
    std::uint64_t sum = static_cast<std::uint16_t>(~checksum);
    sum += static_cast<std::uint16_t>(~old_word);
    sum += new_word;
    return static_cast<std::uint16_t>(~fold_checksum(sum));
}

// The same for a 32-bit field (an address) given as the wire value of its 4 bytes.
constexpr std::uint16_t checksum_adjust32(std::uint16_t checksum, std::uint32_t old_value,
                                          std::uint32_t new_value) {
    std::uint64_t sum = static_cast<std::uint16_t>(~checksum);
    sum += static_cast<std::uint16_t>(~(old_value >> 16));
    sum += static_cast<std::uint16_t>(~old_value);
    sum += new_value >> 16;
    sum += new_value & 0xffff;
    return static_cast<std::uint16_t>(~fold_checksum(sum));
}

// Several RFC 1624 updates at once: the differences (~m + m') of every changed word are summed
// first and applied with one fold. The result equals applying checksum_adjust16/32 one after
// the other (each fold keeps the sum's value modulo 0xffff and is zero only for a zero sum),
// but the packet path folds once per checksum, and the address difference, which the IPv4 and
// the transport checksum share, is summed once.
//
// One's-complement sums are sums modulo 0xffff, and 2^16, 2^32 and 2^48 are all 1 modulo
// 0xffff, so an address's difference is its 32-bit complement plus the new value, with no
// splitting into halves, and the differences add as plain 64-bit integers (a handful of 32-bit
// terms never carries out of 64 bits): one instruction an add, no end-around carry. The carries
// come back once, when the sum is folded to 16 bits (folded(), fold_checksum).
class ChecksumDelta {
public:
    constexpr ChecksumDelta() = default;
    constexpr explicit ChecksumDelta(std::uint64_t value) : value_(value) {}
    friend constexpr ChecksumDelta operator+(ChecksumDelta a, ChecksumDelta b) {
        return ChecksumDelta{a.value_ + b.value_};
    }
    [[nodiscard]] constexpr std::uint64_t value() const { return value_; }
    // The sum in 16 bits, not complemented (what rte_raw_cksum returns): 0 only for a zero sum.
    [[nodiscard]] constexpr std::uint16_t folded() const { return fold_checksum(value_); }

private:
    std::uint64_t value_ = 0;
};

constexpr ChecksumDelta checksum_delta16(std::uint16_t old_word, std::uint16_t new_word) {
    return ChecksumDelta{std::uint64_t{static_cast<std::uint16_t>(~old_word)} + new_word};
}
constexpr ChecksumDelta checksum_delta32(std::uint32_t old_value, std::uint32_t new_value) {
    return ChecksumDelta{std::uint64_t{static_cast<std::uint32_t>(~old_value)} + new_value};
}
constexpr std::uint16_t checksum_apply(std::uint16_t checksum, ChecksumDelta delta) {
    return static_cast<std::uint16_t>(
        ~(ChecksumDelta{static_cast<std::uint16_t>(~checksum)} + delta).folded());
}

// Eqn. 3 never yields 0xffff: a message whose sum became zero gets 0x0000 from it. That is
// what a full computation gives for non-zero words that sum to 0xffff (-0), but not for a
// message whose every covered word is zero (+0), whose checksum must be 0xffff: eqn. 3
// cannot tell the two apart (RFC 1624 section 3). Where 0x0000 comes out of an update, the
// message decides. `covered`: the bytes the checksum covers as far as they are at hand (a
// first fragment or a truncated quote holds only part of its message; 0xffff is then the
// answer a receiver accepts whatever the rest holds, since the sum is zero either way);
// `field`: the offset of the checksum's own two bytes in it, which do not count.
//
// Only ICMP needs this on the packet path: an IPv4 header (its version), and TCP and UDP
// (the protocol number in their pseudo-header) always cover a non-zero word; UDP has its own
// rule for a computed zero (RFC 768).
inline constexpr std::size_t kNoChecksumField = static_cast<std::size_t>(-1);
inline std::uint16_t settle_zero_sum(std::uint16_t checksum, std::span<const std::uint8_t> covered,
                                     std::size_t field = kNoChecksumField) {
    if (checksum != 0) {
        return checksum;
    }
    for (std::size_t i = 0; i < covered.size(); ++i) {
        if (covered[i] != 0 && (i < field || i >= field + 2)) {
            return 0; // -0: non-zero words summing to zero
        }
    }
    return 0xffff;
}

} // namespace ephemera
