// The per-port choice of checksum offloads (tx_checksum.hpp): pure, so that it is tested with
// every capability a NIC may report, which no virtual port here does.
#include "ephemera/tx_checksum.hpp"

#include <array>
#include <vector>

namespace ephemera {

namespace {

struct Offload {
    TxChecksums::Bit bit;
    std::uint64_t capa;
    std::string_view name;  // as in TxChecksums::names()
    std::string_view label; // in the reasons
};
constexpr std::array<Offload, 3> kOffloads = {{
    {TxChecksums::ipv4, tx_offload_capa::ipv4_cksum, "ipv4", "IPv4"},
    {TxChecksums::udp, tx_offload_capa::udp_cksum, "udp", "UDP"},
    {TxChecksums::tcp, tx_offload_capa::tcp_cksum, "tcp", "TCP"},
}};

// "IPv4", "IPv4 or UDP", "IPv4, UDP or TCP".
std::string either(const std::vector<std::string_view>& labels) {
    std::string out;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) {
            out += i + 1 == labels.size() ? " or " : ", ";
        }
        out += labels[i];
    }
    return out;
}

} // namespace

std::string TxChecksums::names() const {
    std::string out;
    for (const Offload& o : kOffloads) {
        if (has(o.bit)) {
            out += out.empty() ? "" : " ";
            out += o.name;
        }
    }
    return out.empty() ? std::string("none") : out;
}

std::string TxChecksumChoice::describe() const {
    return why_not.empty() ? enabled.names() : enabled.names() + " (" + why_not + ")";
}

TxChecksumChoice choose_tx_checksums(std::uint64_t capa, ChecksumOffloadSetting setting,
                                     std::string_view driver) {
    TxChecksumChoice choice;
    if (setting == ChecksumOffloadSetting::off) {
        choice.why_not = "checksum_offload is off";
        return choice;
    }
    std::vector<std::string_view> not_offered;
    bool held_back = false; // allowed by the port, not by the setting
    for (const Offload& o : kOffloads) {
        if (setting == ChecksumOffloadSetting::ipv4 && o.bit != TxChecksums::ipv4) {
            held_back = held_back || (capa & o.capa) != 0;
            continue;
        }
        if ((capa & o.capa) != 0) {
            choice.enabled = choice.enabled.with(o.bit);
        } else {
            not_offered.push_back(o.label);
        }
    }
    if (!not_offered.empty()) {
        choice.why_not =
            std::string(driver) + " offers no " + either(not_offered) + " checksum offload";
    }
    if (held_back) {
        choice.why_not += choice.why_not.empty() ? "" : "; ";
        choice.why_not += "checksum_offload is ipv4";
    }
    return choice;
}

} // namespace ephemera
