#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common.hpp"
#include "factories.hpp"

namespace p2p::robust {

using detail::kInf;

namespace {

}  // namespace

template <class T>
void Aggregator<T>::check(std::size_t n) const {
    if (n == 0) throw RobustError(fmt::format("{}: no input vectors", name_));
}

template <class T>
void Aggregator<T>::refuse(std::size_t n, const std::string& bound) const {
    throw RobustError(fmt::format("{} needs {}, got n = {}, f = {}", name_, bound, n, p_.f));
}

template <class T>
void Aggregator<T>::aggregate(Vectors<T> in, std::span<T> out) {
    detail::check_dims<T>(name_, in, out.size());
    check(in.size());
    run(in, out);
}

namespace {

// ---------------------------------------------------------------- coordinate-wise

template <class T>
class Mean final : public Aggregator<T> {
public:
    explicit Mean(const Params& p) : Aggregator<T>("mean", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        std::vector<std::size_t> all(in.size());
        std::iota(all.begin(), all.end(), 0);
        detail::mean_of(in, all, out);
    }
};

// Rules whose bound is 2f < n.
template <class T>
class Majority : public Aggregator<T> {
public:
    using Aggregator<T>::Aggregator;
    void check(std::size_t n) const override {
        Aggregator<T>::check(n);
        if (2 * this->p_.f >= n) this->refuse(n, "2f < n");
    }
};

template <class T>
class Median final : public Majority<T> {
public:
    explicit Median(const Params& p) : Majority<T>("median", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), mid = n / 2;
        detail::per_coordinate_sorted(in, out, [&](const T* b, std::size_t lanes, std::size_t len, T* o) {
            for (std::size_t l = 0; l < len; ++l)
                o[l] = n % 2 ? b[mid * lanes + l] : (b[(mid - 1) * lanes + l] + b[mid * lanes + l]) / T(2);
        });
    }
};

template <class T>
class TrimmedMean final : public Majority<T> {
public:
    explicit TrimmedMean(const Params& p) : Majority<T>("trimmed-mean", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t f = this->p_.f, n = in.size();
        detail::per_coordinate_sorted(in, out, [&](const T* b, std::size_t lanes, std::size_t len, T* o) {
            detail::sum_rows(b, lanes, len, f, n - f, T(1) / static_cast<T>(n - 2 * f), o);
        });
    }
};

// Per coordinate: the mean of the n - f values closest to the median. ByzFL calls it Meamed;
// the reference tool calls the same rule mean-of-medians.
template <class T>
class Meamed final : public Majority<T> {
public:
    Meamed(std::string name, const Params& p) : Majority<T>(std::move(name), p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), k = n - this->p_.f;
        detail::per_coordinate_sorted(in, out, [&](const T* b, std::size_t lanes, std::size_t len, T* o) {
            detail::mean_around_median(b, n, k, lanes, len, o);
        });
    }
};

// ---------------------------------------------------------------- distance-based selection

// score_i = sum of the n - f - 1 smallest squared distances from i to the others.
std::vector<double> krum_scores(const std::vector<double>& d2, const std::vector<std::size_t>& set, std::size_t f) {
    const std::size_t n = set.size();
    const std::size_t neighbours = n > f + 1 ? n - f - 1 : 0;
    std::vector<double> scores(n), row;
    const std::size_t total = static_cast<std::size_t>(std::sqrt(static_cast<double>(d2.size())) + 0.5);
    for (std::size_t a = 0; a < n; ++a) {
        row.clear();
        for (std::size_t b = 0; b < n; ++b)
            if (b != a) row.push_back(d2[set[a] * total + set[b]]);
        std::nth_element(row.begin(), row.begin() + std::min(neighbours, row.size()), row.end());
        double s = 0;
        for (std::size_t k = 0; k < neighbours; ++k) s += row[k];
        scores[a] = std::isfinite(s) ? s : kInf;
    }
    return scores;
}

