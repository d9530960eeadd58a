#include "p2pnode/data/idx.hpp"

#include "p2pnode/catalogue.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <fmt/format.h>
#include <zlib.h>

#include "p2pnode/errors.hpp"

namespace p2p::data {

namespace {

constexpr std::uint32_t kImageMagic = 0x00000803;
constexpr std::uint32_t kLabelMagic = 0x00000801;
// 60,000 28x28 images are 47 MB; refuse headers that claim far more than any MNIST-like set.
constexpr std::size_t kMaxBytes = std::size_t{1} << 31;

// Reads a raw or gzip file through zlib (gzread passes raw files through unchanged).
class IdxFile {
public:
    explicit IdxFile(std::string path) : path_(std::move(path)) {
        if (!std::filesystem::is_regular_file(path_)) throw IoError(fmt::format("{}: no such file", path_));
        file_ = gzopen(path_.c_str(), "rb");
        if (!file_) throw IoError(fmt::format("{}: cannot open", path_));
        gzbuffer(file_, 1 << 17);
    }
    ~IdxFile() {
        if (file_) gzclose(file_);
    }
    IdxFile(const IdxFile&) = delete;
    IdxFile& operator=(const IdxFile&) = delete;

    void read(void* dst, std::size_t n, const char* what) {
        auto* p = static_cast<unsigned char*>(dst);
        while (n > 0) {
            unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
            int got = gzread(file_, p, chunk);
            if (got < 0) {
                int err = 0;
                const char* msg = gzerror(file_, &err);
                throw IoError(fmt::format("{}: corrupt gzip stream while reading {}: {}", path_, what, msg));
            }
            if (got == 0) throw IoError(fmt::format("{}: truncated: the file ends inside the {}", path_, what));
            p += got;
            n -= static_cast<std::size_t>(got);
        }
    }

    std::uint32_t be32(const char* what) {
        std::array<unsigned char, 4> b{};
        read(b.data(), 4, what);
        return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    }

    void expect_magic(std::uint32_t expected, const char* kind) {
        std::uint32_t magic = be32("header");
        if (magic != expected)
            throw IoError(fmt::format("{}: bad magic number 0x{:08x} (an IDX {} file has 0x{:08x})", path_, magic,
                                      kind, expected));
    }

    // Trailing data after the declared content means the header lies about the size.
    void expect_end() {
        unsigned char extra = 0;
        int got = gzread(file_, &extra, 1);
        if (got < 0) {
            int err = 0;
            throw IoError(fmt::format("{}: corrupt gzip stream: {}", path_, gzerror(file_, &err)));
        }
        if (got > 0) throw IoError(fmt::format("{}: more data than the header declares", path_));
    }

