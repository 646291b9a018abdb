#include "ephemera/translator.hpp"

#include "ephemera/icmp_error.hpp"
#include "ephemera/icmp_translate.hpp"
#include "ephemera/l2.hpp"
#include "ephemera/rewrite.hpp"
#include "ephemera/tcp_state.hpp"

#include <rte_hash.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <atomic>
#include <string>

namespace ephemera {

namespace {

// Each translator's tables get process-unique rte_hash names, so any number can coexist.
std::string unique_table_name(WorkerId worker) {
    static std::atomic<unsigned> instances{0};
    return "eph" + std::to_string(instances.fetch_add(1)) + "_w" + std::to_string(worker);
}

std::uint32_t share_of(std::uint32_t total, WorkerId workers) {
    return std::max<std::uint32_t>(1, (total + workers - 1) / workers);
}

constexpr std::uint64_t kAnchorDomain = 0x616e63686f72; // "anchor": separates this use of the key

MappingKey mapping_key(const ParsedPacket& p) {
    MappingKey k{};
    k.inside_addr = p.src.value();
    k.inside_port = p.src_port;
    k.proto = static_cast<std::uint8_t>(p.proto);
    return k;
}

constexpr Tick seconds(std::uint32_t s) {
    return s * kTicksPerSecond;
}

// Adds what `elapsed` ticks earned to a token bucket; true (and one item's tokens spent) when
// it holds enough. rate == 0 means unlimited.
bool take_token(std::uint32_t& tokens, Tick& refilled_at, Tick now, std::uint32_t rate,
                std::uint32_t burst) {
    if (rate == 0) {
        return true;
    }
    const std::uint64_t earned = std::uint64_t{now - refilled_at} * rate;
    tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(burst, tokens + earned));
    refilled_at = now;
    if (tokens < kTicksPerSecond) {
        return false;
    }
    tokens -= kTicksPerSecond;
    return true;
}

bool is_mapping_refusal(Counter c) {
    return c == Counter::drop_ports_exhausted || c == Counter::drop_sessions_exhausted ||
           c == Counter::drop_subscribers_exhausted || c == Counter::drop_subscriber_sessions ||
           c == Counter::drop_subscriber_ports || c == Counter::drop_subscriber_rate;
}

} // namespace

Policy Policy::from(const Config& config, WorkerId workers) {
    Policy p;
    p.filtering = config.filtering;
    p.timeout[static_cast<std::size_t>(ProtoIndex::udp)] = seconds(config.timeouts.udp);
    p.timeout[static_cast<std::size_t>(ProtoIndex::tcp)] = seconds(config.timeouts.tcp_established);
    p.timeout[static_cast<std::size_t>(ProtoIndex::icmp)] = seconds(config.timeouts.icmp);
    p.tcp_transitory = seconds(config.timeouts.tcp_transitory);
    p.hold_down = seconds(config.timeouts.port_hold_down);
    p.inbound_refresh = config.timeouts.inbound_refresh;
    p.max_sessions = share_of(config.limits.max_sessions, workers);
    p.max_subscribers = share_of(config.limits.subscribers(), workers);
    p.subscriber_sessions = config.limits.subscriber_sessions;
    p.subscriber_ports = {config.limits.subscriber_ports_udp, config.limits.subscriber_ports_tcp,
                          config.limits.subscriber_ports_icmp};
    // Buckets count in 1/kTicksPerSecond of an item, so a rate per second is a rate per tick.
    p.mapping_rate = config.limits.subscriber_mapping_rate;
    p.mapping_burst = config.limits.subscriber_mapping_burst * kTicksPerSecond;
    p.icmp_unreachable = config.icmp.unreachable && config.icmp.unreachable_rate > 0;
    p.icmp_rate = config.icmp.unreachable_rate;
    p.icmp_burst = std::max<std::uint32_t>(config.icmp.unreachable_rate, 1) * kTicksPerSecond;
    p.gateway = config.inside.gateway;
    p.syn_unreachable = config.icmp.unsolicited_syn_unreachable;
    p.inside_mtu = config.inside.mtu;
    p.outside_mtu = config.outside.mtu;
    return p;
}

