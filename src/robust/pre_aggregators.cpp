#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common.hpp"
#include "factories.hpp"

namespace p2p::robust {

namespace {

// x * min(1, threshold / |x|); a non-finite vector becomes zero.
template <class T>
void clip_into(std::span<const T> x, double threshold, std::span<T> out) {
    const double n2 = detail::norm2(x);
    if (!std::isfinite(n2)) {
        std::fill(out.begin(), out.end(), T(0));
        return;
    }
    const double norm = std::sqrt(n2);
    const T scale = static_cast<T>(norm > threshold ? threshold / norm : 1.0);
    for (std::size_t j = 0; j < x.size(); ++j) out[j] = x[j] * scale;
}

// Static clipping at p.tau.
template <class T>
class Clipping final : public PreAggregator<T> {
public:
    explicit Clipping(const Params& p) : PreAggregator<T>("clipping", p) {
        if (!(p.tau > 0)) throw RobustError(fmt::format("clipping needs a threshold tau > 0, got {}", p.tau));
    }
    Vectors<T> apply(Vectors<T> in) override {
        const std::size_t d = in.empty() ? 0 : in[0].size();
        this->reserve(in.size(), d);
        for (std::size_t i = 0; i < in.size(); ++i) clip_into<T>(in[i], this->p_.tau, this->storage_[i]);
        return this->views_;
    }
};

// Shuffles (seeded, a new permutation each call) and averages buckets of p.bucket_size.
template <class T>
class Bucketing final : public PreAggregator<T> {
public:
    explicit Bucketing(const Params& p) : PreAggregator<T>("bucketing", p), rng_(p.seed) {
        if (p.bucket_size < 1) throw RobustError("bucketing needs a bucket size s >= 1");
    }
    std::size_t outputs(std::size_t n) const override { return (n + this->p_.bucket_size - 1) / this->p_.bucket_size; }
    Vectors<T> apply(Vectors<T> in) override {
        const std::size_t n = in.size(), d = n ? in[0].size() : 0, s = this->p_.bucket_size;
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng_() % i]);
        const std::size_t buckets = (n + s - 1) / s;
        this->reserve(buckets, d);
        for (std::size_t b = 0; b < buckets; ++b) {
            std::vector<std::size_t> members(order.begin() + static_cast<long>(b * s),
                                             order.begin() + static_cast<long>(std::min(n, (b + 1) * s)));
            detail::mean_of<T>(in, members, this->storage_[b]);
        }
        return this->views_;
    }

private:
    std::mt19937_64 rng_;
};

// Nearest-neighbour mixing: each vector becomes the mean of its n - f nearest (itself included).
template <class T>
class Nnm final : public PreAggregator<T> {
    std::vector<T> flat_;  // the n outputs, row after row

public:
    explicit Nnm(const Params& p) : PreAggregator<T>("nnm", p) {}
    std::size_t outputs(std::size_t n) const override {
        if (this->p_.f >= n) throw RobustError(fmt::format("nnm needs f < n, got n = {}, f = {}", n, this->p_.f));
        return n;
    }
    Vectors<T> apply(Vectors<T> in) override {
        const std::size_t n = outputs(in.size()), d = n ? in[0].size() : 0;
        const auto d2 = detail::pairwise_d2(in);
        // Row i averages i's n - f nearest, itself included.
        const auto near = detail::nearest_sets(d2, n, n - this->p_.f);
        T* out = detail::aligned_in(flat_, n * d);
        detail::means_of_sets<T>(in, near, out);
        this->views_.resize(n);
        for (std::size_t i = 0; i < n; ++i) this->views_[i] = std::span<const T>(out + i * d, d);
        return this->views_;
    }
};

// Adaptive robust clipping: the k = floor(2 (f / n) (n - f)) largest-norm vectors are clipped to
// the norm of the (k+1)-th largest.
template <class T>
class Arc final : public PreAggregator<T> {
public:
    explicit Arc(const Params& p) : PreAggregator<T>("arc", p) {}
    std::size_t outputs(std::size_t n) const override {
        if (this->p_.f >= n) throw RobustError(fmt::format("arc needs f < n, got n = {}, f = {}", n, this->p_.f));
        return n;
    }
    Vectors<T> apply(Vectors<T> in) override {
        const std::size_t n = outputs(in.size()), d = n ? in[0].size() : 0, f = this->p_.f;
        const std::size_t k = static_cast<std::size_t>(std::floor(2.0 * static_cast<double>(f) / n * (n - f)));
        std::vector<double> neg_norm(n);
        for (std::size_t i = 0; i < n; ++i) neg_norm[i] = -detail::norm2(in[i]);  // largest first
        const auto order = detail::smallest(neg_norm, n);
        this->reserve(n, d);
        const double threshold = k < n ? std::sqrt(-neg_norm[order[k]]) : 0.0;
        for (std::size_t r = 0; r < n; ++r) {
            const std::size_t i = order[r];
            if (r < k)
                clip_into<T>(in[i], threshold, this->storage_[i]);
            else
                std::copy(in[i].begin(), in[i].end(), this->storage_[i].begin());
        }
        return this->views_;
    }
};

}  // namespace

template <class T>
void PreAggregator<T>::reserve(std::size_t m, std::size_t d) {
    if (storage_.size() != m) storage_.resize(m);
    views_.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
        if (storage_[i].size() != d) storage_[i].assign(d, T(0));
        views_[i] = storage_[i];
    }
}

namespace factory {

P2P_PRE_AGGREGATOR_FACTORY(clipping) { return std::make_unique<Clipping<T>>(p); }
P2P_INSTANTIATE_PRE_AGGREGATOR(clipping);
P2P_PRE_AGGREGATOR_FACTORY(bucketing) { return std::make_unique<Bucketing<T>>(p); }
P2P_INSTANTIATE_PRE_AGGREGATOR(bucketing);
P2P_PRE_AGGREGATOR_FACTORY(nnm) { return std::make_unique<Nnm<T>>(p); }
P2P_INSTANTIATE_PRE_AGGREGATOR(nnm);
P2P_PRE_AGGREGATOR_FACTORY(arc) { return std::make_unique<Arc<T>>(p); }
P2P_INSTANTIATE_PRE_AGGREGATOR(arc);

}  // namespace factory
template <class T>
Pipeline<T>::Pipeline(const std::vector<std::string>& pre, std::string_view rule, const Params& p)
    : rule_(make_aggregator<T>(rule, p)) {
    for (const auto& name : pre) pre_.push_back(make_pre_aggregator<T>(name, p));
}

template <class T>
void Pipeline<T>::check(std::size_t n) const {
    for (const auto& stage : pre_) n = stage->outputs(n);
    rule_->check(n);
}

template <class T>
void Pipeline<T>::aggregate(Vectors<T> in, std::span<T> out) {
    detail::check_dims<T>(rule_->name(), in, out.size());
    Vectors<T> cur = in;
    for (auto& stage : pre_) cur = stage->apply(cur);
    rule_->aggregate(cur, out);
}

template class PreAggregator<float>;
template class PreAggregator<double>;
template class Pipeline<float>;
template class Pipeline<double>;

}  // namespace p2p::robust
