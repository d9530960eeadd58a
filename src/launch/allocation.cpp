#include "p2pnode/launch/allocation.hpp"

#include <charconv>
#include <sstream>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"

namespace p2p::launch {

namespace {

bool to_int(std::string_view s, int& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::vector<HostSlots> parse_hostfile(const std::string& text, const std::string& source) {
    std::vector<HostSlots> hosts;
    std::istringstream in(text);
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
        std::istringstream words(line);
        std::string host;
        if (!(words >> host)) continue;
        HostSlots h{host, 0};
        bool has_slots = false;
        for (std::string w; words >> w;) {
            const auto eq = w.find('=');
            const std::string key = w.substr(0, eq);
            int n = 0;
            if (eq == std::string::npos || (key != "slots" && key != "max_slots"))
                throw ConfigError(fmt::format("{}:{}: host {}: unknown word '{}' (expected slots=N)", source, line_no, host, w));
            if (!to_int(std::string_view(w).substr(eq + 1), n) || n < 1 || n > 100000)
                throw ConfigError(fmt::format("{}:{}: host {}: {} must be a count in 1..100000, got '{}'", source, line_no,
                                              host, key, w.substr(eq + 1)));
            if (key == "slots") h.slots = n, has_slots = true;
        }
        if (!has_slots)
            throw ConfigError(fmt::format("{}:{}: host {} has no slots=N (how many nodes it runs)", source, line_no, host));
        hosts.push_back(h);
    }
    if (hosts.empty()) throw ConfigError(fmt::format("{}: no hosts (lines of the form 'host slots=N')", source));
    return hosts;
}

std::vector<int> expand_tasks_per_node(const std::string& text) {
    std::vector<int> out;
    auto bad = [&] { return ConfigError(fmt::format("SLURM_TASKS_PER_NODE: expected counts like '2(x3),1', got '{}'", text)); };
    std::size_t b = 0;
    while (b < text.size()) {
        const std::size_t c = std::min(text.find(',', b), text.size());
        const std::string item = text.substr(b, c - b);
        const auto paren = item.find("(x");
        int count = 0, times = 1;
        if (paren == std::string::npos) {
            if (!to_int(item, count)) throw bad();
        } else {
            if (item.back() != ')' || !to_int(std::string_view(item).substr(0, paren), count) ||
                !to_int(std::string_view(item).substr(paren + 2, item.size() - paren - 3), times))
                throw bad();
        }
        if (count < 1 || times < 1 || times > 100000) throw bad();
        out.insert(out.end(), static_cast<std::size_t>(times), count);
        b = c + 1;
    }
    if (out.empty()) throw bad();
    return out;
}

std::vector<NodeSpec> spread_nodes(const std::vector<HostSlots>& hosts, int nodes, int base_port,
                                   const std::string& bind_host) {
    if (hosts.empty()) throw ConfigError("no hosts to place the nodes on");
    if (nodes < 1) throw ConfigError(fmt::format("--nodes: must be at least 1, got {}", nodes));
    std::vector<int> per_host(hosts.size(), 0);
    const bool limited = hosts.front().slots > 0;
    if (limited) {
        long long total = 0;
        for (const auto& h : hosts) total += h.slots;
        if (nodes > total)
            throw ConfigError(fmt::format("--nodes {}: more nodes than the {} slots of the {} hosts", nodes, total,
                                          hosts.size()));
        int left = nodes;
        for (std::size_t i = 0; i < hosts.size(); ++i) left -= per_host[i] = std::min(left, hosts[i].slots);
    } else {
        const int h = static_cast<int>(hosts.size());
        for (int i = 0; i < h; ++i) per_host[static_cast<std::size_t>(i)] = nodes / h + (i < nodes % h ? 1 : 0);
    }
    std::vector<NodeSpec> out;
    for (std::size_t i = 0; i < hosts.size(); ++i)
        for (int k = 0; k < per_host[i]; ++k) {
            NodeSpec n;
            n.id = static_cast<int>(out.size());
            n.host = hosts[i].host;
            n.port = base_port + k;
            if (n.port > 65535)
                throw ConfigError(fmt::format("--base-port {}: host {} runs {} nodes, so its ports reach {}, past 65535",
                                              base_port, hosts[i].host, per_host[i], base_port + per_host[i] - 1));
            if (!bind_host.empty()) n.bind_host = bind_host;
            out.push_back(n);
        }
    return out;
}

std::string nodes_yaml(const std::vector<NodeSpec>& nodes, const std::string& sections) {
    std::string out = "# Written by p2pnode config.\n" + sections + "nodes:\n";
    for (const auto& n : nodes)
        out += fmt::format("  - {{id: {}, host: {}, port: {}, type: {}{}}}\n", n.id, n.host, n.port, to_string(n.type),
                           n.bind_host ? ", bind_host: " + *n.bind_host : std::string());
    return out;
}

}  // namespace p2p::launch
