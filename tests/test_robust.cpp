#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "p2pnode/robust/robust.hpp"
#include "p2pnode/robust/catalogue.hpp"
#include "p2pnode/robust/gram.hpp"  // the float Gram kernels, checked directly below
#include "support.hpp"

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xnpy.hpp>

using namespace p2p::robust;

namespace {

using Mat = std::vector<std::vector<double>>;

std::vector<double> run(const std::string& rule, const Mat& rows, Params p = {}) {
    std::vector<std::span<const double>> views(rows.begin(), rows.end());
    std::vector<double> out(rows[0].size());
    make_aggregator<double>(rule, p)->aggregate(views, out);
    return out;
}

std::vector<float> run_f(const std::string& rule, const std::vector<std::vector<float>>& rows, Params p = {}) {
    std::vector<std::span<const float>> views(rows.begin(), rows.end());
    std::vector<float> out(rows[0].size());
    make_aggregator<float>(rule, p)->aggregate(views, out);
    return out;
}

Mat column(std::initializer_list<double> values) {
    Mat m;
    for (double v : values) m.push_back({v});
    return m;
}

// n float vectors of dimension d, entries drawn from N(0, 1).
std::vector<std::vector<float>> normal_rows(std::size_t n, std::size_t d, std::mt19937& rng) {
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::vector<std::vector<float>> rows(n, std::vector<float>(d));
    for (auto& r : rows)
        for (auto& x : r) x = noise(rng);
    return rows;
}

Params with_f(std::size_t f) {
    Params p;
    p.f = f;
    return p;
}

std::string error_of(const std::string& rule, const Mat& rows, Params p) {
    try {
        run(rule, rows, p);
    } catch (const RobustError& e) {
        return e.what();
    }
    return "(no error)";
}

double dist(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s);
}

// Parameters under which every rule can run on n = 11 inputs with f = 2.
Params robust_params() {
    Params p;
    p.f = 2;
    p.tau = 1.0;
    p.iterations = 20;
    return p;
}

// Rules that treat their inputs symmetrically (monna depends on which input is its own).
const std::vector<std::string> kSymmetric = {"mean", "median", "trimmed-mean", "meamed", "mean-of-medians",
                                             "geometric-median", "krum", "multi-krum", "bulyan", "mda",
                                             "smea", "centered-clipping", "cge", "caf"};

}  // namespace

TEST_CASE("hand-computed cases, one per rule") {
    auto one = [](const std::vector<double>& v) { return v.at(0); };
    CHECK(run("mean", {{1, 2, 3}, {3, 4, 5}}) == std::vector<double>{2, 3, 4});
    CHECK(one(run("median", column({1, 5, 3}))) == 3);
    CHECK(one(run("median", column({1, 2, 3, 10}))) == 2.5);
    CHECK(one(run("trimmed-mean", column({1, 2, 3, 100}), with_f(1))) == 2.5);
    CHECK(one(run("trimmed-mean", column({-50, 2, 3, 4, 100}), with_f(1))) == 3);
    // median 1.5; the 3 values closest to it are 0, 1, 2
    CHECK(one(run("meamed", column({0, 1, 2, 10}), with_f(1))) == doctest::Approx(1.0));
    CHECK(one(run("mean-of-medians", column({0, 1, 2, 10}), with_f(1))) == doctest::Approx(1.0));
    // geometric median: of collinear points, the middle one; of a square's corners, its centre
    CHECK(one(run("geometric-median", column({0, 1, 10}))) == doctest::Approx(1.0).epsilon(1e-6));
    auto gm = run("geometric-median", {{1, 1}, {-1, 1}, {1, -1}, {-1, -1}, {0.5, 0}, {-0.5, 0}});
    CHECK(gm[0] == doctest::Approx(0.0).epsilon(1e-6));
    CHECK(std::abs(gm[1]) < 1e-6);
    // krum: scores with 3 neighbours are 25.05, 24.03, 23.09, 72.05, ... -> 0.2
    CHECK(one(run("krum", column({0, 0.1, 0.2, 5, 10}), with_f(1))) == doctest::Approx(0.2));
    Params q3 = with_f(1);
    q3.q = 3;
    CHECK(one(run("multi-krum", column({0, 0.1, 0.2, 5, 10}), q3)) == doctest::Approx(0.1));
    // bulyan selects {0.2, 0.4, 0.3, 0.1, 0}, then averages the 3 values nearest their median
    CHECK(one(run("bulyan", column({0, 0.1, 0.2, 0.3, 0.4, 50, 100}), with_f(1))) == doctest::Approx(0.2));
    CHECK(one(run("mda", column({0, 0.1, 0.2, 5}), with_f(1))) == doctest::Approx(0.1));
    CHECK(one(run("monna", column({0, 0.1, 5, 0.3}), with_f(1))) == doctest::Approx(0.4 / 3));
    Params ref2 = with_f(1);
    ref2.reference = 2;  // the node's own vector is 5: its 3 nearest are 5, 0.3, 0.1
    CHECK(one(run("monna", column({0, 0.1, 5, 0.3}), ref2)) == doctest::Approx(5.4 / 3));
    CHECK(one(run("smea", column({0, 0.1, 0.2, 5}), with_f(1))) == doctest::Approx(0.1));
    Params cc;
    cc.tau = 1.0;
    cc.iterations = 1;  // start 2.5; clipped differences -1, -1, -1, +1; step -0.5
    CHECK(one(run("centered-clipping", column({0, 0, 0, 10}), cc)) == doctest::Approx(2.0));
    auto cge = run("cge", {{1, 0}, {0, 2}, {3, 3}, {0.5, 0.5}}, with_f(1));
    CHECK(cge[0] == doctest::Approx(0.5));
    CHECK(cge[1] == doctest::Approx(2.5 / 3));
    // caf: first pass gives the zeros weight 15/16 and 10 weight 0; then all agree
    CHECK(one(run("caf", column({0, 0, 0, 0, 10}), with_f(1))) == doctest::Approx(0.0).epsilon(1e-12));
}

