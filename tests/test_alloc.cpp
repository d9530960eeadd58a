// After the first steps, a training step allocates nothing: every activation, gradient and
// scratch buffer is reused (fresh pages cost ~10 us per 4 KiB on these machines). Counts calls
// to the global operator new while steps run.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <utility>
#include <vector>

#include "p2pnode/nn/model.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
// 16 random 28 x 28 images, labels 0-9 in turn.
std::pair<p2p::nn::Tensor, std::vector<std::uint8_t>> batch_of_16() {
    p2p::nn::Tensor input = p2p::nn::Tensor::from_shape({1, 16, 28, 28});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (auto& v : input) v = u(rng);
    std::vector<std::uint8_t> labels(16);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    return {std::move(input), std::move(labels)};
}
}  // namespace

TEST_CASE("a training step allocates nothing after the first ones") {
    using namespace p2p::nn;
    set_blas_threads(1);
    Sequential model = make_small_cnn(0);
    Sgd sgd(0.05f);
    const auto [input, labels] = batch_of_16();
    for (int warm = 0; warm < 2; ++warm) {
        model.compute_gradient(input, labels);
        sgd.step(model.params(), model.grads());
    }
    const long before = g_allocations.load();
    for (int step = 0; step < 5; ++step) {
        model.compute_gradient(input, labels);
        sgd.step(model.params(), model.grads());
    }
    CHECK(g_allocations.load() - before == 0);
    // The counter works: a vector does allocate.
    std::vector<int> probe(100);
    CHECK(g_allocations.load() - before >= 1);
}

TEST_CASE("every catalogue model's training step allocates nothing after the first ones") {
    using namespace p2p::nn;
    set_blas_threads(1);
    struct Case {
        const char* name;
        ModelShape shape;
    };
    const Case cases[] = {{"logreg", {1, 28, 28, 10}}, {"mlp", {1, 28, 28, 10}}, {"cnn-mnist", {1, 28, 28, 10}},
                          {"cnn-cifar", {3, 32, 32, 10}}};
    for (const auto& c : cases) {
        CAPTURE(c.name);
        Sequential model = find_model(c.name)->make(c.shape, {}, 0);
        Sgd sgd(0.05f);
        Tensor input = Tensor::from_shape({c.shape.channels, 4, c.shape.height, c.shape.width});
        std::mt19937 rng(1);
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        for (auto& v : input) v = u(rng);
        std::vector<std::uint8_t> labels{0, 3, 7, 9};
        for (int warm = 0; warm < 2; ++warm) {
            model.compute_gradient(input, labels);
            sgd.step(model.params(), model.grads());
        }
        const long before = g_allocations.load();
        for (int step = 0; step < 3; ++step) {
            model.compute_gradient(input, labels);
            sgd.step(model.params(), model.grads());
        }
        CHECK(g_allocations.load() - before == 0);
    }
}

// Issue 17: models sharing a pool of workspaces (nodes as threads) also allocate nothing per
// step once the pool's workspaces have taken their shapes.
TEST_CASE("a step with a shared workspace pool allocates nothing after the first ones") {
    using namespace p2p::nn;
    set_blas_threads(1);
    auto pool = std::make_shared<WorkspacePool>(1);
    Sequential a = make_small_cnn(0), b = make_small_cnn(1);
    a.share_workspaces(pool);
    b.share_workspaces(pool);
    const auto [input, labels] = batch_of_16();
    for (int warm = 0; warm < 2; ++warm) {
        a.compute_gradient(input, labels);
        b.compute_gradient(input, labels);
    }
    const long before = g_allocations.load();
    for (int step = 0; step < 5; ++step) {
        a.compute_gradient(input, labels);
        b.compute_gradient(input, labels);
    }
    CHECK(g_allocations.load() - before == 0);
}
