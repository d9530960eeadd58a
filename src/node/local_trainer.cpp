#include "p2pnode/node/local_trainer.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/node/metrics.hpp"
#include "p2pnode/node/trainer.hpp"

namespace p2p::node {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

LocalTrainResult train_locally(const LocalTrainSettings& s, const data::MnistData& data) {
    const TrainingOptions& t = s.training;
    MetricsWriter metrics = s.metrics_path.empty() ? MetricsWriter() : MetricsWriter(s.metrics_path);
    Trainer trainer(t, s.model, s.shard, s.shards, data, s.momentum, s.weight_decay, s.partition, s.model_options);

    LocalTrainResult result;
    double compute_total = 0;
    const auto run_start = Clock::now();
    for (int round = 1; round <= t.rounds; ++round) {
        const auto t0 = Clock::now();
        trainer.schedule(round);
        trainer.next_batch();
        const double train_loss = trainer.gradient();
        trainer.step(trainer.grads());
        const double compute = seconds_since(t0);
        compute_total += compute;
        result.rounds_done = round;

        spdlog::info("[Node {}] Round {}/{} (train loss {:.4f})", s.node_id, round, t.rounds, train_loss);
        const bool stopping = s.stop_requested && s.stop_requested();
        const bool last = round == t.rounds || stopping;
        MetricsRow row;
        row.add("round", static_cast<long long>(round)).add("train_loss", train_loss);
        if (trainer.evaluates(round, last)) {
            const auto e0 = Clock::now();
            result.final_eval = trainer.evaluate();
            row.add("loss", result.final_eval.loss).add("acc", result.final_eval.accuracy);
            row.add("seconds_eval", seconds_since(e0));
            spdlog::info("[Node {}] Eval: round {}, loss={:.4f}, acc={:.4f}", s.node_id, round, result.final_eval.loss,
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
    result.params.assign(trainer.params().begin(), trainer.params().end());
    return result;
}

}  // namespace p2p::node
