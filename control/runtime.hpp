// Changes to the running configuration: validated by the same parser as a config file,
// refused whole when anything is wrong, and otherwise published to the workers at once with
// rte_rcu_qsbr: each worker latches the new config between two bursts, and the old one is
// freed only after every worker has reported a quiescent state since the publication.
// Telemetry commands (ephemeractl) and SIGHUP both come through here.
#pragma once

#include "ephemera/config.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ephemera {

struct App;

struct ChangeResult {
    bool ok = false;
    std::string message;
};

class Runtime {
public:
    explicit Runtime(App& app);

    ChangeResult set(std::string_view key, std::string_view value);
    ChangeResult pool_add(std::string_view address);
    ChangeResult pool_remove(std::string_view address);
    // A static mapping as the command line spells it (parse_static_spec): "tcp A:P I:P" or
    // "A I" is added; "tcp A:P" or "A" names the one removed.
    ChangeResult static_add(std::string_view spec);
    ChangeResult static_remove(std::string_view spec);
    // Rereads the config file the process was started with (SIGHUP).
    ChangeResult reload();
    // A drained box's addresses, taken over by a hand-over (control/ha/handover.hpp): its pool,
    // quiet while the sessions come in, then `answered` with its inside gateway. Kept through
    // every later change.
    ChangeResult adopt(const std::vector<Ipv4Addr>& pool, bool answered,
                       std::optional<Ipv4Addr> gateway);
    // Subscribers moved to a peer (`ephemeractl migrate`): held, then moved, or (`remove`)
    // back here after a failed move. Kept through every later change.
    ChangeResult move_subscribers(const Config::SubscriberMove& move, bool remove);

    // A copy of the running config, consistent with what the workers translate with.
    [[nodiscard]] Config current() const;

private:
    ChangeResult publish(std::variant<Config, ConfigError> next, std::string what,
                         bool keep_adoption = true);
    ChangeResult static_change(std::string_view spec, bool add);

    App& app_;
    mutable std::mutex lock_;
    Config current_;
};

} // namespace ephemera
