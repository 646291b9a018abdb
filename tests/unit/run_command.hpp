// A shell command's standard output, for tests that ask an outside tool (tshark, ephemeractl)
// what it makes of our bytes.
#pragma once

#include <cstdio>
#include <string>

namespace ephemera::test {

inline std::string run_command(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (p == nullptr) {
        return out;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    pclose(p);
    return out;
}

} // namespace ephemera::test
