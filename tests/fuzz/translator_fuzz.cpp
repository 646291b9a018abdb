// libFuzzer target: ephemera's whole dataplane (parse, ARP, pings to the gateway and the pool,
// translation both ways, sessions and their timers, held SYNs, ICMP errors quoting earlier
// flows, hairpins, fragments, splitting for the MTU, handoff between workers, telemetry
// requests and runtime config changes), driven by frame sequences decoded from the input and
// checked on every frame it sends and on the state it keeps (world.hpp says what and how).
//
// The input is a sequence of records, read front to back (past the end every byte reads 0).
// Each starts with an op byte whose low 4 bits pick the kind; the kinds that cost far more
// than a frame (clock, telemetry, config change) get one value of 16 each. Frame records
// (inside, outside, raw, ARP) then have a byte whose bits 0-2 pick a variant and bits 3-4 the
// worker whose RX queue gets the frame (the NIC's choice).
//
//   0-5  inside frame    how, flow, src, dst, sport(2), dport(2), ttl, flags, tcp, len, seed,
//                        [extras]; the variant picks a new flow, one sent before, a hairpin,
//                        a ping, an ICMP error quoting what a subscriber got
//   6-9  outside frame   the same fields; the variant picks what the frame answers or quotes
//   10   raw frame       how, length(2), bytes; variant bit 0: outside, 1: our MAC, 2: fix the
//                        IP checksum
//   11   ARP             how, op, sender, target, MAC; variant bit 0: outside
//   12   burst           the next N frame records arrive together (one rx burst)
//   13   clock           how far to advance (1/16 s to 2 h 40 min)
//   14   telemetry       kind, filter, worker: a mailbox request, checked
//   15   config change   which (world.cpp kEdits), published as the control thread does
//
// Most frames are valid (right checksums, addresses from the subscriber, pool and server
// ranges, ports of flows seen before) with fields the input picks or breaks, so that sessions
// are made and answers, errors and hairpins reach them; raw frames let anything else in.
// tests/fuzz/seeds.py writes the seed corpus in this format.
#include "frames.hpp"
#include "world.hpp"

#include <rte_eal.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

using namespace ephemera;
using namespace ephemera::fuzz;