Translator::Translator(const Config& config, const Ownership& ownership, WorkerId worker,
                       SipKey port_secret, CounterBlock& counters, int socket, Tick start)
    : policy_(Policy::from(config, ownership.workers())), secret_(port_secret), pool_(config.pool),
      active_(config.pool.size(), 1), range_(config.port_range), reserved_(config.reserved),
      counters_(counters), ports_(ownership, worker, config.port_range, config.reserved,
                                  config.pool.size(), port_secret),
      tables_(unique_table_name(worker), policy_.max_sessions, policy_.max_subscribers,
              config.pool.size(), ports_.slice().slot_count(), socket),
      wheel_(tables_.sessions.capacity(), start), hold_down_(ports_.locations()),
      icmp_tokens_(policy_.icmp_burst), icmp_refilled_at_(start), workers_(ownership.workers()),
      permissions_live_(policy_.filtering == FilteringMode::address_dependent) {}

SessionKey Translator::session_key(const PacketRef& pkt) {
    if (pkt.parsed.icmp_error) {
        return icmp_error_session_key(pkt.parsed); // the flow the error is about
    }
    SessionKey k{};
    k.inside_addr = pkt.parsed.src.value();
    k.remote_addr = pkt.parsed.dst.value();
    k.inside_port = pkt.parsed.src_port;
    k.remote_port = pkt.parsed.proto == Protocol::icmp ? 0 : pkt.parsed.dst_port;
    k.proto = static_cast<std::uint8_t>(pkt.parsed.proto);
    return k;
}

void Translator::in2out(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                        std::span<Verdict> verdicts) {
    for (std::size_t done = 0; done < packets.size(); done += kMaxBurst) {
        const std::size_t n = std::min(kMaxBurst, packets.size() - done);
        in2out_burst(packets.subspan(done, n), now, l2, verdicts.subspan(done, n));
    }
    mark_hairpins(packets, verdicts);
}

// Whatever in2out sends out (a translation, a translated ICMP error) and is addressed to one
// of our pool addresses goes back in through out2in instead: the destination subscriber then
// sees the sender's external address and port (RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508
// REQ-7), and filtering treats the sender as any outside host.
void Translator::mark_hairpins(std::span<PacketRef> packets, std::span<Verdict> verdicts) {
    std::uint64_t hairpins = 0;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        if (verdicts[i] != Verdict::forward) {
            continue;
        }
        const std::uint8_t* ip = packets[i].frame + packets[i].parsed.l3;
        if (pool_.find(Ipv4Addr{load_be32(ip + ipv4_off::dst)}) != kNoPool) {
            verdicts[i] = Verdict::hairpin;
            ++hairpins;
        }
    }
    if (hairpins != 0) {
        counters_.add(Counter::hairpinned, hairpins);
    }
}

// A pool address answers pings like any host address: from outside (so an operator can see
// that the address is up) and from a subscriber through a hairpin, whose answer hairpins in
// turn to reach the subscriber's echo mapping.
Verdict Translator::answer_echo(PacketRef& pkt, const MacAddr& our_mac) {
    make_echo_reply({pkt.frame, pkt.length}, pkt.parsed, our_mac);
    counters_.add(Counter::pool_echo_replies_sent);
    const bool to_pool = pool_.find(pkt.parsed.src) != kNoPool; // the reply's destination
    return to_pool ? Verdict::hairpin : Verdict::reply;
}

void Translator::out2in(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                        std::span<Verdict> verdicts) {
    for (std::size_t done = 0; done < packets.size(); done += kMaxBurst) {
        const std::size_t n = std::min(kMaxBurst, packets.size() - done);
        out2in_burst(packets.subspan(done, n), now, l2, verdicts.subspan(done, n));
    }
    // An ICMP error we answer a hairpinned packet with (its TTL ran out here, or it was too
    // big for the inside with DF) is addressed to the sender's external address, one of ours:
    // it goes back in like the packet came, and reaches the sender through its mapping as any
    // error about its flow would (RFC 5508 REQ-7). Sent out, it would never come back.
    std::uint64_t hairpins = 0;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        if (verdicts[i] != Verdict::reply) {
            continue;
        }
        const std::uint8_t* ip = packets[i].frame + packets[i].parsed.l3;
        if (pool_.find(Ipv4Addr{load_be32(ip + ipv4_off::dst)}) != kNoPool) {
            verdicts[i] = Verdict::hairpin;
            ++hairpins;
        }
    }
    if (hairpins != 0) {
        counters_.add(Counter::hairpinned, hairpins);
    }
}

