#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/node/trainer.hpp"
#include "support.hpp"

using namespace p2p::data;
using p2p::IoError;
using p2p::test::be32;
using p2p::test::images_file;
using p2p::test::labels_file;
using p2p::test::write_set;

namespace {

std::string load_error(const std::string& root) {
    try {
        load_mnist(root, Split::Train);
    } catch (const IoError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("IDX files load raw and gzip alike") {
    for (bool gz : {false, true}) {
        CAPTURE(gz);
        p2p::test::TempDir dir;
        write_set(dir, 12, gz);
        Dataset ds = load_mnist(dir.path().string(), Split::Train);
        CHECK(ds.count == 12);
        CHECK(ds.rows == 28);
        CHECK(ds.cols == 28);
        REQUIRE(ds.pixels.size() == 12 * 784);
        CHECK(ds.pixels[300] == 300 % 256);
        CHECK(ds.labels[5] == 5);
        Dataset test = load_mnist(dir.path().string(), Split::Test);
        CHECK(test.count == 12);
    }
}

TEST_CASE("batches scale pixels to [0, 1] as x / 255") {
    p2p::test::TempDir dir;
    write_set(dir, 4, false);
    Dataset ds = load_mnist(dir.path().string(), Split::Train);
    std::vector<float> px;
    std::vector<std::uint8_t> labels;
    std::vector<std::uint32_t> idx{3, 1};
    gather_batch(ds, idx, px, labels);
    REQUIRE(px.size() == 2 * 784);
    CHECK(px[0] == static_cast<float>((3 * 784) % 256) / 255.0f);
    CHECK(px[784 + 255 - (784 % 256)] == 1.0f);  // pixel value 255 of image 1
    CHECK(labels[0] == 3);
    CHECK(labels[1] == 1);
    for (float v : px) CHECK((v >= 0.0f && v <= 1.0f));
}

TEST_CASE("malformed IDX data sets are refused with the file and the reason") {
    SUBCASE("missing file") {
        p2p::test::TempDir dir;
        CHECK(load_error(dir.path().string()).find("train-images-idx3-ubyte: missing") != std::string::npos);
    }
    SUBCASE("bad magic number") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        dir.write("train-images-idx3-ubyte", images_file(3, 28, 28, 0x801));
        CHECK(load_error(dir.path().string()).find("bad magic number 0x00000801") != std::string::npos);
    }
    SUBCASE("image count differs from label count") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        dir.write("train-labels-idx1-ubyte", labels_file(4));
        CHECK(load_error(dir.path().string()).find("4 labels but") != std::string::npos);
    }
    SUBCASE("wrong image size") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        dir.write("train-images-idx3-ubyte", images_file(3, 27, 28));
        CHECK(load_error(dir.path().string()).find("images are 27x28; IDX sets (MNIST, Fashion-MNIST, EMNIST, KMNIST) are 28x28") != std::string::npos);
    }
    SUBCASE("truncated data") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        std::string img = images_file(3, 28, 28);
        dir.write("train-images-idx3-ubyte", img.substr(0, img.size() - 10));
        CHECK(load_error(dir.path().string()).find("truncated") != std::string::npos);
        dir.write("train-images-idx3-ubyte", img.substr(0, 6));
        CHECK(load_error(dir.path().string()).find("truncated: the file ends inside the header") != std::string::npos);
    }
    SUBCASE("trailing data") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        dir.write("train-images-idx3-ubyte", images_file(3, 28, 28) + "x");
        CHECK(load_error(dir.path().string()).find("more data than the header declares") != std::string::npos);
    }
    SUBCASE("the class count comes from the labels (EMNIST has 47), and a 10-class model refuses more") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        dir.write("train-labels-idx1-ubyte", labels_file(3, 46));
        auto d = load_mnist_data(dir.path().string());
        CHECK(d->train.classes == 47);
        CHECK(d->test.classes == 47);  // both splits: the larger
        p2p::TrainingOptions t;
        t.batch_size = 2;
        CHECK_THROWS_WITH_AS(p2p::node::Trainer(t, "small-cnn", 0, 1, *d), doctest::Contains("model small-cnn has 10 classes"),
                             p2p::ConfigError);
        CHECK(p2p::node::Trainer(t, "logreg", 0, 1, *d).dim() == 784 * 47 + 47);
    }
    SUBCASE("implausible header") {
        p2p::test::TempDir dir;
        write_set(dir, 3, false);
        std::string s;
        be32(s, 0x803), be32(s, 0xffffffffu), be32(s, 28), be32(s, 28);
        dir.write("train-images-idx3-ubyte", s);
        CHECK(load_error(dir.path().string()).find("implausible header") != std::string::npos);
    }
    SUBCASE("corrupt gzip stream") {
        p2p::test::TempDir dir;
        write_set(dir, 3, true);
        auto path = (dir.path() / "train-images-idx3-ubyte.gz").string();
        std::string gz = p2p::test::slurp(path);
        for (std::size_t i = 12; i < gz.size() - 8; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
        dir.write("train-images-idx3-ubyte.gz", gz);
        CHECK(load_error(dir.path().string()).find("corrupt gzip stream") != std::string::npos);
    }
}

