#include "p2pnode/node/checkpoint.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

#include <fmt/format.h>
#include <zlib.h>

#include "p2pnode/errors.hpp"

namespace p2p::node {

namespace {

constexpr char kMagic[8] = {'P', '2', 'P', 'C', 'K', 'P', 'T', '1'};
constexpr std::uint64_t kMaxFloats = 1ull << 28;
constexpr std::uint64_t kMaxState = 1ull << 26;

void put(std::string& out, const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }
template <class T>
void put(std::string& out, T v) {
    put(out, &v, sizeof v);
}

class Reader {
public:
    Reader(const std::string& path, const std::string& data) : path_(path), data_(data) {}
    void take(void* dst, std::size_t n) {
        if (n > data_.size() - pos_) throw IoError(fmt::format("{}: truncated checkpoint", path_));
        std::memcpy(dst, data_.data() + pos_, n);
        pos_ += n;
    }
    template <class T>
    T get() {
        T v{};
        take(&v, sizeof v);
        return v;
    }
    std::size_t pos() const { return pos_; }

private:
    const std::string& path_;
    const std::string& data_;
    std::size_t pos_ = 0;
};

}  // namespace

std::string checkpoint_path(const std::string& dir, std::uint32_t node) {
    return fmt::format("{}/node-{}.ckpt", dir, node);
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
    std::string body;
    put(body, kMagic, sizeof kMagic);
    put(body, c.node);
    put(body, c.round);
    put(body, static_cast<std::uint64_t>(c.params.size()));
    put(body, c.params.data(), c.params.size() * sizeof(float));
    put(body, static_cast<std::uint64_t>(c.velocity.size()));
    put(body, c.velocity.data(), c.velocity.size() * sizeof(float));
    put(body, static_cast<std::uint64_t>(c.sampler_state.size()));
    put(body, c.sampler_state.data(), c.sampler_state.size());
    const std::uint32_t crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
    put(body, crc);

    const std::filesystem::path target(path);
    if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw IoError(fmt::format("{}: cannot write the checkpoint: {}", tmp, std::strerror(errno)));
    std::size_t done = 0;
    while (done < body.size()) {
        const ssize_t n = ::write(fd, body.data() + done, body.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            throw IoError(fmt::format("{}: cannot write the checkpoint: {}", tmp, std::strerror(errno)));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw IoError(fmt::format("{}: cannot flush the checkpoint: {}", tmp, std::strerror(errno)));
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw IoError(fmt::format("{}: cannot replace the checkpoint: {}", path, std::strerror(errno)));
    const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {  // make the rename durable
        ::fsync(dfd);
        ::close(dfd);
    }
}

Checkpoint load_checkpoint(const std::string& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw IoError(fmt::format("{}: cannot read the checkpoint: {}", path, ec.message()));
    if (size > (kMaxFloats * 2 + kMaxState) * 4) throw IoError(fmt::format("{}: too large for a checkpoint", path));
    std::string data(size, '\0');
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw IoError(fmt::format("{}: cannot read the checkpoint: {}", path, std::strerror(errno)));
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (done != data.size() || data.size() < sizeof kMagic + 4) throw IoError(fmt::format("{}: truncated checkpoint", path));
    if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) throw IoError(fmt::format("{}: not a p2pnode checkpoint", path));
    std::uint32_t stored = 0;
    std::memcpy(&stored, data.data() + data.size() - 4, 4);
    const auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size() - 4)));
    if (crc != stored)
        throw IoError(fmt::format("{}: corrupted checkpoint (checksum mismatch); refusing to load it", path));
    const std::string body = data.substr(0, data.size() - 4);
    Reader r(path, body);
    char magic[8];
    r.take(magic, sizeof magic);
    Checkpoint c;
    c.node = r.get<std::uint32_t>();
    c.round = r.get<std::uint64_t>();
    auto n = r.get<std::uint64_t>();
    if (n > kMaxFloats) throw IoError(fmt::format("{}: implausible checkpoint", path));
    c.params.resize(n);
    r.take(c.params.data(), n * sizeof(float));
    n = r.get<std::uint64_t>();
    if (n > kMaxFloats) throw IoError(fmt::format("{}: implausible checkpoint", path));
    c.velocity.resize(n);
    r.take(c.velocity.data(), n * sizeof(float));
    n = r.get<std::uint64_t>();
    if (n > kMaxState) throw IoError(fmt::format("{}: implausible checkpoint", path));
    c.sampler_state.resize(n);
    r.take(c.sampler_state.data(), n);
    if (r.pos() != body.size()) throw IoError(fmt::format("{}: trailing bytes in the checkpoint", path));
    return c;
}

}  // namespace p2p::node
