// The translator under test and the network around it, shared by the translator and
// lifecycle tests: frames built in buffers, parsed, handed to Translator::in2out / out2in as
// PacketRefs, with a clock the test drives.
#pragma once

#include "packet_builder.hpp"

#include "ephemera/config.hpp"
#include "ephemera/counters.hpp"
#include "ephemera/ownership.hpp"
#include "ephemera/packet.hpp"
#include "ephemera/translator.hpp"
#include "ephemera/worker_plan.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

namespace ephemera::nat_test {

using test::Frame;
using test::FrameSpec;

// ---- the network around the NAT -----------------------------------------------------------

inline const MacAddr kInsidePortMac = test::mac(0x02, 0, 0, 0, 0xa0, 0x01);
inline const MacAddr kOutsidePortMac = test::mac(0x02, 0, 0, 0, 0xb0, 0x01);
inline const MacAddr kNextHopMac = test::mac(0x02, 0, 0, 0, 0xb0, 0xfe);
inline const L2Context kL2{kInsidePortMac, kOutsidePortMac, kNextHopMac};

inline const Ipv4Addr kC{100, 64, 0, 10};  // subscriber C
inline const Ipv4Addr kC2{100, 64, 0, 11}; // subscriber C2
inline const MacAddr kCMac = test::mac(0x02, 0, 0, 0, 0x01, 0x0a);
inline const MacAddr kC2Mac = test::mac(0x02, 0, 0, 0, 0x01, 0x0b);
inline const Ipv4Addr kA1{198, 19, 0, 1};  // server S, first address
inline const Ipv4Addr kA2{198, 19, 0, 2};  // server S, second address
inline const Ipv4Addr kX{198, 18, 0, 100}; // the pool's first address

inline constexpr SipKey kSecret{0x5eed5eed5eed5eedull, 0x0123456789abcdefull};

inline Config make_config(std::vector<Ipv4Addr> pool = {kX}, PortRange range = {49152, 65535},
                          FilteringMode filtering = FilteringMode::endpoint_independent,
                          std::uint32_t max_sessions = 4096) {
    Config c;
    c.source = "translator_test";
    c.pool = std::move(pool);
    c.port_range = range;
    c.filtering = filtering;
    c.limits.max_sessions = max_sessions;
    return c;
}

inline std::vector<Ipv4Addr> pool_of(std::size_t n) {
    std::vector<Ipv4Addr> pool;
    for (std::size_t i = 0; i < n; ++i) {
        pool.emplace_back(kX.value() + static_cast<std::uint32_t>(i));
    }
    return pool;
}

struct Endpoint {
    Ipv4Addr addr;
    std::uint16_t port = 0;
    bool operator==(const Endpoint&) const = default;
    bool operator<(const Endpoint& o) const {
        return addr != o.addr ? addr < o.addr : port < o.port;
    }
};
inline void PrintTo(const Endpoint& e, std::ostream* os) {
    *os << e.addr.to_string() << ":" << e.port;
}

inline Endpoint source_of(const Frame& f) {
    return {test::ip_src(f), test::ip_proto(f) == 1 ? test::icmp_id(f) : test::l4_sport(f)};
}
inline Endpoint destination_of(const Frame& f) {
    return {test::ip_dst(f), test::ip_proto(f) == 1 ? test::icmp_id(f) : test::l4_dport(f)};
}

// A frame from the inside: subscriber MAC to our inside port.
inline FrameSpec inside(FrameSpec s, const MacAddr& from = kCMac) {
    s.src_mac = from;
    s.dst_mac = kInsidePortMac;
    return s;
}
inline FrameSpec udp_from(Ipv4Addr c, std::uint16_t sport, Ipv4Addr server, std::uint16_t dport) {
    return inside(test::udp_spec(c, sport, server, dport), c == kC2 ? kC2Mac : kCMac);
}

// The server's answer to `out`, which left the NAT as `ext`.
inline FrameSpec reply_to(const FrameSpec& out, Endpoint ext) {
    FrameSpec r = out;
    r.src_mac = kNextHopMac;
    r.dst_mac = kOutsidePortMac;
    r.src = out.dst;
    r.src_port = out.dst_port;
    r.dst = ext.addr;
    r.dst_port = ext.port;
    if (out.proto == Protocol::icmp) {
        r.icmp_type = kIcmpEchoReply;
        r.icmp_id = ext.port;
    }
    r.payload = {'r', 'e', 'p', 'l', 'y'};
    return r;
}
inline FrameSpec from_outside(Protocol proto, Endpoint remote, Endpoint ext) {
    FrameSpec s;
    s.proto = proto;
    s.src_mac = kNextHopMac;
    s.dst_mac = kOutsidePortMac;
    s.src = remote.addr;
    s.src_port = remote.port;
    s.dst = ext.addr;
    s.dst_port = ext.port;
    s.icmp_type = kIcmpEchoReply;
    s.icmp_id = ext.port;
    return s;
}

// ---- the clock ------------------------------------------------------------------------------

inline constexpr Tick kT0 = 16; // the harness's default "now"
constexpr Tick sec(std::uint32_t s) {
    return s * kTicksPerSecond;
}

// Runs expiry until nothing more is due at `now`.
inline void expire_all(Translator& t, Tick now) {
    while (t.expire(now, 1000) != 0) {
    }
}

// ---- counters -----------------------------------------------------------------------------

using Counts = std::map<Counter, std::uint64_t>;

// Every counter has the expected value; counters not named must be zero.
inline ::testing::AssertionResult counters_are(const CounterBlock& block, const Counts& expected) {
    std::ostringstream bad;
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        const auto c = static_cast<Counter>(i);
        const auto it = expected.find(c);
        const std::uint64_t want = it == expected.end() ? 0 : it->second;
        if (block.get(c) != want) {
            bad << " " << counter_name(c) << "=" << block.get(c) << " (expected " << want << ")";
        }
    }
    if (bad.str().empty()) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "counters:" << bad.str();
}

