#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "p2pnode/nn/layers.hpp"
#include "p2pnode/nn/model.hpp"

using namespace p2p::nn;

namespace {

Tensor random_tensor(std::vector<std::size_t> shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
    Tensor t(shape);
    std::uniform_real_distribution<float> d(lo, hi);
    for (auto& v : t) v = d(rng);
    return t;
}

double dot(const Tensor& a, const Tensor& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
    return s;
}

// ||a - n|| / (||a|| + ||n||): the relative error of an analytic gradient against a numeric one.
double relative_error(const std::vector<double>& analytic, const std::vector<double>& numeric) {
    double diff = 0, na = 0, nn = 0;
    for (std::size_t i = 0; i < analytic.size(); ++i) {
        diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
        na += analytic[i] * analytic[i];
        nn += numeric[i] * numeric[i];
    }
    return std::sqrt(diff) / (std::sqrt(na) + std::sqrt(nn) + 1e-12);
}

// (loss(x + eps) - loss(x - eps)) / 2 eps, leaving x as it was.
template <class Loss>
double central_difference(float& x, float eps, Loss&& loss) {
    const float saved = x;
    x = saved + eps;
    const double up = loss();
    x = saved - eps;
    const double down = loss();
    x = saved;
    return (up - down) / (2 * eps);
}

// Central-difference check of a layer's input and parameter gradients for L = sum(out * R).
void check_layer(Layer& layer, Tensor input, std::mt19937& rng, double bound) {
    std::vector<float> params(layer.param_count()), grads(layer.param_count());
    std::uniform_real_distribution<float> d(-0.5f, 0.5f);
    for (auto& p : params) p = d(rng);
    layer.bind(params, grads);

    Tensor out;
    layer.forward(input, out);
    Tensor r = random_tensor(std::vector<std::size_t>(out.shape().begin(), out.shape().end()), rng);
    Tensor din;
    layer.backward(input, r, &din);
    const std::vector<float> analytic_params(grads.begin(), grads.end());

    auto loss = [&] {
        Tensor o;
        layer.forward(input, o);
        return dot(o, r);
    };
    const float eps = 1e-2f;
    std::vector<double> a, n;
    for (std::size_t i = 0; i < input.size(); ++i) {
        a.push_back(din.data()[i]);
        n.push_back(central_difference(input.data()[i], eps, loss));
    }
    CAPTURE(layer.name());
    CHECK(relative_error(a, n) < bound);
    if (params.empty()) return;
    a.clear();
    n.clear();
    for (std::size_t i = 0; i < params.size(); ++i) {
        a.push_back(analytic_params[i]);
        n.push_back(central_difference(params[i], eps, loss));
    }
    CHECK(relative_error(a, n) < bound);
}

}  // namespace

TEST_CASE("every layer passes a central-difference gradient check") {
    std::mt19937 rng(7);
    SUBCASE("conv2d, padding 1") {
        Conv2d conv(2, 3, 3, 1);
        check_layer(conv, random_tensor({2, 2, 5, 4}, rng), rng, 1e-3);
    }
    SUBCASE("conv2d, no padding") {
        Conv2d conv(1, 2, 3, 0);
        check_layer(conv, random_tensor({1, 3, 5, 5}, rng), rng, 1e-3);
    }
    SUBCASE("conv2d 5x5, padding 2, Winograd F(2x2, 5x5)") {
        Conv2d conv(3, 4, 5, 2, Conv2d::Algorithm::winograd);
        check_layer(conv, random_tensor({3, 2, 6, 8}, rng), rng, 1e-3);  // 3 x 4 tiles an image
    }
    SUBCASE("relu") {
        Relu relu;
        // Values kept away from the kink at 0, where the derivative is undefined.
        Tensor in = random_tensor({2, 3, 4, 4}, rng, 0.1f, 1.0f);
        for (std::size_t i = 0; i < in.size(); i += 2) in.data()[i] = -in.data()[i];
        check_layer(relu, in, rng, 1e-3);
    }
    SUBCASE("maxpool2") {
        MaxPool2 pool;
        // Distinct values spaced well beyond eps, so no perturbation changes the argmax.
        Tensor in = Tensor::from_shape({2, 2, 4, 10});  // 5 output columns: the 4-wide path and the tail
        std::vector<float> values(in.size());
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.1f;
        std::shuffle(values.begin(), values.end(), rng);
        std::copy(values.begin(), values.end(), in.begin());
        check_layer(pool, in, rng, 1e-3);
    }
    SUBCASE("flatten") {
        Flatten flat;
        check_layer(flat, random_tensor({3, 2, 2, 3}, rng), rng, 1e-4);
    }
    SUBCASE("linear") {
        Linear fc(7, 5);
        check_layer(fc, random_tensor({4, 7}, rng), rng, 1e-3);
    }
}

