#include "p2pnode/launch/cluster.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "p2pnode/transport/hub.hpp"
#include "p2pnode/launch/wiring.hpp"
#include "p2pnode/transport/mesh.hpp"

namespace p2p::launch {

std::map<std::uint32_t, node::NodeResult> run_threads(const NodesConfig& cfg, const Experiment& experiment,
                                                      const ClusterOptions& o, const data::MnistData& data) {
    using namespace transport;
    zmq::context_t ctx;
    std::vector<node::NodeSettings> settings;
    node::NodeOverrides overrides;
    overrides.resume = o.resume;
    // The nodes' passes share as many scratch workspaces as there are cores: a node holds its
    // model and vectors, not a pass's activations (about 20 MB each for SmallCnn).
    auto workspaces = std::make_shared<nn::WorkspacePool>(std::max(1u, std::thread::hardware_concurrency()));
    for (auto& s : node::settings_for_all(cfg, experiment, overrides)) {
        if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), s.id) == o.only.end()) continue;
        settings.push_back(std::move(s));
        settings.back().stop_requested = o.stop_requested;
        settings.back().workspaces = workspaces;
    }

    std::optional<Security> security;
    std::unique_ptr<ZapHandler> zap;
    if (!o.keys.empty()) {
        security.emplace();
        for (const auto& [id, k] : o.keys) security->public_keys[id] = k.public_z85;
        security->broker_public = o.broker_keys.public_z85;
        security->start_zap = false;
        zap = std::make_unique<ZapHandler>(ctx, allowed_keys(*security));
    }
    auto secured = [&](std::uint32_t id) {
        std::optional<Security> s = security;
        if (s) s->own = id == UINT32_MAX ? o.broker_keys : o.keys.at(id);
        return s;
    };
    const SocketLimits limits = limits_for(experiment, cfg.nodes.size());
    std::unique_ptr<Broker> broker;
    std::atomic<bool> broker_stop{false};
    std::thread broker_thread;
    std::vector<std::unique_ptr<Transport>> transports;
    if (o.pattern == Pattern::Hub) {
        Broker::Spec bs;
        bs.bind_endpoint = o.scheme == Scheme::Tcp && o.ephemeral_ports
                               ? "tcp://127.0.0.1:*"
                               : endpoint_for(o.scheme, "127.0.0.1", o.broker_port, o.ipc_dir);
        bs.status_every = std::chrono::seconds(3600);
        bs.limits = limits;
        bs.security = secured(UINT32_MAX);
        for (const auto& n : cfg.nodes) bs.ids.insert(static_cast<std::uint32_t>(n.id));
        broker = std::make_unique<Broker>(ctx, bs);
        broker_thread = std::thread([&] {
            broker->run([&] { return broker_stop.load(); }, [](const std::string& line) { spdlog::info("{}", line); });
        });
        for (const auto& s : settings) {
            HubSpec hs;
            hs.self = s.id;
            hs.broker_endpoint = broker->endpoint();
            hs.limits = limits;
            hs.security = secured(s.id);
            transports.push_back(make_hub_client(ctx, hs));
        }
    } else {
        // Every node binds first, then each connects to its neighbours where they actually bound.
        std::map<std::uint32_t, std::string> bound;
        std::vector<MeshTransport*> meshes;
        for (const auto& s : settings) {
            const NodeSpec& spec = cfg.require(static_cast<int>(s.id));
            MeshSpec ms = mesh_wiring(cfg, s, o.scheme, o.ipc_dir);
            ms.limits = limits;
            for (auto& [id, endpoint] : ms.peers) endpoint.clear();  // connected below
            ms.security = secured(s.id);
            if (o.scheme == Scheme::Tcp && o.ephemeral_ports) ms.bind_endpoint = "tcp://127.0.0.1:*";
            auto mesh = make_mesh(ctx, ms);
            meshes.push_back(mesh.get());
            // Peers connect to the advertised host (the bind host may be 0.0.0.0).
            const std::string local = mesh->local_endpoint();
            bound[s.id] = o.scheme == Scheme::Tcp && !o.ephemeral_ports
                              ? endpoint_for(Scheme::Tcp, spec.host, spec.port, o.ipc_dir)
                              : local;
            transports.push_back(std::move(mesh));
        }
        for (std::size_t i = 0; i < settings.size(); ++i) {
            const auto wired = mesh_wiring(cfg, settings[i], o.scheme, o.ipc_dir, bound);
            for (const auto& [id, endpoint] : wired.peers) meshes[i]->connect(id, endpoint);
        }
    }

    std::map<std::uint32_t, node::NodeResult> results;
    std::mutex mutex;
    std::exception_ptr failure;
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < settings.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                auto r = node::run_node(settings[i], *transports[i], data);
                std::lock_guard lock(mutex);
                results[settings[i].id] = std::move(r);
            } catch (...) {
                std::lock_guard lock(mutex);
                if (!failure) failure = std::current_exception();
            }
        });
    for (auto& t : threads) t.join();
    transports.clear();
    broker_stop = true;
    if (broker_thread.joinable()) broker_thread.join();
    if (broker && o.broker_stats) *o.broker_stats = broker->stats();
    broker.reset();
    if (failure) std::rethrow_exception(failure);
    return results;
}

}  // namespace p2p::launch
