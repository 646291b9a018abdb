// The syslog sink against a real collector: rsyslogd in a temporary directory, listening on
// 127.0.0.1 for UDP and TCP, writes what it parsed out of each message (MSGID, timestamp,
// structured data, MSG) with its own template. A message rsyslogd cannot parse as RFC 5424
// shows up here with its fields empty or shifted.
#include "logging/syslog_sink.hpp"
#include "loopback.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

extern char** environ;

namespace ephemera::logging {
namespace {

using namespace testing;

constexpr const char* kRsyslogd = "/usr/sbin/rsyslogd";
constexpr std::uint64_t kTime = 1796464800123ULL; // 2026-12-05T10:00:00.123Z

class TempDir {
public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "ephemera-rsyslog-XXXXXX").string();
        if (::mkdtemp(pattern.data()) != nullptr) {
            path_ = pattern;
        }
    }
    ~TempDir() {
        std::error_code ignored;
        if (!path_.empty()) {
            std::filesystem::remove_all(path_, ignored);
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// rsyslogd in the foreground, stopped (and reaped) when the test ends, however it ends.
class Rsyslogd {
public:
    Rsyslogd(const std::filesystem::path& dir, std::uint16_t udp_port, std::uint16_t tcp_port)
        : dir_(dir) {
        std::ofstream(dir / "rsyslog.conf")
            << "global(workDirectory=\"" << dir.string() << "\")\n"
            << "module(load=\"imudp\")\n"
            << "module(load=\"imtcp\")\n"
            << "input(type=\"imudp\" address=\"127.0.0.1\" port=\"" << udp_port << "\")\n"
            << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << tcp_port << "\")\n"
            << "template(name=\"fields\" type=\"string\" string=\"%msgid%|"
               "%timereported:::date-rfc3339%|%app-name%|%procid%|%pri%|%hostname%|"
               "%structured-data%|%msg%\\n\")\n"
            << "action(type=\"omfile\" file=\"" << (dir / "out.log").string()
            << "\" template=\"fields\")\n";
        const std::string conf = (dir / "rsyslog.conf").string();
        const std::string pidfile = (dir / "rsyslogd.pid").string();
        const std::string output = (dir / "rsyslogd.out").string();
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        std::vector<std::string> args = {kRsyslogd, "-n", "-f", conf, "-i", pidfile};
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        if (posix_spawn(&pid_, kRsyslogd, &actions, nullptr, argv.data(), environ) != 0) {
            pid_ = -1;
        }
        posix_spawn_file_actions_destroy(&actions);
    }

    ~Rsyslogd() {
        if (!running()) {
            return;
        }
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 300 && running(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (running()) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Rsyslogd(const Rsyslogd&) = delete;
    Rsyslogd& operator=(const Rsyslogd&) = delete;

    // Reaps it when it has exited (a bad config, a port taken).
    bool running() {
        if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
        }
        return pid_ > 0;
    }

    [[nodiscard]] std::string output() const { return read_file(dir_ / "rsyslogd.out"); }
    [[nodiscard]] std::string log() const { return read_file(dir_ / "out.log"); }

private:
    std::filesystem::path dir_;
    pid_t pid_ = -1;
};

// rsyslogd opens its inputs in the order of the config, so once the TCP one accepts a
// connection the UDP one is there too.
bool accepts_tcp(std::uint16_t port) {
    const SocketFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in sa = loopback(port);
    return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
}

std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

NatEvent mapping(NatEventKind kind, std::uint16_t external_port) {
    NatEvent e;
    e.time_ms = kTime;
    e.kind = kind;
    e.proto = 17;
    e.inside = Ipv4Addr(100, 64, 0, 10).value();
    e.inside_port = 40000;
    e.external = Ipv4Addr(198, 18, 0, 10).value();
    e.external_port = external_port;
    return e;
}

NatEvent quota() {
    NatEvent e;
    e.time_ms = kTime;
    e.kind = NatEventKind::quota_exceeded;
    e.quota = NatQuota::max_entries_per_user;
    e.proto = 6;
    e.inside = Ipv4Addr(100, 64, 0, 7).value();
    e.value = 2000;
    return e;
}

TEST(RsyslogCollector, ParsesStructuredDataOverUdpAndTcp) {
    if (::access(kRsyslogd, X_OK) != 0) {
        GTEST_SKIP() << kRsyslogd << " is not installed (scripts/install-deps.sh)";
    }
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::uint16_t udp_port = unused_port(SOCK_DGRAM);
    const std::uint16_t tcp_port = unused_port(SOCK_STREAM);
    Rsyslogd rsyslogd(dir.path(), udp_port, tcp_port);
    ASSERT_TRUE(
        poll_until([] {}, [&] { return !rsyslogd.running() || accepts_tcp(tcp_port); }, 10000));
    ASSERT_TRUE(rsyslogd.running()) << rsyslogd.output();

    SyslogOptions o;
    o.hostname = "nat1";
    o.collector = collector(udp_port);
    SyslogSink udp(o);
    o.transport = TransportKind::tcp;
    o.collector = collector(tcp_port);
    SyslogSink tcp(o);

    const NatEvent over_udp[2] = {mapping(NatEventKind::mapping_created, 51234), quota()};
    const NatEvent over_tcp[2] = {mapping(NatEventKind::mapping_created, 51235),
                                  mapping(NatEventKind::mapping_deleted, 51235)};
    udp.write(over_udp, kTime);
    tcp.write(over_tcp, kTime);
    const auto pump = [&] {
        udp.poll(steady_ms());
        tcp.poll(steady_ms());
    };
    ASSERT_TRUE(poll_until(
        pump, [&] { return lines(rsyslogd.log()) >= 4; }, 10000))
        << "collector wrote:\n"
        << rsyslogd.log() << "rsyslogd said:\n"
        << rsyslogd.output();
    EXPECT_EQ(udp.stats().records_sent, 2U);
    EXPECT_EQ(tcp.stats().records_sent, 2U);
    EXPECT_EQ(tcp.stats().errors, 0U);

    const std::string pid = std::to_string(::getpid());
    const std::string log = rsyslogd.log();
    const auto expect_line = [&](const std::string& line) {
        EXPECT_NE(log.find(line + '\n'), std::string::npos) << line << "\nnot in:\n" << log;
    };
    expect_line("mapping-create|2026-12-05T10:00:00.123Z|ephemera|" + pid +
                "|134|nat1|"
                "[nat@32473 event=\"mapping-create\" worker=\"0\" proto=\"udp\" "
                "inside=\"100.64.0.10:40000\" outside=\"198.18.0.10:51234\"]|"
                "mapping-create 100.64.0.10:40000 -> 198.18.0.10:51234 udp");
    expect_line("quota-exceeded|2026-12-05T10:00:00.123Z|ephemera|" + pid +
                "|132|nat1|"
                "[nat@32473 event=\"quota-exceeded\" worker=\"0\" quota=\"subscriber\" "
                "proto=\"tcp\" inside=\"100.64.0.7\" limit=\"2000\"]|"
                "quota-exceeded subscriber 100.64.0.7 limit 2000");
    expect_line("mapping-create|2026-12-05T10:00:00.123Z|ephemera|" + pid +
                "|134|nat1|"
                "[nat@32473 event=\"mapping-create\" worker=\"0\" proto=\"udp\" "
                "inside=\"100.64.0.10:40000\" outside=\"198.18.0.10:51235\"]|"
                "mapping-create 100.64.0.10:40000 -> 198.18.0.10:51235 udp");
    expect_line("mapping-delete|2026-12-05T10:00:00.123Z|ephemera|" + pid +
                "|134|nat1|"
                "[nat@32473 event=\"mapping-delete\" worker=\"0\" proto=\"udp\" "
                "inside=\"100.64.0.10:40000\" outside=\"198.18.0.10:51235\"]|"
                "mapping-delete 100.64.0.10:40000 -> 198.18.0.10:51235 udp");
}

} // namespace
} // namespace ephemera::logging
