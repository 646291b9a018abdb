#include "archive_format.hpp"

#include "event_text.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <charconv>
#include <fstream>
#include <iterator>

namespace ephemera::logging {
namespace {

struct Pair {
    std::string_view key;
    std::string_view value;
};

std::vector<Pair> split_pairs(std::string_view text) {
    std::vector<Pair> out;
    while (!text.empty()) {
        const std::size_t space = text.find(' ');
        const std::string_view word = text.substr(0, space);
        const std::size_t eq = word.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return {};
        }
        out.push_back({word.substr(0, eq), word.substr(eq + 1)});
        text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    }
    return out;
}

std::optional<std::string_view> find(const std::vector<Pair>& pairs, std::string_view key) {
    for (const Pair& p : pairs) {
        if (p.key == key) {
            return p.value;
        }
    }
    return std::nullopt;
}

template <typename T>
bool number(std::string_view text, T& out) {
    if (text.empty()) {
        return false;
    }
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && p == text.data() + text.size();
}

bool address(std::string_view text, std::uint32_t& out) {
    const auto a = Ipv4Addr::parse(text);
    if (!a) {
        return false;
    }
    out = a->value();
    return true;
}

bool endpoint(std::string_view text, std::uint32_t& addr, std::uint16_t& port) {
    const std::size_t colon = text.rfind(':');
    return colon != std::string_view::npos && address(text.substr(0, colon), addr) &&
           number(text.substr(colon + 1), port);
}

// "a-b" of two values read by `each`.
template <typename T, typename F>
bool span_of(std::string_view text, T& first, T& last, F each) {
    const std::size_t dash = text.find('-');
    return dash != std::string_view::npos && each(text.substr(0, dash), first) &&
           each(text.substr(dash + 1), last);
}

bool protocol(std::string_view text, std::uint8_t& out) {
    for (unsigned p : {0U, 1U, 6U, 17U}) {
        if (protocol_name(static_cast<std::uint8_t>(p)) == text) {
            out = static_cast<std::uint8_t>(p);
            return true;
        }
    }
    if (text == "other") {
        out = 255;
        return true;
    }
    return false;
}

template <typename E, typename F>
bool named(std::string_view text, E& out, F name_of, unsigned count) {
    for (unsigned i = 0; i <= count; ++i) {
        if (name_of(static_cast<E>(i)) == text) {
            out = static_cast<E>(i);
            return true;
        }
    }
    return false;
}

bool parse_kind_fields(const std::vector<Pair>& f, NatEvent& e) {
    auto get = [&](std::string_view key) { return find(f, key).value_or(std::string_view{}); };
    auto has = [&](std::string_view key) { return find(f, key).has_value(); };
    auto num16 = [](std::string_view t, std::uint16_t& v) { return number(t, v); };
    switch (e.kind) {
    case NatEventKind::mapping_created:
    case NatEventKind::mapping_deleted:
        if (has("static")) {
            if (get("static") != "1") {
                return false;
            }
            e.flags |= NatEvent::kStaticMapping;
        }
        return protocol(get("proto"), e.proto) &&
               endpoint(get("inside"), e.inside, e.inside_port) &&
               endpoint(get("outside"), e.external, e.external_port) &&
               (!has("remote") || endpoint(get("remote"), e.remote, e.remote_port));
    case NatEventKind::block_allocated:
    case NatEventKind::block_released:
    case NatEventKind::block_interim:
        return address(get("inside"), e.inside) && address(get("outside"), e.external) &&
               span_of(get("ports"), e.first_port, e.last_port, num16) &&
               number(get("step"), e.step) && number(get("count"), e.ports) &&
               (!has("workers") || number(get("workers"), e.value));
    case NatEventKind::static_added:
    case NatEventKind::static_removed:
        if (!protocol(get("proto"), e.proto)) {
            return false;
        }
        if (e.proto == 0) {
            return address(get("inside"), e.inside) && address(get("outside"), e.external);
        }
        return endpoint(get("inside"), e.inside, e.inside_port) &&
               endpoint(get("outside"), e.external, e.external_port);
    case NatEventKind::deterministic_formula: {
        const std::string_view prefix = get("prefix");
        const std::size_t slash = prefix.find('/');
        return slash != std::string_view::npos && address(prefix.substr(0, slash), e.inside) &&
               number(prefix.substr(slash + 1), e.prefix_len) &&
               span_of(get("pool"), e.external, e.external_last, address) &&
               span_of(get("ports"), e.first_port, e.last_port, num16) &&
               number(get("per"), e.ports) && number(get("ratio"), e.value);
    }
    case NatEventKind::ports_exhausted:
        return protocol(get("proto"), e.proto) && address(get("inside"), e.inside) &&
               address(get("outside"), e.external);
    case NatEventKind::quota_exceeded:
        return named(get("quota"), e.quota, quota_name, 4) && protocol(get("proto"), e.proto) &&
               (!has("inside") || address(get("inside"), e.inside)) &&
               number(get("limit"), e.value);
    case NatEventKind::threshold_reached:
        return named(get("threshold"), e.threshold, threshold_name, 5) &&
               (!has("outside") || address(get("outside"), e.external)) &&
               (!has("inside") || address(get("inside"), e.inside)) &&
               (!has("proto") || protocol(get("proto"), e.proto)) &&
               number(get("percent"), e.value);
    case NatEventKind::count_:
        break;
    }
    return false;
}

// "key=<hex digest>" among the words of a header or seal line.
bool digest_field(const std::vector<Pair>& f, std::string_view key, Digest& out) {
    const auto text = find(f, key);
    const auto d = text ? digest_from_hex(*text) : std::nullopt;
    if (d) {
        out = *d;
    }
    return d.has_value();
}

} // namespace

