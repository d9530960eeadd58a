#include "p2pnode/node/metrics.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"

namespace p2p::node {

namespace {

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20)
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            else
                out += c;
        }
    }
    return out + "\"";
}

}  // namespace

MetricsRow& MetricsRow::add(std::string_view key, double value) {
    // JSON has no NaN or infinity: a diverged loss is recorded as null, not as invalid JSON.
    fields_.emplace_back(std::string(key), std::isfinite(value) ? fmt::format("{}", value) : "null");
    return *this;
}

MetricsRow& MetricsRow::add(std::string_view key, long long value) {
    fields_.emplace_back(std::string(key), fmt::format("{}", value));
    return *this;
}

MetricsRow& MetricsRow::add(std::string_view key, std::string_view value) {
    fields_.emplace_back(std::string(key), quote(value));
    return *this;
}

MetricsRow& MetricsRow::add_null(std::string_view key) {
    fields_.emplace_back(std::string(key), "null");
    return *this;
}

std::string MetricsRow::json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
        if (i) out += ", ";
        out += quote(fields_[i].first) + ": " + fields_[i].second;
    }
    return out + "}";
}

MetricsWriter::MetricsWriter(const std::string& path, bool append) : path_(path) { open(append); }

void MetricsWriter::open(bool append) {
    std::filesystem::path p(path_);
    std::error_code ec;
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
    file_ = std::fopen(path_.c_str(), append ? "a" : "w");
    if (!file_) throw IoError(fmt::format("{}: cannot write the metrics file: {}", path_, std::strerror(errno)));
}

namespace {

// The round of a row written by a node ({"round": N, ...}), or nullopt for anything else (a
// line cut short by a kill).
std::optional<std::uint64_t> round_of(const std::string& line) {
    constexpr std::string_view prefix = "{\"round\": ";
    if (line.rfind(prefix, 0) != 0 || line.back() != '}') return std::nullopt;
    std::uint64_t v = 0;
    std::size_t i = prefix.size();
    if (i >= line.size() || line[i] < '0' || line[i] > '9') return std::nullopt;
    for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
        if (v > UINT64_MAX / 10 - 1) return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
    }
    return v;
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, std::uint64_t last_round) : path_(path) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        const std::string tmp = path + ".tmp";
        {
            std::ifstream in(path);
            std::ofstream out(tmp, std::ios::trunc);
            for (std::string line; std::getline(in, line);) {
                const auto round = round_of(line);
                if (round && *round <= last_round) out << line << '\n';
            }
            out.flush();
            if (!in.eof() || !out)
                throw IoError(fmt::format("{}: cannot rewrite the metrics file for the resumed run", path));
        }
        std::filesystem::rename(tmp, path);
    }
    open(true);
}

MetricsWriter::~MetricsWriter() {
    if (file_) std::fclose(file_);
}

void MetricsWriter::write(const MetricsRow& row) {
    if (!file_) return;
    std::string line = row.json();
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
        throw IoError(fmt::format("{}: cannot write the metrics file: {}", path_, std::strerror(errno)));
}

}  // namespace p2p::node
