// The HA stream on a worker (docs/ha.md): the active's refresh rounds, and the standby's taking
// up of what the active sent. Both run between bursts, a bounded step at a time.
#include "ephemera/translator.hpp"

namespace ephemera {

void Translator::sync_step(Tick now, Tick interval, std::uint32_t generation,
                           std::uint32_t budget) {
    if (!sync_.streaming()) {
        round_ = SyncRound{};
        round_.generation = generation; // a standby that comes back asks again
        round_.started = now;
        return;
    }
    if (generation != round_.generation) {
        // A standby (re)connected: everything it may have missed, from the start.
        round_.walking = true;
        round_.bulk = true;
        round_.cursor = 0;
        round_.generation = generation;
        round_.previous_start = round_.started;
        round_.started = now;
    } else if (!round_.walking && now - round_.started >= interval) {
        round_.walking = true;
        round_.bulk = false;
        round_.cursor = 0;
        round_.previous_start = round_.started;
        round_.started = now;
    }
    if (!round_.walking || sync_.room() < budget + 64) {
        return; // the sync thread has not caught up: this step waits, nothing is lost
    }
    for (std::uint32_t seen = 0; seen < budget; ++seen) {
        const std::int32_t pos = tables_.sessions.next(round_.cursor);
        if (pos < 0) {
            round_.walking = false;
            if (round_.bulk) {
                sync_.bulk_done(round_.generation);
            }
            break;
        }
        const auto session = static_cast<std::uint32_t>(pos);
        const Session& s = tables_.sessions.value(session);
        // Used since the last round began: its refresh is news to the standby.
        if (round_.bulk || static_cast<std::int32_t>(s.last_seen - round_.previous_start) >= 0) {
            sync_.upsert(life_.state_of(session, now));
        }
    }
    sync_.flush();
}

RestoreResult Translator::apply_sync(const SyncRecord& record, Tick now) {
    const SessionState& st = record.state;
    const SessionKey key =
        SessionKey::make(st.inside, st.inside_port, st.remote, st.remote_port, st.proto);
    const std::int32_t pos = tables_.sessions.lookup(key);
    if (record.kind == SyncKind::remove) {
        if (pos < 0) {
            return RestoreResult::duplicate; // gone here already (its timeout came first)
        }
        life_.end_session(static_cast<std::uint32_t>(pos), key, now);
        events_.flush();
        return RestoreResult::restored;
    }
    if (pos < 0) {
        return restore(st, now);
    }
    const auto session = static_cast<std::uint32_t>(pos);
    const Session& s = tables_.sessions.value(session);
    if (pool().address(s.pool_index) != st.external || s.external_port != st.external_port) {
        return RestoreResult::conflict;
    }
    life_.take_state(session, now - ticks_of_ms(st.idle_ms), st.tcp_flags);
    return RestoreResult::restored;
}

} // namespace ephemera