template <class T>
class Krum final : public Aggregator<T> {
public:
    Krum(bool multi, const Params& p) : Aggregator<T>(multi ? "multi-krum" : "krum", p), multi_(multi) {}
    void check(std::size_t n) const override {
        Aggregator<T>::check(n);
        if (n <= 2 * this->p_.f + 2) this->refuse(n, "n > 2f + 2");
        if (multi_ && this->p_.q && (*this->p_.q < 1 || *this->p_.q > n))
            throw RobustError(fmt::format("multi-krum needs 1 <= q <= n, got q = {}, n = {}", *this->p_.q, n));
    }

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size();
        std::vector<std::size_t> all(n);
        std::iota(all.begin(), all.end(), 0);
        const auto scores = krum_scores(detail::pairwise_d2(in), all, this->p_.f);
        const std::size_t q = multi_ ? this->p_.q.value_or(n - this->p_.f) : 1;
        detail::mean_of(in, detail::smallest(scores, q), out);
    }

private:
    bool multi_;
};

template <class T>
class Bulyan final : public Aggregator<T> {
public:
    explicit Bulyan(const Params& p) : Aggregator<T>("bulyan", p) {}
    void check(std::size_t n) const override {
        Aggregator<T>::check(n);
        if (n < 4 * this->p_.f + 3) this->refuse(n, "n >= 4f + 3");
    }

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), f = this->p_.f;
        const auto d2 = detail::pairwise_d2(in);
        // Stage 1: theta = n - 2f vectors chosen one at a time by Krum among those left.
        std::vector<std::size_t> left(n), chosen;
        std::iota(left.begin(), left.end(), 0);
        while (chosen.size() < n - 2 * f) {
            const auto scores = krum_scores(d2, left, f);
            const std::size_t winner = detail::smallest(scores, 1)[0];
            chosen.push_back(left[winner]);
            left.erase(left.begin() + static_cast<long>(winner));
        }
        // Stage 2: per coordinate, the mean of the beta = theta - 2f values closest to the median.
        std::vector<std::span<const T>> picked;
        for (std::size_t i : chosen) picked.push_back(in[i]);
        const std::size_t theta = chosen.size(), beta = theta - 2 * f;
        detail::per_coordinate_sorted<T>(picked, out, [&](const T* b, std::size_t lanes, std::size_t len, T* o) {
            detail::mean_around_median(b, theta, beta, lanes, len, o);
        });
    }
};

// Subset searches refuse when C(n, f) is beyond p.max_subsets.
template <class T>
class SubsetSearch : public Majority<T> {
public:
    using Majority<T>::Majority;
    void check(std::size_t n) const override {
        Majority<T>::check(n);
        const double subsets = detail::binomial(n, this->p_.f);
        if (subsets > this->p_.max_subsets)
            throw RobustError(fmt::format("{}: C(n, f) = C({}, {}) = {:.3g} subsets is more than the search bound "
                                          "{:.3g}; lower f or use another rule",
                                          this->name_, n, this->p_.f, subsets, this->p_.max_subsets));
    }
};

// Minimum-diameter averaging: the mean of the n - f vectors whose largest pairwise distance is
// smallest. Exact: a depth-first search over subsets that prunes any partial subset already as
// wide as the best found.
template <class T>
class Mda final : public SubsetSearch<T> {
public:
    explicit Mda(const Params& p) : SubsetSearch<T>("mda", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        n_ = in.size();
        m_ = n_ - this->p_.f;
        d2_ = detail::pairwise_d2(in);
        // Start from a greedy subset (the m nearest to vector 0's nearest-neighbour set) so the
        // search prunes from the start.
        best_ = kInf;
        for (std::size_t seed = 0; seed < n_; ++seed) {
            std::vector<double> row(d2_.begin() + static_cast<long>(seed * n_), d2_.begin() + static_cast<long>((seed + 1) * n_));
            auto set = detail::smallest(row, m_);
            std::sort(set.begin(), set.end());
            const double diam = diameter(set);
            if (diam < best_) best_ = diam, best_set_ = set;
        }
        std::vector<std::size_t> cur;
        search(cur, 0, 0.0);
        detail::mean_of(in, best_set_, out);
    }

private:
    double diameter(const std::vector<std::size_t>& s) const {
        double w = 0;
        for (std::size_t a = 0; a < s.size(); ++a)
            for (std::size_t b = a + 1; b < s.size(); ++b) w = std::max(w, d2_[s[a] * n_ + s[b]]);
        return w;
    }
    void search(std::vector<std::size_t>& cur, std::size_t next, double width) {
        if (cur.size() == m_) {
            if (width < best_) best_ = width, best_set_ = cur;
            return;
        }
        for (std::size_t v = next; v + (m_ - cur.size()) <= n_; ++v) {
            double w = width;
            for (std::size_t u : cur) w = std::max(w, d2_[u * n_ + v]);
            if (w >= best_) continue;  // cannot beat the best subset (ties keep the earlier one)
            cur.push_back(v);
            search(cur, v + 1, w);
            cur.pop_back();
        }
    }
    std::size_t n_ = 0, m_ = 0;
    std::vector<double> d2_;
    double best_ = kInf;
    std::vector<std::size_t> best_set_;
};

