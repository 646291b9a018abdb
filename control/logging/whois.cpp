#include "whois.hpp"

#include "archive_reader.hpp"
#include "event_text.hpp"

#include "ephemera/ownership.hpp"

#include <map>
#include <tuple>

namespace ephemera::logging {
namespace {

// Records of different workers reach the archive in batches, so a file may hold records a
// little older than its name says; a file opened this long after T is read only for the
// records that close what was held at T.
constexpr std::uint64_t kWorkerSkewMs = 60'000;

struct Held {
    NatEvent opened;
    ProofLine open_line;
    std::optional<NatEvent> closed;
    std::optional<ProofLine> close_line;
};

ProofLine proof(const ArchiveRecord& r) {
    return {r.file->name, r.line_no, std::string(r.line)};
}

// A block of worker w of W holds the ports of its span that w owns (docs/allocation.md): the
// ownership function the workers use decides, as for return traffic.
bool in_block(const NatEvent& e, std::uint16_t port) {
    const unsigned step = e.step == 0 ? 1 : e.step;
    if (port < e.first_port || port > e.last_port || (port - e.first_port) % step != 0) {
        return false;
    }
    return e.value <= 1 || Ownership::bucket_of(port) % e.value == e.worker;
}

// Everything held at T, and the records after T that ended it.
class Tracker {
public:
    explicit Tracker(const WhoisQuery& q) : q_(q) {}

    void record(const ArchiveRecord& r) {
        const NatEvent& e = r.event;
        switch (e.kind) {
        case NatEventKind::mapping_created:
        case NatEventKind::mapping_deleted:
            if (e.external == q_.address && e.external_port == q_.port &&
                (!q_.proto || *q_.proto == e.proto)) {
                track(mappings_, e.proto, r, e.kind == NatEventKind::mapping_created);
            }
            break;
        case NatEventKind::block_allocated:
        case NatEventKind::block_interim:
        case NatEventKind::block_released:
            if (e.external == q_.address && in_block(e, q_.port)) {
                track(blocks_, std::tuple{e.inside, e.first_port, e.last_port}, r,
                      e.kind != NatEventKind::block_released, false);
            }
            break;
        case NatEventKind::static_added:
        case NatEventKind::static_removed:
            if (e.external == q_.address &&
                (e.proto == 0 ||
                 (e.external_port == q_.port && (!q_.proto || *q_.proto == e.proto)))) {
                track(statics_, e.proto, r, e.kind == NatEventKind::static_added);
            }
            break;
        case NatEventKind::deterministic_formula:
            if (e.time_ms <= q_.at_ms) {
                formula_ = Held{e, proof(r), {}, {}};
            }
            break;
        default:
            break;
        }
    }

    // True while something held at T has not yet been seen to end.
    [[nodiscard]] bool open() const {
        return unclosed(mappings_) || unclosed(blocks_) || unclosed(statics_);
    }

    WhoisResult result() const {
        WhoisResult out;
        for (const auto& [proto, h] : mappings_) {
            out.answers.push_back(answer(h, HoldKind::mapping));
        }
        for (const auto& [proto, h] : statics_) {
            out.answers.push_back(answer(h, HoldKind::static_mapping));
        }
        for (const auto& [key, h] : blocks_) {
            out.answers.push_back(answer(h, HoldKind::block));
        }
        if (out.answers.empty() && formula_) {
            from_formula(*formula_, out);
        }
        return out;
    }

private:
    // Opens at or before T; ends only strictly before T (a delete at T itself still proves
    // who held it up to then). `replace`: a later opening record supersedes (a new mapping);
    // otherwise the first stays the proof (a block's interims repeat its allocation).
    template <typename Key>
    void track(std::map<Key, Held>& held, const Key& key, const ArchiveRecord& r, bool opening,
               bool replace = true) {
        const NatEvent& e = r.event;
        auto it = held.find(key);
        if (opening) {
            if (e.time_ms <= q_.at_ms && (replace || it == held.end())) {
                held.insert_or_assign(key, Held{e, proof(r), {}, {}});
            }
            return;
        }
        if (it == held.end()) {
            return;
        }
        if (e.time_ms < q_.at_ms) {
            held.erase(it);
        } else if (!it->second.closed) {
            it->second.closed = e;
            it->second.close_line = proof(r);
        }
    }

    template <typename Map>
    static bool unclosed(const Map& m) {
        for (const auto& [key, h] : m) {
            if (!h.closed) {
                return true;
            }
        }
        return false;
    }

    static WhoisAnswer answer(const Held& h, HoldKind how) {
        WhoisAnswer a;
        a.source = "archive";
        a.how = how;
        a.inside = h.opened.inside;
        if (how == HoldKind::mapping || (how == HoldKind::static_mapping && h.opened.proto != 0)) {
            a.inside_port = h.opened.inside_port;
            a.proto = h.opened.proto;
        }
        a.since_ms = h.opened.time_ms;
        a.proof.push_back(h.open_line);
        if (h.closed) {
            a.until_ms = h.closed->time_ms;
            a.proof.push_back(*h.close_line);
        }
        return a;
    }

