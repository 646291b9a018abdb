// The collector transports (control/logging/transport.hpp) against real sockets on 127.0.0.1:
// UDP datagrams, and a TCP stream that queues while the collector is away, refuses what does
// not fit, reconnects, and keeps its framing across a broken connection.
#include "logging/byte_ring.hpp"
#include "logging/transport.hpp"
#include "loopback.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace ephemera::logging {
namespace {

using namespace testing;

std::span<const std::uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(CollectorAddress, ParsesAddressAndPort) {
    const auto a = CollectorAddress::parse("198.18.0.2:514");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->address, Ipv4Addr(198, 18, 0, 2));
    EXPECT_EQ(a->port, 514);
    EXPECT_EQ(a->to_string(), "198.18.0.2:514");
    EXPECT_EQ(CollectorAddress::parse("127.0.0.1:65535")->port, 65535);
    for (const char* bad : {"198.18.0.2", "198.18.0.2:", ":514", "198.18.0.2:0", "198.18.0.2:65536",
                            "198.18.0.2:0514", "198.18.0.2:51a", "198.18.0.2:+51", "collector:514",
                            "198.18.0.2:514:1"}) {
        EXPECT_FALSE(CollectorAddress::parse(bad)) << bad;
    }
    EXPECT_EQ(transport_name(TransportKind::udp), "udp");
    EXPECT_EQ(transport_name(TransportKind::tcp), "tcp");
}

TEST(ByteRing, KeepsWholeMessagesAcrossTheWrap) {
    ByteRing ring(8);
    EXPECT_TRUE(ring.push(bytes("abcdef")));
    ring.pop(4);
    EXPECT_TRUE(ring.push(bytes("ghijkl"))); // wraps
    EXPECT_FALSE(ring.push(bytes("m")));     // full: refused, nothing taken
    EXPECT_EQ(ring.size(), 8U);
    std::string out;
    while (!ring.empty()) {
        const auto run = ring.front();
        out.append(run.begin(), run.end());
        ring.pop(run.size());
    }
    EXPECT_EQ(out, "efghijkl");
}

TEST(UdpTransport, SendsOneDatagramPerMessage) {
    const SocketFd receiver = bound_socket(SOCK_DGRAM);
    const auto t = Transport::open(TransportKind::udp, collector(bound_port(receiver)), 0);
    EXPECT_TRUE(t->send(bytes("first")));
    EXPECT_TRUE(t->send(bytes("second")));
    EXPECT_EQ(receive_datagram(receiver), "first");
    EXPECT_EQ(receive_datagram(receiver), "second");
    EXPECT_TRUE(t->connected());
    EXPECT_EQ(t->connections(), 1U);
    EXPECT_EQ(t->errors(), 0U);
    EXPECT_EQ(t->backlog(), 0U);
}

// One sendmmsg for a pass's batch: every datagram arrives whole, in order, also past the
// 64 a single call takes.
TEST(UdpTransport, SendBatchSendsEachMessageAsItsOwnDatagram) {
    const SocketFd receiver = bound_socket(SOCK_DGRAM);
    const auto t = Transport::open(TransportKind::udp, collector(bound_port(receiver)), 0);
    std::vector<std::string> texts;
    for (int i = 0; i < 150; ++i) {
        texts.push_back("datagram " + std::to_string(i) +
                        std::string(static_cast<std::size_t>(i), 'x'));
    }
    std::vector<std::span<const std::uint8_t>> messages;
    for (const auto& text : texts) {
        messages.push_back(bytes(text));
    }
    std::vector<std::uint8_t> sent(messages.size(), 7);
    t->send_batch(messages, sent);
    EXPECT_EQ(std::count(sent.begin(), sent.end(), 1), 150);
    for (const auto& text : texts) {
        EXPECT_EQ(receive_datagram(receiver), text);
    }
    EXPECT_EQ(t->errors(), 0U);
}

