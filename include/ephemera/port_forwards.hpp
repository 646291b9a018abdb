// The external ports of mappings whose subscribers moved to a peer box (`ephemeractl migrate`,
// docs/ha.md "Moving live subscribers"). The peer carries the sessions on with this box's
// address and port, but the routers still send the replies here: the pool address is shared
// with the subscribers that stayed. So each such port stays held on this box (out of the
// allocator's reach) and a reply to it is passed, unchanged but for its Ethernet header, to the
// peer's MAC on the outside segment, until the port has seen nothing for the timeout its
// session had. Owned by the worker that owns the port, like the port itself; looked up only
// for a packet that found no mapping, so the translation path never pays for it.
#pragma once

#include "ephemera/flat_table.hpp"
#include "ephemera/types.hpp"

#include <cstdint>
#include <optional>

namespace ephemera {

class PortForwards {
public:
    struct Forward {
        Tick last_seen;
        Tick timeout;
        std::uint8_t move; // index in Config::moved_subscribers: whose MAC to pass to
        std::uint8_t reserved_[7];
    };

    PortForwards(std::uint32_t capacity, int socket) : table_(capacity, socket) {}

    // Holds the port for the move; false when the table is full (the port is then released
    // as any other, and its replies are lost).
    bool add(std::uint16_t pool_index, Protocol proto, std::uint16_t port, std::uint8_t move,
             Tick now, Tick timeout) {
        const std::int32_t pos = table_.add(key_of(pool_index, proto, port));
        if (pos < 0) {
            return false;
        }
        table_.value(static_cast<std::uint32_t>(pos)) = Forward{now, timeout, move, {}};
        return true;
    }

    // The move a reply to this port goes to, its idle time restarted; nullopt: not forwarded.
    std::optional<std::uint8_t> find(std::uint16_t pool_index, Protocol proto, std::uint16_t port,
                                     Tick now) {
        if (table_.size() == 0) {
            return std::nullopt;
        }
        const std::int32_t pos = table_.lookup(key_of(pool_index, proto, port));
        if (pos < 0) {
            return std::nullopt;
        }
        Forward& f = table_.value(static_cast<std::uint32_t>(pos));
        f.last_seen = now;
        return f.move;
    }

    // One bounded step of the walk that ends idle forwards: `release(pool_index, proto, port)`
    // for each; true when the walk is complete (the cursor starts again at 0).
    template <typename Release>
    bool expire_step(Tick now, std::uint32_t& cursor, std::uint32_t budget, Release&& release) {
        for (std::uint32_t seen = 0; seen < budget; ++seen) {
            const std::int32_t pos = table_.next(cursor);
            if (pos < 0) {
                cursor = 0;
                return true;
            }
            const auto at = static_cast<std::uint32_t>(pos);
            const Forward& f = table_.value(at);
            if (static_cast<std::int32_t>(now - (f.last_seen + f.timeout)) >= 0) {
                const std::uint64_t key = table_.key(at);
                table_.remove_at(at);
                release(static_cast<std::uint16_t>(key >> 32),
                        static_cast<Protocol>(key >> 16 & 0xff), static_cast<std::uint16_t>(key));
            }
        }
        return false;
    }

    [[nodiscard]] std::uint32_t size() const { return table_.size(); }

private:
    // Never all zero: the protocol number is never 0.
    static std::uint64_t key_of(std::uint16_t pool_index, Protocol proto, std::uint16_t port) {
        return std::uint64_t{pool_index} << 32 |
               std::uint64_t{static_cast<std::uint8_t>(proto)} << 16 | port;
    }

    FlatTable<std::uint64_t, Forward> table_;
};

} // namespace ephemera
