// The HA sync thread (sync_thread.hpp).
#include "sync_thread.hpp"

#include "ha_clock.hpp"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <poll.h>
#include <pthread.h>

#include <cstdio>
#include <stdexcept>

namespace ephemera::ha {

namespace {

constexpr std::chrono::milliseconds kPass{5};             // the loop's longest sleep
constexpr std::chrono::milliseconds kConnectTimeout{200}; // one attempt to reach the peer
constexpr std::chrono::milliseconds kAckEvery{50};
constexpr std::chrono::milliseconds kProbeEvery{1000}; // an active with no standby asks
constexpr std::chrono::milliseconds kProbeTimeout{100};
constexpr std::chrono::milliseconds kHelloTimeout{2000}; // a caller that says nothing goes
constexpr std::size_t kMaxQueuedBytes = 8u << 20;        // the standby reads slower: stop draining
constexpr std::size_t kMaxPending = 1u << 20;            // records waiting: stop reading the link
constexpr unsigned kDrainBurst = 1024;

const char* role_name(HaRole r) {
    return r == HaRole::active ? "active" : "standby";
}

} // namespace

SyncThread::SyncThread(const HaConfig& config, WorkerShared& shared, std::vector<rte_ring*> out,
                       std::vector<rte_ring*> in, std::string terms)
    : config_(config), shared_(shared), out_(std::move(out)), in_(std::move(in)),
      terms_(std::move(terms)), dead_(config.dead_interval_ms),
      heartbeat_every_(std::max<std::uint32_t>(config.dead_interval_ms / 5, 20)),
      bulk_done_(out_.size()), pending_(in_.size()), scratch_(kDrainBurst) {
    report_.peer = config.peer_address.to_string() + ":" + std::to_string(config.peer_port);
}

SyncThread::~SyncThread() {
    stop();
}

HaRole SyncThread::prepare() {
    std::string error;
    listener_ = listen_on(config_.listen_address, config_.listen_port, error);
    if (!listener_) {
        throw std::runtime_error("ha.listen " + config_.listen_address.to_string() + ":" +
                                 std::to_string(config_.listen_port) + ": " + error);
    }
    HaRole role = config_.role;
    // A peer that took over while this box was away stays active: this box pairs with it. (Not
    // active yet, this box says active since 0: it never wins the two actives' rule.)
    if (role == HaRole::active) {
        const auto peer =
            ask_peer(Hello{HaRole::active, static_cast<std::uint16_t>(out_.size()), terms_, 0},
                     dead_, dead_);
        if (peer && peer->role == HaRole::active) {
            role = HaRole::standby;
            std::printf("ephemera: ha: %s is active already: starting as its standby\n",
                        report_.peer.c_str());
        }
    }
    set_role(role);
    waiting_since_ = Clock::now();
    return role;
}

void SyncThread::set_role(HaRole role) {
    if (role == HaRole::active && role_ != HaRole::active) {
        active_since_ms_ = unix_ms_now();
    }
    role_ = role;
    probe_.reset(); // its answer was to the role before
    incoming_.clear();
    shared_.ha_streaming.store(false, std::memory_order_release);
    shared_.ha_standby.store(role == HaRole::standby, std::memory_order_release);
    const std::lock_guard lock(report_lock_);
    report_.role = role_name(role);
}

void SyncThread::start() {
    stop_.store(false, std::memory_order_relaxed);
    thread_ = std::thread([this] { run(); });
    pthread_setname_np(thread_.native_handle(), "eph-sync");
}

void SyncThread::stop() {
    if (!thread_.joinable()) {
        return;
    }
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
    if (link_) {
        link_->flush();
        link_.reset();
    }
}

void SyncThread::run() {
    while (!stop_.load(std::memory_order_relaxed)) {
        if (const std::uint32_t asked = shared_.ha_confirm_requests.load(std::memory_order_acquire);
            asked != shared_.ha_confirmed.load(std::memory_order_relaxed)) {
            confirm_role();
            shared_.ha_confirmed.store(asked, std::memory_order_release);
        }
        const Clock::time_point now = Clock::now();
        accept_incoming();
        if (role_ == HaRole::active) {
            active_pass(now);
        } else {
            standby_pass(now);
        }
        std::vector<pollfd> fds{{listener_->get(), POLLIN, 0}};
        if (link_) {
            fds.push_back(
                {link_->fd(), static_cast<short>(POLLIN | (link_->queued() ? POLLOUT : 0)), 0});
        }
        // A short sleep while the workers' rings may be filling (the active) or records wait
        // for room (the standby); otherwise until the sockets or the next heartbeat need us.
        ::poll(fds.data(), fds.size(), static_cast<int>(kPass.count()));
    }
}

// Every caller says who it is first. An active keeps it until its hello has come (a box asking
// who is active must not cost the pair its link); a standby answers every caller with its role
// and hangs up, so an active probing at start learns who is active.
void SyncThread::accept_incoming() {
    while (auto incoming = accept_from(*listener_)) {
        if (role_ == HaRole::active) {
            incoming_.push_back({std::move(*incoming), Clock::now() + kHelloTimeout});
            continue;
        }
        incoming->send(hello());
        incoming->flush();
    }
}

// Callers' hellos: a standby to pair (it replaces the link, which a returning standby's old
// connection may still hold), or an active asking (answered; two actives settle who stays).
void SyncThread::answer_callers(Clock::time_point now) {
    for (std::size_t i = 0; i < incoming_.size();) {
        Caller& c = incoming_[i];
        const bool open = c.link.receive();
        auto m = c.link.next();
        const auto* h = m ? std::get_if<Hello>(&*m) : nullptr;
        if (h == nullptr) {
            if (!open || now > c.deadline || m) {
                incoming_.erase(incoming_.begin() + static_cast<std::ptrdiff_t>(i));
            } else {
                ++i;
            }
            continue;
        }
        const Hello said = *h;
        SyncLink caller = std::move(c.link);
        incoming_.erase(incoming_.begin() + static_cast<std::ptrdiff_t>(i));
        if (said.role == HaRole::active) {
            caller.send(hello());
            caller.flush();
            if (said.active_since_ms != 0 && resolve_two_actives(said)) {
                return; // stepped down: the callers are a standby's no more
            }
            continue;
        }
        if (const std::string diff = first_difference(terms_, said.terms); !diff.empty()) {
            const std::string why = "peer " + caller.peer() + " disagrees on " + diff;
            caller.send(Refuse{why});
            caller.flush();
            {
                const std::lock_guard lock(report_lock_);
                report_.refused = why;
                report_.last_error = why;
            }
            std::fprintf(stderr, "ephemera: ha: pairing refused: %s\n", why.c_str());
            continue;
        }
        if (link_) {
            drop_link("a newer connection from " + caller.peer());
        }
        link_ = std::move(caller);
        link_->send(hello());
        last_heard_ = now;
        last_ack_ = now;
        pair_standby();
    }
}

void SyncThread::active_pass(Clock::time_point now) {
    answer_callers(now);
    if (role_ != HaRole::active) {
        return; // stepped down
    }
    if (link_) {
        const bool open = read_link(now, &SyncThread::on_active_message);
        if (link_ && !open) {
            drop_link(link_->error());
        } else if (link_ &&
                   ms_between(last_heard_, now) > 3 * static_cast<std::uint64_t>(dead_.count())) {
            drop_link("the standby fell silent");
        }
    }
    if (!paired_ && probe_peer(now)) {
        return; // stepped down
    }
    drain_workers();
    if (link_ && paired_ && now - last_heartbeat_ >= heartbeat_every_) {
        link_->send(Heartbeat{unix_ms_now()});
        last_heartbeat_ = now;
    }
    if (link_ && !link_->flush()) {
        drop_link(link_->error());
    }
    const std::lock_guard lock(report_lock_);
    report_.peer_connected = paired_;
    report_.lag_records = paired_ ? next_sequence_ - acked_ : 0;
    report_.last_heard_ms_ago = link_ ? ms_between(last_heard_, now) : 0;
    report_.sync_bytes_sent = bytes_sent_before_ + (link_ ? link_->bytes_sent() : 0);
    report_.sync_bytes_received = bytes_received_before_ + (link_ ? link_->bytes_received() : 0);
}

bool SyncThread::read_link(Clock::time_point now,
                           void (SyncThread::*on)(const Message&, Clock::time_point)) {
    const bool open = link_->receive();
    while (link_) {
        auto m = link_->next();
        if (!m) {
            break;
        }
        last_heard_ = now;
        (this->*on)(*m, now);
    }
    return open && (!link_ || link_->error().empty());
}

void SyncThread::on_active_message(const Message& m, Clock::time_point now) {
    if (const auto* a = std::get_if<Ack>(&m)) {
        acked_ = a->next_sequence;
        last_ack_ = now;
        return;
    }
    if (const auto* r = std::get_if<Refuse>(&m)) {
        {
            const std::lock_guard lock(report_lock_);
            report_.refused = r->reason;
        }
        drop_link("refused by the peer: " + r->reason);
    }
    // Heartbeats only keep last_heard_ fresh.
}

// A standby paired: the workers stream from now on, and a bulk round brings it what they held
// before. Each worker marks the end of its round in its ring, behind its records.
void SyncThread::pair_standby() {
    paired_ = true;
    probe_.reset();
    next_sequence_ = 0;
    acked_ = 0;
    ++generation_;
    std::fill(bulk_done_.begin(), bulk_done_.end(), false);
    shared_.ha_streaming.store(true, std::memory_order_release);
    shared_.ha_bulk_generation.store(generation_, std::memory_order_release);
    const std::lock_guard lock(report_lock_);
    ++report_.pairings;
    report_.refused.clear();
    report_.in_sync = false;
    std::printf("ephemera: ha: standby %s paired, bulk round %u\n", link_->peer().c_str(),
                generation_);
    std::fflush(stdout);
}

void SyncThread::drain_workers() {
    if (link_ && link_->queued() > kMaxQueuedBytes) {
        return; // the standby is behind: the workers' rings hold the rest (or count drops)
    }
    Records frame;
    const std::uint64_t first = next_sequence_;
    std::uint64_t discarded = 0;
    bool bulk_complete = false;
    for (std::size_t w = 0; w < out_.size(); ++w) {
        const unsigned n = rte_ring_sc_dequeue_burst_elem(out_[w], scratch_.data(),
                                                          sizeof(SyncRecord), kDrainBurst, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            const SyncRecord& r = scratch_[i];
            if (r.kind == SyncKind::bulk_done) {
                if (paired_ && r.generation == generation_ && !bulk_done_[w]) {
                    bulk_done_[w] = true;
                    bulk_complete =
                        std::all_of(bulk_done_.begin(), bulk_done_.end(), [](bool b) { return b; });
                }
                continue;
            }
            if (!paired_) {
                ++discarded;
                continue;
            }
            frame.records.push_back(encode(r.state, r.kind == SyncKind::remove
                                                        ? RecordType::session_removed
                                                        : RecordType::session));
            if (frame.records.size() == kMaxRecordsPerFrame) {
                frame.first_sequence = next_sequence_;
                next_sequence_ += frame.records.size();
                link_->send(frame);
                frame.records.clear();
            }
        }
    }
    if (!frame.records.empty()) {
        frame.first_sequence = next_sequence_;
        next_sequence_ += frame.records.size();
        link_->send(frame);
    }
    if (bulk_complete) {
        link_->send(BulkDone{generation_});
        std::printf("ephemera: ha: bulk round %u sent: standby %s in sync\n", generation_,
                    link_->peer().c_str());
        std::fflush(stdout);
    }
    const std::lock_guard lock(report_lock_);
    report_.records_discarded += discarded;
    report_.records_sent += next_sequence_ - first;
    if (bulk_complete) {
        report_.in_sync = true;
        ++report_.bulk_rounds;
    }
}

void SyncThread::standby_pass(Clock::time_point now) {
    if (resetting_) {
        // Stepped down: the workers empty their tables before the active's bulk round.
        if (shared_.ha_resets_done.load(std::memory_order_acquire) < reset_until_) {
            return;
        }
        resetting_ = false;
        waiting_since_ = now;
    }
    if (!link_) {
        if (now >= next_connect_) {
            std::string error;
            link_ =
                SyncLink::connect(config_.peer_address, config_.peer_port, kConnectTimeout, error);
            next_connect_ = now + kConnectTimeout;
            if (link_) {
                link_->send(hello());
                paired_ = false;
                expected_ = 0;
                last_acked_sent_ = 0;
                last_heard_ = now;
            }
        }
        // No active has answered since the start (or since the last one was lost).
        const auto limit = ever_paired_ ? dead_ : 3 * dead_;
        if (!link_ && now - waiting_since_ > limit) {
            take_over("no active peer answered for " +
                      std::to_string(
                          std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()) +
                      " ms");
            return;
        }
    }
    if (link_ && pending_total_ < kMaxPending) {
        const bool open = read_link(now, &SyncThread::on_standby_message);
        if (link_ && !open) {
            const std::string why = link_->error();
            const bool was_paired = paired_;
            drop_link(why);
            if (was_paired) {
                // The active's kernel closed its end: the process is gone (or stopped).
                deliver_pending();
                take_over("the active closed the sync link (" + why + ")");
                return;
            }
        }
    }
    deliver_pending();
    if (link_ && paired_) {
        if (now - last_ack_ >= kAckEvery && expected_ != last_acked_sent_) {
            link_->send(Ack{expected_});
            last_acked_sent_ = expected_;
            last_ack_ = now;
        }
        if (now - last_heartbeat_ >= heartbeat_every_) {
            link_->send(Heartbeat{unix_ms_now()});
            last_heartbeat_ = now;
        }
        if (now - last_heard_ > dead_ && pending_total_ < kMaxPending) {
            drop_link("no heartbeat");
            deliver_pending();
            take_over("no word from the active for " + std::to_string(dead_.count()) + " ms");
            return;
        }
    }
    if (link_ && !link_->flush()) {
        drop_link(link_->error());
    }
    if (!link_ && paired_) {
        paired_ = false;
    }
    const std::lock_guard lock(report_lock_);
    report_.peer_connected = paired_;
    report_.last_heard_ms_ago = ms_between(last_heard_, now);
    report_.sync_bytes_sent = bytes_sent_before_ + (link_ ? link_->bytes_sent() : 0);
    report_.sync_bytes_received = bytes_received_before_ + (link_ ? link_->bytes_received() : 0);
}

void SyncThread::on_standby_message(const Message& m, Clock::time_point now) {
    if (const auto* h = std::get_if<Hello>(&m)) {
        if (h->role != HaRole::active) {
            drop_link("the peer is a standby too");
            return;
        }
        if (const std::string diff = first_difference(terms_, h->terms); !diff.empty()) {
            const std::string why = "peer " + link_->peer() + " disagrees on " + diff;
            {
                const std::lock_guard lock(report_lock_);
                report_.refused = why;
            }
            std::fprintf(stderr, "ephemera: ha: pairing refused: %s\n", why.c_str());
            drop_link(why);
            return;
        }
        paired_ = true;
        ever_paired_ = true;
        last_ack_ = now;
        const std::lock_guard lock(report_lock_);
        report_.refused.clear();
        ++report_.pairings;
        report_.in_sync = false;
        return;
    }
    if (const auto* r = std::get_if<Records>(&m)) {
        if (!paired_ || r->first_sequence != expected_) {
            {
                const std::lock_guard lock(report_lock_);
                ++report_.sequence_gaps;
            }
            // A gap cannot be mended record by record: the next connection starts with a
            // bulk round.
            drop_link("sequence gap: expected " + std::to_string(expected_) + ", got " +
                      std::to_string(r->first_sequence));
            return;
        }
        for (const RecordBytes& bytes : r->records) {
            auto decoded = decode_session(bytes);
            if (const auto* s = std::get_if<SessionState>(&decoded)) {
                SyncRecord rec;
                rec.state = *s;
                rec.kind = record_type(bytes) == RecordType::session_removed ? SyncKind::remove
                                                                             : SyncKind::upsert;
                const WorkerId owner = shared_.ownership.subscriber_owner(s->inside);
                pending_[owner].push_back(rec);
                ++pending_total_;
            }
        }
        expected_ += r->records.size();
        const std::lock_guard lock(report_lock_);
        report_.records_received += r->records.size();
        return;
    }
    if (std::holds_alternative<BulkDone>(m)) {
        const std::lock_guard lock(report_lock_);
        report_.in_sync = true;
        ++report_.bulk_rounds;
        return;
    }
    if (const auto* r = std::get_if<Refuse>(&m)) {
        {
            const std::lock_guard lock(report_lock_);
            report_.refused = r->reason;
        }
        std::fprintf(stderr, "ephemera: ha: pairing refused by the active: %s\n",
                     r->reason.c_str());
        drop_link("refused: " + r->reason);
    }
}

void SyncThread::deliver_pending() {
    for (std::size_t w = 0; w < pending_.size(); ++w) {
        auto& q = pending_[w];
        while (!q.empty()) {
            if (rte_ring_sp_enqueue_elem(in_[w], &q.front(), sizeof(SyncRecord)) != 0) {
                break; // the worker is behind: the rest waits for the next pass
            }
            q.pop_front();
            --pending_total_;
        }
    }
}

void SyncThread::drop_link(const std::string& why) {
    if (!link_) {
        return;
    }
    bytes_sent_before_ += link_->bytes_sent();
    bytes_received_before_ += link_->bytes_received();
    {
        const std::lock_guard lock(report_lock_);
        report_.last_error = why;
        report_.in_sync = false;
        report_.peer_connected = false;
    }
    if (paired_) {
        std::printf("ephemera: ha: sync link to %s down: %s\n", link_->peer().c_str(), why.c_str());
        std::fflush(stdout);
    }
    link_.reset();
    paired_ = false;
    if (role_ == HaRole::active) {
        shared_.ha_streaming.store(false, std::memory_order_release);
    } else {
        waiting_since_ = Clock::now();
    }
}

// A worker found its loop stood still for longer than the dead interval (the process was
// frozen). If this box is active, the standby may have taken over meanwhile: ask the peer now,
// before the workers forward again.
void SyncThread::confirm_role() {
    if (role_ != HaRole::active) {
        return;
    }
    std::printf("ephemera: ha: a worker stood still for over %lld ms: asking %s who is active\n",
                static_cast<long long>(dead_.count()), report_.peer.c_str());
    std::fflush(stdout);
    // Nobody there, or a standby: this box stays active.
    if (const auto peer = ask_peer(hello(), kProbeTimeout, 3 * kProbeTimeout);
        peer && peer->role == HaRole::active) {
        resolve_two_actives(*peer);
    }
}

std::optional<Hello> SyncThread::ask_peer(const Hello& mine, std::chrono::milliseconds connect,
                                          std::chrono::milliseconds answer) {
    std::string error;
    auto probe = SyncLink::connect(config_.peer_address, config_.peer_port, connect, error);
    if (!probe) {
        return std::nullopt;
    }
    probe->send(mine);
    probe->flush();
    const auto deadline = Clock::now() + answer;
    while (Clock::now() < deadline) {
        pollfd p{probe->fd(), POLLIN, 0};
        ::poll(&p, 1, 10);
        const bool open = probe->receive();
        if (auto m = probe->next()) {
            const auto* h = std::get_if<Hello>(&*m);
            return h != nullptr ? std::optional<Hello>(*h) : std::nullopt;
        }
        if (!open) {
            return std::nullopt;
        }
    }
    return std::nullopt;
}

Hello SyncThread::hello() const {
    return Hello{role_, static_cast<std::uint16_t>(out_.size()), terms_,
                 role_ == HaRole::active ? active_since_ms_ : 0};
}

// An active with no standby asks its peer, once a second, whether it is active too: after a
// cut sync link or a frozen box both may be, each with a share of the traffic.
bool SyncThread::probe_peer(Clock::time_point now) {
    if (!probe_ && now >= next_probe_) {
        next_probe_ = now + kProbeEvery;
        std::string error;
        probe_ = SyncLink::connect(config_.peer_address, config_.peer_port, kProbeTimeout, error);
        if (probe_) {
            probe_->send(hello());
            probe_->flush();
            probe_deadline_ = now + 5 * kProbeTimeout;
        }
    }
    if (!probe_) {
        return false;
    }
    const bool open = probe_->receive();
    if (auto m = probe_->next()) {
        probe_.reset();
        if (const auto* h = std::get_if<Hello>(&*m); h && h->role == HaRole::active) {
            return resolve_two_actives(*h);
        }
    } else if (!open || now > probe_deadline_) {
        probe_.reset();
    }
    return false;
}

// Both boxes decide alike: the one active since earlier steps down (the other announced the
// addresses last, so the traffic follows it); on a tie, the one with the lower sync address.
bool SyncThread::resolve_two_actives(const Hello& peer) {
    const bool ours_lower = std::pair(config_.listen_address, config_.listen_port) <
                            std::pair(config_.peer_address, config_.peer_port);
    const bool step_down = peer.active_since_ms > active_since_ms_ ||
                           (peer.active_since_ms == active_since_ms_ && ours_lower);
    {
        const std::lock_guard lock(report_lock_);
        ++report_.split_brains;
    }
    if (!step_down) {
        std::printf("ephemera: ha: %s is active too, since earlier: it steps down\n",
                    report_.peer.c_str());
        std::fflush(stdout);
        return false;
    }
    std::printf("ephemera: ha: %s is active too, since later: stepping down to standby\n",
                report_.peer.c_str());
    std::fflush(stdout);
    drop_link("stepped down");
    probe_.reset();
    reset_until_ = shared_.ha_resets_done.load(std::memory_order_acquire) + out_.size();
    set_role(HaRole::standby);
    shared_.ha_reset_generation.fetch_add(1, std::memory_order_release);
    resetting_ = true;
    ever_paired_ = false;
    return true;
}

void SyncThread::take_over(const std::string& why) {
    set_role(HaRole::active);
    std::printf("ephemera: ha: taking over from %s (%s)\n", report_.peer.c_str(), why.c_str());
    std::fflush(stdout);
    const std::lock_guard lock(report_lock_);
    ++report_.failovers;
    report_.last_failover_unix_ms = unix_ms_now();
    report_.last_failover_reason = why;
    report_.in_sync = false;
    report_.peer_connected = false;
}

HaReport SyncThread::report() const {
    const std::lock_guard lock(report_lock_);
    HaReport r = report_;
    return r;
}

} // namespace ephemera::ha