TEST(UdpTransport, SendBatchToAClosedPortCountsEachLostDatagram) {
    const auto t = Transport::open(TransportKind::udp, collector(unused_port(SOCK_DGRAM)), 0);
    const std::string text = "nobody listens";
    const std::vector<std::span<const std::uint8_t>> messages(10, bytes(text));
    std::uint64_t lost = 0;
    for (int round = 0; round < 20; ++round) {
        std::vector<std::uint8_t> sent(messages.size(), 7);
        t->send_batch(messages, sent);
        for (std::uint8_t s : sent) {
            ASSERT_TRUE(s == 0 || s == 1);
            lost += s == 0 ? 1 : 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_GT(lost, 0U);
    EXPECT_EQ(t->errors(), lost);
}

TEST(UdpTransport, ClosedPortCountsErrorsAndNeverBlocks) {
    const auto t = Transport::open(TransportKind::udp, collector(unused_port(SOCK_DGRAM)), 0);
    const std::uint64_t start = steady_ms();
    int refused = 0;
    // The ICMP port unreachable for one datagram comes back as ECONNREFUSED on a later send.
    for (int i = 0; i < 20; ++i) {
        refused += t->send(bytes("nobody listens")) ? 0 : 1;
        t->poll(steady_ms());
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_GT(refused, 0);
    EXPECT_EQ(t->errors(), static_cast<std::uint64_t>(refused));
    EXPECT_LT(steady_ms() - start, 1000U);
}

TEST(TcpTransport, SendsMessagesInOrderOnOneConnection) {
    const SocketFd listener = bound_socket(SOCK_STREAM);
    const auto t = Transport::open(TransportKind::tcp, collector(bound_port(listener)), 4096);
    const auto pump = [&] { t->poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return t->connected(); }));
    const SocketFd peer = accept_within(listener);
    ASSERT_TRUE(peer.valid());
    EXPECT_TRUE(t->send(bytes("5 hello")));
    EXPECT_TRUE(t->send(bytes("5 world")));
    EXPECT_EQ(read_stream(peer, 14, pump), "5 hello5 world");
    EXPECT_EQ(t->connections(), 1U);
    EXPECT_EQ(t->errors(), 0U);
    EXPECT_EQ(t->backlog(), 0U);
}

TEST(TcpTransport, SendBatchQueuesAllThenWritesInOrder) {
    const SocketFd listener = bound_socket(SOCK_STREAM);
    const auto t = Transport::open(TransportKind::tcp, collector(bound_port(listener)), 4096);
    const auto pump = [&] { t->poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return t->connected(); }));
    const SocketFd peer = accept_within(listener);
    ASSERT_TRUE(peer.valid());
    const std::string a = "5 hello", b = "5 world", big(5000, 'z');
    const std::vector<std::span<const std::uint8_t>> messages{bytes(a), bytes(big), bytes(b)};
    std::vector<std::uint8_t> sent(messages.size(), 7);
    t->send_batch(messages, sent);
    // The middle one does not fit the 4096-byte backlog: refused alone, the others go out.
    EXPECT_EQ(sent, (std::vector<std::uint8_t>{1, 0, 1}));
    EXPECT_EQ(read_stream(peer, 14, pump), "5 hello5 world");
}

TEST(TcpTransport, QueuesUntilTheCollectorListensThenFlushes) {
    const std::uint16_t port = unused_port(SOCK_STREAM);
    const auto t = Transport::open(TransportKind::tcp, collector(port), 4096);
    const auto pump = [&] { t->poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return t->errors() > 0; })); // refused: nobody there
    EXPECT_FALSE(t->connected());
    EXPECT_TRUE(t->send(bytes("3 one")));
    EXPECT_TRUE(t->send(bytes("3 two")));
    EXPECT_EQ(t->backlog(), 10U);

    const SocketFd listener = bound_socket(SOCK_STREAM, port);
    ASSERT_TRUE(listener.valid());
    // The next attempt waits for the backoff (100 ms, then 200 ms, ...).
    ASSERT_TRUE(poll_until(
        pump, [&] { return t->connected() && t->backlog() == 0; }, 6000));
    const SocketFd peer = accept_within(listener);
    ASSERT_TRUE(peer.valid());
    EXPECT_EQ(read_stream(peer, 10, pump), "3 one3 two");
    EXPECT_EQ(t->connections(), 1U);
}

