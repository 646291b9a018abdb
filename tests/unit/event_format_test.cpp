// The allocation-free formatting path (visit_fields, TimestampText, append_record,
// SyslogFormatter) against the printf and to_string forms it replaced: the text must not change
// by a byte, since collectors, the archive's hash chains and the goldens depend on it.
#include "count_allocations.hpp"
#include "logging/archive_format.hpp"
#include "logging/event_text.hpp"
#include "logging/syslog_format.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

namespace ephemera::logging {
namespace {

// The timestamp as it was formatted before the per-second cache.
std::string reference_rfc3339_ms(std::uint64_t unix_ms) {
    const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[40];
    const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, static_cast<unsigned>(unix_ms % 1000));
    return std::string(buf, static_cast<std::size_t>(n));
}

std::string reference_address(std::uint32_t a) {
    return Ipv4Addr{a}.to_string();
}

std::string reference_endpoint(std::uint32_t a, std::uint16_t port) {
    return reference_address(a) + ':' + std::to_string(port);
}

// The fields as they were built before visit_fields, joined as the archive joins them.
std::string reference_fields(const NatEvent& e) {
    std::vector<std::pair<std::string, std::string>> f;
    f.emplace_back("event", std::string(nat_event_name(e.kind)));
    f.emplace_back("worker", std::to_string(e.worker));
    switch (e.kind) {
    case NatEventKind::mapping_created:
    case NatEventKind::mapping_deleted:
        f.emplace_back("proto", std::string(protocol_name(e.proto)));
        f.emplace_back("inside", reference_endpoint(e.inside, e.inside_port));
        f.emplace_back("outside", reference_endpoint(e.external, e.external_port));
        if (e.remote != 0) {
            f.emplace_back("remote", reference_endpoint(e.remote, e.remote_port));
        }
        if ((e.flags & NatEvent::kStaticMapping) != 0) {
            f.emplace_back("static", "1");
        }
        break;
    case NatEventKind::block_allocated:
    case NatEventKind::block_released:
    case NatEventKind::block_interim:
        f.emplace_back("inside", reference_address(e.inside));
        f.emplace_back("outside", reference_address(e.external));
        f.emplace_back("ports", std::to_string(e.first_port) + '-' + std::to_string(e.last_port));
        f.emplace_back("step", std::to_string(e.step));
        f.emplace_back("count", std::to_string(e.ports));
        if (e.value > 1) {
            f.emplace_back("workers", std::to_string(e.value));
        }
        break;
    case NatEventKind::static_added:
    case NatEventKind::static_removed:
        f.emplace_back("proto", std::string(protocol_name(e.proto)));
        if (e.proto == 0) {
            f.emplace_back("inside", reference_address(e.inside));
            f.emplace_back("outside", reference_address(e.external));
        } else {
            f.emplace_back("inside", reference_endpoint(e.inside, e.inside_port));
            f.emplace_back("outside", reference_endpoint(e.external, e.external_port));
        }
        break;
    case NatEventKind::deterministic_formula:
        f.emplace_back("prefix", reference_address(e.inside) + '/' + std::to_string(e.prefix_len));
        f.emplace_back("pool",
                       reference_address(e.external) + '-' + reference_address(e.external_last));
        f.emplace_back("ports", std::to_string(e.first_port) + '-' + std::to_string(e.last_port));
        f.emplace_back("per", std::to_string(e.ports));
        f.emplace_back("ratio", std::to_string(e.value));
        break;
    case NatEventKind::ports_exhausted:
        f.emplace_back("proto", std::string(protocol_name(e.proto)));
        f.emplace_back("inside", reference_address(e.inside));
        f.emplace_back("outside", reference_address(e.external));
        break;
    case NatEventKind::quota_exceeded:
        f.emplace_back("quota", std::string(quota_name(e.quota)));
        f.emplace_back("proto", std::string(protocol_name(e.proto)));
        if (e.inside != 0) {
            f.emplace_back("inside", reference_address(e.inside));
        }
        f.emplace_back("limit", std::to_string(e.value));
        break;
    case NatEventKind::threshold_reached:
        f.emplace_back("threshold", std::string(threshold_name(e.threshold)));
        if (e.external != 0) {
            f.emplace_back("outside", reference_address(e.external));
        }
        if (e.inside != 0) {
            f.emplace_back("inside", reference_address(e.inside));
        }
        if (e.proto != 0) {
            f.emplace_back("proto", std::string(protocol_name(e.proto)));
        }
        f.emplace_back("percent", std::to_string(e.value));
        break;
    case NatEventKind::count_:
        break;
    }
    std::string out;
    for (const auto& [key, value] : f) {
        out += ' ' + key + '=' + value;
    }
    return out;
}

// Events of every kind with field values drawn to reach every digit count, including the
// extremes (0, 255 octets, 65535 ports, 2^32-1 values).
NatEvent random_event(std::mt19937_64& rng) {
    const auto pick = [&](std::uint64_t max) {
        switch (rng() % 4) {
        case 0:
            return std::uint64_t{0};
        case 1:
            return max;
        default:
            return rng() % (max + 1);
        }
    };
    const auto address = [&] {
        std::uint32_t a = 0;
        for (int i = 0; i < 4; ++i) {
            a = a << 8 | static_cast<std::uint32_t>(pick(255) >> (rng() % 8));
        }
        return a;
    };
    const std::uint8_t protos[] = {0, 1, 6, 17, 47};
    NatEvent e;
    e.time_ms = 1796464800123ULL + rng() % (400ULL * 86'400'000);
    e.kind = static_cast<NatEventKind>(rng() % kNatEventKindCount);
    e.proto = protos[rng() % 5];
    e.worker = static_cast<std::uint16_t>(pick(65535));
    e.inside = address();
    e.inside_port = static_cast<std::uint16_t>(pick(65535));
    e.external = address();
    e.external_port = static_cast<std::uint16_t>(pick(65535));
    e.external_last = address();
    e.remote = rng() % 2 == 0 ? 0 : address();
    e.remote_port = static_cast<std::uint16_t>(pick(65535));
    e.first_port = static_cast<std::uint16_t>(pick(65535));
    e.last_port = static_cast<std::uint16_t>(pick(65535));
    e.step = static_cast<std::uint16_t>(pick(65535));
    e.ports = static_cast<std::uint16_t>(pick(65535));
    e.quota = static_cast<NatQuota>(rng() % 5);
    e.threshold = static_cast<NatThreshold>(rng() % 6);
    e.value = static_cast<std::uint32_t>(pick(0xffffffffULL));
    e.prefix_len = static_cast<std::uint8_t>(pick(32));
    e.flags = static_cast<std::uint8_t>(rng() % 2);
    return e;
}

TEST(EventFormat, TimestampMatchesGmtimeAtBoundaries) {
    // Unix seconds of interesting days: the epoch, leap days (2000 a leap year, 2100 not),
    // year ends, the 2038 32-bit rollover and the last four-digit year.
    const std::uint64_t days[] = {0,
                                  951'782'400,
                                  951'868'800,
                                  1'709'164'800,
                                  1'709'251'200,
                                  1'735'689'600,
                                  1'767'225'599,
                                  1'796'464'800,
                                  2'147'483'647,
                                  4'107'456'000,
                                  4'107'542'400,
                                  253'402'300'799};
    TimestampText text;
    for (const std::uint64_t s : days) {
        for (std::int64_t delta = -2000; delta <= 2000; delta += 7) {
            if (static_cast<std::int64_t>(s * 1000) + delta < 0) {
                continue;
            }
            const auto ms = static_cast<std::uint64_t>(static_cast<std::int64_t>(s * 1000) + delta);
            std::string out;
            text.append(out, ms);
            ASSERT_EQ(out, reference_rfc3339_ms(ms)) << ms;
            ASSERT_EQ(rfc3339_ms(ms), reference_rfc3339_ms(ms)) << ms;
        }
    }
}

TEST(EventFormat, TimestampMatchesGmtimeInAnyOrder) {
    std::mt19937_64 rng(7);
    TimestampText text;
    std::uint64_t ms = 1796464800123ULL;
    for (int i = 0; i < 200'000; ++i) {
        // Mostly small steps, as records come; sometimes a jump either way, as a clock step or
        // a record from another worker's older batch.
        switch (rng() % 8) {
        case 0:
            ms = rng() % 253'402'300'800'000ULL;
            break;
        case 1:
            ms -= std::min<std::uint64_t>(ms, rng() % 5000);
            break;
        default:
            ms += rng() % 700;
            break;
        }
        std::string out = "x";
        text.append(out, ms);
        std::string expected = "x"; // appended: GCC 12 -O3 misreads "x" + string (-Wrestrict)
        expected += reference_rfc3339_ms(ms);
        ASSERT_EQ(out, expected) << ms;
    }
}

TEST(EventFormat, FieldsMatchTheStringForm) {
    std::mt19937_64 rng(11);
    for (int i = 0; i < 100'000; ++i) {
        const NatEvent e = random_event(rng);
        std::string visited;
        visit_fields(e, [&](std::string_view key, std::string_view value) {
            visited += ' ';
            visited += key;
            visited += '=';
            visited += value;
        });
        const std::string expected = reference_fields(e);
        ASSERT_EQ(visited, expected);
        std::string owned;
        for (const auto& f : event_fields(e)) {
            owned += ' ' + std::string(f.key) + '=' + f.value;
        }
        ASSERT_EQ(owned, expected);
        const FieldList list(e);
        std::string listed;
        for (std::size_t k = 0; k < list.size(); ++k) {
            listed += ' ' + std::string(list.key(k)) + '=' + std::string(list.value(k));
        }
        ASSERT_EQ(listed, expected);
        ASSERT_EQ(format_record(e), reference_rfc3339_ms(e.time_ms) + expected);
    }
}

TEST(EventFormat, FieldListFindsByKey) {
    NatEvent e;
    e.kind = NatEventKind::mapping_created;
    e.proto = 6;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = 40000;
    const FieldList f(e);
    EXPECT_EQ(f.get("proto"), "tcp");
    EXPECT_EQ(f.get("inside"), "100.64.0.10:40000");
    EXPECT_EQ(f.get("outside"), "0.0.0.0:0");
    EXPECT_EQ(f.get("remote"), "");
}

NatEvent mapping(std::uint64_t time_ms, std::uint16_t port) {
    NatEvent e;
    e.time_ms = time_ms;
    e.kind = NatEventKind::mapping_created;
    e.proto = 17;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = 40000;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.external_port = port;
    return e;
}

TEST(EventFormat, AppendRecordAddsWholeLines) {
    std::string out = "#head\n";
    append_record(out, mapping(1796464800123ULL, 51234));
    append_record(out, mapping(1796464801005ULL, 7));
    EXPECT_EQ(out, "#head\n"
                   "2026-12-05T10:00:00.123Z event=mapping-create worker=0 proto=udp "
                   "inside=100.64.0.10:40000 outside=198.18.0.10:51234\n"
                   "2026-12-05T10:00:01.005Z event=mapping-create worker=0 proto=udp "
                   "inside=100.64.0.10:40000 outside=198.18.0.10:7\n");
}

TEST(EventFormat, ReusedBufferKeepsNoStaleBytes) {
    NatEvent longer = mapping(1796464800123ULL, 51234);
    longer.remote = Ipv4Addr(203, 0, 113, 200).value();
    longer.remote_port = 65535;
    longer.flags = NatEvent::kStaticMapping;
    const NatEvent shorter = mapping(1796464800999ULL, 1);
    std::string out;
    append_record(out, longer);
    const std::size_t capacity = out.capacity();
    out.clear();
    append_record(out, shorter);
    EXPECT_EQ(out, format_record(shorter) + '\n');
    EXPECT_EQ(out.capacity(), capacity);

    const SyslogFormatter syslog(SyslogHeader{kSyslogLocal0, "nat1", 4242});
    std::string message;
    syslog.append(message, longer);
    EXPECT_EQ(message, syslog_message(longer, SyslogHeader{kSyslogLocal0, "nat1", 4242}));
    message.clear();
    syslog.append(message, shorter);
    EXPECT_EQ(message, syslog_message(shorter, SyslogHeader{kSyslogLocal0, "nat1", 4242}));
}

TEST(EventFormat, SteadyStateAllocatesNothing) {
    std::mt19937_64 rng(17);
    std::vector<NatEvent> events;
    for (int i = 0; i < 4096; ++i) {
        NatEvent e = random_event(rng);
        e.time_ms = 1796464800123ULL + static_cast<std::uint64_t>(i) * 3;
        events.push_back(e);
    }
    const SyslogFormatter syslog(SyslogHeader{kSyslogLocal0, "nat1", 4242});
    std::string lines;
    std::string message;
    std::string framed;
    const auto pass = [&] {
        lines.clear();
        for (const NatEvent& e : events) {
            append_record(lines, e);
            message.clear();
            syslog.append(message, e);
            framed.clear();
            append_octet_counted(framed, message);
        }
    };
    pass(); // the buffers grow to the batch, the timestamp cache comes to life
    const std::uint64_t counted = ephemera::testing::allocation_count();
    {
        const std::string probe(64, 'x'); // the count does see allocations
        ASSERT_EQ(probe.size(), 64U);
    }
    ASSERT_GE(ephemera::testing::allocation_count() - counted, 1U);
    const std::uint64_t before = ephemera::testing::allocation_count();
    pass();
    EXPECT_EQ(ephemera::testing::allocation_count() - before, 0U);
}

TEST(EventFormat, SyslogFormatterMatchesOneShotForEveryKind) {
    std::mt19937_64 rng(13);
    const SyslogHeader header{3, "nat 1\x7f", 99};
    const SyslogFormatter formatter(header);
    std::string message;
    std::string framed;
    for (int i = 0; i < 20'000; ++i) {
        const NatEvent e = random_event(rng);
        message.clear();
        formatter.append(message, e);
        ASSERT_EQ(message, syslog_message(e, header));
        framed.clear();
        append_octet_counted(framed, message);
        ASSERT_EQ(framed, std::to_string(message.size()) + ' ' + message);
    }
}

} // namespace
} // namespace ephemera::logging
