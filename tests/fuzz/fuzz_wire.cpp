// libFuzzer target: the wire decoder. The first input byte picks where the header frame ends;
// the rest is the payload frame. Anything but ProtocolError escaping decode() is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "p2pnode/errors.hpp"
#include "p2pnode/wire/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t rest = size - 1;
    const std::size_t header_len = rest * data[0] / 255;
    // Copies into their own buffers, so the sanitizer sees reads past either frame.
    std::vector<std::byte> header(reinterpret_cast<const std::byte*>(data + 1),
                                  reinterpret_cast<const std::byte*>(data + 1 + header_len));
    std::vector<std::byte> payload(reinterpret_cast<const std::byte*>(data + 1 + header_len),
                                   reinterpret_cast<const std::byte*>(data + size));
    try {
        p2p::wire::Limits limits;
        limits.max_dim = 1 << 20;
        auto m = p2p::wire::decode(header, payload, limits);
        float sum = 0;
        for (float v : m.payload) sum += v;  // the view must stay inside the payload
        (void)sum;
    } catch (const p2p::ProtocolError&) {
    }
    return 0;
}
