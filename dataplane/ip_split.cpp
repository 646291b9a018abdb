#include "ephemera/ip_split.hpp"

#include <algorithm>

namespace ephemera {

namespace {

constexpr std::uint8_t kOptionEnd = 0;
constexpr std::uint8_t kOptionNop = 1;
constexpr std::uint8_t kOptionCopied = 0x80;
constexpr std::uint16_t kIpFlagMoreFragments = 0x2000;
constexpr std::size_t kMaxIpHeaderLen = 60;

// Where piece `index` starts in the payload and how long it is.
struct Piece {
    std::size_t offset = 0;
    std::size_t length = 0;
};

struct Layout {
    std::size_t first_header = 0; // the packet's own header length
    std::size_t later_header = 0;
    std::size_t first_data = 0; // payload bytes per piece, multiples of 8
    std::size_t later_data = 0;
    std::size_t payload = 0;
};

Layout layout_of(std::span<const std::uint8_t> frame, const ParsedPacket& p, std::uint16_t mtu) {
    Layout l;
    l.first_header = p.l4 - p.l3;
    std::uint8_t scratch[kMaxIpHeaderLen];
    l.later_header = later_piece_header(frame.subspan(p.l3, l.first_header), scratch);
    l.first_data = mtu > l.first_header ? (mtu - l.first_header) & ~std::size_t{7} : 0;
    l.later_data = mtu > l.later_header ? (mtu - l.later_header) & ~std::size_t{7} : 0;
    l.payload = ip_payload_length(p);
    return l;
}

Piece piece_of(const Layout& l, std::size_t index) {
    if (index == 0) {
        return {0, std::min(l.payload, l.first_data)};
    }
    const std::size_t offset = l.first_data + (index - 1) * l.later_data;
    return {offset, std::min(l.payload - offset, l.later_data)};
}

} // namespace

std::size_t later_piece_header(std::span<const std::uint8_t> header, std::uint8_t* out) {
    std::memcpy(out, header.data(), kIpv4MinHeaderLen);
    std::size_t len = kIpv4MinHeaderLen;
    std::size_t i = kIpv4MinHeaderLen;
    while (i < header.size()) {
        const std::uint8_t type = header[i];
        if (type == kOptionEnd) {
            break;
        }
        if (type == kOptionNop) {
            ++i;
            continue;
        }
        if (i + 1 >= header.size() || header[i + 1] < 2 || i + header[i + 1] > header.size()) {
            break; // a malformed option list: keep what came before it
        }
        const std::size_t option_len = header[i + 1];
        if ((type & kOptionCopied) != 0) {
            std::memcpy(out + len, header.data() + i, option_len);
            len += option_len;
        }
        i += option_len;
    }
    while (len % 4 != 0) {
        out[len++] = kOptionEnd;
    }
    out[0] = static_cast<std::uint8_t>(0x40 | len / 4);
    return len;
}

std::size_t split_count(std::span<const std::uint8_t> frame, const ParsedPacket& p,
                        std::uint16_t mtu) {
    if (p.ip_total_len <= mtu) {
        return 1;
    }
    const Layout l = layout_of(frame, p, mtu);
    if (l.first_data == 0 || l.later_data == 0) {
        return 0; // cannot be split under this MTU
    }
    if (l.payload <= l.first_data) {
        return 1;
    }
    return 1 + (l.payload - l.first_data + l.later_data - 1) / l.later_data;
}

std::size_t write_split_piece(std::span<const std::uint8_t> frame, const ParsedPacket& p,
                              std::uint16_t mtu, std::size_t index, std::span<std::uint8_t> out) {
    const Layout l = layout_of(frame, p, mtu);
    const std::size_t count = split_count(frame, p, mtu);
    if (index >= count) {
        return 0;
    }
    const Piece piece = piece_of(l, index);
    const std::size_t header = index == 0 ? l.first_header : l.later_header;
    const std::size_t frame_len = p.l3 + header + piece.length;
    if (frame_len > out.size()) {
        return 0;
    }
    std::uint8_t* d = out.data();
    std::memcpy(d, frame.data(), p.l3); // Ethernet
    std::uint8_t* ip = d + p.l3;
    if (index == 0) {
        std::memcpy(ip, frame.data() + p.l3, header);
    } else {
        later_piece_header(frame.subspan(p.l3, l.first_header), ip);
    }
    std::memcpy(ip + header, frame.data() + p.l4 + piece.offset, piece.length);

    store_be16(ip + 2, static_cast<std::uint16_t>(header + piece.length));
    const bool last = index + 1 == count;
    const std::size_t offset = p.fragment_offset + piece.offset;
    std::uint16_t flags = static_cast<std::uint16_t>(offset / 8);
    if (!last || p.more_fragments) {
        flags |= kIpFlagMoreFragments;
    }
    store_be16(ip + 6, flags);
    store_wire16(ip + ipv4_off::checksum, 0);
    store_wire16(ip + ipv4_off::checksum, checksum_full({ip, header}));
    return frame_len;
}

} // namespace ephemera
