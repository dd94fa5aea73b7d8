// Every failure Starling reports, as std::error_code values of one "starling" category, with the close
// code (for protocol failures) or HTTP status (for handshake failures) that answers each.
#pragma once

#include <cstdint>       // std::uint16_t
#include <string>        // std::string for error_category::message
#include <system_error>  // std::error_code, std::error_category

#include "starling/protocol/close_code.hpp"

namespace starling {

/// One enumerator per failure. Grouped by what answers it: a close code (frames and messages) or an
/// HTTP status (the opening handshake).
enum class error {
    // Framing: answered with close 1002.
    reserved_bits_set = 1,
    reserved_opcode,
    unmasked_client_frame,
    masked_server_frame,
    control_frame_too_large,
    fragmented_control_frame,
    non_minimal_length,
    length_top_bit_set,
    continuation_without_start,
    data_frame_in_open_message,
    bad_close_payload_length,
    invalid_close_code,
    compressed_control_or_continuation,  // RSV1 where permessage-deflate does not allow it
    // Payload: answered with close 1007.
    invalid_utf8,
    invalid_utf8_in_close_reason,
    invalid_compressed_data,  // a compressed message that does not inflate
    // Size: answered with close 1009.
    message_too_big,
    frame_too_big,
    // Opening handshake: answered with an HTTP status.
    header_too_large,          // 431
    bad_request_line,          // 400
    bad_header_line,           // 400
    bad_http_version,          // 400
    bad_method,                // 400
    missing_host,              // 400
    missing_upgrade,           // 400
    missing_connection_upgrade,// 400
    missing_key,               // 400
    bad_key,                   // 400
    unsupported_version,       // 426 with Sec-WebSocket-Version: 13
    request_has_body,          // 400
    not_found,                 // 404
};

/// Broad classes of failure, for callers who only care which kind happened.
enum class condition {
    protocol_violation = 1,  // the peer broke RFC 6455 framing rules
    invalid_payload,         // a text message or close reason that is not UTF-8
    too_big,                 // a message or frame over the configured limit
    handshake_failed,        // the HTTP upgrade request was refused
};

}  // namespace starling

template <>
struct std::is_error_code_enum<starling::error> : std::true_type {};

template <>
struct std::is_error_condition_enum<starling::condition> : std::true_type {};

namespace starling {

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "starling"; }

    std::string message(int value) const override {
        switch (static_cast<error>(value)) {
        case error::reserved_bits_set: return "reserved bits set without a negotiated extension";
        case error::reserved_opcode: return "reserved opcode";
        case error::unmasked_client_frame: return "client frame is not masked";
        case error::masked_server_frame: return "server frame is masked";
        case error::control_frame_too_large: return "control frame payload over 125 bytes";
        case error::fragmented_control_frame: return "fragmented control frame";
        case error::non_minimal_length: return "payload length not in its shortest encoding";
        case error::length_top_bit_set: return "64-bit payload length with the top bit set";
        case error::continuation_without_start: return "continuation frame without a message to continue";
        case error::data_frame_in_open_message: return "new data frame while a fragmented message is open";
        case error::bad_close_payload_length: return "close frame payload of 1 byte";
        case error::invalid_close_code: return "invalid close code";
        case error::compressed_control_or_continuation: return "RSV1 (compressed) set on a control or continuation frame";
        case error::invalid_compressed_data: return "compressed message is not valid deflate data";
        case error::invalid_utf8: return "text message is not valid UTF-8";
        case error::invalid_utf8_in_close_reason: return "close reason is not valid UTF-8";
        case error::message_too_big: return "message over the maximum message size";
        case error::frame_too_big: return "frame over the maximum frame size";
        case error::header_too_large: return "request header fields too large";
        case error::bad_request_line: return "malformed request line";
        case error::bad_header_line: return "malformed header line";
        case error::bad_http_version: return "HTTP/1.1 required";
        case error::bad_method: return "WebSocket upgrade requires GET";
        case error::missing_host: return "missing Host header";
        case error::missing_upgrade: return "missing or invalid Upgrade: websocket header";
        case error::missing_connection_upgrade: return "missing Connection: upgrade header";
        case error::missing_key: return "missing Sec-WebSocket-Key header";
        case error::bad_key: return "Sec-WebSocket-Key is not 16 base64-encoded bytes";
        case error::unsupported_version: return "unsupported Sec-WebSocket-Version (13 required)";
        case error::request_has_body: return "WebSocket upgrade request must not have a body";
        case error::not_found: return "no endpoint at this path";
        }
        return "unknown starling error";
    }

    std::error_condition default_error_condition(int value) const noexcept override;

    bool equivalent(int value, const std::error_condition& cond) const noexcept override {
        return default_error_condition(value) == cond;
    }
};

class condition_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "starling.condition"; }

    std::string message(int value) const override {
        switch (static_cast<condition>(value)) {
        case condition::protocol_violation: return "WebSocket protocol violation";
        case condition::invalid_payload: return "invalid payload (UTF-8 or compressed data)";
        case condition::too_big: return "message too big";
        case condition::handshake_failed: return "WebSocket handshake failed";
        }
        return "unknown starling condition";
    }
};

}  // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl category;
    return category;
}

inline const std::error_category& condition_category() noexcept {
    static const detail::condition_category_impl category;
    return category;
}

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The condition an error belongs to.
constexpr condition condition_of(error e) noexcept {
    if (e <= error::compressed_control_or_continuation) return condition::protocol_violation;
    if (e <= error::invalid_compressed_data) return condition::invalid_payload;
    if (e <= error::frame_too_big) return condition::too_big;
    return condition::handshake_failed;
}

inline std::error_condition detail::error_category_impl::default_error_condition(int value) const noexcept {
    return make_error_condition(condition_of(static_cast<error>(value)));
}

/// The close code that answers a frame or message error (1002, 1007 or 1009); 1011 for anything else.
constexpr close_code close_code_for(error e) noexcept {
    switch (condition_of(e)) {
    case condition::protocol_violation: return close_code::protocol_error;
    case condition::invalid_payload: return close_code::invalid_payload;
    case condition::too_big: return close_code::message_too_big;
    case condition::handshake_failed: break;
    }
    return close_code::internal_error;
}

/// The HTTP status that answers a handshake error (400, 404, 426 or 431); 400 for anything else.
constexpr int http_status_for(error e) noexcept {
    switch (e) {
    case error::header_too_large: return 431;
    case error::unsupported_version: return 426;
    case error::not_found: return 404;
    default: return 400;
    }
}

}  // namespace starling