TEST_CASE("softmax cross-entropy: gradient check and numerical stability") {
    std::mt19937 rng(3);
    Tensor logits = random_tensor({5, 10}, rng, -3.0f, 3.0f);
    std::vector<std::uint8_t> labels{0, 3, 9, 3, 5};
    Tensor d;
    auto r = softmax_cross_entropy(logits, labels, &d);
    CHECK(r.loss_sum > 0);
    std::vector<double> a, n;
    const float eps = 1e-2f;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        a.push_back(d.data()[i]);
        n.push_back(central_difference(logits.data()[i], eps,
                                       [&] { return softmax_cross_entropy(logits, labels, nullptr).loss_sum / 5; }));
    }
    CHECK(relative_error(a, n) < 1e-3);

    // Huge logits: no overflow, exact answers.
    Tensor big = Tensor::from_shape({2, 3});
    big(0, 0) = 1000.0f, big(0, 1) = 0.0f, big(0, 2) = -1000.0f;
    big(1, 0) = 1e30f, big(1, 1) = 1e30f, big(1, 2) = 0.0f;
    std::vector<std::uint8_t> l2{0, 2};
    auto rb = softmax_cross_entropy(big, l2, &d);
    CHECK(std::isfinite(rb.loss_sum));
    CHECK(rb.loss_sum == doctest::Approx(1e30 + std::log(2.0)).epsilon(1e-6));
    CHECK(rb.correct == 1);
    for (float g : d) CHECK(std::isfinite(g));
    // Uniform logits: loss log(K), gradient (1/K - onehot)/B.
    Tensor flat = xt::zeros<float>({1, 4});
    std::vector<std::uint8_t> l3{2};
    auto rf = softmax_cross_entropy(flat, l3, &d);
    CHECK(rf.loss_sum == doctest::Approx(std::log(4.0)));
    CHECK(d(0, 2) == doctest::Approx(-0.75));
    CHECK(d(0, 0) == doctest::Approx(0.25));
}

TEST_CASE("the whole network passes a gradient check on a small batch") {
    Sequential model = make_small_cnn(11);
    std::mt19937 rng(5);
    Tensor input = random_tensor({1, 3, 28, 28}, rng, 0.0f, 1.0f);
    std::vector<std::uint8_t> labels{1, 7, 4};
    model.compute_gradient(input, labels);
    std::vector<float> grads(model.grads().begin(), model.grads().end());
    auto params = model.params();
    auto loss = [&] {
        const Tensor& logits = model.forward(input);
        return softmax_cross_entropy(logits, labels, nullptr).loss_sum / 3.0;
    };
    // Parameters sampled from every layer's slice: conv1, conv2, fc1, fc2 weights and biases.
    const std::size_t starts[] = {0, 144, 160, 4768, 4800, 205504, 205632, 206912};
    const std::size_t sizes[] = {144, 16, 4608, 32, 200704, 128, 1280, 10};
    std::vector<double> a, n;
    const float eps = 1e-2f;
    for (std::size_t s = 0; s < 8; ++s) {
        for (std::size_t k = 0; k < 12; ++k) {
            std::size_t i = starts[s] + (k * 7919) % sizes[s];
            a.push_back(grads[i]);
            n.push_back(central_difference(params[i], eps, loss));
        }
    }
    CHECK(relative_error(a, n) < 2e-2);
}

