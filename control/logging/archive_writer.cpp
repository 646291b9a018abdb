#include "archive_writer.hpp"

#include "archive_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace ephemera::logging {
namespace {

constexpr std::uint64_t kReopenIntervalMs = 1000;
constexpr std::uint64_t kRetentionIntervalMs = 60'000;

// The chain state at the end of a file's text: its last seal, or its header when it has none.
std::optional<Digest> chain_end(std::string_view text) {
    std::optional<Digest> end;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        if (const auto s = is_seal_line(line) ? parse_seal(line) : std::nullopt) {
            end = s->sha256;
        } else if (const auto h = is_header_line(line) ? parse_header(line) : std::nullopt) {
            end = h->prev;
        }
        if (nl == std::string_view::npos) {
            break;
        }
        text.remove_prefix(nl + 1);
    }
    return end;
}

std::string plain_path_of(const std::string& dir, const ArchiveFile& f) {
    return (std::filesystem::path(dir) / archive_file_name(f.start_ms, f.file_seq, false)).string();
}

} // namespace

ArchiveSink::ArchiveSink(ArchiveOptions options, std::uint64_t now_ms)
    : options_(std::move(options)) {
    if (options_.block_records == 0) {
        options_.block_records = 1;
    }
    if (options_.compress) {
        compressor_ = std::make_unique<ArchiveCompressor>();
    }
    recover(now_ms);
}

ArchiveSink::~ArchiveSink() {
    if (fd_ >= 0) {
        seal();
        ::close(fd_);
    }
}

void ArchiveSink::recover(std::uint64_t now_ms) {
    std::error_code ec;
    std::filesystem::create_directories(options_.directory, ec);
    const std::vector<ArchiveFile> files = list_archive_files(options_.directory);
    if (!files.empty()) {
        next_file_seq_ = files.back().file_seq + 1;
    }
    bool found = false;
    for (auto f = files.rbegin(); f != files.rend() && !found; ++f) {
        std::string error;
        const auto text = read_archive_text(*f, error);
        const auto end = text ? chain_end(*text) : std::nullopt;
        if (end) {
            chain_ = *end;
            found = true;
        }
    }
    if (!files.empty() && !found) {
        stats_.add(stats_.errors); // nothing to chain to: verify will show the break
    }
    // A compression a crash cut short: its plain file is still there and is compressed again.
    for (const auto& entry : std::filesystem::directory_iterator(options_.directory, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.ends_with(".log.zst.tmp") &&
            parse_archive_file_name(name.substr(0, name.size() - 4))) {
            std::filesystem::remove(entry.path(), ec);
        }
    }
    for (const ArchiveFile& f : files) {
        const std::string plain = plain_path_of(options_.directory, f);
        if (f.compressed) {
            std::filesystem::remove(plain, ec); // a crash between rename and unlink
        } else if (options_.compress) {
            close_plain(plain);
        }
    }
    apply_retention(now_ms);
}

void ArchiveSink::write(std::span<const NatEvent> events, std::uint64_t now_ms) {
    std::size_t i = 0;
    while (i < events.size()) {
        if (!ensure_file(now_ms)) {
            stats_.add(stats_.records_dropped, events.size() - i);
            return;
        }
        // The lines go straight into the block, whose capacity outlives each seal, and are
        // taken back out if the write fails.
        const std::size_t start = block_.size();
        std::uint64_t n = 0;
        while (i < events.size() && block_records_ + n < options_.block_records) {
            append_record(block_, events[i]);
            ++n;
            ++i;
        }
        const std::size_t written = block_.size() - start;
        if (!append(std::string_view(block_).substr(start))) {
            block_.resize(start);
            stats_.add(stats_.records_dropped, n);
            continue;
        }
        if (block_records_ == 0) {
            block_started_ms_ = now_ms;
        }
        block_records_ += n;
        stats_.add(stats_.records_sent, n);
        stats_.add(stats_.bytes_sent, written);
        if (block_records_ >= options_.block_records) {
            seal();
        }
    }
}

void ArchiveSink::poll(std::uint64_t now_ms) {
    // A clock stepped back seals at once rather than after the step is made up.
    if (fd_ >= 0 && block_records_ > 0 &&
        (now_ms < block_started_ms_ || now_ms - block_started_ms_ >= options_.seal_period_ms)) {
        seal();
    }
    // A quiet file is closed on time too, so that it is compressed and ages out; an empty one
    // waits, lest every hour leave a file with only a header.
    if (fd_ >= 0 && bytes_ > header_bytes_ && age_reached(now_ms)) {
        close_file(now_ms);
    }
    if (now_ms - last_retention_ms_ >= kRetentionIntervalMs) {
        apply_retention(now_ms);
    }
    count_compress_failures();
}

