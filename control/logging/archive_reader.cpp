#include "archive_reader.hpp"

#include "archive_format.hpp"

#include <optional>

namespace ephemera::logging {
namespace {

// Calls `line` for each line of `text` with its number and whether a '\n' ended it.
template <typename F>
void each_line(std::string_view text, F line) {
    std::size_t no = 0;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        ++no;
        if (nl == std::string_view::npos) {
            line(text, no, false);
            return;
        }
        line(text.substr(0, nl), no, true);
        text.remove_prefix(nl + 1);
    }
}

class Verifier {
public:
    Verifier(VerifyReport& report, std::span<const std::uint8_t> key)
        : report_(report), key_(key) {}

    void file(const ArchiveFile& f, std::string_view text) {
        file_ = &f;
        block_.clear();
        block_records_ = 0;
        block_first_ = 0;
        last_seq_ = 0;
        header_seen_ = false;
        each_line(text, [this](std::string_view line, std::size_t no, bool whole) {
            this->line(line, no, whole);
        });
        if (!header_seen_) {
            add(1, 1, 0, BreakReason::unparseable_line, "no archive header: empty or cut file");
        }
        if (block_records_ > 0 || partial_) {
            add(block_first_, last_no_, 0, BreakReason::unsealed_tail,
                std::to_string(block_records_) + (block_records_ == 1 ? " record" : " records") +
                    " after the last seal: not protected by the chain (a crash, or "
                    "the writer is still running)");
        }
        partial_ = false;
        first_ = false;
        previous_seq_ = f.file_seq;
    }

    // `f` could not be read: what follows it cannot be tied to what came before.
    void unreadable(const ArchiveFile& f, const std::string& why) {
        note(f, why);
        chain_known_ = false;
        first_ = false;
        previous_seq_ = f.file_seq;
    }

    void note(const ArchiveFile& f, const std::string& why) {
        report_.breaks.push_back({f.name, 0, 0, 0, BreakReason::unreadable_file, why});
    }

private:
    void add(std::size_t line, std::size_t last, std::uint64_t seq, BreakReason r,
             std::string detail) {
        report_.breaks.push_back({file_->name, line, last, seq, r, std::move(detail)});
    }

    void line(std::string_view line, std::size_t no, bool whole) {
        last_no_ = no;
        if (no == 1) {
            header(line);
            return;
        }
        if (!whole) {
            partial_ = true; // a line cut short can only be the unsealed end of a file
            if (block_first_ == 0) {
                block_first_ = no;
            }
            return;
        }
        if (is_seal_line(line)) {
            seal(line, no);
            return;
        }
        if (block_first_ == 0) {
            block_first_ = no;
        }
        ++report_.records;
        ++block_records_;
        block_.append(line);
        block_ += '\n';
        if (is_header_line(line) || !parse_record(line)) {
            add(no, no, 0, BreakReason::unparseable_line, "not a record, seal or header");
        }
    }

    void header(std::string_view line) {
        header_seen_ = true;
        const auto h = parse_header(line);
        if (!h) {
            add(1, 1, 0, BreakReason::unparseable_line, "not an archive header");
            return;
        }
        if (h->file_seq != file_->file_seq) {
            add(1, 1, 0, BreakReason::unparseable_line,
                "header says file-seq " + std::to_string(h->file_seq) + ", the name " +
                    std::to_string(file_->file_seq));
        }
        if (first_) {
            report_.first_file_seq = file_->file_seq;
            if (file_->file_seq <= 1 && h->prev != kZeroDigest) {
                add(1, 1, 0, BreakReason::prev_mismatch,
                    "the first file of a chain must start from zeros");
            }
        } else if (file_->file_seq != previous_seq_ + 1) {
            add(1, 1, 0, BreakReason::missing_file,
                "chain gap: file-seq " + std::to_string(previous_seq_ + 1) +
                    (file_->file_seq > previous_seq_ + 2
                         ? ".." + std::to_string(file_->file_seq - 1)
                         : std::string{}) +
                    " missing before this file");
        } else if (chain_known_ && h->prev != chain_) {
            add(1, 1, 0, BreakReason::prev_mismatch,
                "header prev is not the last seal of the file before: blocks at its end were "
                "removed, or the file replaced");
        }
        chain_ = h->prev;
        chain_known_ = true;
    }