TEST_CASE("hand-computed conv2d forward with padding") {
    Conv2d conv(1, 1, 3, 1);
    std::vector<float> params(10, 1.0f), grads(10);
    params[9] = 0.5f;  // bias
    conv.bind(params, grads);
    Tensor in = Tensor::from_shape({1, 1, 3, 3});
    for (int i = 0; i < 9; ++i) in.data()[i] = static_cast<float>(i + 1);
    Tensor out;
    conv.forward(in, out);
    REQUIRE(out.shape() == Tensor::shape_type{1, 1, 3, 3});
    // A 3x3 box filter of ones over 1..9 with zero padding, plus the bias.
    const float expected[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; ++i) CHECK(out.data()[i] == doctest::Approx(expected[i] + 0.5f));

    // No padding: one output, the full sum; a weight pattern picks pixels.
    Conv2d valid(1, 1, 3, 0);
    std::vector<float> p2{0, 0, 0, 0, 0, 0, 0, 0, 2, 0}, g2(10);
    valid.bind(p2, g2);
    valid.forward(in, out);
    REQUIRE(out.size() == 1);
    CHECK(out.data()[0] == doctest::Approx(18.0f));  // 2 * bottom-right pixel (9)
}

// Winograd's F(2x2, 5x5) computes the same convolution and gradients as im2col, up to float
// rounding, on every tile position (edges, corners, interior) and across chunks of images; on
// odd sizes, where it does not fit, the layer is im2col bit for bit.
TEST_CASE("Winograd 5x5 convolution equals im2col's: outputs, input and parameter gradients") {
    auto max_relative = [](const float* a, const float* b, std::size_t n) {
        double diff = 0, scale = 0;
        for (std::size_t i = 0; i < n; ++i) {
            diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
            scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
        }
        return diff / scale;
    };
    struct Case {
        std::size_t in, out, batch, H, W;
        bool fits;
    };
    // cnn-cifar's second and third convolutions (chunks of 1 image; 7 images of 8x8 at 100 -> 200
    // are chunks of 3, 3 and 1: a last partial chunk), 40 images of 4x6 at 60 -> 80 (chunks of
    // 17, 17, 6), images of 2 rows or 2 columns (one tile high or wide), and odd sizes
    const Case cases[] = {{100, 200, 7, 8, 8, true}, {20, 100, 2, 16, 16, true}, {60, 80, 40, 4, 6, true},
                          {1, 1, 1, 2, 2, true},     {3, 4, 2, 2, 6, true},      {3, 4, 3, 6, 2, true},
                          {3, 5, 2, 7, 8, false},    {3, 5, 2, 8, 5, false}};
    for (const auto& c : cases) {
        CAPTURE(c.in);
        CAPTURE(c.out);
        CAPTURE(c.H);
        CAPTURE(c.W);
        Conv2d direct(c.in, c.out, 5, 2), wino(c.in, c.out, 5, 2, Conv2d::Algorithm::winograd);
        std::mt19937 rng(11);
        std::uniform_real_distribution<float> d(-0.1f, 0.1f);
        std::vector<float> params(direct.param_count()), g1(params.size()), g2(params.size());
        for (auto& p : params) p = d(rng);
        direct.bind(params, g1);
        wino.bind(params, g2);
        const Tensor input = random_tensor({c.in, c.batch, c.H, c.W}, rng);
        Tensor y1, y2, dx1, dx2;
        direct.forward(input, y1);
        wino.forward(input, y2);
        REQUIRE(y1.shape() == y2.shape());
        const Tensor dout = random_tensor(std::vector<std::size_t>(y1.shape().begin(), y1.shape().end()), rng);
        direct.backward(input, dout, &dx1);
        wino.backward(input, dout, &dx2);
        const std::size_t w = direct.weight_count();
        if (c.fits) {
            CHECK(max_relative(y2.data(), y1.data(), y1.size()) < 1e-4);
            CHECK(max_relative(dx2.data(), dx1.data(), dx1.size()) < 1e-4);
            CHECK(max_relative(g2.data(), g1.data(), w) < 1e-4);
            CHECK(max_relative(g2.data() + w, g1.data() + w, c.out) < 1e-5);
            CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) != 0);  // another algorithm ran
        } else {
            CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(dx1.data(), dx2.data(), dx1.size() * sizeof(float)) == 0);
            CHECK(std::equal(g1.begin(), g1.end(), g2.begin()));
        }
        // without an input gradient (a first layer) the parameter gradients are the same
        std::vector<float> before(g2.begin(), g2.end());
        wino.backward(input, dout, nullptr);
        CHECK(std::equal(before.begin(), before.end(), g2.begin()));
    }
}

