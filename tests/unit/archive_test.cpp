// The local archive (control/logging/archive_*.hpp) and whois: its line format, the writer's
// blocks, files, rotation and retention under a test clock, the chain check against each kind
// of tampering, and who held an address:port at a given time.
#include "logging/archive_files.hpp"
#include "logging/archive_format.hpp"
#include "logging/archive_reader.hpp"
#include "logging/archive_writer.hpp"
#include "logging/event_text.hpp"
#include "logging/whois.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/resource.h>
#include <sys/wait.h>

namespace ephemera::logging {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kT0 = 1796464800000ULL; // 2026-12-05T10:00:00Z
constexpr std::uint64_t kMinute = 60'000;

const std::uint32_t kSubscriber = Ipv4Addr(100, 64, 0, 10).value();
const std::uint32_t kPoolAddress = Ipv4Addr(198, 18, 0, 10).value();

NatEvent mapping(NatEventKind kind, std::uint64_t t, std::uint16_t outside_port,
                 std::uint32_t inside = kSubscriber, std::uint16_t inside_port = 40000,
                 std::uint8_t proto = 17) {
    NatEvent e;
    e.time_ms = t;
    e.kind = kind;
    e.proto = proto;
    e.inside = inside;
    e.inside_port = inside_port;
    e.external = kPoolAddress;
    e.external_port = outside_port;
    return e;
}

NatEvent created(std::uint64_t t, std::uint16_t port) {
    return mapping(NatEventKind::mapping_created, t, port);
}

// Differs when any field does.
std::string all_fields(const NatEvent& e) {
    std::ostringstream s;
    s << e.time_ms << ' ' << int(e.kind) << ' ' << int(e.proto) << ' ' << e.worker << ' '
      << e.inside << ' ' << e.inside_port << ' ' << e.external_port << ' ' << e.external << ' '
      << e.external_last << ' ' << e.remote << ' ' << e.remote_port << ' ' << e.first_port << ' '
      << e.last_port << ' ' << e.step << ' ' << e.ports << ' ' << int(e.quota) << ' '
      << int(e.threshold) << ' ' << e.value << ' ' << int(e.prefix_len) << ' ' << int(e.flags);
    return s.str();
}

// One event of every kind, with every field its kind prints set to something not default.
std::vector<NatEvent> one_of_each_kind() {
    std::vector<NatEvent> out;
    NatEvent m = mapping(NatEventKind::mapping_created, kT0 + 123, 51234);
    m.worker = 3;
    m.remote = Ipv4Addr(198, 18, 1, 2).value();
    m.remote_port = 53;
    m.flags = NatEvent::kStaticMapping;
    out.push_back(m);
    NatEvent d = mapping(NatEventKind::mapping_deleted, kT0 + 999, 7, kSubscriber, 9, 6);
    out.push_back(d);
    for (auto kind : {NatEventKind::block_allocated, NatEventKind::block_released,
                      NatEventKind::block_interim}) {
        NatEvent b;
        b.time_ms = kT0 + 1;
        b.kind = kind;
        b.worker = 65535;
        b.inside = Ipv4Addr(100, 64, 0, 7).value();
        b.external = kPoolAddress;
        b.first_port = 1024;
        b.last_port = 1535;
        b.step = 2;
        b.ports = 256;
        out.push_back(b);
    }
    NatEvent s = mapping(NatEventKind::static_added, kT0 + 2, 8080, kSubscriber, 80, 6);
    out.push_back(s);
    NatEvent one_to_one;
    one_to_one.kind = NatEventKind::static_removed;
    one_to_one.inside = kSubscriber;
    one_to_one.external = kPoolAddress;
    out.push_back(one_to_one);
    NatEvent f;
    f.kind = NatEventKind::deterministic_formula;
    f.time_ms = kT0;
    f.inside = Ipv4Addr(100, 64, 0, 0).value();
    f.prefix_len = 24;
    f.external = Ipv4Addr(198, 18, 0, 1).value();
    f.external_last = Ipv4Addr(198, 18, 0, 4).value();
    f.first_port = 1024;
    f.last_port = 65535;
    f.ports = 1008;
    f.value = 64;
    out.push_back(f);
    NatEvent x;
    x.kind = NatEventKind::ports_exhausted;
    x.proto = 1;
    x.inside = kSubscriber;
    x.external = kPoolAddress;
    out.push_back(x);
    NatEvent q;
    q.kind = NatEventKind::quota_exceeded;
    q.quota = NatQuota::max_entries_per_user;
    q.proto = 6;
    q.inside = kSubscriber;
    q.value = 2000;
    out.push_back(q);
    NatEvent full = q;
    full.quota = NatQuota::max_sessions;
    full.proto = 0;
    full.inside = 0;
    out.push_back(full);
    NatEvent t;
    t.kind = NatEventKind::threshold_reached;
    t.threshold = NatThreshold::address_port_per_user_high;
    t.external = kPoolAddress;
    t.inside = kSubscriber;
    t.value = 90;
    out.push_back(t);
    return out;
}

TEST(ArchiveFormat, EveryKindRoundTrips) {
    const auto events = one_of_each_kind();
    for (std::size_t k = 0; k < kNatEventKindCount; ++k) {
        bool seen = false;
        for (const NatEvent& e : events) {
            seen = seen || static_cast<std::size_t>(e.kind) == k;
        }
        EXPECT_TRUE(seen) << "no test event of kind " << nat_event_name(NatEventKind(k));
    }
    for (const NatEvent& e : events) {
        const std::string line = format_record(e);
        const auto back = parse_record(line);
        ASSERT_TRUE(back) << line;
        EXPECT_EQ(all_fields(*back), all_fields(e)) << line;
        EXPECT_EQ(format_record(*back), line);
    }
}

TEST(ArchiveFormat, LineIsTimeThenTheSharedFields) {
    NatEvent e = created(kT0 + 123, 51234);
    EXPECT_EQ(format_record(e), "2026-12-05T10:00:00.123Z event=mapping-create worker=0 "
                                "proto=udp inside=100.64.0.10:40000 outside=198.18.0.10:51234");
}

TEST(ArchiveFormat, RefusesWhatIsNotARecord) {
    for (const char* bad :
         {"", "2026-12-05T10:00:00.123Z", "2026-12-05T10:00:00.123Z event=nope worker=0",
          "2026-12-05T10:00:00.123Z event=mapping-create worker=0 proto=udp",
          "2026-12-05T10:00:00.123Z event=mapping-create worker=x proto=udp "
          "inside=100.64.0.10:40000 outside=198.18.0.10:51234",
          "2026-12-05T10:00:00.123Z event=mapping-create worker=0 proto=udp "
          "inside=100.64.0.10:40000 outside=198.18.0.10:70000",
          "yesterday event=mapping-create worker=0"}) {
        EXPECT_FALSE(parse_record(bad)) << bad;
    }
}

TEST(ArchiveFormat, HeaderAndSealRoundTrip) {
    Digest a{};
    a[0] = 0xab;
    a[31] = 0x01;
    const FileHeader h{a, 42};
    const auto hb = parse_header(format_header(h));
    ASSERT_TRUE(hb);
    EXPECT_EQ(hb->prev, a);
    EXPECT_EQ(hb->file_seq, 42U);
    EXPECT_EQ(format_header({kZeroDigest, 1}),
              "#ephemera-archive v1 prev=" + std::string(64, '0') + " file-seq=1");
    Seal s{7, 1024, a, kZeroDigest, a};
    const auto sb = parse_seal(format_seal(s));
    ASSERT_TRUE(sb);
    EXPECT_EQ(format_seal(*sb), format_seal(s));
    s.hmac.reset();
    EXPECT_EQ(format_seal(*parse_seal(format_seal(s))), format_seal(s));
    EXPECT_FALSE(parse_seal("#seal seq=1 records=1 prev=00 sha256=00"));
    EXPECT_FALSE(digest_from_hex(std::string(63, '0') + "G"));
    EXPECT_FALSE(digest_from_hex(std::string(63, '0') + "A")); // one spelling: lower case
}

TEST(ArchiveFormat, FileNamesSortByTimeAndCarryTheSequence) {
    EXPECT_EQ(archive_file_name(kT0 + 999, 42, false), "ephemera-20261205T100000Z-000042.log");
    const auto f = parse_archive_file_name("ephemera-20261205T100000Z-000042.log.zst");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->start_ms, kT0);
    EXPECT_EQ(f->file_seq, 42U);
    EXPECT_TRUE(f->compressed);
    EXPECT_FALSE(parse_archive_file_name("ephemera-20261205T100000Z-.log"));
    EXPECT_FALSE(parse_archive_file_name("notes.txt"));
}

