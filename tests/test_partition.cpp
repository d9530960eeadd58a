// The partition catalogue: every split is disjoint, seeded, and does what its name says.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/data/partition.hpp"

using namespace p2p::data;

namespace {

// 6,000 labels, 600 of each of 10 classes, in a seeded random order (as MNIST's are).
std::vector<std::uint8_t> labels_of(std::size_t n = 6000, std::size_t classes = 10) {
    std::vector<std::uint8_t> l(n);
    for (std::size_t i = 0; i < n; ++i) l[i] = static_cast<std::uint8_t>(i % classes);
    std::mt19937_64 rng(7);
    for (std::size_t i = n; i > 1; --i) std::swap(l[i - 1], l[rng() % i]);
    return l;
}

PartitionSpec spec_of(const std::string& name, std::uint64_t seed = 0) {
    PartitionSpec s;
    s.name = name;
    s.seed = seed;
    return s;
}

std::size_t total(const Shards& s) {
    std::size_t n = 0;
    for (const auto& x : s) n += x.size();
    return n;
}

bool disjoint(const Shards& s) {
    std::set<std::uint32_t> seen;
    for (const auto& x : s)
        for (auto i : x)
            if (!seen.insert(i).second) return false;
    return true;
}

// Per class, the largest share of it that one node holds (1: each class on one node).
double mean_concentration(const std::vector<std::vector<std::size_t>>& counts) {
    const std::size_t classes = counts[0].size();
    double sum = 0;
    for (std::size_t c = 0; c < classes; ++c) {
        std::size_t all = 0, top = 0;
        for (const auto& row : counts) all += row[c], top = std::max(top, row[c]);
        sum += all ? static_cast<double>(top) / static_cast<double>(all) : 0;
    }
    return sum / static_cast<double>(classes);
}

// The largest total-variation distance between a node's class mix and the global one.
double worst_distance(const std::vector<std::vector<std::size_t>>& counts) {
    const std::size_t classes = counts[0].size();
    double worst = 0;
    for (const auto& row : counts) {
        const double n = static_cast<double>(std::accumulate(row.begin(), row.end(), std::size_t{0}));
        double tv = 0;
        for (std::size_t c = 0; c < classes; ++c) tv += std::abs(static_cast<double>(row[c]) / n - 1.0 / classes);
        worst = std::max(worst, tv / 2);
    }
    return worst;
}

}  // namespace

TEST_CASE("every partition: disjoint shards, the same seed the same split, counts that add up") {
    const auto labels = labels_of();
    for (const auto& e : partitions()) {
        CAPTURE(e.name);
        auto spec = spec_of(std::string(e.name), 3);
        spec.batch = 16;
        const Shards a = partition(labels, 10, 5, spec), b = partition(labels, 10, 5, spec);
        CHECK(a == b);
        CHECK(a.size() == 5);
        CHECK(disjoint(a));
        const auto counts = class_counts(a, labels, 10);
        std::size_t counted = 0;
        for (const auto& row : counts) counted += std::accumulate(row.begin(), row.end(), std::size_t{0});
        CHECK(counted == total(a));
        // Every sample is used, but by `classes` when 5 nodes x 2 classes < 10 classes (here 5 x 2 = 10).
        CHECK(total(a) == labels.size());
        for (const auto& s : a) CHECK(std::is_sorted(s.begin(), s.end()));
    }
}

TEST_CASE("strided is the reference's split; iid is a seeded equal split") {
    const auto labels = labels_of(1003);
    const Shards s = partition(labels, 10, 4, spec_of("strided"));
    for (std::size_t h = 0; h < 4; ++h) CHECK(s[h] == shard_indices(labels.size(), h, 4));
    const Shards a = partition(labels, 10, 4, spec_of("iid", 1)), b = partition(labels, 10, 4, spec_of("iid", 2));
    CHECK(a != b);
    CHECK(a[0].size() == 251);  // 1003 = 251 + 3 x 250, NumPy's array_split
    CHECK(a[3].size() == 250);
    CHECK(worst_distance(class_counts(a, labels, 10)) < 0.1);
}

