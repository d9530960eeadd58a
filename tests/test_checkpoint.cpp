#include <doctest/doctest.h>

#include "p2pnode/data/batches.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/node/checkpoint.hpp"
#include "support.hpp"

using namespace p2p;

TEST_CASE("a checkpoint round-trips and a damaged one is refused, never half-loaded") {
    p2p::test::TempDir dir;
    node::Checkpoint c;
    c.node = 3;
    c.round = 17;
    c.params = {1.5f, -2.0f, 3.25f};
    c.velocity = {0.5f, 0.25f, 0.125f};
    c.sampler_state = "state text";
    const std::string path = node::checkpoint_path(dir.path().string(), 3);
    node::save_checkpoint(path, c);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));  // renamed into place
    auto back = node::load_checkpoint(path);
    CHECK(back.node == 3);
    CHECK(back.round == 17);
    CHECK(back.params == c.params);
    CHECK(back.velocity == c.velocity);
    CHECK(back.sampler_state == "state text");

    const std::string good = p2p::test::slurp(path);
    std::string flipped = good;
    flipped[20] = static_cast<char>(flipped[20] ^ 1);
    CHECK_THROWS_WITH_AS(node::load_checkpoint(dir.write("flipped.ckpt", flipped)),
                         doctest::Contains("corrupted checkpoint (checksum mismatch)"), IoError);
    for (std::size_t cut : {std::size_t{0}, std::size_t{5}, good.size() / 2, good.size() - 1}) {
        CAPTURE(cut);
        CHECK_THROWS_AS(node::load_checkpoint(dir.write("cut.ckpt", good.substr(0, cut))), IoError);
    }
    CHECK_THROWS_WITH_AS(node::load_checkpoint(dir.write("other.ckpt", std::string(64, 'x'))),
                         doctest::Contains("not a p2pnode checkpoint"), IoError);
    CHECK_THROWS_WITH_AS(node::load_checkpoint((dir.path() / "none.ckpt").string()), doctest::Contains("cannot read"),
                         IoError);
}

TEST_CASE("the batch sampler resumes exactly where it was saved") {
    auto shard = data::shard_indices(100, 1, 3);
    data::BatchSampler a(shard, 7, 5);
    for (int i = 0; i < 6; ++i) a.next();  // into the second epoch
    const std::string state = a.save();
    data::BatchSampler b(shard, 7, 99);  // another seed: restore must overwrite it
    b.restore(state);
    for (int i = 0; i < 10; ++i) {
        auto x = a.next();
        auto y = b.next();
        CHECK(std::equal(x.begin(), x.end(), y.begin()));
    }
    CHECK(a.epoch() == b.epoch());
    data::BatchSampler wrong(shard, 8, 0);
    CHECK_THROWS_AS(wrong.restore(state), std::invalid_argument);
}
