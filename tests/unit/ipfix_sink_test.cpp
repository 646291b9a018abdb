// The IPFIX sink (control/logging/ipfix_sink.hpp) over a transport that only records what it is
// given: when templates go out, and what is counted when a send fails.
#include "logging/ipfix_sink.hpp"

#include <gtest/gtest.h>

namespace ephemera::logging {
namespace {

using Bytes = std::vector<std::uint8_t>;

// What the fake transport saw, kept by the test: the sink owns the transport itself.
struct Wire {
    std::vector<Bytes> sent;
    bool accept = true;
    std::uint64_t connections = 1;
    Bytes greeting;
};

class FakeTransport final : public Transport {
public:
    explicit FakeTransport(Wire& wire) : wire_(wire) {}
    bool send(std::span<const std::uint8_t> message) override {
        if (!wire_.accept) {
            return false;
        }
        wire_.sent.emplace_back(message.begin(), message.end());
        return true;
    }
    void poll(std::uint64_t) override {}
    void set_greeting(std::vector<std::uint8_t> bytes) override {
        wire_.greeting = std::move(bytes);
    }
    [[nodiscard]] bool connected() const override { return true; }
    [[nodiscard]] std::uint64_t connections() const override { return wire_.connections; }
    [[nodiscard]] std::uint64_t errors() const override { return 0; }
    [[nodiscard]] std::size_t backlog() const override { return 0; }

private:
    Wire& wire_;
};

std::uint16_t first_set_id(const Bytes& m) {
    return static_cast<std::uint16_t>(m[16] << 8 | m[17]);
}
std::uint32_t sequence(const Bytes& m) {
    return std::uint32_t{m[8]} << 24 | std::uint32_t{m[9]} << 16 | std::uint32_t{m[10]} << 8 |
           m[11];
}
bool is_templates(const Bytes& m) {
    return first_set_id(m) == kIpfixTemplateSetId;
}

NatEvent mapping() {
    NatEvent e;
    e.kind = NatEventKind::mapping_created;
    e.proto = 6;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = 40000;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.external_port = 51234;
    return e;
}

IpfixSink make_sink(Wire& wire, TransportKind kind) {
    IpfixSinkOptions o;
    o.collector = kind == TransportKind::tcp ? "tcp 198.18.0.2:4739" : "udp 198.18.0.2:4739";
    o.transport = kind;
    o.observation_domain = 1;
    return IpfixSink(std::move(o), std::make_unique<FakeTransport>(wire));
}

constexpr std::uint64_t kStart = 1796464800000ULL;

TEST(IpfixSink, TemplatesBeforeData) {
    Wire wire;
    IpfixSinkOptions o;
    o.collector = "udp 198.18.0.2:4739";
    IpfixSink sink(std::move(o), std::make_unique<FakeTransport>(wire));
    EXPECT_EQ(sink.name(), "ipfix udp 198.18.0.2:4739");
    const NatEvent e = mapping();
    sink.write({&e, 1}, kStart);
    ASSERT_EQ(wire.sent.size(), 2u);
    EXPECT_TRUE(is_templates(wire.sent[0]));
    EXPECT_EQ(first_set_id(wire.sent[1]), 256);
    EXPECT_EQ(sink.stats().records_sent.load(), 1u);
    EXPECT_EQ(sink.stats().messages_sent.load(), 2u);
    EXPECT_EQ(sink.stats().bytes_sent.load(), wire.sent[0].size() + wire.sent[1].size());
    EXPECT_EQ(sink.stats().records_dropped.load(), 0u);
}

TEST(IpfixSink, UdpResendsTemplatesAfterTheRefreshPeriod) {
    Wire wire;
    IpfixSink sink(IpfixSinkOptions{.collector = "udp 198.18.0.2:4739"},
                   std::make_unique<FakeTransport>(wire));
    const NatEvent e = mapping();
    sink.write({&e, 1}, kStart);
    sink.poll(kStart + 59999);
    EXPECT_EQ(wire.sent.size(), 2u);
    sink.poll(kStart + 60000);
    ASSERT_EQ(wire.sent.size(), 3u);
    EXPECT_TRUE(is_templates(wire.sent[2]));
    sink.write({&e, 1}, kStart + 60001);
    ASSERT_EQ(wire.sent.size(), 4u);
    EXPECT_FALSE(is_templates(wire.sent[3]));
    EXPECT_EQ(sequence(wire.sent[3]), 1u);
}

// RFC 7011 section 8: over TCP the templates come first on every connection. The transport
// writes its greeting before anything queued, so what waited for a restarted collector reaches
// it after the templates; the sequence runs on, as queued messages carry their numbers.
TEST(IpfixSink, TcpGreetsEachConnectionWithTheTemplates) {
    Wire wire;
    IpfixSink sink = make_sink(wire, TransportKind::tcp);
    sink.poll(kStart);
    ASSERT_TRUE(is_templates(wire.greeting)) << "the greeting is the templates message";
    const NatEvent e = mapping();
    sink.write({&e, 1}, kStart);
    sink.write({&e, 1}, kStart);
    ASSERT_EQ(wire.sent.size(), 2u) << "no templates among the data: the greeting carries them";
    EXPECT_FALSE(is_templates(wire.sent[0]));
    EXPECT_EQ(sequence(wire.sent[1]), 1u);
    sink.poll(kStart + 10 * 60000); // no refresh over TCP
    EXPECT_EQ(wire.sent.size(), 2u);
    wire.connections = 2;
    sink.write({&e, 1}, kStart + 10 * 60000 + 2);
    ASSERT_EQ(wire.sent.size(), 3u);
    EXPECT_EQ(sequence(wire.sent[2]), 2u);
}

TEST(IpfixSink, FailedSendsCountAsDropped) {
    Wire wire;
    IpfixSink sink = make_sink(wire, TransportKind::udp);
    wire.accept = false;
    const std::vector<NatEvent> three = {mapping(), mapping(), mapping()};
    sink.write(three, kStart);
    EXPECT_TRUE(wire.sent.empty());
    EXPECT_EQ(sink.stats().records_dropped.load(), 3u);
    EXPECT_EQ(sink.stats().records_sent.load(), 0u);
    EXPECT_EQ(sink.stats().messages_sent.load(), 0u);
    EXPECT_EQ(sink.stats().errors.load(), 1u); // the templates

    wire.accept = true;
    const NatEvent e = mapping();
    sink.write({&e, 1}, kStart + 1);
    ASSERT_EQ(wire.sent.size(), 2u);
    EXPECT_TRUE(is_templates(wire.sent[0]));
    // The lost records leave a gap a collector sees.
    EXPECT_EQ(sequence(wire.sent[1]), 3u);
    EXPECT_EQ(sink.stats().records_sent.load(), 1u);
}

} // namespace
} // namespace ephemera::logging