TEST_CASE("centered-clipping starts from its previous aggregate") {
    Params cc;
    cc.tau = 1.0;
    cc.iterations = 1;
    auto rule = make_aggregator<double>("centered-clipping", cc);
    Mat rows = column({0, 0, 0, 10});
    std::vector<std::span<const double>> views(rows.begin(), rows.end());
    std::vector<double> out(1);
    rule->aggregate(views, out);
    CHECK(out[0] == doctest::Approx(2.0));
    rule->aggregate(views, out);  // from 2.0: -1, -1, -1, +1 -> 1.5
    CHECK(out[0] == doctest::Approx(1.5));
}

TEST_CASE("identical inputs give that input, for every rule") {
    const std::vector<double> v{0.5, -1.25, 3.0, 0.0, 7.5};
    Mat rows(11, v);
    Params p = robust_params();
    for (const auto& rule : aggregator_names()) {
        CAPTURE(rule);
        auto out = run(rule, rows, p);
        for (std::size_t j = 0; j < v.size(); ++j) CHECK(out[j] == doctest::Approx(v[j]).epsilon(1e-9));
    }
}

TEST_CASE("symmetric rules do not depend on the order of their inputs") {
    std::mt19937 rng(4);
    std::normal_distribution<double> noise(0.0, 1.0);
    Mat rows(11, std::vector<double>(6));
    for (auto& r : rows)
        for (auto& x : r) x = noise(rng);
    Mat shuffled = rows;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    Params p = robust_params();
    for (const auto& rule : kSymmetric) {
        CAPTURE(rule);
        auto a = run(rule, rows, p), b = run(rule, shuffled, p);
        for (std::size_t j = 0; j < a.size(); ++j) CHECK(a[j] == doctest::Approx(b[j]).epsilon(1e-9));
    }
}

TEST_CASE("f far outliers do not move robust rules; they move the mean") {
    std::mt19937 rng(8);
    std::normal_distribution<double> noise(0.0, 0.1);
    const std::size_t d = 20;
    std::vector<double> centre(d);
    for (std::size_t j = 0; j < d; ++j) centre[j] = static_cast<double>(j) / d;
    Mat rows;
    for (int i = 0; i < 9; ++i) {
        std::vector<double> r(centre);
        for (auto& x : r) x += noise(rng);
        rows.push_back(r);
    }
    for (int i = 0; i < 2; ++i) rows.push_back(std::vector<double>(d, 1000.0 * (i + 1)));
    Params p = robust_params();
    for (const auto& rule : aggregator_names()) {
        CAPTURE(rule);
        const double off = dist(run(rule, rows, p), centre);
        if (rule == "mean")
            CHECK(off > 100.0);
        else if (rule != "centered-clipping")
            CHECK(off < 0.5);
    }
    // Centered clipping is robust from its previous aggregate (how a node runs it, round after
    // round); its very first call starts from the mean, as the reference does, so it is
    // checked from a previous honest round.
    auto cc = make_aggregator<double>("centered-clipping", p);
    std::vector<double> out(d);
    Mat honest_only(rows.begin(), rows.begin() + 9);
    std::vector<std::span<const double>> hv(honest_only.begin(), honest_only.end()), av(rows.begin(), rows.end());
    cc->aggregate(hv, out);
    for (int round = 0; round < 3; ++round) {
        cc->aggregate(av, out);
        CHECK(dist(out, centre) < 0.5);
    }
}

