// What the config tests expect of the parser and of runtime edits, shared by the files that test
// them: a text accepted (or a test failure naming the refusal), a text refused with file, key
// and reason, an edit applied or refused.
#pragma once

#include "ephemera/config.hpp"
#include "ephemera/config_edit.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>

namespace ephemera::config_test {

inline Config accepted_from(const std::string& text, const char* source) {
    auto result = parse_config(text, source);
    if (const auto* err = std::get_if<ConfigError>(&result)) {
        ADD_FAILURE() << "refused: " << err->to_string() << "\n--- document ---\n" << text;
        return Config{};
    }
    return std::get<Config>(std::move(result));
}

inline void expect_refused_from(const std::string& text, const char* source, std::string_view key,
                                std::string_view phrase) {
    auto result = parse_config(text, source);
    const auto* err = std::get_if<ConfigError>(&result);
    ASSERT_NE(err, nullptr) << "accepted:\n" << text;
    EXPECT_EQ(err->file, source);
    EXPECT_EQ(err->key, key) << err->to_string();
    EXPECT_THAT(err->reason, ::testing::HasSubstr(std::string{phrase})) << err->to_string();
    // The printed line names the file first, then the key.
    EXPECT_THAT(err->to_string(),
                ::testing::StartsWith(std::string{source} + ": " + std::string{key}));
}

// An edit that must apply; on a refusal the test fails and `c` comes back unchanged.
inline Config edit_applied(const Config& c, std::string_view key, std::string_view value) {
    auto r = edit_config(c, key, value);
    if (auto* e = std::get_if<ConfigError>(&r)) {
        ADD_FAILURE() << e->to_string();
        return c;
    }
    return std::get<Config>(r);
}

inline ConfigError edit_refused(const Config& c, std::string_view key, std::string_view value) {
    auto r = edit_config(c, key, value);
    EXPECT_TRUE(std::holds_alternative<ConfigError>(r)) << key << " = " << value;
    return std::holds_alternative<ConfigError>(r) ? std::get<ConfigError>(r) : ConfigError{};
}

} // namespace ephemera::config_test

// Refused with `key` and a reason holding `phrase`, by the parser, for a document from the test
// file's kSource; failures are reported at the caller's line.
#define EXPECT_REFUSED(text, key, phrase)                                                          \
    do {                                                                                           \
        SCOPED_TRACE("refusal expected here");                                                     \
        ::ephemera::config_test::expect_refused_from((text), kSource, (key), (phrase));            \
    } while (0)
