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
#include "p2pnode/node/settings.hpp"
#include "p2pnode/node/trainer.hpp"
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

// A node's links in a round: to whom it sends, whom it waits for, and their degrees (Metropolis).
struct Links {
    std::vector<std::uint32_t> neighbours, honest;  // sorted
    std::vector<std::size_t> degrees;               // by position in neighbours
    std::size_t quorum = 0;
};

// The links of each round: the settings' own on a static graph; on a time-varying one the
// round's graph, made once per epoch for the rounds in flight (this one and the future window).
class RoundLinks {
public:
    explicit RoundLinks(const NodeSettings& s) : s_(s) {
        fixed_.neighbours = s.neighbours;
        fixed_.honest = s.honest_neighbours;
        fixed_.degrees = s.neighbour_degrees;
        fixed_.quorum = s.quorum;
    }

    const Links& at(std::uint64_t round) {
        if (!s_.varying) return fixed_;
        const std::uint64_t epoch = s_.varying->epoch_of(round);
        auto it = cache_.find(epoch);
        if (it != cache_.end()) return it->second;
        // Epochs that never come back: past the rounds in flight (at most horizon + 1 epochs),
        // the lowest is one gone by. A cycle's few epochs all stay.
        if (s_.varying->cycle() == 0 && cache_.size() >= 2 * s_.horizon() + 2) cache_.erase(cache_.begin());
        const Topology g = s_.varying->epoch(epoch);
        Links l;
        l.neighbours = g.neighbours(s_.id);
        for (auto n : l.neighbours) {
            if (std::binary_search(s_.honest_neighbours.begin(), s_.honest_neighbours.end(), n)) l.honest.push_back(n);
            l.degrees.push_back(g.neighbours(n).size());
        }
        const std::size_t deg = l.neighbours.size(), f = s_.robust.f;
        l.quorum = s_.quorum_given ? std::min(s_.quorum, deg) : (deg > f ? deg - f : 0);
        return cache_.emplace(epoch, std::move(l)).first->second;
    }

    bool linked(std::uint64_t round, std::uint32_t from) {
        const auto& n = at(round).neighbours;
        return std::binary_search(n.begin(), n.end(), from);
    }

private:
    const NodeSettings& s_;
    Links fixed_;
    std::map<std::uint64_t, Links> cache_;  // by epoch (a cyclic schedule's epochs come back)
};

class Gather {
public:
    Gather(const NodeSettings& s, std::size_t dim, RoundLinks& links) : s_(s), dim_(dim), links_(links) {
        limits_.max_dim = static_cast<std::uint32_t>(dim);
        for (auto id : s.neighbours) neighbours_.insert(id);
    }

