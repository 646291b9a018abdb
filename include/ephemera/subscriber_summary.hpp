// Per-subscriber port use at scale, bounded in size whatever the number of subscribers: the
// top N by ports in use and by refusals, and histograms of ports per subscriber and of block
// fill. A worker builds one from its subscriber table off the packet path (a mailbox walk, a
// bounded step per housekeeping); the control thread merges the workers' summaries, so a
// million subscribers cost a scrape 2 x N entries and two histograms per worker.
//
// A subscriber's "ports" are those of its busiest protocol (Subscriber::most_ports()): what a
// port limit per protocol and a block have to cover, and never above 65535, so the histogram's
// last bound holds every subscriber.
#pragma once

#include "ephemera/types.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

namespace ephemera {

// One subscriber as the summary sees it.
struct SubscriberSample {
    Ipv4Addr subscriber;
    Ipv4Addr pool_address;
    std::array<std::uint32_t, kProtocolCount> ports{}; // by ProtoIndex
    std::uint32_t sessions = 0;
    std::uint32_t refusals = 0;    // new mappings refused while it had a record
    std::uint32_t blocks = 0;      // port blocks held (blocks mode)
    std::uint32_t block_ports = 0; // ports of those blocks, per protocol

    [[nodiscard]] std::uint32_t most_ports() const {
        std::uint32_t most = 0;
        for (const std::uint32_t p : ports) {
            most = p > most ? p : most;
        }
        return most;
    }
};

// The N largest samples by one key, largest first; ties go to the lower subscriber address so
// that merging top-Ns gives the top N of the union whatever the order.
template <std::size_t N>
class TopList {
public:
    using Key = std::uint32_t (*)(const SubscriberSample&);
    explicit constexpr TopList(Key key) : key_(key) {}

    // Whether a sample with this key could enter: lets a walk skip finding the address of
    // subscribers that cannot.
    [[nodiscard]] bool admits(std::uint32_t key) const {
        return key != 0 && (size_ < N || key >= key_(entries_[N - 1]));
    }
    // A sample with key 0 is never listed.
    void add(const SubscriberSample& s);

    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] const SubscriberSample& operator[](std::size_t i) const { return entries_[i]; }
    [[nodiscard]] const SubscriberSample* begin() const { return entries_.data(); }
    [[nodiscard]] const SubscriberSample* end() const { return entries_.data() + size_; }
    [[nodiscard]] std::uint32_t key(const SubscriberSample& s) const { return key_(s); }

private:
    [[nodiscard]] bool before(const SubscriberSample& a, const SubscriberSample& b) const {
        const std::uint32_t ka = key_(a);
        const std::uint32_t kb = key_(b);
        return ka != kb ? ka > kb : a.subscriber < b.subscriber;
    }

    Key key_;
    std::array<SubscriberSample, N> entries_{};
    std::size_t size_ = 0;
};

class SubscriberSummary {
public:
    static constexpr std::size_t kTop = 20;
    // Upper bounds 0, 1, 2, 4, ..., 65536.
    static constexpr std::size_t kPortBuckets = 18;
    // Upper bounds 10 %, 20 %, ..., 100 %.
    static constexpr std::size_t kFillBuckets = 10;

    SubscriberSummary();

    void clear();
    // O(log N) comparisons and at most N moves, no allocation.
    void add(const SubscriberSample& s);
    // Combines another worker's summary: the top N of both top Ns, histograms added.
    void merge(const SubscriberSummary& other);

    // Whether add() would list a subscriber with these figures in a top N: when neither, a
    // walk need not look up its address (the histograms do not need it).
    [[nodiscard]] bool admits(std::uint32_t most_ports, std::uint32_t refusals) const {
        return by_ports_.admits(most_ports) || by_refusals_.admits(refusals);
    }

    [[nodiscard]] static constexpr std::uint32_t port_bound(std::size_t bucket) {
        return bucket == 0 ? 0 : std::uint32_t{1} << (bucket - 1);
    }
    [[nodiscard]] static std::size_t port_bucket(std::uint32_t ports);
    // Fill in tenths, rounded up: 0 and up to 10 % go in the first bucket.
    [[nodiscard]] static std::size_t fill_bucket(std::uint32_t in_use, std::uint32_t capacity);

    std::uint64_t subscribers = 0;
    std::uint64_t ports_sum = 0; // of most_ports, for a histogram's _sum
    std::array<std::uint64_t, kPortBuckets> ports_histogram{}; // not cumulative
    std::uint64_t with_blocks = 0;                             // subscribers holding a block
    double fill_sum = 0;                                       // of fills as fractions
    std::array<std::uint64_t, kFillBuckets> fill_histogram{};

    [[nodiscard]] const TopList<kTop>& by_ports() const { return by_ports_; }
    [[nodiscard]] const TopList<kTop>& by_refusals() const { return by_refusals_; }

private:
    TopList<kTop> by_ports_;
    TopList<kTop> by_refusals_;
};

} // namespace ephemera
