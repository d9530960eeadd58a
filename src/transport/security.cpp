#include "p2pnode/transport/security.hpp"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "zmq_util.hpp"

namespace p2p::transport {

CurveKeys generate_keys() {
    char pub[41] = {}, sec[41] = {};
    if (zmq_curve_keypair(pub, sec) != 0) throw std::runtime_error("this libzmq has no CURVE support");
    return {pub, sec};
}

std::string public_from_secret(const std::string& secret_z85) {
    if (!is_z85_key(secret_z85)) throw std::invalid_argument("not a CURVE secret key (40 Z85 characters)");
    char pub[41] = {};
    if (zmq_curve_public(pub, secret_z85.c_str()) != 0) throw std::invalid_argument("not a CURVE secret key");
    return pub;
}

std::map<std::string, std::uint32_t> allowed_keys(const Security& s) {
    std::map<std::string, std::uint32_t> out;
    for (const auto& [id, key] : s.public_keys) out[key] = id;
    return out;
}

std::string user_id_for(std::uint32_t node) { return fmt::format("N{}", node); }

std::string user_id(zmq::message_t& m) {
    const char* v = zmq_msg_gets(m.handle(), "User-Id");
    return v ? std::string(v) : std::string();
}

ZapHandler::ZapHandler(zmq::context_t& ctx, std::map<std::string, std::uint32_t> allowed)
    : socket_(ctx, zmq::socket_type::rep), allowed_(std::move(allowed)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("inproc://zeromq.zap.01");
    thread_ = std::thread([this] {
        while (!stop_.load()) {
            if (!detail::wait_readable(socket_, Clock::now() + std::chrono::milliseconds(100))) continue;
            bool overflow = false;
            auto parts = detail::recv_parts(socket_, 8, overflow);
            if (!parts) continue;
            // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
            std::string version = parts->size() > 0 ? (*parts)[0].to_string() : "";
            std::string request = parts->size() > 1 ? (*parts)[1].to_string() : "";
            std::string mechanism = parts->size() > 5 ? (*parts)[5].to_string() : "";
            std::string status = "400", text = "unknown key", user;
            if (mechanism == "CURVE" && parts->size() > 6 && (*parts)[6].size() == 32) {
                char z85[41] = {};
                zmq_z85_encode(z85, static_cast<const std::uint8_t*>((*parts)[6].data()), 32);
                if (auto it = allowed_.find(z85); it != allowed_.end()) {
                    status = "200";
                    text = "OK";
                    user = user_id_for(it->second);
                }
            }
            (status == "200" ? admitted_ : denied_).fetch_add(1);
            std::vector<zmq::message_t> reply;
            reply.emplace_back(std::string("1.0"));
            reply.emplace_back(request);
            reply.emplace_back(status);
            reply.emplace_back(text);
            reply.emplace_back(user);
            reply.emplace_back();
            for (std::size_t i = 0; i < reply.size(); ++i)
                socket_.send(reply[i], i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
            (void)version;
        }
    });
}

ZapHandler::~ZapHandler() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

}  // namespace p2p::transport