    // Collects round r's gradients from `from` (a subset of the neighbours).
    std::map<std::uint32_t, Grad> collect(transport::Transport& t, std::uint64_t r, const std::vector<std::uint32_t>& from,
                                          std::size_t quorum, std::map<std::string, std::uint64_t>& rejected) {
        std::map<std::uint32_t, Grad> have;
        // Earlier arrivals for this round; those for rounds skipped over (a rejoin) go.
        for (auto it = future_.begin(); it != future_.end();) {
            const auto [from_id, round] = it->first;
            if (round < r) {
                it = future_.erase(it);
            } else if (round == r) {
                bring_back(from_id);
                have.emplace(from_id, std::move(it->second));
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
            if (went_on(r) > 0) break;  // left behind: waiting is in vain, catch up
            const auto now = Clock::now();
            const bool only_absent =
                std::all_of(missing.begin(), missing.end(), [&](auto id) { return absent_.count(id) > 0; });
            // An absent neighbour is waited for (at most the grace) only while it is sending
            // for rounds within the future window behind this one, so that one catching up is
            // taken back; one that is gone or far behind costs nothing.
            const bool any_near = std::any_of(missing.begin(), missing.end(), [&](auto id) {
                auto it = seen_by_.find(id);
                return it != seen_by_.end() && it->second + s_.future_window >= r;
            });
            if (only_absent && (!any_near || now >= start + s_.absent_grace)) {
                // Going on without waiting, but hearing what is already here first: a neighbour
                // coming back, the rounds that tell us to catch up, HELLOs to answer.
                const auto until = Clock::now() + std::chrono::milliseconds(1);
                while (auto m = t.receive(until)) accept(std::move(*m), r, have, rejected);
                break;
            }
            const std::size_t got = have.size();
            if (now >= start + s_.soft_timeout && got >= quorum) {
                mark_absent(missing, r);
                break;
            }
            if (now >= start + s_.hard_timeout) {
                mark_absent(missing, r);
                break;
            }
            Clock::time_point until = std::min(start + s_.hard_timeout, now + std::chrono::milliseconds(250));
            if (got >= quorum) until = std::min(until, start + s_.soft_timeout);
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

    // The highest stop round a neighbour announced (0: none).
    std::uint64_t stop_heard() const { return stop_heard_; }

    // Neighbours that did not answer at start-up: not waited for until they are heard.
    void start_absent(const std::vector<std::uint32_t>& ids) { absent_.insert(ids.begin(), ids.end()); }

    // Where a node left behind (stopped, started late or resumed) rejoins: the highest round
    // that f + 1 neighbours have reached beyond where they could be had they waited for this
    // node, so at least one honest neighbour vouches for it and f liars cannot push it ahead;
    // 0 when fewer than f + 1 went on. A neighbour cannot finish a round it shares with this
    // node without this node's gradient of it: past round r (whose gradient this node has sent)
    // it can reach the next round they share, r + 1 on a static graph, and on a time-varying one
    // never more than r + lead (the flood bound: nobody finishes round r + lead). Only round r's
    // neighbours vouch there (f bounds the Byzantine neighbours of one round, not of the union).
    std::uint64_t went_on(std::uint64_t r) {
        std::vector<std::uint64_t> rounds;
        for (const auto& [id, round] : seen_by_) {
            if (round <= r + 1) continue;  // in step on any graph
            if (s_.varying && (!links_.linked(r, id) || round <= reach(id, r))) continue;
            rounds.push_back(round);
        }
        const std::size_t q = s_.robust.f + 1;
        if (rounds.size() < q) return 0;
        std::nth_element(rounds.begin(), rounds.begin() + static_cast<long>(q - 1), rounds.end(), std::greater<>());
        return rounds[q - 1];
    }

private:
    // The furthest round neighbour `id` can have reached in step with this node in round r: the
    // next round after r they share, at most r + lead.
    std::uint64_t reach(std::uint32_t id, std::uint64_t r) {
        for (std::uint64_t x = r + 1; x < r + s_.lead; ++x)
            if (links_.linked(x, id)) return x;
        return r + s_.lead;
    }

    void bring_back(std::uint32_t id) {
        if (absent_.erase(id)) spdlog::info("[Node {}] node {} is back", s_.id, id);
    }

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
        if (d.header.kind == wire::Kind::Stop) {  // a round of this run only
            if (d.header.round >= 1 && d.header.round <= static_cast<std::uint64_t>(s_.training.rounds))
                stop_heard_ = std::max(stop_heard_, d.header.round);
            else
                ++rejected["beyond_run"];
            return;
        }
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
        if (round == 0 || round > static_cast<std::uint64_t>(s_.training.rounds)) {  // not a round of this run
            ++rejected["beyond_run"];
            return;
        }
        auto& mine = seen_by_[from];
        mine = std::max(mine, round);
        if (round < r) {
            ++rejected["stale"];
            return;
        }
        if (round > r + s_.horizon()) {
            ++rejected["too_far_ahead"];
            return;
        }
        if (s_.varying && !links_.linked(round, from)) {  // a neighbour of some round, not of this one
            ++rejected["not_neighbour"];
            return;
        }
        Grad g{std::move(m), std::move(d)};
        if (round == r) {  // only a message that counts for this round brings an absent neighbour back
            if (!have.emplace(from, std::move(g)).second)
                ++rejected["duplicate"];
            else
                bring_back(from);
        } else if (future_.count({from, round})) {
            ++rejected["duplicate"];
        } else if (buffered_from(from) >= s_.future_per_neighbour) {
            // An honest neighbour has one round ahead in flight (it waits for this node's gradient
            // of a round they share) unless it went on without this node; the rounds window can be
            // long on a time-varying graph, so this keeps a liar's cost to the static one's.
            ++rejected["too_far_ahead"];
        } else {
            future_.emplace(std::make_pair(from, round), std::move(g));
        }
    }

    std::size_t buffered_from(std::uint32_t from) const {  // future_ is ordered by sender first
        const auto first = future_.lower_bound({from, 0});
        const auto last = future_.upper_bound({from, std::numeric_limits<std::uint64_t>::max()});
        return static_cast<std::size_t>(std::distance(first, last));
    }

    const NodeSettings& s_;
    std::size_t dim_;
    RoundLinks& links_;
    wire::Limits limits_;
    std::set<std::uint32_t> neighbours_, absent_, said_bye_;
    std::map<std::pair<std::uint32_t, std::uint64_t>, Grad> future_;  // (sender, round) -> a later round's
    std::map<std::uint32_t, std::uint64_t> seen_by_;  // neighbour -> highest round it sent
    std::uint64_t stop_heard_ = 0;
};

// Every reason a message or a round is counted for, in the order of the metrics columns.
constexpr const char* kRejectReasons[] = {"malformed",     "wrong_dim",    "non_finite",     "stale",
                                          "too_far_ahead", "beyond_run",   "duplicate",      "from_mismatch",
                                          "not_neighbour", "rounds_skipped", "rounds_without_aggregation"};

void send_grad(transport::Transport& t, const NodeSettings& s, const std::vector<std::uint32_t>& to, std::uint64_t round,
               std::span<const float> g, wire::Kind kind = wire::Kind::Grad) {
    wire::Header h;
    h.kind = kind;
    h.from = s.id;
    h.round = round;
    h.dim = kind == wire::Kind::Grad ? static_cast<std::uint32_t>(g.size()) : 0;
    const auto header = wire::encode_header(h);
    t.send(to, header, kind == wire::Kind::Grad ? wire::payload_bytes(g) : std::span<const std::byte>());
}

// What a node does around the shared gather: an honest node computes and sends its vector,
// then aggregates and steps; a Byzantine node forges from what it heard and sends.
class Role {
public:
    virtual ~Role() = default;
    // Before the gather: the round's own computation and sends. Returns the train loss (NaN: none).
    virtual double before_gather(std::uint64_t r) = 0;
    // The neighbours whose messages round r gathers.
    virtual const std::vector<std::uint32_t>& sources(std::uint64_t r) = 0;
    // After the gather, on what arrived (sorted by sender). Returns the round's log line.
    virtual std::string after_gather(std::uint64_t r, int round, std::map<std::uint32_t, Grad>& got) = 0;
    virtual bool honest() const = 0;
};

class HonestNode final : public Role {
public:
    HonestNode(const NodeSettings& s, transport::Transport& t, Trainer& trainer, NodeResult& result, RoundLinks& links)
        : s_(s), t_(t), trainer_(trainer), result_(result), links_(links), pipeline_(s.pre_aggregators, s.aggregator, s.robust),
          model_exchange_(s.training.exchange == "model"), metropolis_(s.training.mixing == "metropolis"), lr_(static_cast<float>(s.training.learning_rate)),
          aggregate_(trainer.dim()), half_(model_exchange_ ? trainer.dim() : 0) {}

    double before_gather(std::uint64_t r) override {
        lr_ = trainer_.schedule(static_cast<int>(r));
        trainer_.next_batch();
        const double loss = trainer_.gradient();
        vector_ = trainer_.worker_vector();  // the gradient, or the worker momentum
        if (model_exchange_) {  // the half step theta - lr * g
            const auto params = trainer_.params();
            for (std::size_t k = 0; k < half_.size(); ++k) half_[k] = params[k] - lr_ * vector_[k];
        }
        send_grad(t_, s_, links_.at(r).neighbours, r, own_vector());
        return loss;
    }

    const std::vector<std::uint32_t>& sources(std::uint64_t r) override { return links_.at(r).neighbours; }

    std::string after_gather(std::uint64_t r, int round, std::map<std::uint32_t, Grad>& got) override {
        std::vector<std::pair<std::uint32_t, std::span<const float>>> inputs;
        inputs.emplace_back(s_.id, own_vector());
        for (auto& [from, g] : got) inputs.emplace_back(from, g.decoded.payload);
        std::sort(inputs.begin(), inputs.end(), [](auto& a, auto& b) { return a.first < b.first; });
        std::vector<std::span<const float>> views;
        for (auto& [from, v] : inputs) views.push_back(v);
        std::size_t aggregated = 0;
        try {
            if (metropolis_)
                metropolis(got, links_.at(r));
            else
                pipeline_.aggregate(views, aggregate_);
            robust::mix_own<float>(own_vector(), aggregate_, s_.training.self_weight);
            if (model_exchange_)
                std::copy(aggregate_.begin(), aggregate_.end(), trainer_.params().begin());
            else
                trainer_.step(aggregate_);
            aggregated = views.size();
        } catch (const robust::RobustError& e) {
            // Too few neighbours left for the rule's bound: step on our own gradient rather
            // than stop, and say so once.
            if (!warned_bound_)
                spdlog::warn("[Node {}] Round {}: {}; stepping on its own gradient", s_.id, round, e.what());
            warned_bound_ = true;
            ++result_.rejected["rounds_without_aggregation"];
            if (model_exchange_)
                std::copy(half_.begin(), half_.end(), trainer_.params().begin());
            else
                trainer_.step(vector_);
            aggregated = 1;
        }
        return fmt::format("[Node {}] Round {}/{} (aggregated {} {})", s_.id, round, s_.training.rounds, aggregated,
                           model_exchange_ ? "models" : "gradients");
    }

    bool honest() const override { return true; }

private:
    // What an honest node sends and aggregates as its own: its gradient or its half step.
    std::span<const float> own_vector() const {
        if (model_exchange_) return half_;
        return vector_;
    }

    // --mixing metropolis (the mean's weights by degree): each neighbour heard this round weighs
    // W_ij = 1/(1 + max(d_i, d_j)), oneself the rest (a neighbour not heard leaves its weight
    // with oneself), summed in id order.
    void metropolis(const std::map<std::uint32_t, Grad>& got, const Links& links) {
        const auto own = own_vector();
        const auto& mine = links.neighbours;
        const std::size_t d = mine.size();
        double self = 1.0;
        std::fill(aggregate_.begin(), aggregate_.end(), 0.0f);
        for (const auto& [from, g] : got) {
            const auto at = std::lower_bound(mine.begin(), mine.end(), from);
            if (at == mine.end() || *at != from) continue;
            const std::size_t dj = links.degrees[static_cast<std::size_t>(at - mine.begin())];
            const double w = 1.0 / static_cast<double>(1 + std::max(d, dj));
            self -= w;
            const auto& v = g.decoded.payload;
            const auto wf = static_cast<float>(w);
            for (std::size_t k = 0; k < aggregate_.size(); ++k) aggregate_[k] += wf * v[k];
        }
        const auto sf = static_cast<float>(self);
        for (std::size_t k = 0; k < aggregate_.size(); ++k) aggregate_[k] += sf * own[k];
    }

    const NodeSettings& s_;
    transport::Transport& t_;
    Trainer& trainer_;
    NodeResult& result_;
    RoundLinks& links_;
    robust::Pipeline<float> pipeline_;
    bool model_exchange_;
    bool metropolis_;  // --mixing metropolis: weights by degree instead of the rule
    float lr_;
    std::span<const float> vector_;  // this round's gradient or worker momentum (the trainer's)
    std::vector<float> aggregate_, half_;
    bool warned_bound_ = false;
};

// --exchange model: honest nodes send the half step theta - lr * g and adopt the aggregate of
// half steps. A Byzantine node then keeps `reference` (in its model's parameters, so that
// checkpoints keep it): the honest models as it last heard them, on average (at first the
// shared initial model). What it hears, h_j, becomes the gradient g_j = (reference - h_j)/lr
// that h_j implies, the attack forges g_b from those, and it sends reference - lr * g_b: every
// gradient attack keeps its meaning.
class ByzantineNode final : public Role {
public:
    ByzantineNode(const NodeSettings& s, transport::Transport& t, Trainer& trainer, RoundLinks& links)
        : s_(s), t_(t), trainer_(trainer), links_(links), attack_(robust::make_attack<float>(s.attack, s.attack_params)),
          needs_(robust::attack(s.attack).needs), mean_(robust::make_aggregator<float>("mean", {})),
          model_exchange_(s.training.exchange == "model"), lr_(static_cast<float>(s.training.learning_rate)),
          forged_(trainer.dim()) {}

    double before_gather(std::uint64_t r) override {
        lr_ = trainer_.schedule(static_cast<int>(r));  // the honest nodes' rate this round
        return NAN;
    }

    const std::vector<std::uint32_t>& sources(std::uint64_t r) override { return links_.at(r).honest; }

    std::string after_gather(std::uint64_t r, int round, std::map<std::uint32_t, Grad>& got) override {
        const std::size_t dim = trainer_.dim();
        std::vector<std::span<const float>> heard;
        for (auto& [from, g] : got) heard.push_back(g.decoded.payload);  // sorted by sender
        const auto reference = trainer_.params();
        if (model_exchange_) {  // half steps -> the gradients they imply
            implied_.resize(heard.size());
            for (std::size_t h = 0; h < heard.size(); ++h) {
                implied_[h].resize(dim);
                for (std::size_t k = 0; k < dim; ++k) implied_[h][k] = (reference[k] - heard[h][k]) / lr_;
            }
            heard.assign(implied_.begin(), implied_.end());
        }
        robust::AttackInput<float> in;
        in.honest = heard;
        if (needs_.own_gradient) {
            trainer_.next_batch(needs_.flipped_labels);
            trainer_.gradient();
            own_.assign(trainer_.grads().begin(), trainer_.grads().end());
            in.own = own_;
            in.flipped_gradient = [&](std::span<float> out) { std::copy(own_.begin(), own_.end(), out.begin()); };
        }
        if (heard.empty() && needs_.honest_inputs) {
            spdlog::warn("[Node {}] Round {}: heard no honest gradient; sending nothing", s_.id, round);
        } else {
            attack_->forge(in, forged_);
            if (model_exchange_) {
                for (std::size_t k = 0; k < dim; ++k) forged_[k] = reference[k] - lr_ * forged_[k];
                if (!got.empty()) {  // the next reference: the honest half steps it heard, on average
                    std::vector<std::span<const float>> models;
                    for (auto& [from, g] : got) models.push_back(g.decoded.payload);
                    mean_->aggregate(models, reference);
                }
            }
            send_grad(t_, s_, links_.at(r).neighbours, r, forged_);
        }
        return fmt::format("[Node {}] Round {}/{} (forged from {} gradients)", s_.id, round, s_.training.rounds,
                           got.size());
    }

    bool honest() const override { return false; }

private:
    const NodeSettings& s_;
    transport::Transport& t_;
    Trainer& trainer_;
    RoundLinks& links_;
    std::unique_ptr<robust::Attack<float>> attack_;
    robust::AttackNeeds needs_;
    std::unique_ptr<robust::Aggregator<float>> mean_;  // the next reference
    bool model_exchange_;
    float lr_;
    std::vector<float> forged_, own_;
    std::vector<std::vector<float>> implied_;
};

}  // namespace

NodeResult run_node(const NodeSettings& s, transport::Transport& t, const data::MnistData& data) {
    const TrainingOptions& tr = s.training;
    check_shard(s, data.train);
    Trainer trainer(tr, s.model, s.shard, s.shards, data, 0.0f, 0.0f, s.partition, s.model_options);
    if (s.workspaces) trainer.share_workspaces(s.workspaces);
    const std::size_t dim = trainer.dim();
    NodeResult result;
    RoundLinks links(s);
    std::unique_ptr<Role> role;
    if (s.type == NodeType::Honest)
        role = std::make_unique<HonestNode>(s, t, trainer, result, links);
    else
        role = std::make_unique<ByzantineNode>(s, t, trainer, links);
    const bool honest = role->honest();

    int first_round = 1;
    const std::string ckpt = s.checkpoint_dir.empty() ? "" : checkpoint_path(s.checkpoint_dir, s.id);
    if (s.resume && !ckpt.empty()) {
        if (!std::filesystem::exists(ckpt)) {
            spdlog::warn("[Node {}] --resume: no checkpoint at {}; starting from round 1", s.id, ckpt);
        } else {
            const Checkpoint c = load_checkpoint(ckpt);  // refuses a corrupted one
            // A valid CRC says the file is whole, not that it fits this run: check every field.
            if (c.node != s.id || c.params.size() != dim)
                throw IoError(fmt::format("{}: the checkpoint is node {}'s with {} parameters, not node {}'s with {}",
                                          ckpt, c.node, c.params.size(), s.id, dim));
            if (c.round > static_cast<std::uint64_t>(tr.rounds))
                throw IoError(fmt::format("{}: the checkpoint is after round {}, but this run has {} rounds", ckpt,
                                          c.round, tr.rounds));
            if (!c.velocity.empty() && c.velocity.size() != dim)
                throw IoError(fmt::format("{}: the checkpoint's optimizer state has {} values, not {}", ckpt,
                                          c.velocity.size(), dim));
            auto finite = [](const std::vector<float>& v) {
                return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
            };
            if (!finite(c.params) || !finite(c.velocity))
                throw IoError(fmt::format("{}: the checkpoint's model holds values that are not finite", ckpt));
            std::copy(c.params.begin(), c.params.end(), trainer.params().begin());
            trainer.worker_momentum() = c.velocity;  // a node's optimizer state: its worker momentum
            try {
                trainer.sampler().restore(c.sampler_state);
            } catch (const std::invalid_argument& e) {
                throw IoError(fmt::format("{}: {}", ckpt, e.what()));
            }
            first_round = static_cast<int>(c.round) + 1;
            spdlog::info("[Node {}] resumed from {} after round {}", s.id, ckpt, c.round);
            if (first_round > tr.rounds) {
                spdlog::info("[Node {}] the checkpoint is after the last round: nothing left to train", s.id);
                result.rounds_done = tr.rounds;
                if (honest) result.final_eval = trainer.evaluate();
            }
        }
    }
    // A resumed node redoes the rounds after its checkpoint: their old rows go.
    std::optional<MetricsWriter> metrics_file;
    if (!s.metrics_path.empty()) {
        if (s.resume)
            metrics_file.emplace(s.metrics_path, static_cast<std::uint64_t>(first_round - 1));
        else
            metrics_file.emplace(s.metrics_path);
    }
    MetricsWriter none;
    MetricsWriter& metrics = metrics_file ? *metrics_file : none;
    auto save = [&](int round) {
        if (ckpt.empty()) return;
        Checkpoint c;
        c.node = s.id;
        c.round = static_cast<std::uint64_t>(round);
        c.params.assign(trainer.params().begin(), trainer.params().end());
        c.velocity = trainer.worker_momentum();
        c.sampler_state = trainer.sampler().save();
        save_checkpoint(ckpt, c);
    };
    const auto missing = t.wait_ready(s.neighbours, Clock::now() + s.startup_timeout);
    if (!missing.empty())
        spdlog::warn("[Node {}] starting without {} neighbour(s) that did not answer: {}", s.id, missing.size(),
                     fmt::join(missing, ", "));
    spdlog::info("[Node {}] {} node, neighbours {}, {}", s.id, to_string(s.type), fmt::join(s.neighbours, ", "),
                 honest ? fmt::format("aggregator {} with f = {} ({})", s.aggregator, s.robust.f, s.f_reason)
                        : fmt::format("attack {}", s.attack));

    Gather gather(s, dim, links);
    gather.start_absent(missing);
    // Ctrl-C: a node asked to stop proposes to stop stop_margin rounds on (2 x its eccentricity
    // + 1) and goes on in step with its neighbours, telling them its target at the start of
    // every round (STOP, sent before the round's gradient, so a neighbour has it before it can
    // finish that round). It adopts the latest target it hears, up to 2 x stop_margin beyond
    // its own. The latest proposal travels a hop a round and nodes d hops apart are at most d
    // rounds apart, so nodes asked together all learn it before any reaches its own target:
    // they stop after the same round. A neighbour's STOP alone never stops a node.
    std::optional<std::uint64_t> own_stop, stop_after;
    auto agree_stop = [&](std::uint64_t r) {
        if (!s.stop_requested || !s.stop_requested()) return;
        const auto last = static_cast<std::uint64_t>(tr.rounds);
        if (!own_stop) own_stop = std::min(r + s.stop_margin, last);
        const std::uint64_t target =
            std::min({std::max(*own_stop, std::min(gather.stop_heard(), *own_stop + 2 * s.stop_margin)), last});
        if (!stop_after) spdlog::info("[Node {}] asked to stop: stopping after round {}", s.id, target);
        stop_after = target;
    };
    const auto run_start = Clock::now();
    transport::Counters last = t.counters();
    for (int round = first_round; round <= tr.rounds; ++round) {
        const auto r = static_cast<std::uint64_t>(round);
        const auto t0 = Clock::now();
        agree_stop(r);
        // Before this round's gradient, to this round's neighbours: on a time-varying graph the
        // news travels along each round's edges, as the flood bound counts; STOPs to every node
        // linked in some round, every round, would be up to 2 x flood messages to one node while
        // it sits in a round, past the broker's share for one sender (and its gradient dropped).
        if (stop_after) send_grad(t, s, links.at(r).neighbours, *stop_after, {}, wire::Kind::Stop);
        const double train_loss = role->before_gather(r);
        const auto t1 = Clock::now();
        auto got = gather.collect(t, r, role->sources(r), links.at(r).quorum, result.rejected);
        const auto t2 = Clock::now();
        if (const auto past = gather.went_on(r); past > 0) {  // the neighbours went on (we were stopped, late or resumed): catch up
            const int target = static_cast<int>(std::min<std::uint64_t>(past + 1, tr.rounds));
            spdlog::info("[Node {}] rejoining at round {} (was at {})", s.id, target, round);
            result.rejected["rounds_skipped"] += static_cast<std::uint64_t>(target - round);
            round = target - 1;
            continue;
        }
        const std::string line = role->after_gather(r, round, got);
        const auto t3 = Clock::now();
        result.rounds_done = round;
        result.seconds_compute += seconds(t1 - t0);
        result.seconds_wait += seconds(t2 - t1);
        result.seconds_aggregate += seconds(t3 - t2);
        agree_stop(r);
        const bool stopping = stop_after && r >= *stop_after;
        const bool last_round = round == tr.rounds || stopping;

        // The same columns in every row of every node and run (a count that stayed 0 is 0), so
        // that rows load as one table.
        MetricsRow row;
        row.add("round", static_cast<long long>(round))
            .add("node", static_cast<long long>(s.id))
            .add("type", std::string(to_string(s.type)));
        spdlog::info("{}", line);
        if (honest) {
            row.add("train_loss", train_loss);
            if (trainer.evaluates(round, last_round)) {
                const auto e0 = Clock::now();
                result.final_eval = trainer.evaluate();
                result.seconds_eval += seconds(Clock::now() - e0);
                spdlog::info("[Node {}] Eval: round {}, loss={:.4f}, acc={:.4f}", s.id, round, result.final_eval.loss,
                             result.final_eval.accuracy);
                row.add("loss", result.final_eval.loss).add("acc", result.final_eval.accuracy);
            } else {
                row.add_null("loss").add_null("acc");
            }
        } else {
            row.add_null("train_loss").add_null("loss").add_null("acc");
        }
        const auto& c = t.counters();
        row.add("seconds_compute", seconds(t1 - t0))
            .add("seconds_wait", seconds(t2 - t1))
            .add("seconds_aggregate", seconds(t3 - t2))
            .add("bytes_in", static_cast<long long>(c.bytes_in - last.bytes_in))
            .add("bytes_out", static_cast<long long>(c.bytes_out - last.bytes_out))
            .add("peers_heard", static_cast<long long>(got.size()));
        for (const char* reason : kRejectReasons) {
            const auto it = result.rejected.find(reason);
            row.add(fmt::format("rejected_{}", reason), static_cast<long long>(it == result.rejected.end() ? 0 : it->second));
        }
        // What the transport dropped before the round saw it, by reason (totals so far).
        for (const auto& [reason, count] : {std::pair{"unknown_peer", c.dropped_unknown_peer},
                                            {"malformed", c.dropped_malformed},
                                            {"unauthenticated", c.dropped_unauthenticated},
                                            {"early", c.dropped_early},
                                            {"conflicting_claims", c.claims_conflicting},
                                            {"send_failures", c.send_failures}})
            row.add(fmt::format("transport_{}", reason), static_cast<long long>(count));
        metrics.write(row);
        last = c;
        if (last_round || (s.checkpoint_every > 0 && round % s.checkpoint_every == 0)) save(round);
        if (stopping && round < tr.rounds) {
            spdlog::info("[Node {}] stopping at round {}/{} as asked", s.id, round, tr.rounds);
            break;
        }
    }
    send_grad(t, s, s.neighbours, static_cast<std::uint64_t>(result.rounds_done) + 1, {}, wire::Kind::Bye);
    result.seconds_per_round = result.rounds_done ? seconds(Clock::now() - run_start) / result.rounds_done : 0;
    if (honest) {
        spdlog::info("[Node {}] Final: loss={:.4f}, acc={:.4f}", s.id, result.final_eval.loss, result.final_eval.accuracy);
        result.params.assign(trainer.params().begin(), trainer.params().end());
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