    const std::string& path() const { return path_; }

private:
    std::string path_;
    gzFile file_ = nullptr;
};

// `root/name` if it exists, else `root/name.gz`, else an error naming both.
std::string find_file(const std::string& root, const std::string& name) {
    namespace fs = std::filesystem;
    fs::path raw = fs::path(root) / name;
    if (fs::is_regular_file(raw)) return raw.string();
    fs::path gz = fs::path(root) / (name + ".gz");
    if (fs::is_regular_file(gz)) return gz.string();
    throw IoError(fmt::format("{}: missing (neither {} nor {}.gz is there)", raw.string(), name, name));
}

// Decompressing Fashion-MNIST's training images (26 MB of gzip, 47 MB of pixels) is most of a
// node's start-up, and five nodes starting at once on two cores take 0.7 s for it. So a gzip
// image file of at least kCacheFrom bytes is decompressed once into the cache folder
// (P2PNODE_CACHE_DIR; else $XDG_CACHE_HOME/p2pnode; else ~/.cache/p2pnode; "none": no cache),
// named by the source's file name, size and modification time, written whole (a temporary
// file, then a rename) and read as a raw IDX file afterwards. A cache that cannot be written
// or read is passed over: the source is read as before.
constexpr std::uintmax_t kCacheFrom = 1u << 20;

std::filesystem::path cache_dir() {
    namespace fs = std::filesystem;
    if (const char* d = std::getenv("P2PNODE_CACHE_DIR"); d && *d)
        return std::string(d) == "none" ? fs::path() : fs::path(d);
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "p2pnode";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "p2pnode";
    return {};
}

// Where the decompressed copy of `path` lives ("" when it is not cached).
std::filesystem::path cached_copy(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (path.size() < 3 || path.compare(path.size() - 3, 3, ".gz") != 0) return {};
    const auto size = fs::file_size(path, ec);
    if (ec || size < kCacheFrom) return {};
    const auto when = fs::last_write_time(path, ec);
    if (ec) return {};
    const fs::path dir = cache_dir();
    if (dir.empty()) return {};
    const std::string name = fs::path(path).filename().string();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::file_clock::to_sys(when).time_since_epoch());
    return dir / fmt::format("{}-{}-{}.idx", name.substr(0, name.size() - 3), size, ns.count());
}

void be32_to(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// Writes the decompressed images whole, or nothing.
void write_cache(const std::filesystem::path& to, const std::vector<std::uint8_t>& pixels, std::size_t count,
                 std::size_t rows, std::size_t cols) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(to.parent_path(), ec);
    const fs::path tmp = to.string() + fmt::format(".{}.tmp", static_cast<long>(::getpid()));
    {
        std::ofstream out(tmp, std::ios::binary);
        std::string header;
        for (auto v : {kImageMagic, static_cast<std::uint32_t>(count), static_cast<std::uint32_t>(rows),
                       static_cast<std::uint32_t>(cols)})
            be32_to(header, v);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        out.write(reinterpret_cast<const char*>(pixels.data()), static_cast<std::streamsize>(pixels.size()));
        out.flush();
        if (!out) {
            out.close();
            fs::remove(tmp, ec);
            return;
        }
    }
    fs::rename(tmp, to, ec);
    if (ec) fs::remove(tmp, ec);
}

std::vector<std::uint8_t> read_images_of(const std::string& path, std::size_t& count, std::size_t& rows,
                                         std::size_t& cols) {
    IdxFile f(path);
    f.expect_magic(kImageMagic, "image");
    count = f.be32("header");
    rows = f.be32("header");
    cols = f.be32("header");
    if (rows == 0 || cols == 0 || count > kMaxBytes / (rows * cols))
        throw IoError(fmt::format("{}: implausible header ({} images of {}x{})", path, count, rows, cols));
    std::vector<std::uint8_t> pixels(count * rows * cols);
    f.read(pixels.data(), pixels.size(), "image data");
    f.expect_end();
    return pixels;
}

}  // namespace

std::vector<std::uint8_t> read_idx_images(const std::string& path, std::size_t& count, std::size_t& rows,
                                          std::size_t& cols) {
    const std::filesystem::path cached = cached_copy(path);
    if (!cached.empty() && std::filesystem::is_regular_file(cached)) {
        try {
            return read_images_of(cached.string(), count, rows, cols);
        } catch (const IoError&) {
            // not a whole copy (or not ours): read the source and write it again
        }
    }
    auto pixels = read_images_of(path, count, rows, cols);
    if (!cached.empty()) write_cache(cached, pixels, count, rows, cols);
    return pixels;
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
    IdxFile f(path);
    f.expect_magic(kLabelMagic, "label");
    std::size_t count = f.be32("header");
    if (count > kMaxBytes) throw IoError(fmt::format("{}: implausible header ({} labels)", path, count));
    std::vector<std::uint8_t> labels(count);
    f.read(labels.data(), labels.size(), "label data");
    f.expect_end();
    return labels;
}

Dataset load_mnist(const std::string& root, Split split) {
    const char* prefix = split == Split::Train ? "train" : "t10k";
    std::string images_path = find_file(root, fmt::format("{}-images-idx3-ubyte", prefix));
    std::string labels_path = find_file(root, fmt::format("{}-labels-idx1-ubyte", prefix));
    Dataset ds;
    ds.pixels = read_idx_images(images_path, ds.count, ds.rows, ds.cols);
    if (ds.rows != 28 || ds.cols != 28)
        throw IoError(fmt::format("{}: images are {}x{}; IDX sets (MNIST, Fashion-MNIST, EMNIST, KMNIST) are 28x28",
                                  images_path, ds.rows, ds.cols));
    ds.labels = read_idx_labels(labels_path);
    if (ds.labels.size() != ds.count)
        throw IoError(fmt::format("{}: {} labels but {} has {} images", labels_path, ds.labels.size(), images_path,
                                  ds.count));
    ds.classes = 0;
    for (auto l : ds.labels) ds.classes = std::max<std::size_t>(ds.classes, std::size_t{l} + 1);
    return ds;
}

std::string default_data_root() {
    namespace fs = std::filesystem;
    for (const char* name : {"data/train-images-idx3-ubyte", "data/train-images-idx3-ubyte.gz"})
        if (fs::is_regular_file(name)) return "./data";
    return "/usr/share/datasets/fashion-mnist";
}

