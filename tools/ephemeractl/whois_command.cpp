#include "whois_command.hpp"

#include "det.hpp"

#include "logging/event_text.hpp"
#include "logging/whois.hpp"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>
#include <vector>

namespace ephemeractl {

using namespace ephemera::logging;

namespace {

std::optional<std::uint8_t> protocol_number(std::string_view name) {
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

std::uint64_t unix_ms_now() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
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

// ADDR:PORT as (address in host order, port).
std::optional<std::pair<std::uint32_t, std::uint16_t>> endpoint_of(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || !check_endpoint(text).empty()) {
        return std::nullopt;
    }
    const auto address = ephemera::Ipv4Addr::parse(text.substr(0, colon));
    if (!address) {
        return std::nullopt;
    }
    return std::pair{address->value(),
                     static_cast<std::uint16_t>(std::stoul(std::string(text.substr(colon + 1))))};
}

// When process `pid` started, from /proc (its stat's start time in clock ticks after boot,
// and the boot time); nothing when /proc does not say.
std::optional<std::uint64_t> process_start_ms(long pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) {
        return std::nullopt;
    }
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    const std::size_t close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 1));
    std::string field;
    unsigned long long start_ticks = 0;
    for (int n = 3; n <= 22 && fields >> field; ++n) {
        if (n == 22) {
            start_ticks = std::stoull(field);
        }
    }
    std::ifstream proc_stat("/proc/stat");
    std::string key;
    unsigned long long boot = 0;
    while (proc_stat >> key) {
        if (key == "btime") {
            proc_stat >> boot;
            break;
        }
        proc_stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (boot == 0 || start_ticks == 0 || hz <= 0) {
        return std::nullopt;
    }
    return boot * 1000 + start_ticks * 1000 / static_cast<unsigned long long>(hz);
}

// The running ephemera's sessions on the endpoint (/ephemera/sessions external=A:P).
class LiveWhois final : public WhoisSource {
public:
    // `at_now`: the time asked is "now", which for the live table is when it answered.
    LiveWhois(TelemetryClient& client, std::string endpoint, bool at_now)
        : client_(client), endpoint_(std::move(endpoint)), at_now_(at_now) {}

    [[nodiscard]] WhoisResult lookup(const WhoisQuery& q) const override {
        const Request request{"/ephemera/sessions",
                              "external=" + endpoint_ + ";limit=" + std::to_string(kLimit)};
        try {
            const Json reply = client_.query(request);
            const std::uint64_t now_ms = unix_ms_now();
            WhoisQuery asked = q;
            if (at_now_) {
                asked.at_ms = now_ms;
            }
            return live_whois_answer(reply, asked, now_ms);
        } catch (const TelemetryError& e) {
            return {{}, {std::string("live table: ") + e.what()}};
        }
    }

private:
    static constexpr unsigned kLimit = 64;
    TelemetryClient& client_;
    std::string endpoint_;
    bool at_now_;
};

} // namespace

std::optional<LiveSession> parse_session_line(std::string_view line) {
    std::istringstream in{std::string(line)};
    std::vector<std::string> words;
    for (std::string w; in >> w;) {
        words.push_back(w);
    }
    if (words.size() < 8 || words[2] != "as" || words[4] != "<->" ||
        !words[6].starts_with("idle=") || !words[6].ends_with("s") ||
        !words.back().starts_with("worker=")) {
        return std::nullopt;
    }
    LiveSession s;
    const auto proto = protocol_number(words[0]);
    const auto inside = endpoint_of(words[1]);
    const auto external = endpoint_of(words[3]);
    const std::string idle = words[6].substr(5, words[6].size() - 6);
    const std::string worker = words.back().substr(7);
    const auto digits = [](const std::string& t) {
        return !t.empty() && t.size() < 10 &&
               t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!proto || !inside || !external || !digits(idle) || !digits(worker)) {
        return std::nullopt;
    }
    s.proto = *proto;
    std::tie(s.inside, s.inside_port) = *inside;
    std::tie(s.external, s.external_port) = *external;
    s.idle_s = std::stoul(idle);
    s.worker = static_cast<unsigned>(std::stoul(worker));
    return s;
}

