// The translator fuzzer's checks: on every frame the workers send (check_sent), on what a
// refused packet leaves behind (check_refusal), and on the state every worker holds
// (check_state, check_mapping). world.hpp lists them; docs/reliability.md says why.
#include "world.hpp"

#include "ephemera/l2.hpp"

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>

namespace ephemera::fuzz {

namespace {

std::string hex(std::span<const std::uint8_t> bytes) {
    std::string out;
    char b[4];
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::snprintf(b, sizeof b, "%02x", bytes[i]);
        out += b;
        out += (i % 16 == 15) ? '\n' : ' ';
    }
    return out;
}

// Why the translator refuses to make a mapping (translator.cpp, is_mapping_refusal).
constexpr Counter kMappingRefusals[] = {
    Counter::drop_ports_exhausted,       Counter::drop_sessions_exhausted,
    Counter::drop_subscribers_exhausted, Counter::drop_subscriber_sessions,
    Counter::drop_subscriber_ports,      Counter::drop_subscriber_rate,
    Counter::drop_subscriber_blocks,     Counter::drop_blocks_exhausted,
    Counter::drop_not_deterministic,
};

} // namespace

Tag& tag_field(const Platform& platform, rte_mbuf* m) {
    return *RTE_MBUF_DYNFIELD(m, platform.tag_offset, Tag*);
}

std::optional<Tag> tag_of(const Platform& platform, rte_mbuf* m) {
    if ((m->ol_flags & platform.injected_flag) == 0) {
        return std::nullopt;
    }
    return tag_field(platform, m);
}

void World::check_sent(Side side, WorkerId worker, rte_mbuf* m) {
    const std::optional<Tag> tag = tag_of(platform_, m);
    const std::uint8_t flags = tag ? tag->flags : 0;
    if (m->nb_segs != 1 || m->next != nullptr || m->pkt_len != m->data_len) {
        violated("a frame in more than one segment, or with pkt_len != data_len");
    }
    if (std::size_t{m->data_off} + m->data_len > m->buf_len) {
        violated("a frame runs past the end of its buffer");
    }
    const std::span<const std::uint8_t> frame(rte_pktmbuf_mtod(m, const std::uint8_t*),
                                              m->data_len);
    if (frame.size() < kEthLen) {
        violated("a frame shorter than its Ethernet header", frame);
    }
    const std::uint8_t* d = frame.data();
    if (std::memcmp(d + 6, mac(side).bytes, 6) != 0) {
        violated("Ethernet source is not the MAC of the port it leaves by", frame);
    }
    const std::uint16_t ether_type = be16(d + 12);
    if (ether_type == 0x0806) {
        const auto arp = parse_arp(frame);
        if (!arp || (arp->op != kArpOpReply && arp->op != kArpOpRequest) ||
            arp->sender_mac != mac(side)) {
            violated("an ARP frame that is not our request or reply", frame);
        }
        if (side == Side::inside ? arp->sender_ip != current_->inside.gateway
                                 : !pool_ever_.contains(arp->sender_ip.value())) {
            violated("ARP for an address that is not ours on that port", frame);
        }
        return;
    }
    if (ether_type != 0x0800) {
        violated("a frame that is neither IPv4 nor ARP", frame);
    }
    const std::span<const std::uint8_t> header = frame.subspan(kEthLen);
    if (!ipv4_header_ok(header)) {
        violated("an IPv4 header that is malformed or whose checksum is wrong", frame);
    }
    const std::uint8_t* ip = header.data();
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    const std::size_t total = be16(ip + 2);
    if (total < ihl || kEthLen + total > frame.size()) {
        violated("IPv4 total length beyond the frame or below the header", frame);
    }
    if (ip[8] == 0) {
        violated("TTL 0 sent", frame);
    }
    const std::uint8_t proto = ip[9];
    if (proto != kUdp && proto != kTcp && proto != kIcmp) {
        violated("a protocol ephemera does not translate was sent", frame);
    }
    const std::uint32_t src = be32(ip + 12);
    const std::uint32_t dst = be32(ip + 16);
    if (side == Side::outside) {
        if (!pool_ever_.contains(src)) {
            violated("sent out with a source that is not a pool address", frame);
        }
        if (pool_ever_.contains(dst) && (flags & kTagOddSource) == 0) {
            violated("sent out to one of our own pool addresses: it never comes back", frame);
        }
    } else if (!inside_sources_.contains(dst) && !static_hosts_.contains(dst)) {
        violated("sent inside to an address no subscriber sent from", frame);
    }
    // What a packet becomes, by where it came in and where it leaves: a subscriber's packet
    // going out keeps its destination (only its source is translated); an outside packet
    // going in keeps its source; an outside packet sent back out is an answer to its sender.
    if (tag && (tag->flags & kTagOddSource) == 0) {
        if (tag->side == Side::inside && side == Side::outside && dst != tag->dst) {
            violated("a subscriber's packet left by the outside port with another destination",
                     frame);
        }
        if (tag->side == Side::outside && side == Side::inside && src != tag->src) {
            violated("an outside packet left by the inside port with another source", frame);
        }
        if (tag->side == Side::outside && side == Side::outside && dst != tag->src) {
            violated("an outside packet was sent back out, but not to its sender", frame);
        }
    }
    const std::uint16_t frag = be16(ip + 6);
    const bool first = (frag & 0x1fff) == 0;
    const bool whole = first && (frag & 0x2000) == 0;
    const std::span<const std::uint8_t> l4 = header.subspan(ihl, total - ihl);
    const bool icmp_header = proto == kIcmp && first && l4.size() >= 8;
    const std::uint8_t icmp_type = icmp_header ? l4[0] : 0xff;
    // The MTU of the config the sending worker has latched. Echo replies answer a request that
    // came over the same link, whatever its size.
    const Policy& policy = workers_[worker]->translator().policy();
    if (total > (side == Side::inside ? policy.inside_mtu : policy.outside_mtu) && icmp_type != 0) {
        violated("larger than the MTU of the port it leaves by", frame);
    }
    if (whole && (flags & kTagL4Invalid) == 0 &&
        transport_checksum(header.first(total)) == L4Sum::invalid) {
        violated("transport checksum wrong (it was right when the packet came in)", frame);
    }
    if (icmp_header && (icmp_type == 3 || icmp_type == 11 || icmp_type == 12)) {
        // Whatever an error quotes (a packet as it came, or translated) has a right header.
        if (l4.size() < 8 + 20 || !ipv4_header_ok(l4.subspan(8))) {
            violated("an ICMP error whose quoted IPv4 header is cut or wrong", frame);
        }
    }
    if (first && total >= ihl + 8) {
        remember_sent(side, header.first(total));
    }
}