// A fresh directory per test, removed after it.
class Archive : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("ephemera-archive-" +
                std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
        fs::remove_all(dir_);
    }
    void TearDown() override {
        if (!HasFailure()) {
            fs::remove_all(dir_);
        }
    }

    ArchiveOptions options() const {
        ArchiveOptions o;
        o.directory = dir_.string();
        o.block_records = 4;
        o.compress = false;
        return o;
    }

    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const ArchiveFile& f : list_archive_files(dir_.string())) {
            out.push_back(f.name);
        }
        return out;
    }

    std::vector<std::string> lines_of(const std::string& name) const {
        std::ifstream in(dir_ / name);
        std::vector<std::string> out;
        for (std::string line; std::getline(in, line);) {
            out.push_back(line);
        }
        return out;
    }

    void rewrite(const std::string& name, const std::vector<std::string>& lines) const {
        std::ofstream out(dir_ / name, std::ios::trunc);
        for (const std::string& l : lines) {
            out << l << '\n';
        }
    }

    std::vector<NatEvent> records() const {
        std::vector<NatEvent> out;
        for_each_record(dir_.string(), [&](const ArchiveRecord& r) {
            out.push_back(r.event);
            return true;
        });
        return out;
    }

    // Two plain files of 3 blocks of 4 records each (mapping creates on ports 1000...).
    void write_two_files() const {
        ArchiveOptions o = options();
        o.rotate_age_ms = 10 * kMinute;
        ArchiveSink sink(o, kT0);
        for (std::uint16_t i = 0; i < 24; ++i) {
            const std::uint64_t t = kT0 + (i < 12 ? i : 11 * kMinute + i) * 1000;
            const NatEvent e = created(t, static_cast<std::uint16_t>(1000 + i));
            sink.write({&e, 1}, t);
        }
        sink.flush(kT0 + 12 * kMinute);
    }

    // The line of `file` holding outside port `port`.
    std::size_t line_of_port(const std::vector<std::string>& lines, int port) const {
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (lines[i].find(':' + std::to_string(port)) != std::string::npos) {
                return i;
            }
        }
        ADD_FAILURE() << "no line with port " << port;
        return 0;
    }

    fs::path dir_;
};

