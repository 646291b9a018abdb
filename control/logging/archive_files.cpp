#include "archive_files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>

namespace ephemera::logging {
namespace {

constexpr std::string_view kPrefix = "ephemera-";
constexpr std::string_view kPlain = ".log";
constexpr std::string_view kCompressed = ".log.zst";

// Closes on every path out, so that an early return cannot leak the descriptor.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }
    // The close result matters for a file just written: it may report a late write error.
    bool close() {
        const int fd = fd_;
        fd_ = -1;
        return ::close(fd) == 0;
    }

private:
    int fd_;
};

std::string errno_text(const std::string& path) {
    return path + ": " + std::strerror(errno);
}

// Reads until EOF, whatever fstat said: a file still being written may have grown since.
std::optional<std::string> read_whole(const std::string& path, std::string& error) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
        error = errno_text(path);
        return std::nullopt;
    }
    constexpr std::size_t kGrowth = 64 << 10;
    std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t done = 0;
    for (;;) {
        if (done == text.size()) {
            text.resize(text.size() + kGrowth);
        }
        const ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error = errno_text(path);
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    text.resize(done);
    return text;
}

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

std::optional<std::string> decompress(const std::string& packed, const std::string& path,
                                      std::string& error) {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    std::string out;
    std::string chunk(ZSTD_DStreamOutSize(), '\0');
    ZSTD_inBuffer in{packed.data(), packed.size(), 0};
    std::size_t last = 0;
    while (in.pos < in.size) {
        ZSTD_outBuffer o{chunk.data(), chunk.size(), 0};
        last = ZSTD_decompressStream(ctx, &o, &in);
        if (ZSTD_isError(last) != 0) {
            error = path + ": " + ZSTD_getErrorName(last);
            ZSTD_freeDCtx(ctx);
            return std::nullopt;
        }
        out.append(chunk.data(), o.pos);
    }
    ZSTD_freeDCtx(ctx);
    if (last != 0) {
        // A frame cut short: what decompressed is kept, and the verifier sees the cut.
        error = path + ": compressed data truncated";
    }
    return out;
}

} // namespace

std::string archive_file_name(std::uint64_t start_ms, std::uint64_t file_seq, bool compressed) {
    const auto seconds = static_cast<std::time_t>(start_ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "ephemera-%04d%02d%02dT%02d%02d%02dZ-%06llu", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<unsigned long long>(file_seq));
    return std::string(buf) + std::string(compressed ? kCompressed : kPlain);
}

std::optional<ArchiveFile> parse_archive_file_name(std::string_view name) {
    ArchiveFile f;
    f.name = std::string(name);
    if (name.ends_with(kCompressed)) {
        f.compressed = true;
        name.remove_suffix(kCompressed.size());
    } else if (name.ends_with(kPlain)) {
        name.remove_suffix(kPlain.size());
    } else {
        return std::nullopt;
    }
    // ephemera-YYYYMMDDTHHMMSSZ-N
    if (!name.starts_with(kPrefix) || name.size() < kPrefix.size() + 18) {
        return std::nullopt;
    }
    name.remove_prefix(kPrefix.size());
    int v[6] = {};
    const std::size_t at[6] = {0, 4, 6, 9, 11, 13};
    const std::size_t len[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; ++i) {
        const char* first = name.data() + at[i];
        const auto [p, ec] = std::from_chars(first, first + len[i], v[i]);
        if (ec != std::errc{} || p != first + len[i]) {
            return std::nullopt;
        }
    }
    if (name[8] != 'T' || name[15] != 'Z' || name[16] != '-') {
        return std::nullopt;
    }
    const std::string_view seq = name.substr(17);
    const auto [p, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), f.file_seq);
    if (seq.empty() || ec != std::errc{} || p != seq.data() + seq.size()) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    const std::time_t t = timegm(&tm);
    if (t < 0) {
        return std::nullopt;
    }
    f.start_ms = static_cast<std::uint64_t>(t) * 1000;
    return f;
}

std::vector<ArchiveFile> list_archive_files(const std::string& dir) {
    std::map<std::uint64_t, ArchiveFile> by_seq;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        auto f = parse_archive_file_name(entry.path().filename().string());
        if (!f || !entry.is_regular_file(ec)) {
            continue;
        }
        f->path = entry.path().string();
        auto [it, fresh] = by_seq.try_emplace(f->file_seq, *f);
        if (!fresh && f->compressed) {
            it->second = *f;
        }
    }
    std::vector<ArchiveFile> out;
    out.reserve(by_seq.size());
    for (auto& [seq, f] : by_seq) {
        out.push_back(std::move(f));
    }
    return out;
}

