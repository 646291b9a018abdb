// "Who held 198.18.0.10:51234 at 10:00?": the answer to an abuse report, and the records that
// prove it. Sources are tried in order and the first that knows gives the answer: the live
// table (a source the daemon's side provides), the archive, the deterministic formula of a
// config file.
#pragma once

#include "ephemera/deterministic.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ephemera::logging {

struct WhoisQuery {
    std::uint32_t address = 0; // host byte order
    std::uint16_t port = 0;
    std::optional<std::uint8_t> proto; // nullopt: any
    std::uint64_t at_ms = 0;           // Unix time in milliseconds
};

// One archived line, where it is.
struct ProofLine {
    std::string file;
    std::size_t line = 0;
    std::string text;
};

enum class HoldKind : std::uint8_t { mapping, block, static_mapping, formula };

struct WhoisAnswer {
    std::string source; // "archive", "formula", later "live"
    HoldKind how = HoldKind::mapping;
    std::uint32_t inside = 0; // the subscriber
    std::optional<std::uint16_t> inside_port;
    std::uint8_t proto = 0;                // 0: every protocol (a block, 1:1, the formula)
    std::uint64_t since_ms = 0;            // the record that opened it; 0: not known
    std::optional<std::uint64_t> until_ms; // the record that closed it, after T
    std::vector<ProofLine> proof;          // opening record, then the closing one if any
    std::string note;                      // what the answer rests on, when not plain records

    // "100.64.0.10:40000 (udp mapping)".
    [[nodiscard]] std::string text() const;
};

struct WhoisResult {
    std::vector<WhoisAnswer> answers; // more than one: e.g. udp and tcp both held the port
    std::vector<std::string> notes;   // why a source had no answer, files it could not read
};

class WhoisSource {
public:
    virtual ~WhoisSource() = default;
    [[nodiscard]] virtual WhoisResult lookup(const WhoisQuery& q) const = 0;
};

// From the archive's records: a mapping-create for the endpoint at or before T with no
// mapping-delete before T; a port block on the address whose ports hold the port (block-alloc
// or block-interim, no block-release before T); a static mapping in force; else the det-formula
// record in force at T.
class ArchiveWhois final : public WhoisSource {
public:
    explicit ArchiveWhois(std::string directory) : directory_(std::move(directory)) {}
    [[nodiscard]] WhoisResult lookup(const WhoisQuery& q) const override;

private:
    std::string directory_;
};

// From a deterministic map (a config file's): the formula needs no records, but says nothing
// of whether it was in force at T; `origin` names the config it came from.
class FormulaWhois final : public WhoisSource {
public:
    FormulaWhois(DeterministicMap map, std::string origin)
        : map_(std::move(map)), origin_(std::move(origin)) {}
    [[nodiscard]] WhoisResult lookup(const WhoisQuery& q) const override;

private:
    DeterministicMap map_;
    std::string origin_;
};

// The first source with an answer; the notes of every source tried.
WhoisResult whois(const WhoisQuery& q, std::span<const WhoisSource* const> sources);

} // namespace ephemera::logging
