// Draining a scale-out box into another (handover.hpp).
#include "handover.hpp"

#include "ha_clock.hpp"
#include "migrate_hook.hpp"

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace ephemera::ha {

namespace {

constexpr std::chrono::milliseconds kPass{2}; // the loop's longest sleep
constexpr std::chrono::milliseconds kConnectTimeout{1000};
constexpr std::chrono::milliseconds kAnswerTimeout{3000}; // an offer or a hello unanswered
// From falling silent to the receiver's word: the bulk round of a full table and its apply.
constexpr std::chrono::milliseconds kHandoverTimeout{60000};
constexpr std::size_t kMaxQueuedBytes = 8u << 20; // the receiver reads slower: stop draining
constexpr unsigned kDrainBurst = 1024;

std::vector<Ipv4Addr> parse_addresses(const std::string& list) {
    std::vector<Ipv4Addr> out;
    std::istringstream in(list);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (const auto a = Ipv4Addr::parse(item)) {
            out.push_back(*a);
        }
    }
    return out;
}

std::string join(const std::vector<Ipv4Addr>& addresses) {
    std::string out;
    for (const Ipv4Addr a : addresses) {
        if (!out.empty()) {
            out += ',';
        }
        out += a.to_string();
    }
    return out;
}

} // namespace

Handover::Handover(const HaConfig& config, WorkerShared& shared, std::vector<rte_ring*> out,
                   std::vector<rte_ring*> in, HandoverHooks hooks)
    : config_(config), shared_(shared), out_rings_(std::move(out)), in_rings_(std::move(in)),
      hooks_(std::move(hooks)), bulk_done_(out_rings_.size()), scratch_(kDrainBurst),
      pending_(in_rings_.size()) {}

Handover::~Handover() {
    stop();
}

void Handover::prepare() {
    std::string error;
    listener_ = listen_on(config_.handover_address, config_.handover_port, error);
    if (!listener_) {
        throw std::runtime_error("ha.handover " + config_.handover_address.to_string() + ":" +
                                 std::to_string(config_.handover_port) + ": " + error);
    }
}

void Handover::start() {
    stop_.store(false, std::memory_order_relaxed);
    thread_ = std::thread([this] { run(); });
    pthread_setname_np(thread_.native_handle(), "eph-handover");
}

void Handover::stop() {
    if (!thread_.joinable()) {
        return;
    }
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
}

ChangeResult Handover::drain_to(Ipv4Addr address, std::uint16_t port) {
    return ask(Request{address, port, std::nullopt});
}

ChangeResult Handover::migrate_to(Ipv4Addr prefix, std::uint8_t length, Ipv4Addr address,
                                  std::uint16_t port) {
    Config::SubscriberMove move;
    move.prefix = prefix;
    move.length = length;
    move.peer = address.to_string() + ":" + std::to_string(port);
    const Config current = hooks_.current();
    for (const Config::SubscriberMove& m : current.moved_subscribers) {
        if (m.contains(prefix) || move.contains(m.prefix)) {
            return {false, "subscribers " + m.prefix.to_string() + "/" + std::to_string(m.length) +
                               " moved to " + m.peer + " already; a prefix may move once"};
        }
    }
    if (current.moved_subscribers.size() >= kMaxMoves) {
        return {false, "this box has moved subscribers " + std::to_string(kMaxMoves) +
                           " times; restart it to move more"};
    }
    return ask(Request{address, port, move});
}

