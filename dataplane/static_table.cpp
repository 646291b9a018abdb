#include "ephemera/static_table.hpp"

#include <algorithm>

namespace ephemera {

namespace {

void sort_by_key(auto& entries) {
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
}

} // namespace

StaticTable::StaticTable(std::span<const StaticMapping> entries) {
    for (const StaticMapping& s : entries) {
        if (s.one_to_one()) {
            one_to_one_out_.push_back({key_of(s.external, Protocol{}, 0), {s.inside, 0}});
            one_to_one_in_.push_back({key_of(s.inside, Protocol{}, 0), {s.external, 0}});
            one_to_one_.push_back(s.external);
            one_to_one_filter_.set(filter_bit(s.external));
        } else {
            forwards_out_.push_back(
                {key_of(s.external, s.proto, s.external_port), {s.inside, s.inside_port}});
            forwards_in_.push_back(
                {key_of(s.inside, s.proto, s.inside_port), {s.external, s.external_port}});
            forward_ports_.set(s.external_port);
        }
        inside_hosts_.push_back(s.inside);
    }
    sort_by_key(forwards_out_);
    sort_by_key(forwards_in_);
    sort_by_key(one_to_one_out_);
    sort_by_key(one_to_one_in_);
    std::sort(inside_hosts_.begin(), inside_hosts_.end());
    inside_hosts_.erase(std::unique(inside_hosts_.begin(), inside_hosts_.end()),
                        inside_hosts_.end());
}

const StaticTable::Entry* StaticTable::find(const std::vector<Entry>& sorted, std::uint64_t key) {
    const auto it = std::lower_bound(sorted.begin(), sorted.end(), key,
                                     [](const Entry& e, std::uint64_t k) { return e.key < k; });
    return it != sorted.end() && it->key == key ? &*it : nullptr;
}

std::optional<StaticEndpoint> StaticTable::inside_of(Ipv4Addr external, Protocol proto,
                                                     std::uint16_t port) const {
    if (const Entry* e = find(forwards_out_, key_of(external, proto, port))) {
        return e->other;
    }
    if (const Entry* e = find(one_to_one_out_, key_of(external, Protocol{}, 0))) {
        return StaticEndpoint{e->other.address, port}; // 1:1 keeps the port
    }
    return std::nullopt;
}

std::optional<StaticEndpoint> StaticTable::external_of(Ipv4Addr inside, Protocol proto,
                                                       std::uint16_t port) const {
    if (const Entry* e = find(forwards_in_, key_of(inside, proto, port))) {
        return e->other;
    }
    if (const Entry* e = find(one_to_one_in_, key_of(inside, Protocol{}, 0))) {
        return StaticEndpoint{e->other.address, port};
    }
    return std::nullopt;
}

bool StaticTable::is_inside_host(Ipv4Addr inside) const {
    return std::binary_search(inside_hosts_.begin(), inside_hosts_.end(), inside);
}

} // namespace ephemera
