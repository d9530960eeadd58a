#include "p2pnode/node/local_trainer.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/node/metrics.hpp"

namespace p2p::node {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

LocalTrainResult train_locally(const LocalTrainSettings& s, const data::MnistData& data) {
    const TrainingOptions& t = s.training;
    MetricsWriter metrics = s.metrics_path.empty() ? MetricsWriter() : MetricsWriter(s.metrics_path);
    const nn::ModelEntry* entry = nn::find_model(s.model);
    if (!entry) throw ConfigError(fmt::format("unknown model '{}'", s.model));
    nn::Sequential model = entry->make(t.seed);
    nn::Sgd sgd(static_cast<float>(t.learning_rate), s.momentum, s.weight_decay);
    // Each shard shuffles with its own stream, derived from the run's seed.
    data::BatchSampler sampler(data::shard_indices(data.train.count, s.shard, s.shards),
                               static_cast<std::size_t>(t.batch_size), t.seed * 1000003ULL + s.shard);
    std::vector<float> pixels;
    std::vector<std::uint8_t> labels;
    nn::Tensor input = nn::Tensor::from_shape(
        {data.train.channels, static_cast<std::size_t>(t.batch_size), data.train.rows, data.train.cols});

    LocalTrainResult result;
    double compute_total = 0;
    const auto run_start = Clock::now();
    for (int round = 1; round <= t.rounds; ++round) {
        const auto t0 = Clock::now();
        data::gather_batch(data.train, sampler.next(), pixels, labels);
        std::copy_n(pixels.data(), input.size(), input.data());
        const nn::LossResult r = model.compute_gradient(input, labels);
        sgd.step(model.params(), model.grads());
        const double compute = seconds_since(t0);
        compute_total += compute;
        const double train_loss = r.loss_sum / t.batch_size;
        result.rounds_done = round;

        spdlog::info("[Node {}] Round {}/{} (train loss {:.4f})", s.node_id, round, t.rounds, train_loss);
        const bool stopping = s.stop_requested && s.stop_requested();
        const bool last = round == t.rounds || stopping;
        MetricsRow row;
        row.add("round", static_cast<long long>(round)).add("train_loss", train_loss);
        if (last || (t.eval_every > 0 && round % t.eval_every == 0)) {
            const auto e0 = Clock::now();
            result.final_eval = nn::evaluate(model, data.test);
            row.add("loss", result.final_eval.loss).add("acc", result.final_eval.accuracy);
            row.add("seconds_eval", seconds_since(e0));
            spdlog::info("[Node {}] Eval: loss={:.4f}, acc={:.4f}", s.node_id, result.final_eval.loss,
                         result.final_eval.accuracy);
        } else {
            row.add_null("loss").add_null("acc");
        }
        row.add("seconds_compute", compute).add("seconds_total", seconds_since(run_start));
        metrics.write(row);
        if (stopping && round < t.rounds) {
            spdlog::info("[Node {}] stopping early at round {}/{} as asked", s.node_id, round, t.rounds);
            break;
        }
    }
    result.seconds_per_round = result.rounds_done ? compute_total / result.rounds_done : 0;
    spdlog::info("[Node {}] Final: loss={:.4f}, acc={:.4f}", s.node_id, result.final_eval.loss,
                 result.final_eval.accuracy);
    result.params.assign(model.params().begin(), model.params().end());
    return result;
}

}  // namespace p2p::node