void Translator::in2out_burst(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                              std::span<Verdict> verdicts) {
    const auto n = static_cast<std::uint32_t>(packets.size());
    // Stage 1: keys for the whole burst, then one bulk lookup (l3fwd's em_hlm pattern).
    for (std::uint32_t i = 0; i < n; ++i) {
        keys_[i] = session_key(packets[i]);
        key_ptrs_[i] = &keys_[i];
    }
    tables_.sessions.lookup_bulk(key_ptrs_, n, positions_);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (positions_[i] >= 0) {
            rte_prefetch0(&tables_.session_records[static_cast<std::uint32_t>(positions_[i])]);
        }
    }

    // Stage 2: hits are rewritten in place; misses go to the slow path one by one, since an
    // earlier miss in the same burst may create the session a later one needs.
    std::uint64_t translated = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        PacketRef& pkt = packets[i];
        verdicts[i] = Verdict::drop;
        if (pkt.frame[pkt.parsed.l3 + ipv4_off::ttl] <= 1 && !pkt.parsed.icmp_error) {
            verdicts[i] = time_exceeded(pkt, now, policy_.gateway, l2.inside_port_mac);
            continue;
        }
        if (pkt.parsed.dst.is_martian() || pkt.parsed.src.is_martian()) {
            counters_.add(Counter::drop_martian); // and never a mapping for it
            continue;
        }
        if (pkt.parsed.icmp_error) {
            verdicts[i] = icmp_error_in2out(pkt, keys_[i], positions_[i], l2);
            continue;
        }
        if (pkt.parsed.proto == Protocol::icmp && pkt.parsed.icmp_type != kIcmpEchoRequest) {
            counters_.add(Counter::drop_unsupported_protocol); // only queries open a mapping
            continue;
        }
        std::int32_t pos = positions_[i];
        if (pos < 0) {
            const Miss miss = in2out_miss(pkt, keys_[i], now);
            if (miss.session < 0) {
                verdicts[i] = refuse(pkt, miss.refusal, now, l2);
                continue;
            }
            pos = miss.session;
        }
        if (exceeds(pkt.parsed, policy_.outside_mtu)) {
            verdicts[i] =
                too_big(pkt, policy_.outside_mtu, policy_.gateway, l2.inside_port_mac, now);
            continue;
        }
        finish_in2out(pkt, static_cast<std::uint32_t>(pos), now, l2);
        verdicts[i] = Verdict::forward;
        ++translated;
    }
    counters_.add(Counter::in2out_translated, translated);
}

void Translator::finish_in2out(PacketRef& pkt, std::uint32_t session, Tick now,
                               const L2Context& l2) {
    Session& s = tables_.session_records[session];
    s.last_seen = now; // outbound always refreshes (RFC 4787 REQ-6)
    // Only SYN, FIN and RST move the TCP state, and any packet clears an RST mark: other
    // packets of a session without one leave it as it is.
    if (pkt.parsed.proto == Protocol::tcp &&
        (tcp_is_control(pkt.parsed.tcp_flags) || (s.flags & tcp_seen::rst) != 0)) {
        track_tcp(session, s, pkt.parsed.tcp_flags, true);
        if ((pkt.parsed.tcp_flags & tcp_flag::syn) != 0 && !held_syns_.empty() &&
            held_syns_.cancel(HeldSynKey{pool_.address(s.pool_index).value(),
                                         pkt.parsed.dst.value(), s.external_port,
                                         pkt.parsed.dst_port})) {
            counters_.add(Counter::syn_held_cancelled); // the inside opened it: drop silently
        }
    }
    rewrite_source(pkt.frame, pkt.parsed, pool_.address(s.pool_index), s.external_port);
    set_ethernet(pkt.frame, l2.next_hop_mac, l2.outside_port_mac);
}

