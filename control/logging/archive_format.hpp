// The archive's text: one line per NAT event, greppable ("TIME key=value ..."), and the lines
// that make each file a hash chain.
//
// A file is a header line, then blocks: record lines followed by one seal line.
//   #ephemera-archive v1 prev=<hex> file-seq=F
//   2026-12-05T10:00:00.123Z event=mapping-create worker=0 proto=udp inside=... outside=...
//   #seal seq=K records=N prev=<hex> sha256=<hex> [hmac=<hex>]
// sha256 = SHA-256(prev || the block's record lines, each with its '\n'), prev being the 32
// bytes of the previous seal's sha256: the previous block of this file, or for a file's first
// block the header's prev, which is the last seal of the file before (64 zeros for the very
// first). hmac is HMAC-SHA256 with the operator's key over the same bytes. seq counts the
// blocks of one file from 1. So an edited, added, removed or reordered record changes its
// block's sha256; a removed block breaks the next block's prev; a removed file breaks the
// next file's header prev (and leaves a gap in file-seq). Without a key, whoever can write
// the files can recompute every hash; the hmac is what such a writer cannot forge.
#pragma once

#include "ephemera/nat_event.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera::logging {

using Digest = std::array<std::uint8_t, 32>;
inline constexpr Digest kZeroDigest{};

// The record line of `e` with its '\n', appended to `out`: no allocation once `out` has grown
// to a batch's size, which is how the archive writer calls it.
void append_record(std::string& out, const NatEvent& e);
// The record line of `e`, without '\n'.
std::string format_record(const NatEvent& e);
// The reverse, for every kind: exact for every field format_record prints (a protocol other
// than udp, tcp or icmp prints as "other" and reads back as 255). nullopt: not a record line.
std::optional<NatEvent> parse_record(std::string_view line);

std::string to_hex(const Digest& d);
std::optional<Digest> digest_from_hex(std::string_view text);

struct FileHeader {
    Digest prev{};
    std::uint64_t file_seq = 0;
};
std::string format_header(const FileHeader& h);
std::optional<FileHeader> parse_header(std::string_view line);

struct Seal {
    std::uint64_t seq = 0;
    std::uint64_t records = 0;
    Digest prev{};
    Digest sha256{};
    std::optional<Digest> hmac;
};
std::string format_seal(const Seal& s);
std::optional<Seal> parse_seal(std::string_view line);

inline bool is_header_line(std::string_view line) {
    return line.starts_with("#ephemera-archive");
}
inline bool is_seal_line(std::string_view line) {
    return line.starts_with("#seal");
}

// The digests of one block, fed line by line. An empty key: no hmac.
class BlockHasher {
public:
    BlockHasher(const Digest& prev, std::span<const std::uint8_t> key);
    ~BlockHasher();
    BlockHasher(const BlockHasher&) = delete;
    BlockHasher& operator=(const BlockHasher&) = delete;

    void add(std::string_view bytes);
    // Ends the block: its sha256 and, with a key, its hmac.
    Digest finish_sha256();
    std::optional<Digest> finish_hmac();

private:
    struct State;
    State* state_;
};

// An operator key file: its bytes, less trailing newlines (so that `echo secret > key` and
// `printf secret > key` are the same key). nullopt: unreadable or empty.
std::optional<std::vector<std::uint8_t>> read_key_file(const std::string& path);

} // namespace ephemera::logging
