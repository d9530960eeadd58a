// What every catalogue (robust rules and attacks, models, data sets, topologies) shares: rows
// with a `name`, looked up and listed the same way.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2p {

// The row of that name, or nullptr.
template <class Row>
const Row* find_row(std::span<const Row> rows, std::string_view name) {
    for (const Row& r : rows)
        if (r.name == name) return &r;
    return nullptr;
}

// Every row's name, in table order.
template <class Row>
std::vector<std::string> row_names(std::span<const Row> rows) {
    std::vector<std::string> out;
    for (const Row& r : rows) out.emplace_back(r.name);
    return out;
}

// "a, b, c": the names for a message.
template <class Row>
std::string joined_names(std::span<const Row> rows) {
    std::string out;
    for (const Row& r : rows) out += (out.empty() ? "" : ", ") + std::string(r.name);
    return out;
}

}  // namespace p2p