    void from_formula(const Held& h, WhoisResult& out) const {
        const NatEvent& e = h.opened;
        const std::uint64_t pool_size = std::uint64_t{e.external_last} - e.external + 1;
        const PortRange range{e.first_port, e.last_port};
        const std::string where = h.open_line.file + ":" + std::to_string(h.open_line.line);
        if (e.external_last < e.external || pool_size > 65535 || e.prefix_len > 32 ||
            e.last_port < e.first_port) {
            out.notes.push_back("archive: the det-formula record at " + where + " is malformed");
            return;
        }
        const DeterministicShape shape =
            deterministic_shape(e.prefix_len, static_cast<std::uint32_t>(pool_size), range);
        // The record is recomputed with ephemera's own formula; one whose pool was not a
        // single run of addresses would give other numbers, and is left to --config.
        if (shape.ports_per_subscriber == 0 || shape.ratio != e.value ||
            shape.ports_per_subscriber != e.ports) {
            out.notes.push_back("archive: the det-formula record at " + where +
                                " is not one address run the formula can be recomputed "
                                "from; answer it with --config and that config file");
            return;
        }
        std::vector<Ipv4Addr> pool;
        for (std::uint64_t a = e.external; a <= e.external_last; ++a) {
            pool.emplace_back(static_cast<std::uint32_t>(a));
        }
        const DeterministicMap map(Ipv4Addr{e.inside}, e.prefix_len, std::move(pool), range);
        const ReverseResult r = map.lookup_reverse(Ipv4Addr{q_.address}, q_.port);
        if (!r.subscriber) {
            out.notes.push_back("archive: the formula in force (" + where +
                                ") gives nobody: " + std::string(reverse_miss_text(r.miss)));
            return;
        }
        WhoisAnswer a;
        a.source = "archive";
        a.how = HoldKind::formula;
        a.inside = r.subscriber->value();
        a.since_ms = e.time_ms;
        a.proof.push_back(h.open_line);
        a.note = "computed from the deterministic formula in force since " + rfc3339_ms(e.time_ms);
        out.answers.push_back(std::move(a));
    }

    WhoisQuery q_;
    std::map<std::uint8_t, Held> mappings_;
    std::map<std::tuple<std::uint32_t, std::uint16_t, std::uint16_t>, Held> blocks_;
    std::map<std::uint8_t, Held> statics_;
    std::optional<Held> formula_;
};

std::string_view how_text(HoldKind h) {
    switch (h) {
    case HoldKind::mapping:
        return "mapping";
    case HoldKind::block:
        return "port block";
    case HoldKind::static_mapping:
        return "static mapping";
    case HoldKind::formula:
        return "deterministic formula";
    }
    return "?";
}

} // namespace

std::string WhoisAnswer::text() const {
    std::string out = Ipv4Addr{inside}.to_string();
    if (inside_port) {
        out += ':'; // appended apart: GCC 12's -O3 warns (-Wrestrict) on ":" + std::string
        out += std::to_string(*inside_port);
    }
    out += " (";
    if (proto != 0) {
        out += std::string(protocol_name(proto)) + " ";
    }
    out += std::string(how_text(how)) + ")";
    return out;
}

WhoisResult ArchiveWhois::lookup(const WhoisQuery& q) const {
    Tracker tracker(q);
    WhoisResult out;
    const std::vector<ArchiveFile> files = list_archive_files(directory_);
    if (files.empty()) {
        out.notes.push_back("archive " + directory_ + ": no archive files");
        return out;
    }
    if (files.front().start_ms > q.at_ms + kWorkerSkewMs) {
        out.notes.push_back("archive " + directory_ + ": starts at " +
                            rfc3339_ms(files.front().start_ms) +
                            ", after the time asked: what came before was deleted (retention) "
                            "or never archived");
    }
    for (const ArchiveFile& f : files) {
        if (f.start_ms > q.at_ms + kWorkerSkewMs && !tracker.open()) {
            break;
        }
        std::string error;
        for_each_record_in(
            f,
            [&](const ArchiveRecord& r) {
                tracker.record(r);
                return true;
            },
            error);
        if (!error.empty()) {
            out.notes.push_back("archive: " + error);
        }
    }
    WhoisResult found = tracker.result();
    found.notes.insert(found.notes.begin(), out.notes.begin(), out.notes.end());
    if (found.answers.empty()) {
        found.notes.push_back("archive " + directory_ + ": no record of " +
                              Ipv4Addr{q.address}.to_string() + ":" + std::to_string(q.port) +
                              " held at " + rfc3339_ms(q.at_ms));
    }
    return found;
}

WhoisResult FormulaWhois::lookup(const WhoisQuery& q) const {
    WhoisResult out;
    const ReverseResult r = map_.lookup_reverse(Ipv4Addr{q.address}, q.port);
    if (!r.subscriber) {
        out.notes.push_back("formula of " + origin_ +
                            ": nobody: " + std::string(reverse_miss_text(r.miss)));
        return out;
    }
    WhoisAnswer a;
    a.source = "formula";
    a.how = HoldKind::formula;
    a.inside = r.subscriber->value();
    a.note = "computed from the deterministic formula of " + origin_ +
             ", assuming it was in force at " + rfc3339_ms(q.at_ms);
    out.answers.push_back(std::move(a));
    return out;
}

WhoisResult whois(const WhoisQuery& q, std::span<const WhoisSource* const> sources) {
    WhoisResult out;
    for (const WhoisSource* s : sources) {
        WhoisResult r = s->lookup(q);
        out.notes.insert(out.notes.end(), r.notes.begin(), r.notes.end());
        if (!r.answers.empty()) {
            out.answers = std::move(r.answers);
            break;
        }
    }
    return out;
}

} // namespace ephemera::logging