TEST_CASE("bound violations name the rule, n, f and the bound") {
    Mat five = column({0, 1, 2, 3, 4});
    CHECK(error_of("krum", five, with_f(2)) == "krum needs n > 2f + 2, got n = 5, f = 2");
    CHECK(error_of("multi-krum", five, with_f(2)) == "multi-krum needs n > 2f + 2, got n = 5, f = 2");
    Mat ten(10, std::vector<double>{1.0});
    CHECK(error_of("bulyan", ten, with_f(2)) == "bulyan needs n >= 4f + 3, got n = 10, f = 2");
    for (const char* rule : {"median", "trimmed-mean", "meamed", "mean-of-medians", "mda", "smea", "caf"}) {
        CAPTURE(rule);
        CHECK(error_of(rule, five, with_f(3)) == std::string(rule) + " needs 2f < n, got n = 5, f = 3");
    }
    CHECK(error_of("cge", five, with_f(5)) == "cge needs f < n, got n = 5, f = 5");
    CHECK(error_of("monna", five, with_f(5)) == "monna needs f < n, got n = 5, f = 5");
    Params bad_ref = with_f(1);
    bad_ref.reference = 9;
    CHECK(error_of("monna", five, bad_ref) == "monna: reference 9 is not one of the 5 inputs");
    Params q = with_f(1);
    q.q = 6;
    CHECK(error_of("multi-krum", five, q) == "multi-krum needs 1 <= q <= n, got q = 6, n = 5");
    Mat sixty(60, std::vector<double>{1.0});
    CHECK(error_of("mda", sixty, with_f(29)).find("mda: C(n, f) = C(60, 29) = 1.14e+17 subsets is more than the search "
                                                  "bound 1e+08") == 0);
    CHECK(error_of("nope", five, {}).find("unknown aggregator 'nope' (known: mean, median") == 0);
    CHECK(error_of("mean", {{1, 2}, {3}}, {}) == "mean: vector 1 has dimension 1, expected 2");
}

TEST_CASE("NaN and infinity: the median family and the selection rules ignore up to f of them") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    Mat rows = {{1.0, 2.0}, {1.1, 2.1}, {0.9, 1.9}, {1.0, 2.05}, {1.05, 1.95}, {inf, inf}, {nan, -inf}};
    Params p = with_f(2);
    for (const char* rule : {"median", "trimmed-mean", "meamed", "mean-of-medians", "krum", "multi-krum", "mda",
                             "smea", "cge", "geometric-median", "centered-clipping", "caf"}) {
        CAPTURE(rule);
        auto out = run(rule, rows, p);
        CHECK(std::isfinite(out[0]));
        CHECK(std::isfinite(out[1]));
        CHECK(std::abs(out[0] - 1.0) < 0.2);
        CHECK(std::abs(out[1] - 2.0) < 0.2);
    }
    Params own = with_f(2);  // monna from an honest node's point of view
    auto m = run("monna", rows, own);
    CHECK(std::abs(m[0] - 1.0) < 0.2);
    auto mean = run("mean", rows, {});
    CHECK_FALSE(std::isfinite(mean[0]));
}

TEST_CASE("float64 inputs are computed in float64") {
    // Values that differ below float32's resolution.
    const double base = 1.0, eps = 1e-12;
    Mat rows = column({base, base + eps, base + 2 * eps, base + 3 * eps, base + 100 * eps});
    CHECK(run("median", rows)[0] == base + 2 * eps);
    CHECK(run("trimmed-mean", rows, with_f(1))[0] == doctest::Approx(base + 2 * eps).epsilon(1e-15));
    CHECK(run("krum", rows, with_f(1))[0] - base == doctest::Approx(eps).epsilon(1e-3));
}

TEST_CASE("median, trimmed-mean and meamed equal their definitions for every n up to 70") {
    // The sorting networks (Batcher's, cut down from the next power of two): every size; 200
    // coordinates span several register blocks of the finishers and a partial one.
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> small(-3, 3);  // many ties
    const std::size_t d = 200;
    for (std::size_t n = 1; n <= 70; ++n) {
        CAPTURE(n);
        Mat rows(n, std::vector<double>(d));
        for (auto& r : rows)
            for (auto& x : r) x = small(rng) + (rng() % 2 ? 0.25 : 0.0);
        const std::size_t f = (n - 1) / 2;
        const auto med = run("median", rows, with_f(0));
        const auto tm = run("trimmed-mean", rows, with_f(f));
        const auto mm = run("meamed", rows, with_f(f));
        for (std::size_t j = 0; j < d; ++j) {
            CAPTURE(j);
            std::vector<double> col;
            for (auto& r : rows) col.push_back(r[j]);
            std::sort(col.begin(), col.end());
            const double want_med = n % 2 ? col[n / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
            double sum = 0;
            for (std::size_t r = f; r < n - f; ++r) sum += col[r];
            // meamed: the n - f values closest to the median, ties to the smaller values
            auto closer = col;
            std::stable_sort(closer.begin(), closer.end(), [&](double a, double b) {
                return std::abs(a - want_med) < std::abs(b - want_med);
            });
            double near = 0;
            for (std::size_t r = 0; r < n - f; ++r) near += closer[r];
            REQUIRE(med[j] == want_med);
            REQUIRE(tm[j] == doctest::Approx(sum / double(n - 2 * f)).epsilon(1e-12));
            REQUIRE(mm[j] == doctest::Approx(near / double(n - f)).epsilon(1e-12));
        }
    }
}

TEST_CASE("float32 rules agree with float64 on the same data") {
    std::mt19937 rng(1);
    const auto rf = normal_rows(11, 64, rng);
    Mat rd;
    for (auto& r : rf) rd.emplace_back(r.begin(), r.end());
    Params p = robust_params();
    for (const auto& rule : aggregator_names()) {
        CAPTURE(rule);
        auto a = run_f(rule, rf, p);
        auto b = run(rule, rd, p);
        for (std::size_t j = 0; j < a.size(); ++j) CHECK(a[j] == doctest::Approx(b[j]).epsilon(1e-4).scale(1.0));
    }
}

// NNM by its definition, in double: row i -> mean of its n - f nearest (itself included;
// ties to the lower index); a non-finite vector is infinitely far from the others.
std::vector<std::vector<double>> naive_nnm(const std::vector<std::vector<float>>& rows, std::size_t f) {
    const std::size_t n = rows.size(), d = rows[0].size();
    auto finite = [&](std::size_t i) {
        return std::all_of(rows[i].begin(), rows[i].end(), [](float v) { return std::isfinite(v); });
    };
    std::vector<std::vector<double>> out(n, std::vector<double>(d, 0.0));
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<std::pair<double, std::size_t>> by;
        for (std::size_t j = 0; j < n; ++j) {
            double s = 0;
            for (std::size_t l = 0; l < d; ++l) s += (double(rows[i][l]) - rows[j][l]) * (double(rows[i][l]) - rows[j][l]);
            if (!finite(i) || !finite(j)) s = std::numeric_limits<double>::infinity();
            by.push_back({j == i ? -1.0 : s, j});
        }
        std::sort(by.begin(), by.end());
        for (std::size_t k = 0; k < n - f; ++k)
            for (std::size_t l = 0; l < d; ++l) out[i][l] += double(rows[by[k].second][l]) / double(n - f);
    }
    return out;
}

