// Close frame payloads (RFC 6455 5.5.1): an optional 2-byte status code followed by a UTF-8 reason.
#pragma once

#include <algorithm>     // std::copy_n
#include <cstddef>       // std::size_t
#include <cstdint>       // std::uint16_t
#include <span>          // std::span for the caller's 125-byte buffer
#include <string>        // std::string for the received reason
#include <string_view>   // std::string_view
#include <system_error>  // std::error_code

#include "starling/protocol/utf8_sequence.hpp"
#include "starling/protocol/utf8.hpp"
#include "starling/protocol/error.hpp"
#include "starling/protocol/close_code.hpp"

namespace starling {

/// What the peer's close frame said.
struct close_reason {
    std::uint16_t code = static_cast<std::uint16_t>(close_code::no_status);  // 1005 when the frame had no code
    std::string reason;
};

namespace detail {

// A control frame payload is at most 125 bytes, and the code takes 2 of them.
inline constexpr std::size_t max_close_payload = 125;
inline constexpr std::size_t max_close_reason = max_close_payload - 2;

}  // namespace detail

/// Parses a received close frame payload (already unmasked, at most 125 bytes). On error `out` is left
/// as it was.
inline std::error_code parse_close_payload(std::string_view payload, close_reason& out) {
    if (payload.empty()) {
        out.code = static_cast<std::uint16_t>(close_code::no_status);
        out.reason.clear();
        return {};
    }
    if (payload.size() == 1) return error::bad_close_payload_length;
    const auto code = static_cast<std::uint16_t>(static_cast<unsigned char>(payload[0]) << 8 |
                                                 static_cast<unsigned char>(payload[1]));
    if (!is_valid_close_code(code)) return error::invalid_close_code;
    const std::string_view reason = payload.substr(2);
    if (!is_valid_utf8(reason)) return error::invalid_utf8_in_close_reason;
    out.code = code;
    out.reason.assign(reason);
    return {};
}

/// Builds a close frame payload: the big-endian code, then as much of the reason as fits in 125 bytes
/// without splitting a code point. no_status (1005) means "no code", and a reason cannot go without
/// one, so it yields an empty payload. Returns the bytes used in `out`.
///
/// The peer fails the connection on a reason that is not UTF-8 (and would lose the code with it), so
/// what is written always is UTF-8, whatever `reason` holds: a code point the limit would split is
/// left out whole, and each ill-formed piece of the reason becomes U+FFFD. Replaced rather than cut
/// short at the first bad byte, because a reason is there to be read: the text around a stray byte
/// (a value quoted from a query string, say) is usually what tells the reader what happened.
inline std::size_t write_close_payload(std::uint16_t code, std::string_view reason,
                                       std::span<char, 125> out) noexcept {
    if (code == static_cast<std::uint16_t>(close_code::no_status)) return 0;
    out[0] = static_cast<char>(code >> 8);
    out[1] = static_cast<char>(code & 0xFF);
    std::size_t size = 0;
    while (!reason.empty()) {
        const detail::utf8_step step = detail::next_utf8_step(reason);
        const std::string_view piece = step.valid ? reason.substr(0, step.size) : detail::utf8_replacement;
        if (size + piece.size() > detail::max_close_reason) break;
        std::copy_n(piece.data(), piece.size(), out.data() + 2 + size);
        size += piece.size();
        reason.remove_prefix(step.size);
    }
    return 2 + size;
}

}  // namespace starling