TEST_F(Archive, WriterSealsAfterBlockRecordsAndAfterThePeriod) {
    ArchiveSink sink(options(), kT0);
    std::vector<NatEvent> batch;
    for (std::uint16_t i = 0; i < 7; ++i) {
        batch.push_back(created(kT0, static_cast<std::uint16_t>(2000 + i)));
    }
    sink.write(batch, kT0);
    ASSERT_EQ(names().size(), 1U);
    auto lines = lines_of(names()[0]);
    ASSERT_EQ(lines.size(), 1U + 4 + 1 + 3);
    EXPECT_TRUE(
        lines[0].starts_with("#ephemera-archive v1 prev=" + std::string(64, '0') + " file-seq=1"));
    EXPECT_TRUE(lines[5].starts_with("#seal seq=1 records=4 prev=" + std::string(64, '0')));
    sink.poll(kT0 + 999);
    EXPECT_EQ(lines_of(names()[0]).size(), 9U) << "sealed before the period";
    sink.poll(kT0 + 1000);
    lines = lines_of(names()[0]);
    ASSERT_EQ(lines.size(), 10U);
    EXPECT_TRUE(lines[9].starts_with("#seal seq=2 records=3 prev=")) << lines[9];
    EXPECT_EQ(sink.stats().records_sent.load(), 7U);
    EXPECT_EQ(sink.stats().messages_sent.load(), 2U);
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_TRUE(r.intact());
    EXPECT_TRUE(r.breaks.empty());
    EXPECT_EQ(r.records, 7U);
    EXPECT_EQ(r.blocks, 2U);
}

TEST_F(Archive, WriterRotatesBySizeAndCompressesClosedFiles) {
    ArchiveOptions o = options();
    o.rotate_bytes = 1000;
    o.compress = true;
    ArchiveSink sink(o, kT0);
    for (std::uint16_t i = 0; i < 40; ++i) {
        const NatEvent e = created(kT0 + i, static_cast<std::uint16_t>(3000 + i));
        sink.write({&e, 1}, kT0 + i);
    }
    sink.flush(kT0 + 100);
    sink.wait_compressed();
    const auto files = list_archive_files(dir_.string());
    ASSERT_GE(files.size(), 3U);
    for (std::size_t i = 0; i + 1 < files.size(); ++i) {
        EXPECT_TRUE(files[i].compressed) << files[i].name;
        EXPECT_EQ(files[i].file_seq, i + 1);
    }
    EXPECT_FALSE(files.back().compressed);
    EXPECT_EQ(files.back().path, sink.current_file());
    const auto all = records();
    ASSERT_EQ(all.size(), 40U);
    for (std::uint16_t i = 0; i < 40; ++i) {
        EXPECT_EQ(all[i].external_port, 3000 + i);
    }
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_TRUE(r.breaks.empty()) << r.breaks[0].detail;
    EXPECT_EQ(r.files, files.size());
}

TEST_F(Archive, WriterRotatesByAgeAndDeletesPastRetention) {
    ArchiveOptions o = options();
    o.rotate_age_ms = 60 * kMinute;
    o.retention_ms = 24 * 60 * kMinute;
    o.compress = true;
    ArchiveSink sink(o, kT0);
    const NatEvent a = created(kT0, 1);
    sink.write({&a, 1}, kT0);
    sink.poll(kT0 + 59 * kMinute);
    EXPECT_EQ(names().size(), 1U);
    sink.poll(kT0 + 60 * kMinute); // a quiet file is closed on time too
    sink.wait_compressed();
    EXPECT_EQ(names(), std::vector<std::string>{"ephemera-20261205T100000Z-000001.log.zst"});
    EXPECT_TRUE(sink.current_file().empty());
    const NatEvent b = created(kT0 + 61 * kMinute, 2);
    sink.write({&b, 1}, b.time_ms);
    const NatEvent c = created(kT0 + 125 * kMinute, 3);
    sink.write({&c, 1}, c.time_ms); // older than an hour: rotated before this record
    sink.wait_compressed();
    EXPECT_EQ(names(), (std::vector<std::string>{"ephemera-20261205T100000Z-000001.log.zst",
                                                 "ephemera-20261205T110100Z-000002.log.zst",
                                                 "ephemera-20261205T120500Z-000003.log"}));
    // File 1 held records until file 2 opened (11:01): it goes a day after that, not before.
    sink.poll(kT0 + (24 * 60 + 60) * kMinute);
    EXPECT_EQ(names().size(), 3U);
    sink.poll(kT0 + (24 * 60 + 62) * kMinute);
    sink.wait_compressed();
    EXPECT_EQ(names(), (std::vector<std::string>{"ephemera-20261205T110100Z-000002.log.zst",
                                                 "ephemera-20261205T120500Z-000003.log.zst"}));
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_TRUE(r.intact());
    EXPECT_EQ(r.first_file_seq, 2U);
}

TEST_F(Archive, WriterContinuesTheChainAfterARestart) {
    {
        ArchiveSink sink(options(), kT0);
        std::vector<NatEvent> batch(6, created(kT0, 4000));
        sink.write(batch, kT0);
        sink.flush(kT0); // seals the last 2 as a second block
    }
    // A crash after more records: an unsealed tail in the file left open; and the remains of
    // a compression cut short.
    {
        std::ofstream tail(dir_ / names()[0], std::ios::app);
        tail << format_record(created(kT0 + 5, 4001)) << '\n';
        std::ofstream(dir_ / (names()[0] + ".zst.tmp")) << "half";
    }
    ArchiveOptions o = options();
    o.compress = true;
    {
        ArchiveSink sink(o, kT0 + kMinute);
        std::vector<NatEvent> batch(5, created(kT0 + kMinute, 4002));
        sink.write(batch, kT0 + kMinute);
        sink.flush(kT0 + kMinute);
        sink.wait_compressed();
    }
    EXPECT_EQ(names(), (std::vector<std::string>{"ephemera-20261205T100000Z-000001.log.zst",
                                                 "ephemera-20261205T100100Z-000002.log"}));
    EXPECT_FALSE(fs::exists(dir_ / "ephemera-20261205T100000Z-000001.log.zst.tmp"));
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::unsealed_tail);
    EXPECT_EQ(r.breaks[0].file, "ephemera-20261205T100000Z-000001.log.zst");
    EXPECT_EQ(r.breaks[0].line, 10U);
    EXPECT_TRUE(r.intact());
    EXPECT_EQ(r.records, 12U);
    EXPECT_EQ(r.blocks, 2U + 2U);
}

