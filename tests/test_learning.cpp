// Learning on the real data set (Fashion-MNIST from Debian's dataset-fashion-mnist, or
// P2PNODE_DATA_ROOT): a bounded number of steps on a subset must beat chance clearly.
#include <doctest/doctest.h>

#include <cstdlib>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/nn/model.hpp"

using namespace p2p;

TEST_CASE("SmallCnn learns Fashion-MNIST: loss falls and accuracy far exceeds chance") {
    const char* env = std::getenv("P2PNODE_DATA_ROOT");
    const std::string root = env && *env ? env : data::default_data_root();
    CAPTURE(root);
    auto ds = data::load_mnist_data(root);
    nn::set_blas_threads(1);

    nn::Sequential model = nn::make_small_cnn(0);
    nn::Sgd sgd(0.05f);
    // Shard 0 of 4 (as an honest node of 4 would see it), batches of 64.
    data::BatchSampler sampler(data::shard_indices(ds->train.count, 0, 4), 64, 0);
    std::vector<float> pixels;
    std::vector<std::uint8_t> labels;
    nn::Tensor input = nn::Tensor::from_shape({1, 64, 28, 28});

    // The first 1,000 test images: enough to tell learning from chance (0.10) in CI time.
    data::Dataset subset;
    subset.rows = subset.cols = 28;
    subset.count = 1000;
    subset.pixels.assign(ds->test.pixels.begin(), ds->test.pixels.begin() + 1000 * 784);
    subset.labels.assign(ds->test.labels.begin(), ds->test.labels.begin() + 1000);

    const nn::EvalResult before = nn::evaluate(model, subset);
    double first_losses = 0, last_losses = 0;
    const int steps = 200;
    for (int step = 0; step < steps; ++step) {
        data::gather_batch(ds->train, sampler.next(), pixels, labels);
        std::copy_n(pixels.data(), pixels.size(), input.data());
        auto r = model.compute_gradient(input, labels);
        sgd.step(model.params(), model.grads());
        if (step < 20) first_losses += r.loss_sum / 64;
        if (step >= steps - 20) last_losses += r.loss_sum / 64;
    }
    const nn::EvalResult after = nn::evaluate(model, subset);
    MESSAGE("before: loss " << before.loss << " acc " << before.accuracy << "; after 200 steps: loss " << after.loss
                            << " acc " << after.accuracy);
    CHECK(before.accuracy < 0.3);
    CHECK(last_losses < 0.6 * first_losses);
    CHECK(after.loss < before.loss - 0.8);
    CHECK(after.accuracy > 0.6);
}