TEST_CASE("a data set is loaded once per process and shared") {
    p2p::test::TempDir dir;
    write_set(dir, 5, true);
    auto a = load_mnist_data(dir.path().string());
    auto b = load_mnist_data(dir.path().string());
    CHECK(a.get() == b.get());
    CHECK(a->train.count == 5);
    CHECK(a->test.count == 5);
}

TEST_CASE("shards follow the reference: h, h+H, h+2H, ...") {
    auto s = shard_indices(10, 1, 3);
    CHECK(s == std::vector<std::uint32_t>{1, 4, 7});
    CHECK(shard_indices(10, 0, 1).size() == 10);
    CHECK_THROWS(shard_indices(10, 3, 3));
}

TEST_CASE("the batch sampler covers its shard each epoch, reshuffles, drops the partial batch") {
    auto shard = shard_indices(100, 2, 4);  // 25 items: 2, 6, ..., 98
    BatchSampler a(shard, 8, 42), b(shard, 8, 42), c(shard, 8, 43);
    CHECK(a.batches_per_epoch() == 3);  // 24 of 25 used; the partial batch is dropped
    std::vector<std::uint32_t> epoch0, epoch1, other;
    for (int i = 0; i < 3; ++i) {
        auto batch = a.next();
        epoch0.insert(epoch0.end(), batch.begin(), batch.end());
        auto same = b.next();
        CHECK(std::equal(batch.begin(), batch.end(), same.begin()));
        auto diff = c.next();
        other.insert(other.end(), diff.begin(), diff.end());
    }
    CHECK(a.epoch() == 0);
    for (int i = 0; i < 3; ++i) {
        auto batch = a.next();
        epoch1.insert(epoch1.end(), batch.begin(), batch.end());
    }
    CHECK(a.epoch() == 1);
    std::set<std::uint32_t> distinct(epoch0.begin(), epoch0.end());
    CHECK(distinct.size() == 24);  // no repeats within an epoch
    for (auto i : epoch0) CHECK(i % 4 == 2);
    CHECK(epoch0 != epoch1);  // reshuffled
    CHECK(epoch0 != other);   // seed matters
    CHECK_THROWS(BatchSampler(shard, 26, 0));
}

TEST_CASE("the trainer refuses a data set whose images or classes its model does not take") {
    p2p::data::MnistData d;
    d.root = "tiny";
    d.train.count = d.test.count = 4;
    d.train.rows = d.train.cols = 14;  // SmallCnn takes 1 x 28 x 28
    d.train.pixels.assign(4 * 14 * 14, 0);
    d.train.labels.assign(4, 0);
    p2p::TrainingOptions t;
    t.batch_size = 2;
    CHECK_THROWS_WITH_AS(p2p::node::Trainer(t, "small-cnn", 0, 1, d),
                         doctest::Contains("model small-cnn takes 1x28x28 images; the data in tiny are "
                                           "1x14x14 images of 10 classes"),
                         p2p::ConfigError);
    CHECK_THROWS_WITH_AS(p2p::node::Trainer(t, "big-cnn", 0, 1, d), doctest::Contains("unknown model 'big-cnn'"),
                         p2p::ConfigError);
}

