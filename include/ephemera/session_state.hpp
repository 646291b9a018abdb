// A session's state as it leaves one process and enters another (docs/ha.md): what a restart
// saves at stop and restores at start, and what the HA sync stream will carry. A record holds
// everything the receiving worker needs to rebuild the session, its mapping and its subscriber
// with the same external address:port, so that the far side sees no change.
//
// On the wire (and in the state file) every record is kRecordSize bytes, big-endian, with a
// type byte first: fixed-size records need no framing to be skipped or counted, and a reader
// that does not know a type passes over it.
//
// The state file is a header, the records, and an FNV-1a 64 of everything before it:
//   "EPHSTATE"  version u16  workers u16  written_unix_ms u64  records u32  reserved u32
// A file that is cut short or altered is refused whole: half a state is worse than none,
// because the missing mappings' ports would be handed to other subscribers.
#pragma once

#include "ephemera/types.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ephemera {

struct SessionState {
    Protocol proto = Protocol::udp;
    std::uint8_t tcp_flags = 0;     // Session::flags: where the TCP state machine stands
    std::uint8_t mapping_flags = 0; // Mapping::flags (kMappingStatic)
    Ipv4Addr inside;
    std::uint16_t inside_port = 0; // ICMP: the echo identifier
    Ipv4Addr external;
    std::uint16_t external_port = 0;
    Ipv4Addr remote;
    std::uint16_t remote_port = 0;
    MacAddr inside_mac;           // where the mapping's replies go on the inside
    std::uint32_t idle_ms = 0;    // since the session's last refreshing packet
    std::uint32_t mapping_ms = 0; // since its mapping was made
    // Blocks mode (port_blocks.hpp): the block that holds external_port, by its first granule
    // and size on the worker that owns it, and how long ago it was given. block_granules 0:
    // the port is in no block (dynamic, deterministic, a static entry).
    std::uint16_t block_head = 0;
    std::uint16_t block_granules = 0;
    std::uint32_t block_age_ms = 0;
    bool operator==(const SessionState&) const = default;
};

// `session`: the session as it stands (a restart's state file holds only these); the HA
// stream also sends `session_removed` when one ends.
enum class RecordType : std::uint8_t { session = 1, session_removed = 2 };

// Version 2 of the record carries the port block (the last 8 bytes); version 1 files, whose
// records are 36 bytes, are still read (their sessions hold no block).
inline constexpr std::size_t kRecordSize = 44;
inline constexpr std::size_t kRecordSizeV1 = 36;
using RecordBytes = std::array<std::uint8_t, kRecordSize>;

RecordBytes encode(const SessionState& s, RecordType type = RecordType::session);
inline RecordType record_type(std::span<const std::uint8_t, kRecordSize> bytes) {
    return static_cast<RecordType>(bytes[0]);
}
// Why a record was not taken.
enum class RecordError : std::uint8_t { unknown_type, bad_protocol, bad_endpoint };
std::string_view record_error_name(RecordError e);
std::variant<SessionState, RecordError> decode_session(std::span<const std::uint8_t, kRecordSize>);

// What became of one record offered to a worker (Translator::restore).
enum class RestoreResult : std::uint8_t {
    restored,
    duplicate,        // the session is there already (a record sent twice)
    expired,          // its timeout passed while it was away
    not_in_pool,      // its external address is not in this config's pool (or no static entry)
    not_owned,        // another worker owns its subscriber or its port (a worker count change)
    port_unavailable, // its port is outside this config's range, reserved, or taken
    conflict,         // its subscriber or mapping is here with another external address:port
    table_full,       // limits.max_sessions or max_subscribers
    unsupported_mode, // a blocks-mode pool, and the record names no block (a version 1 file)
    count_
};
inline constexpr std::size_t kRestoreResultCount = static_cast<std::size_t>(RestoreResult::count_);
inline constexpr std::array<std::string_view, kRestoreResultCount> kRestoreResultNames = {
    "restored",         "duplicate", "expired",    "not_in_pool",     "not_owned",
    "port_unavailable", "conflict",  "table_full", "unsupported_mode"};

inline constexpr std::uint32_t ticks_of_ms(std::uint32_t ms) {
    return static_cast<std::uint32_t>(std::uint64_t{ms} * kTicksPerSecond / 1000);
}
inline constexpr std::uint32_t ms_of_ticks(std::uint32_t ticks) {
    return static_cast<std::uint32_t>(std::uint64_t{ticks} * 1000 / kTicksPerSecond);
}

struct StateFile {
    static constexpr std::array<char, 8> kMagic = {'E', 'P', 'H', 'S', 'T', 'A', 'T', 'E'};
    static constexpr std::uint16_t kVersion = 2; // 1: records without the block
    static constexpr std::size_t kHeaderSize = 28;
    static constexpr std::size_t kTrailerSize = 8;

    std::uint16_t workers = 0;         // of the process that wrote it (ownership may differ)
    std::uint64_t written_unix_ms = 0; // the restore ages every session by the time since
    std::vector<RecordBytes> records;  // each decoded on its own: one bad record is skipped
};

std::vector<std::uint8_t> encode_state_file(const StateFile& file);
// The file, or why it is refused ("truncated: ...", "not an ephemera state file", ...).
std::variant<StateFile, std::string> decode_state_file(std::span<const std::uint8_t> bytes);

std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes);

} // namespace ephemera
