// The training roles (broker.cpp, node.cpp for mesh and hub-client, launch.cpp, keygen.cpp) and
// what they share (common.cpp), declared for main.cpp.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "experiment_flags.hpp"
#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/transport/security.hpp"

namespace p2p::cli {

// Set by SIGINT/SIGTERM: nodes stop after the current round, write metrics, exit 0.
extern std::atomic<bool> g_stop;
void install_stop_handlers();

inline constexpr const char* kAutoDataRoot = "auto";
std::string resolve_data_root(const std::string& flag);
// Both splits of the experiment's data set from its root (`auto` resolved).
std::shared_ptr<const data::MnistData> load_data(const Experiment& e);
std::string join(const std::vector<std::string>& v);


// Flags every training node takes: its identity, its keys, and the experiment's flags (from
// the field table, with the reference's names and defaults).
struct NodeFlags {
    std::string node_id_text = "0";  // --node-id: an id or auto
    int rank_offset = 0;             // --rank-offset: auto's id is the rank minus this
    int node_id = 0;                 // resolved by resolve_identity
    std::string id_source = "--node-id";
    std::string node_type = "honest";
    CLI::Option* node_type_opt = nullptr;
    std::string secret_key;  // CURVE: this node's secret key file
    bool resume = false;
    int data_shard = -1;  // hub-client --data-shard (-1: the node's index among honest nodes)
    ExperimentFlags experiment;
};

// Sets f.node_id and f.id_source from --node-id (a number, or auto: the scheduler's rank);
// CLI::ValidationError on --node-id otherwise.
void resolve_identity(NodeFlags& f);

// The CURVE settings of one party: its own keys from `secret_file`, everybody's public keys
// from the config. Nullopt when no secret key is given.
std::optional<transport::Security> security_of(const std::string& secret_file, const NodesConfig& cfg, bool need_broker);

// A node's experiment: the defaults < the config's sections < --experiment < flags; warnings
// printed. Its catalogue names are checked by node::settings_for.
Experiment experiment_of(const NodeFlags& f, const NodesConfig& cfg);

// `with_identity`: --node-id and --node-type (not for launch, which runs every node).
void add_node_flags(CLI::App* sub, NodeFlags& f, bool with_identity);

struct HubFlags {
    std::string server_host;
    int server_port = 8888;
    int total = 0, honest = 0;
    std::string config;
};

struct LaunchFlags {
    std::string config;
    int broker_port = 8888;
    std::string keys_dir;  // CURVE: node-<id>.key and broker.key there
    bool resume = false;   // every node from its checkpoint
};

struct BrokerFlags {
    std::string host = "0.0.0.0";
    int port = 8888;
    std::string endpoint = "tcp", ipc_dir = "/tmp/p2pnode-ipc";
    std::string secret_key, config;  // CURVE: the broker's secret key; the nodes' public keys
    bool exit_when_done = false;
};

int run_broker(const BrokerFlags& b);
// Writes PREFIX.key (secret, mode 0600) and PREFIX.pub; refuses to overwrite without force.
int run_keygen(const std::string& prefix, bool force);
int run_hub_client(const HubFlags& h, const NodeFlags& f);
int run_mesh(const std::string& config_path, const NodeFlags& f);
int run_launch(const LaunchFlags& l, const NodeFlags& f, const std::string& self_exe);

}  // namespace p2p::cli
