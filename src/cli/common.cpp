// What the subcommands share: the stop flag, the data, the experiment of a node, CURVE keys.
#include "node_commands.hpp"

#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "commands.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/launch/processes.hpp"
#include "p2pnode/launch/wiring.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/settings.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode/transport/hub.hpp"
#include "p2pnode/transport/mesh.hpp"
#include "p2pnode/transport/security.hpp"

extern char** environ;

namespace p2p::cli {

std::atomic<bool> g_stop{false};

namespace {
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

void install_stop_handlers() {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
}

std::string resolve_data_root(const std::string& flag) {
    return flag == kAutoDataRoot ? data::default_data_root() : flag;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

std::shared_ptr<const data::MnistData> load_data(const Experiment& e) {
    const data::DatasetEntry* d = data::find_dataset(e.data.dataset);
    if (!d) throw ConfigError(fmt::format("data.dataset: unknown data set '{}'", e.data.dataset));
    return d->load(resolve_data_root(e.data.root));
}


// A key file's content (trimmed); warns if others can read it. The key itself is never printed.
std::string read_secret_key(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw IoError(fmt::format("{}: cannot read the secret key file", path));
    if (st.st_mode & 077)
        std::fprintf(stderr, "warning: %s: the secret key file is readable by others (mode %03o); chmod 600 it\n",
                     path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
    std::ifstream in(path);
    std::string key;
    in >> key;
    if (!transport::is_z85_key(key)) throw IoError(fmt::format("{}: not a CURVE secret key (40 Z85 characters)", path));
    return key;
}

// The CURVE settings of one party: its own keys from `secret_file`, everybody's public keys
// from the config. Nullopt when no secret key is given.
std::optional<transport::Security> security_of(const std::string& secret_file, const NodesConfig& cfg, bool need_broker) {
    if (secret_file.empty()) return std::nullopt;
    transport::Security s;
    s.own.secret_z85 = read_secret_key(secret_file);
    s.own.public_z85 = transport::public_from_secret(s.own.secret_z85);
    std::vector<std::string> missing;
    for (const auto& n : cfg.nodes) {
        if (n.public_key)
            s.public_keys[static_cast<std::uint32_t>(n.id)] = *n.public_key;
        else
            missing.push_back(std::to_string(n.id));
    }
    if (!missing.empty())
        throw ConfigError(fmt::format("{}: CURVE needs a public_key for every node; missing for node(s) {}", cfg.source,
                                      join(missing)));
    if (need_broker) {
        if (!cfg.broker_public_key) throw ConfigError(fmt::format("{}: broker_public_key: missing (CURVE with a broker)", cfg.source));
        s.broker_public = *cfg.broker_public_key;
    }
    return s;
}

// The node's experiment: the defaults < the config's sections < --experiment < flags; its
// names checked against the catalogues.
Experiment experiment_of(const NodeFlags& f, const NodesConfig& cfg) {
    std::vector<std::string> warnings;
    Experiment e = resolve_experiment(f.experiment, cfg.experiment, warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    return e;  // its names are checked by node::settings_for, which every caller runs next
}


}  // namespace p2p::cli
