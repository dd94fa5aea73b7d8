// The exception a receive (or send) throws once the connection has ended.
#pragma once

#include <cstdint>    // std::uint16_t close code
#include <stdexcept>  // std::runtime_error base
#include <string>     // std::string reason

namespace starling {

/// Thrown by a pending or later receive_*() (and by sends) when the connection is over. Carries the
/// close code and reason that ended it: the peer's when the peer closed, ours when the server closed,
/// 1006 when the connection dropped without a close frame.
class websocket_disconnect : public std::runtime_error {
public:
    websocket_disconnect(std::uint16_t code, std::string reason)
        : std::runtime_error("websocket disconnected with code " + std::to_string(code) +
                             (reason.empty() ? std::string() : ": " + reason)),
          code_(code),
          reason_(std::move(reason)) {}

    std::uint16_t code() const noexcept { return code_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::uint16_t code_;
    std::string reason_;
};

}  // namespace starling
