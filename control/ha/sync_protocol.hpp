// The HA sync link's messages (docs/ha.md, "The sync protocol"). One TCP connection from the
// standby to the active carries length-prefixed frames, big-endian:
//   u32 length of what follows, u8 type, body
//   hello      magic "EPHA", u16 version, u8 role, u16 workers, u64 active since (Unix ms, 0 for
//              a standby), u16 n, n bytes of pairing terms
//   refuse     u16 n, n bytes: why the pairing is refused (the connection closes after it)
//   records    u64 sequence of the first record, u16 count, count x 36-byte session records
//   ack        u64 the next sequence the standby expects (every record before it is applied)
//   bulk_done  u32 generation: every session the active had when the standby came is sent
//   heartbeat  u64 the sender's Unix time in ms
//   handover_done  u64 records applied, u64 records refused: a drained box's sessions are in
//              (the hand-over between scale-out boxes, handover.hpp)
// Sequences count records from 0 on each connection; a gap is a broken stream, which the
// standby answers by closing the connection: the next one starts with a bulk round.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/session_state.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ephemera::ha {

enum class MessageType : std::uint8_t {
    hello = 1,
    refuse = 2,
    records = 3,
    ack = 4,
    bulk_done = 5,
    heartbeat = 6,
    handover_done = 7,
};

inline constexpr std::uint32_t kMagic = 0x45504841; // "EPHA"
inline constexpr std::uint16_t kVersion = 2;        // 2: session records carry their port block
inline constexpr std::size_t kMaxFrame = 1 << 20;
inline constexpr std::size_t kMaxRecordsPerFrame = 1024;

struct Hello {
    HaRole role = HaRole::none;
    std::uint16_t workers = 0;
    std::string terms; // pairing_terms(): what both boxes must agree on
    // When an active box became active: if two boxes find each other active (the sync link
    // was cut, or one was frozen), the one active since earlier steps down, since the other
    // announced the addresses last and has the traffic.
    std::uint64_t active_since_ms = 0;
};
struct Refuse {
    std::string reason;
};
struct Records {
    std::uint64_t first_sequence = 0;
    std::vector<RecordBytes> records;
};
struct Ack {
    std::uint64_t next_sequence = 0;
};
struct BulkDone {
    std::uint32_t generation = 0;
};
struct Heartbeat {
    std::uint64_t unix_ms = 0;
};
struct HandoverDone {
    std::uint64_t applied = 0;
    std::uint64_t refused = 0;
};
using Message = std::variant<Hello, Refuse, Records, Ack, BulkDone, Heartbeat, HandoverDone>;

// Appends the frame of `m` to `out`.
void append_frame(const Message& m, std::vector<std::uint8_t>& out);

// Splits a byte stream into messages, whatever the reads' boundaries.
class FrameReader {
public:
    void feed(std::span<const std::uint8_t> bytes);
    // The next whole message, nullopt when more bytes are needed. After a malformed frame
    // error() says why and nothing more is returned.
    std::optional<Message> next();
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] std::size_t buffered() const { return buffer_.size() - read_; }

private:
    std::vector<std::uint8_t> buffer_;
    std::size_t read_ = 0;
    std::string error_;
};

// What two boxes of a pair must agree on, one "key=value" line each, in a fixed order: the
// pool, the port range and reservations, the allocation mode and its settings, the static
// mappings and the worker count. The same external address:port must be owned by the same
// worker on both, or a synced session would sit where no packet looks for it.
std::string pairing_terms(const Config& config, std::uint16_t workers);
// The first term that differs, as "KEY: here V1, peer V2"; empty when they agree.
std::string first_difference(const std::string& ours, const std::string& theirs);

// What a box draining into another offers and must agree on (handover.hpp): the lines both
// must share (port range and reservations, allocation mode, worker count: the same worker must
// own the same port and subscriber on both), then "offer." lines naming what the receiver
// takes over: the drained box's pool and inside gateway.
std::string handover_terms(const Config& config, std::uint16_t workers);
// The lines of `terms` that do not start with "offer.", in order.
std::string agreed_part(const std::string& terms);
// The value of line "KEY=value" in `terms`, empty when there is none.
std::string term_value(const std::string& terms, std::string_view key);

} // namespace ephemera::ha
