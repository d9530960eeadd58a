// A metrics file: one JSON object per line (JSONL), flushed after every row so that nothing
// is lost when a run stops early.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2p::node {

// One row under construction: keys in insertion order, numbers or strings.
class MetricsRow {
public:
    MetricsRow& add(std::string_view key, double value);
    MetricsRow& add(std::string_view key, long long value);
    MetricsRow& add(std::string_view key, std::string_view value);
    MetricsRow& add_null(std::string_view key);
    std::string json() const;

private:
    std::vector<std::pair<std::string, std::string>> fields_;  // key, encoded value
};

class MetricsWriter {
public:
    MetricsWriter() = default;  // writes nothing
    // Creates the parent folder if needed; IoError naming the path if the file cannot be opened.
    // `append`: keep the rows already there (a resumed node).
    explicit MetricsWriter(const std::string& path, bool append = false);
    // A resumed node: keeps the whole rows of rounds up to `last_round` (its checkpoint's) and
    // drops the rest, which the node is about to redo (the file is rewritten beside and renamed).
    MetricsWriter(const std::string& path, std::uint64_t last_round);
    ~MetricsWriter();
    MetricsWriter(const MetricsWriter&) = delete;
    MetricsWriter& operator=(const MetricsWriter&) = delete;

    void write(const MetricsRow& row);
    bool enabled() const { return file_ != nullptr; }
    const std::string& path() const { return path_; }

private:
    void open(bool append);
    std::string path_;
    std::FILE* file_ = nullptr;
};

}  // namespace p2p::node