namespace {

// One copy per process, format and root: nodes run as threads of one process share it. Both
// splits get the same class count (the larger).
std::shared_ptr<const MnistData> load_shared(const std::string& format, const std::string& root,
                                             Dataset (*load)(const std::string&, Split)) {
    static std::mutex mutex;
    static std::vector<std::pair<std::string, std::weak_ptr<const MnistData>>> cache;
    std::lock_guard lock(mutex);
    for (auto& [f, weak] : cache)
        if (auto hit = weak.lock(); hit && f == format && hit->root == root) return hit;
    auto data = std::make_shared<MnistData>();
    data->root = root;
    data->train = load(root, Split::Train);
    data->test = load(root, Split::Test);
    data->train.classes = data->test.classes = std::max(data->train.classes, data->test.classes);
    std::erase_if(cache, [](const auto& w) { return w.second.expired(); });
    cache.emplace_back(format, data);
    return data;
}

constexpr std::size_t kCifarRecord = 1 + 3 * 32 * 32;

// One CIFAR-10 binary file, appended to `ds`.
void read_cifar_file(const std::string& path, Dataset& ds) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw IoError(fmt::format("{}: missing (CIFAR-10's binary version)", path));
    const auto bytes = fs::file_size(path, ec);
    if (ec || bytes == 0 || bytes % kCifarRecord != 0)
        throw IoError(fmt::format("{}: {} bytes is not a whole number of {}-byte records (truncated or not "
                                  "CIFAR-10's binary version)",
                                  path, ec ? 0 : bytes, kCifarRecord));
    if (bytes > kMaxBytes) throw IoError(fmt::format("{}: implausibly large ({} bytes)", path, bytes));
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> record(kCifarRecord);
    const std::size_t records = bytes / kCifarRecord;
    ds.pixels.reserve(ds.pixels.size() + records * (kCifarRecord - 1));
    for (std::size_t r = 0; r < records; ++r) {
        if (!in.read(reinterpret_cast<char*>(record.data()), static_cast<std::streamsize>(kCifarRecord)))
            throw IoError(fmt::format("{}: cannot read record {}", path, r));
        if (record[0] > 9)
            throw IoError(fmt::format("{}: record {} has label {}, outside CIFAR-10's 0..9", path, r, record[0]));
        ds.labels.push_back(record[0]);
        ds.pixels.insert(ds.pixels.end(), record.begin() + 1, record.end());  // R, G, B planes: {C, H, W}
    }
    ds.count += records;
}

}  // namespace

std::shared_ptr<const MnistData> load_mnist_data(const std::string& root) { return load_shared("idx", root, load_mnist); }

Dataset load_cifar10(const std::string& root, Split split) {
    namespace fs = std::filesystem;
    std::string dir = root;
    if (fs::is_directory(fs::path(root) / "cifar-10-batches-bin")) dir = (fs::path(root) / "cifar-10-batches-bin").string();
    Dataset ds;
    ds.channels = 3;
    ds.rows = ds.cols = 32;
    ds.classes = 10;
    if (split == Split::Train)
        for (int b = 1; b <= 5; ++b) read_cifar_file(fmt::format("{}/data_batch_{}.bin", dir, b), ds);
    else
        read_cifar_file(fmt::format("{}/test_batch.bin", dir), ds);
    return ds;
}

std::shared_ptr<const MnistData> load_cifar10_data(const std::string& root) {
    return load_shared("cifar10", root, load_cifar10);
}

namespace {

const DatasetEntry kDatasets[] = {
    {"idx",
     "MNIST-format IDX files (train-/t10k-images-idx3-ubyte, -labels-idx1-ubyte, raw or .gz): MNIST, Fashion-MNIST "
     "(the default root), EMNIST, KMNIST; 1 x 28 x 28, classes from the labels",
     load_mnist_data, 1, 28, 28, 256},
    {"mnist", "the same as idx (its name before there were other formats)", load_mnist_data, 1, 28, 28, 256},
    {"cifar10",
     "CIFAR-10's binary version (data_batch_1..5.bin, test_batch.bin, 3,073-byte records); 3 x 32 x 32, 10 classes",
     load_cifar10_data, 3, 32, 32, 10},
};

}  // namespace

std::span<const DatasetEntry> datasets() { return kDatasets; }

const DatasetEntry* find_dataset(std::string_view name) { return find_row(datasets(), name); }

}  // namespace p2p::data