void World::remember_sent(Side side, std::span<const std::uint8_t> packet) {
    const std::size_t ihl = std::size_t{packet[0] & 0x0fu} * 4;
    const std::uint8_t* l4 = packet.data() + ihl;
    Flow f;
    f.proto = packet[9];
    f.src = be32(packet.data() + 12);
    f.dst = be32(packet.data() + 16);
    if (f.proto == kIcmp) {
        if (l4[0] != 0 && l4[0] != 8) {
            return; // only echo flows are worth answering
        }
        f.sport = f.dport = be16(l4 + 4);
    } else {
        f.sport = be16(l4);
        f.dport = be16(l4 + 2);
    }
    f.quote_len = static_cast<std::uint8_t>(std::min(packet.size(), f.quote.size()));
    std::copy_n(packet.begin(), f.quote_len, f.quote.begin());
    sent_[static_cast<std::size_t>(side)].add(f);
}

World::RefusalWatch World::watch(WorkerId owner) const {
    const Worker& w = *workers_[owner];
    RefusalWatch r;
    for (Counter c : kMappingRefusals) {
        r.refusals += w.counters().get(c);
    }
    r.no_room = w.counters().get(Counter::drop_subscribers_exhausted);
    r.at_max_blocks = w.counters().get(Counter::drop_subscriber_blocks);
    r.no_block = w.counters().get(Counter::drop_blocks_exhausted);
    r.released = w.counters().get(Counter::mappings_released);
    r.subscribers = w.translator().live_subscribers();
    r.mappings = w.translator().live_mappings();
    r.sessions = w.translator().live_sessions();
    return r;
}