// Issue 15: what an honest node sends with --momentum / --weight-decay, and the step schedule.
TEST_CASE("the trainer's worker momentum, weight decay and learning-rate schedule") {
    p2p::test::TempDir dir;
    write_set(dir, 64, false);
    auto d = load_mnist_data(dir.path().string());
    p2p::TrainingOptions t;
    t.batch_size = 8;
    t.learning_rate = 0.1;
    p2p::node::Trainer plain(t, "small-cnn", 0, 1, *d);
    plain.next_batch();
    plain.gradient();
    const auto g0 = plain.worker_vector();
    CHECK(g0.data() == plain.grads().data());  // off: the gradient itself, not a copy

    t.momentum = 0.9;
    t.weight_decay = 0.01;
    p2p::node::Trainer with(t, "small-cnn", 0, 1, *d);
    std::vector<float> m(with.dim(), 0.0f);
    for (int round = 1; round <= 3; ++round) {
        CAPTURE(round);
        with.next_batch();
        with.gradient();
        const std::vector<float> theta(with.params().begin(), with.params().end());
        const std::vector<float> g(with.grads().begin(), with.grads().end());
        const auto v = with.worker_vector();
        double worst = 0;
        for (std::size_t k = 0; k < m.size(); ++k) {
            m[k] = 0.9f * m[k] + 0.1f * (g[k] + 0.01f * theta[k]);
            worst = std::max(worst, static_cast<double>(std::abs(v[k] - m[k])));
        }
        CHECK(worst < 1e-7);  // the same float arithmetic, up to fused multiply-adds
        with.step(v);
    }
    CHECK(with.worker_momentum().size() == with.dim());

    t.lr_milestones = {2, 4};
    t.lr_gamma = 0.5;
    p2p::node::Trainer sched(t, "small-cnn", 0, 1, *d);
    const float want[] = {0.1f, 0.1f, 0.05f, 0.05f, 0.025f, 0.025f};
    for (int round = 1; round <= 6; ++round) {
        CAPTURE(round);
        CHECK(sched.schedule(round) == doctest::Approx(want[round - 1]));
        CHECK(sched.lr() == doctest::Approx(want[round - 1]));
    }
}