// Smallest maximum eigenvalue averaging: the mean of the n - f vectors whose empirical
// covariance has the smallest largest eigenvalue (computed on the subset's centred Gram matrix).
template <class T>
class Smea final : public SubsetSearch<T> {
public:
    explicit Smea(const Params& p) : SubsetSearch<T>("smea", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), m = n - this->p_.f;
        const auto g = detail::gram(in);
        std::vector<std::size_t> cur(m);
        std::iota(cur.begin(), cur.end(), 0);
        double best = kInf;
        std::vector<std::size_t> best_set = cur;
        std::vector<double> sub(m * m), rowmean(m);
        while (true) {
            // centred Gram: Gc = G_S - row means - column means + grand mean
            double grand = 0;
            for (std::size_t a = 0; a < m; ++a) {
                double s = 0;
                for (std::size_t b = 0; b < m; ++b) s += g[cur[a] * n + cur[b]];
                rowmean[a] = s / static_cast<double>(m);
                grand += rowmean[a];
            }
            grand /= static_cast<double>(m);
            bool finite = true;
            for (std::size_t a = 0; a < m; ++a)
                for (std::size_t b = 0; b < m; ++b) {
                    const double v = (g[cur[a] * n + cur[b]] - rowmean[a] - rowmean[b] + grand) / static_cast<double>(m);
                    finite = finite && std::isfinite(v);
                    sub[a * m + b] = v;
                }
            const double lambda = finite ? detail::max_eigen(sub, m) : kInf;
            if (lambda < best) best = lambda, best_set = cur;
            // next combination in lexicographic order
            std::size_t i = m;
            while (i > 0 && cur[i - 1] == n - m + (i - 1)) --i;
            if (i == 0) break;
            ++cur[i - 1];
            for (std::size_t j = i; j < m; ++j) cur[j] = cur[j - 1] + 1;
        }
        detail::mean_of(in, best_set, out);
    }
};

// Mean of the n - f nearest neighbours (itself included) of the node's own vector.
template <class T>
class Monna final : public Aggregator<T> {
public:
    explicit Monna(const Params& p) : Aggregator<T>("monna", p) {}
    void check(std::size_t n) const override {
        Aggregator<T>::check(n);
        if (this->p_.f >= n) this->refuse(n, "f < n");
        if (this->p_.reference >= n)
            throw RobustError(fmt::format("monna: reference {} is not one of the {} inputs", this->p_.reference, n));
    }

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), r = this->p_.reference;
        std::vector<double> dist(n);
        const auto& ref = in[r];
        for (std::size_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::size_t j = 0; j < ref.size(); ++j) {
                const double dv = static_cast<double>(in[i][j]) - ref[j];
                s += dv * dv;
            }
            dist[i] = i == r ? -1.0 : (std::isfinite(s) ? s : kInf);  // itself first
        }
        detail::mean_of(in, detail::smallest(dist, n - this->p_.f), out);
    }
};

// Mean of the n - f vectors with the smallest norms (comparative gradient elimination).
template <class T>
class Cge final : public Aggregator<T> {
public:
    explicit Cge(const Params& p) : Aggregator<T>("cge", p) {}
    void check(std::size_t n) const override {
        Aggregator<T>::check(n);
        if (this->p_.f >= n) this->refuse(n, "f < n");
    }

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        std::vector<double> norms(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) norms[i] = detail::norm2(in[i]);
        detail::mean_of(in, detail::smallest(norms, in.size() - this->p_.f), out);
    }
};