TEST_F(Archive, WriterContinuesFromACompressedNewestFile) {
    ArchiveOptions o = options();
    o.compress = true;
    o.rotate_age_ms = kMinute;
    {
        ArchiveSink sink(o, kT0);
        std::vector<NatEvent> batch(5, created(kT0, 4100));
        sink.write(batch, kT0);
        sink.poll(kT0 + kMinute); // sealed, closed, queued for compression: no file open
        ASSERT_TRUE(sink.current_file().empty());
        sink.wait_compressed();
    }
    {
        ArchiveSink sink(o, kT0 + 2 * kMinute);
        const NatEvent e = created(kT0 + 2 * kMinute, 4101);
        sink.write({&e, 1}, e.time_ms);
        sink.flush(e.time_ms);
    }
    EXPECT_EQ(names(), (std::vector<std::string>{"ephemera-20261205T100000Z-000001.log.zst",
                                                 "ephemera-20261205T100200Z-000002.log"}));
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_TRUE(r.breaks.empty());
    EXPECT_EQ(r.records, 6U);
}

TEST_F(Archive, WriterKeepsWritingWhileAClosedFileIsCompressed) {
    ArchiveOptions o = options();
    o.rotate_bytes = 1000;
    o.compress = true;
    ArchiveSink sink(o, kT0);
    // Compression of the first closed file is taken and then held: a write that waited for it
    // would never return.
    sink.hold_compression(true);
    auto write_range = [&](std::uint16_t from, std::uint16_t to) {
        for (std::uint16_t i = from; i < to; ++i) {
            const NatEvent e = created(kT0 + i, static_cast<std::uint16_t>(5000 + i));
            sink.write({&e, 1}, kT0 + i);
        }
    };
    write_range(0, 40);
    sink.wait_compression_held();
    write_range(40, 80); // more rotations while the first file is under way
    sink.flush(kT0 + 100);
    EXPECT_EQ(sink.stats().records_sent.load(), 80U);
    EXPECT_EQ(sink.stats().records_dropped.load(), 0U);
    auto files = list_archive_files(dir_.string());
    ASSERT_GE(files.size(), 5U);
    for (const ArchiveFile& f : files) {
        EXPECT_FALSE(f.compressed) << f.name;
    }
    VerifyReport r = verify_archive(dir_.string()); // plain files read all the same
    EXPECT_TRUE(r.breaks.empty()) << r.breaks[0].detail;
    EXPECT_EQ(r.records, 80U);

    sink.hold_compression(false);
    sink.wait_compressed();
    files = list_archive_files(dir_.string());
    for (std::size_t i = 0; i + 1 < files.size(); ++i) {
        EXPECT_TRUE(files[i].compressed) << files[i].name;
        EXPECT_FALSE(
            fs::exists(dir_ / archive_file_name(files[i].start_ms, files[i].file_seq, false)));
    }
    EXPECT_FALSE(files.back().compressed);
    const auto all = records();
    ASSERT_EQ(all.size(), 80U);
    for (std::uint16_t i = 0; i < 80; ++i) {
        EXPECT_EQ(all[i].external_port, 5000 + i);
    }
    r = verify_archive(dir_.string());
    EXPECT_TRUE(r.breaks.empty()) << r.breaks[0].detail;
    EXPECT_EQ(r.files, files.size());
    EXPECT_EQ(sink.stats().errors.load(), 0U);
}

TEST_F(Archive, WriterLeavesQueuedFilesPlainOnStopAndTheNextStartCompressesThem) {
    ArchiveOptions o = options();
    o.rotate_bytes = 1000;
    o.compress = true;
    {
        ArchiveSink sink(o, kT0);
        sink.hold_compression(true);
        for (std::uint16_t i = 0; i < 40; ++i) {
            const NatEvent e = created(kT0 + i, static_cast<std::uint16_t>(6000 + i));
            sink.write({&e, 1}, kT0 + i);
        }
        sink.wait_compression_held(); // one file under way, the others queued
        sink.flush(kT0 + 100);
    }
    auto files = list_archive_files(dir_.string());
    ASSERT_GE(files.size(), 3U);
    for (const ArchiveFile& f : files) {
        EXPECT_FALSE(f.compressed) << f.name;
    }
    for (const auto& entry : fs::directory_iterator(dir_)) {
        EXPECT_FALSE(entry.path().string().ends_with(".tmp")) << entry.path();
    }
    EXPECT_TRUE(verify_archive(dir_.string()).breaks.empty());
    {
        ArchiveSink sink(o, kT0 + kMinute);
        sink.wait_compressed();
        EXPECT_EQ(sink.stats().errors.load(), 0U);
        EXPECT_TRUE(sink.current_file().empty());
    }
    const auto after = list_archive_files(dir_.string());
    ASSERT_EQ(after.size(), files.size());
    for (const ArchiveFile& f : after) {
        EXPECT_TRUE(f.compressed) << f.name; // the file left open too: it was closed by the stop
    }
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_TRUE(r.breaks.empty()) << r.breaks[0].detail;
    EXPECT_EQ(r.records, 40U);
}