// No mapping could be made: drop, count, and tell the subscriber with ICMP 3/1 when that is
// switched on and the rate allows (RFC 6888 REQ-11). Existing mappings are never touched.
Verdict Translator::refuse(PacketRef& pkt, Counter reason, Tick now, const L2Context& l2) {
    counters_.add(reason);
    if (!policy_.icmp_unreachable || !is_mapping_refusal(reason)) {
        return Verdict::drop;
    }
    if (!take_icmp_token(now)) {
        counters_.add(Counter::icmp_unreachable_rate_limited);
        return Verdict::drop;
    }
    return answer_with_error(pkt, kIcmpDestUnreachable, kIcmpHostUnreachable, policy_.gateway,
                             l2.inside_port_mac, Counter::icmp_unreachable_sent);
}

// Turns the packet into the ICMP error (type, code, `rest` in bytes 4-7) for its sender, from
// `from`, in its own buffer; counts `sent`. Drop when the buffer cannot hold the quote.
Verdict Translator::answer_with_error(PacketRef& pkt, std::uint8_t type, std::uint8_t code,
                                      Ipv4Addr from, const MacAddr& our_mac, Counter sent,
                                      std::uint32_t rest) {
    const std::size_t capacity = std::max(pkt.capacity, pkt.length);
    const std::size_t len = write_icmp_error({pkt.frame, capacity}, pkt.length, pkt.parsed, type,
                                             code, from, our_mac, rest);
    if (len == 0) {
        return Verdict::drop;
    }
    pkt.length = static_cast<std::uint16_t>(len);
    counters_.add(sent);
    return Verdict::reply;
}

// RFC 4787 REQ-13, RFC 1191: a DF packet larger than the MTU of the port it would leave by is
// answered with 3/4 and that MTU, from `from` (the inside gateway, or the pool address the
// remote sent to), sharing the rate limit of the 3/1 replies. It is dropped either way.
Verdict Translator::too_big(PacketRef& pkt, std::uint16_t mtu, Ipv4Addr from,
                            const MacAddr& our_mac, Tick now) {
    counters_.add(Counter::drop_too_big);
    if (!take_icmp_token(now)) {
        if (policy_.icmp_rate != 0) {
            counters_.add(Counter::icmp_unreachable_rate_limited);
        }
        return Verdict::drop;
    }
    return answer_with_error(pkt, kIcmpDestUnreachable, kIcmpFragmentationNeeded, from, our_mac,
                             Counter::icmp_too_big_sent, mtu);
}

// The one bucket every ICMP error this worker originates draws from (3/1 and 11/0); a rate
// of 0 sends none.
bool Translator::take_icmp_token(Tick now) {
    return policy_.icmp_rate != 0 &&
           take_token(icmp_tokens_, icmp_refilled_at_, now, policy_.icmp_rate, policy_.icmp_burst);
}

