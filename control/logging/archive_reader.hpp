// Reading an archive directory: its records in order, and the check of its hash chain
// (archive_format.hpp) that `ephemeractl log verify` prints.
#pragma once

#include "archive_files.hpp"

#include "ephemera/nat_event.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera::logging {

struct ArchiveRecord {
    NatEvent event;
    std::string_view line; // as archived, without '\n'
    const ArchiveFile* file = nullptr;
    std::size_t line_no = 0; // from 1
};

// Calls `each` for every record of `dir`, file by file in chain order, until it returns
// false. Lines that are not records (header, seals, garbage) are skipped: verify_archive is
// what judges them. Returns the files it could not read, as messages.
std::vector<std::string> for_each_record(const std::string& dir,
                                         const std::function<bool(const ArchiveRecord&)>& each);

// The same for one file; false when `each` asked to stop. `error` is set when the file could
// not be read (wholly or, for a cut .zst, in part).
bool for_each_record_in(const ArchiveFile& file,
                        const std::function<bool(const ArchiveRecord&)>& each, std::string& error);

enum class BreakReason : std::uint8_t {
    hash_mismatch,    // a record of the block edited, added, removed or moved
    prev_mismatch,    // a block or file does not follow the one before: one removed or moved
    missing_file,     // a gap in file-seq: a whole file removed
    hmac_mismatch,    // wrong key, or the hashes were recomputed without it
    unsealed_tail,    // records after a file's last seal: a crash or a live writer, not tampering
    unparseable_line, // neither a record, a seal nor (first line) a header
    unreadable_file,  // I/O or decompression error
};
std::string_view break_reason_text(BreakReason r);

struct ArchiveBreak {
    std::string file;            // file name within the directory
    std::size_t line = 0;        // first line concerned, from 1
    std::size_t last_line = 0;   // last line concerned (the seal, for a block)
    std::uint64_t block_seq = 0; // 0: not a sealed block
    BreakReason reason = BreakReason::hash_mismatch;
    std::string detail;
};

struct VerifyReport {
    std::size_t files = 0;
    std::uint64_t records = 0;        // record lines, sealed or not
    std::uint64_t blocks = 0;         // seals checked
    std::uint64_t first_file_seq = 0; // > 1: older files were deleted (retention)
    bool hmac_checked = false;
    std::vector<ArchiveBreak> breaks;

    // No break but unsealed tails, which a crash or a running writer leaves.
    [[nodiscard]] bool intact() const;
};

// Checks every file of `dir`; with a key, every seal's hmac too.
VerifyReport verify_archive(const std::string& dir, std::span<const std::uint8_t> key = {});

} // namespace ephemera::logging
