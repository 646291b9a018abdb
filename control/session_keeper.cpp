// Saving and restoring the sessions around a restart (session_keeper.hpp).
#include "session_keeper.hpp"

#include <rte_cycles.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace ephemera {

namespace {

constexpr std::uint32_t kExportStep = 65536;

Tick tick_now(const App& app) {
    return static_cast<Tick>((rte_rdtsc() - app.shared.start_tsc) / app.shared.tsc_per_tick);
}

std::string errno_text() {
    return std::strerror(errno);
}

bool write_all(int fd, const std::vector<std::uint8_t>& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

std::optional<std::vector<std::uint8_t>> read_all(const std::string& path, std::string& error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = errno_text();
        return std::nullopt;
    }
    std::vector<std::uint8_t> bytes;
    std::uint8_t buffer[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = errno_text();
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        bytes.insert(bytes.end(), buffer, buffer + n);
    }
    ::close(fd);
    return bytes;
}

std::uint32_t saturating_add(std::uint32_t a, std::uint64_t b) {
    const std::uint64_t sum = std::uint64_t{a} + b;
    return sum > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(sum);
}

} // namespace

SaveReport save_sessions(App& app, const std::string& path) {
    SaveReport report;
    StateFile file;
    file.workers = app.shared.workers;
    file.written_unix_ms = unix_ms_now();
    const Tick now = tick_now(app);
    std::vector<SessionState> sessions;
    for (const auto& worker : app.workers) {
        sessions.clear();
        sessions.reserve(worker->translator().live_sessions());
        std::uint32_t cursor = 0;
        while (!worker->translator().export_sessions(cursor, kExportStep, now, sessions)) {
        }
        for (const SessionState& s : sessions) {
            file.records.push_back(encode(s));
        }
    }
    const std::vector<std::uint8_t> bytes = encode_state_file(file);
    const std::string temporary = path + ".new";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        report.error = "cannot create " + temporary + ": " + errno_text();
        return report;
    }
    const bool written = write_all(fd, bytes) && ::fsync(fd) == 0;
    const std::string write_error = errno_text();
    ::close(fd);
    if (!written) {
        ::unlink(temporary.c_str());
        report.error = "cannot write " + temporary + ": " + write_error;
        return report;
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        report.error = "cannot rename " + temporary + " to " + path + ": " + errno_text();
        ::unlink(temporary.c_str());
        return report;
    }
    report.saved = true;
    report.sessions = file.records.size();
    report.bytes = bytes.size();
    return report;
}

RestoreReport restore_sessions(App& app, const std::string& path) {
    RestoreReport report;
    if (::access(path.c_str(), F_OK) != 0) {
        return report; // a first start, or the last stop was not a clean one
    }
    report.found = true;
    std::string error;
    const auto bytes = read_all(path, error);
    std::variant<StateFile, std::string> decoded =
        bytes ? decode_state_file(*bytes)
              : std::variant<StateFile, std::string>("cannot read: " + error);
    const std::string aside = path + ".restored";
    if (::rename(path.c_str(), aside.c_str()) != 0) {
        // Restored state must not come back at a later start; if it cannot be moved aside,
        // it is not used at all.
        report.refused = "cannot rename it to " + aside + ": " + errno_text();
        return report;
    }
    if (auto* why = std::get_if<std::string>(&decoded)) {
        report.refused = *why;
        return report;
    }
    const StateFile& file = std::get<StateFile>(decoded);
    report.records = file.records.size();
    report.written_by_workers = file.workers;
    const std::uint64_t wall = unix_ms_now();
    report.age_ms = wall > file.written_unix_ms ? wall - file.written_unix_ms : 0;
    const Tick now = tick_now(app);
    for (const RecordBytes& record : file.records) {
        auto state = decode_session(record);
        if (auto* bad = std::get_if<RecordError>(&state)) {
            ++report.bad_records[static_cast<std::size_t>(*bad)];
            continue;
        }
        SessionState& s = std::get<SessionState>(state);
        s.idle_ms = saturating_add(s.idle_ms, report.age_ms);
        s.mapping_ms = saturating_add(s.mapping_ms, report.age_ms);
        const WorkerId owner = app.shared.ownership.subscriber_owner(s.inside);
        const RestoreResult result = app.workers[owner]->translator().restore(s, now);
        ++report.results[static_cast<std::size_t>(result)];
    }
    return report;
}

std::string RestoreReport::describe(const std::string& path) const {
    if (!found) {
        return "no saved sessions in " + path;
    }
    if (!refused.empty()) {
        return "saved sessions in " + path + " not used: " + refused;
    }
    std::string out = "restored " + std::to_string(restored()) + " of " + std::to_string(records) +
                      " sessions from " + path + " (written " + std::to_string(age_ms) +
                      " ms ago by " + std::to_string(written_by_workers) + " worker(s))";
    for (std::size_t i = 1; i < results.size(); ++i) {
        if (results[i] != 0) {
            out += ", " + std::to_string(results[i]) + " " + std::string(kRestoreResultNames[i]);
        }
    }
    for (std::size_t i = 0; i < bad_records.size(); ++i) {
        if (bad_records[i] != 0) {
            out += ", " + std::to_string(bad_records[i]) + " unreadable (" +
                   std::string(record_error_name(static_cast<RecordError>(i))) + ")";
        }
    }
    return out;
}

} // namespace ephemera
