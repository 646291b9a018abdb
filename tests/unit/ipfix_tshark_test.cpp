// The encoder's messages as a collector sees them: written as UDP/4739 packets into a pcap file
// and decoded by tshark's IPFIX dissector ("cflow"), an implementation we did not write.
#include "logging/ipfix_encoder.hpp"

#include "run_command.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

namespace ephemera::logging {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr const char* kTshark = "/usr/bin/tshark";

void le32(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}
void le16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v));
    b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void be16(Bytes& b, std::size_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void be32(Bytes& b, std::uint32_t v) {
    be16(b, v >> 16);
    be16(b, v & 0xffff);
}

// libpcap format: a global header, then per packet a record header and Ethernet/IPv4/UDP.
// Checksums stay 0: tshark does not verify them by default, and UDP allows 0.
class PcapWriter {
public:
    PcapWriter() {
        le32(file_, 0xa1b2c3d4); // magic, microsecond timestamps
        le16(file_, 2);
        le16(file_, 4);
        le32(file_, 0);     // thiszone
        le32(file_, 0);     // sigfigs
        le32(file_, 65535); // snaplen
        le32(file_, 1);     // LINKTYPE_ETHERNET
    }

    void udp(std::uint32_t time_s, const Bytes& payload) {
        Bytes frame = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00};
        const std::size_t ip_len = 20 + 8 + payload.size();
        frame.insert(frame.end(), {0x45, 0x00});
        be16(frame, ip_len);
        frame.insert(frame.end(), {0, 0, 0, 0, 64, 17, 0, 0});
        be32(frame, Ipv4Addr(198, 18, 0, 1).value());
        be32(frame, Ipv4Addr(198, 18, 0, 2).value());
        be16(frame, 50000);
        be16(frame, kIpfixPort);
        be16(frame, 8 + payload.size());
        be16(frame, 0);
        frame.insert(frame.end(), payload.begin(), payload.end());
        le32(file_, time_s);
        le32(file_, 0);
        le32(file_, static_cast<std::uint32_t>(frame.size()));
        le32(file_, static_cast<std::uint32_t>(frame.size()));
        file_.insert(file_.end(), frame.begin(), frame.end());
    }

    void save(const std::string& path) const {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(file_.data()),
                  static_cast<std::streamsize>(file_.size()));
    }

private:
    Bytes file_;
};

constexpr std::uint32_t kExport = 1796464800;        // 2026-12-05T10:00:00Z
constexpr std::uint64_t kEventMs = 1796464800123ULL; // ... .123

NatEvent event(NatEventKind kind) {
    NatEvent e;
    e.time_ms = kEventMs;
    e.kind = kind;
    return e;
}

// One event of every template.
std::vector<NatEvent> sample_events() {
    std::vector<NatEvent> v;
    NatEvent m = event(NatEventKind::mapping_created);
    m.proto = 17;
    m.inside = Ipv4Addr(100, 64, 0, 10).value();
    m.inside_port = 40000;
    m.external = Ipv4Addr(198, 18, 0, 10).value();
    m.external_port = 51234;
    v.push_back(m);
    NatEvent r = m;
    r.kind = NatEventKind::mapping_deleted;
    r.remote = Ipv4Addr(198, 18, 1, 2).value();
    r.remote_port = 53;
    v.push_back(r);
    NatEvent s = event(NatEventKind::static_added);
    s.inside = Ipv4Addr(100, 64, 0, 20).value();
    s.external = Ipv4Addr(198, 18, 0, 20).value();
    v.push_back(s);
    NatEvent b = event(NatEventKind::block_allocated);
    b.inside = Ipv4Addr(100, 64, 0, 7).value();
    b.external = Ipv4Addr(198, 18, 0, 11).value();
    b.first_port = 1024;
    b.last_port = 1535;
    b.step = 2;
    b.ports = 256;
    v.push_back(b);
    NatEvent x = event(NatEventKind::ports_exhausted);
    x.proto = 6;
    x.external = Ipv4Addr(198, 18, 0, 12).value();
    v.push_back(x);
    const std::pair<NatQuota, std::uint32_t> quotas[] = {{NatQuota::max_sessions, 1000001},
                                                         {NatQuota::max_bib_entries, 1000002},
                                                         {NatQuota::max_entries_per_user, 2000},
                                                         {NatQuota::max_subscribers, 1000004}};
    for (const auto& [quota, limit] : quotas) {
        NatEvent q = event(NatEventKind::quota_exceeded);
        q.quota = quota;
        q.value = limit;
        if (quota == NatQuota::max_entries_per_user) {
            q.inside = Ipv4Addr(100, 64, 0, 7).value();
        }
        v.push_back(q);
    }
    const std::pair<NatThreshold, std::uint32_t> thresholds[] = {
        {NatThreshold::address_pool_high, 81},
        {NatThreshold::address_pool_low, 12},
        {NatThreshold::address_port_high, 83},
        {NatThreshold::address_port_per_user_high, 84},
        {NatThreshold::global_mapping_high, 85}};
    for (const auto& [threshold, percent] : thresholds) {
        NatEvent t = event(NatEventKind::threshold_reached);
        t.threshold = threshold;
        t.value = percent;
        t.external =
            threshold == NatThreshold::address_port_high ? Ipv4Addr(198, 18, 0, 13).value() : 0;
        t.inside = threshold == NatThreshold::address_port_per_user_high
                       ? Ipv4Addr(100, 64, 0, 8).value()
                       : 0;
        v.push_back(t);
    }
    return v;
}