TEST_CASE("hand-computed maxpool: argmax, ties to the first maximum, backward routing") {
    MaxPool2 pool;
    Tensor in = Tensor::from_shape({1, 1, 2, 4});
    // Two 2x2 windows: [[1, 5], [3, 2]] and [[7, 7], [7, 0]] (a three-way tie).
    const float v[8] = {1, 5, 7, 7, 3, 2, 7, 0};
    std::copy(v, v + 8, in.begin());
    Tensor out;
    pool.forward(in, out);
    REQUIRE(out.shape() == Tensor::shape_type{1, 1, 1, 2});
    CHECK(out.data()[0] == 5.0f);
    CHECK(out.data()[1] == 7.0f);
    Tensor dout = Tensor::from_shape({1, 1, 1, 2});
    dout.data()[0] = 10.0f;
    dout.data()[1] = 20.0f;
    Tensor din;
    pool.backward(in, dout, &din);
    const float expected[8] = {0, 10, 20, 0, 0, 0, 0, 0};  // the tie goes to the first 7 in scan order
    for (int i = 0; i < 8; ++i) CHECK(din.data()[i] == expected[i]);
    // Odd sizes drop the last row/column, like PyTorch's floor mode.
    Tensor odd = xt::ones<float>({1, 1, 5, 5});
    pool.forward(odd, out);
    CHECK(out.shape() == Tensor::shape_type{1, 1, 2, 2});
}

TEST_CASE("flatten orders features per image as (C, H, W)") {
    Flatten flat;
    Tensor in = Tensor::from_shape({2, 2, 1, 2});  // {C, B, H, W}
    // value = 100*c + 10*b + w
    for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t b = 0; b < 2; ++b)
            for (std::size_t w = 0; w < 2; ++w) in(c, b, 0, w) = static_cast<float>(100 * c + 10 * b + w);
    Tensor out;
    flat.forward(in, out);
    REQUIRE(out.shape() == Tensor::shape_type{2, 4});
    const float image1[4] = {10, 11, 110, 111};
    for (std::size_t k = 0; k < 4; ++k) CHECK(out(1, k) == image1[k]);
}

TEST_CASE("SmallCnn: 206,922 parameters, PyTorch's init bounds, seeded") {
    Sequential a = make_small_cnn(0);
    Sequential b = make_small_cnn(0);
    Sequential c = make_small_cnn(1);
    CHECK(a.param_count() == kSmallCnnParams);
    CHECK(std::equal(a.params().begin(), a.params().end(), b.params().begin()));
    CHECK_FALSE(std::equal(a.params().begin(), a.params().end(), c.params().begin()));
    struct Slice {
        std::size_t start, size, fan_in;
    };
    const Slice slices[] = {{0, 144, 9},      {144, 16, 9},      {160, 4608, 144},   {4768, 32, 144},
                            {4800, 200704, 1568}, {205504, 128, 1568}, {205632, 1280, 128}, {206912, 10, 128}};
    for (const auto& s : slices) {
        CAPTURE(s.start);
        const double bound = 1.0 / std::sqrt(static_cast<double>(s.fan_in));
        double sum = 0, sq = 0, mx = 0;
        for (std::size_t i = s.start; i < s.start + s.size; ++i) {
            double v = a.params()[i];
            sum += v;
            sq += v * v;
            mx = std::max(mx, std::abs(v));
        }
        CHECK(mx <= bound);
        if (s.size >= 1000) {  // uniform(-b, b): mean 0, standard deviation b / sqrt(3)
            CHECK(std::abs(sum / s.size) < 0.05 * bound);
            CHECK(std::sqrt(sq / s.size) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.03));
        }
    }
}