// ---------------------------------------------------------------- iterative

// Zeroes the Gram rows and columns of non-finite vectors (they take no part) and reports which.
std::vector<bool> finite_rows(std::vector<double>& g, std::size_t n) {
    std::vector<bool> ok(n);
    for (std::size_t i = 0; i < n; ++i) ok[i] = std::isfinite(g[i * n + i]);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (!ok[i] || !ok[j]) g[i * n + j] = 0.0;
    return ok;
}

// a^T G b
double quad(const std::vector<double>& g, const std::vector<double>& a, const std::vector<double>& b) {
    const std::size_t n = a.size();
    double s = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (a[i] != 0)
            for (std::size_t j = 0; j < n; ++j) s += a[i] * g[i * n + j] * b[j];
    return s;
}

// Smoothed Weiszfeld iterations from the coordinate-wise median. After the first step the
// iterate is a weighted mean of the inputs, so the iterations run on the n x n Gram matrix
// (distances |z - x_i|^2 = a^T G a - 2 (G a)_i + G_ii for z = sum a_k x_k) and the data are
// read only to build G, to start from the median, and to form the result.
template <class T>
class GeometricMedian final : public Aggregator<T> {
public:
    explicit GeometricMedian(const Params& p) : Aggregator<T>("geometric-median", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size();
        const std::size_t mid = n / 2;
        detail::per_coordinate_sorted(in, out, [&](const T* b, std::size_t lanes, std::size_t len, T* o) {
            for (std::size_t l = 0; l < len; ++l)
                o[l] = n % 2 ? b[mid * lanes + l] : (b[(mid - 1) * lanes + l] + b[mid * lanes + l]) / T(2);
        });
        std::vector<double> g = detail::gram(in);
        const auto ok = finite_rows(g, n);
        std::vector<double> z0(out.begin(), out.end());
        double z0z0 = 0;
        for (double v : z0) z0z0 += v * v;
        std::vector<double> c = detail::dots_with(in, z0);  // <x_i, z0>

        std::vector<double> alpha(n, 0.0), next(n), galpha(n, 0.0);
        bool at_start = true;  // z is still z0 (not a combination of inputs)
        const std::size_t iterations = this->p_.iterations ? this->p_.iterations : 100;
        for (std::size_t it = 0; it < iterations; ++it) {
            double zz = at_start ? z0z0 : quad(g, alpha, alpha), wsum = 0;
            for (std::size_t i = 0; i < n; ++i) {
                next[i] = 0;
                if (!ok[i]) continue;
                const double cross = at_start ? c[i] : galpha[i];
                const double dist2 = std::max(0.0, g[i * n + i] - 2 * cross + zz);
                next[i] = 1.0 / std::max(this->p_.nu, std::sqrt(dist2));
                wsum += next[i];
            }
            if (wsum == 0) break;
            for (double& w : next) w /= wsum;
            // |z_next - z|^2 and |z_next|^2, in the same space
            std::vector<double> gnext(n, 0.0);
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j) gnext[i] += g[i * n + j] * next[j];
            double nn = 0, cross = 0;
            for (std::size_t i = 0; i < n; ++i) {
                nn += next[i] * gnext[i];
                cross += next[i] * (at_start ? c[i] : galpha[i]);
            }
            const double step2 = std::max(0.0, nn - 2 * cross + zz);
            alpha = next;
            galpha = gnext;
            at_start = false;
            if (std::sqrt(step2) <= this->p_.tolerance * std::max(std::sqrt(std::max(nn, 0.0)), 1e-12)) break;
        }
        if (!at_start) detail::combine_rows<T>(in, alpha, 1, out.data());
    }
};