TEST_F(Archive, RetentionLeavesTheFileUnderCompression) {
    ArchiveOptions o = options();
    o.rotate_age_ms = 60 * kMinute;
    o.retention_ms = 24 * 60 * kMinute;
    o.compress = true;
    ArchiveSink sink(o, kT0);
    sink.hold_compression(true);
    const NatEvent a = created(kT0, 1);
    sink.write({&a, 1}, kT0);
    sink.poll(kT0 + 60 * kMinute);
    sink.wait_compression_held(); // file 1 under way
    const NatEvent b = created(kT0 + 61 * kMinute, 2);
    sink.write({&b, 1}, b.time_ms);
    // File 1 is past retention here (file 2 opened at 11:01), but still being compressed.
    sink.poll(kT0 + (24 * 60 + 62) * kMinute);
    EXPECT_EQ(names(), (std::vector<std::string>{"ephemera-20261205T100000Z-000001.log",
                                                 "ephemera-20261205T110100Z-000002.log"}));
    sink.hold_compression(false);
    sink.wait_compressed();
    EXPECT_EQ(names(), (std::vector<std::string>{"ephemera-20261205T100000Z-000001.log.zst",
                                                 "ephemera-20261205T110100Z-000002.log.zst"}));
    sink.poll(kT0 + (24 * 60 + 63) * kMinute); // the next pass deletes it, compressed
    EXPECT_EQ(names(), std::vector<std::string>{"ephemera-20261205T110100Z-000002.log.zst"});
    EXPECT_EQ(sink.stats().errors.load(), 0U);
}

TEST_F(Archive, CompressFileStreamsOneStandardFrame) {
    fs::create_directories(dir_);
    const fs::path plain = dir_ / "ephemera-20261205T100000Z-000001.log";
    std::string text;
    for (std::uint32_t i = 0; text.size() < (5U << 20) / 2; ++i) { // several 1 MiB reads
        text += format_record(created(kT0 + i, static_cast<std::uint16_t>(i))) + '\n';
    }
    std::ofstream(plain, std::ios::binary) << text;
    std::string error;
    ASSERT_TRUE(compress_file(plain.string(), plain.string() + ".zst", error)) << error;
    EXPECT_FALSE(fs::exists(plain.string() + ".zst.tmp"));
    const auto f = parse_archive_file_name(plain.filename().string() + ".zst");
    ASSERT_TRUE(f);
    ArchiveFile packed = *f;
    packed.path = plain.string() + ".zst";
    const auto back = read_archive_text(packed, error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, text);
    if (std::system("zstd --version >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "no zstd command to check the frame with";
    }
    const fs::path out = dir_ / "by-zstd";
    ASSERT_EQ(std::system(("zstd -q -d -c " + packed.path + " > " + out.string()).c_str()), 0);
    std::ifstream in(out, std::ios::binary);
    const std::string by_zstd{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_EQ(by_zstd, text);
}

TEST_F(Archive, AFileListedPlainAndCompressedSinceIsReadFromItsZst) {
    write_two_files();
    const ArchiveFile listed = list_archive_files(dir_.string()).front();
    ASSERT_FALSE(listed.compressed);
    std::string error;
    const auto before = read_archive_text(listed, error);
    ASSERT_TRUE(before) << error;
    ASSERT_TRUE(compress_file(listed.path, listed.path + ".zst", error)) << error;
    fs::remove(listed.path); // as the compressor does, between a reader's listing and its read
    const auto after = read_archive_text(listed, error);
    ASSERT_TRUE(after) << error;
    EXPECT_EQ(*after, *before);
}

TEST_F(Archive, VerifyPassesAnIntactArchiveWithItsKey) {
    ArchiveOptions o = options();
    o.hmac_key = {'s', 'e', 'c', 'r', 'e', 't'};
    o.compress = true;
    o.rotate_bytes = 1500;
    {
        ArchiveSink sink(o, kT0);
        for (std::uint16_t i = 0; i < 30; ++i) {
            const NatEvent e = created(kT0 + i, i);
            sink.write({&e, 1}, kT0 + i);
        }
        sink.flush(kT0 + 100);
    }
    const VerifyReport r = verify_archive(dir_.string(), o.hmac_key);
    EXPECT_TRUE(r.breaks.empty());
    EXPECT_TRUE(r.hmac_checked);
    EXPECT_GE(r.files, 2U);
    EXPECT_EQ(r.records, 30U);
    const std::vector<std::uint8_t> wrong = {'s', 'e', 'c', 'r', 'e', 'T'};
    const VerifyReport w = verify_archive(dir_.string(), wrong);
    EXPECT_FALSE(w.intact());
    ASSERT_FALSE(w.breaks.empty());
    EXPECT_EQ(w.breaks[0].reason, BreakReason::hmac_mismatch);
    EXPECT_EQ(w.breaks.size(), w.blocks) << "every seal fails with the wrong key";
}

TEST_F(Archive, VerifyFailsOnAnEditedRecord) {
    write_two_files();
    ASSERT_TRUE(verify_archive(dir_.string()).breaks.empty());
    const std::string file = names()[1];
    auto lines = lines_of(file);
    const std::size_t at = line_of_port(lines, 1017);
    lines[at].replace(lines[at].find("1017"), 4, "1071");
    rewrite(file, lines);
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_FALSE(r.intact());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::hash_mismatch);
    EXPECT_EQ(r.breaks[0].file, file);
    EXPECT_LE(r.breaks[0].line, at + 1);
    EXPECT_GE(r.breaks[0].last_line, at + 1);
    EXPECT_EQ(r.breaks[0].block_seq, 2U);
}

TEST_F(Archive, VerifyFailsOnARemovedRecord) {
    write_two_files();
    const std::string file = names()[0];
    auto lines = lines_of(file);
    const std::size_t at = line_of_port(lines, 1002);
    lines.erase(lines.begin() + static_cast<long>(at));
    rewrite(file, lines);
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::hash_mismatch);
    EXPECT_EQ(r.breaks[0].file, file);
    EXPECT_EQ(r.breaks[0].line, 2U);
    EXPECT_EQ(r.breaks[0].block_seq, 1U);
}

