#include "p2pnode/node/round_node.hpp"

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/robust/catalogue.hpp"
#include "p2pnode/node/checkpoint.hpp"
#include "p2pnode/node/metrics.hpp"
#include "p2pnode/wire/envelope.hpp"

namespace p2p::node {

namespace {

using transport::Clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// One accepted gradient: the transport's message and the decoded view into it.
struct Grad {
    transport::Incoming msg;
    wire::Message decoded;
};

class Gather {
public:
    Gather(const NodeSettings& s, std::size_t dim) : s_(s), dim_(dim) {
        limits_.max_dim = static_cast<std::uint32_t>(dim);
        for (auto id : s.neighbours) neighbours_.insert(id);
    }

    // Collects round r's gradients from `from` (a subset of the neighbours).
    std::map<std::uint32_t, Grad> collect(transport::Transport& t, std::uint64_t r, const std::vector<std::uint32_t>& from,
                                          std::map<std::string, std::uint64_t>& rejected) {
        std::map<std::uint32_t, Grad> have;
        // Earlier arrivals for this round.
        for (auto it = future_.begin(); it != future_.end();) {
            if (it->first.first == r) {
                have.emplace(it->first.second, std::move(it->second));
                it = future_.erase(it);
            } else {
                ++it;
            }
        }
        const auto start = Clock::now();
        auto waiting_for = [&] {
            std::vector<std::uint32_t> out;
            for (auto id : from)
                if (!have.count(id)) out.push_back(id);
            return out;
        };
        while (true) {
            const auto missing = waiting_for();
            if (missing.empty()) break;
            if (s_.stop_requested && s_.stop_requested()) break;  // Ctrl-C: finish this round now
            if (s_.resume && rejoin_round() > r + s_.future_window) break;  // far behind: catch up
            const auto now = Clock::now();
            const bool only_absent =
                std::all_of(missing.begin(), missing.end(), [&](auto id) { return absent_.count(id) > 0; });
            if (only_absent && now >= start + s_.absent_grace) break;
            const std::size_t got = have.size();
            if (now >= start + s_.soft_timeout && got >= s_.quorum) {
                mark_absent(missing, r);
                break;
            }
            if (now >= start + s_.hard_timeout) {
                mark_absent(missing, r);
                break;
            }
            Clock::time_point until = std::min(start + s_.hard_timeout, now + std::chrono::milliseconds(250));
            if (got >= s_.quorum) until = std::min(until, start + s_.soft_timeout);
            if (only_absent) until = std::min(until, start + s_.absent_grace);
            auto m = t.receive(until);
            if (!m) continue;
            accept(std::move(*m), r, have, rejected);
        }
        return have;
    }

    // After the last round: waits until every neighbour has said Bye or is absent, or the
    // deadline passes. Returns whether every neighbour said Bye: then each has done its last
    // round and needs nothing more from us. What arrives meanwhile is not counted.
    bool await_farewells(transport::Transport& t, Clock::time_point deadline) {
        std::map<std::string, std::uint64_t> ignored;
        std::map<std::uint32_t, Grad> unused;
        const std::uint64_t after_last = std::numeric_limits<std::uint64_t>::max();
        auto all_in = [&](const std::set<std::uint32_t>& set) {
            return std::all_of(neighbours_.begin(), neighbours_.end(), [&](auto id) { return set.count(id) > 0; });
        };
        while (!all_in(absent_)) {
            auto m = t.receive(deadline);
            if (!m) break;
            accept(std::move(*m), after_last, unused, ignored);
        }
        return all_in(said_bye_);
    }