void append_record(std::string& out, const NatEvent& e) {
    append_rfc3339_ms(out, e.time_ms);
    visit_fields(e, [&](std::string_view key, std::string_view value) {
        out += ' ';
        out += key;
        out += '=';
        out += value;
    });
    out += '\n';
}

std::string format_record(const NatEvent& e) {
    std::string line;
    append_record(line, e);
    line.pop_back();
    return line;
}

std::optional<NatEvent> parse_record(std::string_view line) {
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) {
        return std::nullopt;
    }
    NatEvent e;
    const auto time = parse_rfc3339_ms(line.substr(0, space));
    const std::vector<Pair> f = split_pairs(line.substr(space + 1));
    const auto kind = nat_event_from_name(find(f, "event").value_or(""));
    if (!time || !kind || !number(find(f, "worker").value_or(""), e.worker)) {
        return std::nullopt;
    }
    e.time_ms = *time;
    e.kind = *kind;
    if (!parse_kind_fields(f, e)) {
        return std::nullopt;
    }
    return e;
}

std::string to_hex(const Digest& d) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (std::uint8_t b : d) {
        out += kDigits[b >> 4];
        out += kDigits[b & 15];
    }
    return out;
}

std::optional<Digest> digest_from_hex(std::string_view text) {
    if (text.size() != 64) {
        return std::nullopt;
    }
    Digest d{};
    for (std::size_t i = 0; i < 32; ++i) {
        const auto [p, ec] =
            std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, d[i], 16);
        if (ec != std::errc{} || p != text.data() + 2 * i + 2) {
            return std::nullopt;
        }
    }
    // Only the lower-case form the writer prints: one spelling, so one line per digest.
    if (to_hex(d) != text) {
        return std::nullopt;
    }
    return d;
}

std::string format_header(const FileHeader& h) {
    return "#ephemera-archive v1 prev=" + to_hex(h.prev) +
           " file-seq=" + std::to_string(h.file_seq);
}