// A packet with no session: find or make its subscriber and mapping, then make its session.
// Every limit is checked before anything is created, so a refusal leaves nothing behind.
Translator::Miss Translator::in2out_miss(const PacketRef& pkt, const SessionKey& key, Tick now) {
    if (const std::int32_t pos = tables_.sessions.lookup(&key); pos >= 0) {
        return {pos, Counter::count_}; // created by an earlier packet of this burst
    }
    if (live_sessions_ >= policy_.max_sessions) {
        return {-1, Counter::drop_sessions_exhausted};
    }
    const MappingKey mkey = mapping_key(pkt.parsed);
    std::int32_t mapping_pos = tables_.mappings.lookup(&mkey);
    std::uint32_t sub_index;
    if (mapping_pos >= 0) {
        sub_index = tables_.mapping_records[static_cast<std::uint32_t>(mapping_pos)].subscriber;
    } else {
        const std::int32_t sub = find_or_create_subscriber(pkt.parsed.src, pkt.parsed.proto, now);
        if (sub < 0) {
            return {-1, Counter::drop_subscribers_exhausted}; // limits.max_subscribers
        }
        sub_index = static_cast<std::uint32_t>(sub);
    }
    Subscriber& subscriber = tables_.subscriber_records[sub_index];
    const auto proto = static_cast<std::size_t>(proto_index(pkt.parsed.proto));
    Counter refusal = Counter::count_;
    if (subscriber.sessions >= policy_.subscriber_sessions) {
        refusal = Counter::drop_subscriber_sessions;
    } else if (mapping_pos < 0) {
        if (subscriber.ports[proto] >= policy_.subscriber_ports[proto]) {
            refusal = Counter::drop_subscriber_ports;
        } else if (!take_mapping_token(subscriber, now)) {
            refusal = Counter::drop_subscriber_rate;
        } else {
            const std::uint32_t created = create_mapping(pkt, mkey, sub_index, now);
            if (created == kNoIndex) {
                refusal = Counter::drop_ports_exhausted;
            } else {
                mapping_pos = static_cast<std::int32_t>(created);
            }
        }
    }
    if (refusal != Counter::count_) {
        release_subscriber_if_unused(sub_index, pkt.parsed.src);
        return {-1, refusal};
    }

    const auto mapping = static_cast<std::uint32_t>(mapping_pos);
    const std::int32_t pos = tables_.sessions.add(&key);
    if (pos < 0) {
        if (tables_.mapping_records[mapping].sessions == 0) {
            release_mapping(mapping, now);
        }
        return {-1, Counter::drop_sessions_exhausted};
    }
    Mapping& m = tables_.mapping_records[mapping];
    Session& session = tables_.session_records[static_cast<std::uint32_t>(pos)];
    session = Session{mapping, now, m.external_port, m.pool_index, 0, 0, 0};
    if (permissions_live_) {
        count_permission(session, mapping, key.remote_addr);
    }
    ++m.sessions;
    ++tables_.subscriber_records[m.subscriber].sessions;
    ++live_sessions_;
    ++live_by_proto_[proto];
    const Session& created = tables_.session_records[static_cast<std::uint32_t>(pos)];
    wheel_.schedule(static_cast<std::uint32_t>(pos),
                    now + session_timeout(created, pkt.parsed.proto)); // TCP starts transitory
    counters_.add(Counter::sessions_created);
    return {pos, Counter::count_};
}

bool Translator::take_mapping_token(Subscriber& sub, Tick now) const {
    return take_token(sub.tokens, sub.refilled_at, now, policy_.mapping_rate,
                      policy_.mapping_burst);
}

// Paired pooling (RFC 4787 REQ-2, RFC 6888 REQ-2): a subscriber is anchored to one pool
// address while it has any mapping; if that address has no free port here, the packet is
// dropped (RFC 7857 section 4) rather than mapped to another address.
std::int32_t Translator::find_or_create_subscriber(Ipv4Addr inside, Protocol proto, Tick now) {
    const std::uint32_t key = inside.value();
    std::int32_t pos = tables_.subscribers.lookup(&key);
    if (pos >= 0) {
        return pos;
    }
    if (live_subscribers_ >= policy_.max_subscribers) {
        return -1; // the table may hold a few more: its limit is the configured one
    }
    pos = tables_.subscribers.add(&key);
    if (pos < 0) {
        return pos;
    }
    const std::uint16_t anchor = choose_anchor(inside, proto);
    Subscriber& sub = tables_.subscriber_records[static_cast<std::uint32_t>(pos)];
    sub = Subscriber{};
    sub.pool_index = anchor;
    sub.tokens = policy_.mapping_burst;
    sub.refilled_at = now;
    ++live_subscribers_;
    return pos;
}

