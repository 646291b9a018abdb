#include "reply_shape.hpp"

#include <string_view>

namespace ephemeractl {

namespace {

constexpr const char* kPortCountKeys[] = {"udp_free",  "udp_usable",  "tcp_free", "tcp_usable",
                                          "icmp_free", "icmp_usable", "held",     "draining"};
// In blocks mode only.
constexpr const char* kBlockCountKeys[] = {"blocks_in_use", "blocks_held", "blocks_free"};

} // namespace

std::optional<std::string> shape_error(const Json& data, Shape shape) {
    switch (shape) {
    case Shape::counters:
        if (!data.is_object()) {
            return "want a dict of counters";
        }
        for (const auto& [key, value] : data.items()) {
            if (!value.is_number()) {
                return "counter " + key + " is not a number";
            }
        }
        return std::nullopt;
    case Shape::settings:
        if (!data.is_object()) {
            return "want a dict of settings";
        }
        return std::nullopt;
    case Shape::ports:
        if (!data.is_object()) {
            return "want a dict of pool addresses";
        }
        for (const auto& [address, counts] : data.items()) {
            if (!counts.is_object()) {
                return address + " is not a dict of port counts";
            }
            for (const char* key : kPortCountKeys) {
                if (!counts.contains(key) || !counts[key].is_number_integer()) {
                    return address + ": " + key + " missing or not an integer";
                }
            }
            for (const char* key : kBlockCountKeys) {
                if (counts.contains(key) && !counts[key].is_number_integer()) {
                    return address + ": " + key + " is not an integer";
                }
            }
        }
        return std::nullopt;
    case Shape::lines:
        if (!data.is_array()) {
            return "want an array of strings";
        }
        for (const Json& line : data) {
            if (!line.is_string()) {
                return "an entry is not a string";
            }
        }
        return std::nullopt;
    case Shape::logging: {
        if (!data.is_object()) {
            return "want a dict of totals and per-sink arrays";
        }
        for (const char* key : kLoggingTotals) {
            const auto total = data.find(key);
            if (total == data.end() || !total->is_number_unsigned()) {
                return std::string(key) + " missing or not a non-negative integer";
            }
        }
        std::optional<std::size_t> sinks;
        for (const char* key : kSinkFields) {
            const auto column = data.find(key);
            if (column == data.end() || !column->is_array()) {
                return std::string(key) + " missing or not an array";
            }
            const bool names = std::string_view(key) == "sink";
            for (const Json& value : *column) {
                if (names ? !value.is_string() : !value.is_number_unsigned()) {
                    return std::string(key) + ": an entry is not " +
                           (names ? "a string" : "a non-negative integer");
                }
            }
            if (sinks && *sinks != column->size()) {
                return std::string(key) + ": not one entry per sink";
            }
            sinks = column->size();
        }
        return std::nullopt;
    }
    case Shape::pauses: {
        if (!data.is_object()) {
            return "want a dict of per-worker arrays";
        }
        std::optional<std::size_t> workers;
        for (const char* key : kPauseFields) {
            const auto column = data.find(key);
            if (column == data.end() || !column->is_array()) {
                return std::string(key) + " missing or not an array";
            }
            for (const Json& value : *column) {
                if (!value.is_number_unsigned()) {
                    return std::string(key) + ": an entry is not a non-negative integer";
                }
            }
            if (workers && *workers != column->size()) {
                return std::string(key) + ": not one entry per worker";
            }
            workers = column->size();
        }
        return std::nullopt;
    }
    case Shape::statics: {
        if (!data.is_object()) {
            return "want a dict of per-mapping arrays";
        }
        std::optional<std::size_t> entries;
        for (const char* key : kStaticFields) {
            const auto column = data.find(key);
            if (column == data.end() || !column->is_array()) {
                return std::string(key) + " missing or not an array";
            }
            const bool port = std::string_view(key).ends_with("_port");
            for (const Json& value : *column) {
                if (port ? !value.is_number_unsigned() : !value.is_string()) {
                    return std::string(key) + ": an entry is not " +
                           (port ? "a non-negative integer" : "a string");
                }
            }
            if (entries && *entries != column->size()) {
                return std::string(key) + ": not one entry per mapping";
            }
            entries = column->size();
        }
        if (data.contains("total") && !data["total"].is_number_unsigned()) {
            return "total is not a non-negative integer";
        }
        return std::nullopt;
    }
    case Shape::action: {
        if (!data.is_object()) {
            return "want {\"result\": ..., \"message\": ...}";
        }
        const auto result = data.find("result");
        if (result == data.end() || !result->is_string() ||
            (*result != "ok" && *result != "refused")) {
            return "\"result\" is neither \"ok\" nor \"refused\"";
        }
        if (data.contains("message") && !data["message"].is_string()) {
            return "\"message\" is not a string";
        }
        return std::nullopt;
    }
    }
    return "unknown shape";
}

Json ports_by_address(const Json& data) {
    const auto addresses = data.is_object() ? data.find("address") : data.end();
    if (addresses == data.end() || !addresses->is_array()) {
        return data;
    }
    Json out = Json::object();
    for (std::size_t i = 0; i < addresses->size(); ++i) {
        const Json& address = (*addresses)[i];
        if (!address.is_string()) {
            return data;
        }
        Json counts = Json::object();
        for (const char* key : kPortCountKeys) {
            const auto column = data.find(key);
            if (column == data.end() || !column->is_array() ||
                column->size() != addresses->size()) {
                return data; // not column-wise after all: shape_error names what is wrong
            }
            counts[key] = (*column)[i];
        }
        for (const char* key : kBlockCountKeys) {
            const auto column = data.find(key);
            if (column != data.end() && column->is_array() && column->size() == addresses->size()) {
                counts[key] = (*column)[i];
            }
        }
        out[address.get<std::string>()] = std::move(counts);
    }
    return out;
}

bool is_refusal(const Json& data) {
    const auto result = data.is_object() ? data.find("result") : data.end();
    return result != data.end() && *result == "refused";
}

} // namespace ephemeractl
