// The operator's view of subscribers at scale: a bounded walk over a worker's subscriber
// records into a summary (subscriber_summary.hpp) for `ephemeractl top` and the metrics; the
// control thread asks through the worker's mailbox and merges the workers' summaries.
#include "ephemera/subscriber_sample.hpp"
#include "ephemera/translator.hpp"

namespace ephemera {

namespace {

// Ports of the blocks a subscriber holds, per protocol (every block gives each protocol each
// of its ports); at most max_blocks steps.
std::uint32_t block_ports(const PortAllocator& ports, const SubscriberBlocks& blocks) {
    std::uint32_t total = 0;
    std::uint32_t ref = blocks.first;
    for (std::uint32_t i = 0; ref != kNoBlock && i < blocks.count; ++i) {
        const PortBlock& b = ports.block(ref);
        total += std::uint32_t{b.granules} * kGranuleSlots;
        ref = b.next;
    }
    return total;
}

} // namespace

bool Translator::walk_subscribers(std::uint32_t& cursor, std::uint32_t budget,
                                  SubscriberSummary& out) const {
    const std::uint32_t end = tables_.subscribers.capacity();
    const bool blocks = policy().allocation == AllocationMode::blocks;
    for (std::uint32_t seen = 0; cursor < end && seen < budget; ++cursor, ++seen) {
        const Subscriber& sub = tables_.subscriber_records[cursor];
        std::optional<SubscriberSample> sample = sample_of(sub);
        if (!sample) {
            continue;
        }
        SubscriberSample& s = *sample;
        if (blocks) {
            s.blocks = sub.blocks.count;
            s.block_ports = block_ports(ports_, sub.blocks);
        }
        // The address costs a hash probe: only for a subscriber that may be listed.
        if (out.admits(s.most_ports(), s.refusals)) {
            if (!tables_.subscribers.live(cursor)) {
                continue;
            }
            s.subscriber = tables_.subscribers.key(cursor).address();
            if (sub.pool_index < pool().size()) {
                s.pool_address = pool().address(sub.pool_index);
            }
        }
        out.add(s);
    }
    return cursor >= end;
}

} // namespace ephemera