void ArchiveSink::flush(std::uint64_t deadline_ms) {
    (void)deadline_ms;
    if (fd_ >= 0) {
        seal();
        if (::fsync(fd_) != 0) {
            stats_.add(stats_.errors);
        }
    }
}

bool ArchiveSink::ensure_file(std::uint64_t now_ms) {
    if (fd_ >= 0 && (broken_ || bytes_ >= options_.rotate_bytes || age_reached(now_ms))) {
        close_file(now_ms);
    }
    if (fd_ >= 0) {
        return true;
    }
    // A failing disk is tried again once a second, not once per batch.
    if (open_failed_ && now_ms - last_open_attempt_ms_ < kReopenIntervalMs) {
        return false;
    }
    last_open_attempt_ms_ = now_ms;
    open_failed_ = !open_file(now_ms);
    return !open_failed_;
}

bool ArchiveSink::age_reached(std::uint64_t now_ms) const {
    return now_ms >= opened_ms_ && now_ms - opened_ms_ >= options_.rotate_age_ms;
}

bool ArchiveSink::open_file(std::uint64_t now_ms) {
    std::error_code ec;
    std::filesystem::create_directories(options_.directory, ec);
    const std::string path = (std::filesystem::path(options_.directory) /
                              archive_file_name(now_ms, next_file_seq_, false))
                                 .string();
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0) {
        stats_.add(stats_.errors);
        return false;
    }
    path_ = path;
    bytes_ = 0;
    broken_ = false;
    seal_seq_ = 0;
    if (!append(format_header({chain_, next_file_seq_}) + '\n')) {
        ::close(fd_);
        fd_ = -1;
        std::filesystem::remove(path, ec);
        path_.clear();
        return false;
    }
    header_bytes_ = bytes_;
    opened_ms_ = now_ms;
    ++next_file_seq_;
    return true;
}

void ArchiveSink::close_file(std::uint64_t now_ms) {
    seal(); // on a broken file this may fail: its records stay an unsealed tail
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
        stats_.add(stats_.errors);
    }
    fd_ = -1;
    block_.clear();
    block_records_ = 0;
    const std::string closed = std::move(path_);
    path_.clear();
    if (options_.compress) {
        close_plain(closed);
    }
    apply_retention(now_ms);
}

void ArchiveSink::close_plain(const std::string& plain_path) {
    if (compressor_) {
        compressor_->enqueue(plain_path);
    }
}

void ArchiveSink::count_compress_failures() {
    if (!compressor_) {
        return;
    }
    const std::uint64_t failures = compressor_->failures();
    stats_.add(stats_.errors, failures - compress_failures_); // the plain file stays: readable
    compress_failures_ = failures;
}

void ArchiveSink::wait_compressed() {
    if (compressor_) {
        compressor_->wait_idle();
    }
    count_compress_failures();
}

void ArchiveSink::hold_compression(bool on) {
    if (compressor_) {
        compressor_->hold(on);
    }
}

void ArchiveSink::wait_compression_held() {
    if (compressor_) {
        compressor_->wait_held();
    }
}

bool ArchiveSink::seal() {
    if (fd_ < 0 || block_records_ == 0) {
        return true;
    }
    BlockHasher hasher(chain_, options_.hmac_key);
    hasher.add(block_);
    Seal s;
    s.seq = seal_seq_ + 1;
    s.records = block_records_;
    s.prev = chain_;
    s.sha256 = hasher.finish_sha256();
    s.hmac = hasher.finish_hmac();
    if (!append(format_seal(s) + '\n')) {
        return false;
    }
    chain_ = s.sha256;
    seal_seq_ = s.seq;
    block_.clear();
    block_records_ = 0;
    stats_.add(stats_.messages_sent);
    return true;
}

bool ArchiveSink::append(std::string_view bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            // Back to the last whole line, so that the file stays a chain with at most an
            // unsealed tail.
            if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
                stats_.add(stats_.errors);
            }
            stats_.add(stats_.errors);
            broken_ = true;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    bytes_ += bytes.size();
    return true;
}

void ArchiveSink::apply_retention(std::uint64_t now_ms) {
    last_retention_ms_ = now_ms;
    const std::vector<ArchiveFile> files = list_archive_files(options_.directory);
    // A file holds records until the next one was opened: that is its age.
    for (std::size_t i = 0; i + 1 < files.size(); ++i) {
        const std::uint64_t ended = files[i + 1].start_ms;
        if (files[i].path == path_ || ended + options_.retention_ms > now_ms) {
            continue;
        }
        // Deleted on a later pass, once compressed: deleting it now would fail the compression
        // or let its .zst be renamed back into the directory after retention.
        if (compressor_ && compressor_->holds(plain_path_of(options_.directory, files[i]))) {
            continue;
        }
        std::error_code ec;
        if (!std::filesystem::remove(files[i].path, ec) || ec) {
            stats_.add(stats_.errors);
        }
    }
}

} // namespace ephemera::logging
