#include "log_verify.hpp"

#include "logging/archive_format.hpp"
#include "logging/archive_reader.hpp"

namespace ephemeractl {

using namespace ephemera::logging;

namespace {

std::string where(const ArchiveBreak& b) {
    std::string text = b.file;
    if (b.line != 0) {
        text += ':'; // apart: GCC 12's -O3 warns (-Wrestrict) on ":" + std::string
        text += std::to_string(b.line);
    }
    text += ": " + std::string(break_reason_text(b.reason));
    if (b.block_seq != 0) {
        text += " (block " + std::to_string(b.block_seq) + ")";
    }
    return text + ": " + b.detail + "\n";
}

} // namespace

Outcome log_verify(const LogVerifyCommand& command) {
    std::vector<std::uint8_t> key;
    if (!command.key_file.empty()) {
        auto k = read_key_file(command.key_file);
        if (!k) {
            return {kExitNoReply, "",
                    "ephemeractl: log verify: key file " + command.key_file +
                        ": unreadable or empty\n"};
        }
        key = std::move(*k);
    }
    const VerifyReport r = verify_archive(command.directory, key);
    const std::string head = "archive " + command.directory;
    if (r.files == 0) {
        return {kExitRefused, "", "ephemeractl: log verify: " + head + ": no archive files\n"};
    }
    std::string out = head + ": " + std::to_string(r.files) + " files, " +
                      std::to_string(r.records) + " records, " + std::to_string(r.blocks) +
                      " blocks: ";
    std::size_t broken = 0;
    for (const ArchiveBreak& b : r.breaks) {
        broken += b.reason == BreakReason::unsealed_tail ? 0 : 1;
    }
    out += broken == 0 ? "chain intact\n"
                       : "chain broken in " + std::to_string(broken) + " place" +
                             (broken == 1 ? "" : "s") + "\n";
    for (const ArchiveBreak& b : r.breaks) {
        out += "  " + where(b);
    }
    if (r.first_file_seq > 1) {
        out += "  the chain starts at file-seq " + std::to_string(r.first_file_seq) +
               ": earlier files were deleted (retention)\n";
    }
    if (!r.hmac_checked) {
        out += "  hmacs not checked (no --key-file): whoever can write the files can recompute "
               "the hashes\n";
    }
    return {broken == 0 ? kExitOk : kExitRefused, out, ""};
}

} // namespace ephemeractl
