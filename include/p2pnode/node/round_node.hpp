// The round protocol (decentralized SGD with robust aggregation), over any Transport.
//
// Round r, honest node i: compute g_i on its shard's next batch; send GRAD{round r} to its
// neighbours; gather their GRAD for round r until all arrived, or the soft deadline passed with
// the quorum in, or the hard deadline; aggregate own + received sorted by sender id; step.
// Byzantine node b: gather the round's GRAD from its honest neighbours, forge with the attack,
// send. One message per (sender, round) counts; stale rounds, rounds beyond the future window,
// wrong dim, non-finite payloads, senders that are not neighbours and undecodable frames are
// dropped and counted by reason, and so are rounds outside 1..rounds. A neighbour that missed
// a deadline, said BYE or did not answer at start-up is absent: reported once, and waited for
// again only once a message of it counts for the current round (meanwhile at most
// absent_grace a round, and only while it sends for rounds within the future window behind).
// A node whose neighbours went on (f + 1 of them vouch for a later round) skips ahead to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/nn/model.hpp"
#include "p2pnode/node/topology.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode/transport/transport.hpp"

namespace p2p::node {

struct NodeSettings {
    std::uint32_t id = 0;
    NodeType type = NodeType::Honest;
    std::vector<std::uint32_t> neighbours;         // sorted
    std::vector<std::uint32_t> honest_neighbours;  // the ones a Byzantine node forges from
    std::vector<std::size_t> neighbour_degrees;    // by position in neighbours (Metropolis weights)
    // A time-varying graph (null: the neighbours above every round). `neighbours` then holds every
    // node linked to this one in some round (whom the transport connects to and says BYE to), and
    // each round sends to, waits for and accepts gradients from that round's neighbours only.
    std::shared_ptr<const TimeVarying> varying;
    TrainingOptions training;                      // rounds, batch, lr, seed, eval_every, exchange, self weight
    std::size_t shard = 0, shards = 1;             // honest index h of H: shard h of the partition
    data::PartitionSpec partition;                 // how the training set is split (strided: h, h+H, ...)
    std::string model = "small-cnn";               // a row of nn::models()
    nn::ModelOptions model_options;                // mlp: hidden sizes

    std::string aggregator = "median";
    std::vector<std::string> pre_aggregators;
    robust::Params robust;                  // f, tau, iterations, ...
    std::string f_reason;                   // where f came from ("--f", or the topology's worst honest node)
    std::string attack = "empire";
    robust::AttackParams attack_params;     // scale, n, f, ...

    std::size_t quorum = 0;                 // received gradients enough after the soft deadline
    bool quorum_given = false;              // a time-varying graph's default: each round's neighbours - f
    std::chrono::milliseconds soft_timeout{5000};
    std::chrono::milliseconds hard_timeout{30000};
    std::chrono::milliseconds absent_grace{200};  // how long a round waits for an absent neighbour
    std::chrono::milliseconds startup_timeout{60000};
    std::chrono::milliseconds farewell_timeout{3000};  // after the last round: waiting for the neighbours' Bye
    std::uint64_t future_window = 4;        // rounds ahead that are buffered (see horizon())
    std::size_t future_per_neighbour = 4;   // ... and at most this many messages of one neighbour
    // The most rounds a node can be ahead of this one while this one is still in its round: 1 on
    // a static graph (a neighbour cannot finish the next round without this node); on a
    // time-varying one the flood bound, since a neighbour may go on through rounds whose peers
    // do not wait for this node (for each neighbour, until the next round it shares with this one).
    std::uint64_t lead = 1;
    // Rounds ahead that are buffered: the future window, and at least `lead` (what is
    // legitimately ahead is kept, not refused as too far ahead).
    std::uint64_t horizon() const { return future_window > lead ? future_window : lead; }
    std::uint64_t stop_margin = 3;          // Ctrl-C: rounds on to stop after (2 x the node's eccentricity + 1)

    std::string metrics_path;               // JSONL, one row per round ("" = none)
    std::string checkpoint_dir;             // node-<id>.ckpt there ("" = none)
    int checkpoint_every = 10;              // rounds between checkpoints (and one at exit)
    bool resume = false;                    // start from the checkpoint (every node rejoins its neighbours' round)
    std::function<bool()> stop_requested;   // checked between rounds
    std::shared_ptr<nn::WorkspacePool> workspaces;  // nodes as threads: the passes' shared scratch (null: its own)
};

struct NodeResult {
    int rounds_done = 0;
    nn::EvalResult final_eval;          // honest nodes
    double seconds_per_round = 0;       // mean wall time of a round
    double seconds_compute = 0, seconds_wait = 0, seconds_aggregate = 0;  // totals over the rounds
    double seconds_eval = 0;            // total spent evaluating on the test set (in seconds_per_round)
    std::map<std::string, std::uint64_t> rejected;  // by reason
    transport::Counters counters;
    std::vector<float> params;          // the final model (honest nodes)
};

NodeResult run_node(const NodeSettings& s, transport::Transport& t, const data::MnistData& data);

}  // namespace p2p::node