// ---- the translator under test ------------------------------------------------------------

inline constexpr auto kUnset = static_cast<Verdict>(0xee);

class Nat {
public:
    explicit Nat(const Config& config, WorkerId workers = 1, WorkerId worker = 0,
                 SipKey secret = kSecret, Tick start = 0)
        : config_(config), ownership_(Ownership::for_config(config, workers)), worker_(worker),
          compiler_(ownership_, worker), plans_(first_plan(compiler_, config)),
          translator_(*plans_.back(), ownership_, worker, secret, counters_, -1, start) {}

    // A new config, as the control thread would publish it: compiled into a plan here (kept
    // alive for the test's life) and taken up by the translator.
    void reconfigure(const Config& config) {
        plans_.push_back(
            compiler_.compile(std::make_shared<const Config>(config), plans_.back().get()));
        translator_.apply(*plans_.back());
    }

    // Room after each frame for a reply longer than the packet (an ICMP error), as an mbuf
    // has; 0 gives the translator no more than the frame itself.
    void set_headroom_for_replies(std::size_t bytes) { reply_room_ = bytes; }
    // The checksums both ports compute on transmit: the translator leaves them to the port.
    void set_tx_checksums(TxChecksums port) { l2_.tx_checksums = port; }
    // What the last burst's packets left to the port, packet by packet.
    const std::vector<TxChecksums>& tx_checksums_left() const { return left_; }