ChangeResult Handover::ask(Request request) {
    const std::lock_guard lock(report_lock_);
    if (drained_) {
        return {false, "this box has handed its sessions over already (to " + report_.peer +
                           "); restart it to forward again"};
    }
    if (asked_ || report_.state == "offering" || report_.state == "sending" ||
        report_.state == "receiving") {
        return {false, "a hand-over is under way (" + report_.state + ", " + report_.peer + ")"};
    }
    if (hooks_.current().allocation == AllocationMode::deterministic) {
        return {false, "deterministic allocation is not handed over: the formula maps each "
                       "subscriber to its own box's addresses"};
    }
    if (request.address == config_.handover_address && request.port == config_.handover_port) {
        return {false, "the peer is this box's own ha.handover address"};
    }
    const std::string peer = request.address.to_string() + ":" + std::to_string(request.port);
    const std::string what = request.move ? "moving " + request.move->prefix.to_string() + "/" +
                                                std::to_string(request.move->length) + " to " + peer
                                          : "draining into " + peer;
    report_.state = "offering";
    report_.direction = "out";
    report_.peer = peer;
    report_.error.clear();
    report_.subscribers =
        request.move ? request.move->prefix.to_string() + "/" + std::to_string(request.move->length)
                     : "";
    asked_ = std::move(request);
    return {true, what + ": `ephemeractl show ha` follows it"};
}

HandoverReport Handover::report() const {
    const std::lock_guard lock(report_lock_);
    return report_;
}

std::string Handover::terms() const {
    return handover_terms(hooks_.current(), static_cast<std::uint16_t>(out_rings_.size())) +
           "\noffer.inside_mac=" + shared_.inside_mac.to_string() +
           "\noffer.outside_mac=" + shared_.outside_mac.to_string();
}

void Handover::run() {
    while (!stop_.load(std::memory_order_relaxed)) {
        const Clock::time_point now = Clock::now();
        accept_incoming(now);
        out_pass(now);
        in_pass(now);
        std::vector<pollfd> fds{{listener_->get(), POLLIN, 0}};
        for (const auto* link : {&out_link_, &in_link_}) {
            if (*link) {
                fds.push_back({(*link)->fd(),
                               static_cast<short>(POLLIN | ((*link)->queued() ? POLLOUT : 0)), 0});
            }
        }
        // Short while the rings fill (streaming) or wait for room (receiving).
        ::poll(fds.data(), fds.size(), static_cast<int>(kPass.count()));
    }
    if (out_ != Out::none) {
        out_failed("ephemera is stopping");
    }
}

// One hand-over at a time: a caller while one is under way (either way) is told so.
void Handover::accept_incoming(Clock::time_point now) {
    while (auto caller = accept_from(*listener_)) {
        const bool busy = in_ != In::none || out_ != Out::none;
        bool drained = false;
        {
            const std::lock_guard lock(report_lock_);
            drained = drained_;
        }
        if (busy || drained) {
            caller->send(Refuse{drained ? "this box has handed its own sessions over"
                                        : "a hand-over is under way here; try again later"});
            caller->flush();
            continue;
        }
        in_link_ = std::move(caller);
        in_ = In::hello;
        in_deadline_ = now + kAnswerTimeout;
    }
}

// ---------------------------------------------------------------- the box being drained

