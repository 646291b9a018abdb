// Golden captures of the NAT event log: a fixed scenario driven through a real Translator (one
// worker, the harness's port secret, a wall clock set to fixed values), its records encoded as
// a collector receives them and compared byte for byte with tests/golden/logging/:
//   ipfix.pcap      the templates message, then the data messages of each batch of records
//                   (observation domain 1), as UDP 198.18.250.1:40000 -> 198.18.250.2:4739
//   syslog.pcap     one RFC 5424 message per record (host "nat1", procid 4242, local0), as UDP
//                   198.18.250.1:40000 -> 198.18.250.2:514
//   syslog-tcp.txt  the same messages as one RFC 6587 octet-counted TCP stream (a pcap of TCP
//                   would need a handshake and sequence numbers that say nothing about the log)
// EPHEMERA_UPDATE_GOLDEN=1 writes the files instead (tests/golden/README.md). tshark, an
// independent decoder, then reads the committed files back.
#include "event_ring.hpp"
#include "nat_harness.hpp"

#include "logging/ipfix_encoder.hpp"
#include "logging/syslog_format.hpp"

#include "run_command.hpp"

#include <gtest/gtest.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#ifndef EPHEMERA_SOURCE_DIR
#error "EPHEMERA_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

namespace ephemera {
namespace {

using namespace nat_test;
using test::EventRing;
using Bytes = std::vector<std::uint8_t>;

const std::string kGoldenDir = EPHEMERA_SOURCE_DIR "/tests/golden/logging/";
constexpr const char* kTshark = "/usr/bin/tshark";

// ---- the scenario ---------------------------------------------------------------------------

constexpr std::uint64_t kDynamicWallMs = 1796464800123ULL; // 2026-12-05T10:00:00.123Z
constexpr std::uint64_t kBlocksWallMs = 1796468400456ULL;  // 2026-12-05T11:00:00.456Z
constexpr std::uint32_t kUdpPortsPerSubscriber = 2;

std::uint32_t bit(NatEventKind k) {
    return 1u << static_cast<unsigned>(k);
}

// What the logging thread drains at one moment: the records, and the time it sends them at.
struct Batch {
    std::uint64_t time_ms = 0;
    std::vector<NatEvent> events;
};

// A Translator with its ring and two clocks that move together: the tick clock its timers run
// on and the wall clock its records carry, both `s` seconds after the part's start.
class Part {
public:
    Part(const Config& config, std::uint64_t wall_ms) : nat_(config), wall_ms_(wall_ms) {
        nat_.translator().attach_event_ring(ring_.get());
    }

    Tick at(std::uint32_t s) {
        now_ms_ = wall_ms_ + std::uint64_t{s} * 1000;
        nat_.translator().set_time_ms(now_ms_);
        return kT0 + sec(s);
    }
    Nat& nat() { return nat_; }

