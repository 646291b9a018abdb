// The flows the load generator plays: S subscribers x F flows each, and the servers they talk
// to. Every tuple is a pure function of (flow id, generation), so a received packet is checked
// against what was sent without storing tuples: 16 M flows cost only their small records.
//
//   flow f           subscriber s = f / F, its j-th flow j = f % F
//   subscriber addr  100.64.1.0 + s                      (RFC 6598 shared space; 100.64.0.1 is
//                                                          the NAT's inside gateway)
//   subscriber port  1024 + (kPortStep * (j + g * F) + offset(s)) mod 64512
//                    a bijection on 1024..65535 per subscriber, so the flows of one subscriber
//                    never share a port while j + g * F < 64512; pseudo-random, as RFC 9693
//                    asks for ("pseudorandom port numbers"), not sequential
//   generation g     0 at start; churn bumps it, giving the flow a new source port and so a
//                    new session in the NAT
//   server           198.18.16.0 + hash(f) mod servers, port 1024 + hash'(f) mod 64512
//                    (RFC 2544 benchmarking space)
//   protocol         UDP, TCP, or mixed: even j UDP, odd j TCP
#pragma once

#include <cstdint>
#include <string_view>

namespace loadgen {

enum class Proto : std::uint8_t { tcp = 6, udp = 17 };
enum class ProtoMix : std::uint8_t { udp, tcp, mix };

constexpr std::string_view proto_mix_name(ProtoMix m) {
    switch (m) {
    case ProtoMix::udp:
        return "udp";
    case ProtoMix::tcp:
        return "tcp";
    case ProtoMix::mix:
        break;
    }
    return "mix";
}

// Host byte order throughout.
struct Tuple {
    std::uint32_t sub_addr;
    std::uint32_t server_addr;
    std::uint16_t sub_port;
    std::uint16_t server_port;
    Proto proto;
};

// Division and remainder by a divisor fixed at start, without a divide instruction (Lemire,
// Kaser, Kurz, "Faster remainder by direct computation", 2019): exact for every 32-bit
// numerator. A hardware divide costs 25-40 cycles and a tuple needs three of them.
class FastDiv {
public:
    explicit FastDiv(std::uint32_t d) : d_(d), m_(d > 1 ? ~std::uint64_t{0} / d + 1 : 0) {}
    [[nodiscard]] std::uint32_t div(std::uint32_t a) const {
        return d_ == 1 ? a : static_cast<std::uint32_t>(mul_hi(m_, a));
    }
    [[nodiscard]] std::uint32_t mod(std::uint32_t a) const {
        return d_ == 1 ? 0 : static_cast<std::uint32_t>(mul_hi(m_ * a, d_));
    }
    [[nodiscard]] std::uint32_t divisor() const { return d_; }

private:
    __extension__ using u128 = unsigned __int128;
    static std::uint64_t mul_hi(std::uint64_t a, std::uint64_t b) {
        return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
    }
    std::uint32_t d_;
    std::uint64_t m_;
};

// The murmur3 finaliser with a seed: cheap, and its output bits do not line up with ephemera's
// subscriber hash (a different input), so flows do not cluster on one worker or one server.
constexpr std::uint32_t mix32(std::uint32_t h, std::uint32_t seed) {
    h ^= seed;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

class FlowModel {
public:
    static constexpr std::uint32_t kSubscriberBase = (100u << 24) | (64u << 16) | (1u << 8);
    static constexpr std::uint32_t kServerBase = (198u << 24) | (18u << 16) | (16u << 8);
    static constexpr std::uint32_t kPortBase = 1024;
    static constexpr std::uint32_t kPortSpan = 65536 - kPortBase; // 64512 = 2^10 * 3^2 * 7
    // Coprime to 64512 (odd, not a multiple of 3 or 7): x -> kPortStep * x mod 64512 is a
    // bijection.
    static constexpr std::uint32_t kPortStep = 25033;
    static_assert(kPortStep % 2 != 0 && kPortStep % 3 != 0 && kPortStep % 7 != 0);

    FlowModel(std::uint32_t subscribers, std::uint32_t flows_per_subscriber, std::uint32_t servers,
              ProtoMix mix)
        : subscribers_(subscribers), per_sub_(flows_per_subscriber), servers_(servers), mix_(mix),
          per_sub_div_(flows_per_subscriber), servers_div_(servers) {}

    [[nodiscard]] std::uint32_t subscribers() const { return subscribers_; }
    [[nodiscard]] std::uint32_t flows_per_subscriber() const { return per_sub_; }
    [[nodiscard]] std::uint32_t servers() const { return servers_; }
    [[nodiscard]] std::uint32_t flows() const { return subscribers_ * per_sub_; }
    [[nodiscard]] ProtoMix mix() const { return mix_; }

    [[nodiscard]] std::uint32_t subscriber_of(std::uint32_t flow) const {
        return per_sub_div_.div(flow);
    }
    [[nodiscard]] std::uint32_t subscriber_addr(std::uint32_t sub) const {
        return kSubscriberBase + sub;
    }

    [[nodiscard]] Proto proto(std::uint32_t flow) const {
        switch (mix_) {
        case ProtoMix::udp:
            return Proto::udp;
        case ProtoMix::tcp:
            return Proto::tcp;
        case ProtoMix::mix:
            break;
        }
        return per_sub_div_.mod(flow) % 2 == 0 ? Proto::udp : Proto::tcp;
    }

    [[nodiscard]] std::uint16_t sub_port(std::uint32_t flow, std::uint16_t gen) const {
        const std::uint32_t sub = per_sub_div_.div(flow);
        const std::uint64_t x =
            std::uint64_t{per_sub_div_.mod(flow)} + std::uint64_t{gen} * per_sub_;
        const std::uint32_t offset = mix32(sub, 0x5eed0001u) % kPortSpan;
        return static_cast<std::uint16_t>(
            kPortBase + (std::uint64_t{kPortStep} * (x % kPortSpan) + offset) % kPortSpan);
    }

    [[nodiscard]] Tuple tuple(std::uint32_t flow, std::uint16_t gen) const {
        const std::uint32_t h = mix32(flow, 0x5eed0002u);
        return Tuple{subscriber_addr(per_sub_div_.div(flow)), kServerBase + servers_div_.mod(h),
                     sub_port(flow, gen),
                     static_cast<std::uint16_t>(kPortBase + (h >> 8) % kPortSpan), proto(flow)};
    }

private:
    std::uint32_t subscribers_;
    std::uint32_t per_sub_;
    std::uint32_t servers_;
    ProtoMix mix_;
    FastDiv per_sub_div_;
    FastDiv servers_div_;
};

// What the subscriber side keeps per flow (written by the subscriber role's lcore only).
struct SubscriberFlow {
    std::uint32_t tx_seq = 0;  // sequence number of the last packet sent (first packet: 1)
    std::uint32_t rx_last = 0; // sequence number of the last reply received (0: none yet)
    std::uint16_t gen = 0;     // current source-port generation
    std::uint16_t flags = 0;   // kEstablished: a reply of the current generation has arrived
    static constexpr std::uint16_t kEstablished = 1;
};
static_assert(sizeof(SubscriberFlow) == 12);

// What the server side keeps per flow (written by the server role's lcore only): the external
// endpoint the NAT gave this flow's generation, to check that a mapping never moves while used.
struct ServerFlow {
    std::uint32_t ext_addr = 0;
    std::uint16_t ext_port = 0; // 0: not seen yet for ext_gen
    std::uint16_t ext_gen = 0;
};
static_assert(sizeof(ServerFlow) == 8);

// A full-period walk over [0, n): i -> (i + stride) mod n with gcd(stride, n) = 1. Consecutive
// packets go to flows far apart, so at 16 M flows every packet touches cold table lines in the
// NAT (and in our own records), as RFC 9693's pseudo-random traffic does.
class FlowWalk {
public:
    explicit FlowWalk(std::uint32_t n) : n_(n), stride_(pick_stride(n)) {}
    std::uint32_t next() {
        const std::uint32_t f = pos_;
        pos_ += stride_;
        if (pos_ >= n_) {
            pos_ -= n_;
        }
        return f;
    }

private:
    static std::uint32_t gcd(std::uint32_t a, std::uint32_t b) {
        while (b != 0) {
            const std::uint32_t t = a % b;
            a = b;
            b = t;
        }
        return a;
    }
    static std::uint32_t pick_stride(std::uint32_t n) {
        if (n <= 2) {
            return 1;
        }
        // Near the golden ratio of n: well spread, and found within a few steps.
        auto s = static_cast<std::uint32_t>(static_cast<double>(n) * 0.6180339887) | 1u;
        while (gcd(s, n) != 1) {
            s += 2;
        }
        return s % n;
    }

    std::uint32_t n_;
    std::uint32_t stride_;
    std::uint32_t pos_ = 0;
};

} // namespace loadgen