std::string decoded() {
    IpfixEncoder enc(7);
    PcapWriter pcap;
    pcap.udp(kExport, enc.templates_message(kExport));
    std::vector<IpfixMessage> messages;
    enc.data_messages(sample_events(), kExport, kIpfixUdpMessageBytes, messages);
    for (const auto& m : messages) {
        pcap.udp(kExport, m.bytes);
    }
    const std::string path = testing::TempDir() + "ipfix_" + std::to_string(getpid()) + ".pcap";
    pcap.save(path);
    std::string out = test::run_command(std::string(kTshark) + " -r " + path + " -V -d udp.port==" +
                                        std::to_string(kIpfixPort) + ",cflow 2>&1");
    std::remove(path.c_str());
    return out;
}

// How tshark 4.0 names each information element in a template: IANA's name, or the NetFlow v9
// name for the elements NetFlow had first.
std::string tshark_name(IpfixIe ie) {
    switch (ie) {
    case IpfixIe::protocol_identifier:
        return "PROTOCOL";
    case IpfixIe::source_transport_port:
        return "L4_SRC_PORT";
    case IpfixIe::source_ipv4_address:
        return "IP_SRC_ADDR";
    case IpfixIe::destination_transport_port:
        return "L4_DST_PORT";
    case IpfixIe::destination_ipv4_address:
        return "IP_DST_ADDR";
    case IpfixIe::post_nat_source_ipv4_address:
        return "postNATSourceIPv4Address";
    case IpfixIe::post_napt_source_transport_port:
        return "postNAPTSourceTransportPort";
    case IpfixIe::nat_event:
        return "natEvent";
    case IpfixIe::observation_time_milliseconds:
        return "observationTimeMilliseconds";
    case IpfixIe::port_range_start:
        return "portRangeStart";
    case IpfixIe::port_range_end:
        return "portRangeEnd";
    case IpfixIe::port_range_step_size:
        return "portRangeStepSize";
    case IpfixIe::port_range_num_ports:
        return "portRangeNumPorts";
    case IpfixIe::nat_quota_exceeded_event:
        return "natQuotaExceededEvent";
    case IpfixIe::nat_threshold_event:
        return "natThresholdEvent";
    case IpfixIe::max_session_entries:
        return "maxSessionEntries";
    case IpfixIe::max_bib_entries:
        return "maxBIBEntries";
    case IpfixIe::max_entries_per_user:
        return "maxEntriesPerUser";
    case IpfixIe::max_subscribers:
        return "maxSubscribers";
    case IpfixIe::address_pool_high_threshold:
        return "addressPoolHighThreshold";
    case IpfixIe::address_pool_low_threshold:
        return "addressPoolLowThreshold";
    case IpfixIe::address_port_mapping_high_threshold:
        return "addressPortMappingHighThreshold";
    case IpfixIe::address_port_mapping_per_user_high_threshold:
        return "addressPortMappingPerUserHighThreshold";
    case IpfixIe::global_address_mapping_high_threshold:
        return "globalAddressMappingHighThreshold";
    }
    return "?";
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

TEST(IpfixTshark, NamesEveryFieldWithItsValue) {
    if (access(kTshark, X_OK) != 0) {
        GTEST_SKIP() << "tshark is not installed (scripts/install-deps.sh installs it)";
    }
    const std::string out = decoded();

    for (const auto& t : kIpfixTemplates) {
        const std::string id = std::to_string(static_cast<unsigned>(t.id));
        EXPECT_NE(
            out.find("Template (Id = " + id + ", Count = " + std::to_string(t.fields.size()) + ")"),
            std::string::npos)
            << t.name;
        for (const auto& f : t.fields) {
            const std::string type = "Type: " + tshark_name(f.ie) + " (" +
                                     std::to_string(static_cast<unsigned>(f.ie)) + ")";
            EXPECT_NE(out.find(type), std::string::npos) << type << " in " << t.name;
        }
    }

    // Every record decoded, each with its time to the millisecond.
    EXPECT_EQ(count(out, "Observation Time Milliseconds: Dec  5, 2026 10:00:00.123000000 UTC"),
              sample_events().size())
        << out;

    const char* expected[] = {
        "Version: 10",
        "Observation Domain Id: 7",
        "Nat Event: NAT44 BIB create (8)",
        "SrcAddr: 100.64.0.10",
        "Post NAT Source IPv4 Address: 198.18.0.10",
        "Protocol: UDP (17)",
        "SrcPort: 40000",
        "Post NAPT Source Transport Port: 51234",
        "Nat Event: NAT44 BIB delete (9)",
        "DstAddr: 198.18.1.2",
        "DstPort: 53",
        "Nat Event: Address binding create (14)",
        "SrcAddr: 100.64.0.20",
        "Post NAT Source IPv4 Address: 198.18.0.20",
        "Nat Event: Port block allocation (16)",
        "SrcAddr: 100.64.0.7",
        "Post NAT Source IPv4 Address: 198.18.0.11",
        "Port Range Start: 1024",
        "Port Range End: 1535",
        "Port Range Step Size: 2",
        "Port Range Num Ports: 256",
        "Nat Event: NAT ports exhausted (12)",
        "Post NAT Source IPv4 Address: 198.18.0.12",
        "Protocol: TCP (6)",
        "Nat Event: Quota Exceeded (13)",
        "NAT Quota Exceeded Event: Maximum session entries (1)",
        "Max Session Entries: 1000001",
        "NAT Quota Exceeded Event: Maximum BIB entries (2)",
        "Max BIB Entries: 1000002",
        "NAT Quota Exceeded Event: Maximum entries per user (3)",
        "Max Entries Per User: 2000",
        "NAT Quota Exceeded Event: Maximum active hosts or subscribers (4)",
        "Max Subscribers: 1000004",
        "Nat Event: Threshold Reached (18)",
        "NAT Threshold Event: Address pool high threshold event (1)",
        "Addresspool High Threshold: 81",
        "NAT Threshold Event: Address pool low threshold event (2)",
        "Addresspool Low Threshold: 12",
        "NAT Threshold Event: Address and port mapping high threshold event (3)",
        "Post NAT Source IPv4 Address: 198.18.0.13",
        "Addressport Mapping High Threshold: 83",
        "NAT Threshold Event: Address and port mapping per user high threshold event (4)",
        "SrcAddr: 100.64.0.8",
        "Addressport Mapping Per User High Threshold: 84",
        "NAT Threshold Event: Global address mapping high threshold event (5)",
        "Global Address Mapping High Threshold: 85",
    };
    for (const char* text : expected) {
        EXPECT_NE(out.find(text), std::string::npos) << "missing \"" << text << "\" in:\n" << out;
    }
    EXPECT_EQ(out.find("Malformed"), std::string::npos) << out;
    EXPECT_EQ(out.find("no template found"), std::string::npos) << out;
}

} // namespace
} // namespace ephemera::logging
