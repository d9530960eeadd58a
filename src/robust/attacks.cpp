#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common.hpp"
#include "factories.hpp"

namespace p2p::robust {

namespace {

template <class T>
void require_honest(const std::string& name, const AttackInput<T>& in, std::size_t d) {
    if (in.honest.empty()) throw RobustError(fmt::format("{}: needs at least one honest vector", name));
    detail::check_dims<T>(name, in.honest, d);
}

template <class T>
void honest_mean(Vectors<T> h, std::span<T> out) {
    std::vector<std::size_t> all(h.size());
    std::iota(all.begin(), all.end(), 0);
    detail::mean_of(h, all, out);
}

// Per coordinate mean and (unbiased, n - 1) standard deviation of the honest vectors.
template <class T>
void mean_std(Vectors<T> h, std::vector<double>& mu, std::vector<double>& sd) {
    const std::size_t n = h.size(), d = h[0].size();
    mu.assign(d, 0.0);
    sd.assign(d, 0.0);
    for (const auto& x : h)
        for (std::size_t j = 0; j < d; ++j) mu[j] += x[j];
    for (double& m : mu) m /= static_cast<double>(n);
    if (n < 2) return;
    for (const auto& x : h)
        for (std::size_t j = 0; j < d; ++j) sd[j] += (x[j] - mu[j]) * (x[j] - mu[j]);
    for (double& s : sd) s = std::sqrt(s / static_cast<double>(n - 1));
}

// scale x mean(honest): the reference's default attack (scale -1).
template <class T>
class Empire final : public Attack<T> {
public:
    Empire(std::string name, const AttackParams& p) : Attack<T>(std::move(name), p) {}
    void forge(const AttackInput<T>& in, std::span<T> out) override {
        require_honest(this->name_, in, out.size());
        honest_mean(in.honest, out);
        for (T& v : out) v *= static_cast<T>(this->p_.scale);
    }
};

template <class T>
class SignFlip final : public Attack<T> {
public:
    explicit SignFlip(const AttackParams& p) : Attack<T>("sign-flip", p) {}
    void forge(const AttackInput<T>& in, std::span<T> out) override {
        if (in.own.size() != out.size())
            throw RobustError("sign-flip: needs the attacker's own gradient of the model's dimension");
        for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<T>(this->p_.scale) * in.own[j];
    }
};

template <class T>
class LabelFlip final : public Attack<T> {
public:
    explicit LabelFlip(const AttackParams& p) : Attack<T>("label-flip", p) {}
    void forge(const AttackInput<T>& in, std::span<T> out) override {
        if (!in.flipped_gradient) throw RobustError("label-flip: needs the model and a batch (a node provides them)");
        in.flipped_gradient(out);
    }
};

template <class T>
class Alie final : public Attack<T> {
public:
    explicit Alie(const AttackParams& p) : Attack<T>("alie", p) {}
    void forge(const AttackInput<T>& in, std::span<T> out) override {
        require_honest(this->name_, in, out.size());
        const double z = alie_z(this->p_.n, this->p_.f);
        std::vector<double> mu, sd;
        mean_std(in.honest, mu, sd);
        for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<T>(mu[j] + z * sd[j]);
    }
};

template <class T>
class Gaussian final : public Attack<T> {
public:
    explicit Gaussian(const AttackParams& p) : Attack<T>("gaussian", p), rng_(p.seed) {}
    void forge(const AttackInput<T>&, std::span<T> out) override {
        // Box-Muller on our own uniform draws: the same vector for a seed on every platform.
        auto uniform = [&] { return (static_cast<double>(rng_() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
        for (std::size_t j = 0; j < out.size(); j += 2) {
            const double r = std::sqrt(-2.0 * std::log(uniform())), t = 2.0 * M_PI * uniform();
            out[j] = static_cast<T>(this->p_.mu + this->p_.sigma * r * std::cos(t));
            if (j + 1 < out.size()) out[j + 1] = static_cast<T>(this->p_.mu + this->p_.sigma * r * std::sin(t));
        }
    }

private:
    std::mt19937_64 rng_;
};

template <class T>
class Inf final : public Attack<T> {
public:
    explicit Inf(const AttackParams& p) : Attack<T>("inf", p) {}
    void forge(const AttackInput<T>&, std::span<T> out) override {
        std::fill(out.begin(), out.end(), std::numeric_limits<T>::infinity());
    }
};

template <class T>
class Mimic final : public Attack<T> {
public:
    explicit Mimic(const AttackParams& p) : Attack<T>("mimic", p) {}
    void forge(const AttackInput<T>& in, std::span<T> out) override {
        require_honest(this->name_, in, out.size());
        if (this->p_.target >= in.honest.size())
            throw RobustError(fmt::format("mimic: target {} is not one of the {} honest vectors", this->p_.target,
                                          in.honest.size()));
        std::copy(in.honest[this->p_.target].begin(), in.honest[this->p_.target].end(), out.begin());
    }
};

// Picks the factor (IPM: the scale of the honest mean; ALIE: z) in [lo, hi] that moves the target
// aggregator's output furthest from the honest mean, when f copies of the forged vector join
// the honest ones: a grid of 21 points, then golden-section search around the best.
template <class T>
class Optimal final : public Attack<T> {
public:
    Optimal(bool alie, const AttackParams& p)
        : Attack<T>(alie ? "optimal-alie" : "optimal-ipm", p), alie_(alie),
          pipeline_(p.pre, p.rule, [&] {
              Params rp = p.rule_params;
              rp.f = p.f;
              return rp;
          }()) {
        if (!(p.lo < p.hi)) throw RobustError(fmt::format("{}: needs lo < hi, got [{}, {}]", this->name_, p.lo, p.hi));
    }
    void forge(const AttackInput<T>& in, std::span<T> out) override {
        require_honest(this->name_, in, out.size());
        const std::size_t d = out.size();
        mean_std(in.honest, mu_, sd_);
        forged_.resize(d);
        agg_.resize(d);
        auto damage = [&](double factor) {
            make(factor, forged_);
            std::vector<std::span<const T>> all(in.honest.begin(), in.honest.end());
            for (std::size_t k = 0; k < std::max<std::size_t>(this->p_.f, 1); ++k) all.push_back(forged_);
            pipeline_.aggregate(all, agg_);
            double s = 0;
            for (std::size_t j = 0; j < d; ++j) s += (agg_[j] - mu_[j]) * (agg_[j] - mu_[j]);
            return std::isfinite(s) ? s : 0.0;
        };
        const double lo = this->p_.lo, hi = this->p_.hi;
        const int grid = 20;
        double best_x = lo, best = -1;
        for (int k = 0; k <= grid; ++k) {
            const double x = lo + (hi - lo) * k / grid;
            const double v = damage(x);
            if (v > best) best = v, best_x = x;
        }
        double a = std::max(lo, best_x - (hi - lo) / grid), b = std::min(hi, best_x + (hi - lo) / grid);
        const double phi = (std::sqrt(5.0) - 1) / 2;
        double x1 = b - phi * (b - a), x2 = a + phi * (b - a), f1 = damage(x1), f2 = damage(x2);
        for (int it = 0; it < 30; ++it) {
            if (f1 > f2) {
                b = x2, x2 = x1, f2 = f1, x1 = b - phi * (b - a), f1 = damage(x1);
            } else {
                a = x1, x1 = x2, f1 = f2, x2 = a + phi * (b - a), f2 = damage(x2);
            }
        }
        const double refined = f1 > f2 ? x1 : x2;
        chosen_ = std::max(f1, f2) > best ? refined : best_x;
        make(chosen_, out);
    }
    double chosen() const { return chosen_; }

private:
    void make(double factor, std::span<T> out) const {
        for (std::size_t j = 0; j < out.size(); ++j)
            out[j] = static_cast<T>(alie_ ? mu_[j] + factor * sd_[j] : factor * mu_[j]);
    }
    bool alie_;
    Pipeline<T> pipeline_;
    std::vector<double> mu_, sd_;
    std::vector<T> forged_, agg_;
    double chosen_ = 0;
};

}  // namespace


double normal_quantile(double p) {
    if (!(p > 0 && p < 1)) throw RobustError(fmt::format("normal quantile needs 0 < p < 1, got {}", p));
    // Newton on the CDF from a rational first guess; erfc gives the CDF to full precision.
    double x = 0;
    {
        const double t = std::sqrt(-2.0 * std::log(p < 0.5 ? p : 1 - p));
        const double guess = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                                     (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
        x = p < 0.5 ? -guess : guess;
    }
    for (int i = 0; i < 50; ++i) {
        const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
        const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
        const double step = (cdf - p) / pdf;
        x -= step;
        if (std::abs(step) < 1e-15 * std::max(1.0, std::abs(x))) break;
    }
    return x;
}

double alie_z(std::size_t n, std::size_t f) {
    if (n == 0) throw RobustError("alie: needs n > 0 (the number of inputs honest nodes aggregate)");
    const double s = std::floor(static_cast<double>(n) / 2.0 + 1.0) - static_cast<double>(f);
    const double p = (static_cast<double>(n) - s) / static_cast<double>(n);
    if (!(p > 0 && p < 1))
        throw RobustError(fmt::format("alie: z is undefined for n = {}, f = {} ((n - s) / n = {})", n, f, p));
    return normal_quantile(p);
}

namespace factory {

P2P_ATTACK_FACTORY(empire) { return std::make_unique<Empire<T>>(std::string(name), p); }
P2P_INSTANTIATE_ATTACK(empire);
P2P_ATTACK_FACTORY(sign_flip) { return std::make_unique<SignFlip<T>>(p); }
P2P_INSTANTIATE_ATTACK(sign_flip);
P2P_ATTACK_FACTORY(label_flip) { return std::make_unique<LabelFlip<T>>(p); }
P2P_INSTANTIATE_ATTACK(label_flip);
P2P_ATTACK_FACTORY(alie) { return std::make_unique<Alie<T>>(p); }
P2P_INSTANTIATE_ATTACK(alie);
P2P_ATTACK_FACTORY(gaussian) { return std::make_unique<Gaussian<T>>(p); }
P2P_INSTANTIATE_ATTACK(gaussian);
P2P_ATTACK_FACTORY(inf) { return std::make_unique<Inf<T>>(p); }
P2P_INSTANTIATE_ATTACK(inf);
P2P_ATTACK_FACTORY(mimic) { return std::make_unique<Mimic<T>>(p); }
P2P_INSTANTIATE_ATTACK(mimic);
P2P_ATTACK_FACTORY(optimal_alie) { return std::make_unique<Optimal<T>>(true, p); }
P2P_INSTANTIATE_ATTACK(optimal_alie);
P2P_ATTACK_FACTORY(optimal_ipm) { return std::make_unique<Optimal<T>>(false, p); }
P2P_INSTANTIATE_ATTACK(optimal_ipm);

}  // namespace factory
}  // namespace p2p::robust