TEST_CASE("the float Gram matrix equals the double one, on every kernel") {
    // n = 1..24 take the in-place kernel (blocks of rows with their triangles, the last block
    // partial), 25..64 the packed 6 x 4 tiles, more the AMX tiles where this CPU has them (else,
    // and with AMX turned off, the packed tiles). d = 37 and 2085 leave tails past the vector
    // width and past a chunk. Rows of normal values, and rows whose magnitudes spread over 12
    // decades (the AMX digits are fixed point per row and chunk). Errors are measured against
    // |x_i| |x_j|, the scale of a Gram entry's rounding in float.
    std::mt19937 rng(5);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::uniform_real_distribution<float> decades(-6.0f, 6.0f);
    MESSAGE("AMX available: " << p2p::robust::amx_available());
    std::vector<std::size_t> sizes;
    for (std::size_t n = 1; n <= 30; ++n) sizes.push_back(n);
    sizes.insert(sizes.end(), {std::size_t(47), std::size_t(65), std::size_t(83)});
    for (bool amx : {true, false}) {
        p2p::robust::allow_amx(amx);
        for (int threads : {1, 2}) {
            set_threads(threads);
            for (bool wide : {false, true})
                for (std::size_t n : sizes)
                    for (std::size_t d : {std::size_t(37), std::size_t(2085)}) {
                        CAPTURE(amx);
                        CAPTURE(threads);
                        CAPTURE(wide);
                        CAPTURE(n);
                        CAPTURE(d);
                        std::vector<std::vector<float>> rf(n, std::vector<float>(d));
                        for (auto& r : rf)
                            for (auto& x : r)
                                x = wide ? std::copysign(std::pow(10.0f, decades(rng)), noise(rng)) : noise(rng);
                        std::vector<std::span<const float>> views(rf.begin(), rf.end());
                        const auto g = p2p::robust::gram<float>(views);
                        REQUIRE(g.size() == n * n);
                        std::vector<double> norm(n);
                        for (std::size_t i = 0; i < n; ++i) {
                            for (float x : rf[i]) norm[i] += double(x) * x;
                            norm[i] = std::sqrt(norm[i]);
                        }
                        for (std::size_t i = 0; i < n; ++i)
                            for (std::size_t j = 0; j < n; ++j) {
                                double want = 0;
                                for (std::size_t l = 0; l < d; ++l) want += double(rf[i][l]) * rf[j][l];
                                CAPTURE(i);
                                CAPTURE(j);
                                REQUIRE(std::abs(g[i * n + j] - want) <= 1e-6 * norm[i] * norm[j]);
                            }
                    }
        }
    }
    p2p::robust::allow_amx(true);
    set_threads(1);
}

TEST_CASE("the Gram matrix of inputs above 1e18 is the float kernels' one on every CPU") {
    // float products of such values overflow to inf; AMX leaves them to the float kernels
    std::mt19937 rng(6);
    const std::size_t n = 70;  // past the AMX threshold
    auto rows = normal_rows(n, 700, rng);
    rows[3][10] = 3e19f;
    rows[7][600] = -std::numeric_limits<float>::infinity();
    std::vector<std::span<const float>> views(rows.begin(), rows.end());
    const auto with = p2p::robust::gram<float>(views);
    p2p::robust::allow_amx(false);
    const auto without = p2p::robust::gram<float>(views);
    p2p::robust::allow_amx(true);
    CHECK(with == without);
    CHECK(std::isinf(with[3 * n + 3]));
}

