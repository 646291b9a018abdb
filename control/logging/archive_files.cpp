#include "archive_files.hpp"

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

namespace ephemera::logging {
namespace {

constexpr std::string_view kPrefix = "ephemera-";
constexpr std::string_view kPlain = ".log";
constexpr std::string_view kCompressed = ".log.zst";

std::optional<std::string> read_whole(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) {
        error = path + ": read error";
        return std::nullopt;
    }
    return text;
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
    if (!raw || !file.compressed) {
        return raw;
    }
    return decompress(*raw, file.path, error);
}

bool compress_file(const std::string& from, const std::string& to, std::string& error) {
    const auto text = read_whole(from, error);
    if (!text) {
        return false;
    }
    std::string packed(ZSTD_compressBound(text->size()), '\0');
    const std::size_t n =
        ZSTD_compress(packed.data(), packed.size(), text->data(), text->size(), 3);
    if (ZSTD_isError(n) != 0) {
        error = from + ": " + ZSTD_getErrorName(n);
        return false;
    }
    const std::string tmp = to + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(packed.data(), static_cast<std::streamsize>(n));
        out.flush();
        if (!out) {
            error = tmp + ": write failed";
            std::filesystem::remove(tmp);
            return false;
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, to, ec);
    if (ec) {
        error = to + ": " + ec.message();
        std::filesystem::remove(tmp, ec);
        return false;
    }
    return true;
}

} // namespace ephemera::logging
