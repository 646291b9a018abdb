// The pool watermark alarm and the exhaustion forecast on synthetic series (test clock).
// RFC 8158 natThresholdEvent 1 (pool high) when raised, 2 (pool low) when cleared.
#include "alarms/pool_watch.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace ephemera::alarms {
namespace {

constexpr std::uint64_t kSecond = 1000;

AlarmsConfig config(std::uint32_t high, std::uint32_t clear, std::uint32_t window_s) {
    AlarmsConfig c;
    c.pool_ports_high = high;
    c.pool_ports_clear = clear;
    c.forecast_window = window_s;
    return c;
}

// Two addresses of 1000 usable ports per protocol; UDP use as given, TCP and ICMP idle.
PortUseTable table(std::uint64_t udp_a, std::uint64_t udp_b) {
    PortUseTable t;
    t.addresses = {*Ipv4Addr::parse("198.18.0.1"), *Ipv4Addr::parse("198.18.0.2")};
    t.use.assign(2 * kProtocolCount, PortUse{0, 1000});
    t.use[0 * kProtocolCount + static_cast<std::size_t>(proto_index(Protocol::udp))].used = udp_a;
    t.use[1 * kProtocolCount + static_cast<std::size_t>(proto_index(Protocol::udp))].used = udp_b;
    return t;
}

TEST(Watermark, RaisesOnceAndClearsOnlyBelowTheClearLine) {
    Watermark w(90, 80);
    EXPECT_EQ(w.update({899, 1000}), Watermark::Change::none);
    EXPECT_EQ(w.update({900, 1000}), Watermark::Change::raised);
    // Hovering between the lines: no second alarm and no clear.
    for (std::uint64_t used : {950u, 850u, 899u, 905u, 810u}) {
        EXPECT_EQ(w.update({used, 1000}), Watermark::Change::none) << used;
        EXPECT_TRUE(w.raised());
    }
    EXPECT_EQ(w.update({800, 1000}), Watermark::Change::cleared);
    EXPECT_FALSE(w.raised());
    EXPECT_EQ(w.update({850, 1000}), Watermark::Change::none);
    EXPECT_EQ(w.update({1000, 1000}), Watermark::Change::raised);
}

TEST(Watermark, SwitchedOffWhileRaisedClearsOnce) {
    Watermark w(50, 40);
    ASSERT_EQ(w.update({60, 100}), Watermark::Change::raised);
    Watermark off(0, 0);
    off.carry_over(w.raised());
    EXPECT_EQ(off.update({60, 100}), Watermark::Change::cleared);
    EXPECT_EQ(off.update({100, 100}), Watermark::Change::none);
}

TEST(Watermark, NothingUsableIsNeverAnAlarm) {
    Watermark w(90, 80);
    EXPECT_EQ(w.update({0, 0}), Watermark::Change::none);
}

TEST(ExhaustionForecast, LinearRiseGivesTheExactTimeLeft) {
    ExhaustionForecast f(600 * kSecond);
    // 10 ports a second from 0, 1000 usable: exhausted at t = 100 s.
    for (std::uint64_t t = 0; t <= 60; ++t) {
        f.add(t * kSecond, {t * 10, 1000});
    }
    ASSERT_TRUE(f.ports_per_second().has_value());
    EXPECT_NEAR(*f.ports_per_second(), 10.0, 1e-9);
    ASSERT_TRUE(f.seconds_to_exhaustion().has_value());
    EXPECT_NEAR(*f.seconds_to_exhaustion(), 40.0, 1e-6);
}

TEST(ExhaustionForecast, NoisyRiseIsFittedNotFollowed) {
    ExhaustionForecast f(300 * kSecond);
    // 5 ports/s with +-40 ports of alternating noise; 10000 usable, 2000 in use at t=0.
    for (std::uint64_t t = 0; t <= 300; ++t) {
        const std::uint64_t noise = t % 2 == 0 ? 40 : 0;
        f.add(t * kSecond, {2000 + t * 5 + noise, 10000});
    }
    ASSERT_TRUE(f.ports_per_second().has_value());
    EXPECT_NEAR(*f.ports_per_second(), 5.0, 0.05);
    // Line at t=300 is about 3520 (2000 + 1500 + the mean noise 20): (10000 - 3520) / 5 s left.
    ASSERT_TRUE(f.seconds_to_exhaustion().has_value());
    EXPECT_NEAR(*f.seconds_to_exhaustion(), 1296.0, 5.0);
}

TEST(ExhaustionForecast, FlatOrFallingUseNeverRunsOut) {
    ExhaustionForecast flat(100 * kSecond);
    ExhaustionForecast falling(100 * kSecond);
    for (std::uint64_t t = 0; t <= 100; ++t) {
        flat.add(t * kSecond, {500, 1000});
        falling.add(t * kSecond, {900 - t * 2, 1000});
    }
    EXPECT_FALSE(flat.seconds_to_exhaustion().has_value());
    EXPECT_FALSE(falling.seconds_to_exhaustion().has_value());
    EXPECT_NEAR(*falling.ports_per_second(), -2.0, 1e-9);
}

TEST(ExhaustionForecast, TooShortASeriesIsNoTrend) {
    ExhaustionForecast f(600 * kSecond);
    for (std::uint64_t t = 0; t < 30; ++t) { // 30 s of a 600 s window: under a tenth
        f.add(t * kSecond, {t * 10, 1000});
    }
    EXPECT_FALSE(f.ports_per_second().has_value());
    EXPECT_FALSE(f.seconds_to_exhaustion().has_value());
}

TEST(ExhaustionForecast, ExhaustedIsZeroEvenWithoutATrend) {
    ExhaustionForecast f(600 * kSecond);
    f.add(0, {1000, 1000});
    ASSERT_TRUE(f.seconds_to_exhaustion().has_value());
    EXPECT_EQ(*f.seconds_to_exhaustion(), 0.0);
}

TEST(ExhaustionForecast, OnlyTheWindowCountsAndMemoryIsBounded) {
    ExhaustionForecast f(120 * kSecond);
    // A steep climb long ago, then flat: the old climb is out of the window.
    for (std::uint64_t t = 0; t < 100; ++t) {
        f.add(t * kSecond, {t * 5, 10000});
    }
    for (std::uint64_t t = 100; t < 1000; ++t) {
        f.add(t * kSecond, {500, 10000});
    }
    EXPECT_LE(f.samples(), ExhaustionForecast::kMaxSamples + 1);
    EXPECT_NEAR(*f.ports_per_second(), 0.0, 1e-9);
    EXPECT_FALSE(f.seconds_to_exhaustion().has_value());
    // Sampled a thousand times a second, still at most kMaxSamples + 1 kept.
    for (std::uint64_t ms = 0; ms < 120 * kSecond; ++ms) {
        f.add(1000 * kSecond + ms, {500, 10000});
    }
    EXPECT_LE(f.samples(), ExhaustionForecast::kMaxSamples + 1);
}

TEST(ExhaustionForecast, AResizedPoolOrAClockStepStartsAgain) {
    ExhaustionForecast f(100 * kSecond);
    for (std::uint64_t t = 0; t <= 100; ++t) {
        f.add(t * kSecond, {t * 5, 1000});
    }
    ASSERT_TRUE(f.ports_per_second().has_value());
    f.add(101 * kSecond, {505, 2000}); // a pool address added
    EXPECT_EQ(f.samples(), 1u);
    EXPECT_FALSE(f.ports_per_second().has_value());
    f.add(50 * kSecond, {505, 2000}); // the clock stepped back
    EXPECT_EQ(f.samples(), 1u);
}

TEST(PoolWatch, PoolWideAlarmPerProtocolRaisedAndClearedOnce) {
    PoolWatch watch(config(90, 80, 60));
    // One address full, the other nearly empty: the pool is at 55 %, no alarm.
    EXPECT_TRUE(watch.sample(1 * kSecond, table(1000, 100)).empty());
    std::vector<AlarmChange> changes = watch.sample(2 * kSecond, table(1000, 800));
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].proto, Protocol::udp);
    EXPECT_TRUE(changes[0].raised);
    EXPECT_EQ(changes[0].use.used, 1800u);
    EXPECT_EQ(changes[0].use.usable, 2000u);
    EXPECT_EQ(changes[0].threshold, 90u);
    EXPECT_TRUE(watch.state().raised[static_cast<std::size_t>(proto_index(Protocol::udp))]);
    EXPECT_FALSE(watch.state().raised[static_cast<std::size_t>(proto_index(Protocol::tcp))]);
    EXPECT_TRUE(watch.sample(3 * kSecond, table(1000, 700)).empty()); // 85 %
    changes = watch.sample(4 * kSecond, table(900, 700));             // 80 %
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_FALSE(changes[0].raised);
    EXPECT_EQ(changes[0].threshold, 80u);

    const NatEvent raised = threshold_event({Protocol::udp, true, {1800, 2000}, 90}, 1234);
    EXPECT_EQ(raised.kind, NatEventKind::threshold_reached);
    EXPECT_EQ(raised.threshold, NatThreshold::address_pool_high);
    EXPECT_EQ(raised.proto, 17);
    EXPECT_EQ(raised.value, 90u);
    EXPECT_EQ(raised.time_ms, 1234u);
    EXPECT_EQ(threshold_event(changes[0], 0).threshold, NatThreshold::address_pool_low);
    EXPECT_EQ(describe(changes[0]),
              "pool udp ports cleared: 1600 of 2000 in use (80 %, cleared at 80 %)");
}