void Handover::out_pass(Clock::time_point now) {
    if (out_ == Out::none) {
        std::optional<Request> asked;
        {
            const std::lock_guard lock(report_lock_);
            asked = std::exchange(asked_, std::nullopt);
        }
        if (!asked) {
            return;
        }
        moving_ = asked->move;
        std::string error;
        out_link_ = SyncLink::connect(asked->address, asked->port, kConnectTimeout, error);
        if (!out_link_) {
            out_failed("cannot reach the peer: " + error);
            return;
        }
        std::string offer = terms();
        if (moving_) {
            offer += "\noffer.subscribers=" + moving_->prefix.to_string() + "/" +
                     std::to_string(moving_->length);
        }
        out_link_->send(
            Hello{HaRole::none, static_cast<std::uint16_t>(out_rings_.size()), offer, 0});
        out_ = Out::offered;
        out_deadline_ = now + kAnswerTimeout;
    }
    if (!out_link_) {
        return;
    }
    const bool open = out_link_->receive();
    while (out_link_) {
        const auto m = out_link_->next();
        if (!m) {
            break;
        }
        if (const auto* r = std::get_if<Refuse>(&*m)) {
            out_failed("refused by the peer: " + r->reason);
            return;
        }
        if (const auto* h = std::get_if<Hello>(&*m); h != nullptr && out_ == Out::offered) {
            peer_terms_ = h->terms;
            if (moving_) {
                // Accepted. The moving subscribers' frames are held (and the stream filtered
                // to their sessions) on every worker before the bulk round starts.
                const ChangeResult held = hooks_.move(*moving_, false);
                if (!held.ok) {
                    out_failed("cannot hold the subscribers: " + held.message);
                    return;
                }
            } else {
                // Accepted. Silent first, then the bulk round: no session changes after it is
                // sent (a worker takes both up in the same step, in this order).
                shared_.ha_handing_over.store(true, std::memory_order_release);
            }
            shared_.ha_streaming.store(true, std::memory_order_release);
            generation_ = shared_.ha_bulk_generation.fetch_add(1, std::memory_order_acq_rel) + 1;
            std::fill(bulk_done_.begin(), bulk_done_.end(), false);
            bulk_sent_ = false;
            next_sequence_ = 0;
            silent_since_ = now;
            out_ = Out::streaming;
            out_deadline_ = now + kHandoverTimeout;
            const std::lock_guard lock(report_lock_);
            report_.state = "sending";
            continue;
        }
        if (const auto* d = std::get_if<HandoverDone>(&*m); d != nullptr && bulk_sent_) {
            if (moving_) {
                moved_over(*d, now);
            } else {
                drained(*d, now);
            }
            return;
        }
    }
    if (!out_link_->error().empty() || !open) {
        out_failed("the link to the peer broke: " +
                   (out_link_->error().empty() ? std::string("closed") : out_link_->error()));
        return;
    }
    if (now > out_deadline_) {
        out_failed(out_ == Out::offered ? "the peer did not answer the offer"
                                        : "the peer did not confirm the sessions in time");
        return;
    }
    if (out_ == Out::streaming || out_ == Out::waiting) {
        drain_rings();
    }
    if (out_link_ && !out_link_->flush()) {
        out_failed("the link to the peer broke: " + out_link_->error());
    }
}

// Every session is on the peer, which answers for this box's addresses now: this box stays
// silent for good and lets its sessions go without logging them ended (they go on there).
void Handover::drained(const HandoverDone& d, Clock::time_point now) {
    shared_.ha_standby.store(true, std::memory_order_release);
    shared_.ha_streaming.store(false, std::memory_order_release);
    shared_.ha_handing_over.store(false, std::memory_order_release);
    shared_.ha_reset_generation.fetch_add(1, std::memory_order_acq_rel);
    finished(d, now, "this box forwards nothing now");
    const std::lock_guard lock(report_lock_);
    drained_ = true;
    ++report_.handovers_out;
}

// The moved subscribers' sessions are on the peer: from now on what of theirs reaches this
// box goes on to the peer's MACs, their sessions here end, their ports stay held for the
// replies the routers still send here.
void Handover::moved_over(const HandoverDone& d, Clock::time_point now) {
    Config::SubscriberMove move = *moving_;
    move.moved = true;
    const auto inside = MacAddr::parse(term_value(peer_terms_, "offer.inside_mac"));
    const auto outside = MacAddr::parse(term_value(peer_terms_, "offer.outside_mac"));
    if (!inside || !outside) {
        out_failed("the peer did not say its MACs");
        return;
    }
    move.peer_inside_mac = *inside;
    move.peer_outside_mac = *outside;
    shared_.ha_streaming.store(false, std::memory_order_release);
    const ChangeResult moved = hooks_.move(move, false);
    if (!moved.ok) {
        out_failed("cannot pass the subscribers on: " + moved.message);
        return;
    }
    moving_.reset();
    finished(d, now, "their frames that still come here go on to it");
    {
        const std::lock_guard lock(report_lock_);
        ++report_.migrations_out;
    }
    if (const HaConfig ha = hooks_.current().ha; !ha.migrate_hook.empty()) {
        const HookOutcome outcome = run_migrate_hook(
            ha.migrate_hook,
            {"EPHEMERA_SUBSCRIBERS=" + move.prefix.to_string() + "/" + std::to_string(move.length),
             "EPHEMERA_PEER=" + move.peer,
             "EPHEMERA_PEER_GATEWAY=" + term_value(peer_terms_, "offer.gateway")},
            std::chrono::seconds(ha.migrate_hook_timeout_s));
        std::printf("ephemera: ha.migrate_hook %s: %s (after %lld ms)\n", ha.migrate_hook.c_str(),
                    outcome.said.c_str(), static_cast<long long>(outcome.took.count()));
        std::fflush(stdout);
        const std::lock_guard lock(report_lock_);
        report_.hook = outcome.said;
    }
}