TEST_CASE("SGD: plain step, then momentum and weight decay as PyTorch defines them") {
    std::vector<float> p{1.0f, -2.0f};
    std::vector<float> g{0.5f, 1.0f};
    Sgd plain(0.1f);
    plain.step(p, g);
    CHECK(p[0] == doctest::Approx(0.95f));
    CHECK(p[1] == doctest::Approx(-2.1f));

    std::vector<float> q{1.0f};
    std::vector<float> h{1.0f};
    Sgd mom(0.1f, 0.9f, 0.01f);
    mom.step(q, h);  // g = 1 + 0.01*1 = 1.01; v = 1.01; q = 1 - 0.101
    CHECK(q[0] == doctest::Approx(0.899f));
    mom.step(q, h);  // g = 1 + 0.00899 = 1.00899; v = 0.9*1.01 + 1.00899 = 1.91799; q = 0.899 - 0.191799
    CHECK(q[0] == doctest::Approx(0.707201f));
}

TEST_CASE("conv -> maxpool -> ReLU (as SmallCnn computes it) equals conv -> ReLU -> maxpool") {
    auto build = [](bool pool_first) {
        std::vector<std::unique_ptr<Layer>> layers;
        layers.push_back(std::make_unique<Conv2d>(1, 2, 3, 1));
        if (pool_first) {
            layers.push_back(std::make_unique<MaxPool2>());
            layers.push_back(std::make_unique<Relu>());
        } else {
            layers.push_back(std::make_unique<Relu>());
            layers.push_back(std::make_unique<MaxPool2>());
        }
        layers.push_back(std::make_unique<Flatten>());
        layers.push_back(std::make_unique<Linear>(2 * 4 * 4, 3));
        return Sequential(std::move(layers));
    };
    Sequential reference = build(false), ours = build(true);
    reference.init(9);
    std::copy(reference.params().begin(), reference.params().end(), ours.params().begin());
    std::mt19937 rng(2);
    Tensor input = random_tensor({1, 5, 8, 8}, rng);  // negatives too, so some windows are all <= 0
    std::vector<std::uint8_t> labels{0, 1, 2, 1, 0};
    auto r1 = reference.compute_gradient(input, labels);
    auto r2 = ours.compute_gradient(input, labels);
    CHECK(r1.loss_sum == doctest::Approx(r2.loss_sum).epsilon(1e-6));
    for (std::size_t i = 0; i < reference.param_count(); ++i) {
        CAPTURE(i);
        CHECK(reference.grads()[i] == doctest::Approx(ours.grads()[i]).epsilon(1e-5));
    }
}