    // One burst through the translator. Every frame must parse as IPv4; a dropped frame must
    // come back untouched, and every packet gets a verdict.
    std::vector<Verdict> burst(std::vector<Frame>& frames, bool in2out, Tick now = 16) {
        std::vector<PacketRef> refs;
        const std::vector<Frame> before = frames;
        for (Frame& f : frames) {
            const ParsedPacket parsed = parse_frame(f);
            EXPECT_EQ(parsed.kind, FrameKind::ipv4) << counter_name(parsed.drop_reason);
            const auto length = static_cast<std::uint16_t>(f.size());
            f.resize(f.size() + reply_room_);
            refs.push_back(PacketRef{f.data(), length,
                                     static_cast<std::uint16_t>(length + reply_room_), parsed});
        }
        std::vector<Verdict> verdicts(frames.size(), kUnset);
        if (in2out) {
            translator_.in2out(refs, now, l2_, verdicts);
        } else {
            translator_.out2in(refs, now, l2_, verdicts);
        }
        left_.clear();
        for (const PacketRef& r : refs) {
            left_.push_back(r.tx_checksums);
        }
        for (std::size_t i = 0; i < frames.size(); ++i) {
            const bool rewritten = verdicts[i] == Verdict::reply || verdicts[i] == Verdict::hairpin;
            frames[i].resize(rewritten ? refs[i].length : frames[i].size() - reply_room_);
            EXPECT_TRUE(verdicts[i] == Verdict::forward || verdicts[i] == Verdict::drop ||
                        verdicts[i] == Verdict::reply || verdicts[i] == Verdict::hairpin)
                << "packet " << i << " got no verdict";
            if (verdicts[i] == Verdict::drop) {
                EXPECT_EQ(frames[i], before[i]) << "dropped packet " << i << " was modified";
            }
        }
        return verdicts;
    }
    Verdict in2out(Frame& f, Tick now = 16) { return one(f, true, now); }
    Verdict out2in(Frame& f, Tick now = 16) { return one(f, false, now); }

    // Sends `spec` from the inside; returns the external endpoint it left with (or nullopt
    // when dropped).
    std::optional<Endpoint> send_out(const FrameSpec& spec, Tick now = 16) {
        Frame f = test::build_frame(spec);
        if (in2out(f, now) != Verdict::forward) {
            return std::nullopt;
        }
        return source_of(f);
    }
    // Sends `spec` from the outside; returns where it was delivered inside (or nullopt).
    std::optional<Endpoint> send_in(const FrameSpec& spec, Tick now = 16) {
        Frame f = test::build_frame(spec);
        if (out2in(f, now) != Verdict::forward) {
            return std::nullopt;
        }
        return destination_of(f);
    }

    const CounterBlock& counters() const { return counters_; }
    Translator& translator() { return translator_; }

    // The k-th subscriber address from kC upwards that this worker owns: with several
    // workers, a worker only ever sees its own subscribers (debug builds assert it).
    Ipv4Addr owned_subscriber(std::uint32_t k) const {
        std::uint32_t a = kC.value();
        for (std::uint32_t found = 0;; ++a) {
            if (ownership_.subscriber_owner(Ipv4Addr{a}) == worker_ && found++ == k) {
                return Ipv4Addr{a};
            }
        }
    }

    std::vector<MappingView> mappings() const {
        std::vector<MappingView> out(translator_.live_mappings() + 8);
        out.resize(translator_.snapshot_mappings(out));
        return out;
    }

private:
    Verdict one(Frame& f, bool in2out, Tick now) {
        std::vector<Frame> frames{f};
        const Verdict v = burst(frames, in2out, now)[0];
        f = frames[0];
        return v;
    }

    static std::vector<std::unique_ptr<WorkerPlan>> first_plan(const PlanCompiler& compiler,
                                                               const Config& config) {
        std::vector<std::unique_ptr<WorkerPlan>> plans;
        plans.push_back(compiler.compile(std::make_shared<const Config>(config), nullptr));
        return plans;
    }

    std::size_t reply_room_ = 0;
    L2Context l2_ = kL2;
    std::vector<TxChecksums> left_;
    Config config_;
    Ownership ownership_;
    WorkerId worker_;
    PlanCompiler compiler_;
    std::vector<std::unique_ptr<WorkerPlan>> plans_;
    CounterBlock counters_;
    Translator translator_;
};

} // namespace ephemera::nat_test
