// libFuzzer target: the nodes-config loader on arbitrary YAML/JSON text. Anything but
// ConfigError escaping parse_nodes_config() is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto cfg = p2p::parse_nodes_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
        (void)cfg;
    } catch (const p2p::ConfigError&) {
    }
    return 0;
}
