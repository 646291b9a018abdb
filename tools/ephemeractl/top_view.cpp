#include "top_view.hpp"

#include "format.hpp"
#include "request.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

namespace ephemeractl {

namespace {

constexpr std::size_t kBarWidth = 40;

bool is_array_of(const Json& data, const std::string& key, bool strings) {
    if (!data.contains(key) || !data[key].is_array()) {
        return false;
    }
    return std::all_of(data[key].begin(), data[key].end(), [&](const Json& v) {
        return strings ? v.is_string() : v.is_number_unsigned();
    });
}

std::optional<std::string> histogram_error(const Json& data, const std::string& bounds,
                                           const std::string& counts) {
    if (!is_array_of(data, bounds, false) || !is_array_of(data, counts, false)) {
        return "\"" + bounds + "\" and \"" + counts + "\" are not arrays of integers";
    }
    if (data[bounds].size() != data[counts].size()) {
        return "\"" + bounds + "\" and \"" + counts + "\" differ in length";
    }
    return std::nullopt;
}

// Rows from the first bucket with a count to the last, each with a bar scaled to the largest.
std::string format_histogram(const Json& bounds, const Json& counts, const std::string& unit) {
    std::size_t first = counts.size();
    std::size_t last = 0;
    std::uint64_t most = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        const auto n = counts[i].get<std::uint64_t>();
        if (n != 0) {
            first = std::min(first, i);
            last = i;
            most = std::max(most, n);
        }
    }
    if (most == 0) {
        return "  (none)\n";
    }
    std::vector<Row> rows;
    for (std::size_t i = first; i <= last; ++i) {
        const auto n = counts[i].get<std::uint64_t>();
        auto bar = static_cast<std::size_t>((n * kBarWidth + most - 1) / most);
        rows.push_back({"<= " + std::to_string(bounds[i].get<std::uint64_t>()) + unit,
                        std::to_string(n), std::string(bar, '#')});
    }
    std::string out =
        render_table({{"", Align::right}, {"", Align::right}, {"", Align::left}}, rows);
    std::string indented;
    std::size_t start = 0;
    while (start < out.size()) {
        const std::size_t end = out.find('\n', start);
        indented += "  " + out.substr(start, end - start + 1);
        start = end + 1;
    }
    return indented;
}

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int) {
    g_stop.store(true);
}

} // namespace

std::optional<std::string> top_shape_error(const Json& data) {
    if (!data.is_object()) {
        return "not a dict";
    }
    for (const char* key : {"subscribers", "ports_sum"}) {
        if (!data.contains(key) || !data[key].is_number_unsigned()) {
            // Appended, not concatenated: GCC 12 at -O3 warns (-Wrestrict, bug 105329) on
            // "literal" + std::string + "literal".
            std::string why = "\"";
            why.append(key).append("\" is not an integer");
            return why;
        }
    }
    if (auto why = histogram_error(data, "ports_le", "ports_count")) {
        return why;
    }
    if (data.contains("block_fill_count")) {
        if (auto why = histogram_error(data, "block_fill_le_percent", "block_fill_count")) {
            return why;
        }
    }
    for (const std::string prefix : {"top_ports_", "top_refusals_"}) {
        std::optional<std::size_t> size;
        for (std::size_t f = 0; f < std::size(kTopFields); ++f) {
            const std::string key = prefix + kTopFields[f];
            if (!is_array_of(data, key, f < 2)) {
                return "\"" + key + "\" is missing or has the wrong type";
            }
            if (size && *size != data[key].size()) {
                return "the \"" + prefix + "*\" arrays differ in length";
            }
            size = data[key].size();
        }
    }
    return std::nullopt;
}

std::string format_top(const Json& data, const TopOptions& options) {
    const bool by_refusals = options.by == "refusals";
    const std::string prefix = by_refusals ? "top_refusals_" : "top_ports_";
    std::string out = "subscribers " + std::to_string(data["subscribers"].get<std::uint64_t>()) +
                      "  ports held " + std::to_string(data["ports_sum"].get<std::uint64_t>()) +
                      " (busiest protocol of each)\n\n";
    const Json& subscribers = data[prefix + "subscriber"];
    const std::size_t shown = std::min(options.rows, subscribers.size());
    out += "top " + std::to_string(shown) + " by " + (by_refusals ? "refusals" : "ports") + "\n";
    if (shown == 0) {
        out += by_refusals ? "  no subscriber was refused\n" : "  no subscriber holds a port\n";
    } else {
        std::vector<Column> columns{
            {"rank", Align::right}, {"subscriber", Align::left}, {"pool address", Align::left}};
        for (std::size_t f = 2; f < std::size(kTopFields); ++f) {
            columns.push_back({kTopFields[f], Align::right});
        }
        std::vector<Row> rows;
        for (std::size_t i = 0; i < shown; ++i) {
            Row row{std::to_string(i + 1), data[prefix + "subscriber"][i].get<std::string>(),
                    data[prefix + "pool_address"][i].get<std::string>()};
            for (std::size_t f = 2; f < std::size(kTopFields); ++f) {
                row.push_back(std::to_string(data[prefix + kTopFields[f]][i].get<std::uint64_t>()));
            }
            rows.push_back(std::move(row));
        }
        out += render_table(columns, rows);
    }
    out += "\nports per subscriber (busiest protocol)\n";
    out += format_histogram(data["ports_le"], data["ports_count"], "");
    if (data.contains("block_fill_count")) {
        out += "\nblock fill (subscribers holding blocks)\n";
        out += format_histogram(data["block_fill_le_percent"], data["block_fill_count"], "%");
    }
    return out;
}

int run_top(const std::string& socket_path, const TopOptions& options, const Display& display) {
    const Request request{"/ephemera/top", {}};
    if (!options.once) {
        struct sigaction action = {};
        action.sa_handler = on_interrupt; // no SA_RESTART: a wait in recv ends at once
        sigemptyset(&action.sa_mask);
        sigaction(SIGINT, &action, nullptr);
        sigaction(SIGTERM, &action, nullptr);
    }
    try {
        TelemetryClient client(socket_path, kSocketTimeout);
        for (;;) {
            const Json reply = client.query(request);
            if (g_stop.load()) {
                return kExitOk;
            }
            if (reply.is_null()) {
                std::fprintf(stderr, "ephemeractl: /ephemera/top: no data: the command failed "
                                     "or this ephemera does not know it\n");
                return kExitNoReply;
            }
            if (const auto why = top_shape_error(reply)) {
                std::fprintf(stderr, "ephemeractl: /ephemera/top: malformed reply: %s\n",
                             why->c_str());
                return kExitNoReply;
            }
            const std::string text =
                display.json ? reply.dump(2) + "\n" : format_top(reply, options);
            if (options.once) {
                std::fputs(text.c_str(), stdout);
                return kExitOk;
            }
            // Home, clear, redraw: a terminal shows the latest view only.
            std::fputs(("\x1b[H\x1b[2J" + text).c_str(), stdout);
            std::fflush(stdout);
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            while (!g_stop.load() && std::chrono::steady_clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            if (g_stop.load()) {
                return kExitOk;
            }
        }
    } catch (const TelemetryError& e) {
        if (g_stop.load()) {
            return kExitOk; // Ctrl-C during a query
        }
        std::fprintf(stderr, "ephemeractl: %s\n", e.what());
        return kExitNoReply;
    } catch (const Json::exception& e) {
        std::fprintf(stderr, "ephemeractl: /ephemera/top: malformed reply: %s\n", e.what());
        return kExitNoReply;
    }
}

} // namespace ephemeractl