TEST(PoolWatch, NewThresholdsKeepARaisedAlarmUntilUseIsBelowTheNewClearLine) {
    PoolWatch watch(config(90, 80, 60));
    ASSERT_EQ(watch.sample(1 * kSecond, table(950, 950)).size(), 1u);
    watch.configure(config(98, 96, 60));
    EXPECT_TRUE(watch.sample(2 * kSecond, table(970, 970)).empty()); // 97 %: still raised
    const auto changes = watch.sample(3 * kSecond, table(950, 950)); // 95 %: below 96
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_FALSE(changes[0].raised);
    watch.configure(config(0, 0, 60));
    EXPECT_TRUE(watch.sample(4 * kSecond, table(1000, 1000)).empty()); // off: nothing raised
}

TEST(PoolWatch, ForecastsPerAddressFindTheAddressThatRunsOutFirst) {
    PoolWatch watch(config(90, 80, 60));
    for (std::uint64_t t = 0; t <= 60; ++t) {
        watch.sample(t * kSecond, table(400 + t * 5, 100)); // a: 5 ports/s, b: flat
    }
    const WatchState& s = watch.state();
    ASSERT_EQ(s.addresses.size(), 2 * kProtocolCount);
    const Forecast& a_udp = s.addresses[static_cast<std::size_t>(proto_index(Protocol::udp))];
    const Forecast& b_udp =
        s.addresses[kProtocolCount + static_cast<std::size_t>(proto_index(Protocol::udp))];
    EXPECT_EQ(a_udp.address, *Ipv4Addr::parse("198.18.0.1"));
    ASSERT_TRUE(a_udp.seconds_to_exhaustion.has_value());
    EXPECT_NEAR(*a_udp.seconds_to_exhaustion, (1000.0 - 700.0) / 5.0, 1e-6);
    EXPECT_FALSE(b_udp.seconds_to_exhaustion.has_value());
    // Pool-wide: 5 ports/s on 2000 usable, 800 in use now.
    const Forecast& pool_udp = s.pool[static_cast<std::size_t>(proto_index(Protocol::udp))];
    EXPECT_EQ(pool_udp.use.used, 800u);
    EXPECT_NEAR(*pool_udp.seconds_to_exhaustion, 1200.0 / 5.0, 1e-6);
    EXPECT_FALSE(s.pool[static_cast<std::size_t>(proto_index(Protocol::tcp))]
                     .seconds_to_exhaustion.has_value());
}

} // namespace
} // namespace ephemera::alarms