// The address a subscriber is anchored to: the one its keyed hash prefers, else the next that
// is in the config and has a free port here. The hash is independent of subscriber_hash: were
// it the same function, a worker's subscribers (hash % workers == w) would crowd onto a few
// addresses whenever the pool size and the worker count share a factor.
std::uint16_t Translator::choose_anchor(Ipv4Addr inside, Protocol proto) const {
    const auto n = static_cast<std::uint32_t>(pool_.size());
    const auto first =
        static_cast<std::uint32_t>(siphash_2x64(secret_, inside.value(), kAnchorDomain) % n);
    std::optional<std::uint16_t> active_but_full;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto candidate = static_cast<std::uint16_t>((first + i) % n);
        if (!active_[candidate]) {
            continue;
        }
        if (ports_.free_ports(candidate, proto) > 0) {
            return candidate;
        }
        if (!active_but_full) {
            active_but_full = candidate;
        }
    }
    return active_but_full.value_or(static_cast<std::uint16_t>(first));
}

void Translator::release_subscriber_if_unused(std::uint32_t subscriber, Ipv4Addr inside) {
    const Subscriber& sub = tables_.subscriber_records[subscriber];
    if (sub.mappings == 0 && sub.sessions == 0) {
        const std::uint32_t key = inside.value();
        tables_.subscribers.remove(&key);
        --live_subscribers_;
    }
}

std::uint32_t Translator::create_mapping(const PacketRef& pkt, const MappingKey& key,
                                         std::uint32_t subscriber, Tick now) {
    Subscriber& sub = tables_.subscriber_records[subscriber];
    if (!active_[sub.pool_index]) {
        // The anchor left the pool: existing mappings drain there, new ones go elsewhere.
        sub.pool_index = choose_anchor(pkt.parsed.src, pkt.parsed.proto);
    }
    const PortRequest request{pkt.parsed.src, pkt.parsed.src_port, pkt.parsed.proto, sub.pool_index,
                              pool_.address(sub.pool_index)};
    const auto grant = ports_.allocate(request);
    if (!grant) {
        return kNoIndex;
    }
    const std::int32_t map_pos = tables_.mappings.add(&key);
    if (map_pos < 0) {
        ports_.release(sub.pool_index, pkt.parsed.proto, grant->port);
        return kNoIndex;
    }
    const auto mapping = static_cast<std::uint32_t>(map_pos);
    Mapping& m = tables_.mapping_records[mapping];
    m = Mapping{};
    m.inside = pkt.parsed.src;
    m.inside_port = pkt.parsed.src_port;
    m.external_port = grant->port;
    m.pool_index = sub.pool_index;
    m.proto = pkt.parsed.proto;
    m.subscriber = subscriber;
    m.sessions = 0;
    m.inside_mac = ethernet_source(pkt.frame);
    m.created = now;
    ++sub.mappings;
    ++sub.ports[static_cast<std::size_t>(proto_index(m.proto))];
    ++live_mappings_;
    const std::uint32_t slot = *ports_.slice().slot_of(grant->port);
    tables_.out2in(sub.pool_index, pkt.parsed.proto, slot) = mapping;
    counters_.add(Counter::mappings_created);
    if (grant->preserved) {
        counters_.add(Counter::port_preserved);
    }
    return mapping;
}

