// Benchmark of one SGD step (forward + backward + update) and of a full test-set evaluation
// of SmallCnn, on this machine, with medians. Run through tools/bench-step.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/nn/model.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
    const int steps = std::max(1, argc > 1 ? std::atoi(argv[1]) : 200);
    const int evals = std::max(1, argc > 2 ? std::atoi(argv[2]) : 3);
    const std::size_t batch = 64;
    const std::string root = p2p::data::default_data_root();
    p2p::nn::set_blas_threads(1);
    auto data = p2p::data::load_mnist_data(root);

    p2p::nn::Sequential model = p2p::nn::make_small_cnn(0);
    p2p::nn::Sgd sgd(0.05f);
    p2p::data::BatchSampler sampler(p2p::data::shard_indices(data->train.count, 0, 1), batch, 0);
    std::vector<float> pixels;
    std::vector<std::uint8_t> labels;
    auto input = p2p::nn::Tensor::from_shape({1, batch, 28, 28});

    std::vector<double> step_ms, fwd_bwd_ms;
    for (int i = 0; i < steps + 10; ++i) {
        p2p::data::gather_batch(data->train, sampler.next(), pixels, labels);
        std::copy_n(pixels.data(), input.size(), input.data());
        const auto t0 = Clock::now();
        model.compute_gradient(input, labels);
        const double fb = ms_since(t0);
        sgd.step(model.params(), model.grads());
        const double st = ms_since(t0);
        if (i >= 10) {  // the first steps size the buffers
            fwd_bwd_ms.push_back(fb);
            step_ms.push_back(st);
        }
    }
    std::vector<double> eval_s;
    double acc = 0;
    for (int i = 0; i < evals; ++i) {
        const auto t0 = Clock::now();
        acc = p2p::nn::evaluate(model, data->test).accuracy;
        eval_s.push_back(ms_since(t0) / 1000.0);
    }
    std::printf("p2pnode SmallCnn, batch %zu, 1 BLAS thread, data %s\n", batch, root.c_str());
    std::printf("step (forward+backward+update): median %.3f ms over %d steps\n", median(step_ms), steps);
    std::printf("forward+backward:               median %.3f ms\n", median(fwd_bwd_ms));
    std::printf("evaluation of %zu test images:  median %.3f s over %d runs (acc %.4f)\n", data->test.count,
                median(eval_s), evals, acc);
    return 0;
}