TEST_CASE("float kernels (tiled Gram, threads, packed means) agree with the definitions") {
    std::mt19937 rng(3);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    // n across the tile edges and the packed path (n > 24); d across the vector width and a
    // Gram chunk (2048); rows a float past 64-byte alignment.
    for (int threads : {1, 2}) {
        set_threads(threads);
        for (std::size_t n : {std::size_t(3), std::size_t(7), std::size_t(26), std::size_t(41)})
            for (std::size_t d : {std::size_t(1), std::size_t(17), std::size_t(2085), std::size_t(5000)}) {
                CAPTURE(threads);
                CAPTURE(n);
                CAPTURE(d);
                std::vector<float> storage(n * d + 1);
                for (auto& x : storage) x = noise(rng);
                std::vector<std::vector<float>> rf;
                for (std::size_t i = 0; i < n; ++i) rf.emplace_back(storage.begin() + 1 + long(i * d), storage.begin() + 1 + long((i + 1) * d));
                std::vector<std::span<const float>> views;
                for (std::size_t i = 0; i < n; ++i) views.emplace_back(storage.data() + 1 + i * d, d);
                Mat rd;
                for (auto& r : rf) rd.emplace_back(r.begin(), r.end());
                const std::size_t f = (n - 3) / 2;
                Params p = with_f(f);
                for (const char* rule : {"krum", "multi-krum"}) {
                    CAPTURE(rule);
                    std::vector<float> a(d);
                    make_aggregator<float>(rule, p)->aggregate(views, a);
                    auto b = run(rule, rd, p);
                    for (std::size_t j = 0; j < d; ++j) REQUIRE(a[j] == doctest::Approx(b[j]).epsilon(1e-5).scale(1.0));
                }
                auto nnm = make_pre_aggregator<float>("nnm", p);
                auto got = nnm->apply(views);
                auto want = naive_nnm(rf, f);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = 0; j < d; ++j) REQUIRE(got[i][j] == doctest::Approx(want[i][j]).epsilon(1e-5).scale(1.0));
            }
    }
    SUBCASE("coordinate-wise rules give the same bits on 1 and 2 threads") {
        auto rf = normal_rows(11, 50000, rng);  // enough work for a second thread
        rf[3][7] = std::numeric_limits<float>::quiet_NaN();
        for (const char* rule : {"median", "trimmed-mean", "meamed", "mean-of-medians", "bulyan"}) {
            CAPTURE(rule);
            set_threads(1);
            const auto one = run_f(rule, rf, with_f(2));
            set_threads(2);
            const auto two = run_f(rule, rf, with_f(2));
            CHECK(one == two);
        }
    }
    SUBCASE("NNM with many exactly tied distances keeps the lower indices") {
        // small integer coordinates: the distances are exact in float and tie everywhere
        std::uniform_int_distribution<int> level(0, 2);
        for (int threads : {1, 2}) {
            set_threads(threads);
            const std::size_t n = 40, d = 8;
            std::vector<std::vector<float>> rf(n, std::vector<float>(d));
            for (auto& r : rf)
                for (auto& x : r) x = static_cast<float>(level(rng));
            rf[7] = rf[3];  // identical vectors too
            for (std::size_t f : {std::size_t(0), std::size_t(1), std::size_t(13), std::size_t(39)}) {
                CAPTURE(threads);
                CAPTURE(f);
                std::vector<std::span<const float>> views(rf.begin(), rf.end());
                auto nnm = make_pre_aggregator<float>("nnm", with_f(f));
                auto got = nnm->apply(views);
                auto want = naive_nnm(rf, f);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = 0; j < d; ++j) REQUIRE(got[i][j] == doctest::Approx(want[i][j]).epsilon(1e-6));
            }
        }
    }
    SUBCASE("an infinite vector changes only the NNM outputs that include it") {
        set_threads(2);
        const std::size_t n = 30, d = 300, f = 3;
        auto rf = normal_rows(n, d, rng);
        rf[5][100] = std::numeric_limits<float>::infinity();
        std::vector<std::span<const float>> views(rf.begin(), rf.end());
        auto nnm = make_pre_aggregator<float>("nnm", with_f(f));  // owns the outputs
        auto got = nnm->apply(views);
        auto want = naive_nnm(rf, f);
        for (std::size_t i = 0; i < n; ++i) {
            CAPTURE(i);
            for (std::size_t j = 0; j < d; ++j) {
                if (std::isfinite(want[i][j]))
                    REQUIRE(got[i][j] == doctest::Approx(want[i][j]).epsilon(1e-5).scale(1.0));
                else
                    REQUIRE(!std::isfinite(got[i][j]));
            }
        }
        CHECK(std::isfinite(got[0][100]));  // row 0 leaves the infinite row 5 out
        CHECK(!std::isfinite(got[5][100]));
    }
    set_threads(1);
}

