// Close status codes of RFC 6455 section 7.4, and which of them may travel on the wire.
#pragma once

#include <cstdint>  // std::uint16_t

namespace starling {

/// The close codes Starling sends or names. Any other value in 3000-4999 is valid on the wire too
/// (registered or private use), so the enum is open: `close_code{4001}` is fine.
enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005,      // never on the wire: "the peer sent a close frame without a code"
    abnormal = 1006,       // never on the wire: "the connection ended without a close frame"
    invalid_payload = 1007,
    policy_violation = 1008,
    message_too_big = 1009,
    mandatory_extension = 1010,
    internal_error = 1011,
};

/// True for the codes an endpoint may put in a close frame (RFC 6455 7.4.1 and the IANA registry as
/// the Autobahn testsuite reads them): 1000-1003, 1007-1011, 3000-4999.
constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

}  // namespace starling