std::optional<std::string> read_archive_text(const ArchiveFile& file, std::string& error) {
    auto raw = read_whole(file.path, error);
    std::error_code ec;
    if (!raw && !file.compressed && !std::filesystem::exists(file.path, ec)) {
        // Compressed and unlinked since the directory was listed: the .zst holds the same text.
        ArchiveFile packed = file;
        packed.path += ".zst";
        packed.name += ".zst";
        packed.compressed = true;
        std::string packed_error;
        if (auto text = read_archive_text(packed, packed_error)) {
            error.clear();
            return text;
        }
        return std::nullopt;
    }
    if (!raw || !file.compressed) {
        return raw;
    }
    return decompress(*raw, file.path, error);
}

struct FileCompressor::State {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    std::string in = std::string(1 << 20, '\0');
    std::string out = std::string(ZSTD_CStreamOutSize(), '\0');

    ~State() { ZSTD_freeCCtx(ctx); }
    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    // Feeds `input` to the stream and writes what comes out; with ZSTD_e_end, until the frame
    // is complete.
    bool feed(int fd, ZSTD_inBuffer& input, ZSTD_EndDirective mode, std::string& error) {
        for (;;) {
            ZSTD_outBuffer o{out.data(), out.size(), 0};
            const std::size_t left = ZSTD_compressStream2(ctx, &o, &input, mode);
            if (ZSTD_isError(left) != 0) {
                error = ZSTD_getErrorName(left);
                return false;
            }
            if (!write_all(fd, out.data(), o.pos)) {
                error = std::strerror(errno);
                return false;
            }
            const bool done = mode == ZSTD_e_end ? left == 0 : input.pos == input.size;
            if (done) {
                return true;
            }
        }
    }

    bool stream(int from, int to, std::uint64_t size, const std::atomic<bool>* cancel,
                std::string& error) {
        ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, 3);
        // The frame header then carries the content size, as the one-shot ZSTD_compress did.
        ZSTD_CCtx_setPledgedSrcSize(ctx, size);
        for (;;) {
            if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
                error = "cancelled";
                return false;
            }
            const ssize_t n = ::read(from, in.data(), in.size());
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                error = std::strerror(errno);
                return false;
            }
            ZSTD_inBuffer input{in.data(), static_cast<std::size_t>(n), 0};
            const ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
            if (!feed(to, input, mode, error)) {
                return false;
            }
            if (n == 0) {
                return true;
            }
        }
    }
};

FileCompressor::FileCompressor() : state_(std::make_unique<State>()) {}
FileCompressor::~FileCompressor() = default;

bool FileCompressor::compress(const std::string& from, const std::string& to, std::string& error,
                              const std::atomic<bool>* cancel) {
    if (state_->ctx == nullptr) {
        error = "zstd: no compression context";
        return false;
    }
    Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) {
        error = errno_text(from);
        return false;
    }
    int locked = 0;
    while ((locked = ::flock(in.get(), LOCK_EX)) != 0 && errno == EINTR) {
    }
    struct stat st {};
    if (locked != 0 || ::fstat(in.get(), &st) != 0) {
        error = errno_text(from);
        return false;
    }
    if (st.st_nlink == 0) {
        return true; // compressed (or deleted by retention) while this waited for the lock
    }
    const std::string tmp = to + ".tmp";
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (out.get() < 0) {
        error = errno_text(tmp);
        return false;
    }
    std::string why;
    bool ok =
        state_->stream(in.get(), out.get(), static_cast<std::uint64_t>(st.st_size), cancel, why);
    if (!ok) {
        error = from + ": " + why;
    } else if (::fsync(out.get()) != 0 || !out.close()) {
        // Synced before the rename: a crash must not leave a .zst whose blocks never reached the
        // disk once the plain file is unlinked.
        error = errno_text(tmp);
        ok = false;
    }
    std::error_code ec;
    if (ok) {
        std::filesystem::rename(tmp, to, ec);
        if (ec) {
            error = to + ": " + ec.message();
            ok = false;
        }
    }
    if (!ok) {
        std::filesystem::remove(tmp, ec);
    }
    return ok;
}

bool compress_file(const std::string& from, const std::string& to, std::string& error) {
    FileCompressor c;
    return c.compress(from, to, error);
}

} // namespace ephemera::logging
