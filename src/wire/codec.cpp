#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <msgpack.hpp>

#include "p2pnode/errors.hpp"
#include "p2pnode/wire/envelope.hpp"

namespace p2p::wire {

std::string_view to_string(Kind kind) {
    switch (kind) {
    case Kind::Hello: return "HELLO";
    case Kind::Grad: return "GRAD";
    case Kind::Bye: return "BYE";
    case Kind::Stop: return "STOP";
    }
    return "?";
}

namespace {

std::optional<Kind> parse_kind(std::string_view s) {
    if (s == "HELLO") return Kind::Hello;
    if (s == "GRAD") return Kind::Grad;
    if (s == "BYE") return Kind::Bye;
    if (s == "STOP") return Kind::Stop;
    return std::nullopt;
}

// The longest header string: a key or a kind name.
constexpr std::size_t kMaxString = 16;
// v, kind, from, round, dim.
constexpr std::size_t kMaxKeys = 6;

std::uint64_t unsigned_field(const msgpack::object& o, std::string_view key, std::uint64_t max) {
    if (o.type != msgpack::type::POSITIVE_INTEGER)
        throw ProtocolError(fmt::format("header field '{}' must be a non-negative integer", key));
    if (o.via.u64 > max)
        throw ProtocolError(fmt::format("header field '{}' = {} exceeds {}", key, o.via.u64, max));
    return o.via.u64;
}

}  // namespace

Message::Message(Message&& other) noexcept
    : header(std::move(other.header)), aligned_copy_(std::move(other.aligned_copy_)) {
    // A moved vector keeps its buffer, so a span into it stays valid; a borrowed span is
    // unaffected by the move.
    payload = other.payload;
    other.payload = {};
}

Message& Message::operator=(Message&& other) noexcept {
    header = std::move(other.header);
    aligned_copy_ = std::move(other.aligned_copy_);
    payload = other.payload;
    other.payload = {};
    return *this;
}

std::vector<std::byte> encode_header(const Header& h) {
    msgpack::sbuffer buf(64);
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_map(5);
    pk.pack("v");
    pk.pack(h.version);
    pk.pack("kind");
    pk.pack(to_string(h.kind));
    pk.pack("from");
    pk.pack(h.from);
    pk.pack("round");
    pk.pack(h.round);
    pk.pack("dim");
    pk.pack(h.dim);
    const auto* p = reinterpret_cast<const std::byte*>(buf.data());
    return {p, p + buf.size()};
}

Message decode(std::span<const std::byte> header_frame, std::span<const std::byte> payload_frame,
               const Limits& limits) {
    msgpack::object_handle handle;
    std::size_t offset = 0;
    // Every limit explicit: msgpack's defaults (2^32) let a 5-byte frame ask for gigabytes.
    const msgpack::unpack_limit limit(/*array=*/16, /*map=*/kMaxKeys, /*str=*/kMaxString,
                                      /*bin=*/0, /*ext=*/0, /*depth=*/2);
    try {
        handle = msgpack::unpack(reinterpret_cast<const char*>(header_frame.data()), header_frame.size(),
                                 offset, nullptr, nullptr, limit);
    } catch (const msgpack::unpack_error& e) {
        throw ProtocolError(fmt::format("undecodable header ({} bytes): {}", header_frame.size(), e.what()));
    } catch (const std::bad_cast& e) {  // msgpack::type_error
        throw ProtocolError(fmt::format("undecodable header: {}", e.what()));
    }
    if (offset != header_frame.size())
        throw ProtocolError(fmt::format("header has {} trailing bytes", header_frame.size() - offset));

    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::MAP) throw ProtocolError("header is not a map");

    Message msg;
    Header& h = msg.header;
    unsigned seen = 0;  // one bit per known key
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const msgpack::object& k = root.via.map.ptr[i].key;
        const msgpack::object& v = root.via.map.ptr[i].val;
        if (k.type != msgpack::type::STR) throw ProtocolError("header keys must be strings");
        std::string_view key(k.via.str.ptr, k.via.str.size);
        unsigned bit = 0;
        if (key == "v") {
            bit = 1;
            h.version = static_cast<std::uint32_t>(unsigned_field(v, key, UINT32_MAX));
        } else if (key == "kind") {
            bit = 2;
            if (v.type != msgpack::type::STR) throw ProtocolError("header field 'kind' must be a string");
            auto kind = parse_kind({v.via.str.ptr, v.via.str.size});
            if (!kind) throw ProtocolError(fmt::format("unknown message kind '{}'", std::string_view(v.via.str.ptr, v.via.str.size)));
            h.kind = *kind;
        } else if (key == "from") {
            bit = 4;
            h.from = static_cast<std::uint32_t>(unsigned_field(v, key, UINT32_MAX));
        } else if (key == "round") {
            bit = 8;
            h.round = unsigned_field(v, key, UINT64_MAX);
        } else if (key == "dim") {
            bit = 16;
            h.dim = static_cast<std::uint32_t>(unsigned_field(v, key, limits.max_dim));
        } else {
            throw ProtocolError(fmt::format("unknown header field '{}'", key));
        }
        if (seen & bit) throw ProtocolError(fmt::format("header field '{}' given twice", key));
        seen |= bit;
    }
    if ((seen & 31u) != 31u) throw ProtocolError("header lacks one of v, kind, from, round, dim");
    if (h.version != kVersion)
        throw ProtocolError(fmt::format("unsupported wire version {} (this build speaks {})", h.version, kVersion));
    if (h.kind != Kind::Grad && h.dim != 0)
        throw ProtocolError(fmt::format("{} must have dim 0, got {}", to_string(h.kind), h.dim));
    const std::size_t expected = std::size_t{h.dim} * sizeof(float);
    if (payload_frame.size() != expected)
        throw ProtocolError(fmt::format("payload has {} bytes, dim {} needs {}", payload_frame.size(), h.dim, expected));

    if (h.dim == 0) {
        msg.payload = {};
    } else if (reinterpret_cast<std::uintptr_t>(payload_frame.data()) % alignof(float) == 0) {
        msg.payload = {reinterpret_cast<const float*>(payload_frame.data()), h.dim};
    } else {
        msg.aligned_copy_.resize(h.dim);
        std::memcpy(msg.aligned_copy_.data(), payload_frame.data(), expected);
        msg.payload = msg.aligned_copy_;
    }
    return msg;
}

}  // namespace p2p::wire
