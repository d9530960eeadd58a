// A program outside the tree, built against the installed p2pnode (pkg-config --cflags --libs
// p2pnode): a robust rule on a few vectors and one local training step of the default model.
// Prints what it computed; exits non-zero when a result is wrong.
#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include <p2pnode/nn/layers.hpp>
#include <p2pnode/nn/model.hpp>
#include <p2pnode/robust/robust.hpp>

int main() {
    // The coordinate-wise median of five vectors, one of them an outlier.
    const std::vector<std::vector<float>> rows = {{1, 2}, {2, 3}, {3, 4}, {4, 5}, {1000, -1000}};
    std::vector<std::span<const float>> views(rows.begin(), rows.end());
    p2p::robust::Params p;
    p.f = 1;
    auto median = p2p::robust::make_aggregator<float>("median", p);
    std::vector<float> out(2);
    median->aggregate(views, out);
    std::printf("median: %g %g\n", out[0], out[1]);
    if (out[0] != 3 || out[1] != 3) return 1;

    // One SGD step of SmallCnn on a batch of 8 random images: the loss on that batch falls.
    p2p::nn::set_blas_threads(1);
    p2p::nn::Sequential model = p2p::nn::make_small_cnn(0);
    p2p::nn::Tensor input = p2p::nn::Tensor::from_shape({1, 8, 28, 28});
    for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = static_cast<float>((i * 7919) % 256) / 255.0f;
    std::vector<std::uint8_t> labels = {0, 1, 2, 3, 4, 5, 6, 7};
    const double before = model.compute_gradient(input, labels).loss_sum / 8;
    p2p::nn::Sgd sgd(0.05f);
    sgd.step(model.params(), model.grads());
    const double after = model.compute_gradient(input, labels).loss_sum / 8;
    std::printf("SmallCnn: %zu parameters, batch loss %.4f -> %.4f after one step\n", model.param_count(), before,
                after);
    return std::isfinite(after) && after < before && model.param_count() == 206922 ? 0 : 1;
}