// Issue 15: CIFAR-10's binary version, read from files in its exact format that the test writes.
TEST_CASE("CIFAR-10 binary batches load as 3 x 32 x 32 uint8 images; bad files are named") {
    p2p::test::TempDir dir;
    p2p::test::write_cifar(dir, 7);
    auto d = load_cifar10_data(dir.path().string());
    CHECK(d->train.count == 35);
    CHECK(d->test.count == 7);
    CHECK(d->train.channels == 3);
    CHECK(d->train.rows == 32);
    CHECK(d->train.classes == 10);
    CHECK(d->train.pixels.size() == 35 * 3072);
    CHECK(d->train.labels[13] == 3);                 // record 13: label 13 % 10
    CHECK(d->train.pixels[13 * 3072 + 1025] == 14);  // green plane, pixel 1: (13 + 1025) % 256
    CHECK(d->test.labels[0] == 5);                   // test records follow: index 35
    // A batch comes out channel-major ({C, B, H, W}), scaled by 1/255.
    std::vector<float> out;
    std::vector<std::uint8_t> labels;
    const std::uint32_t pick[] = {0, 13};
    gather_batch(d->train, pick, out, labels);
    CHECK(out.size() == 2 * 3072);
    CHECK(out[1 * 1024 + 0] == doctest::Approx(13 / 255.0f));                // channel 0, image 1
    CHECK(out[(1 * 2 + 1) * 1024 + 1] == doctest::Approx(14 / 255.0f));      // channel 1, image 1, pixel 1
    CHECK(labels[1] == 3);
    // Nodes of one process share one copy; the idx loader of the same folder is another format.
    CHECK(load_cifar10_data(dir.path().string()).get() == d.get());
    // The standard tarball's folder is found too.
    p2p::test::TempDir outer;
    std::filesystem::create_directories(outer.path() / "cifar-10-batches-bin");
    for (const auto& f : std::filesystem::directory_iterator(dir.path()))
        std::filesystem::copy_file(f.path(), outer.path() / "cifar-10-batches-bin" / f.path().filename());
    CHECK(load_cifar10(outer.path().string(), Split::Test).count == 7);

    auto error = [](const std::string& root) {
        try {
            load_cifar10(root, Split::Train);
        } catch (const IoError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    dir.write("data_batch_3.bin", p2p::test::cifar_file(2, 0, false).substr(0, 5000));
    CHECK(error(dir.path().string()).find("data_batch_3.bin: 5000 bytes is not a whole number of 3073-byte records") !=
          std::string::npos);
    std::string bad = p2p::test::cifar_file(2, 0, false);
    bad[3073] = 12;
    dir.write("data_batch_3.bin", bad);
    CHECK(error(dir.path().string()).find("data_batch_3.bin: record 1 has label 12, outside CIFAR-10's 0..9") !=
          std::string::npos);
    std::filesystem::remove(dir.path() / "data_batch_3.bin");
    CHECK(error(dir.path().string()).find("data_batch_3.bin: missing") != std::string::npos);
}

TEST_CASE("a model that does not fit the data set is an error naming both") {
    p2p::test::TempDir dir;
    write_set(dir, 16, false);
    auto grey = load_mnist_data(dir.path().string());
    p2p::TrainingOptions t;
    t.batch_size = 4;
    const std::string want =
        "model cnn-cifar takes 3x32x32 images; the data in " + dir.path().string() + " are 1x28x28 images of 10 classes";
    CHECK_THROWS_WITH_AS(p2p::node::Trainer(t, "cnn-cifar", 0, 1, *grey), doctest::Contains(want.c_str()),
                         p2p::ConfigError);
    p2p::test::TempDir colour;
    p2p::test::write_cifar(colour, 4);
    auto cifar = load_cifar10_data(colour.path().string());
    CHECK_THROWS_WITH_AS(p2p::node::Trainer(t, "small-cnn", 0, 1, *cifar),
                         doctest::Contains("model small-cnn takes 1x28x28 images"), p2p::ConfigError);
    p2p::node::Trainer fits(t, "logreg", 0, 1, *cifar);  // any shape
    CHECK(fits.dim() == 3072 * 10 + 10);
}

// Issue 17: a large gzip image file is decompressed once into the cache folder and read raw
// afterwards (five nodes starting at once spent 0.7 s decompressing Fashion-MNIST); a cached
// copy that is not whole is passed over and written again; a changed source is a new entry;
// P2PNODE_CACHE_DIR=none turns it off; small files are not cached.
TEST_CASE("decompressed images are cached, written whole, and passed over when not whole") {
    namespace fs = std::filesystem;
    p2p::test::TempDir dir;
    const fs::path cache = dir.path() / "cache";
    ::setenv("P2PNODE_CACHE_DIR", cache.c_str(), 1);
    auto random_images = [](std::uint32_t count, std::uint32_t seed) {  // incompressible: over 1 MiB of gzip
        std::string s;
        be32(s, 0x803);
        be32(s, count);
        be32(s, 28);
        be32(s, 28);
        std::uint32_t x = seed;
        for (std::uint32_t i = 0; i < count * 784; ++i) {
            x = x * 1664525u + 1013904223u;
            s.push_back(static_cast<char>(x >> 24));
        }
        return s;
    };
    const std::string gz = (dir.path() / "train-images-idx3-ubyte.gz").string();
    const std::string content = random_images(1500, 1);
    p2p::test::write_gz(gz, content);
    REQUIRE(fs::file_size(gz) >= (1u << 20));
    auto entries = [&] {
        std::vector<fs::path> out;
        if (fs::exists(cache))
            for (const auto& e : fs::directory_iterator(cache)) out.push_back(e.path());
        return out;
    };
    std::size_t count = 0, rows = 0, cols = 0;
    const auto first = read_idx_images(gz, count, rows, cols);
    CHECK(count == 1500);
    CHECK(std::string(first.begin(), first.end()) == content.substr(16));
    auto files = entries();
    REQUIRE(files.size() == 1);  // the copy, and no temporary file left
    CHECK(files[0].extension() == ".idx");
    CHECK(fs::file_size(files[0]) == content.size());
    CHECK(p2p::test::slurp(files[0]) == content);
    // Read from the copy: a byte changed there shows.
    {
        std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(16);
        f.put(static_cast<char>(first[0] ^ 0xff));
    }
    CHECK(read_idx_images(gz, count, rows, cols)[0] == static_cast<std::uint8_t>(first[0] ^ 0xff));
    // A copy that is not whole is passed over: the source is read and the copy written again.
    fs::resize_file(files[0], 1000);
    CHECK(read_idx_images(gz, count, rows, cols) == first);
    CHECK(fs::file_size(files[0]) == content.size());
    // A changed source is another entry, with its own pixels.
    const std::string other = random_images(1600, 2);
    p2p::test::write_gz(gz, other);
    const auto changed = read_idx_images(gz, count, rows, cols);
    CHECK(count == 1600);
    CHECK(std::string(changed.begin(), changed.end()) == other.substr(16));
    CHECK(entries().size() == 2);
    // Off, and small files: nothing is written.
    ::setenv("P2PNODE_CACHE_DIR", "none", 1);
    p2p::test::write_gz(gz, random_images(1700, 3));
    CHECK(read_idx_images(gz, count, rows, cols).size() == 1700u * 784);
    ::setenv("P2PNODE_CACHE_DIR", cache.c_str(), 1);
    const std::string small = (dir.path() / "t10k-images-idx3-ubyte.gz").string();
    p2p::test::write_gz(small, images_file(100, 28, 28));
    CHECK(read_idx_images(small, count, rows, cols).size() == 100u * 784);
    CHECK(entries().size() == 2);
    ::unsetenv("P2PNODE_CACHE_DIR");
}