TEST_F(Archive, VerifyFailsOnSwappedRecords) {
    write_two_files();
    const std::string file = names()[0];
    auto lines = lines_of(file);
    std::swap(lines[line_of_port(lines, 1005)], lines[line_of_port(lines, 1006)]);
    rewrite(file, lines);
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::hash_mismatch);
    EXPECT_EQ(r.breaks[0].block_seq, 2U);
}

TEST_F(Archive, VerifyFailsOnARemovedBlock) {
    write_two_files();
    const std::string file = names()[0];
    auto lines = lines_of(file);
    ASSERT_EQ(lines.size(), 1U + 3 * 5);
    lines.erase(lines.begin() + 6, lines.begin() + 11); // block 2: 4 records and its seal
    rewrite(file, lines);
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::prev_mismatch);
    EXPECT_EQ(r.breaks[0].file, file);
    EXPECT_EQ(r.breaks[0].line, 7U);
    EXPECT_EQ(r.breaks[0].block_seq, 3U);
}

TEST_F(Archive, VerifyFailsOnARemovedMiddleFile) {
    write_two_files();
    {
        // A third file, so that the second is in the middle.
        ArchiveSink sink(options(), kT0 + 30 * kMinute);
        const NatEvent e = created(kT0 + 30 * kMinute, 5000);
        sink.write({&e, 1}, e.time_ms);
        sink.flush(e.time_ms);
    }
    ASSERT_EQ(names().size(), 3U);
    ASSERT_TRUE(verify_archive(dir_.string()).breaks.empty());
    const std::string third = names()[2];
    fs::remove(dir_ / names()[1]);
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::missing_file);
    EXPECT_EQ(r.breaks[0].file, third);
    EXPECT_EQ(r.breaks[0].line, 1U);
}

TEST_F(Archive, VerifyFailsOnTheLastBlockOfAFileRemoved) {
    write_two_files();
    const std::string file = names()[0];
    auto lines = lines_of(file);
    lines.resize(lines.size() - 5); // block 3: 4 records and its seal
    rewrite(file, lines);
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::prev_mismatch);
    EXPECT_EQ(r.breaks[0].file, names()[1]);
    EXPECT_EQ(r.breaks[0].line, 1U);
}

TEST_F(Archive, WriterDropsWhatTheDiskRefusesAndKeepsTheChain) {
    ArchiveOptions o = options();
    o.block_records = 100;
    ArchiveSink sink(o, kT0);
    // Files may not grow past 1500 bytes: a batch that would is refused part way.
    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 1500;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::uint16_t port = 0;
    for (std::uint64_t t = kT0; t < kT0 + 20; ++t) {
        std::vector<NatEvent> batch;
        for (int i = 0; i < 3; ++i) {
            batch.push_back(created(t, ++port));
        }
        sink.write(batch, t);
    }
    sink.flush(kT0 + 20);
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    const SinkStats& st = sink.stats();
    EXPECT_GT(st.records_dropped.load(), 0U);
    EXPECT_GT(st.errors.load(), 0U);
    EXPECT_EQ(st.records_sent.load() + st.records_dropped.load(), 60U);
    EXPECT_GE(names().size(), 2U) << "a failed write moves to a new file";
    const VerifyReport r = verify_archive(dir_.string());
    EXPECT_TRUE(r.intact()) << r.breaks[0].detail;
    EXPECT_EQ(r.records, st.records_sent.load()) << "what was counted written is on disk, whole";
}

TEST_F(Archive, VerifyCallsACutTailUnsealedNotTampering) {
    write_two_files();
    const std::string file = names()[1];
    auto lines = lines_of(file);
    lines.pop_back(); // the last seal
    rewrite(file, lines);
    {
        std::ofstream out(dir_ / file, std::ios::app);
        out << "2026-12-05T10:1"; // and half a line
    }
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 1U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::unsealed_tail);
    EXPECT_TRUE(r.intact());
}

TEST_F(Archive, VerifyNamesAnUnparseableLine) {
    write_two_files();
    const std::string file = names()[0];
    auto lines = lines_of(file);
    lines.insert(lines.begin() + 3, "garbage");
    rewrite(file, lines);
    const VerifyReport r = verify_archive(dir_.string());
    ASSERT_EQ(r.breaks.size(), 2U);
    EXPECT_EQ(r.breaks[0].reason, BreakReason::unparseable_line);
    EXPECT_EQ(r.breaks[0].line, 4U);
    EXPECT_EQ(r.breaks[1].reason, BreakReason::hash_mismatch);
}