    // The highest round that at least f + 1 neighbours have reached, so at least one honest
    // neighbour vouches for it: where a resumed node rejoins. f liars cannot push it ahead.
    std::uint64_t rejoin_round() const {
        std::vector<std::uint64_t> rounds;
        for (const auto& [id, round] : seen_by_) rounds.push_back(round);
        const std::size_t q = s_.robust.f + 1;
        if (rounds.size() < q) return 0;
        std::nth_element(rounds.begin(), rounds.begin() + static_cast<long>(q - 1), rounds.end(), std::greater<>());
        return rounds[q - 1];
    }

private:
    void mark_absent(const std::vector<std::uint32_t>& missing, std::uint64_t r) {
        for (auto id : missing)
            if (absent_.insert(id).second)
                spdlog::warn("[Node {}] Round {}: no gradient from node {}; going on without it", s_.id, r, id);
    }

    void accept(transport::Incoming m, std::uint64_t r, std::map<std::uint32_t, Grad>& have,
                std::map<std::string, std::uint64_t>& rejected) {
        const std::uint32_t from = m.from;
        if (!neighbours_.count(from)) {
            ++rejected["not_neighbour"];
            return;
        }
        wire::Message d;
        try {
            d = wire::decode(m.header.bytes(), m.payload.bytes(), limits_);
        } catch (const ProtocolError&) {
            ++rejected["malformed"];
            return;
        }
        if (d.header.kind == wire::Kind::Bye) {
            absent_.insert(from);
            said_bye_.insert(from);
            return;
        }
        if (absent_.erase(from)) spdlog::info("[Node {}] node {} is back", s_.id, from);
        if (d.header.kind != wire::Kind::Grad) return;  // HELLO: nothing to do here
        if (d.header.from != from) {  // claims another sender than the transport proves
            ++rejected["from_mismatch"];
            return;
        }
        if (d.header.dim != dim_) {
            ++rejected["wrong_dim"];
            return;
        }
        for (float v : d.payload)
            if (!std::isfinite(v)) {
                ++rejected["non_finite"];
                return;
            }
        const std::uint64_t round = d.header.round;
        auto& mine = seen_by_[from];
        mine = std::max(mine, round);
        if (round < r) {
            ++rejected["stale"];
            return;
        }
        if (round > r + s_.future_window) {
            ++rejected["too_far_ahead"];
            return;
        }
        Grad g{std::move(m), std::move(d)};
        if (round == r) {
            if (!have.emplace(from, std::move(g)).second) ++rejected["duplicate"];
        } else if (!future_.emplace(std::make_pair(round, from), std::move(g)).second) {
            ++rejected["duplicate"];
        }
    }