// Issue 17: evaluation's inference pass (a convolution, its max pooling and ReLU in one pass,
// chunk by chunk) gives the very floats of the training forward, for every model, for batches
// that fill several chunks and one that does not, and for odd sizes (pooling drops a row and a
// column) with and without a ReLU after the pooling.
TEST_CASE("infer() equals forward() bit for bit: every model, and conv + maxpool (+ ReLU) on odd sizes") {
    auto same_bits = [](const Tensor& a, const Tensor& b) {
        return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    };
    struct Case {
        const char* name;
        ModelShape shape;
        std::size_t batch;
    };
    const Case cases[] = {{"small-cnn", {1, 28, 28, 10}, 1},  {"small-cnn", {1, 28, 28, 10}, 45},
                          {"small-cnn", {1, 28, 28, 10}, 100}, {"cnn-mnist", {1, 28, 28, 10}, 13},
                          {"cnn-cifar", {3, 32, 32, 10}, 5},  {"mlp", {1, 28, 28, 10}, 7},
                          {"logreg", {1, 28, 28, 10}, 7}};
    for (const auto& c : cases) {
        CAPTURE(std::string(c.name));
        CAPTURE(c.batch);
        Sequential model = find_model(c.name)->make(c.shape, {}, 5);
        std::mt19937 rng(4);
        const Tensor input = random_tensor({c.shape.channels, c.batch, c.shape.height, c.shape.width}, rng, 0.0f, 1.0f);
        const Tensor trained = model.forward(input);
        CHECK(same_bits(model.infer(input), trained));
        CHECK(same_bits(model.forward(input), trained));  // and forward() after infer() is unharmed
    }
    for (const bool relu : {false, true}) {
        CAPTURE(relu);
        std::vector<std::unique_ptr<Layer>> layers;
        layers.push_back(std::make_unique<Conv2d>(3, 5, 3, 1));
        layers.push_back(std::make_unique<MaxPool2>());
        if (relu) layers.push_back(std::make_unique<Relu>());
        layers.push_back(std::make_unique<Flatten>());
        Sequential model(std::move(layers));
        model.init(8);
        std::mt19937 rng(6);
        const Tensor input = random_tensor({3, 300, 9, 7}, rng);  // several chunks; negatives, ties at 0
        const Tensor trained = model.forward(input);
        CHECK(same_bits(model.infer(input), trained));
    }
}

