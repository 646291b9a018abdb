// ephemeractl log verify DIR: checks the hash chain of a NAT event archive (written by
// ephemera's archive sink) without the running ephemera; names each break by file and line.
#pragma once

#include "commands.hpp"

#include <string>

namespace ephemeractl {

struct LogVerifyCommand {
    std::string directory;
    std::string key_file; // empty: hmacs are not checked
};

// Exit 0: intact (unsealed tails are listed, not failures); 1: a break, or no archive there;
// 2: the key file cannot be read.
Outcome log_verify(const LogVerifyCommand& command);

} // namespace ephemeractl