// A session idle for N seconds had a packet less than N+1 seconds ago: its mapping held the
// endpoint from then until the reply, and the last whole second before that is the earliest
// time the live table proves.
WhoisResult live_whois_answer(const Json& reply, const WhoisQuery& q, std::uint64_t now_ms) {
    WhoisResult out;
    const std::string endpoint =
        ephemera::Ipv4Addr{q.address}.to_string() + ":" + std::to_string(q.port);
    if (reply.is_null() || !reply.is_array()) {
        out.notes.push_back("live table: /ephemera/sessions gave no list" +
                            (reply.is_object() && reply.contains("message")
                                 ? ": " + reply.value("message", std::string{})
                                 : std::string{}));
        return out;
    }
    struct Held {
        LiveSession newest; // the least idle of its sessions
        std::vector<ProofLine> proof;
    };
    std::map<std::tuple<std::uint8_t, std::uint32_t, std::uint16_t>, Held> held;
    std::size_t line_no = 0;
    for (const Json& entry : reply) {
        ++line_no;
        if (!entry.is_string()) {
            continue;
        }
        const std::string line = entry.get<std::string>();
        const auto s = parse_session_line(line);
        if (!s) {
            out.notes.push_back("live table: cannot read session line " + line);
            continue;
        }
        if (s->external != q.address || s->external_port != q.port ||
            (q.proto && *q.proto != s->proto)) {
            continue;
        }
        auto [it, fresh] = held.try_emplace({s->proto, s->inside, s->inside_port}, Held{*s, {}});
        if (!fresh && s->idle_s < it->second.newest.idle_s) {
            it->second.newest = *s;
        }
        it->second.proof.push_back({"/ephemera/sessions", line_no, line});
    }
    if (held.empty()) {
        out.notes.push_back("live table: nobody holds " + endpoint + " now");
        return out;
    }
    for (const auto& [key, h] : held) {
        const std::uint64_t idle_ms = std::uint64_t{h.newest.idle_s} * 1000;
        const std::uint64_t used_ms = now_ms > idle_ms ? now_ms - idle_ms : 0;
        WhoisAnswer a;
        a.source = "live table";
        a.how = HoldKind::mapping;
        a.inside = h.newest.inside;
        a.inside_port = h.newest.inside_port;
        a.proto = h.newest.proto;
        if (q.at_ms < used_ms || q.at_ms > now_ms) {
            out.notes.push_back("live table: " + a.text() + " holds " + endpoint +
                                " now and was in use at " + rfc3339_ms(used_ms) +
                                ": it does not say who held it at " + rfc3339_ms(q.at_ms));
            continue;
        }
        a.note = "in use at " + rfc3339_ms(used_ms) +
                 " (its sessions' last packet, to the second) and held at " + rfc3339_ms(now_ms) +
                 ", worker " + std::to_string(h.newest.worker);
        a.proof = h.proof;
        out.answers.push_back(std::move(a));
    }
    return out;
}

std::string check_time(std::string_view text) {
    return text == "now" || parse_rfc3339_ms(text)
               ? std::string{}
               : "want UTC RFC 3339 time, such as 2026-12-05T10:00:00Z, or now";
}

Outcome run_whois(const WhoisCommand& command, const std::string& socket_path) {
    WhoisQuery q;
    const auto endpoint = endpoint_of(command.endpoint);
    if (!endpoint) {
        return {kExitUsage, "", "ephemeractl: whois: want ADDR:PORT\n"};
    }
    std::tie(q.address, q.port) = *endpoint;
    q.at_ms = command.at == "now" ? unix_ms_now() : *parse_rfc3339_ms(command.at);
    if (!command.proto.empty()) {
        q.proto = protocol_number(command.proto);
    }

    // In the order they are asked: the live table, the archive, the formula.
    std::vector<std::unique_ptr<WhoisSource>> sources;
    std::vector<std::string> notes;
    std::unique_ptr<TelemetryClient> client;
    Json running; // /ephemera/config, when ephemera answers
    try {
        client = std::make_unique<TelemetryClient>(socket_path, kSocketTimeout);
    } catch (const TelemetryError& e) {
        notes.push_back(std::string("the live table was not asked: ") + e.what());
    }
    if (client) {
        try {
            running = client->query(config_request());
        } catch (const TelemetryError& e) {
            notes.push_back(std::string("the running config was not read: ") + e.what());
        }
        const Json& greeting = client->greeting();
        const auto start = greeting.contains("pid") && greeting["pid"].is_number_integer()
                               ? process_start_ms(greeting["pid"].get<long>())
                               : std::nullopt;
        if (start && q.at_ms < *start) {
            notes.push_back("the live table was not asked: ephemera started at " +
                            rfc3339_ms(*start) + ", after " + rfc3339_ms(q.at_ms));
        } else {
            sources.push_back(
                std::make_unique<LiveWhois>(*client, command.endpoint, command.at == "now"));
        }
    }
    const auto running_text = [&](const char* key) {
        return running.is_object() && running.contains(key) && running[key].is_string()
                   ? running[key].get<std::string>()
                   : std::string{};
    };
    std::string archive = command.archive;
    if (archive.empty()) {
        archive = running_text("logging_archive");
        if (archive == "none") {
            archive.clear();
        }
        if (!archive.empty()) {
            notes.push_back("archive " + archive + ": the running config's logging.archive.path");
        }
    }
    if (!archive.empty()) {
        sources.push_back(std::make_unique<ArchiveWhois>(archive));
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
    } else if (running_text("pool_mode") == "deterministic") {
        auto map = det_map_from_reply(running);
        if (auto* why = std::get_if<std::string>(&map)) {
            notes.push_back("the running config: " + *why);
        } else {
            sources.push_back(std::make_unique<FormulaWhois>(
                std::move(std::get<ephemera::DeterministicMap>(map)), "the running config"));
        }
    }
    const auto noted = [&notes] {
        std::string err;
        for (const std::string& n : notes) {
            err += "ephemeractl: whois: " + n + "\n";
        }
        return err;
    };
    if (sources.empty()) {
        return {kExitUsage, "",
                noted() + "ephemeractl: whois: no source: give --archive DIR or --config FILE, "
                          "or run it where ephemera runs (--prefix, --socket)\n"};
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
    const std::string err = noted();
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
