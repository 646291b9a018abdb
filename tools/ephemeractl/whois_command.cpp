#include "whois_command.hpp"

#include "det.hpp"

#include "logging/event_text.hpp"
#include "logging/whois.hpp"

#include <memory>

namespace ephemeractl {

using namespace ephemera::logging;

namespace {

std::optional<std::uint8_t> protocol_number(const std::string& name) {
    if (name == "udp") {
        return 17;
    }
    if (name == "tcp") {
        return 6;
    }
    if (name == "icmp") {
        return 1;
    }
    return std::nullopt;
}

std::string answer_text(const WhoisAnswer& a) {
    std::string out = "  " + a.text() + ", from the " + a.source;
    if (a.since_ms != 0) {
        out += ": held since " + rfc3339_ms(a.since_ms);
    }
    if (a.until_ms) {
        out += " until " + rfc3339_ms(*a.until_ms);
    } else if (a.since_ms != 0 && a.how != HoldKind::formula) {
        out += ", its end not (yet) in the archive";
    }
    out += "\n";
    if (!a.note.empty()) {
        out += "    " + a.note + "\n";
    }
    for (const ProofLine& p : a.proof) {
        out += "    " + p.file + ":" + std::to_string(p.line) + ": " + p.text + "\n";
    }
    return out;
}

} // namespace

std::string check_time(std::string_view text) {
    return parse_rfc3339_ms(text) ? std::string{}
                                  : "want UTC RFC 3339 time, such as 2026-12-05T10:00:00Z";
}

Outcome run_whois(const WhoisCommand& command) {
    if (command.archive.empty() && command.config_file.empty()) {
        return {kExitUsage, "", "ephemeractl: whois: give --archive DIR, --config FILE, or both\n"};
    }
    WhoisQuery q;
    const std::size_t colon = command.endpoint.rfind(':');
    q.address = ephemera::Ipv4Addr::parse(command.endpoint.substr(0, colon))->value();
    q.port = static_cast<std::uint16_t>(std::stoul(command.endpoint.substr(colon + 1)));
    q.at_ms = *parse_rfc3339_ms(command.at);
    if (!command.proto.empty()) {
        q.proto = protocol_number(command.proto);
    }

    // In the order they are asked; the live table, when added, goes first.
    std::vector<std::unique_ptr<WhoisSource>> sources;
    std::vector<std::string> notes;
    if (!command.archive.empty()) {
        sources.push_back(std::make_unique<ArchiveWhois>(command.archive));
    }
    if (!command.config_file.empty()) {
        auto config = ephemera::load_config_file(command.config_file);
        if (const auto* e = std::get_if<ephemera::ConfigError>(&config)) {
            return {kExitNoReply, "", "ephemeractl: config refused: " + e->to_string() + "\n"};
        }
        auto map = det_map_from_config(std::get<ephemera::Config>(config));
        if (auto* why = std::get_if<std::string>(&map)) {
            notes.push_back(command.config_file + ": " + *why);
        } else {
            sources.push_back(std::make_unique<FormulaWhois>(
                std::move(std::get<ephemera::DeterministicMap>(map)), command.config_file));
        }
    }
    std::vector<const WhoisSource*> order;
    for (const auto& s : sources) {
        order.push_back(s.get());
    }
    const WhoisResult r = whois(q, order);
    notes.insert(notes.end(), r.notes.begin(), r.notes.end());

    const std::string asked = command.endpoint +
                              (command.proto.empty() ? "" : " " + command.proto) + " at " +
                              rfc3339_ms(q.at_ms);
    std::string err;
    for (const std::string& n : notes) {
        err += "ephemeractl: whois: " + n + "\n";
    }
    if (r.answers.empty()) {
        return {kExitRefused, "", err + "ephemeractl: whois: nobody held " + asked + "\n"};
    }
    std::string out = asked + ":\n";
    for (const WhoisAnswer& a : r.answers) {
        out += answer_text(a);
    }
    return {kExitOk, out, err};
}

} // namespace ephemeractl
