// ephemeractl whois ADDR:PORT --at TIME: which subscriber held a public address and port at a
// given time, answered offline from the sources given, in order: the archive (--archive DIR),
// then the deterministic formula of a config file (--config FILE). The answer comes with the
// archived records that prove it.
#pragma once

#include "commands.hpp"

#include <string>

namespace ephemeractl {

struct WhoisCommand {
    std::string endpoint; // ADDR:PORT, checked by the command line
    std::string at;       // RFC 3339 UTC, as given
    std::string proto;    // "", "udp", "tcp" or "icmp"
    std::string archive;  // empty: not consulted
    std::string config_file;
};

// "": fine; else why TIME is not one --at takes.
std::string check_time(std::string_view text);

// Exit 0: answered; 1: nobody held it (or no source could say); 2: the config file refused;
// 64: no source given.
Outcome run_whois(const WhoisCommand& command);

} // namespace ephemeractl