    void seal(std::string_view line, std::size_t no) {
        const std::size_t first = block_first_ == 0 ? no : block_first_;
        const auto s = parse_seal(line);
        if (!s) {
            add(no, no, 0, BreakReason::unparseable_line, "malformed seal");
            return; // its records stay pending: the next seal's checks cover them
        }
        ++report_.blocks;
        if (s->prev != chain_ || s->seq != last_seq_ + 1) {
            add(first, no, s->seq, BreakReason::prev_mismatch,
                "block " + std::to_string(s->seq) + " does not follow block " +
                    std::to_string(last_seq_) + ": a block before it was removed or moved");
        }
        BlockHasher hasher(s->prev, key_);
        hasher.add(block_);
        const std::string lines = "lines " + std::to_string(first) + "-" + std::to_string(no);
        if (s->records != block_records_) {
            add(first, no, s->seq, BreakReason::hash_mismatch,
                "seal counts " + std::to_string(s->records) + " records, the block has " +
                    std::to_string(block_records_) + " (" + lines + "): records removed or added");
        } else if (hasher.finish_sha256() != s->sha256) {
            add(first, no, s->seq, BreakReason::hash_mismatch,
                "a record of " + lines + " was edited or records were reordered");
        } else if (!key_.empty()) {
            const auto mac = hasher.finish_hmac();
            if (!s->hmac || !mac || *s->hmac != *mac) {
                add(first, no, s->seq, BreakReason::hmac_mismatch,
                    s->hmac ? "hmac does not match the key (" + lines + ")"
                            : "seal has no hmac (" + lines + ")");
            }
        }
        chain_ = s->sha256; // the claimed hash: one edit is one break, not every block after
        last_seq_ = s->seq;
        block_.clear();
        block_records_ = 0;
        block_first_ = 0;
    }

    VerifyReport& report_;
    std::span<const std::uint8_t> key_;
    const ArchiveFile* file_ = nullptr;
    Digest chain_{};
    bool chain_known_ = false;
    bool first_ = true;
    bool header_seen_ = false;
    bool partial_ = false;
    std::uint64_t previous_seq_ = 0;
    std::uint64_t last_seq_ = 0;
    std::string block_;
    std::uint64_t block_records_ = 0;
    std::size_t block_first_ = 0;
    std::size_t last_no_ = 0;
};

} // namespace

std::string_view break_reason_text(BreakReason r) {
    switch (r) {
    case BreakReason::hash_mismatch:
        return "hash mismatch";
    case BreakReason::prev_mismatch:
        return "prev mismatch";
    case BreakReason::missing_file:
        return "missing file";
    case BreakReason::hmac_mismatch:
        return "hmac mismatch";
    case BreakReason::unsealed_tail:
        return "unsealed tail";
    case BreakReason::unparseable_line:
        return "unparseable line";
    case BreakReason::unreadable_file:
        return "unreadable file";
    }
    return "?";
}

bool VerifyReport::intact() const {
    for (const ArchiveBreak& b : breaks) {
        if (b.reason != BreakReason::unsealed_tail) {
            return false;
        }
    }
    return true;
}

VerifyReport verify_archive(const std::string& dir, std::span<const std::uint8_t> key) {
    VerifyReport report;
    report.hmac_checked = !key.empty();
    Verifier verifier(report, key);
    const std::vector<ArchiveFile> files = list_archive_files(dir);
    for (const ArchiveFile& f : files) {
        ++report.files;
        std::string error;
        const auto text = read_archive_text(f, error);
        if (!text) {
            verifier.unreadable(f, error);
            continue;
        }
        if (!error.empty()) {
            verifier.note(f, error);
        }
        verifier.file(f, *text);
    }
    return report;
}

bool for_each_record_in(const ArchiveFile& file,
                        const std::function<bool(const ArchiveRecord&)>& each, std::string& error) {
    const auto text = read_archive_text(file, error);
    if (!text) {
        return true;
    }
    bool more = true;
    each_line(*text, [&](std::string_view line, std::size_t no, bool whole) {
        if (!more || !whole || no == 1 || line.starts_with('#')) {
            return;
        }
        if (const auto e = parse_record(line)) {
            more = each(ArchiveRecord{*e, line, &file, no});
        }
    });
    return more;
}

std::vector<std::string> for_each_record(const std::string& dir,
                                         const std::function<bool(const ArchiveRecord&)>& each) {
    std::vector<std::string> errors;
    for (const ArchiveFile& f : list_archive_files(dir)) {
        std::string error;
        const bool more = for_each_record_in(f, each, error);
        if (!error.empty()) {
            errors.push_back(error);
        }
        if (!more) {
            break;
        }
    }
    return errors;
}

} // namespace ephemera::logging