// RFC 6888 REQ-5 and the translator's promise: a refused packet leaves nothing behind. No
// subscriber, mapping or session appears (expiry in the same step may only take some away),
// and a subscriber refused for want of room in the subscriber table has no mapping at all.
void World::check_refusal(const ParsedPacket& p, WorkerId owner, const RefusalWatch& before) {
    const RefusalWatch after = watch(owner);
    if (after.refusals == before.refusals) {
        return;
    }
    if (after.refusals != before.refusals + 1) {
        violated("one packet counted as refused " +
                 std::to_string(after.refusals - before.refusals) + " times");
    }
    if (after.subscribers > before.subscribers || after.mappings > before.mappings ||
        after.sessions > before.sessions) {
        violated("a refused packet from " + p.src.to_string() +
                 " left a subscriber, a mapping or a session behind");
    }
    if (after.no_room != before.no_room) {
        const Translator& t = workers_[owner]->translator();
        snapshot_.resize(t.live_mappings() + 1);
        const std::size_t n = t.snapshot_mappings(snapshot_);
        for (std::size_t i = 0; i < n; ++i) {
            if (snapshot_[i].inside == p.src) {
                violated("subscriber " + p.src.to_string() +
                         " was refused for want of room in the subscriber table, yet has a "
                         "mapping");
            }
        }
    }
    // A blocks-mode refusal is warranted: the subscriber holds max_blocks blocks, or no block of
    // the smallest size is free where it could have opened one (its anchor; for a subscriber
    // the refusal left no record of, any address in the pool). Unless a mapping ended in the
    // same step, which may have freed a block since.
    if (after.released != before.released) {
        return;
    }
    const Translator& t = workers_[owner]->translator();
    const auto sub = t.find_subscriber(p.src);
    if (after.at_max_blocks != before.at_max_blocks &&
        (!sub || sub->record->blocks.count < t.policy().blocks.max_blocks)) {
        violated(p.src.to_string() + " was refused for holding max_blocks blocks, but holds " +
                 std::to_string(sub ? sub->record->blocks.count : 0));
    }
    if (after.no_block != before.no_block) {
        const std::uint32_t smallest = t.policy().blocks.smallest();
        for (std::uint16_t a = 0; a < t.pool().size(); ++a) {
            if ((sub ? a == sub->record->pool_index : t.is_active(a)) &&
                t.ports().has_free_block(a, smallest, now_)) {
                violated(p.src.to_string() + " was refused for want of a free block, but " +
                         t.pool().address(a).to_string() + " has one on worker " +
                         std::to_string(owner));
            }
        }
    }
}

void World::check_mapping(WorkerId w, const MappingView& m) const {
    const auto where = [&] {
        return std::string(protocol_name(m.proto)) + " " + m.inside.to_string() + ":" +
               std::to_string(m.inside_port) + " -> " + m.external.to_string() + ":" +
               std::to_string(m.external_port) + " on worker " + std::to_string(w) + ": ";
    };
    if (shared_.ownership.subscriber_owner(m.inside) != w) {
        violated(where() + "not the subscriber's owner");
    }
    if (!pool_ever_.contains(m.external.value())) {
        violated(where() + "not a pool address");
    }
    if (m.is_static) { // the entry's endpoint: its host's worker owns it, outside the range
        if (!static_hosts_.contains(m.inside.value())) {
            violated(where() + "a static mapping of a host no static entry named");
        }
    } else if (shared_.ownership.port_owner(m.external, m.external_port) != w) {
        violated(where() + "not the external port's owner");
    }
    if (!range_changed_ && !m.is_static) {
        const Config& c = *current_;
        const bool reserved = std::any_of(c.reserved.begin(), c.reserved.end(),
                                          [&](PortRange r) { return r.contains(m.external_port); });
        if (!c.port_range.contains(m.external_port) || reserved) {
            violated(where() + "an external port outside the range or reserved");
        }
    }
    if (m.sessions == 0) {
        violated(where() + "a mapping without a session");
    }
}