void Handover::finished(const HandoverDone& d, Clock::time_point now, const char* after) {
    out_ = Out::none;
    {
        const std::lock_guard lock(report_lock_);
        report_.state = "done";
        report_.applied = d.applied;
        report_.refused = d.refused;
        report_.silent_ms = ms_between(silent_since_, now);
        report_.finished_unix_ms = unix_ms_now();
    }
    const HandoverReport r = report();
    std::printf("ephemera: hand-over%s%s: %llu sessions applied by %s (%llu refused) after "
                "%llu ms; %s\n",
                r.subscribers.empty() ? "" : " of ", r.subscribers.c_str(),
                static_cast<unsigned long long>(d.applied), out_link_->peer().c_str(),
                static_cast<unsigned long long>(d.refused),
                static_cast<unsigned long long>(r.silent_ms), after);
    std::fflush(stdout);
    out_link_.reset();
}

void Handover::drain_rings() {
    if (out_link_->queued() > kMaxQueuedBytes) {
        return; // the peer reads slower: the rings hold the rest, the workers wait for room
    }
    Records frame;
    const auto send_frame = [&] {
        frame.first_sequence = next_sequence_;
        next_sequence_ += frame.records.size();
        out_link_->send(frame);
        frame.records.clear();
    };
    std::uint64_t sent = 0;
    for (std::size_t w = 0; w < out_rings_.size(); ++w) {
        const unsigned n = rte_ring_sc_dequeue_burst_elem(out_rings_[w], scratch_.data(),
                                                          sizeof(SyncRecord), kDrainBurst, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            const SyncRecord& r = scratch_[i];
            if (r.kind == SyncKind::bulk_done) {
                bulk_done_[w] = bulk_done_[w] || r.generation == generation_;
                continue;
            }
            frame.records.push_back(encode(r.state, r.kind == SyncKind::remove
                                                        ? RecordType::session_removed
                                                        : RecordType::session));
            ++sent;
            if (frame.records.size() == kMaxRecordsPerFrame) {
                send_frame();
            }
        }
    }
    if (!frame.records.empty()) {
        send_frame();
    }
    if (!bulk_sent_ &&
        std::all_of(bulk_done_.begin(), bulk_done_.end(), [](bool b) { return b; })) {
        out_link_->send(BulkDone{generation_});
        bulk_sent_ = true;
        out_ = Out::waiting;
    }
    const std::lock_guard lock(report_lock_);
    report_.records_sent += sent;
}

void Handover::out_failed(const std::string& why) {
    // Nothing was let go: the workers forward again with every session they had.
    shared_.ha_streaming.store(false, std::memory_order_release);
    shared_.ha_handing_over.store(false, std::memory_order_release);
    if (moving_) {
        hooks_.move(*moving_, true); // held no more
        moving_.reset();
    }
    out_link_.reset();
    out_ = Out::none;
    {
        const std::lock_guard lock(report_lock_);
        report_.state = "failed";
        report_.error = why;
        report_.finished_unix_ms = unix_ms_now();
    }
    std::fprintf(stderr, "ephemera: hand-over to %s failed: %s; this box forwards as before\n",
                 report().peer.c_str(), why.c_str());
}

// ---------------------------------------------------------------- the box taking them in