TEST_CASE("rules called from several threads at once, each asking for 2 threads, give the single-thread results") {
    // Nodes run as threads of one process aggregate at the same time: one of them gets the
    // pool of helper threads, the others start their own.
    std::mt19937 rng(11);
    const auto rf = normal_rows(40, 30000, rng);
    const std::vector<const char*> rules = {"median", "krum", "meamed", "trimmed-mean"};
    set_threads(1);
    std::vector<std::vector<float>> want;
    for (const char* rule : rules) want.push_back(run_f(rule, rf, with_f(5)));
    std::vector<std::span<const float>> views(rf.begin(), rf.end());
    auto nnm_one = make_pre_aggregator<float>("nnm", with_f(5));
    auto one = nnm_one->apply(views);
    set_threads(2);
    std::vector<std::vector<std::vector<float>>> got(6);
    std::vector<std::vector<std::vector<float>>> nnm_got(6);
    std::vector<std::thread> callers;
    for (std::size_t c = 0; c < got.size(); ++c)
        callers.emplace_back([&, c] {
            for (int repeat = 0; repeat < 3; ++repeat) {
                got[c].clear();
                for (const char* rule : rules) got[c].push_back(run_f(rule, rf, with_f(5)));
                auto nnm = make_pre_aggregator<float>("nnm", with_f(5));
                auto out = nnm->apply(views);
                nnm_got[c].clear();
                for (auto row : out) nnm_got[c].emplace_back(row.begin(), row.end());
            }
        });
    for (auto& t : callers) t.join();
    set_threads(1);
    for (std::size_t c = 0; c < got.size(); ++c) {
        CAPTURE(c);
        for (std::size_t r = 0; r < rules.size(); ++r) {
            CAPTURE(rules[r]);
            // distance-based rules may differ in the last bits (partial sums added in another order)
            for (std::size_t j = 0; j < want[r].size(); ++j)
                REQUIRE(got[c][r][j] == doctest::Approx(want[r][j]).epsilon(1e-5).scale(1.0));
        }
        for (std::size_t i = 0; i < one.size(); ++i)
            for (std::size_t j = 0; j < one[i].size(); j += 97)
                REQUIRE(nnm_got[c][i][j] == doctest::Approx(one[i][j]).epsilon(1e-5).scale(1.0));
    }
}

TEST_CASE("pre-aggregators") {
    Params p;
    p.tau = 1.0;
    SUBCASE("clipping scales long vectors to the threshold") {
        auto clip = make_pre_aggregator<double>("clipping", p);
        Mat rows = {{3, 4}, {0.3, 0.4}};
        std::vector<std::span<const double>> v(rows.begin(), rows.end());
        auto out = clip->apply(v);
        CHECK(out[0][0] == doctest::Approx(0.6));
        CHECK(out[0][1] == doctest::Approx(0.8));
        CHECK(out[1][0] == doctest::Approx(0.3));
    }
    SUBCASE("bucketing averages seeded buckets of s") {
        p.bucket_size = 2;
        p.seed = 5;
        auto a = make_pre_aggregator<double>("bucketing", p), b = make_pre_aggregator<double>("bucketing", p);
        Mat rows = column({1, 2, 3, 4, 5});
        std::vector<std::span<const double>> v(rows.begin(), rows.end());
        auto out = a->apply(v);
        REQUIRE(out.size() == 3);
        double total = 0;
        for (auto& o : out) total += o[0];
        // two buckets of 2 and one of 1: their means sum to a value the partition determines,
        // the overall weighted sum is the input's
        CHECK((out[0][0] * 2 + out[1][0] * 2 + out[2][0]) == doctest::Approx(15.0));
        auto again = b->apply(v);
        for (std::size_t i = 0; i < 3; ++i) CHECK(again[i][0] == out[i][0]);  // same seed, same buckets
        (void)total;
    }
    SUBCASE("nnm replaces each vector by the mean of its n - f nearest") {
        p.f = 1;
        auto nnm = make_pre_aggregator<double>("nnm", p);
        Mat rows = column({0, 1, 2, 100});
        std::vector<std::span<const double>> v(rows.begin(), rows.end());
        auto out = nnm->apply(v);
        CHECK(out[0][0] == doctest::Approx(1.0));   // {0, 1, 2}
        CHECK(out[3][0] == doctest::Approx(103.0 / 3));  // nearest to 100: 100, 2, 1
    }
    SUBCASE("arc clips the k largest norms to the (k+1)-th") {
        p.f = 2;  // n = 5: k = floor(2 * 2/5 * 3) = 2
        auto arc = make_pre_aggregator<double>("arc", p);
        Mat rows = column({1, -2, 3, 40, -50});
        std::vector<std::span<const double>> v(rows.begin(), rows.end());
        auto out = arc->apply(v);
        CHECK(out[3][0] == doctest::Approx(3.0));
        CHECK(out[4][0] == doctest::Approx(-3.0));
        CHECK(out[2][0] == 3.0);
        CHECK(out[1][0] == -2.0);
    }
    SUBCASE("a pipeline runs pre-aggregators then the rule") {
        Params pp;
        pp.f = 1;
        pp.tau = 1.0;
        Pipeline<double> pipe({"clipping"}, "mean", pp);
        Mat rows = {{3, 4}, {0, 0}};
        std::vector<std::span<const double>> v(rows.begin(), rows.end());
        std::vector<double> out(2);
        pipe.aggregate(v, out);
        CHECK(out[0] == doctest::Approx(0.3));
        CHECK(out[1] == doctest::Approx(0.4));
    }
    CHECK_THROWS_WITH_AS(make_pre_aggregator<double>("zip", p), doctest::Contains("unknown pre-aggregator 'zip'"),
                         RobustError);
}