// v <- v + (1/n) sum_i clip_tau(x_i - v), from the previous aggregate (or the mean at first).
// The iterate stays v = gamma v0 + sum_k beta_k x_k, so the iterations run on the Gram matrix
// and the data are read to build it, to project v0, and to form the result.
template <class T>
class CenteredClipping final : public Aggregator<T> {
public:
    explicit CenteredClipping(const Params& p) : Aggregator<T>("centered-clipping", p) {
        if (!(p.tau > 0)) throw RobustError(fmt::format("centered-clipping needs tau > 0, got {}", p.tau));
    }

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), d = out.size();
        std::vector<double> g = detail::gram(in);
        const auto ok = finite_rows(g, n);
        std::vector<double> beta(n, 0.0);
        double gamma = 1.0;
        if (prev_.size() != d) {  // first call: start from the mean of the finite inputs
            prev_.assign(d, 0.0);
            gamma = 0.0;
            const double cnt = static_cast<double>(std::count(ok.begin(), ok.end(), true));
            for (std::size_t i = 0; i < n; ++i) beta[i] = ok[i] && cnt > 0 ? 1.0 / cnt : 0.0;
        }
        std::vector<double> c = detail::dots_with(in, prev_);  // <x_i, v0>
        double v0v0 = 0;
        for (double v : prev_) v0v0 += v * v;
        for (std::size_t i = 0; i < n; ++i)
            if (!ok[i]) c[i] = 0;
        std::vector<double> gbeta(n);
        const std::size_t iterations = this->p_.iterations ? this->p_.iterations : 3;
        for (std::size_t it = 0; it < iterations; ++it) {
            for (std::size_t i = 0; i < n; ++i) {
                gbeta[i] = 0;
                for (std::size_t j = 0; j < n; ++j) gbeta[i] += g[i * n + j] * beta[j];
            }
            double bgb = 0, bc = 0;
            for (std::size_t i = 0; i < n; ++i) bgb += beta[i] * gbeta[i], bc += beta[i] * c[i];
            const double vv = gamma * gamma * v0v0 + 2 * gamma * bc + bgb;
            double total = 0;
            std::vector<double> scale(n, 0.0);
            for (std::size_t i = 0; i < n; ++i) {
                if (!ok[i]) continue;  // a non-finite vector is clipped to nothing
                const double dist2 = std::max(0.0, g[i * n + i] - 2 * (gamma * c[i] + gbeta[i]) + vv);
                scale[i] = std::min(1.0, this->p_.tau / std::max(std::sqrt(dist2), 1e-300));
                total += scale[i];
            }
            const double keep = 1.0 - total / static_cast<double>(n);
            gamma *= keep;
            for (std::size_t i = 0; i < n; ++i) beta[i] = beta[i] * keep + scale[i] / static_cast<double>(n);
        }
        std::vector<T> part(d);
        detail::combine_rows<T>(in, beta, 1, part.data());
        for (std::size_t j = 0; j < d; ++j) {
            prev_[j] = gamma * prev_[j] + static_cast<double>(part[j]);
            out[j] = static_cast<T>(prev_[j]);
        }
    }

private:
    std::vector<double> prev_;  // the last aggregate, where the next call starts
};