void Handover::in_pass(Clock::time_point now) {
    if (in_ == In::none) {
        return;
    }
    const bool open = in_link_->receive();
    while (in_link_) {
        const auto m = in_link_->next();
        if (!m) {
            break;
        }
        if (const auto* h = std::get_if<Hello>(&*m); h != nullptr && in_ == In::hello) {
            on_offer(*h, now);
        } else if (const auto* r = std::get_if<Records>(&*m); r != nullptr && in_ == In::records) {
            on_records(*r);
        } else if (std::holds_alternative<BulkDone>(*m) && in_ == In::records) {
            bulk_received_ = true;
        } else {
            in_failed("an unexpected message from the drained box");
        }
    }
    if (in_ == In::none) {
        return;
    }
    deliver_pending();
    if (in_ == In::records && bulk_received_ && pending_total_ == 0) {
        const auto [applied, refused] = hooks_.applied_refused();
        const std::uint64_t done =
            applied - counted_before_.first + (refused - counted_before_.second) + undecodable_;
        if (done >= expected_) {
            // Every session is in. A drained box's addresses are this box's to answer for now,
            // announced on both segments at once; moved subscribers' addresses stay the other
            // box's (it still has subscribers on them and passes their replies here).
            if (incoming_subscribers_.empty()) {
                const ChangeResult answered = hooks_.adopt(offered_pool_, true, offered_gateway_);
                if (!answered.ok) {
                    in_failed("cannot answer for the drained box's addresses: " + answered.message);
                    return;
                }
                shared_.ha_announce_generation.fetch_add(1, std::memory_order_acq_rel);
            }
            const HandoverDone word{applied - counted_before_.first,
                                    refused - counted_before_.second + undecodable_};
            in_link_->send(word);
            in_link_->flush();
            {
                const std::lock_guard lock(report_lock_);
                report_.state = "done";
                report_.applied = word.applied;
                report_.refused = word.refused;
                report_.finished_unix_ms = unix_ms_now();
                ++report_.handovers_in;
            }
            const std::string after =
                incoming_subscribers_.empty()
                    ? "answering for " + join(offered_pool_) + " and " +
                          offered_gateway_.to_string()
                    : "subscribers " + incoming_subscribers_ + " are this box's now";
            std::printf("ephemera: hand-over from %s: %llu sessions in (%llu refused); %s\n",
                        in_link_->peer().c_str(), static_cast<unsigned long long>(word.applied),
                        static_cast<unsigned long long>(word.refused), after.c_str());
            std::fflush(stdout);
            in_link_.reset();
            in_ = In::none;
            return;
        }
    }
    if (!in_link_->error().empty() || !open) {
        in_failed("the drained box closed the link before all its sessions came");
        return;
    }
    if (now > in_deadline_) {
        in_failed(in_ == In::hello ? "the caller said nothing"
                                   : "the sessions did not come in time");
        return;
    }
    if (in_link_ && !in_link_->flush()) {
        in_failed("the link broke: " + in_link_->error());
    }
}