class Whois : public Archive {
protected:
    void SetUp() override {
        Archive::SetUp();
        ArchiveOptions o = options();
        o.compress = true;
        o.rotate_age_ms = 2 * kMinute;
        ArchiveSink sink(o, kT0 - kMinute);
        auto at = [&](NatEvent e) {
            sink.write({&e, 1}, e.time_ms);
            sink.poll(e.time_ms);
        };
        at(created(kT0 - 30'000, 51234)); // someone else, before: deleted before T0
        at(mapping(NatEventKind::mapping_deleted, kT0 - 20'000, 51234));
        NatEvent other = created(kT0, 51234);
        other.inside = Ipv4Addr(100, 64, 0, 99).value();
        other.proto = 6; // the same port for tcp: another subscriber
        at(other);
        at(mapping(NatEventKind::mapping_created, kT0, 51234, kSubscriber, 40000));
        NatEvent block;
        block.kind = NatEventKind::block_allocated;
        block.time_ms = kT0 + 1000;
        block.inside = Ipv4Addr(100, 64, 0, 7).value();
        block.external = kPoolAddress;
        block.first_port = 1024;
        block.last_port = 1535;
        block.step = 2;
        block.ports = 256;
        at(block);
        for (std::uint64_t t = kT0 + 10'000; t < kT0 + 3 * kMinute; t += 10'000) {
            at(created(t, static_cast<std::uint16_t>(t / 1000 % 60000))); // other traffic
        }
        at(mapping(NatEventKind::mapping_deleted, kT0 + 3 * kMinute, 51234, kSubscriber, 40000));
        block.kind = NatEventKind::block_released;
        block.time_ms = kT0 + 4 * kMinute;
        at(block);
        sink.flush(kT0 + 10 * kMinute);
        sink.wait_compressed(); // EphemeractlLogVerifyAndWhois edits a compressed file
    }

    WhoisResult ask(std::uint16_t port, std::uint64_t t, std::optional<std::uint8_t> proto) {
        const ArchiveWhois archive(dir_.string());
        const WhoisSource* sources[] = {&archive};
        return whois({kPoolAddress, port, proto, t}, sources);
    }
};

TEST_F(Whois, FindsAMappingThatExpiredMinutesEarlierWithItsProof) {
    ASSERT_GE(names().size(), 2U) << "the records span files";
    const WhoisResult r = ask(51234, kT0 + kMinute, 17);
    ASSERT_EQ(r.answers.size(), 1U);
    const WhoisAnswer& a = r.answers[0];
    EXPECT_EQ(a.text(), "100.64.0.10:40000 (udp mapping)");
    EXPECT_EQ(a.source, "archive");
    EXPECT_EQ(a.since_ms, kT0);
    EXPECT_EQ(a.until_ms, kT0 + 3 * kMinute);
    ASSERT_EQ(a.proof.size(), 2U);
    EXPECT_EQ(a.proof[0].text, format_record(created(kT0, 51234)));
    EXPECT_EQ(a.proof[1].text,
              format_record(mapping(NatEventKind::mapping_deleted, kT0 + 3 * kMinute, 51234)));
    EXPECT_NE(a.proof[0].file, a.proof[1].file);
    EXPECT_GT(a.proof[0].line, 1U);

    // Without a protocol: both the udp and the tcp holder.
    EXPECT_EQ(ask(51234, kT0 + kMinute, std::nullopt).answers.size(), 2U);
}

TEST_F(Whois, FindsNobodyAfterTheMappingEnded) {
    const WhoisResult r = ask(51234, kT0 + 5 * kMinute, 17);
    EXPECT_TRUE(r.answers.empty());
    ASSERT_FALSE(r.notes.empty());
    EXPECT_NE(r.notes.back().find("no record of 198.18.0.10:51234"), std::string::npos);
    EXPECT_TRUE(ask(51234, kT0 - 25'000, 6).answers.empty()); // before the tcp one
    const WhoisResult before = ask(51234, kT0 - 10 * kMinute, 17);
    EXPECT_TRUE(before.answers.empty());
    ASSERT_FALSE(before.notes.empty());
    EXPECT_NE(before.notes[0].find("starts at 2026-12-05T09:59:30.000Z, after the time asked"),
              std::string::npos)
        << before.notes[0];
    EXPECT_EQ(ask(51234, kT0 - 25'000, 17).answers.size(), 1U); // the earlier udp one
}

TEST_F(Whois, FindsTheSubscriberOfAPortBlock) {
    const WhoisResult r = ask(1030, kT0 + kMinute, 17);
    ASSERT_EQ(r.answers.size(), 1U);
    EXPECT_EQ(r.answers[0].text(), "100.64.0.7 (port block)");
    EXPECT_EQ(r.answers[0].proof.size(), 2U); // allocation, and the release after T
    EXPECT_TRUE(ask(1031, kT0 + kMinute, 17).answers.empty()) << "not on the block's step";
    EXPECT_TRUE(ask(1536, kT0 + kMinute, 17).answers.empty());
    EXPECT_TRUE(ask(1030, kT0 + 5 * kMinute, 17).answers.empty()) << "released";
}

TEST_F(Archive, WhoisComputesFromADetFormulaRecordAndFindsStaticMappings) {
    {
        ArchiveSink sink(options(), kT0);
        std::vector<NatEvent> events = one_of_each_kind(); // the det-formula: 100.64.0.0/24
        for (NatEvent& e : events) {
            e.time_ms = kT0;
        }
        NatEvent forward = mapping(NatEventKind::static_added, kT0, 8080, kSubscriber, 80, 6);
        forward.external = Ipv4Addr(198, 18, 0, 20).value();
        events.push_back(forward);
        NatEvent whole;
        whole.kind = NatEventKind::static_added;
        whole.time_ms = kT0;
        whole.inside = Ipv4Addr(100, 64, 0, 30).value();
        whole.external = Ipv4Addr(198, 18, 0, 30).value();
        events.push_back(whole);
        sink.write(events, kT0);
        sink.flush(kT0);
    }
    const ArchiveWhois archive(dir_.string());
    const WhoisSource* sources[] = {&archive};
    const std::uint64_t t = kT0 + kMinute;
    // Subscriber 67 of the /24: pool address 67 / 64 = the second, ports 1024 + 3 * 1008 on.
    WhoisResult r = whois({Ipv4Addr(198, 18, 0, 2).value(), 1024 + 3 * 1008 + 5, 6, t}, sources);
    ASSERT_EQ(r.answers.size(), 1U);
    EXPECT_EQ(r.answers[0].text(), "100.64.0.67 (deterministic formula)");
    ASSERT_EQ(r.answers[0].proof.size(), 1U);
    EXPECT_NE(r.answers[0].proof[0].text.find("event=det-formula"), std::string::npos);
    r = whois({Ipv4Addr(198, 18, 0, 20).value(), 8080, 6, t}, sources);
    ASSERT_EQ(r.answers.size(), 1U);
    EXPECT_EQ(r.answers[0].text(), "100.64.0.10:80 (tcp static mapping)");
    EXPECT_TRUE(whois({Ipv4Addr(198, 18, 0, 20).value(), 8080, 17, t}, sources).answers.empty());
    r = whois({Ipv4Addr(198, 18, 0, 30).value(), 443, std::nullopt, t}, sources);
    ASSERT_EQ(r.answers.size(), 1U);
    EXPECT_EQ(r.answers[0].text(), "100.64.0.30 (static mapping)");
    EXPECT_TRUE(
        whois({Ipv4Addr(198, 18, 0, 30).value(), 443, 6, kT0 - 1}, sources).answers.empty());
}

TEST_F(Archive, WhoisTriesTheNextSourceWhenTheArchiveHasNoAnswer) {
    const ArchiveWhois archive(dir_.string()); // no files at all
    const DeterministicMap map(Ipv4Addr(100, 64, 0, 0), 24,
                               {Ipv4Addr(198, 18, 0, 1), Ipv4Addr(198, 18, 0, 2)},
                               PortRange{1024, 65535});
    const FormulaWhois formula(map, "ephemera.toml");
    const WhoisSource* sources[] = {&archive, &formula};
    const WhoisResult r = whois({Ipv4Addr(198, 18, 0, 1).value(), 1024, 17, kT0}, sources);
    ASSERT_EQ(r.answers.size(), 1U);
    EXPECT_EQ(r.answers[0].source, "formula");
    EXPECT_EQ(r.answers[0].text(), "100.64.0.0 (deterministic formula)");
    EXPECT_NE(r.answers[0].note.find("ephemera.toml"), std::string::npos);
    ASSERT_FALSE(r.notes.empty());
    EXPECT_NE(r.notes[0].find("no archive files"), std::string::npos);
    EXPECT_TRUE(whois({Ipv4Addr(198, 18, 0, 3).value(), 1024, 17, kT0}, sources).answers.empty());
}

#ifdef EPHEMERACTL
struct CtlRun {
    int status = -1;
    std::string out; // stdout and stderr
};

CtlRun ephemeractl(const std::string& args) {
    CtlRun r;
    FILE* p = ::popen((std::string(EPHEMERACTL) + " " + args + " 2>&1").c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) {
        r.out.append(buf, n);
    }
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TEST_F(Whois, EphemeractlLogVerifyAndWhois) {
    const std::string dir = dir_.string();
    const std::string key = (dir_ / "key").string();
    CtlRun r = ephemeractl("log verify " + dir);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("archive " + dir + ": " + std::to_string(names().size()) +
                         " files, 24 records, "),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("blocks: chain intact\n"), std::string::npos) << r.out;

    r = ephemeractl("whois 198.18.0.10:51234 --at 2026-12-05T10:01:00Z --proto udp --archive " +
                    dir);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("100.64.0.10:40000 (udp mapping), from the archive: held since "
                         "2026-12-05T10:00:00.000Z until 2026-12-05T10:03:00.000Z"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("event=mapping-delete"), std::string::npos) << r.out;
    r = ephemeractl("whois 198.18.0.10:51234 --at 2026-12-05T10:05:00Z --proto udp --archive " +
                    dir);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("nobody held 198.18.0.10:51234 udp at 2026-12-05T10:05:00.000Z"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(ephemeractl("whois 198.18.0.10:51234 --at 10:05").status, 64);
    EXPECT_EQ(ephemeractl("whois 198.18.0.10:51234 --at 2026-12-05T10:05:00Z").status, 64);

    // One record edited in the compressed first file: decompress, edit, write back plain.
    const ArchiveFile first = list_archive_files(dir).front();
    std::string error;
    std::string text = *read_archive_text(first, error);
    const std::size_t at = text.find("inside=100.64.0.10:40000");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 24, "inside=100.64.0.11:40000");
    fs::remove(first.path);
    std::ofstream(dir_ / archive_file_name(first.start_ms, first.file_seq, false)) << text;
    r = ephemeractl("log verify " + dir);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("chain broken in 1 place"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(archive_file_name(first.start_ms, first.file_seq, false) + ":"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("hash mismatch"), std::string::npos) << r.out;

    std::ofstream(key) << "secret\n";
    r = ephemeractl("log verify " + dir + " --key-file " + key);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("seal has no hmac"), std::string::npos) << r.out;
}
TEST_F(Archive, EphemeractlWhoisFallsBackToTheConfigsFormula) {
    // docs/allocation.md's worked example: 100.64.1.7 holds 198.18.0.8 ports 34198-36040.
    const std::string config = (dir_ / "det.toml").string();
    fs::create_directories(dir_);
    std::ofstream(config) << "[pool]\naddresses = [\"198.18.0.0/27\"]\n"
                             "port_range = \"1024-65535\"\nmode = \"deterministic\"\n"
                             "[pool.deterministic]\nsubscribers = \"100.64.0.0/22\"\n"
                             "[inside]\nport = \"net_null0\"\ngateway = \"100.64.0.1\"\n"
                             "[outside]\nport = \"net_null1\"\nnext_hop = \"198.18.1.1\"\n";
    CtlRun r = ephemeractl("whois 198.18.0.8:35000 --at 2026-12-05T10:00:00Z --archive " +
                           dir_.string() + " --config " + config);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("100.64.1.7 (deterministic formula), from the formula"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("no archive files"), std::string::npos) << r.out;
    r = ephemeractl("whois 198.18.0.8:65530 --at 2026-12-05T10:00:00Z --config " + config);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("unassigned tail"), std::string::npos) << r.out;
}
#endif

} // namespace
} // namespace ephemera::logging