// Admission and session work for the outside packets that found a mapping. The session is
// looked up (one bulk lookup) only when something needs it: address-and-port-dependent
// filtering, inbound refresh, or a TCP SYN, FIN or RST that moves the session's state.
// Address-dependent filtering asks the permission table instead. A refused packet's
// mappings_[i] becomes kNoIndex.
void Translator::out2in_sessions(std::span<PacketRef> packets, std::uint32_t n, Tick now,
                                 std::uint64_t expired) {
    const FilteringMode mode = policy_.filtering;
    std::uint32_t idx[kMaxBurst];
    std::uint32_t count = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        sessions_[i] = -1;
        if (mappings_[i] == kNoIndex) {
            continue;
        }
        const ParsedPacket& p = packets[i].parsed;
        const bool control = p.proto == Protocol::tcp && tcp_is_control(p.tcp_flags);
        if (mode != FilteringMode::address_port_dependent && !policy_.inbound_refresh && !control) {
            continue;
        }
        const Mapping& m = tables_.mapping_records[mappings_[i]];
        SessionKey& k = keys_[count];
        k = SessionKey{};
        k.inside_addr = m.inside.value();
        k.remote_addr = p.src.value();
        k.inside_port = m.inside_port;
        k.remote_port = p.proto == Protocol::icmp ? 0 : p.src_port;
        k.proto = static_cast<std::uint8_t>(p.proto);
        key_ptrs_[count] = &k;
        idx[count++] = i;
    }
    tables_.sessions.lookup_bulk(key_ptrs_, count, positions_);
    for (std::uint32_t j = 0; j < count; ++j) {
        sessions_[idx[j]] = positions_[j];
    }

    std::uint64_t refused = 0;
    if (mode == FilteringMode::address_dependent) {
        count = 0;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (mappings_[i] != kNoIndex && sessions_[i] < 0) { // a session implies permission
                permission_keys_[count] =
                    PermissionKey{mappings_[i], packets[i].parsed.src.value()};
                key_ptrs_[count] = &permission_keys_[count];
                idx[count++] = i;
            }
        }
        tables_.permissions.lookup_bulk(key_ptrs_, count, positions_);
        for (std::uint32_t j = 0; j < count; ++j) {
            if (positions_[j] < 0) {
                mappings_[idx[j]] = kNoIndex;
                ++refused;
            }
        }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        if (mappings_[i] == kNoIndex) {
            continue;
        }
        if (sessions_[i] < 0) {
            if (mode == FilteringMode::address_port_dependent) {
                mappings_[i] = kNoIndex;
                ++refused;
            }
            continue; // RFC 7857 section 7: a packet that has no session refreshes nothing
        }
        if ((expired >> i & 1) != 0) {
            continue; // admitted, but not delivered: it changes nothing
        }
        Session& s = tables_.session_records[static_cast<std::uint32_t>(sessions_[i])];
        const ParsedPacket& p = packets[i].parsed;
        if (policy_.inbound_refresh) {
            s.last_seen = now;
        }
        if (p.proto == Protocol::tcp) {
            track_tcp(static_cast<std::uint32_t>(sessions_[i]), s, p.tcp_flags, false);
        }
    }
    if (refused != 0) {
        counters_.add(Counter::drop_filtered, refused);
    }
}

static_assert(Translator::kMaxBurst <= 64, "out2in_burst marks packets in 64-bit masks");

