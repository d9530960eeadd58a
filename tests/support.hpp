// Helpers shared by the tests: temporary folders and running the real p2pnode binary.
#pragma once

#include <cstdlib>
#include <fcntl.h>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace p2p::test {

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "p2pnode-test-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // Writes `content` to a file in this folder and returns its path.
    std::string write(const std::string& name, const std::string& content) const {
        auto p = path_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p.string();
    }

private:
    std::filesystem::path path_;
};

// An environment variable the test harness (tests/meson.build) sets; fails loudly if absent.
inline std::string required_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) throw std::runtime_error(std::string("test environment lacks ") + name);
    return v;
}

}  // namespace p2p::test

#include <spawn.h>
#include <zlib.h>
#include <sys/wait.h>

extern char** environ;

namespace p2p::test {

struct RunResult {
    int status = -1;  // exit status, or -1 if the process did not exit normally
    std::string out;
    std::string err;
};

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `program` with `args` (no shell), stdout and stderr captured, and waits for it.
inline RunResult run_program(const std::string& program, const std::vector<std::string>& args) {
    TempDir dir;
    const std::string out_path = (dir.path() / "out").string();
    const std::string err_path = (dir.path() / "err").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + program);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    RunResult r;
    r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

// Starts argv[0] with argv and returns at once: standard output appended to `out`, standard
// error to `err` (empty: this process's). std::runtime_error if it cannot be started.
inline pid_t spawn_program(std::vector<std::string> argv, const std::string& out, const std::string& err = "") {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!err.empty()) posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
    return pid;
}

// Runs the p2pnode binary under test.
inline RunResult run_p2pnode(const std::vector<std::string>& args) {
    return run_program(required_env("P2PNODE_BIN"), args);
}

}  // namespace p2p::test

namespace p2p::test {

// Small MNIST-format data sets written by the tests: image i has pixel k = (i*784 + k) % 256,
// label i % 10 (or `first_label` for image 0).
inline void be32(std::string& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}

inline std::string images_file(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::uint32_t magic = 0x803) {
    std::string s;
    be32(s, magic);
    be32(s, count);
    be32(s, rows);
    be32(s, cols);
    for (std::uint32_t i = 0; i < count * rows * cols; ++i) s.push_back(static_cast<char>(i % 256));
    return s;
}

inline std::string labels_file(std::uint32_t count, std::uint8_t first_label = 0) {
    std::string s;
    be32(s, 0x801);
    be32(s, count);
    for (std::uint32_t i = 0; i < count; ++i) s.push_back(static_cast<char>(i == 0 ? first_label : i % 10));
    return s;
}

inline void write_gz(const std::string& path, const std::string& content) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f || gzwrite(f, content.data(), static_cast<unsigned>(content.size())) != static_cast<int>(content.size()))
        throw std::runtime_error("cannot write " + path);
    gzclose(f);
}

// A data folder with `n` training and `n` test images, raw or gzip.
inline void write_set(const TempDir& dir, std::uint32_t n, bool gz) {
    for (const char* prefix : {"train", "t10k"}) {
        std::string img = std::string(prefix) + "-images-idx3-ubyte";
        std::string lab = std::string(prefix) + "-labels-idx1-ubyte";
        if (gz) {
            write_gz((dir.path() / (img + ".gz")).string(), images_file(n, 28, 28));
            write_gz((dir.path() / (lab + ".gz")).string(), labels_file(n));
        } else {
            dir.write(img, images_file(n, 28, 28));
            dir.write(lab, labels_file(n));
        }
    }
}

}  // namespace p2p::test

namespace p2p::test {

// CIFAR-10's binary format: `per_file` records in each of data_batch_1..5.bin and test_batch.bin,
// record = label byte + 3 x 32 x 32 pixel bytes. With `structured`, class k's images have a bright
// 8 x 8 square in channel k % 3 at a place that depends on k, over seeded noise (learnable);
// otherwise pixel p of record r is (r + p) % 256 and the label r % 10.
inline std::string cifar_file(std::uint32_t records, std::uint32_t first, bool structured) {
    std::string s;
    std::uint32_t state = 12345u + first;
    for (std::uint32_t r = 0; r < records; ++r) {
        const std::uint32_t index = first + r, label = index % 10;
        s.push_back(static_cast<char>(label));
        for (std::uint32_t p = 0; p < 3 * 1024; ++p) {
            std::uint32_t v = (index + p) % 256;
            if (structured) {
                state = state * 1664525u + 1013904223u;
                v = (state >> 24) % 64;  // noise
                const std::uint32_t c = p / 1024, y = (p % 1024) / 32, x = p % 32;
                const std::uint32_t oy = 4 + 8 * (label / 4), ox = 4 + 8 * (label % 4);
                if (c == label % 3 && y >= oy && y < oy + 8 && x >= ox && x < ox + 8) v = 220;
            }
            s.push_back(static_cast<char>(v));
        }
    }
    return s;
}

inline void write_cifar(const TempDir& dir, std::uint32_t per_file, bool structured = false) {
    for (int b = 1; b <= 5; ++b)
        dir.write("data_batch_" + std::to_string(b) + ".bin",
                  cifar_file(per_file, static_cast<std::uint32_t>(b - 1) * per_file, structured));
    dir.write("test_batch.bin", cifar_file(per_file, 5 * per_file, structured));
}

}  // namespace p2p::test