// Covariance-bound agnostic filter: weights start at 1; while they sum to more than n - 2f,
// the weighted mean mu and the weighted covariance's top eigenpair (lambda, v) are found, and
// each weight is scaled by 1 - tau_i / max tau, with tau_i = (v . (x_i - mu))^2. Returns the
// weighted mean of the iteration whose lambda was smallest (the filter's definition; the mean
// of all inputs when no iteration runs, f = 0). The eigenpair is exact (Jacobi on the n x n
// Gram form) where the reference takes 3 power steps. A non-finite vector starts with weight 0.
template <class T>
class Caf final : public Majority<T> {
public:
    explicit Caf(const Params& p) : Majority<T>("caf", p) {}

protected:
    void run(Vectors<T> in, std::span<T> out) override {
        const std::size_t n = in.size(), f = this->p_.f, d = out.size();
        const auto g = detail::gram(in);
        std::vector<double> c(n, 1.0);
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isfinite(g[i * n + i])) c[i] = 0.0;
        std::vector<double> a(n), m(n * n), u, proj(n);
        std::vector<double> best = c;  // the weights of the smallest top eigenvalue so far
        double best_lambda = std::numeric_limits<double>::infinity();
        for (std::size_t round = 0; round < 4 * n; ++round) {
            const double total = std::accumulate(c.begin(), c.end(), 0.0);
            if (total <= static_cast<double>(n - 2 * f) || total <= 0) break;
            double mm = 0;
            for (std::size_t i = 0; i < n; ++i) {
                double s = 0;
                for (std::size_t k = 0; k < n; ++k)
                    if (c[k] > 0) s += c[k] * g[k * n + i];
                a[i] = s / total;
            }
            for (std::size_t k = 0; k < n; ++k)
                if (c[k] > 0) mm += c[k] * a[k];
            mm /= total;
            auto centred = [&](std::size_t i, std::size_t j) { return g[i * n + j] - a[i] - a[j] + mm; };
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j)
                    m[i * n + j] = (c[i] > 0 && c[j] > 0) ? std::sqrt(c[i] * c[j]) * centred(i, j) / total : 0.0;
            const double lambda = detail::max_eigen(m, n, &u);
            if (!(lambda > 0)) {  // all weighted vectors coincide: no eigenvalue is smaller
                best = c;
                break;
            }
            if (lambda < best_lambda) {
                best_lambda = lambda;
                best = c;
            }
            double tmax = 0;
            for (std::size_t i = 0; i < n; ++i) {
                if (c[i] <= 0) continue;
                double s = 0;
                for (std::size_t j = 0; j < n; ++j)
                    if (c[j] > 0) s += std::sqrt(c[j] / total) * u[j] * centred(j, i);
                proj[i] = s * s / lambda;
                tmax = std::max(tmax, proj[i]);
            }
            if (!(tmax > 0)) break;
            for (std::size_t i = 0; i < n; ++i)
                if (c[i] > 0) c[i] = std::max(0.0, c[i] * (1.0 - proj[i] / tmax));
        }
        c = best;
        const double total = std::accumulate(c.begin(), c.end(), 0.0);
        std::vector<double> acc(d, 0.0);
        for (std::size_t i = 0; i < n; ++i)
            if (c[i] > 0)
                for (std::size_t j = 0; j < d; ++j) acc[j] += c[i] * static_cast<double>(in[i][j]);
        for (std::size_t j = 0; j < d; ++j) out[j] = static_cast<T>(total > 0 ? acc[j] / total : 0.0);
    }
};

}  // namespace

namespace factory {

P2P_AGGREGATOR_FACTORY(mean) { return std::make_unique<Mean<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(mean);
P2P_AGGREGATOR_FACTORY(median) { return std::make_unique<Median<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(median);
P2P_AGGREGATOR_FACTORY(trimmed_mean) { return std::make_unique<TrimmedMean<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(trimmed_mean);
P2P_AGGREGATOR_FACTORY(meamed) { return std::make_unique<Meamed<T>>(std::string(name), p); }
P2P_INSTANTIATE_AGGREGATOR(meamed);
P2P_AGGREGATOR_FACTORY(geometric_median) { return std::make_unique<GeometricMedian<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(geometric_median);
P2P_AGGREGATOR_FACTORY(krum) { return std::make_unique<Krum<T>>(false, p); }
P2P_INSTANTIATE_AGGREGATOR(krum);
P2P_AGGREGATOR_FACTORY(multi_krum) { return std::make_unique<Krum<T>>(true, p); }
P2P_INSTANTIATE_AGGREGATOR(multi_krum);
P2P_AGGREGATOR_FACTORY(bulyan) { return std::make_unique<Bulyan<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(bulyan);
P2P_AGGREGATOR_FACTORY(mda) { return std::make_unique<Mda<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(mda);
P2P_AGGREGATOR_FACTORY(monna) { return std::make_unique<Monna<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(monna);
P2P_AGGREGATOR_FACTORY(smea) { return std::make_unique<Smea<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(smea);
P2P_AGGREGATOR_FACTORY(centered_clipping) { return std::make_unique<CenteredClipping<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(centered_clipping);
P2P_AGGREGATOR_FACTORY(cge) { return std::make_unique<Cge<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(cge);
P2P_AGGREGATOR_FACTORY(caf) { return std::make_unique<Caf<T>>(p); }
P2P_INSTANTIATE_AGGREGATOR(caf);

}  // namespace factory
template class Aggregator<float>;
template class Aggregator<double>;

}  // namespace p2p::robust