namespace {

constexpr std::size_t kMaxRecords = 512;
constexpr std::uint64_t kReportEvery = 50000; // inputs
// Per input, bounds on what costs far more than a frame: a config change or a telemetry request
// waits up to 64 poll rounds for the workers' housekeeping, and every tick of clock is a slot of
// each worker's timer wheel to walk. 3 h of clock lets every timeout run out.
constexpr int kMaxConfigChanges = 4;
constexpr int kMaxTelemetryRequests = 4;
constexpr Tick kMaxClockPerInput = 3 * 3600 * kTicksPerSecond;
constexpr std::size_t kMaxFrame = 2040;
constexpr std::uint32_t kGateway = 0x64400001; // 100.64.0.1
constexpr std::uint32_t kNextHop = 0xc6130001; // 198.19.0.1
constexpr MacAddr kRouterMac{{0x02, 0, 0, 0, 0, 0xfe}};
constexpr MacAddr kStrangerMac{{0x02, 0, 0, 0, 0, 0x99}};
constexpr MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

// Reads the input front to back; past its end every read is zero.
class Reader {
public:
    Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    [[nodiscard]] bool done() const { return at_ >= size_; }
    std::uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
    std::span<const std::uint8_t> bytes(std::size_t n) {
        const std::size_t take = std::min(n, size_ - std::min(at_, size_));
        const std::span<const std::uint8_t> out(data_ + at_, take);
        at_ += take;
        return out;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

struct Harness {
    std::unique_ptr<Platform> platform;
    std::unique_ptr<World> world;
    std::uint64_t incarnation = 0;
    std::uint64_t inputs_in_world = 0;
    std::uint64_t inputs_per_world = kInputsPerWorld;
    bool fresh = false;
};
Harness* g_harness = nullptr;

// ---- addresses, ports, payloads ----------------------------------------------------------

// A subscriber: mostly one of 12 (so that limits bite), sometimes any in 100.64.0.0/10, or
// something no subscriber should be.
std::uint32_t subscriber(std::uint8_t s) {
    if (s < 0xc0) {
        return 0x6440000a + s % 12; // 100.64.0.10 ..
    }
    if (s < 0xe0) {
        return 0x64400000 | std::uint32_t{s} << 14 | s; // elsewhere in 100.64.0.0/10
    }
    if (s < 0xf0) {
        return 0xcb007100 | s; // 203.0.113.x: a public address from inside
    }
    constexpr std::uint32_t kOdd[] = {0x00000000, 0x7f000001, 0xe0000001, 0xffffffff,
                                      kGateway,   0xc613000a, kNextHop,   0x64400000};
    return kOdd[s % 8];
}

// Someone outside: mostly one of 8 servers in 198.18.0.0/15.
std::uint32_t remote(std::uint8_t s) {
    if (s < 0xd0) {
        return 0xc6120001 + s % 8; // 198.18.0.1 ..
    }
    if (s < 0xf0) {
        return 0xc6120000 | std::uint32_t{s} << 8 | s;
    }
    // Never a subscriber's address: what goes out to one of those is a finding.
    constexpr std::uint32_t kOdd[] = {0x00000000, 0x7f000001, 0xe0000001, 0xffffffff,
                                      kNextHop,   0x0a000001, 0x08080808, 0xc613ffff};
    return kOdd[s % 8];
}

std::uint32_t pool_address(const World& w, std::uint8_t s) {
    const auto& pool = w.config().pool;
    return pool[s % pool.size()].value();
}

// A destination for a subscriber's packet: a server, a pool address (hairpin), the gateway.
std::uint32_t destination(const World& w, std::uint8_t s) {
    if (s < 0xb0) {
        return remote(s);
    }
    if (s < 0xd0) {
        return pool_address(w, s);
    }
    if (s < 0xd8) {
        return kGateway;
    }
    if (s < 0xe0) {
        return subscriber(s); // to another subscriber directly
    }
    return remote(s);
}

// A port: a well-known one, one in or near the pool's range, one near `near`, or any.
std::uint16_t port(std::uint16_t v, std::uint16_t near) {
    constexpr std::uint16_t kCommon[] = {53, 80, 443, 1024, 0, 5000, 5060, 40000};
    switch (v >> 14) {
    case 0:
        return kCommon[v % 8];
    case 1:
        return static_cast<std::uint16_t>(1000 + (v & 0x3fff) % 300); // around 1024-1279
    case 2:
        return static_cast<std::uint16_t>(near + (v & 15) - 8);
    default:
        return v;
    }
}

MacAddr subscriber_mac(std::uint32_t addr) {
    return MacAddr{{0x02, 0x64, static_cast<std::uint8_t>(addr >> 16),
                    static_cast<std::uint8_t>(addr >> 8), static_cast<std::uint8_t>(addr), 0x01}};
}

std::size_t payload_length(std::uint8_t v) {
    if (v < 0x80) {
        return v % 48;
    }
    if (v < 0xc0) {
        return std::size_t{v - 0x80u} * 16; // up to 1008
    }
    if (v < 0xf0) {
        return 1300 + std::size_t{v - 0xc0u} * 8; // over the outside MTU, up to 1676
    }
    return 1900 + std::size_t{v & 0x0fu} * 8; // the largest frames a buffer holds
}

Bytes payload(std::size_t n, std::uint8_t seed) {
    Bytes p(n);
    for (std::size_t i = 0; i < n; ++i) {
        p[i] = static_cast<std::uint8_t>(seed + i * 7);
    }
    return p;
}

// ---- structured frames -------------------------------------------------------------------

// The fields every structured frame record carries after its flow choice.
struct Shape {
    std::uint8_t ttl = 64;
    bool df = false;
    bool fragment = false;
    bool options = false;
    bool corrupt = false;
    bool bad_l4 = false;
    bool broadcast = false;
    bool stranger = false;
    std::uint8_t tcp = 0; // TCP flags; for ICMP the sequence number's low byte
    std::size_t length = 0;
    std::uint8_t seed = 0;
};

Shape read_shape(Reader& r) {
    Shape s;
    const std::uint8_t ttl = r.u8();
    s.ttl = ttl < 0xe0 ? 64 : static_cast<std::uint8_t>(ttl & 3);
    const std::uint8_t flags = r.u8();
    s.df = (flags & 0x01) != 0;
    s.fragment = (flags & 0x02) != 0;
    s.options = (flags & 0x04) != 0;
    s.corrupt = (flags & 0x08) != 0;
    s.bad_l4 = (flags & 0x10) != 0;
    s.broadcast = (flags & 0x20) != 0;
    s.stranger = (flags & 0x40) != 0;
    s.tcp = r.u8();
    s.length = payload_length(r.u8());
    s.seed = r.u8();
    return s;
}

// The L4 segment (header and payload) of a flow's packet.
Bytes segment(const Flow& f, const Shape& s, std::uint8_t icmp_type) {
    const Bytes data = payload(s.length, s.seed);
    switch (f.proto) {
    case kUdp:
        return udp_segment(f.src, f.dst, f.sport, f.dport, data);
    case kTcp:
        return tcp_segment(f.src, f.dst, f.sport, f.dport, s.tcp, std::uint32_t{s.seed} << 20,
                           data);
    case kIcmp:
        return icmp_echo(icmp_type, f.sport, s.tcp, data);
    default:
        return data; // a protocol ephemera does not translate
    }
}

// IP options: padding, a copied option (kept in every piece) or one that is not, or junk.
Bytes options(std::uint8_t v) {
    switch (v % 4) {
    case 0:
        return {1, 1, 1, 0};
    case 1:
        return {0x82, 4, 0, 0}; // copied flag set
    case 2:
        return {7, 7, 4, 0, 0, 0, 0, 0}; // record route, not copied
    default:
        return {v, static_cast<std::uint8_t>(v >> 3), v, v};
    }
}

// Builds the frame for flow `f`, adds it to the world and remembers inside flows.
void send_flow(Reader& r, World& world, Side side, unsigned queue, const Flow& f, const Shape& s,
               std::uint8_t icmp_type) {
    Ipv4Spec ip;
    ip.dst_mac = s.broadcast ? kBroadcast : s.stranger ? kStrangerMac : world.mac(side);
    ip.src_mac = side == Side::inside ? subscriber_mac(f.src) : kRouterMac;
    ip.ttl = s.ttl;
    ip.proto = f.proto;
    ip.df = s.df;
    ip.src = f.src;
    ip.dst = f.dst;
    ip.id = static_cast<std::uint16_t>(s.seed);
    Bytes l4 = segment(f, s, icmp_type);
    if (s.bad_l4 && l4.size() >= 8) {
        l4[f.proto == kTcp && l4.size() >= 18 ? 17 : f.proto == kUdp ? 7 : 3] ^= 0x5a;
    }
    if (s.fragment) {
        // A piece of the datagram: offset and length in 8-byte units, a few ids, so that
        // pieces of one datagram meet across records.
        const std::uint8_t at = r.u8();
        const std::uint8_t how = r.u8();
        ip.id = static_cast<std::uint16_t>(0x4000 + (how >> 1 & 3));
        const std::size_t size = l4.size();
        const std::size_t offset =
            std::min<std::size_t>(std::size_t{at} * 8, size & ~std::size_t{7});
        std::size_t length = size - offset;
        ip.mf = (how & 1) != 0;
        if (ip.mf) {
            length = std::min(length, ((std::size_t{how} >> 3) + 1) * 8);
            if (length % 8 != 0 && offset + length == size) {
                ip.mf = false; // the last piece
            }
        }
        ip.offset = static_cast<std::uint16_t>(offset);
        l4 = Bytes(l4.begin() + static_cast<std::ptrdiff_t>(offset),
                   l4.begin() + static_cast<std::ptrdiff_t>(offset + length));
    }
    if (s.options) {
        ip.options = options(r.u8());
    }
    Bytes frame = ipv4_frame(ip, l4);
    if (s.corrupt) {
        const std::uint16_t at = r.u16();
        const std::uint8_t mask = r.u8();
        frame[at % frame.size()] ^= mask == 0 ? 0x01 : mask;
        if ((at & 0x8000) != 0) {
            refresh_ip_checksum(frame);
        }
    }
    if (frame.size() > kMaxFrame) {
        frame.resize(kMaxFrame);
    }
    world.add(side, queue, frame);
    if (side == Side::inside && !s.fragment &&
        (f.proto == kUdp || f.proto == kTcp || (f.proto == kIcmp && icmp_type == 8))) {
        world.remember_inside(f);
    }
}

// An ICMP error about `about` (a packet ephemera sent, as the far side got it), from `from`
// to `to`: the kind of error and how much is quoted come from the input.
void send_error(Reader& r, World& world, Side side, unsigned queue, const Flow& about,
                std::uint32_t from, std::uint32_t to) {
    const std::uint8_t kind = r.u8();
    const std::uint8_t quote = r.u8();
    const Shape s = read_shape(r);
    std::uint8_t type = 3;
    std::uint8_t code = kind >> 3 & 15;
    switch (kind % 8) {
    case 4:
        type = 11;
        code = 0;
        break;
    case 5:
        type = 12;
        break;
    case 6:
        type = 4; // source quench: not translated
        break;
    case 7:
        type = 3;
        code = 4; // fragmentation needed
        break;
    default:
        break;
    }
    const std::size_t ihl = about.quote_len != 0 ? std::size_t{about.quote[0] & 0x0fu} * 4 : 20;
    std::size_t len = about.quote_len;
    switch (quote % 4) {
    case 0:
        len = ihl + 8;
        break;
    case 1:
        len = ihl + 20; // a TCP checksum in the quote
        break;
    case 2:
        break; // all that was kept
    default:
        len = ihl + (quote >> 2) % 8; // too short to name a flow
        break;
    }
    Bytes body(about.quote.begin(),
               about.quote.begin() + std::min<std::size_t>(len, about.quote_len));
    if ((quote & 0x80) != 0 && body.size() > ihl + 3) {
        body[ihl + 1] ^= 1; // another port than the one ephemera sent from or to
    }
    const Bytes l4 = icmp_message(type, code, type == 3 && code == 4 ? 576 : 0, body);
    Ipv4Spec ip;
    ip.dst_mac = s.broadcast ? kBroadcast : world.mac(side);
    ip.src_mac = side == Side::inside ? subscriber_mac(from) : kRouterMac;
    ip.ttl = s.ttl;
    ip.proto = kIcmp;
    ip.src = from;
    ip.dst = to;
    Bytes frame = ipv4_frame(ip, l4);
    if (s.bad_l4) {
        frame[kEthLen + 20 + 2] ^= 0x5a;
    }
    if (s.corrupt && frame.size() > kEthLen + 28) {
        frame[kEthLen + 28 + s.seed % (frame.size() - kEthLen - 28)] ^= 0x10; // the quote
    }
    world.add(side, queue, frame);
}

void inside_frame(Reader& r, World& world, std::uint8_t variant, unsigned queue) {
    const std::uint8_t flow = r.u8();
    const std::uint8_t src = r.u8();
    const std::uint8_t dst = r.u8();
    const std::uint16_t sport = r.u16();
    const std::uint16_t dport = r.u16();
    const FlowMemory& mine = world.inside_flows();
    const FlowMemory& back = world.sent(Side::inside); // what subscribers got from outside
    const FlowMemory& out = world.sent(Side::outside); // external endpoints in use
    Flow f;
    std::uint8_t icmp_type = 8;
    if (variant == 4 && back.size() != 0) {
        // A subscriber's ICMP error about a packet it got (R:r -> I:i), to its sender.
        const Flow& about = back[flow % back.size()];
        send_error(r, world, Side::inside, queue, about, about.dst, about.src);
        return;
    }
    if (variant == 5 && out.size() != 0) {
        // Hairpin: to another subscriber's (or its own) external endpoint.
        const Flow& e = out[flow % out.size()];
        f = Flow{e.proto, subscriber(src), e.src, port(sport, e.dport), e.sport};
    } else if (variant == 6) {
        // A ping to the gateway or to a pool address (which hairpins).
        f = Flow{kIcmp, subscriber(src), (dst & 1) != 0 ? pool_address(world, dst) : kGateway,
                 sport, sport};
    } else if ((variant == 7 || flow < 0x80) && mine.size() != 0) {
        // A flow sent before (a session hit), perhaps with one field changed.
        f = mine[flow % mine.size()];
        switch (dst >> 6) {
        case 1:
            f.sport = port(sport, f.sport);
            break;
        case 2:
            f.dport = port(dport, f.dport);
            break;
        case 3:
            f.dst = destination(world, src);
            break;
        default:
            break;
        }
    } else {
        constexpr std::uint8_t kProtos[] = {kUdp, kTcp, kIcmp, kUdp, kTcp, kIcmp, kUdp, 47};
        f.proto = kProtos[flow % 8];
        f.src = subscriber(src);
        f.dst = destination(world, dst);
        f.sport = port(sport, 1024);
        f.dport = f.proto == kIcmp ? f.sport : port(dport, 1024);
    }
    if (f.proto == kIcmp) {
        f.dport = f.sport;
    }
    const Shape s = read_shape(r);
    if (f.proto == kIcmp && (s.tcp & 0xc0) == 0xc0) {
        icmp_type = 0; // an echo reply from inside: only requests open a mapping
    }
    send_flow(r, world, Side::inside, queue, f, s, icmp_type);
}

void outside_frame(Reader& r, World& world, std::uint8_t variant, unsigned queue) {
    const std::uint8_t pick = r.u8();
    const std::uint8_t src = r.u8();
    const std::uint8_t dst = r.u8();
    const std::uint16_t sport = r.u16();
    const std::uint16_t dport = r.u16();
    const FlowMemory& out = world.sent(Side::outside);
    Flow f;
    std::uint8_t icmp_type = 0;
    if (out.size() != 0 && variant < 4) {
        const Flow& e = out[pick % out.size()]; // E:e -> R:r as the server got it
        if (variant == 2) {
            // An ICMP error about it from the server or a router on the way.
            send_error(r, world, Side::outside, queue, e, (src & 1) != 0 ? remote(src) : e.dst,
                       e.src);
            return;
        }
        // The answer R:r -> E:e, perhaps from another port or address (filtering).
        f = Flow{e.proto, e.dst, e.src, e.dport, e.sport};
        switch (dst >> 5) {
        case 1:
            f.sport = port(sport, f.sport);
            break;
        case 2:
            f.src = remote(src);
            break;
        case 3:
            f.dport = port(dport, f.dport);
            break;
        default:
            break;
        }
    } else if (variant == 4) {
        // A ping to a pool address.
        f = Flow{kIcmp, remote(src), pool_address(world, dst), sport, sport};
        icmp_type = 8;
    } else {
        // Unsolicited: anything to a pool address (SYNs get held, RFC 5382 REQ-4).
        constexpr std::uint8_t kProtos[] = {kUdp, kTcp, kTcp, kIcmp, kUdp, kTcp, kIcmp, 47};
        f.proto = kProtos[pick % 8];
        f.src = remote(src);
        f.dst = (dst & 0xf0) == 0xf0 ? remote(dst) : pool_address(world, dst);
        f.sport = port(sport, 40000);
        f.dport = port(dport, 1100);
        icmp_type = (pick & 0x80) != 0 ? 8 : 0;
        if ((dst & 0xf0) == 0xe0) {
            // A static entry's endpoint (world.cpp's base config): a forward, or any port of
            // the 1:1 address; reached with no outbound packet before it.
            struct StaticTarget {
                std::uint8_t proto;
                std::uint32_t addr;
                std::uint16_t port; // 0: any
            };
            constexpr StaticTarget kStatic[] = {{kUdp, 0xc613000a, 5000}, {kTcp, 0xc613000b, 1000},
                                                {kTcp, 0xc613000c, 6000}, {kTcp, 0xc613001e, 0},
                                                {kUdp, 0xc613001e, 0},    {kIcmp, 0xc613001e, 0}};
            const StaticTarget& t = kStatic[dst % 6];
            f.proto = t.proto;
            f.dst = t.addr;
            f.dport = t.port != 0 ? t.port : port(dport, 22);
        }
    }
    if (f.proto == kIcmp) {
        f.sport = f.dport;
    }
    const Shape s = read_shape(r);
    send_flow(r, world, Side::outside, queue, f, s, icmp_type);
}

void raw_frame(Reader& r, World& world, std::uint8_t variant, unsigned queue) {
    const Side side = (variant & 1) != 0 ? Side::outside : Side::inside;
    const std::size_t length = r.u16() % (kMaxFrame + 1);
    const std::span<const std::uint8_t> bytes = r.bytes(length);
    Bytes frame(bytes.begin(), bytes.end());
    if ((variant & 2) != 0 && frame.size() >= 6) {
        std::copy_n(world.mac(side).bytes, 6, frame.begin());
    }
    if ((variant & 4) != 0) {
        refresh_ip_checksum(frame);
    }
    world.add(side, queue, frame);
}

void arp(Reader& r, World& world, std::uint8_t variant, unsigned queue) {
    const Side side = (variant & 1) != 0 ? Side::outside : Side::inside;
    const std::uint8_t op = r.u8();
    const std::uint8_t sender = r.u8();
    const std::uint8_t target = r.u8();
    const std::uint8_t mac = r.u8();
    std::uint32_t sender_ip = 0;
    std::uint32_t target_ip = 0;
    if (side == Side::outside) {
        sender_ip = sender < 0x80 ? kNextHop : remote(sender);
        target_ip = target < 0xc0 ? pool_address(world, target) : remote(target);
    } else {
        sender_ip = subscriber(sender);
        target_ip = target < 0xc0 ? kGateway : subscriber(target);
    }
    const MacAddr sender_mac =
        mac < 0xc0 ? (side == Side::outside ? kRouterMac : subscriber_mac(sender_ip))
                   : kStrangerMac;
    const std::uint16_t code = op % 4 == 3 ? op : static_cast<std::uint16_t>(op % 4 == 0 ? 1 : 2);
    const MacAddr& dst = code == 1 ? kBroadcast : world.mac(side);
    Bytes frame = arp_frame(dst, sender_mac, code, sender_mac, sender_ip,
                            code == 1 ? MacAddr{} : world.mac(side), target_ip);
    if ((op & 0x80) != 0) {
        frame[kEthLen + 4] = 8; // a hardware length we do not speak
    }
    world.add(side, queue, frame);
}

// 1/16 s to 64 s in small steps, then minutes, then up to 2 h 40 min: the fragment timeout,
// the 6 s SYN hold, hold-down, every session timeout (TCP established: 7440 s) come due.
Tick clock_step(std::uint8_t v) {
    if (v < 64) {
        return v + 1u;
    }
    if (v < 128) {
        return (v - 63u) * kTicksPerSecond;
    }
    if (v < 192) {
        return (v - 127u) * 30 * kTicksPerSecond;
    }
    return (v - 191u) * 150 * kTicksPerSecond;
}

void run_input(World& world, Reader& r) {
    int burst_left = 0;
    int config_changes = 0;
    int telemetry_requests = 0;
    Tick clock = 0;
    for (std::size_t n = 0; n < kMaxRecords && !r.done(); ++n) {
        const auto kind = static_cast<std::uint8_t>(r.u8() & 15);
        if (kind >= 12) {
            world.run(); // what came before arrives first
            burst_left = 0;
        }
        switch (kind) {
        case 12:
            burst_left = 2 + r.u8() % 31;
            continue;
        case 13: {
            const Tick step = std::min(clock_step(r.u8()), kMaxClockPerInput - clock);
            clock += step;
            world.advance(step);
            continue;
        }
        case 14: {
            const std::uint8_t what = r.u8();
            const std::uint8_t filter = r.u8();
            const std::uint8_t worker = r.u8();
            if (telemetry_requests++ < kMaxTelemetryRequests) {
                world.telemetry(what, filter, worker);
            }
            continue;
        }
        case 15: {
            const std::uint8_t which = r.u8();
            if (config_changes++ < kMaxConfigChanges) {
                world.change_config(which);
            }
            continue;
        }
        default:
            break;
        }
        const std::uint8_t how = r.u8();
        const auto variant = static_cast<std::uint8_t>(how & 7);
        const unsigned queue = how >> 3 & 3;
        if (kind < 6) {
            inside_frame(r, world, variant, queue);
        } else if (kind < 10) {
            outside_frame(r, world, variant, queue);
        } else if (kind == 10) {
            raw_frame(r, world, variant, queue);
        } else {
            arp(r, world, variant, queue);
        }
        // A frame record: it goes in now, or with the rest of its burst.
        if (burst_left == 0 || --burst_left == 0) {
            world.run();
        }
    }
    world.run();
}

void report() {
    const Totals& t = totals();
    std::fprintf(stderr,
                 "ephemera fuzz: %llu frames in, %llu out inside, %llu out outside; %llu inputs, "
                 "%llu worlds, %llu config changes, %llu telemetry requests\n",
                 static_cast<unsigned long long>(t.frames_in),
                 static_cast<unsigned long long>(t.frames_out[0]),
                 static_cast<unsigned long long>(t.frames_out[1]),
                 static_cast<unsigned long long>(t.inputs),
                 static_cast<unsigned long long>(t.worlds),
                 static_cast<unsigned long long>(t.config_changes),
                 static_cast<unsigned long long>(t.telemetry_requests));
}

void at_exit() {
    if (g_harness == nullptr) {
        return;
    }
    g_harness->world.reset(); // runs the timers out and checks for leaked buffers
    report();
    // The EAL's runtime directory for this process's prefix (a few files) goes with it.
    std::error_code ignored;
    std::filesystem::remove_all(rte_eal_get_runtime_dir(), ignored);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    const char* workers = std::getenv("EPHEMERA_FUZZ_WORKERS");
    const int count = workers != nullptr ? std::atoi(workers) : 2;
    g_harness = new Harness;
    g_harness->platform = std::make_unique<Platform>(
        static_cast<std::uint16_t>(std::clamp(count, 1, static_cast<int>(kMaxWorkers))));
    const char* fresh = std::getenv("EPHEMERA_FUZZ_FRESH");
    g_harness->fresh = fresh != nullptr && fresh[0] == '1';
    if (const char* n = std::getenv("EPHEMERA_FUZZ_INPUTS_PER_WORLD")) {
        g_harness->inputs_per_world = std::max<std::uint64_t>(1, std::strtoull(n, nullptr, 10));
    }
    if (const char* world = std::getenv("EPHEMERA_FUZZ_WORLD")) {
        g_harness->incarnation = std::strtoull(world, nullptr, 10);
    }
    std::atexit(at_exit);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Harness& h = *g_harness;
    if (!h.world || h.fresh || h.world->worn_out() || h.inputs_in_world >= h.inputs_per_world) {
        h.world.reset();
        h.world = std::make_unique<World>(*h.platform, h.fresh ? h.incarnation : h.incarnation++);
        h.inputs_in_world = 0;
    }
    Reader r(data, size);
    run_input(*h.world, r);
    h.world->check_state();
    ++h.inputs_in_world;
    // The totals now and then too: a run stopped by a signal never reaches its exit handlers.
    if (++totals().inputs % kReportEvery == 0) {
        report();
    }
    return 0;
}