void Handover::on_offer(const Hello& offer, Clock::time_point now) {
    const auto refuse = [&](const std::string& why) {
        in_link_->send(Refuse{why});
        in_link_->flush();
        in_failed("refused " + in_link_->peer() + ": " + why);
    };
    if (offer.role != HaRole::none) {
        refuse("not a hand-over: the caller is a box of an HA pair");
        return;
    }
    if (term_value(offer.terms, "pool.mode") == "deterministic") {
        // The formula would give a drained box's subscribers this box's addresses.
        refuse("deterministic allocation is not handed over: the formula maps each subscriber "
               "to its own box's addresses");
        return;
    }
    const std::string mine = terms();
    if (const std::string diff = first_difference(agreed_part(mine), agreed_part(offer.terms));
        !diff.empty()) {
        refuse("the boxes disagree on " + diff);
        return;
    }
    const Config current = hooks_.current();
    offered_pool_ = parse_addresses(term_value(offer.terms, "offer.pool"));
    const auto gateway = Ipv4Addr::parse(term_value(offer.terms, "offer.gateway"));
    if (offered_pool_.empty() || !gateway) {
        refuse("the offer names no pool or no inside gateway");
        return;
    }
    for (const Ipv4Addr a : offered_pool_) {
        if (std::find(current.pool.begin(), current.pool.end(), a) != current.pool.end()) {
            refuse(a.to_string() + " is in this box's own pool: the boxes' pools must not overlap");
            return;
        }
        for (const StaticMapping& s : current.statics) {
            if (s.external == a) {
                refuse(a.to_string() + " is a static mapping's address on this box");
                return;
            }
        }
    }
    if (*gateway == current.inside.gateway) {
        refuse("the drained box's inside gateway " + gateway->to_string() + " is this box's too");
        return;
    }
    // Quiet first: the drained box still answers for its addresses until its sessions are in.
    const ChangeResult adopted = hooks_.adopt(offered_pool_, false, std::nullopt);
    if (!adopted.ok) {
        refuse("cannot take the pool in: " + adopted.message);
        return;
    }
    offered_gateway_ = *gateway;
    incoming_subscribers_ = term_value(offer.terms, "offer.subscribers");
    counted_before_ = hooks_.applied_refused();
    expected_ = 0;
    undecodable_ = 0;
    bulk_received_ = false;
    in_link_->send(Hello{HaRole::none, static_cast<std::uint16_t>(in_rings_.size()), mine, 0});
    in_ = In::records;
    in_deadline_ = now + kHandoverTimeout;
    const std::lock_guard lock(report_lock_);
    HandoverReport fresh;
    fresh.state = "receiving";
    fresh.direction = "in";
    fresh.peer = in_link_->peer();
    fresh.adopted = incoming_subscribers_.empty()
                        ? join(offered_pool_) + " gateway " + gateway->to_string()
                        : join(offered_pool_) + " (quiet: their replies come through the peer)";
    fresh.subscribers = incoming_subscribers_;
    fresh.handovers_in = report_.handovers_in;
    fresh.handovers_out = report_.handovers_out;
    report_ = fresh;
}

void Handover::on_records(const Records& records) {
    if (records.first_sequence != expected_) {
        in_failed("sequence gap: expected " + std::to_string(expected_) + ", got " +
                  std::to_string(records.first_sequence));
        return;
    }
    for (const RecordBytes& bytes : records.records) {
        auto decoded = decode_session(bytes);
        SyncRecord rec;
        if (const auto* s = std::get_if<SessionState>(&decoded)) {
            rec.state = *s;
        } else {
            ++undecodable_; // never reaches a worker: counted refused here
            continue;
        }
        rec.kind =
            record_type(bytes) == RecordType::session_removed ? SyncKind::remove : SyncKind::upsert;
        pending_[shared_.ownership.subscriber_owner(rec.state.inside)].push_back(rec);
        ++pending_total_;
    }
    expected_ += records.records.size();
    const std::lock_guard lock(report_lock_);
    report_.records_received += records.records.size();
}

void Handover::deliver_pending() {
    for (std::size_t w = 0; w < pending_.size(); ++w) {
        auto& q = pending_[w];
        while (!q.empty() &&
               rte_ring_sp_enqueue_elem(in_rings_[w], &q.front(), sizeof(SyncRecord)) == 0) {
            q.pop_front();
            --pending_total_;
        }
    }
}

void Handover::in_failed(const std::string& why) {
    // What was applied stays on addresses this box does not answer for: unseen, it ages out.
    for (auto& q : pending_) {
        q.clear();
    }
    pending_total_ = 0;
    in_link_.reset();
    in_ = In::none;
    {
        const std::lock_guard lock(report_lock_);
        report_.state = "failed";
        report_.error = why;
        report_.finished_unix_ms = unix_ms_now();
    }
    std::fprintf(stderr, "ephemera: hand-over in: %s\n", why.c_str());
}

} // namespace ephemera::ha