    const NodeSettings& s_;
    std::size_t dim_;
    wire::Limits limits_;
    std::set<std::uint32_t> neighbours_, absent_, said_bye_;
    std::map<std::pair<std::uint64_t, std::uint32_t>, Grad> future_;
    std::map<std::uint32_t, std::uint64_t> seen_by_;  // neighbour -> highest round it sent
};

const nn::ModelEntry& model_entry(const std::string& name) {
    const nn::ModelEntry* e = nn::find_model(name);
    if (!e) throw ConfigError(fmt::format("unknown model '{}'", name));
    return *e;
}

void send_grad(transport::Transport& t, const NodeSettings& s, std::uint64_t round, std::span<const float> g,
               wire::Kind kind = wire::Kind::Grad) {
    wire::Header h;
    h.kind = kind;
    h.from = s.id;
    h.round = round;
    h.dim = kind == wire::Kind::Grad ? static_cast<std::uint32_t>(g.size()) : 0;
    const auto header = wire::encode_header(h);
    t.send(s.neighbours, header, kind == wire::Kind::Grad ? wire::payload_bytes(g) : std::span<const std::byte>());
}

}  // namespace

NodeResult run_node(const NodeSettings& s, transport::Transport& t, const data::MnistData& data) {
    const bool honest = s.type == NodeType::Honest;
    const TrainingOptions& tr = s.training;
    MetricsWriter metrics = s.metrics_path.empty() ? MetricsWriter() : MetricsWriter(s.metrics_path, s.resume);
    nn::Sequential model = model_entry(s.model).make(tr.seed);  // every node starts from the same model
    const std::size_t dim = model.param_count();
    nn::Sgd sgd(static_cast<float>(tr.learning_rate));
    data::BatchSampler sampler(data::shard_indices(data.train.count, s.shard, s.shards),
                               static_cast<std::size_t>(tr.batch_size), tr.seed * 1000003ULL + s.shard);
    std::vector<float> pixels;
    std::vector<std::uint8_t> labels;
    nn::Tensor input = nn::Tensor::from_shape(
        {data.train.channels, static_cast<std::size_t>(tr.batch_size), data.train.rows, data.train.cols});
    robust::Pipeline<float> pipeline(s.pre_aggregators, s.aggregator, s.robust);
    auto attack = robust::make_attack<float>(s.attack, s.attack_params);
    const robust::AttackNeeds needs = robust::attack(s.attack).needs;
    std::vector<float> aggregate(dim), forged(dim);
    // --exchange model: honest nodes send the half step theta - lr * g and adopt the aggregate of
    // half steps. A Byzantine node then keeps `reference` (in its model's parameters, so that
    // checkpoints keep it): the honest models as it last heard them, on average (at first the
    // shared initial model). What it hears, h_j, becomes the gradient g_j = (reference - h_j)/lr
    // that h_j implies, the attack forges g_b from those, and it sends reference - lr * g_b: every
    // gradient attack keeps its meaning.
    const bool model_exchange = tr.exchange == "model";
    const float lr = static_cast<float>(tr.learning_rate);
    std::vector<float> half(model_exchange ? dim : 0);
    std::vector<std::vector<float>> implied;
    auto mean = robust::make_aggregator<float>("mean", {});  // a Byzantine node's next reference
    // What an honest node sends and aggregates as its own: its gradient or its half step.
    auto own_vector = [&]() -> std::span<const float> {
        if (model_exchange) return half;
        return model.grads();
    };

    NodeResult result;
    int first_round = 1;
    const std::string ckpt = s.checkpoint_dir.empty() ? "" : checkpoint_path(s.checkpoint_dir, s.id);
    if (s.resume && !ckpt.empty()) {
        if (!std::filesystem::exists(ckpt)) {
            spdlog::warn("[Node {}] --resume: no checkpoint at {}; starting from round 1", s.id, ckpt);
        } else {
            const Checkpoint c = load_checkpoint(ckpt);  // refuses a corrupted one
            if (c.node != s.id || c.params.size() != dim)
                throw IoError(fmt::format("{}: the checkpoint is node {}'s with {} parameters, not node {}'s with {}",
                                          ckpt, c.node, c.params.size(), s.id, dim));
            std::copy(c.params.begin(), c.params.end(), model.params().begin());
            sgd.velocity() = c.velocity;
            try {
                sampler.restore(c.sampler_state);
            } catch (const std::invalid_argument& e) {
                throw IoError(fmt::format("{}: {}", ckpt, e.what()));
            }
            first_round = static_cast<int>(c.round) + 1;
            spdlog::info("[Node {}] resumed from {} after round {}", s.id, ckpt, c.round);
        }
    }
    auto save = [&](int round) {
        if (ckpt.empty()) return;
        Checkpoint c;
        c.node = s.id;
        c.round = static_cast<std::uint64_t>(round);
        c.params.assign(model.params().begin(), model.params().end());
        c.velocity = sgd.velocity();
        c.sampler_state = sampler.save();
        save_checkpoint(ckpt, c);
    };
    const auto missing = t.wait_ready(s.neighbours, Clock::now() + s.startup_timeout);
    if (!missing.empty())
        spdlog::warn("[Node {}] starting without {} neighbour(s) that did not answer: {}", s.id, missing.size(),
                     fmt::join(missing, ", "));
    spdlog::info("[Node {}] {} node, neighbours {}, {}", s.id, to_string(s.type), fmt::join(s.neighbours, ", "),
                 honest ? fmt::format("aggregator {}", s.aggregator) : fmt::format("attack {}", s.attack));

    Gather gather(s, dim);
    auto draw_batch = [&] {
        data::gather_batch(data.train, sampler.next(), pixels, labels);
        std::copy_n(pixels.data(), input.size(), input.data());
    };
    const auto run_start = Clock::now();
    transport::Counters last = t.counters();
    bool warned_bound = false;
    for (int round = first_round; round <= tr.rounds; ++round) {
        const auto r = static_cast<std::uint64_t>(round);
        const auto t0 = Clock::now();
        double train_loss = NAN;
        if (honest) {
            draw_batch();
            train_loss = model.compute_gradient(input, labels).loss_sum / tr.batch_size;
            if (model_exchange) {
                const auto params = model.params();
                const auto grads = model.grads();
                for (std::size_t k = 0; k < dim; ++k) half[k] = params[k] - lr * grads[k];
            }
            send_grad(t, s, r, own_vector());
        }
        const auto t1 = Clock::now();
        auto got = gather.collect(t, r, honest ? s.neighbours : s.honest_neighbours, result.rejected);
        const auto t2 = Clock::now();
        if (s.resume && gather.rejoin_round() > r + 1) {  // the neighbours went on: rejoin at their next round
            const int target = static_cast<int>(std::min<std::uint64_t>(gather.rejoin_round() + 1, tr.rounds));
            spdlog::info("[Node {}] rejoining at round {} (was at {})", s.id, target, round);
            round = target - 1;
            continue;
        }
        std::size_t aggregated = 0;
        if (honest) {
            std::vector<std::pair<std::uint32_t, std::span<const float>>> inputs;
            inputs.emplace_back(s.id, own_vector());
            for (auto& [from, g] : got) inputs.emplace_back(from, g.decoded.payload);
            std::sort(inputs.begin(), inputs.end(), [](auto& a, auto& b) { return a.first < b.first; });
            std::vector<std::span<const float>> views;
            for (auto& [from, v] : inputs) views.push_back(v);
            try {
                pipeline.aggregate(views, aggregate);
                robust::mix_own<float>(own_vector(), aggregate, tr.self_weight);
                if (model_exchange)
                    std::copy(aggregate.begin(), aggregate.end(), model.params().begin());
                else
                    sgd.step(model.params(), aggregate);
                aggregated = views.size();
            } catch (const robust::RobustError& e) {
                // Too few neighbours left for the rule's bound: step on our own gradient rather
                // than stop, and say so once.
                if (!warned_bound) spdlog::warn("[Node {}] Round {}: {}; stepping on its own gradient", s.id, round, e.what());
                warned_bound = true;
                ++result.rejected["rounds_without_aggregation"];
                if (model_exchange)
                    std::copy(half.begin(), half.end(), model.params().begin());
                else
                    sgd.step(model.params(), model.grads());
                aggregated = 1;
            }
        } else {
            std::vector<std::span<const float>> heard;
            for (auto& [from, g] : got) heard.push_back(g.decoded.payload);  // sorted by sender
            const auto reference = model.params();
            if (model_exchange) {  // half steps -> the gradients they imply
                implied.resize(heard.size());
                for (std::size_t h = 0; h < heard.size(); ++h) {
                    implied[h].resize(dim);
                    for (std::size_t k = 0; k < dim; ++k) implied[h][k] = (reference[k] - heard[h][k]) / lr;
                }
                heard.assign(implied.begin(), implied.end());
            }
            robust::AttackInput<float> in;
            in.honest = heard;
            std::vector<float> own;
            if (needs.own_gradient) {
                draw_batch();
                if (needs.flipped_labels)
                    for (auto& l : labels) l = static_cast<std::uint8_t>(data.train.classes - 1 - l);
                model.compute_gradient(input, labels);
                own.assign(model.grads().begin(), model.grads().end());
                in.own = own;
                in.flipped_gradient = [&](std::span<float> out) { std::copy(own.begin(), own.end(), out.begin()); };
            }
            if (heard.empty() && needs.honest_inputs) {
                spdlog::warn("[Node {}] Round {}: heard no honest gradient; sending nothing", s.id, round);
            } else {
                attack->forge(in, forged);
                if (model_exchange) {
                    for (std::size_t k = 0; k < dim; ++k) forged[k] = reference[k] - lr * forged[k];
                    if (!got.empty()) {  // the next reference: the honest half steps it heard, on average
                        std::vector<std::span<const float>> models;
                        for (auto& [from, g] : got) models.push_back(g.decoded.payload);
                        mean->aggregate(models, reference);
                    }
                }
                send_grad(t, s, r, forged);
            }
        }
        const auto t3 = Clock::now();
        result.rounds_done = round;
        result.seconds_compute += seconds(t1 - t0);
        result.seconds_wait += seconds(t2 - t1);
        result.seconds_aggregate += seconds(t3 - t2);
        const bool stopping = s.stop_requested && s.stop_requested();
        const bool last_round = round == tr.rounds || stopping;

        MetricsRow row;
        row.add("round", static_cast<long long>(round)).add("node", static_cast<long long>(s.id));
        if (honest) {
            spdlog::info("[Node {}] Round {}/{} (aggregated {} {})", s.id, round, tr.rounds, aggregated,
                         model_exchange ? "models" : "gradients");
            row.add("train_loss", train_loss);
            if (last_round || (tr.eval_every > 0 && round % tr.eval_every == 0)) {
                const auto e0 = Clock::now();
                result.final_eval = nn::evaluate(model, data.test);
                result.seconds_eval += seconds(Clock::now() - e0);
                spdlog::info("[Node {}] Eval: loss={:.4f}, acc={:.4f}", s.id, result.final_eval.loss,
                             result.final_eval.accuracy);
                row.add("loss", result.final_eval.loss).add("acc", result.final_eval.accuracy);
            } else {
                row.add_null("loss").add_null("acc");
            }
        } else {
            spdlog::info("[Node {}] Round {}/{} (forged from {} gradients)", s.id, round, tr.rounds, got.size());
        }
        const auto& c = t.counters();
        row.add("seconds_compute", seconds(t1 - t0))
            .add("seconds_wait", seconds(t2 - t1))
            .add("seconds_aggregate", seconds(t3 - t2))
            .add("bytes_in", static_cast<long long>(c.bytes_in - last.bytes_in))
            .add("bytes_out", static_cast<long long>(c.bytes_out - last.bytes_out))
            .add("peers_heard", static_cast<long long>(got.size()));
        for (const auto& [reason, count] : result.rejected) row.add("rejected_" + reason, static_cast<long long>(count));
        metrics.write(row);
        last = c;
        if (last_round || (s.checkpoint_every > 0 && round % s.checkpoint_every == 0)) save(round);
        if (stopping && round < tr.rounds) {
            spdlog::info("[Node {}] stopping at round {}/{} as asked", s.id, round, tr.rounds);
            break;
        }
    }
    send_grad(t, s, static_cast<std::uint64_t>(result.rounds_done) + 1, {}, wire::Kind::Bye);
    result.seconds_per_round = result.rounds_done ? seconds(Clock::now() - run_start) / result.rounds_done : 0;
    if (honest) {
        spdlog::info("[Node {}] Final: loss={:.4f}, acc={:.4f}", s.id, result.final_eval.loss, result.final_eval.accuracy);
        result.params.assign(model.params().begin(), model.params().end());
    } else {
        spdlog::info("[Node {}] Final: byzantine node, {} rounds", s.id, result.rounds_done);
    }
    // Once every neighbour has said Bye, nothing unsent is still needed: close without waiting
    // the linger for our Bye queued to a neighbour that has already left.
    if (result.rounds_done == tr.rounds && gather.await_farewells(t, Clock::now() + s.farewell_timeout))
        t.set_close_linger(std::chrono::milliseconds(200));
    result.counters = t.counters();
    return result;
}

}  // namespace p2p::node
