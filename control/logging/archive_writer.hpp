// The local archive: every NAT event as a line in rotated, compressed, hash-chained files
// (archive_format.hpp), kept for the retention period, so that `ephemeractl whois` can answer
// long after collectors have rotated their own logs and `ephemeractl log verify` can show that
// nothing was edited.
#pragma once

#include "archive_compressor.hpp"
#include "archive_format.hpp"
#include "sink.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ephemera::logging {

struct ArchiveOptions {
    std::string directory;
    std::uint64_t rotate_bytes = 64ULL << 20;        // a file is closed once it reaches this size
    std::uint64_t rotate_age_ms = 3'600'000;         // ... or this age
    std::uint64_t retention_ms = 90ULL * 86'400'000; // closed files older than this are deleted
    bool compress = true;                            // closed files become .log.zst
    std::uint32_t block_records = 1024;              // a seal after at most this many records
    std::uint64_t seal_period_ms = 1000; // ... or when the oldest unsealed one is this old
    std::vector<std::uint8_t> hmac_key;  // empty: seals carry no hmac
};

// Writes on the logging thread with plain write(2). A failed write drops the records of that
// write (records_dropped), cuts the file back to its last whole line and moves to a new file,
// so a disk error costs records, never the chain. Closing a file (rotation) only queues it for
// the sink's compressor thread (archive_compressor.hpp), which streams it to zstd level 3 at the
// lowest priority: the logging thread never waits for compression. Until its .zst is renamed
// into place a closed file is read plain; retention skips a file still queued or under way.
class ArchiveSink final : public Sink {
public:
    // Continues the chain of a directory that has files (the newest file's last seal, read
    // through .zst too), and queues for compression every closed plain file a previous run left:
    // the one a crash left open, and those its compressor had not reached.
    ArchiveSink(ArchiveOptions options, std::uint64_t now_ms);
    ~ArchiveSink() override;

    [[nodiscard]] std::string name() const override { return "archive " + options_.directory; }
    void write(std::span<const NatEvent> events, std::uint64_t now_ms) override;
    // Seals a block older than seal_period_ms, rotates by age, applies retention once a minute.
    void poll(std::uint64_t now_ms) override;
    // Seals what is pending and syncs the file to disk.
    void flush(std::uint64_t deadline_ms) override;

    // The file being written, empty when none is open (before the first record, or after a
    // rotation until the next one).
    [[nodiscard]] const std::string& current_file() const { return path_; }

    // For tests: see ArchiveCompressor. wait_compressed returns once every closed file is
    // compressed (or failed); hold_compression keeps the compressor from finishing a file.
    void wait_compressed();
    void hold_compression(bool on);
    void wait_compression_held();

private:
    void recover(std::uint64_t now_ms);
    bool ensure_file(std::uint64_t now_ms);
    [[nodiscard]] bool age_reached(std::uint64_t now_ms) const;
    bool open_file(std::uint64_t now_ms);
    void close_file(std::uint64_t now_ms);
    void close_plain(const std::string& plain_path);
    bool seal();
    bool append(std::string_view bytes);
    void apply_retention(std::uint64_t now_ms);
    void count_compress_failures();

    ArchiveOptions options_;
    int fd_ = -1;
    std::string path_;
    bool broken_ = false; // a write failed: the next record goes to a new file
    std::uint64_t opened_ms_ = 0;
    std::uint64_t bytes_ = 0; // the file's size: everything written whole
    std::uint64_t header_bytes_ = 0;
    std::uint64_t next_file_seq_ = 1;
    std::uint64_t last_open_attempt_ms_ = 0;
    bool open_failed_ = false;
    std::uint64_t last_retention_ms_ = 0;
    Digest chain_{};             // sha256 of the last seal written (or the header's prev)
    std::uint64_t seal_seq_ = 0; // of the file's last seal
    std::string block_;          // the unsealed records, already in the file (and, within
                                 // write, the lines it is about to write)
    std::uint64_t block_records_ = 0;
    std::uint64_t block_started_ms_ = 0;
    std::uint64_t compress_failures_ = 0; // already in stats_.errors
    // Destroyed first, before the members its files come from; it abandons the file under way.
    // Null when compress is off.
    std::unique_ptr<ArchiveCompressor> compressor_;
};

} // namespace ephemera::logging
