#include "format.hpp"

#include "reply_shape.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <string_view>
#include <vector>

namespace ephemeractl {

std::string render_table(const std::vector<Column>& columns, const std::vector<Row>& rows) {
    std::vector<std::size_t> width(columns.size(), 0);
    const bool has_header = std::any_of(columns.begin(), columns.end(),
                                        [](const Column& c) { return !c.header.empty(); });
    for (std::size_t i = 0; i < columns.size(); ++i) {
        width[i] = columns[i].header.size();
        for (const Row& row : rows) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    std::string out;
    const auto emit = [&](const Row& row) {
        std::string line;
        for (std::size_t i = 0; i < columns.size(); ++i) {
            if (i > 0) {
                line += "  ";
            }
            const std::string pad(width[i] - row[i].size(), ' ');
            line += columns[i].align == Align::right ? pad + row[i] : row[i] + pad;
        }
        line.erase(line.find_last_not_of(' ') + 1);
        out += line;
        out += '\n';
    };
    if (has_header) {
        Row header;
        for (const Column& c : columns) {
            header.push_back(c.header);
        }
        emit(header);
    }
    for (const Row& row : rows) {
        emit(row);
    }
    return out;
}

namespace {

// Strings without their JSON quotes; everything else as JSON.
std::string scalar_text(const Json& value) {
    return value.is_string() ? value.get<std::string>() : value.dump();
}

// Gauges and identities, not event counters: a zero here is information, never noise.
bool always_shown(std::string_view key) {
    constexpr std::array<std::string_view, 10> kGauges = {
        "workers",
        "worker",
        "lcore",
        "ports_per_address",
        "ports_in_hold_down",
        "longest_iteration_us",
        "longest_plan_iteration_us",
        "longest_take_up_us",
        "plans_taken",
        "pause_window_ms",
    };
    return key.starts_with("live_") ||
           std::find(kGauges.begin(), kGauges.end(), key) != kGauges.end();
}

struct PortUse {
    long long used = 0;
    long long usable = 0;
};

} // namespace

std::string format_counters(const Json& counters, bool all) {
    std::vector<Row> rows;
    std::size_t hidden = 0;
    for (const auto& [key, value] : counters.items()) {
        if (!all && !always_shown(key) && value.is_number() && value == 0) {
            ++hidden;
            continue;
        }
        rows.push_back({key, scalar_text(value)});
    }
    std::string out = render_table({{"", Align::left}, {"", Align::right}}, rows);
    if (hidden > 0) {
        // Appended piece by piece: GCC 12 at -O3 sees a false -Wrestrict overlap in a chain of
        // std::string operator+ (a known false positive), and release builds use -Werror.
        out.append("(").append(std::to_string(hidden)).append(" zero counter");
        out.append(hidden == 1 ? "" : "s").append(" not shown; --all shows them)\n");
    }
    return out;
}

std::string format_settings(const Json& settings) {
    std::vector<Row> rows;
    for (const auto& [key, value] : settings.items()) {
        rows.push_back({key, scalar_text(value)});
    }
    return render_table({{"", Align::left}, {"", Align::left}}, rows);
}

std::string format_utilisation(long long used, long long usable) {
    if (usable <= 0) {
        return "-";
    }
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f%%",
                  static_cast<double>(used) * 100.0 / static_cast<double>(usable));
    return text;
}

std::string format_ports(const Json& ports) {
    std::vector<Column> columns{{"address", Align::left}};
    for (const char* proto : kPortProtocols) {
        columns.push_back({std::string(proto) + " used/usable", Align::right});
        columns.push_back({"util", Align::right});
    }
    columns.push_back({"held", Align::right});
    columns.push_back({"draining", Align::right});
    // Blocks mode: blocks in use, in hold-down and free, per address.
    const bool blocks = !ports.empty() && ports.begin()->contains("blocks_in_use");
    constexpr const char* kBlockKeys[] = {"blocks_in_use", "blocks_held", "blocks_free"};
    std::array<long long, 3> block_total{};
    if (blocks) {
        columns.push_back({"blocks used", Align::right});
        columns.push_back({"held", Align::right});
        columns.push_back({"free", Align::right});
    }

    constexpr std::size_t kProtocols = std::size(kPortProtocols);
    std::array<PortUse, kProtocols> total{};
    long long total_held = 0;
    long long total_draining = 0;
    const auto use_cells = [](Row& row, const PortUse& use) {
        row.push_back(std::to_string(use.used) + "/" + std::to_string(use.usable));
        row.push_back(format_utilisation(use.used, use.usable));
    };

    std::vector<Row> rows;
    for (const auto& [address, counts] : ports.items()) {
        Row row{address};
        for (std::size_t p = 0; p < kProtocols; ++p) {
            const std::string proto = kPortProtocols[p];
            const auto usable = counts.at(proto + "_usable").get<long long>();
            const auto free = counts.at(proto + "_free").get<long long>();
            const PortUse use{usable - free, usable};
            use_cells(row, use);
            total[p].used += use.used;
            total[p].usable += use.usable;
        }
        const auto held = counts.at("held").get<long long>();
        const auto draining = counts.at("draining").get<long long>();
        row.push_back(std::to_string(held));
        row.push_back(std::to_string(draining));
        total_held += held;
        total_draining += draining;
        for (std::size_t k = 0; blocks && k < std::size(kBlockKeys); ++k) {
            const long long n =
                counts.contains(kBlockKeys[k]) ? counts.at(kBlockKeys[k]).get<long long>() : 0;
            row.push_back(std::to_string(n));
            block_total[k] += n;
        }
        rows.push_back(std::move(row));
    }
    if (rows.empty()) {
        return "no pool addresses\n";
    }
    if (rows.size() > 1) {
        Row row{"total"};
        for (const PortUse& use : total) {
            use_cells(row, use);
        }
        row.push_back(std::to_string(total_held));
        row.push_back(std::to_string(total_draining));
        for (std::size_t k = 0; blocks && k < block_total.size(); ++k) {
            row.push_back(std::to_string(block_total[k]));
        }
        rows.push_back(std::move(row));
    }
    return render_table(columns, rows);
}

std::string format_pauses(const Json& pauses) {
    const std::vector<Column> columns{{"worker", Align::right},
                                      {"longest iteration us", Align::right},
                                      {"longest with a plan us", Align::right},
                                      {"taking a plan us", Align::right},
                                      {"plans taken", Align::right},
                                      {"window ms", Align::right}};
    const Json& workers = pauses.at("worker");
    std::vector<Row> rows;
    unsigned long long longest = 0;
    unsigned long long longest_plan = 0;
    unsigned long long take_up = 0;
    unsigned long long plans = 0;
    unsigned long long window = 0;
    for (std::size_t w = 0; w < workers.size(); ++w) {
        Row row;
        for (const char* field : kPauseFields) {
            row.push_back(std::to_string(pauses.at(field)[w].get<unsigned long long>()));
        }
        longest = std::max(longest, pauses.at("longest_iteration_us")[w].get<unsigned long long>());
        longest_plan = std::max(
            longest_plan, pauses.at("longest_plan_iteration_us")[w].get<unsigned long long>());
        take_up = std::max(take_up, pauses.at("longest_take_up_us")[w].get<unsigned long long>());
        plans += pauses.at("plans_taken")[w].get<unsigned long long>();
        const auto ms = pauses.at("pause_window_ms")[w].get<unsigned long long>();
        window = w == 0 ? ms : std::min(window, ms);
        rows.push_back(std::move(row));
    }
    if (rows.empty()) {
        return "no workers\n";
    }
    if (rows.size() > 1) {
        rows.push_back({"all", std::to_string(longest), std::to_string(longest_plan),
                        std::to_string(take_up), std::to_string(plans), std::to_string(window)});
    }
    return render_table(columns, rows);
}

std::string format_statics(const Json& statics) {
    const std::vector<Column> columns{{"kind", Align::left},
                                      {"protocol", Align::left},
                                      {"external", Align::left},
                                      {"inside", Align::left}};
    const auto endpoint = [&](const char* address, const char* port, std::size_t i) {
        std::string text = statics.at(address)[i].get<std::string>();
        const auto number = statics.at(port)[i].get<unsigned long long>();
        return number == 0 ? text : text + ":" + std::to_string(number);
    };
    const std::size_t shown = statics.at("kind").size();
    std::vector<Row> rows;
    for (std::size_t i = 0; i < shown; ++i) {
        rows.push_back(
            {statics.at("kind")[i].get<std::string>(), statics.at("protocol")[i].get<std::string>(),
             endpoint("external", "external_port", i), endpoint("inside", "inside_port", i)});
    }
    const auto total = statics.value("total", static_cast<unsigned long long>(shown));
    if (rows.empty() && total == 0) {
        return "no static mappings\n";
    }
    std::string out = render_table(columns, rows);
    if (total > shown) {
        out += "(the first " + std::to_string(shown) + " of " + std::to_string(total) +
               " static mappings)\n";
    }
    return out;
}

std::string format_logging(const Json& logging, const Json& workers) {
    const auto count = [](const Json& v) { return std::to_string(v.get<std::uint64_t>()); };
    std::string out = render_table(
        {{"", Align::left}, {"", Align::right}},
        {{"records handed over by the workers", count(logging["log_records"])},
         {"records dropped (a worker's ring full)", count(logging["log_records_dropped"])},
         {"records taken by the logging thread", count(logging["records_taken"])}});
    const Json& names = logging["sink"];
    if (names.empty()) {
        out += "no sinks: logging is off (no collector, no archive)\n";
    } else {
        std::vector<Row> rows;
        for (std::size_t i = 0; i < names.size(); ++i) {
            rows.push_back({names[i].get<std::string>(), count(logging["records_sent"][i]),
                            count(logging["records_dropped"][i]),
                            count(logging["messages_sent"][i]), count(logging["bytes_sent"][i]),
                            count(logging["errors"][i])});
        }
        out += '\n';
        out += render_table({{"sink", Align::left},
                             {"records sent", Align::right},
                             {"dropped", Align::right},
                             {"messages", Align::right},
                             {"bytes", Align::right},
                             {"errors", Align::right}},
                            rows);
    }
    if (workers.is_array() && !workers.empty()) {
        std::vector<Row> rows;
        for (const Json& w : workers) {
            rows.push_back(
                {count(w["worker"]), count(w["log_records"]), count(w["log_records_dropped"])});
        }
        out += '\n';
        out += render_table({{"worker", Align::right},
                             {"records handed over", Align::right},
                             {"dropped", Align::right}},
                            rows);
    }
    return out;
}

std::string format_lines(const Json& lines, const std::string& empty_text) {
    if (lines.empty()) {
        return empty_text + "\n";
    }
    std::string out;
    for (const Json& line : lines) {
        out += line.get<std::string>();
        out += '\n';
    }
    return out;
}

} // namespace ephemeractl