void World::check_blocks(WorkerId w, std::span<const MappingView> mappings) const {
    const Translator& t = workers_[w]->translator();
    const PortAllocator& ports = t.ports();
    const PortSlice& slice = ports.slice();
    const std::string on = " on worker " + std::to_string(w);
    const std::uint32_t granules = (slice.slot_count() + kGranuleSlots - 1) / kGranuleSlots;
    const auto name = [](std::uint32_t ref) {
        return "block " + std::to_string(block_pool(ref)) + "/" +
               std::to_string(block_granule(ref));
    };
    // The block of each mapping's port (by its first granule), and the subscribers that hold
    // blocks by their index. A live block always has a mapping (its last one frees it), so its
    // holder is among the mappings' subscribers.
    std::map<std::uint32_t, std::uint32_t> mappings_in; // block -> mappings
    std::map<std::uint32_t, Ipv4Addr> holders;          // subscriber index -> address
    const bool blocks = t.policy().allocation == AllocationMode::blocks;
    for (const MappingView& m : blocks ? mappings : std::span<const MappingView>{}) {
        if (m.is_static) {
            continue; // in no block
        }
        const auto where = [&] {
            return std::string(protocol_name(m.proto)) + " " + m.inside.to_string() + ":" +
                   std::to_string(m.inside_port) + " -> " + m.external.to_string() + ":" +
                   std::to_string(m.external_port) + on + ": ";
        };
        const auto sub = t.find_subscriber(m.inside);
        if (!sub) {
            violated(where() + "its subscriber has no record");
        }
        holders.emplace(sub->index, m.inside);
        const std::uint16_t pool_index = t.pool().find(m.external);
        const auto slot = slice.slot_of(m.external_port); // owned: check_mapping
        if (pool_index == kNoPool || !slot) {
            violated(where() + "no pool index or slot for the external endpoint");
        }
        const PortBlock& g = ports.block(block_ref(pool_index, *slot / kGranuleSlots));
        if (g.holder != sub->index) {
            violated(where() + "the external port is not in a block its subscriber holds");
        }
        ++mappings_in[block_ref(pool_index, g.head)];
    }
    // Each holder's list: as long as its count and max_blocks, every block on it held by it
    // whole, listed once, and filled by as many mappings as its in_use says.
    std::map<std::uint32_t, std::uint32_t> listed; // block -> holder
    for (const auto& [index, inside] : holders) {
        const SubscriberBlocks& list = t.find_subscriber(inside)->record->blocks;
        const std::string who = "subscriber " + inside.to_string() + on + ": ";
        std::uint32_t length = 0;
        for (std::uint32_t ref = list.first; ref != kNoBlock; ref = ports.block(ref).next) {
            if (++length > BlocksConfig::kMaxBlocks) {
                violated(who + "its block list runs past " +
                         std::to_string(BlocksConfig::kMaxBlocks) + " (a loop?)");
            }
            const std::uint32_t first = block_granule(ref);
            if (block_pool(ref) >= ports.addresses() || first >= granules) {
                violated(who + "lists " + name(ref) + ", which does not exist");
            }
            const PortBlock& b = ports.block(ref);
            if (b.holder != index || b.head != first || b.granules == 0) {
                violated(who + "lists " + name(ref) + ", which is not a block it holds");
            }
            if (!listed.emplace(ref, index).second) {
                violated(who + "lists " + name(ref) + " twice");
            }
            for (std::uint32_t g = first; g < first + b.granules; ++g) {
                if (g * kGranuleSlots + kGranuleSlots > slice.slot_count()) {
                    violated(who + name(ref) + " runs past the worker's slots");
                }
                const PortBlock& part = ports.block(block_ref(block_pool(ref), g));
                if (part.holder != index || part.head != first) {
                    violated(who + name(ref) + "'s granule " + std::to_string(g) +
                             " is not part of it (in another block?)");
                }
                const std::uint16_t lo = slice.port_of(g * kGranuleSlots);
                const std::uint16_t hi = slice.port_of(g * kGranuleSlots + kGranuleSlots - 1);
                if (lo < 1024) {
                    violated(who + name(ref) + " holds system port " + std::to_string(lo));
                }
                const PortRange range = current_->port_range;
                if (!range_changed_ && (lo < (range.lo & ~1u) || hi > (range.hi | 1u))) {
                    violated(who + name(ref) + " holds ports " + std::to_string(lo) + "-" +
                             std::to_string(hi) + ", outside the port range");
                }
            }
            const auto filled = mappings_in.find(ref);
            const std::uint32_t n = filled == mappings_in.end() ? 0 : filled->second;
            if (b.in_use != n) {
                violated(who + name(ref) + " counts " + std::to_string(b.in_use) +
                         " mappings in use, " + std::to_string(n) + " lie in it");
            }
        }
        if (length != list.count) {
            violated(who + "counts " + std::to_string(list.count) + " blocks, its list holds " +
                     std::to_string(length));
        }
        if (length > most_blocks_) {
            violated(who + "holds " + std::to_string(length) + " blocks, above max_blocks");
        }
    }
    // Every held granule is part of a listed block (none is lost, none held in dynamic mode).
    for (std::uint16_t p = 0; p < ports.addresses(); ++p) {
        for (std::uint32_t g = 0; g < granules; ++g) {
            const PortBlock& part = ports.block(block_ref(p, g));
            if (part.holder != kNoHolder && !listed.contains(block_ref(p, part.head))) {
                violated("granule " + std::to_string(p) + "/" + std::to_string(g) + on +
                         " is held by subscriber index " + std::to_string(part.holder) +
                         " but on no live subscriber's block list");
            }
        }
    }
    const CounterBlock& counters = workers_[w]->counters();
    const std::uint64_t opened = counters.get(Counter::blocks_opened);
    const std::uint64_t released = counters.get(Counter::blocks_released);
    if (opened - released != listed.size()) {
        violated("blocks_opened " + std::to_string(opened) + " - blocks_released " +
                 std::to_string(released) + on + ", but " + std::to_string(listed.size()) +
                 " blocks are in use");
    }
}