TEST_CASE("dirichlet: alpha to 0 gives nodes a few classes each, alpha large tends to the global mix") {
    const auto labels = labels_of();
    auto spec = spec_of("dirichlet", 5);
    spec.batch = 16;
    spec.alpha = 0.01;
    const auto sharp = class_counts(partition(labels, 10, 4, spec), labels, 10);
    CHECK(mean_concentration(sharp) > 0.95);
    for (const auto& row : sharp) {  // each node: the classes it holds are mostly whole
        std::size_t kinds = 0;
        for (auto c : row) kinds += c > 60;  // more than a tenth of a class
        CHECK(kinds <= 7);
    }
    spec.alpha = 1000;
    const auto flat = class_counts(partition(labels, 10, 4, spec), labels, 10);
    CHECK(mean_concentration(flat) < 0.3);
    CHECK(worst_distance(flat) < 0.05);
    // Another data seed, another split; the same, the same.
    auto other = spec;
    other.seed = 6;
    CHECK(partition(labels, 10, 4, spec) != partition(labels, 10, 4, other));
}

TEST_CASE("dirichlet: min size is met by re-drawing, or refused with the numbers") {
    const auto labels = labels_of();
    auto spec = spec_of("dirichlet", 1);
    spec.alpha = 0.05;
    spec.min_size = 700;
    for (const auto& s : partition(labels, 10, 5, spec)) CHECK(s.size() >= 700);
    spec.min_size = 1300;  // 5 x 1300 > 6000
    CHECK_THROWS_WITH_AS(partition(labels, 10, 5, spec), doctest::Contains("5 nodes cannot each get 1300 of 6000"),
                         std::invalid_argument);
    spec.min_size = 1150;  // possible in principle, never drawn with alpha 0.05
    CHECK_THROWS_WITH_AS(partition(labels, 10, 5, spec), doctest::Contains("after 1000 draws"),
                         std::invalid_argument);
}

TEST_CASE("classes: exactly K classes per node, a class's samples split among its holders") {
    const auto labels = labels_of();
    for (std::size_t k : {1, 2, 3, 10}) {
        CAPTURE(k);
        auto spec = spec_of("classes", 9);
        spec.classes_per_node = k;
        const Shards s = partition(labels, 10, 7, spec);
        CHECK(disjoint(s));
        for (const auto& row : class_counts(s, labels, 10))
            CHECK(std::count_if(row.begin(), row.end(), [](std::size_t c) { return c > 0; }) ==
                  static_cast<long>(k));
    }
    auto spec = spec_of("classes");
    spec.classes_per_node = 11;
    CHECK_THROWS_WITH_AS(partition(labels, 10, 3, spec), doctest::Contains("must be in 1..10"), std::invalid_argument);
    spec.classes_per_node = 2;  // 3 nodes x 2 classes: 4 classes go to nobody
    CHECK(total(partition(labels, 10, 3, spec)) == 3600);
}

TEST_CASE("extreme and gamma: label blocks, gamma 1 is IID, gamma 0 is extreme") {
    const auto labels = labels_of();
    const Shards x = partition(labels, 10, 5, spec_of("extreme"));
    for (const auto& row : class_counts(x, labels, 10))  // 1,200 samples a node: two whole classes
        CHECK(std::count(row.begin(), row.end(), std::size_t{600}) == 2);
    auto g = spec_of("gamma", 4);
    g.gamma = 0;
    CHECK(partition(labels, 10, 5, g) == x);
    g.gamma = 1;
    CHECK(worst_distance(class_counts(partition(labels, 10, 5, g), labels, 10)) < 0.1);
    g.gamma = 0.5;  // half IID: every node holds every class, and is skewed
    const auto half = class_counts(partition(labels, 10, 5, g), labels, 10);
    for (const auto& row : half) CHECK(std::count(row.begin(), row.end(), std::size_t{0}) == 0);
    CHECK(worst_distance(half) > 0.3);
}

TEST_CASE("an unknown partition or no nodes is refused") {
    const auto labels = labels_of(100);
    CHECK_THROWS_WITH_AS(partition(labels, 10, 2, spec_of("zipf")), doctest::Contains("unknown partition 'zipf'"),
                         std::invalid_argument);
    CHECK_THROWS_AS(partition(labels, 10, 0, spec_of("iid")), std::invalid_argument);
}
