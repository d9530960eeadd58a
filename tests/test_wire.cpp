#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <vector>

#include <msgpack.hpp>

#include "p2pnode/errors.hpp"
#include "p2pnode/wire/envelope.hpp"

using namespace p2p::wire;
using p2p::ProtocolError;

namespace {

// Builds a header map by hand, so tests can write what a hostile sender would.
struct RawHeader {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk{buf};
    std::vector<std::byte> bytes() const {
        auto p = reinterpret_cast<const std::byte*>(buf.data());
        return {p, p + buf.size()};
    }
};

std::vector<std::byte> raw(std::initializer_list<unsigned> values) {
    std::vector<std::byte> out;
    for (unsigned v : values) out.push_back(static_cast<std::byte>(v));
    return out;
}

std::string decode_error(std::span<const std::byte> header, std::span<const std::byte> payload = {},
                         const Limits& limits = {}) {
    try {
        decode(header, payload, limits);
    } catch (const ProtocolError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("every kind round-trips through encode and decode") {
    std::vector<float> grad{1.5f, -2.0f, 0.0f, 3.25f, std::numeric_limits<float>::denorm_min()};
    for (Kind kind : {Kind::Hello, Kind::Grad, Kind::Bye, Kind::Stop}) {
        CAPTURE(to_string(kind));
        Header h;
        h.kind = kind;
        h.from = 7;
        h.round = 123456789012ULL;
        h.dim = kind == Kind::Grad ? static_cast<std::uint32_t>(grad.size()) : 0;
        std::span<const float> payload = kind == Kind::Grad ? std::span<const float>(grad) : std::span<const float>();
        auto header = encode_header(h);
        Message m = decode(header, payload_bytes(payload));
        CHECK(m.header.version == kVersion);
        CHECK(m.header.kind == kind);
        CHECK(m.header.from == 7);
        CHECK(m.header.round == 123456789012ULL);
        CHECK(m.header.dim == h.dim);
        REQUIRE(m.payload.size() == payload.size());
        for (size_t i = 0; i < payload.size(); ++i) CHECK(m.payload[i] == payload[i]);
    }
}

TEST_CASE("a header with a 'to' list is refused: targets travel in the transport's own frames") {
    RawHeader r;
    r.pk.pack_map(6);
    r.pk.pack("v"), r.pk.pack(1), r.pk.pack("kind"), r.pk.pack("GRAD"), r.pk.pack("from"), r.pk.pack(0);
    r.pk.pack("round"), r.pk.pack(0), r.pk.pack("dim"), r.pk.pack(0), r.pk.pack("to");
    r.pk.pack_array(1), r.pk.pack(2);
    CHECK_THROWS_AS(decode(r.bytes(), {}), ProtocolError);
}

TEST_CASE("encode does not copy the payload and decode points into the received frame") {
    std::vector<float> grad(1000, 0.5f);
    auto frame = payload_bytes(grad);
    CHECK(static_cast<const void*>(frame.data()) == static_cast<const void*>(grad.data()));
    Header h;
    h.dim = 1000;
    Message m = decode(encode_header(h), frame);
    CHECK(m.borrowed());
    CHECK(static_cast<const void*>(m.payload.data()) == static_cast<const void*>(grad.data()));
    Message moved = std::move(m);
    CHECK(static_cast<const void*>(moved.payload.data()) == static_cast<const void*>(grad.data()));
}

TEST_CASE("a misaligned payload frame is copied once into aligned storage") {
    std::vector<std::byte> storage(4 * 3 + 1);
    const float values[3] = {1.0f, 2.0f, 3.0f};
    std::memcpy(storage.data() + 1, values, sizeof values);
    Header h;
    h.dim = 3;
    Message m = decode(encode_header(h), std::span<const std::byte>(storage).subspan(1));
    CHECK_FALSE(m.borrowed());
    REQUIRE(m.payload.size() == 3);
    CHECK(m.payload[2] == 3.0f);
    Message moved = std::move(m);
    CHECK(moved.payload[1] == 2.0f);
}

TEST_CASE("a header truncated at any length is rejected") {
    Header h;
    h.kind = Kind::Grad;
    h.from = 3;
    h.round = 99;
    h.dim = 2;
    auto full = encode_header(h);
    std::vector<float> grad{1, 2};
    for (size_t len = 0; len < full.size(); ++len) {
        CAPTURE(len);
        CHECK_THROWS_AS(decode(std::span<const std::byte>(full).first(len), payload_bytes(grad)), ProtocolError);
    }
    CHECK_NOTHROW(decode(full, payload_bytes(grad)));
}

TEST_CASE("trailing bytes after the header are rejected") {
    auto header = encode_header(Header{});
    header.push_back(std::byte{0xc0});
    CHECK(decode_error(header).find("1 trailing bytes") != std::string::npos);
}

TEST_CASE("a wrong type in every field is rejected") {
    const char* keys[] = {"v", "kind", "from", "round", "dim"};
    for (const char* bad_key : keys) {
        CAPTURE(bad_key);
        for (int variant = 0; variant < 3; ++variant) {
            RawHeader r;
            r.pk.pack_map(5);
            for (const char* key : keys) {
                r.pk.pack(std::string(key));
                if (std::string(key) == bad_key) {
                    if (variant == 0) r.pk.pack(-1);        // negative integer
                    if (variant == 1) r.pk.pack(2.5);       // float
                    if (variant == 2) r.pk.pack_array(0);   // container
                    if (variant == 0 && std::string(key) == "kind") { /* -1 is not a string either */ }
                } else if (std::string(key) == "kind") {
                    r.pk.pack(std::string("GRAD"));
                } else if (std::string(key) == "v") {
                    r.pk.pack(1);
                } else {
                    r.pk.pack(0);
                }
            }
            CHECK_THROWS_AS(decode(r.bytes(), {}), ProtocolError);
        }
    }
}

TEST_CASE("structural problems in the header are rejected with a reason") {
    SUBCASE("not a map") {
        RawHeader r;
        r.pk.pack_array(1);
        r.pk.pack(1);
        CHECK(decode_error(r.bytes()) == "header is not a map");
    }
    SUBCASE("unknown version") {
        Header h;
        h.version = 2;
        CHECK(decode_error(encode_header(h)).find("unsupported wire version 2") != std::string::npos);
    }
    SUBCASE("unknown kind") {
        RawHeader r;
        r.pk.pack_map(5);
        r.pk.pack("v"), r.pk.pack(1), r.pk.pack("kind"), r.pk.pack("PWN"), r.pk.pack("from"), r.pk.pack(0);
        r.pk.pack("round"), r.pk.pack(0), r.pk.pack("dim"), r.pk.pack(0);
        CHECK(decode_error(r.bytes()) == "unknown message kind 'PWN'");
    }
    SUBCASE("missing field") {
        RawHeader r;
        r.pk.pack_map(4);
        r.pk.pack("v"), r.pk.pack(1), r.pk.pack("kind"), r.pk.pack("GRAD"), r.pk.pack("from"), r.pk.pack(0);
        r.pk.pack("round"), r.pk.pack(0);
        CHECK(decode_error(r.bytes()).find("lacks") != std::string::npos);
    }
    SUBCASE("duplicate field") {
        RawHeader r;
        r.pk.pack_map(6);
        r.pk.pack("v"), r.pk.pack(1), r.pk.pack("kind"), r.pk.pack("GRAD"), r.pk.pack("from"), r.pk.pack(0);
        r.pk.pack("from"), r.pk.pack(1), r.pk.pack("round"), r.pk.pack(0), r.pk.pack("dim"), r.pk.pack(0);
        CHECK(decode_error(r.bytes()) == "header field 'from' given twice");
    }
    SUBCASE("unknown field") {
        RawHeader r;
        r.pk.pack_map(6);
        r.pk.pack("v"), r.pk.pack(1), r.pk.pack("kind"), r.pk.pack("GRAD"), r.pk.pack("from"), r.pk.pack(0);
        r.pk.pack("round"), r.pk.pack(0), r.pk.pack("dim"), r.pk.pack(0), r.pk.pack("xx"), r.pk.pack(0);
        CHECK(decode_error(r.bytes()) == "unknown header field 'xx'");
    }
    SUBCASE("non-string key") {
        RawHeader r;
        r.pk.pack_map(1);
        r.pk.pack(1), r.pk.pack(1);
        CHECK(decode_error(r.bytes()) == "header keys must be strings");
    }
    SUBCASE("HELLO with a payload") {
        Header h;
        h.kind = Kind::Hello;
        h.dim = 1;
        float one = 1;
        CHECK(decode_error(encode_header(h), payload_bytes({&one, 1})).find("HELLO must have dim 0") != std::string::npos);
    }
}

TEST_CASE("sizes the sender writes never drive allocation") {
    // array32 / map32 / str32 / bin32 headers claiming 2^32-1 elements, with nothing behind them.
    for (unsigned tag : {0xddu, 0xdfu, 0xdbu, 0xc6u}) {
        CAPTURE(tag);
        auto bytes = raw({tag, 0xff, 0xff, 0xff, 0xff});
        CHECK_THROWS_AS(decode(bytes, {}), ProtocolError);
    }
    // The same claims followed by a few bytes of content.
    auto padded = raw({0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3});
    CHECK_THROWS_AS(decode(padded, {}), ProtocolError);
    // A dim beyond the limit is rejected before the payload is looked at.
    Header big;
    big.dim = 1u << 30;
    CHECK(decode_error(encode_header(big)).find("exceeds") != std::string::npos);
}

TEST_CASE("a dim that disagrees with the payload size is rejected") {
    std::vector<float> grad(4, 1.0f);
    Header h;
    h.dim = 5;
    CHECK(decode_error(encode_header(h), payload_bytes(grad)) == "payload has 16 bytes, dim 5 needs 20");
    h.dim = 3;
    CHECK(decode_error(encode_header(h), payload_bytes(grad)) == "payload has 16 bytes, dim 3 needs 12");
    std::vector<std::byte> odd(15);
    h.dim = 4;
    CHECK_THROWS_AS(decode(encode_header(h), odd), ProtocolError);
}

TEST_CASE("random bytes never escape as anything but ProtocolError") {
    std::uint32_t state = 12345;
    auto next = [&] {
        state = state * 1664525u + 1013904223u;
        return static_cast<std::byte>(state >> 24);
    };
    int rejected = 0;
    for (int trial = 0; trial < 20000; ++trial) {
        std::vector<std::byte> bytes(1 + trial % 40);
        for (auto& b : bytes) b = next();
        try {
            decode(bytes, {});
        } catch (const ProtocolError&) {
            ++rejected;
        }
    }
    CHECK(rejected > 19000);
}