void World::check_state() {
    struct Key {
        std::uint32_t addr;
        std::uint16_t port;
        Protocol proto;
        auto operator<=>(const Key&) const = default;
    };
    std::vector<Key> externals;
    std::vector<Key> insides;
    std::vector<std::tuple<std::uint32_t, Protocol, std::uint32_t>> by_subscriber;
    for (WorkerId id = 0; id < shared_.workers; ++id) {
        const Translator& t = workers_[id]->translator();
        snapshot_.resize(t.live_mappings() + 1);
        const std::size_t n = t.snapshot_mappings(snapshot_);
        if (n != t.live_mappings()) {
            violated("worker " + std::to_string(id) + " counts " +
                     std::to_string(t.live_mappings()) + " mappings, its table holds " +
                     std::to_string(n));
        }
        std::uint64_t sessions = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const MappingView& m = snapshot_[i];
            check_mapping(id, m);
            sessions += m.sessions;
            externals.push_back({m.external.value(), m.external_port, m.proto});
            insides.push_back({m.inside.value(), m.inside_port, m.proto});
            if (!m.is_static) { // statics take no pool port and keep their own address
                by_subscriber.emplace_back(m.inside.value(), m.proto, m.external.value());
            }
        }
        check_blocks(id, std::span<const MappingView>(snapshot_.data(), n));
        if (sessions != t.live_sessions()) {
            violated("worker " + std::to_string(id) + " counts " +
                     std::to_string(t.live_sessions()) + " sessions, its mappings " +
                     std::to_string(sessions));
        }
        if (t.live_sessions() > t.policy().max_sessions ||
            t.live_subscribers() > t.policy().max_subscribers) {
            violated("worker " + std::to_string(id) +
                     " holds more than its session or "
                     "subscriber limit");
        }
    }
    // RFC 4787 REQ-3: no two mappings share an external endpoint; REQ-1: one mapping per
    // inside endpoint.
    for (auto* keys : {&externals, &insides}) {
        std::sort(keys->begin(), keys->end());
        if (std::adjacent_find(keys->begin(), keys->end()) != keys->end()) {
            violated(keys == &externals ? "two mappings share an external endpoint"
                                        : "two mappings for one inside endpoint");
        }
    }
    // RFC 6888 REQ-4: ports per subscriber and protocol; RFC 4787 REQ-2: one external address
    // per subscriber (unless its address left the pool and it moved).
    std::sort(by_subscriber.begin(), by_subscriber.end());
    for (std::size_t i = 0; i < by_subscriber.size();) {
        std::size_t j = i;
        while (j < by_subscriber.size() &&
               std::get<0>(by_subscriber[j]) == std::get<0>(by_subscriber[i]) &&
               std::get<1>(by_subscriber[j]) == std::get<1>(by_subscriber[i])) {
            ++j;
        }
        const auto proto = static_cast<std::size_t>(proto_index(std::get<1>(by_subscriber[i])));
        if (j - i > most_ports_[proto]) {
            violated(Ipv4Addr{std::get<0>(by_subscriber[i])}.to_string() + " holds " +
                     std::to_string(j - i) + " mappings of one protocol, above its limit");
        }
        i = j;
    }
    if (!pool_shrunk_) {
        for (std::size_t i = 1; i < by_subscriber.size(); ++i) {
            if (std::get<0>(by_subscriber[i]) == std::get<0>(by_subscriber[i - 1]) &&
                std::get<2>(by_subscriber[i]) != std::get<2>(by_subscriber[i - 1])) {
                violated(Ipv4Addr{std::get<0>(by_subscriber[i])}.to_string() +
                         " is mapped to two pool addresses (paired pooling)");
            }
        }
    }
}

[[noreturn]] void World::violated(const std::string& what,
                                  std::span<const std::uint8_t> frame) const {
    std::fprintf(stderr, "\n==== ephemera fuzz: invariant violated: %s\n", what.c_str());
    if (!frame.empty()) {
        std::fprintf(stderr, "frame (%zu bytes):\n%s\n", frame.size(), hex(frame).c_str());
    }
    std::fprintf(stderr, "world %llu (%s, next hop %s), clock %u ticks\n",
                 static_cast<unsigned long long>(incarnation_), pool_mode_name(mode_),
                 base_.outside.next_hop_mac ? "given" : "learned by ARP", now_);
    std::abort();
}

} // namespace ephemera::fuzz
