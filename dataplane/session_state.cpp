// The session record and the state file, to and from bytes (session_state.hpp).
#include "ephemera/session_state.hpp"

#include "ephemera/big_endian.hpp"

#include <algorithm>
#include <cstring>

namespace ephemera {

namespace {

constexpr bool known_protocol(std::uint8_t p) {
    return p == static_cast<std::uint8_t>(Protocol::tcp) ||
           p == static_cast<std::uint8_t>(Protocol::udp) ||
           p == static_cast<std::uint8_t>(Protocol::icmp);
}

} // namespace

RecordBytes encode(const SessionState& s, RecordType type) {
    std::vector<std::uint8_t> bytes;
    bytes.reserve(kRecordSize);
    ByteWriter w(bytes);
    w.u8(static_cast<std::uint8_t>(type));
    w.u8(static_cast<std::uint8_t>(s.proto));
    w.u8(s.tcp_flags);
    w.u8(s.mapping_flags);
    w.u32(s.inside.value());
    w.u16(s.inside_port);
    w.u16(s.external_port);
    w.u32(s.external.value());
    w.u32(s.remote.value());
    w.u16(s.remote_port);
    w.bytes(s.inside_mac.bytes);
    w.u32(s.idle_ms);
    w.u32(s.mapping_ms);
    w.u16(s.block_head);
    w.u16(s.block_granules);
    w.u32(s.block_age_ms);
    RecordBytes out{};
    std::copy_n(bytes.begin(), kRecordSize, out.begin());
    return out;
}

std::string_view record_error_name(RecordError e) {
    switch (e) {
    case RecordError::unknown_type:
        return "unknown record type";
    case RecordError::bad_protocol:
        return "protocol not TCP, UDP or ICMP";
    case RecordError::bad_endpoint:
        return "an address or port that no session has";
    }
    return "?";
}

std::variant<SessionState, RecordError>
decode_session(std::span<const std::uint8_t, kRecordSize> bytes) {
    ByteReader r(bytes);
    const std::uint8_t type = r.u8();
    if (type != static_cast<std::uint8_t>(RecordType::session) &&
        type != static_cast<std::uint8_t>(RecordType::session_removed)) {
        return RecordError::unknown_type;
    }
    const std::uint8_t proto = r.u8();
    if (!known_protocol(proto)) {
        return RecordError::bad_protocol;
    }
    SessionState s;
    s.proto = static_cast<Protocol>(proto);
    s.tcp_flags = r.u8();
    s.mapping_flags = r.u8();
    s.inside = Ipv4Addr{r.u32()};
    s.inside_port = r.u16();
    s.external_port = r.u16();
    s.external = Ipv4Addr{r.u32()};
    s.remote = Ipv4Addr{r.u32()};
    s.remote_port = r.u16();
    r.bytes(s.inside_mac.bytes);
    s.idle_ms = r.u32();
    s.mapping_ms = r.u32();
    s.block_head = r.u16();
    s.block_granules = r.u16();
    s.block_age_ms = r.u32();
    // An ICMP echo session has no remote port; every other endpoint has an address and a port.
    const bool ports_ok = s.proto == Protocol::icmp
                              ? s.remote_port == 0
                              : s.inside_port != 0 && s.remote_port != 0 && s.external_port != 0;
    if (!ports_ok || s.inside.value() == 0 || s.external.value() == 0 || s.remote.value() == 0) {
        return RecordError::bad_endpoint;
    }
    return s;
}

std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const std::uint8_t b : bytes) {
        h = (h ^ b) * 0x100000001b3ull;
    }
    return h;
}

std::vector<std::uint8_t> encode_state_file(const StateFile& file) {
    std::vector<std::uint8_t> out;
    out.reserve(StateFile::kHeaderSize + file.records.size() * kRecordSize +
                StateFile::kTrailerSize);
    ByteWriter w(out);
    for (const char c : StateFile::kMagic) {
        w.u8(static_cast<std::uint8_t>(c));
    }
    w.u16(StateFile::kVersion);
    w.u16(file.workers);
    w.u64(file.written_unix_ms);
    w.u32(static_cast<std::uint32_t>(file.records.size()));
    w.u32(0);
    for (const RecordBytes& r : file.records) {
        w.bytes(r);
    }
    w.u64(fnv1a64(out));
    return out;
}

std::variant<StateFile, std::string> decode_state_file(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < StateFile::kMagic.size() ||
        !std::equal(StateFile::kMagic.begin(), StateFile::kMagic.end(), bytes.begin(),
                    [](char c, std::uint8_t b) { return static_cast<std::uint8_t>(c) == b; })) {
        return std::string("not an ephemera state file (no EPHSTATE magic)");
    }
    if (bytes.size() < StateFile::kHeaderSize + StateFile::kTrailerSize) {
        return "truncated: " + std::to_string(bytes.size()) + " bytes, shorter than a header";
    }
    ByteReader r(bytes);
    std::array<std::uint8_t, StateFile::kMagic.size()> magic{};
    r.bytes(magic);
    const std::uint16_t version = r.u16();
    if (version != StateFile::kVersion && version != 1) {
        return "version " + std::to_string(version) + ", this ephemera reads versions 1 and " +
               std::to_string(StateFile::kVersion);
    }
    // A version 1 record is the first 36 bytes of today's; the rest (the block) stays zero.
    const std::size_t record_size = version == 1 ? kRecordSizeV1 : kRecordSize;
    StateFile file;
    file.workers = r.u16();
    file.written_unix_ms = r.u64();
    const std::uint32_t count = r.u32();
    (void)r.u32();
    const std::size_t expected =
        StateFile::kHeaderSize + std::size_t{count} * record_size + StateFile::kTrailerSize;
    if (bytes.size() != expected) {
        return "truncated: the header promises " + std::to_string(count) + " records (" +
               std::to_string(expected) + " bytes), the file has " + std::to_string(bytes.size());
    }
    const auto body = bytes.first(bytes.size() - StateFile::kTrailerSize);
    ByteReader trailer(bytes.subspan(body.size()));
    if (trailer.u64() != fnv1a64(body)) {
        return std::string("checksum mismatch: the file was altered or not completely written");
    }
    file.records.assign(count, RecordBytes{});
    for (RecordBytes& record : file.records) {
        r.bytes(std::span(record).first(record_size));
    }
    return file;
}

} // namespace ephemera
