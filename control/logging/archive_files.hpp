// The archive's files on disk: their names, which sort by time and carry the file's place in
// the chain, and reading them whole whether still plain or already compressed.
//   ephemera-20261205T100000Z-000042.log        the file being written
//   ephemera-20261205T100000Z-000042.log.zst    closed and compressed
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera::logging {

struct ArchiveFile {
    std::string path; // directory/name
    std::string name;
    std::uint64_t start_ms = 0; // when it was opened, to the second
    std::uint64_t file_seq = 0;
    bool compressed = false;
};

std::string archive_file_name(std::uint64_t start_ms, std::uint64_t file_seq, bool compressed);
// nullopt: not an archive file (other files in the directory are left alone).
std::optional<ArchiveFile> parse_archive_file_name(std::string_view name);

// The archive files of `dir` in chain order (file-seq). When a crash left both the plain and
// the compressed form of one file, the compressed one, which is complete once it is renamed
// into place. Empty when the directory is missing or unreadable.
std::vector<ArchiveFile> list_archive_files(const std::string& dir);

// The whole text of a file, decompressed. nullopt with `error` set when it cannot be read.
std::optional<std::string> read_archive_text(const ArchiveFile& file, std::string& error);

// Writes `to` as the zstd compression of `from` (through a temporary name, synced and renamed
// into place, so that `to` is whole or absent). false with `error` set on failure, or when
// `cancel` became true between two reads. Streams the file in 1 MiB reads, so that a 64 MiB
// file costs neither 64 MiB nor its compression bound in memory; one FileCompressor keeps its
// zstd context and buffers from one file to the next. Holds an exclusive flock on `from`
// meanwhile, so that two sinks on one directory (the old and the new one of a reconfiguration)
// never write the same temporary file: the second waits, then finds `from` unlinked and has
// nothing to do (true).
class FileCompressor {
public:
    FileCompressor();
    ~FileCompressor();
    FileCompressor(const FileCompressor&) = delete;
    FileCompressor& operator=(const FileCompressor&) = delete;

    bool compress(const std::string& from, const std::string& to, std::string& error,
                  const std::atomic<bool>* cancel = nullptr);

private:
    struct State;
    std::unique_ptr<State> state_;
};

bool compress_file(const std::string& from, const std::string& to, std::string& error);

} // namespace ephemera::logging
