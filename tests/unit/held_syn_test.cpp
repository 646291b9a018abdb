// RFC 5382 REQ-4: unsolicited inbound SYNs are held 6 s; an outbound SYN of the connection
// within that time drops them silently, otherwise (when switched on) ICMP 3/3 answers them.
#include "nat_harness.hpp"

#include "ephemera/held_syn.hpp"
#include "ephemera/tcp_state.hpp"

#include <gtest/gtest.h>

namespace ephemera::nat_test {
namespace {

constexpr Tick kStart = 16;

HeldSynKey key_n(std::uint32_t n) {
    return HeldSynKey{kX.value(), kA1.value(), static_cast<std::uint16_t>(50000 + n), 1234};
}

TEST(HeldSyns, DueInArrivalOrderAfterTheirTime) {
    HeldSyns q(8);
    const std::uint8_t frame[] = {1, 2, 3};
    EXPECT_TRUE(q.hold(key_n(0), frame, 40, 100));
    EXPECT_TRUE(q.hold(key_n(1), frame, 40, 101));
    EXPECT_FALSE(q.take_due(99).has_value());
    const auto first = q.take_due(100);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->key, key_n(0));
    EXPECT_EQ(first->frame_len, 3u);
    EXPECT_EQ(first->ip_total_len, 40u);
    EXPECT_FALSE(q.take_due(100).has_value());
    EXPECT_EQ(q.take_due(101)->key, key_n(1));
    EXPECT_TRUE(q.empty());
}

TEST(HeldSyns, CancelledOnesAreNeverDue) {
    HeldSyns q(8);
    const std::uint8_t frame[] = {0};
    q.hold(key_n(0), frame, 40, 100);
    q.hold(key_n(1), frame, 40, 100);
    EXPECT_TRUE(q.cancel(key_n(0)));
    EXPECT_FALSE(q.cancel(key_n(0)));
    EXPECT_FALSE(q.cancel(key_n(7)));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.take_due(200)->key, key_n(1));
    EXPECT_FALSE(q.take_due(200).has_value());
}

// A flood cannot grow the queue: the oldest SYN makes room (and is then dropped silently).
TEST(HeldSyns, FullQueueForgetsTheOldest) {
    HeldSyns q(4);
    const std::uint8_t frame[] = {0};
    for (std::uint32_t n = 0; n < 4; ++n) {
        EXPECT_TRUE(q.hold(key_n(n), frame, 40, 100 + n));
    }
    EXPECT_FALSE(q.hold(key_n(4), frame, 40, 104));
    EXPECT_FALSE(q.cancel(key_n(0)));
    EXPECT_TRUE(q.cancel(key_n(2)));
    // Holding over a cancelled slot loses nothing live.
    EXPECT_FALSE(q.hold(key_n(5), frame, 40, 105)); // evicts key 1, live
    for (std::uint32_t n = 6; n < 40; ++n) {
        q.hold(key_n(n), frame, 40, 100 + n);
    }
    EXPECT_EQ(q.size(), 4u);
    std::vector<std::uint16_t> due;
    while (const auto h = q.take_due(1000)) {
        due.push_back(h->key.external_port);
    }
    EXPECT_EQ(due, (std::vector<std::uint16_t>{50036, 50037, 50038, 50039}));
}

Config syn_config(FilteringMode mode) {
    Config c = make_config({kX}, {49152, 65535}, mode);
    c.icmp.unsolicited_syn_unreachable = true;
    return c;
}

FrameSpec syn_from_outside(Endpoint remote, Endpoint ext) {
    FrameSpec s = from_outside(Protocol::tcp, remote, ext);
    s.tcp_flags = tcp_flag::syn;
    return s;
}

