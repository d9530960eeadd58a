#include "p2pnode/launch/wiring.hpp"

namespace p2p::launch {

transport::MeshSpec mesh_wiring(const NodesConfig& cfg, const node::NodeSettings& s, transport::Scheme scheme,
                                const std::string& ipc_dir, const std::map<std::uint32_t, std::string>& bound) {
    const NodeSpec& self = cfg.require(static_cast<int>(s.id));
    transport::MeshSpec ms;
    ms.self = s.id;
    ms.bind_endpoint = transport::endpoint_for(scheme, self.bind_host.value_or(self.host), self.port, ipc_dir);
    for (auto n : s.neighbours) {
        const auto it = bound.find(n);
        const NodeSpec& peer = cfg.require(static_cast<int>(n));
        ms.peers[n] = it != bound.end() ? it->second : transport::endpoint_for(scheme, peer.host, peer.port, ipc_dir);
    }
    return ms;
}

}  // namespace p2p::launch
