#include "ephemera/subscriber_summary.hpp"

#include <algorithm>
#include <bit>

namespace ephemera {

template <std::size_t N>
void TopList<N>::add(const SubscriberSample& s) {
    if (!admits(key_(s))) {
        return;
    }
    const auto at = std::upper_bound(
        entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(size_), s,
        [this](const SubscriberSample& a, const SubscriberSample& b) { return before(a, b); });
    if (at == entries_.begin() + static_cast<std::ptrdiff_t>(N)) {
        return; // a tie with the last that loses on address
    }
    const auto last = entries_.begin() + static_cast<std::ptrdiff_t>(size_ < N ? size_ : N - 1);
    std::move_backward(at, last, last + 1);
    *at = s;
    size_ = size_ < N ? size_ + 1 : N;
}

template class TopList<SubscriberSummary::kTop>;

namespace {

std::uint32_t most_ports_of(const SubscriberSample& s) {
    return s.most_ports();
}
std::uint32_t refusals_of(const SubscriberSample& s) {
    return s.refusals;
}

} // namespace

SubscriberSummary::SubscriberSummary() : by_ports_(most_ports_of), by_refusals_(refusals_of) {}

void SubscriberSummary::clear() {
    *this = SubscriberSummary{};
}

std::size_t SubscriberSummary::port_bucket(std::uint32_t ports) {
    if (ports == 0) {
        return 0;
    }
    const auto bucket = 1 + static_cast<std::size_t>(std::bit_width(ports - 1));
    return std::min(bucket, kPortBuckets - 1);
}

std::size_t SubscriberSummary::fill_bucket(std::uint32_t in_use, std::uint32_t capacity) {
    if (capacity == 0 || in_use == 0) {
        return 0;
    }
    const std::uint64_t tenths = (std::uint64_t{in_use} * 10 + capacity - 1) / capacity;
    return static_cast<std::size_t>(std::clamp<std::uint64_t>(tenths, 1, kFillBuckets) - 1);
}

void SubscriberSummary::add(const SubscriberSample& s) {
    const std::uint32_t most = s.most_ports();
    ++subscribers;
    ports_sum += most;
    ++ports_histogram[port_bucket(most)];
    if (s.block_ports != 0) {
        ++with_blocks;
        fill_sum += static_cast<double>(most) / static_cast<double>(s.block_ports);
        ++fill_histogram[fill_bucket(most, s.block_ports)];
    }
    by_ports_.add(s);
    by_refusals_.add(s);
}

void SubscriberSummary::merge(const SubscriberSummary& other) {
    subscribers += other.subscribers;
    ports_sum += other.ports_sum;
    with_blocks += other.with_blocks;
    fill_sum += other.fill_sum;
    for (std::size_t i = 0; i < kPortBuckets; ++i) {
        ports_histogram[i] += other.ports_histogram[i];
    }
    for (std::size_t i = 0; i < kFillBuckets; ++i) {
        fill_histogram[i] += other.fill_histogram[i];
    }
    for (const SubscriberSample& s : other.by_ports_) {
        by_ports_.add(s);
    }
    for (const SubscriberSample& s : other.by_refusals_) {
        by_refusals_.add(s);
    }
}

} // namespace ephemera
