// Helpers of the tests that train on the real data set in-process.
#pragma once

#include <cstdlib>
#include <memory>

#include <spdlog/spdlog.h>

#include "p2pnode/data/idx.hpp"

namespace p2p::test {

// Fashion-MNIST from Debian's dataset-fashion-mnist, or P2PNODE_DATA_ROOT.
inline std::shared_ptr<const data::MnistData> real_data() {
    const char* env = std::getenv("P2PNODE_DATA_ROOT");
    return data::load_mnist_data(env && *env ? env : data::default_data_root());
}

// Warnings and worse only while a test case runs (its nodes log every round otherwise), back
// to info when it ends, also when an assertion ends it early.
struct QuietLogs {
    QuietLogs() { spdlog::set_level(spdlog::level::warn); }
    ~QuietLogs() { spdlog::set_level(spdlog::level::info); }
};

}  // namespace p2p::test
