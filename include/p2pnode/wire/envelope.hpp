// The wire format: every message is two frames.
//   frame 1: a msgpack map {v, kind, from, round, dim} (the header, a few dozen bytes)
//   frame 2: the payload, dim little-endian float32 values, raw (empty for HELLO and BYE)
// Only src/wire includes msgpack; callers see these structs and byte spans.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace p2p::wire {

static_assert(std::endian::native == std::endian::little, "the payload frame is little-endian float32");

inline constexpr std::uint32_t kVersion = 1;

enum class Kind : std::uint8_t {
    Hello = 1,  // a node announces its id; dim = 0, no payload
    Grad = 2,   // a gradient (or a forged one) for `round`; payload of `dim` floats
    Bye = 3,    // the sender is leaving; dim = 0, no payload
    Stop = 4,   // the sender was asked to stop and will stop after `round`; dim = 0, no payload
};

std::string_view to_string(Kind kind);

struct Header {
    std::uint32_t version = kVersion;
    Kind kind = Kind::Grad;
    std::uint32_t from = 0;   // what the sender wrote; transports replace it with the proven id
    std::uint64_t round = 0;
    std::uint32_t dim = 0;    // number of float32 values in the payload frame
};

// What decoding bounds. Everything a sender writes is checked against these before use.
struct Limits {
    std::uint32_t max_dim = 1u << 24;      // largest payload accepted, in floats
};

// Header bytes for `header`. The payload is not part of them: send the caller's float buffer
// as the second frame as it is (payload_bytes), so encoding never copies a gradient.
std::vector<std::byte> encode_header(const Header& header);

inline std::span<const std::byte> payload_bytes(std::span<const float> values) {
    return std::as_bytes(values);
}

// A decoded message. `payload` points into the received payload frame when that frame is
// 4-byte aligned (always, for frames libzmq allocates); otherwise into `aligned_copy_`.
// It is valid as long as the frame passed to decode() is alive and this object is not moved
// from.
class Message {
public:
    Header header;
    std::span<const float> payload;

    Message() = default;
    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;
    Message(Message&&) noexcept;
    Message& operator=(Message&&) noexcept;

    bool borrowed() const { return aligned_copy_.empty(); }

private:
    friend Message decode(std::span<const std::byte>, std::span<const std::byte>, const Limits&);
    std::vector<float> aligned_copy_;
};

// Validates and decodes one message. Throws ProtocolError (and only that) on any malformed
// input: bad msgpack, a wrong type or unknown key in the header, an unknown version or kind,
// dim beyond limits.max_dim or disagreeing with the payload size, trailing bytes. Allocation
// is bounded by the limits, never by a size the sender wrote.
Message decode(std::span<const std::byte> header_frame, std::span<const std::byte> payload_frame,
               const Limits& limits = {});

}  // namespace p2p::wire