TEST_CASE("attacks forge what their definitions say") {
    Mat honest = {{1, 2}, {3, 6}};
    std::vector<std::span<const double>> h(honest.begin(), honest.end());
    std::vector<double> out(2);
    AttackParams ap;
    AttackInput<double> in;
    in.honest = h;

    SUBCASE("empire / ipm: scale x mean") {
        ap.scale = -1.0;
        make_attack<double>("empire", ap)->forge(in, out);
        CHECK(out == std::vector<double>{-2, -4});
        ap.scale = 0.5;
        make_attack<double>("ipm", ap)->forge(in, out);
        CHECK(out == std::vector<double>{1, 2});
    }
    SUBCASE("sign-flip: scale x own gradient") {
        std::vector<double> own{1, -1};
        in.own = own;
        ap.scale = -2.0;
        make_attack<double>("sign-flip", ap)->forge(in, out);
        CHECK(out == std::vector<double>{-2, 2});
    }
    SUBCASE("label-flip: the gradient the node computes on flipped labels") {
        in.flipped_gradient = [](std::span<double> g) { std::fill(g.begin(), g.end(), 9.0); };
        make_attack<double>("label-flip", ap)->forge(in, out);
        CHECK(out == std::vector<double>{9, 9});
        AttackInput<double> none;
        none.honest = h;
        CHECK_THROWS_AS(make_attack<double>("label-flip", ap)->forge(none, out), RobustError);
    }
    SUBCASE("alie: mu + z sigma with Baruch et al.'s z") {
        ap.n = 50;
        ap.f = 24;  // s = 26 - 24 = 2, z = Phi^-1(48/50)
        const double z = alie_z(50, 24);
        CHECK(z == doctest::Approx(1.7506860712521692).epsilon(1e-12));
        make_attack<double>("alie", ap)->forge(in, out);
        // mean (2, 4), unbiased std (sqrt(2), 2 sqrt(2))
        CHECK(out[0] == doctest::Approx(2 + z * std::sqrt(2.0)));
        CHECK(out[1] == doctest::Approx(4 + z * 2 * std::sqrt(2.0)));
        CHECK(normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-13));
        CHECK(normal_quantile(0.5) == doctest::Approx(0.0).scale(1.0).epsilon(1e-15));
        CHECK(alie_z(5, 1) == doctest::Approx(0.2533471031357997).epsilon(1e-12));  // s = 2: Phi^-1(3/5)
    }
    SUBCASE("gaussian: N(mu, sigma) per coordinate, seeded") {
        ap.mu = 3.0;
        ap.sigma = 2.0;
        std::vector<double> big(20000), again(20000);
        make_attack<double>("gaussian", ap)->forge(in, big);
        make_attack<double>("gaussian", ap)->forge(in, again);
        CHECK(big == again);
        double m = 0, s = 0;
        for (double v : big) m += v;
        m /= big.size();
        for (double v : big) s += (v - m) * (v - m);
        CHECK(m == doctest::Approx(3.0).epsilon(0.02));
        CHECK(std::sqrt(s / big.size()) == doctest::Approx(2.0).epsilon(0.03));
    }
    SUBCASE("inf and mimic") {
        make_attack<double>("inf", ap)->forge(in, out);
        CHECK(std::isinf(out[0]));
        CHECK(out[0] > 0);
        ap.target = 1;
        make_attack<double>("mimic", ap)->forge(in, out);
        CHECK(out == std::vector<double>{3, 6});
    }
    CHECK_THROWS_WITH_AS(make_attack<double>("rowhammer", ap), doctest::Contains("unknown attack 'rowhammer'"),
                         RobustError);
}

TEST_CASE("optimal attacks push the target rule at least as far as any fixed factor on their grid") {
    std::mt19937 rng(3);
    std::normal_distribution<double> noise(1.0, 0.5);
    Mat honest(8, std::vector<double>(10));
    for (auto& r : honest)
        for (auto& x : r) x = noise(rng);
    std::vector<std::span<const double>> h(honest.begin(), honest.end());
    for (const char* name : {"optimal-ipm", "optimal-alie"}) {
        CAPTURE(name);
        AttackParams ap;
        ap.n = 10;
        ap.f = 2;
        ap.rule = "mean";
        AttackInput<double> in;
        in.honest = h;
        std::vector<double> forged(10);
        make_attack<double>(name, ap)->forge(in, forged);
        // damage of a forged vector: distance of mean(honest + 2 copies) from the honest mean
        auto damage = [&](const std::vector<double>& v) {
            Mat all = honest;
            all.push_back(v);
            all.push_back(v);
            Mat hm = honest;
            return dist(run("mean", all), run("mean", hm));
        };
        std::vector<double> mu = run("mean", honest), at_lo(10);
        // For the mean, the damage grows with |factor|: the best is an end of [-10, 10].
        const bool ipm = std::string(name) == "optimal-ipm";
        for (std::size_t j = 0; j < 10; ++j) at_lo[j] = ipm ? -10.0 * mu[j] : mu[j];
        CHECK(damage(forged) >= damage(at_lo) - 1e-9);
        CHECK(damage(forged) > 0.5);
    }
}