std::optional<FileHeader> parse_header(std::string_view line) {
    constexpr std::string_view kStart = "#ephemera-archive v1 ";
    if (!line.starts_with(kStart)) {
        return std::nullopt;
    }
    const std::vector<Pair> f = split_pairs(line.substr(kStart.size()));
    FileHeader h;
    if (f.size() != 2 || !digest_field(f, "prev", h.prev) ||
        !number(find(f, "file-seq").value_or(""), h.file_seq)) {
        return std::nullopt;
    }
    return h;
}

std::string format_seal(const Seal& s) {
    std::string line = "#seal seq=" + std::to_string(s.seq) +
                       " records=" + std::to_string(s.records) + " prev=" + to_hex(s.prev) +
                       " sha256=" + to_hex(s.sha256);
    if (s.hmac) {
        line += " hmac=" + to_hex(*s.hmac);
    }
    return line;
}

std::optional<Seal> parse_seal(std::string_view line) {
    constexpr std::string_view kStart = "#seal ";
    if (!line.starts_with(kStart)) {
        return std::nullopt;
    }
    const std::vector<Pair> f = split_pairs(line.substr(kStart.size()));
    Seal s;
    if (f.size() < 4 || f.size() > 5 || !number(find(f, "seq").value_or(""), s.seq) ||
        !number(find(f, "records").value_or(""), s.records) || !digest_field(f, "prev", s.prev) ||
        !digest_field(f, "sha256", s.sha256)) {
        return std::nullopt;
    }
    if (f.size() == 5) {
        Digest h{};
        if (!digest_field(f, "hmac", h)) {
            return std::nullopt;
        }
        s.hmac = h;
    }
    return s;
}

struct BlockHasher::State {
    EVP_MD_CTX* sha = nullptr;
    EVP_MAC* mac = nullptr;
    EVP_MAC_CTX* hmac = nullptr;
};

BlockHasher::BlockHasher(const Digest& prev, std::span<const std::uint8_t> key)
    : state_(new State) {
    state_->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(state_->sha, EVP_sha256(), nullptr);
    if (!key.empty()) {
        state_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        state_->hmac = state_->mac == nullptr ? nullptr : EVP_MAC_CTX_new(state_->mac);
        char digest_name[] = "SHA256";
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
            OSSL_PARAM_construct_end()};
        // Without OpenSSL's HMAC (a broken install) seals go without one, and verify with
        // a key then says so for every block.
        if (state_->hmac != nullptr &&
            EVP_MAC_init(state_->hmac, key.data(), key.size(), params) != 1) {
            EVP_MAC_CTX_free(state_->hmac);
            state_->hmac = nullptr;
        }
    }
    add(std::string_view(reinterpret_cast<const char*>(prev.data()), prev.size()));
}

BlockHasher::~BlockHasher() {
    EVP_MD_CTX_free(state_->sha);
    EVP_MAC_CTX_free(state_->hmac);
    EVP_MAC_free(state_->mac);
    delete state_;
}

void BlockHasher::add(std::string_view bytes) {
    EVP_DigestUpdate(state_->sha, bytes.data(), bytes.size());
    if (state_->hmac != nullptr) {
        EVP_MAC_update(state_->hmac, reinterpret_cast<const unsigned char*>(bytes.data()),
                       bytes.size());
    }
}

Digest BlockHasher::finish_sha256() {
    Digest d{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(state_->sha, d.data(), &len);
    return d;
}

std::optional<Digest> BlockHasher::finish_hmac() {
    if (state_->hmac == nullptr) {
        return std::nullopt;
    }
    Digest d{};
    std::size_t len = 0;
    EVP_MAC_final(state_->hmac, d.data(), &len, d.size());
    return d;
}

std::optional<std::vector<std::uint8_t>> read_key_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::vector<std::uint8_t> key{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
        key.pop_back();
    }
    if (key.empty()) {
        return std::nullopt;
    }
    return key;
}

} // namespace ephemera::logging
