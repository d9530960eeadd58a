// p2pnode broker: the hub's ROUTER.
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

int run_broker(const BrokerFlags& b) {
    const auto scheme = *transport::parse_scheme(b.endpoint);
    if (scheme == transport::Scheme::Ipc) std::filesystem::create_directories(b.ipc_dir);
    zmq::context_t ctx;
    transport::Broker::Spec bs;
    bs.bind_endpoint = transport::endpoint_for(scheme, b.host, b.port, b.ipc_dir);
    if (!b.secret_key.empty() && b.config.empty())
        throw ConfigError("broker --secret-key needs --config (the nodes' public keys)");
    if (!b.config.empty()) {
        const NodesConfig cfg = load_nodes_config(b.config);
        for (const auto& n : cfg.nodes) bs.ids.insert(static_cast<std::uint32_t>(n.id));
        // The config's model (its experiment sections) sets the largest message routed.
        bs.limits = launch::limits_for(cfg.experiment, cfg.nodes.size());
        if (!b.secret_key.empty()) bs.security = security_of(b.secret_key, cfg, false);
    }
    if (b.exit_when_done && b.config.empty()) throw ConfigError("broker --exit-when-done needs --config (the nodes to wait for)");
    bs.exit_when_done = b.exit_when_done;
    transport::Broker broker(ctx, bs);
    install_stop_handlers();
    spdlog::info("broker: routing on {}{} (Ctrl-C stops)", broker.endpoint(), bs.security ? " with CURVE" : "");
    broker.run([] { return g_stop.load(); }, [](const std::string& line) { spdlog::info("{}", line); });
    const auto st = broker.stats();
    spdlog::info("broker: stopped after routing {} messages ({} bytes), {} unroutable", st.messages_routed,
                 st.bytes_routed, st.dropped_unroutable);
    return 0;
}

}  // namespace p2p::cli