    // The records since the last batch, as one batch sent at the current wall clock.
    void drain(std::vector<Batch>& out) {
        auto events = ring_.take();
        ASSERT_FALSE(events.empty()) << "a step of the scenario recorded nothing";
        out.push_back({now_ms_, std::move(events)});
    }

private:
    EventRing ring_;
    Nat nat_;
    std::uint64_t wall_ms_;
    std::uint64_t now_ms_ = 0;
};

FrameSpec tcp_from(Ipv4Addr c, std::uint16_t sport, Ipv4Addr server, std::uint16_t dport) {
    return inside(test::tcp_spec(c, sport, server, dport), c == kC2 ? kC2Mac : kCMac);
}

Config logged(Config c, std::uint32_t events) {
    c.logging.archive.path = "/nonexistent"; // a sink is on: the worker records
    c.logging.events = events;
    c.limits.subscriber_mapping_rate = 0;
    return c;
}

// Dynamic mode: subscribers C and C2 open UDP and TCP flows; C's third UDP port is refused
// (subscriber_ports_udp = 2: a quota record); the TCP flows (never past SYN) end after the
// transitory timeout, the UDP ones after 300 s.
void dynamic_part(std::vector<Batch>& out) {
    Config c = make_config({kX});
    c.limits.subscriber_ports_udp = kUdpPortsPerSubscriber;
    Part part(logged(c, bit(NatEventKind::mapping_created) | bit(NatEventKind::mapping_deleted) |
                            bit(NatEventKind::quota_exceeded) | bit(NatEventKind::ports_exhausted)),
              kDynamicWallMs);
    Nat& nat = part.nat();

    Tick now = part.at(0);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40000, kA1, 53), now));
    ASSERT_TRUE(nat.send_out(udp_from(kC, 40001, kA1, 53), now));
    ASSERT_TRUE(nat.send_out(udp_from(kC2, 40000, kA2, 123), now));
    part.drain(out);

    now = part.at(2);
    ASSERT_TRUE(nat.send_out(tcp_from(kC, 50000, kA1, 443), now));
    ASSERT_TRUE(nat.send_out(tcp_from(kC2, 50001, kA2, 80), now));
    part.drain(out);

    now = part.at(3);
    ASSERT_FALSE(nat.send_out(udp_from(kC, 40002, kA1, 53), now)) << "C is at its UDP port limit";
    part.drain(out);
    EXPECT_EQ(nat.counters().get(Counter::drop_subscriber_ports), 1u);

    expire_all(nat.translator(), part.at(250));
    part.drain(out);
    expire_all(nat.translator(), part.at(301));
    part.drain(out);
}

// Blocks mode: C's flows share one block of 64 ports; the block is still held after
// blocks.interim (an interim record) and released when its last mapping has expired.
void blocks_part(std::vector<Batch>& out) {
    Config c = make_config({kX}, {1024, 65535});
    c.allocation = AllocationMode::blocks;
    c.blocks.block_size = 64;
    c.blocks.max_blocks = 8;
    c.blocks.interim = 60;
    Part part(logged(c, bit(NatEventKind::block_allocated) | bit(NatEventKind::block_released) |
                            bit(NatEventKind::block_interim) | bit(NatEventKind::quota_exceeded) |
                            bit(NatEventKind::ports_exhausted)),
              kBlocksWallMs);
    Nat& nat = part.nat();

    Tick now = part.at(0);
    ASSERT_TRUE(nat.send_out(udp_from(kC, 20000, kA1, 53), now));
    ASSERT_TRUE(nat.send_out(udp_from(kC, 20001, kA2, 53), now));
    ASSERT_TRUE(nat.send_out(tcp_from(kC, 20002, kA1, 443), now));
    part.drain(out);

    now = part.at(61);
    nat.translator().log_interim(now, 2048); // walks every granule of the address
    part.drain(out);

    expire_all(nat.translator(), part.at(400));
    part.drain(out);
}

std::vector<NatEvent> all_events(const std::vector<Batch>& batches) {
    std::vector<NatEvent> out;
    for (const auto& b : batches) {
        out.insert(out.end(), b.events.begin(), b.events.end());
    }
    return out;
}

// ---- pcap files -----------------------------------------------------------------------------

