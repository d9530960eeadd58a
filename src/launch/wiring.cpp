#include "p2pnode/launch/wiring.hpp"

#include <algorithm>

#include "p2pnode/errors.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/nn/model.hpp"
#include "p2pnode/node/settings.hpp"

namespace p2p::launch {

transport::SocketLimits limits_for(const Experiment& e, std::size_t nodes) {
    const nn::ModelEntry* model = nn::find_model(e.model.name);
    if (!model) throw ConfigError("unknown model '" + e.model.name + "'");
    const data::DatasetEntry* set = data::find_dataset(e.data.dataset);
    if (!set) throw ConfigError("unknown data set '" + e.data.dataset + "'");
    // The format's images and the most classes its labels can name: a bound for every set of it.
    nn::ModelShape shape{set->channels, set->height, set->width, set->max_classes};
    if (model->classes) shape.classes = model->classes;
    std::size_t dim = 0;
    if (model->misfit(shape).empty()) dim = model->param_count(shape, node::model_options_of(e));
    transport::SocketLimits l;
    l.max_message_bytes = static_cast<std::int64_t>(dim * sizeof(float) + (64u << 10));
    l.high_water_mark = 16;
    l.send_high_water_mark = static_cast<int>(std::max<std::size_t>(16, 5 * nodes));
    l.spare_connections = 8;  // reconnections whose old connection is not yet known dead
    return l;
}

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