// Issue 15: every catalogue model passes the whole-network gradient check, sampled in every
// layer's weights and biases, and has the parameter count of its PyTorch definition.
TEST_CASE("every model of the catalogue passes a gradient check and has its PyTorch parameter count") {
    struct Case {
        const char* name;
        ModelShape shape;
        std::size_t batch, params;
    };
    ModelOptions two_hidden;
    two_hidden.hidden = {16, 8};
    const Case cases[] = {
        {"small-cnn", {1, 28, 28, 10}, 3, 206'922},
        {"logreg", {1, 28, 28, 10}, 3, 7'850},
        {"logreg", {3, 32, 32, 10}, 2, 30'730},
        {"mlp", {1, 28, 28, 10}, 3, 79'510},  // ByzFL's fc_mnist: 784 -> 100 -> 10
        {"cnn-mnist", {1, 28, 28, 10}, 2, 431'080},
        {"cnn-cifar", {3, 32, 32, 10}, 2, 2'324'630},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const ModelEntry* e = find_model(c.name);
        REQUIRE(e != nullptr);
        CHECK(e->misfit(c.shape).empty());
        Sequential model = e->make(c.shape, {}, 3);
        CHECK(model.param_count() == c.params);
        Sequential same = e->make(c.shape, {}, 3);
        CHECK(std::equal(model.params().begin(), model.params().end(), same.params().begin()));
        std::mt19937 rng(9);
        Tensor input = random_tensor({c.shape.channels, c.batch, c.shape.height, c.shape.width}, rng, 0.0f, 1.0f);
        std::vector<std::uint8_t> labels;
        for (std::size_t b = 0; b < c.batch; ++b) labels.push_back(static_cast<std::uint8_t>((3 * b + 1) % c.shape.classes));
        model.compute_gradient(input, labels);
        std::vector<float> grads(model.grads().begin(), model.grads().end());
        auto params = model.params();
        auto loss = [&] {
            return softmax_cross_entropy(model.forward(input), labels, nullptr).loss_sum / static_cast<double>(c.batch);
        };
        std::vector<double> a, n;
        std::size_t at = 0;
        for (const auto& layer : model.layers()) {
            const std::size_t w = layer->weight_count(), total = layer->param_count();
            for (auto [start, size] : {std::pair{at, w}, std::pair{at + w, total - w}})
                for (std::size_t k = 0; size > 0 && k < 6; ++k) {
                    const std::size_t i = start + (k * 7919) % size;
                    a.push_back(grads[i]);
                    n.push_back(central_difference(params[i], 1e-2f, loss));
                }
            at += total;
        }
        CHECK(at == c.params);
        CHECK(relative_error(a, n) < 3e-2);
    }
    ModelOptions deep;
    deep.hidden = {16, 8};
    CHECK(find_model("mlp")->make({3, 8, 8, 5}, deep, 0).param_count() == 192 * 16 + 16 + 16 * 8 + 8 + 8 * 5 + 5);
    // Misfits name what the model takes.
    CHECK(find_model("cnn-cifar")->misfit({1, 28, 28, 10}) == "takes 3x32x32 images");
    CHECK(find_model("small-cnn")->misfit({1, 28, 28, 47}) == "has 10 classes");
    CHECK(find_model("logreg")->misfit({3, 32, 32, 100}).empty());
}

// Issue 17: models that borrow their scratch from a shared pool (nodes as threads of one
// process) compute what models with their own compute, bit for bit, however many threads
// contend for how few workspaces.
TEST_CASE("a shared workspace pool: the same gradients and evaluations, threads contending for one workspace") {
    std::mt19937 rng(3);
    constexpr int kModels = 4, kSteps = 6;
    std::vector<Tensor> inputs;
    std::vector<std::vector<std::uint8_t>> labels;
    for (int m = 0; m < kModels; ++m) {
        inputs.push_back(random_tensor({1, 8, 28, 28}, rng, 0.0f, 1.0f));
        labels.push_back({static_cast<std::uint8_t>(m), 1, 2, 3, 4, 5, 6, 7});
    }
    auto train = [&](Sequential& model, int m) {  // kSteps SGD steps; the gradient of each
        std::vector<std::vector<float>> out;
        Sgd sgd(0.05f);
        for (int s = 0; s < kSteps; ++s) {
            model.compute_gradient(inputs[m], labels[m]);
            out.emplace_back(model.grads().begin(), model.grads().end());
            sgd.step(model.params(), model.grads());
        }
        return out;
    };
    std::vector<std::vector<std::vector<float>>> own(kModels), shared(kModels);
    for (int m = 0; m < kModels; ++m) {
        Sequential model = make_small_cnn(static_cast<std::uint64_t>(m));
        own[m] = train(model, m);
    }
    auto pool = std::make_shared<WorkspacePool>(1);
    std::vector<Sequential> models;
    for (int m = 0; m < kModels; ++m) {
        models.push_back(make_small_cnn(static_cast<std::uint64_t>(m)));
        models.back().share_workspaces(pool);
    }
    std::vector<std::thread> threads;
    for (int m = 0; m < kModels; ++m) threads.emplace_back([&, m] { shared[m] = train(models[m], m); });
    for (auto& t : threads) t.join();
    for (int m = 0; m < kModels; ++m) {
        CAPTURE(m);
        CHECK(shared[m] == own[m]);
    }
    // An evaluation borrows per batch: the same loss and accuracy as with the model's own.
    p2p::data::Dataset ds;
    ds.count = 250;
    ds.rows = ds.cols = 28;
    ds.classes = 10;
    ds.pixels.resize(ds.count * 28 * 28);
    for (auto& p : ds.pixels) p = static_cast<std::uint8_t>(rng() % 256);
    ds.labels.resize(ds.count);
    for (auto& l : ds.labels) l = static_cast<std::uint8_t>(rng() % 10);
    Sequential alone = make_small_cnn(0);
    const auto e_own = evaluate(alone, ds), e_shared = evaluate(models[0], ds);
    CHECK(e_own.count == 250);
    CHECK(e_shared.loss != e_own.loss);  // models[0] has trained, alone has not
    Sequential fresh = make_small_cnn(0);
    fresh.share_workspaces(pool);
    const auto e_fresh = evaluate(fresh, ds);
    CHECK(e_fresh.loss == e_own.loss);
    CHECK(e_fresh.accuracy == e_own.accuracy);
}
