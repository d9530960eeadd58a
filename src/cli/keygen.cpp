// p2pnode keygen: a CURVE key pair.
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

int run_keygen(const std::string& prefix, bool force) {
    const auto keys = transport::generate_keys();
    const std::string secret = prefix + ".key", pub = prefix + ".pub";
    const std::filesystem::path parent = std::filesystem::path(secret).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    const int flags = O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL);
    const int fd = ::open(secret.c_str(), flags, 0600);
    if (fd < 0)
        throw IoError(fmt::format("{}: cannot create the secret key file{}", secret,
                                  errno == EEXIST ? " (it exists; --force replaces it)" : ""));
    ::fchmod(fd, 0600);
    const std::string line = keys.secret_z85 + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) throw IoError(fmt::format("{}: cannot write the secret key", secret));
    std::ofstream(pub) << keys.public_z85 << "\n";
    std::printf("wrote %s (public key %s) and %s (secret, mode 0600)\n", pub.c_str(), keys.public_z85.c_str(),
                secret.c_str());
    return 0;
}

}  // namespace p2p::cli