void le16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v));
    b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void le32(Bytes& b, std::uint32_t v) {
    le16(b, static_cast<std::uint16_t>(v));
    le16(b, static_cast<std::uint16_t>(v >> 16));
}
void be16(Bytes& b, std::size_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void be32(Bytes& b, std::uint32_t v) {
    be16(b, v >> 16);
    be16(b, v & 0xffff);
}
void put16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

// RFC 1071: the ones' complement of the ones' complement sum of 16-bit words.
std::uint16_t inet_checksum(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    }
    if (n % 2 != 0) {
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    }
    while (sum >> 16 != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

constexpr std::size_t kPcapHeader = 24;
constexpr std::size_t kRecordHeader = 16;
constexpr std::size_t kEthBytes = 14;
constexpr std::size_t kIpBytes = 20;
constexpr std::size_t kUdpBytes = 8;

const Ipv4Addr kExporter{198, 18, 250, 1};
const Ipv4Addr kCollector{198, 18, 250, 2};
constexpr std::uint16_t kExporterPort = 40000;
constexpr std::uint16_t kSyslogPort = 514;

// libpcap format, microsecond timestamps, Ethernet: every datagram from the exporter's fixed
// MAC and address to the collector's, IP ids counting from 1, both checksums computed.
class PcapWriter {
public:
    PcapWriter() {
        le32(file_, 0xa1b2c3d4);
        le16(file_, 2);
        le16(file_, 4);
        le32(file_, 0);     // thiszone
        le32(file_, 0);     // sigfigs
        le32(file_, 65535); // snaplen
        le32(file_, 1);     // LINKTYPE_ETHERNET
    }

    void udp(std::uint64_t time_ms, std::uint16_t dport, std::span<const std::uint8_t> payload) {
        Bytes f = {0x02, 0, 0, 0, 0xfa, 0x02, 0x02, 0, 0, 0, 0xfa, 0x01, 0x08, 0x00};
        const std::size_t ip = f.size();
        f.insert(f.end(), {0x45, 0x00});
        be16(f, kIpBytes + kUdpBytes + payload.size());
        be16(f, ip_id_++);
        f.insert(f.end(), {0x00, 0x00, 64, 17, 0, 0});
        be32(f, kExporter.value());
        be32(f, kCollector.value());
        put16(f, ip + 10, inet_checksum(&f[ip], kIpBytes));
        const std::size_t udp = f.size();
        be16(f, kExporterPort);
        be16(f, dport);
        be16(f, kUdpBytes + payload.size());
        be16(f, 0);
        f.insert(f.end(), payload.begin(), payload.end());
        // Pseudo header: addresses, protocol, UDP length.
        const std::size_t udp_len = kUdpBytes + payload.size();
        const std::uint32_t pseudo = (kExporter.value() >> 16) + (kExporter.value() & 0xffff) +
                                     (kCollector.value() >> 16) + (kCollector.value() & 0xffff) +
                                     17 + static_cast<std::uint32_t>(udp_len);
        const std::uint16_t sum = inet_checksum(&f[udp], udp_len, pseudo);
        put16(f, udp + 6, sum == 0 ? 0xffff : sum);

        le32(file_, static_cast<std::uint32_t>(time_ms / 1000));
        le32(file_, static_cast<std::uint32_t>(time_ms % 1000 * 1000));
        le32(file_, static_cast<std::uint32_t>(f.size()));
        le32(file_, static_cast<std::uint32_t>(f.size()));
        file_.insert(file_.end(), f.begin(), f.end());
        ++packets_;
    }

    const Bytes& bytes() const { return file_; }
    std::size_t packets() const { return packets_; }

private:
    Bytes file_;
    std::uint16_t ip_id_ = 1;
    std::size_t packets_ = 0;
};

// ---- the encodings --------------------------------------------------------------------------

struct Capture {
    Bytes ipfix_pcap;
    std::size_t ipfix_packets = 0;
    Bytes syslog_pcap;
    std::size_t syslog_packets = 0;
    std::string syslog_tcp;
};

logging::SyslogHeader syslog_header() {
    logging::SyslogHeader h;
    h.facility = logging::kSyslogLocal0;
    h.hostname = "nat1";
    h.procid = 4242;
    return h;
}

Capture encode(const std::vector<Batch>& batches) {
    Capture c;
    PcapWriter ipfix;
    logging::IpfixEncoder encoder(1);
    const std::uint64_t first_ms = batches.front().time_ms;
    const auto templates = encoder.templates_message(static_cast<std::uint32_t>(first_ms / 1000));
    ipfix.udp(first_ms, logging::kIpfixPort, templates);
    for (const auto& b : batches) {
        std::vector<logging::IpfixMessage> messages;
        encoder.data_messages(b.events, static_cast<std::uint32_t>(b.time_ms / 1000),
                              logging::kIpfixUdpMessageBytes, messages);
        for (const auto& m : messages) {
            ipfix.udp(b.time_ms, logging::kIpfixPort, m.bytes);
        }
    }
    c.ipfix_pcap = ipfix.bytes();
    c.ipfix_packets = ipfix.packets();

    PcapWriter syslog;
    for (const auto& e : all_events(batches)) {
        const std::string m = logging::syslog_message(e, syslog_header());
        syslog.udp(e.time_ms, kSyslogPort,
                   {reinterpret_cast<const std::uint8_t*>(m.data()), m.size()});
        c.syslog_tcp += logging::octet_counted(m);
    }
    c.syslog_pcap = syslog.bytes();
    c.syslog_packets = syslog.packets();
    return c;
}

// ---- comparing with the goldens -------------------------------------------------------------

bool updating() {
    const char* v = std::getenv("EPHEMERA_UPDATE_GOLDEN");
    return v != nullptr && std::string(v) == "1";
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string hex(std::uint8_t b) {
    std::ostringstream s;
    s << "0x" << std::hex << std::setw(2) << std::setfill('0') << unsigned{b};
    return s.str();
}

// Where in a frame of PcapWriter's a byte lies.
std::string layer_of(std::size_t at) {
    std::ostringstream s;
    if (at < kEthBytes) {
        s << "Ethernet header byte " << at;
    } else if (at < kEthBytes + kIpBytes) {
        s << "IPv4 header byte " << at - kEthBytes;
    } else if (at < kEthBytes + kIpBytes + kUdpBytes) {
        s << "UDP header byte " << at - kEthBytes - kIpBytes;
    } else {
        s << "payload byte " << at - kEthBytes - kIpBytes - kUdpBytes;
    }
    return s.str();
}

struct PcapRecord {
    std::string header; // 16 bytes: time and lengths
    std::string frame;
};

// The records of a pcap file; false when it is cut short.
bool split_pcap(const std::string& file, std::vector<PcapRecord>& out) {
    std::size_t at = kPcapHeader;
    while (at < file.size()) {
        if (file.size() - at < kRecordHeader) {
            return false;
        }
        const auto* p = reinterpret_cast<const std::uint8_t*>(file.data() + at + 8);
        const std::size_t len =
            p[0] | p[1] << 8 | p[2] << 16 | static_cast<std::size_t>(p[3]) << 24;
        if (file.size() - at - kRecordHeader < len) {
            return false;
        }
        out.push_back({file.substr(at, kRecordHeader), file.substr(at + kRecordHeader, len)});
        at += kRecordHeader + len;
    }
    return true;
}

const char* const kUpdateHint = " (if the change is intended, rerun with EPHEMERA_UPDATE_GOLDEN=1 "
                                "and commit tests/golden/logging/)";

// Byte for byte, and if not, the first packet and byte that differ.
::testing::AssertionResult same_pcap(const std::string& name, const std::string& golden,
                                     const std::string& now) {
    if (golden == now) {
        return ::testing::AssertionSuccess();
    }
    auto fail = ::testing::AssertionFailure();
    fail << name << " differs from the golden: ";
    if (golden.size() < kPcapHeader || now.size() < kPcapHeader ||
        golden.compare(0, kPcapHeader, now, 0, kPcapHeader) != 0) {
        return fail << "the pcap file header differs" << kUpdateHint;
    }
    std::vector<PcapRecord> want;
    std::vector<PcapRecord> got;
    if (!split_pcap(golden, want)) {
        return fail << "the golden is cut short" << kUpdateHint;
    }
    split_pcap(now, got);
    for (std::size_t i = 0; i < std::min(want.size(), got.size()); ++i) {
        const std::size_t packet = i + 1; // as tshark numbers frames
        if (want[i].header != got[i].header) {
            fail << "packet " << packet << ": the pcap record header (time or length) differs";
            if (want[i].frame.size() != got[i].frame.size()) {
                fail << "; frame of " << want[i].frame.size() << " bytes, now "
                     << got[i].frame.size();
            }
            if (want[i].frame != got[i].frame) {
                fail << "; the frame differs too";
            }
            return fail << kUpdateHint;
        }
        if (want[i].frame != got[i].frame) {
            const auto& a = want[i].frame;
            const auto& b = got[i].frame;
            std::size_t at = 0;
            while (at < a.size() && at < b.size() && a[at] == b[at]) {
                ++at;
            }
            std::size_t differing = 0;
            for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) {
                differing += a[k] != b[k] ? 1 : 0;
            }
            fail << "packet " << packet << ", byte " << at << " of the frame (" << layer_of(at)
                 << "): golden "
                 << (at < a.size() ? hex(static_cast<std::uint8_t>(a[at])) : "<end>") << ", now "
                 << (at < b.size() ? hex(static_cast<std::uint8_t>(b[at])) : "<end>") << "; "
                 << differing << " byte(s) of the packet differ";
            return fail << kUpdateHint;
        }
    }
    return fail << "the golden has " << want.size() << " packets, now " << got.size()
                << kUpdateHint;
}

// RFC 6587 octet counting: the frame ("LEN SP MSG") that byte `at` of a stream lies in, and
// where in it.
std::string frame_of(const std::string& stream, std::size_t at) {
    std::size_t start = 0;
    for (std::size_t frame = 1; start < stream.size(); ++frame) {
        const std::size_t space = stream.find(' ', start);
        if (space == std::string::npos) {
            break;
        }
        const std::size_t len =
            std::strtoul(stream.substr(start, space - start).c_str(), nullptr, 10);
        const std::size_t end = space + 1 + len;
        if (at < end) {
            return "message " + std::to_string(frame) + ", byte " + std::to_string(at - start) +
                   " of its frame";
        }
        start = end;
    }
    return "past the last message";
}

::testing::AssertionResult same_stream(const std::string& name, const std::string& golden,
                                       const std::string& now) {
    if (golden == now) {
        return ::testing::AssertionSuccess();
    }
    std::size_t at = 0;
    while (at < golden.size() && at < now.size() && golden[at] == now[at]) {
        ++at;
    }
    const std::size_t from = at < 40 ? 0 : at - 40;
    return ::testing::AssertionFailure()
           << name << " differs from the golden at byte " << at << " (" << frame_of(golden, at)
           << " in the golden):\n  golden: ..." << golden.substr(from, 100) << "\n  now:    ..."
           << now.substr(from, 100) << "\n"
           << kUpdateHint;
}

// ---- the tests ------------------------------------------------------------------------------

std::vector<NatEventKind> kinds(const std::vector<NatEvent>& events) {
    std::vector<NatEventKind> out;
    for (const auto& e : events) {
        out.push_back(e.kind);
    }
    return out;
}

TEST(LoggingGolden, ScenarioRecordsWhatTheIssueAsksFor) {
    std::vector<Batch> batches;
    ASSERT_NO_FATAL_FAILURE(dynamic_part(batches));
    ASSERT_NO_FATAL_FAILURE(blocks_part(batches));
    using enum NatEventKind;
    const std::vector<NatEventKind> expected = {
        mapping_created, mapping_created, mapping_created, // UDP at 0 s
        mapping_created, mapping_created,                  // TCP at 2 s
        quota_exceeded,                                    // C's third UDP port at 3 s
        mapping_deleted, mapping_deleted,                  // TCP, transitory
        mapping_deleted, mapping_deleted, mapping_deleted, // UDP, 300 s
        block_allocated, block_interim,   block_released,
    };
    const auto events = all_events(batches);
    EXPECT_EQ(kinds(events), expected);
    ASSERT_EQ(events.size(), expected.size());
    EXPECT_EQ(events[5].quota, NatQuota::max_entries_per_user);
    EXPECT_EQ(events[5].value, kUdpPortsPerSubscriber);
    EXPECT_EQ(Ipv4Addr{events[5].inside}, kC);
    EXPECT_EQ(events[11].first_port, events[12].first_port);
    EXPECT_EQ(events[11].first_port, events[13].first_port);
    EXPECT_EQ(events[11].ports, 64);
    for (const auto& e : events) {
        EXPECT_EQ(e.worker, 0);
    }
}

TEST(LoggingGolden, CapturesMatchTheGoldensByteForByte) {
    std::vector<Batch> batches;
    ASSERT_NO_FATAL_FAILURE(dynamic_part(batches));
    ASSERT_NO_FATAL_FAILURE(blocks_part(batches));
    const Capture now = encode(batches);
    const auto as_text = [](const Bytes& b) { return std::string(b.begin(), b.end()); };
    const std::pair<std::string, std::string> files[] = {
        {"ipfix.pcap", as_text(now.ipfix_pcap)},
        {"syslog.pcap", as_text(now.syslog_pcap)},
        {"syslog-tcp.txt", now.syslog_tcp},
    };
    if (updating()) {
        for (const auto& [name, bytes] : files) {
            ASSERT_NO_FATAL_FAILURE(write_file(kGoldenDir + name, bytes));
        }
        std::cout << "[ UPDATED  ] EPHEMERA_UPDATE_GOLDEN=1: wrote " << kGoldenDir
                  << "{ipfix.pcap (" << now.ipfix_packets << " packets), syslog.pcap ("
                  << now.syslog_packets << " packets), syslog-tcp.txt (" << now.syslog_tcp.size()
                  << " bytes)}\n";
        return;
    }
    for (const auto& [name, bytes] : files) {
        const auto golden = read_file(kGoldenDir + name);
        ASSERT_TRUE(golden) << "no golden " << kGoldenDir << name
                            << ": EPHEMERA_UPDATE_GOLDEN=1 writes it";
        if (name.ends_with(".pcap")) {
            EXPECT_TRUE(same_pcap(name, *golden, bytes));
        } else {
            EXPECT_TRUE(same_stream(name, *golden, bytes));
        }
    }
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

// tshark -V on a golden, with the IPv4 and UDP checksums verified.
std::string tshark(const std::string& file, const std::string& decode_as) {
    return test::run_command(std::string(kTshark) + " -r " + kGoldenDir + file + " -V -d " +
                             decode_as +
                             " -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE 2>&1");
}

void expect_checksums_good(const std::string& out, std::size_t packets) {
    EXPECT_EQ(count(out, "[Header checksum status: Good]"), packets) << out;
    EXPECT_EQ(count(out, "[Checksum Status: Good]"), packets) << out;
    EXPECT_EQ(out.find("Bad"), std::string::npos) << out;
    EXPECT_EQ(out.find("Malformed"), std::string::npos) << out;
}

// The comparison's failure message points at the packet and byte, or the syslog message.
TEST(LoggingGolden, AMismatchNamesThePacketAndTheByte) {
    std::vector<Batch> batches;
    ASSERT_NO_FATAL_FAILURE(dynamic_part(batches));
    ASSERT_NO_FATAL_FAILURE(blocks_part(batches));
    const Capture c = encode(batches);
    const std::string golden(c.ipfix_pcap.begin(), c.ipfix_pcap.end());
    std::vector<PcapRecord> records;
    ASSERT_TRUE(split_pcap(golden, records));
    ASSERT_EQ(records.size(), c.ipfix_packets);
    // Byte 60 of packet 3's frame: the IPFIX payload's byte 18 (its first set's length).
    std::size_t at = kPcapHeader;
    for (std::size_t i = 0; i < 2; ++i) {
        at += kRecordHeader + records[i].frame.size();
    }
    std::string changed = golden;
    changed[at + kRecordHeader + 60] ^= 0x01;
    const auto r = same_pcap("ipfix.pcap", golden, changed);
    EXPECT_FALSE(r);
    EXPECT_NE(std::string(r.message()).find("packet 3, byte 60 of the frame (payload byte 18)"),
              std::string::npos)
        << r.message();
    EXPECT_NE(std::string(r.message()).find("1 byte(s) of the packet differ"), std::string::npos)
        << r.message();

    const auto shorter = same_pcap("ipfix.pcap", golden, golden.substr(0, at));
    EXPECT_NE(std::string(shorter.message()).find("the golden has 9 packets, now 2"),
              std::string::npos)
        << shorter.message();

    std::string stream = c.syslog_tcp;
    const std::size_t second = stream.find(' ', 0) + 1 + 238; // the first frame is 238 bytes
    stream[second + 10] = 'X';
    const auto t = same_stream("syslog-tcp.txt", c.syslog_tcp, stream);
    EXPECT_NE(std::string(t.message()).find("message 2, byte 10 of its frame"), std::string::npos)
        << t.message();
}

std::string str(unsigned v) {
    return std::to_string(v);
}

TEST(LoggingGolden, TsharkDecodesTheIpfixGolden) {
    if (access(kTshark, X_OK) != 0) {
        GTEST_SKIP() << "tshark is not installed (scripts/install-deps.sh installs it)";
    }
    std::vector<Batch> batches;
    ASSERT_NO_FATAL_FAILURE(dynamic_part(batches));
    ASSERT_NO_FATAL_FAILURE(blocks_part(batches));
    const auto events = all_events(batches);
    const std::string out = tshark("ipfix.pcap", "udp.port==4739,cflow");

    expect_checksums_good(out, encode(batches).ipfix_packets);
    EXPECT_EQ(out.find("no template found"), std::string::npos) << out;
    EXPECT_EQ(count(out, "Observation Domain Id: 1\n"), encode(batches).ipfix_packets) << out;
    EXPECT_NE(out.find("Src: 198.18.250.1, Dst: 198.18.250.2"), std::string::npos) << out;
    EXPECT_NE(out.find("Src Port: 40000, Dst Port: 4739"), std::string::npos) << out;
    EXPECT_EQ(count(out, "Nat Event: NAT44 BIB create (8)"), 5u) << out;
    EXPECT_EQ(count(out, "Nat Event: NAT44 BIB delete (9)"), 5u) << out;
    EXPECT_EQ(count(out, "Nat Event: Quota Exceeded (13)"), 1u) << out;
    EXPECT_EQ(count(out, "Nat Event: Port block allocation (16)"), 2u) << "allocation, interim";
    EXPECT_EQ(count(out, "Nat Event: Port block de-allocation (17)"), 1u) << out;
    EXPECT_NE(out.find("NAT Quota Exceeded Event: Maximum entries per user (3)"), std::string::npos)
        << out;
    EXPECT_NE(out.find("Max Entries Per User: " + str(kUdpPortsPerSubscriber) + "\n"),
              std::string::npos)
        << out;
    // The export times and the records' times, from the fixed clock.
    EXPECT_NE(out.find("Timestamp: Dec  5, 2026 10:00:00.000000000 UTC"), std::string::npos);
    EXPECT_NE(out.find("Timestamp: Dec  5, 2026 11:06:40.000000000 UTC"), std::string::npos);
    EXPECT_EQ(count(out, "Observation Time Milliseconds: Dec  5, 2026 10:00:00.123000000 UTC"), 3u)
        << out;
    EXPECT_EQ(count(out, "Observation Time Milliseconds: Dec  5, 2026 11:01:01.456000000 UTC"), 1u)
        << "the interim record";

    // Each mapping's ports, as often as records name them.
    std::map<std::uint16_t, std::size_t> external;
    std::map<std::uint16_t, std::size_t> inside;
    for (const auto& e : events) {
        if (e.kind == NatEventKind::mapping_created || e.kind == NatEventKind::mapping_deleted) {
            ++external[e.external_port];
            ++inside[e.inside_port];
        }
    }
    ASSERT_FALSE(external.empty());
    for (const auto& [port, n] : external) {
        EXPECT_EQ(count(out, "Post NAPT Source Transport Port: " + str(port) + "\n"), n) << out;
    }
    for (const auto& [port, n] : inside) {
        EXPECT_EQ(count(out, "SrcPort: " + str(port) + " (" + str(port) + ")\n"), n) << out;
    }
    const NatEvent& block = events[11];
    ASSERT_EQ(block.kind, NatEventKind::block_allocated);
    EXPECT_EQ(count(out, "Port Range Start: " + str(block.first_port) + "\n"), 3u) << out;
    EXPECT_EQ(count(out, "Port Range End: " + str(block.last_port) + "\n"), 3u) << out;
    EXPECT_EQ(count(out, "Port Range Step Size: 1\n"), 3u) << out;
    EXPECT_EQ(count(out, "Port Range Num Ports: 64\n"), 3u) << out;
}

TEST(LoggingGolden, TsharkDecodesTheSyslogGolden) {
    if (access(kTshark, X_OK) != 0) {
        GTEST_SKIP() << "tshark is not installed (scripts/install-deps.sh installs it)";
    }
    std::vector<Batch> batches;
    ASSERT_NO_FATAL_FAILURE(dynamic_part(batches));
    ASSERT_NO_FATAL_FAILURE(blocks_part(batches));
    const auto events = all_events(batches);
    const std::string out = tshark("syslog.pcap", "udp.port==514,syslog");

    expect_checksums_good(out, events.size());
    EXPECT_NE(out.find("Src Port: 40000, Dst Port: 514"), std::string::npos) << out;
    EXPECT_EQ(count(out, "Facility: LOCAL0 - reserved for local use (16)"), events.size());
    EXPECT_EQ(count(out, "Level: INFO - informational (6)"), events.size() - 1) << out;
    EXPECT_EQ(count(out, "Level: WARNING - warning conditions (4)"), 1u) << "the quota record";
    EXPECT_EQ(count(out, "Syslog version: 1\n"), events.size()) << out;
    EXPECT_EQ(count(out, "Syslog hostname: nat1\n"), events.size()) << out;
    EXPECT_EQ(count(out, "Syslog app name: ephemera\n"), events.size()) << out;
    EXPECT_EQ(count(out, "Syslog process id: 4242\n"), events.size()) << out;
    EXPECT_NE(out.find("Syslog timestamp: Dec  5, 2026 10:00:03.123000000 UTC"), std::string::npos)
        << out;

    // MSGID: tshark 4.0 runs the message id on to the end of the line (it does not split off
    // the structured data), so only its start is matched; the structured data is matched in
    // the message text.
    std::map<std::string, std::size_t> msgids;
    for (const auto& e : events) {
        ++msgids[std::string(nat_event_name(e.kind))];
    }
    for (const auto& [name, n] : msgids) {
        EXPECT_EQ(count(out, "Syslog message id: " + name + " [nat@32473 event=\"" + name + "\""),
                  n)
            << name << " in:\n"
            << out;
    }
    // -V cuts lines past 240 characters: the full messages, one a line, as text fields.
    const std::string messages = test::run_command(
        std::string(kTshark) + " -r " + kGoldenDir +
        "syslog.pcap -d udp.port==514,syslog -T fields -e syslog.msg 2>/dev/null");
    EXPECT_EQ(count(messages, "\n"), events.size()) << messages;
    const NatEvent& first = events[0];
    ASSERT_EQ(first.kind, NatEventKind::mapping_created);
    EXPECT_NE(messages.find("1 2026-12-05T10:00:00.123Z nat1 ephemera 4242 mapping-create "
                            "[nat@32473 event=\"mapping-create\" worker=\"0\" proto=\"udp\" "
                            "inside=\"100.64.0.10:40000\" outside=\"198.18.0.100:" +
                            str(first.external_port) + "\"] mapping-create 100.64.0.10:40000 -> " +
                            "198.18.0.100:" + str(first.external_port) + " udp\n"),
              std::string::npos)
        << messages;
    EXPECT_NE(messages.find("[nat@32473 event=\"quota-exceeded\" worker=\"0\" quota=\"subscriber\" "
                            "proto=\"udp\" inside=\"100.64.0.10\" limit=\"2\"]"),
              std::string::npos)
        << messages;
    const NatEvent& block = events[11];
    ASSERT_EQ(block.kind, NatEventKind::block_allocated);
    for (const char* name : {"block-alloc", "block-interim", "block-release"}) {
        EXPECT_NE(messages.find(std::string("[nat@32473 event=\"") + name +
                                "\" worker=\"0\" inside=\"100.64.0.10\" outside=\"198.18.0.100\" "
                                "ports=\"" +
                                str(block.first_port) + "-" + str(block.last_port) +
                                "\" step=\"1\" count=\"64\"]"),
                  std::string::npos)
            << name << " in:\n"
            << messages;
    }
}

} // namespace
} // namespace ephemera