// In stages over the burst, each prefetching what the next needs (l3fwd's pattern): find the
// direct-index slot, read it, admit, rewrite. Nothing here hashes in endpoint-independent mode
// without inbound refresh: (pool address, external port, protocol) names at most one mapping.
void Translator::out2in_burst(std::span<PacketRef> packets, Tick now, const L2Context& l2,
                              std::span<Verdict> verdicts) {
    const auto n = static_cast<std::uint32_t>(packets.size());
    std::uint64_t answered = 0; // echo requests to a pool address, by burst position
    std::uint64_t syns = 0;     // SYNs (without ACK) that would be held if refused
    std::uint64_t expired = 0;  // TTL ran out: answered with Time Exceeded if admitted
    std::uint64_t decided = 0;  // ICMP errors, translated or dropped on the spot
    for (std::uint32_t i = 0; i < n; ++i) {
        const ParsedPacket& p = packets[i].parsed;
        index_entries_[i] = nullptr;
        const std::uint16_t pool_index = pool_.find(p.dst);
        if (pool_index == kNoPool) {
            counters_.add(Counter::drop_not_for_us);
            continue;
        }
        if (p.src.is_martian()) {
            counters_.add(Counter::drop_martian);
            continue;
        }
        if (p.icmp_error) {
            verdicts[i] = icmp_error_out2in(packets[i], pool_index, l2);
            decided |= std::uint64_t{1} << i;
            continue;
        }
        if (p.proto == Protocol::icmp && p.icmp_type == kIcmpEchoRequest) {
            answered |= std::uint64_t{1} << i; // delivered to us: no TTL to spend
            continue;
        }
        if (packets[i].frame[p.l3 + ipv4_off::ttl] <= 1) {
            expired |= std::uint64_t{1} << i; // no continue: answered only if admitted
        }
        if (p.proto == Protocol::icmp && p.icmp_type != kIcmpEchoReply) {
            counters_.add(Counter::drop_no_mapping); // only replies belong to an echo mapping
            continue;
        }
        if (p.proto == Protocol::tcp &&
            (p.tcp_flags & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::syn) {
            syns |= std::uint64_t{1} << i;
        }
        const auto slot = ports_.slice().slot_of(p.dst_port);
        if (!slot) {
            counters_.add(Counter::drop_no_mapping); // not a port this worker hands out
            continue;
        }
        index_entries_[i] = &tables_.out2in(pool_index, p.proto, *slot);
        rte_prefetch0(index_entries_[i]);
    }
    std::uint64_t no_mapping = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        mappings_[i] = index_entries_[i] != nullptr ? *index_entries_[i] : kNoIndex;
        if (mappings_[i] != kNoIndex) {
            rte_prefetch0(&tables_.mapping_records[mappings_[i]]);
        } else if (index_entries_[i] != nullptr) {
            ++no_mapping;
        }
    }
    if (no_mapping != 0) {
        counters_.add(Counter::drop_no_mapping, no_mapping);
    }
    out2in_sessions(packets, n, now, expired);

    std::uint64_t translated = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        if ((decided >> i & 1) != 0) {
            continue;
        }
        if (mappings_[i] == kNoIndex) {
            verdicts[i] = (answered >> i & 1) != 0 ? answer_echo(packets[i], l2.outside_port_mac)
                                                   : Verdict::drop;
            if ((syns >> i & 1) != 0 && policy_.syn_unreachable) {
                hold_syn(packets[i], now); // unsolicited: no mapping, or filtered
            }
            continue;
        }
        PacketRef& pkt = packets[i];
        if ((expired >> i & 1) != 0) { // it would be delivered: the sender hears from E
            verdicts[i] = time_exceeded(pkt, now, pkt.parsed.dst, l2.outside_port_mac);
            continue;
        }
        if (exceeds(pkt.parsed, policy_.inside_mtu)) {
            verdicts[i] =
                too_big(pkt, policy_.inside_mtu, pkt.parsed.dst, l2.outside_port_mac, now);
            continue;
        }
        const Mapping& m = tables_.mapping_records[mappings_[i]];
        rewrite_destination(pkt.frame, pkt.parsed, m.inside, m.inside_port);
        set_ethernet(pkt.frame, m.inside_mac, l2.inside_port_mac);
        verdicts[i] = Verdict::forward;
        ++translated;
    }
    counters_.add(Counter::out2in_translated, translated);
}

void Translator::hold_syn(const PacketRef& pkt, Tick now) {
    const ParsedPacket& p = pkt.parsed;
    const HeldSynKey key{p.dst.value(), p.src.value(), p.dst_port, p.src_port};
    const std::size_t quoted = std::min<std::size_t>(p.l4 + 8u, pkt.length);
    if (!held_syns_.hold(key, {pkt.frame, quoted}, p.ip_total_len, now + kSynHold + 1)) {
        counters_.add(Counter::syn_held_overflow);
    }
    counters_.add(Counter::syn_held);
}

std::optional<HeldSyn> Translator::take_due_syn(Tick now) {
    while (true) {
        std::optional<HeldSyn> due = held_syns_.take_due(now);
        if (!due || (policy_.syn_unreachable && take_icmp_token(now))) {
            return due;
        }
        counters_.add(Counter::icmp_unreachable_rate_limited); // or switched off meanwhile
    }
}

std::size_t Translator::snapshot_mappings(std::span<MappingView> out) const {
    std::size_t written = 0;
    const void* key = nullptr;
    void* data = nullptr;
    std::uint32_t next = 0;
    std::int32_t pos;
    while (written < out.size() &&
           (pos = rte_hash_iterate(tables_.mappings.raw(), &key, &data, &next)) >= 0) {
        const Mapping& m = tables_.mapping_records[static_cast<std::uint32_t>(pos)];
        out[written++] =
            MappingView{m.proto,         m.inside,  m.inside_port, pool_.address(m.pool_index),
                        m.external_port, m.sessions};
    }
    return written;
}

} // namespace ephemera