// What a collector must read first on every connection (an IPFIX exporter's templates) comes
// before what was queued while it was away.
TEST(TcpTransport, GreetingComesFirstOnEveryConnection) {
    const std::uint16_t port = unused_port(SOCK_STREAM);
    const auto t = Transport::open(TransportKind::tcp, collector(port), 4096);
    const auto pump = [&] { t->poll(steady_ms()); };
    const std::string hello = "5 hello";
    t->set_greeting({hello.begin(), hello.end()});
    EXPECT_TRUE(t->send(bytes("3 one")));
    const SocketFd listener = bound_socket(SOCK_STREAM, port);
    ASSERT_TRUE(listener.valid());
    ASSERT_TRUE(poll_until(
        pump, [&] { return t->connected() && t->backlog() == 0; }, 6000));
    {
        const SocketFd peer = accept_within(listener);
        ASSERT_TRUE(peer.valid());
        EXPECT_EQ(read_stream(peer, 12, pump), "5 hello3 one");
    } // the collector goes away; what is sent once the transport saw it waits for the next
    ASSERT_TRUE(poll_until(
        pump, [&] { return !t->connected(); }, 6000));
    EXPECT_TRUE(t->send(bytes("3 two")));
    ASSERT_TRUE(poll_until(
        pump, [&] { return t->connections() == 2 && t->backlog() == 0; }, 8000));
    const SocketFd again = accept_within(listener);
    ASSERT_TRUE(again.valid());
    EXPECT_EQ(read_stream(again, 12, pump), "5 hello3 two");
}

TEST(TcpTransport, RefusesAMessageThatDoesNotFitTheBacklog) {
    const auto t = Transport::open(TransportKind::tcp, collector(unused_port(SOCK_STREAM)), 100);
    t->poll(steady_ms());
    EXPECT_TRUE(t->send(bytes(std::string(60, 'a'))));
    EXPECT_FALSE(t->send(bytes(std::string(50, 'b')))); // whole or nothing
    EXPECT_EQ(t->backlog(), 60U);
    EXPECT_TRUE(t->send(bytes(std::string(40, 'c'))));
    EXPECT_EQ(t->backlog(), 100U);
    EXPECT_FALSE(t->send(bytes("d")));
}

TEST(TcpTransport, ReconnectsAfterTheCollectorCloses) {
    const SocketFd listener = bound_socket(SOCK_STREAM);
    const auto t = Transport::open(TransportKind::tcp, collector(bound_port(listener)), 4096);
    const auto pump = [&] { t->poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return t->connected(); }));
    {
        const SocketFd first = accept_within(listener);
        ASSERT_TRUE(first.valid());
        EXPECT_TRUE(t->send(bytes("6 before")));
        EXPECT_EQ(read_stream(first, 8, pump), "6 before");
    } // the collector closes the connection
    ASSERT_TRUE(poll_until(
        pump, [&] { return t->connections() == 2 && t->connected(); }, 6000));
    EXPECT_GE(t->errors(), 1U);
    const SocketFd second = accept_within(listener);
    ASSERT_TRUE(second.valid());
    EXPECT_TRUE(t->send(bytes("5 after")));
    EXPECT_EQ(read_stream(second, 7, pump), "5 after");
    EXPECT_EQ(t->messages_cut(), 0U);
}

// A message half written when the connection breaks is not finished on the next connection:
// the collector would read its tail as the start of a frame.
TEST(TcpTransport, DropsTheRestOfAHalfSentMessageOnReconnect) {
    const SocketFd listener = bound_socket(SOCK_STREAM);
    constexpr std::size_t kBig = 32U << 20; // more than loopback's socket buffers hold
    const auto t = Transport::open(TransportKind::tcp, collector(bound_port(listener)), kBig + 64);
    const auto pump = [&] { t->poll(steady_ms()); };
    ASSERT_TRUE(poll_until(pump, [&] { return t->connected(); }));
    {
        const SocketFd first = accept_within(listener);
        ASSERT_TRUE(first.valid());
        EXPECT_TRUE(t->send(bytes(std::string(kBig, 'x'))));
        EXPECT_TRUE(t->send(bytes("4 next")));
        pump();
        ASSERT_GT(t->backlog(), 6U);
        ASSERT_LT(t->backlog(), kBig + 6); // partly written
        // Closing with unread data resets the connection.
    }
    ASSERT_TRUE(poll_until(
        pump, [&] { return t->connections() == 2 && t->backlog() == 0; }, 6000));
    EXPECT_EQ(t->messages_cut(), 1U);
    const SocketFd second = accept_within(listener);
    ASSERT_TRUE(second.valid());
    EXPECT_EQ(read_stream(second, 6, pump), "4 next");
}

} // namespace
} // namespace ephemera::logging
