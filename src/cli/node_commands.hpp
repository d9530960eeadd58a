// The training roles: broker, hub-client, mesh and launch (declared for main.cpp).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace p2p::cli {

// Set by SIGINT/SIGTERM: nodes stop after the current round, write metrics, exit 0.
extern std::atomic<bool> g_stop;
void install_stop_handlers();

inline constexpr const char* kAutoDataRoot = "auto";
std::string resolve_data_root(const std::string& flag);
std::string join(const std::vector<std::string>& v);

// Flags every training node takes, with the reference's names and defaults.
struct NodeFlags {
    int node_id = 0;
    std::string node_type = "honest";
    int rounds = 50;
    int batch_size = 64;
    double lr = 0.05;
    double byz_scale = -1.0;
    std::string data_root = kAutoDataRoot;
    std::uint64_t seed = 0;
    int eval_every = 10;
    std::string aggregator = "median";
    std::vector<std::string> pre;
    std::string attack = "empire";
    int f = -1;  // -1: the number of Byzantine nodes
    double tau = 10.0;
    int iterations = 0;
    std::string endpoint = "tcp";
    std::string ipc_dir = "/tmp/p2pnode-ipc";
    std::string metrics_dir = "metrics";
    double soft_timeout = 5.0, hard_timeout = 30.0, startup_timeout = 60.0;
    std::string secret_key;  // CURVE: this node's secret key file
    std::string checkpoint_dir;
    int checkpoint_every = 10;
    bool resume = false;
    int data_shard = -1;  // hub-client --data-shard (-1: the node's index among honest nodes)
    std::string topology = "ring";
    int k = 1;
    std::string exchange = "gradient";
    CLI::Option* exchange_opt = nullptr;
    double self_weight = 0.5;
    CLI::Option* self_weight_opt = nullptr;
    CLI::Option* aggregator_opt = nullptr;
    CLI::Option* pre_opt = nullptr;
    CLI::Option* attack_opt = nullptr;
    CLI::Option* f_opt = nullptr;
    CLI::Option* tau_opt = nullptr;
    CLI::Option* iterations_opt = nullptr;
    CLI::Option* node_type_opt = nullptr;
    CLI::Option* rounds_opt = nullptr;
    CLI::Option* batch_opt = nullptr;
    CLI::Option* lr_opt = nullptr;
};

// `with_identity`: --node-id and --node-type (not for launch, which runs every node).
void add_node_flags(CLI::App* sub, NodeFlags& f, bool with_identity);

struct HubFlags {
    std::string server_host;
    int server_port = 8888;
    int total = 0, honest = 0, shard = -1;
    std::string config;
};

struct LaunchFlags {
    std::string config;
    std::string pattern = "mesh";
    int broker_port = 8888;
    std::string keys_dir;  // CURVE: node-<id>.key and broker.key there
};

struct BrokerFlags {
    std::string host = "0.0.0.0";
    int port = 8888;
    std::string endpoint = "tcp", ipc_dir = "/tmp/p2pnode-ipc";
    std::string secret_key, config;  // CURVE: the broker's secret key; the nodes' public keys
};

int run_broker(const BrokerFlags& b);
// Writes PREFIX.key (secret, mode 0600) and PREFIX.pub; refuses to overwrite without force.
int run_keygen(const std::string& prefix, bool force);
int run_hub_client(const HubFlags& h, const NodeFlags& f);
int run_mesh(const std::string& config_path, const NodeFlags& f);
int run_launch(const LaunchFlags& l, const NodeFlags& f, const std::string& self_exe);

}  // namespace p2p::cli