TEST_CASE("catalogues: every row builds under its name, unknown names list every row") {
    for (const auto& e : p2p::robust::aggregators()) {
        CAPTURE(std::string(e.name));
        CHECK(p2p::robust::find_aggregator(e.name) == &e);
        CHECK(!e.description.empty());
        CHECK(p2p::robust::make_aggregator<float>(e.name, {})->name() == e.name);
        CHECK(p2p::robust::make_aggregator<double>(e.name, {})->name() == e.name);
    }
    for (const auto& e : p2p::robust::pre_aggregators()) {
        CAPTURE(std::string(e.name));
        CHECK(p2p::robust::make_pre_aggregator<float>(e.name, {})->name() == e.name);
    }
    CHECK(aggregator_names().size() == p2p::robust::aggregators().size());
    try {
        p2p::robust::make_aggregator<float>("no-such-rule", {});
        FAIL("an unknown rule was built");
    } catch (const RobustError& e) {
        const std::string what = e.what();
        CHECK(what.find("unknown aggregator 'no-such-rule'") != std::string::npos);
        for (const auto& row : p2p::robust::aggregators()) CHECK(what.find(std::string(row.name)) != std::string::npos);
    }
    CHECK_THROWS_AS(p2p::robust::attack("nope"), RobustError);
}

TEST_CASE("catalogues: each attack forges from exactly what its row says it needs") {
    const std::size_t d = 6;
    const std::vector<std::vector<float>> honest = {{1, 2, 3, 4, 5, 6}, {2, 3, 4, 5, 6, 7}};
    std::vector<std::span<const float>> views(honest.begin(), honest.end());
    const std::vector<float> own = {0.5f, -1, 2, 0, 1, 3};
    for (const auto& e : p2p::robust::attacks()) {
        CAPTURE(std::string(e.name));
        p2p::robust::AttackParams ap;
        ap.n = 5;
        ap.f = 1;
        auto attack = p2p::robust::make_attack<float>(e.name, ap);
        CHECK(attack->name() == e.name);
        p2p::robust::AttackInput<float> in;
        if (e.needs.honest_inputs) in.honest = views;
        if (e.needs.own_gradient) {
            in.own = own;
            in.flipped_gradient = [&](std::span<float> out) { std::copy(own.begin(), own.end(), out.begin()); };
        }
        std::vector<float> out(d);
        CHECK_NOTHROW(attack->forge(in, out));
        // An attack that says it needs the honest vectors refuses to forge without them.
        if (e.needs.honest_inputs) {
            p2p::robust::AttackInput<float> empty;
            if (e.needs.own_gradient) empty.own = own;
            CHECK_THROWS_AS(attack->forge(empty, out), RobustError);
        }
    }
}

// Issue 15: caf returns the weighted mean of the iteration whose top eigenvalue was smallest,
// checked against a NumPy implementation of the definition (tests/caf_numpy.py, exact
// eigenpairs) on random inputs with and without outliers.
TEST_CASE("caf matches its definition, in NumPy, on random inputs") {
    p2p::test::TempDir dir;
    std::mt19937 rng(21);
    std::normal_distribution<double> noise(0.0, 1.0);
    struct Case {
        std::size_t n, d, f;
        double shift;  // added to the last f rows: outliers
    };
    const Case cases[] = {{7, 5, 2, 0.0}, {7, 5, 2, 8.0}, {11, 20, 3, 0.0}, {11, 20, 3, 30.0}, {5, 3, 1, 0.0},
                          {9, 40, 4, 3.0}, {6, 2, 0, 0.0}};
    double largest_change = 0;
    for (const auto& c : cases) {
        CAPTURE(c.n);
        CAPTURE(c.f);
        CAPTURE(c.shift);
        Mat rows(c.n, std::vector<double>(c.d));
        xt::xarray<double> x = xt::zeros<double>({c.n, c.d});
        for (std::size_t i = 0; i < c.n; ++i)
            for (std::size_t j = 0; j < c.d; ++j) {
                rows[i][j] = noise(rng) + (i + c.f >= c.n ? c.shift : 0.0);
                x(i, j) = rows[i][j];
            }
        const std::string in = (dir.path() / "x.npy").string(), out = (dir.path() / "caf.npy").string();
        xt::dump_npy(in, x);
        const std::string script = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/tests/caf_numpy.py";
        auto r = p2p::test::run_program("/usr/bin/python3", {script, in, std::to_string(c.f), out});
        REQUIRE_MESSAGE(r.status == 0, r.err);
        const auto want = xt::load_npy<double>(out);
        const auto got = run("caf", rows, with_f(c.f));
        REQUIRE(want.size() == got.size());
        double err = 0, scale = 0;
        for (std::size_t j = 0; j < c.d; ++j) {
            err = std::max(err, std::abs(got[j] - want(j)));
            scale = std::max(scale, std::abs(want(j)));
        }
        CHECK(err <= 1e-9 * std::max(1.0, scale));
        largest_change = std::max(largest_change, err);
    }
    MESSAGE("largest difference to NumPy's caf: " << largest_change);
}