// A SYN that filtering refuses is held, and answered once 6 s have passed.
TEST(Translator, UnsolicitedSynIsAnsweredAfterSixSeconds) {
    Nat nat(syn_config(FilteringMode::address_port_dependent));
    const auto ext = nat.send_out(inside(test::tcp_spec(kC, 40000, kA1, 80)), kStart);
    ASSERT_TRUE(ext.has_value());
    const Frame syn = test::build_frame(syn_from_outside({kA2, 1234}, *ext));
    Frame f = syn;
    EXPECT_EQ(nat.out2in(f, kStart), Verdict::drop);
    EXPECT_EQ(nat.counters().get(Counter::syn_held), 1u);

    Translator& t = nat.translator();
    // Tick kStart may have been almost over when the SYN came: at kStart + 6 s of ticks less
    // than 6 s may have passed, so the answer waits one tick more.
    EXPECT_FALSE(t.take_due_syn(kStart + Translator::kSynHold - 1).has_value());
    EXPECT_FALSE(t.take_due_syn(kStart + Translator::kSynHold).has_value());
    const auto due = t.take_due_syn(kStart + Translator::kSynHold + 1);
    ASSERT_TRUE(due.has_value());
    EXPECT_EQ(due->key, (HeldSynKey{ext->addr.value(), kA2.value(), ext->port, 1234}));
    // The copy is the SYN's Ethernet and IP headers and the first 8 bytes of TCP.
    ASSERT_EQ(due->frame_len, 14u + 20u + 8u);
    EXPECT_TRUE(std::equal(due->frame.begin(), due->frame.begin() + due->frame_len, syn.begin()));
    EXPECT_EQ(due->ip_total_len, syn.size() - 14);
    EXPECT_FALSE(t.take_due_syn(kStart + 1000).has_value());
}

// RFC 5382 REQ-4: the inside sends a SYN of that connection within the 6 s (simultaneous
// open, hole punching): the held SYN is dropped silently, never answered.
TEST(Translator, OutboundSynWithinTheHoldCancelsTheAnswer) {
    Nat nat(syn_config(FilteringMode::address_port_dependent));
    const auto ext = nat.send_out(inside(test::tcp_spec(kC, 40000, kA1, 80)), kStart);
    ASSERT_TRUE(ext.has_value());
    Frame f = test::build_frame(syn_from_outside({kA2, 1234}, *ext));
    EXPECT_EQ(nat.out2in(f, kStart), Verdict::drop);
    const auto again = nat.send_out(inside(test::tcp_spec(kC, 40000, kA2, 1234)), kStart + 32);
    EXPECT_EQ(again, ext);
    EXPECT_EQ(nat.counters().get(Counter::syn_held_cancelled), 1u);
    EXPECT_FALSE(nat.translator().take_due_syn(kStart + 1000).has_value());
    // The peer's next SYN now passes: the session exists.
    Frame g = test::build_frame(syn_from_outside({kA2, 1234}, *ext));
    EXPECT_EQ(nat.out2in(g, kStart + 40), Verdict::forward);
}

// Also a SYN to a port with no mapping at all; and nothing is held unless switched on.
TEST(Translator, UnsolicitedSynHoldIsOptIn) {
    Nat on(syn_config(FilteringMode::endpoint_independent));
    Frame f = test::build_frame(syn_from_outside({kA1, 1234}, {kX, 50000}));
    EXPECT_EQ(on.out2in(f, kStart), Verdict::drop);
    EXPECT_TRUE(on.translator().take_due_syn(kStart + Translator::kSynHold + 1).has_value());

    Nat off(make_config({kX}, {49152, 65535}, FilteringMode::endpoint_independent));
    Frame g = test::build_frame(syn_from_outside({kA1, 1234}, {kX, 50000}));
    EXPECT_EQ(off.out2in(g, kStart), Verdict::drop);
    EXPECT_FALSE(off.translator().take_due_syn(kStart + 1000).has_value());
    EXPECT_EQ(off.counters().get(Counter::syn_held), 0u);
    // A SYN-ACK is never unsolicited-SYN material.
    FrameSpec synack = syn_from_outside({kA1, 1234}, {kX, 50001});
    synack.tcp_flags = tcp_flag::syn | tcp_flag::ack;
    Frame h = test::build_frame(synack);
    EXPECT_EQ(on.out2in(h, kStart + 1), Verdict::drop);
    EXPECT_EQ(on.counters().get(Counter::syn_held), 1u);
}

} // namespace
} // namespace ephemera::nat_test
