// SipHash-2-4 (Aumasson and Bernstein): a keyed PRF with a 128-bit key, used wherever an
// outsider must not predict our choices (RFC 6056 section 3.3.4 asks for such an F and G
// keyed by a secret of at least 128 bits).
#pragma once

#include <cstdint>

namespace ephemera {

struct SipKey {
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;
};

namespace detail {
constexpr std::uint64_t rotl(std::uint64_t x, int b) {
    return (x << b) | (x >> (64 - b));
}
struct SipState {
    std::uint64_t v0, v1, v2, v3;
    constexpr void round() {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    }
};
} // namespace detail

// SipHash-2-4 of two 64-bit message words (a 16-byte message).
constexpr std::uint64_t siphash_2x64(const SipKey& key, std::uint64_t m0, std::uint64_t m1) {
    detail::SipState s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull,
                       key.k0 ^ 0x6c7967656e657261ull, key.k1 ^ 0x7465646279746573ull};
    for (std::uint64_t m : {m0, m1}) {
        s.v3 ^= m;
        s.round();
        s.round();
        s.v0 ^= m;
    }
    const std::uint64_t last = std::uint64_t{16} << 56;
    s.v3 ^= last;
    s.round();
    s.round();
    s.v0 ^= last;
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) {
        s.round();
    }
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

} // namespace ephemera
