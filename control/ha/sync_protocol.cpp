// The HA sync link's frames (sync_protocol.hpp).
#include "sync_protocol.hpp"

#include "ephemera/big_endian.hpp"

#include <algorithm>
#include <sstream>

namespace ephemera::ha {

namespace {

struct Encoder {
    ByteWriter& w;
    void operator()(const Hello& h) const {
        w.u8(static_cast<std::uint8_t>(MessageType::hello));
        w.u32(kMagic);
        w.u16(kVersion);
        w.u8(static_cast<std::uint8_t>(h.role));
        w.u16(h.workers);
        w.u64(h.active_since_ms);
        w.text(h.terms);
    }
    void operator()(const Refuse& r) const {
        w.u8(static_cast<std::uint8_t>(MessageType::refuse));
        w.text(r.reason);
    }
    void operator()(const Records& r) const {
        w.u8(static_cast<std::uint8_t>(MessageType::records));
        w.u64(r.first_sequence);
        w.u16(static_cast<std::uint16_t>(r.records.size()));
        for (const RecordBytes& rec : r.records) {
            w.bytes(rec);
        }
    }
    void operator()(const Ack& a) const {
        w.u8(static_cast<std::uint8_t>(MessageType::ack));
        w.u64(a.next_sequence);
    }
    void operator()(const BulkDone& b) const {
        w.u8(static_cast<std::uint8_t>(MessageType::bulk_done));
        w.u32(b.generation);
    }
    void operator()(const Heartbeat& h) const {
        w.u8(static_cast<std::uint8_t>(MessageType::heartbeat));
        w.u64(h.unix_ms);
    }
    void operator()(const HandoverDone& d) const {
        w.u8(static_cast<std::uint8_t>(MessageType::handover_done));
        w.u64(d.applied);
        w.u64(d.refused);
    }
};

std::optional<Message> decode_body(std::span<const std::uint8_t> frame, std::string& error) {
    ByteReader b(frame);
    const auto type = static_cast<MessageType>(b.u8());
    Message m;
    switch (type) {
    case MessageType::hello: {
        Hello h;
        if (b.u32() != kMagic) {
            error = "not an ephemera sync peer (bad magic)";
            return std::nullopt;
        }
        if (const std::uint16_t v = b.u16(); v != kVersion) {
            error = "sync protocol version " + std::to_string(v) + ", this ephemera speaks " +
                    std::to_string(kVersion);
            return std::nullopt;
        }
        const std::uint8_t role = b.u8();
        h.role = role == 1 ? HaRole::active : role == 2 ? HaRole::standby : HaRole::none;
        h.workers = b.u16();
        h.active_since_ms = b.u64();
        h.terms = b.text();
        m = std::move(h);
        break;
    }
    case MessageType::refuse:
        m = Refuse{b.text()};
        break;
    case MessageType::records: {
        Records r;
        r.first_sequence = b.u64();
        const std::uint16_t n = b.u16();
        if (n > kMaxRecordsPerFrame) {
            error = "a records frame of " + std::to_string(n) + " records";
            return std::nullopt;
        }
        r.records.resize(n);
        for (RecordBytes& rec : r.records) {
            b.bytes(rec);
        }
        m = std::move(r);
        break;
    }
    case MessageType::ack:
        m = Ack{b.u64()};
        break;
    case MessageType::bulk_done:
        m = BulkDone{b.u32()};
        break;
    case MessageType::heartbeat:
        m = Heartbeat{b.u64()};
        break;
    case MessageType::handover_done: {
        HandoverDone d;
        d.applied = b.u64();
        d.refused = b.u64();
        m = d;
        break;
    }
    default:
        error = "unknown message type " + std::to_string(static_cast<unsigned>(type));
        return std::nullopt;
    }
    if (!b.whole()) {
        error = "a malformed frame of type " + std::to_string(static_cast<unsigned>(type));
        return std::nullopt;
    }
    return m;
}

} // namespace

void append_frame(const Message& m, std::vector<std::uint8_t>& out) {
    const std::size_t at = out.size();
    ByteWriter w(out);
    w.u32(0); // the length, filled in below
    std::visit(Encoder{w}, m);
    const auto length = static_cast<std::uint32_t>(out.size() - at - 4);
    out[at] = static_cast<std::uint8_t>(length >> 24);
    out[at + 1] = static_cast<std::uint8_t>(length >> 16);
    out[at + 2] = static_cast<std::uint8_t>(length >> 8);
    out[at + 3] = static_cast<std::uint8_t>(length);
}

void FrameReader::feed(std::span<const std::uint8_t> bytes) {
    if (read_ > 0 && read_ == buffer_.size()) {
        buffer_.clear();
        read_ = 0;
    } else if (read_ > (1u << 16)) {
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(read_));
        read_ = 0;
    }
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<Message> FrameReader::next() {
    if (!error_.empty() || buffer_.size() - read_ < 4) {
        return std::nullopt;
    }
    const std::uint8_t* p = buffer_.data() + read_;
    const std::uint32_t length =
        std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
    if (length == 0 || length > kMaxFrame) {
        error_ = "a frame of " + std::to_string(length) + " bytes";
        return std::nullopt;
    }
    if (buffer_.size() - read_ - 4 < length) {
        return std::nullopt;
    }
    auto m = decode_body(std::span(buffer_).subspan(read_ + 4, length), error_);
    read_ += 4 + length;
    return m;
}

std::string pairing_terms(const Config& c, std::uint16_t workers) {
    std::ostringstream out;
    std::vector<Ipv4Addr> pool = c.pool;
    std::sort(pool.begin(), pool.end());
    out << "pool.addresses=";
    for (std::size_t i = 0; i < pool.size(); ++i) {
        out << (i ? "," : "") << pool[i].to_string();
    }
    out << "\npool.port_range=" << c.port_range.lo << "-" << c.port_range.hi;
    out << "\npool.reserved=";
    for (std::size_t i = 0; i < c.reserved.size(); ++i) {
        out << (i ? "," : "") << c.reserved[i].lo << "-" << c.reserved[i].hi;
    }
    out << "\npool.mode=" << allocation_mode_name(c.allocation);
    if (c.allocation == AllocationMode::deterministic) {
        out << "\npool.deterministic=" << c.deterministic.prefix.to_string() << "/"
            << static_cast<unsigned>(c.deterministic.prefix_len);
    }
    std::vector<std::string> statics;
    for (const StaticMapping& m : c.statics) {
        statics.push_back(static_mapping_text(m));
    }
    std::sort(statics.begin(), statics.end());
    out << "\nstatic=";
    for (std::size_t i = 0; i < statics.size(); ++i) {
        out << (i ? "," : "") << statics[i];
    }
    out << "\nworkers=" << workers;
    return out.str();
}

std::string handover_terms(const Config& c, std::uint16_t workers) {
    std::ostringstream out;
    out << "pool.port_range=" << c.port_range.lo << "-" << c.port_range.hi;
    out << "\npool.reserved=";
    for (std::size_t i = 0; i < c.reserved.size(); ++i) {
        out << (i ? "," : "") << c.reserved[i].lo << "-" << c.reserved[i].hi;
    }
    out << "\npool.mode=" << allocation_mode_name(c.allocation);
    out << "\nworkers=" << workers;
    out << "\noffer.pool=";
    for (std::size_t i = 0; i < c.pool.size(); ++i) {
        out << (i ? "," : "") << c.pool[i].to_string();
    }
    out << "\noffer.gateway=" << c.inside.gateway.to_string();
    return out.str();
}

std::string agreed_part(const std::string& terms) {
    std::istringstream in(terms);
    std::string line;
    std::string out;
    while (std::getline(in, line)) {
        if (line.rfind("offer.", 0) != 0) {
            if (!out.empty()) {
                out += '\n';
            }
            out += line;
        }
    }
    return out;
}

std::string term_value(const std::string& terms, std::string_view key) {
    std::istringstream in(terms);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
            line[key.size()] == '=') {
            return line.substr(key.size() + 1);
        }
    }
    return {};
}

std::string first_difference(const std::string& ours, const std::string& theirs) {
    std::istringstream a(ours);
    std::istringstream b(theirs);
    std::string la;
    std::string lb;
    while (true) {
        const bool more_a = static_cast<bool>(std::getline(a, la));
        const bool more_b = static_cast<bool>(std::getline(b, lb));
        if (!more_a && !more_b) {
            return {};
        }
        if (la != lb || more_a != more_b) {
            const std::string line = more_a ? la : lb;
            const std::string key = line.substr(0, line.find('='));
            const auto value = [](const std::string& l, bool present) {
                return present ? l.substr(l.find('=') + 1) : std::string("(nothing)");
            };
            return key + ": here " + value(la, more_a) + ", peer " + value(lb, more_b);
        }
    }
}

} // namespace ephemera::ha
