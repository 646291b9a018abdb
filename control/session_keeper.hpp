// Sessions kept across a restart (docs/ha.md, "Restart without loss"): at stop, once the
// workers are out of their loops, every worker's sessions go to ha.state_file; at start, before
// any worker runs, each record goes to the worker that owns its subscriber, which rebuilds the
// session with the external address:port it had. Both run on the control thread while no
// worker reads its tables, so neither needs a handshake.
#pragma once

#include "app.hpp"

#include "ephemera/session_state.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace ephemera {

struct SaveReport {
    bool saved = false;
    std::uint64_t sessions = 0;
    std::uint64_t bytes = 0;
    std::string error; // why nothing was saved
};
// Call only after rte_eal_mp_wait_lcore(): reads the workers' tables directly. The file is
// written beside `path` and renamed over it, so a reader never sees half of one.
SaveReport save_sessions(App& app, const std::string& path);

struct RestoreReport {
    bool found = false;  // there was a file to read
    std::string refused; // why the whole file was set aside (then nothing was restored)
    std::uint64_t records = 0;
    std::uint64_t age_ms = 0; // how long ago it was written
    std::uint16_t written_by_workers = 0;
    std::array<std::uint64_t, kRestoreResultCount> results{};
    std::array<std::uint64_t, 3> bad_records{}; // by RecordError
    [[nodiscard]] std::uint64_t restored() const {
        return results[static_cast<std::size_t>(RestoreResult::restored)];
    }
    // One line for the log ("... restored N of M sessions ...").
    [[nodiscard]] std::string describe(const std::string& path) const;
};
// Call before the workers are launched. A file that was read is renamed to PATH.restored, so
// that a later start (after a crash, say) does not bring back sessions that ended since.
RestoreReport restore_sessions(App& app, const std::string& path);

} // namespace ephemera
