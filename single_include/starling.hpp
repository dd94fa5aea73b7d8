// Starling: header-only C++20 coroutine WebSocket framework.
//
// GENERATED FILE, DO NOT EDIT. Made by tools/amalgamate.py from include/; edit those headers and run
// the script again. A test fails when this file is stale.
//
// Needs: standalone Asio (headers), simdjson (link -lsimdjson), threads (-pthread), C++20.
#pragma once

// ---- begin starling.hpp ----
// Starling: a header-only C++20 coroutine WebSocket framework. Include this one header.

#if __cplusplus < 202002L
#error "Starling needs C++20: compile with -std=c++20 (meson: default_options: ['cpp_std=c++20'])"
#endif

// The protocol core (sans-I/O).

// ---- begin starling/protocol/close.hpp ----
// Close frame payloads (RFC 6455 5.5.1): an optional 2-byte status code followed by a UTF-8 reason.

#include <algorithm>     // std::copy_n
#include <cstddef>       // std::size_t
#include <cstdint>       // std::uint16_t
#include <span>          // std::span for the caller's 125-byte buffer
#include <string>        // std::string for the received reason
#include <string_view>   // std::string_view
#include <system_error>  // std::error_code


// ---- begin starling/protocol/utf8_sequence.hpp ----
// Walking text one UTF-8 sequence at a time, for the places that must turn arbitrary bytes into valid
// UTF-8 of their own (close reasons we send, values quoted in error messages) rather than only say
// whether the bytes are valid.

#include <cstddef>      // std::size_t
#include <string_view>  // std::string_view


// ---- begin starling/protocol/utf8.hpp ----
// UTF-8 validation for text messages and close reasons (RFC 6455 8.1), including messages that arrive
// in fragments cut at arbitrary byte positions.

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint64_t
#include <cstring>      // std::memcpy for unaligned word loads
#include <string_view>  // std::string_view

#include <simdjson.h>  // simdjson::validate_utf8, the SIMD validator for the bulk of each piece

namespace starling {

namespace detail {

// Below this size simdjson's dispatch costs more than it saves, and short pieces are mostly ASCII.
inline constexpr std::size_t utf8_short_piece = 64;

constexpr bool is_utf8_continuation(unsigned char byte) noexcept { return (byte & 0xC0) == 0x80; }

// Length of the sequence a byte starts, or 0 when no valid sequence starts with it: continuation bytes,
// C0 and C1 (only overlong forms), F5..FF (only values above U+10FFFF).
constexpr std::size_t utf8_sequence_length(unsigned char lead) noexcept {
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    if (lead < 0xF5) return 4;
    return 0;
}

// The word loop is bounded by a pointer into the same buffer, not by a count: at -O3, g++ 12 inlines
// this into callers whose buffer it can see (a char[4], say) and, given only a count, cannot tell that
// an 8-byte load never happens there, so it warns (-Warray-bounds) about a load that cannot run.
inline bool utf8_all_ascii(const char* data, std::size_t size) noexcept {
    std::uint64_t seen = 0;
    const char* const end = data + size;
    for (; end - data >= 8; data += 8) {
        std::uint64_t word;
        std::memcpy(&word, data, 8);
        seen |= word;
    }
    for (; data != end; ++data) seen |= static_cast<unsigned char>(*data);
    return (seen & 0x8080808080808080u) == 0;
}

// For text that starts on a code point boundary and must end on one.
inline bool validate_utf8_run(const char* data, std::size_t size) noexcept {
    if (size < utf8_short_piece && utf8_all_ascii(data, size)) return true;
    return simdjson::validate_utf8(data, size);
}

// Where the code point that the end of text cuts in two begins (at most 3 bytes back), or text.size()
// if the text ends on a boundary. A malformed tail also yields text.size(), so that the run validation
// rejects it.
constexpr std::size_t utf8_cut_point(std::string_view text) noexcept {
    for (std::size_t back = 1; back <= 3 && back <= text.size(); ++back) {
        const auto byte = static_cast<unsigned char>(text[text.size() - back]);
        if (!is_utf8_continuation(byte)) {
            return utf8_sequence_length(byte) > back ? text.size() - back : text.size();
        }
    }
    return text.size();
}

}  // namespace detail

/// Incremental UTF-8 validator for one text message (or close reason) delivered in pieces. It fails
/// fast: write() returns false on the piece holding the first byte that no valid text could continue
/// from, so a connection can be failed before the rest of a bad message arrives.
class utf8_validator {
public:
    /// Feeds the next piece. False once the bytes seen so far cannot begin valid UTF-8; stays false
    /// until reset().
    bool write(std::string_view piece) noexcept {
        if (failed_) return false;
        std::size_t i = 0;
        for (; pending_ > 0 && i < piece.size(); ++i) {
            if (!accept_continuation(static_cast<unsigned char>(piece[i]))) return fail();
        }
        std::string_view rest = piece;
        rest.remove_prefix(i);
        const std::size_t cut = detail::utf8_cut_point(rest);
        if (!detail::validate_utf8_run(rest.data(), cut)) return fail();
        if (cut == rest.size()) return true;
        // Check the cut sequence's bytes now, not when it completes: "\xE0\x80" is already hopeless.
        begin_sequence(static_cast<unsigned char>(rest[cut]));
        for (i = cut + 1; i < rest.size(); ++i) {
            if (!accept_continuation(static_cast<unsigned char>(rest[i]))) return fail();
        }
        return true;
    }

    /// True if everything written is valid and no multi-byte sequence is left incomplete.
    bool finish() const noexcept { return !failed_ && pending_ == 0; }

    void reset() noexcept { *this = utf8_validator{}; }

private:
    bool accept_continuation(unsigned char byte) noexcept {
        if (byte < low_ || byte > high_) return false;
        low_ = 0x80;
        high_ = 0xBF;
        --pending_;
        return true;
    }

    // lead is a valid lead byte of a multi-byte sequence (utf8_cut_point only reports those).
    void begin_sequence(unsigned char lead) noexcept {
        pending_ = static_cast<std::uint8_t>(detail::utf8_sequence_length(lead) - 1);
        // Only the second byte can rule out overlong forms, surrogates and values above U+10FFFF.
        switch (lead) {
        case 0xE0: low_ = 0xA0; break;
        case 0xED: high_ = 0x9F; break;
        case 0xF0: low_ = 0x90; break;
        case 0xF4: high_ = 0x8F; break;
        default: break;
        }
    }

    bool fail() noexcept {
        failed_ = true;
        return false;
    }

    bool failed_ = false;
    std::uint8_t pending_ = 0;  // continuation bytes still owed by a sequence an earlier piece cut
    unsigned char low_ = 0x80;  // range the next continuation byte must fall in
    unsigned char high_ = 0xBF;
};

/// Whole-buffer check.
inline bool is_valid_utf8(std::string_view text) noexcept {
    return detail::validate_utf8_run(text.data(), text.size());
}

}  // namespace starling
// ---- end starling/protocol/utf8.hpp ----

namespace starling::detail {

/// The first step through some text: `size` bytes that are either one whole valid code point
/// (`valid`) or an ill-formed piece to skip. An ill-formed piece is the longest start of a sequence
/// that could still have become valid (a lead byte and the continuation bytes it accepts), and at
/// least one byte, so "\xE2\x82" followed by "A" is one piece and "A" comes next on its own; this is
/// how decoders that substitute U+FFFD count their substitutions.
struct utf8_step {
    std::size_t size = 0;
    bool valid = false;
};

/// The step at the start of `text`, which must not be empty.
constexpr utf8_step next_utf8_step(std::string_view text) noexcept {
    const auto lead = static_cast<unsigned char>(text[0]);
    const std::size_t length = utf8_sequence_length(lead);
    if (length <= 1) return {1, length == 1};
    // Only the second byte can rule out overlong forms, surrogates and values above U+10FFFF.
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    switch (lead) {
    case 0xE0: low = 0xA0; break;
    case 0xED: high = 0x9F; break;
    case 0xF0: low = 0x90; break;
    case 0xF4: high = 0x8F; break;
    default: break;
    }
    for (std::size_t i = 1; i < length; ++i) {
        if (i >= text.size()) return {i, false};
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte < low || byte > high) return {i, false};
        low = 0x80;
        high = 0xBF;
    }
    return {length, true};
}

/// U+FFFD REPLACEMENT CHARACTER, what an ill-formed piece becomes where valid text is required.
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";

}  // namespace starling::detail
// ---- end starling/protocol/utf8_sequence.hpp ----

// ---- begin starling/protocol/error.hpp ----
// Every failure Starling reports, as std::error_code values of one "starling" category, with the close
// code (for protocol failures) or HTTP status (for handshake failures) that answers each.

#include <cstdint>       // std::uint16_t
#include <string>        // std::string for error_category::message
#include <system_error>  // std::error_code, std::error_category


// ---- begin starling/protocol/close_code.hpp ----
// Close status codes of RFC 6455 section 7.4, and which of them may travel on the wire.

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
// ---- end starling/protocol/close_code.hpp ----

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
// ---- end starling/protocol/error.hpp ----

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
// ---- end starling/protocol/close.hpp ----

// ---- begin starling/protocol/framer.hpp ----
// RFC 6455 section 5: the frame header, its incremental parser and serialiser, and payload masking.
// Pure: bytes in, bytes out, no sockets. The message layer on top is message_reader.hpp.

#include <array>    // std::array masking key and header buffer
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t, std::uint64_t
#include <cstring>  // std::memcpy for unaligned word access
#include <span>     // std::span input and output views
#include <string>   // std::string encode_frame result
#include <string_view>  // std::string_view payloads
#include <system_error> // std::error_code


namespace starling {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

/// Opcodes 0x3-0x7 and 0xB-0xF have no meaning without an extension.
constexpr bool is_reserved_opcode(std::uint8_t raw) noexcept {
    return (raw >= 0x3 && raw <= 0x7) || raw >= 0xB;
}

/// Which end of the connection we are: a server requires masked frames, a client requires unmasked ones.
enum class role { server, client };

/// Largest control frame payload (RFC 6455 5.5).
inline constexpr std::size_t max_control_payload = 125;
/// Largest frame header: 2 fixed bytes, 8 bytes of extended length, 4 bytes of masking key.
inline constexpr std::size_t max_frame_header_size = 14;

using masking_key = std::array<std::uint8_t, 4>;

struct frame_header {
    bool fin = true;
    bool rsv1 = false;
    bool rsv2 = false;
    bool rsv3 = false;
    opcode op = opcode::text;
    bool masked = false;
    masking_key key{};
    std::uint64_t payload_length = 0;
};

/// XORs `data` with the masking key, as if `data` started `offset` bytes into the frame's payload (so a
/// payload can be unmasked in pieces). Works eight bytes at a time; the compiler vectorises the loop.
inline void apply_mask(std::span<char> data, const masking_key& key, std::uint64_t offset = 0) noexcept {
    std::array<std::uint8_t, 8> rotated{};
    for (std::size_t i = 0; i < 8; ++i) rotated[i] = key[(offset + i) % 4];
    std::uint64_t word_key = 0;
    std::memcpy(&word_key, rotated.data(), sizeof word_key);

    char* p = data.data();
    std::size_t n = data.size();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, p + i, 8);
        word ^= word_key;
        std::memcpy(p + i, &word, 8);
    }
    for (; i < n; ++i) p[i] = static_cast<char>(static_cast<std::uint8_t>(p[i]) ^ rotated[i % 8]);
}

/// Serialises `h` into `out` in its shortest length encoding; returns the header's size (2 to 14).
inline std::size_t write_frame_header(const frame_header& h,
                                      std::span<std::uint8_t, max_frame_header_size> out) noexcept {
    out[0] = static_cast<std::uint8_t>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                                       (h.rsv3 ? 0x10 : 0) | static_cast<std::uint8_t>(h.op));
    const std::uint8_t mask_bit = h.masked ? 0x80 : 0;
    std::size_t size = 2;
    if (h.payload_length < 126) {
        out[1] = static_cast<std::uint8_t>(mask_bit | h.payload_length);
    } else if (h.payload_length <= 0xFFFF) {
        out[1] = mask_bit | 126;
        out[2] = static_cast<std::uint8_t>(h.payload_length >> 8);
        out[3] = static_cast<std::uint8_t>(h.payload_length);
        size = 4;
    } else {
        out[1] = mask_bit | 127;
        for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(h.payload_length >> (56 - 8 * i));
        size = 10;
    }
    if (h.masked) {
        std::memcpy(out.data() + size, h.key.data(), 4);
        size += 4;
    }
    return size;
}

/// A whole frame as bytes: header then payload, masked when `key` is given (clients mask, servers don't).
inline std::string encode_frame(opcode op, std::string_view payload, bool fin = true,
                                const masking_key* key = nullptr) {
    frame_header h;
    h.fin = fin;
    h.op = op;
    h.payload_length = payload.size();
    if (key != nullptr) {
        h.masked = true;
        h.key = *key;
    }
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size = write_frame_header(h, header);
    std::string frame;
    frame.resize(header_size + payload.size());
    std::memcpy(frame.data(), header.data(), header_size);
    if (!payload.empty()) std::memcpy(frame.data() + header_size, payload.data(), payload.size());
    if (key != nullptr) apply_mask(std::span<char>(frame).subspan(header_size), *key);
    return frame;
}

enum class header_status { need_more, complete, failed };

/// What the header parser checks a header against.
struct header_limits {
    role local_role = role::server;
    /// Largest data frame payload accepted, inclusive.
    std::uint64_t max_frame_size = UINT64_MAX;
    /// permessage-deflate was negotiated: RSV1 marks the first frame of a compressed message, and is
    /// still an error on a control frame or a continuation (RFC 7692 section 6).
    bool allow_rsv1 = false;
};

/// Incremental frame-header parser. Feed it bytes in any chunking; it stops at the end of a header and
/// checks everything the header alone can tell (reserved bits and opcodes, masking for the role,
/// control frame rules, length encoding, the frame size limit), so an oversized frame is refused before
/// a byte of its payload is buffered.
class frame_header_parser {
public:
    explicit frame_header_parser(header_limits lim = {}) noexcept : limits_(lim) {}

    /// Consumes header bytes from the front of `in` and adds their number to `consumed`.
    header_status put(std::span<const std::uint8_t> in, std::size_t& consumed) noexcept {
        // Fast path: the whole header is in `in` and nothing is buffered.
        if (buffered_ == 0 && in.size() >= 2) {
            const std::size_t need = header_size(in[1]);
            if (in.size() >= need) {
                consumed += need;
                return decode(in.first(need));
            }
        }
        std::size_t need = buffered_ >= 2 ? header_size(buffer_[1]) : 2;
        std::size_t i = 0;
        while (buffered_ < need && i < in.size()) {
            buffer_[buffered_++] = in[i++];
            if (buffered_ == 2) need = header_size(buffer_[1]);
        }
        consumed += i;
        if (buffered_ < need) return header_status::need_more;
        const std::size_t size = buffered_;
        buffered_ = 0;
        return decode(std::span<const std::uint8_t>(buffer_.data(), size));
    }

    const frame_header& header() const noexcept { return header_; }
    std::error_code error() const noexcept { return error_; }
    void reset() noexcept { buffered_ = 0; error_ = {}; }

private:
    /// The header's full size, known from its second byte.
    static std::size_t header_size(std::uint8_t b1) noexcept {
        const std::uint8_t len7 = b1 & 0x7F;
        return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
    }

    header_status fail(starling::error e) noexcept {
        error_ = make_error_code(e);
        return header_status::failed;
    }

    header_status decode(std::span<const std::uint8_t> bytes) noexcept {
        frame_header& h = header_;
        const std::uint8_t b0 = bytes[0];
        const std::uint8_t b1 = bytes[1];
        h.fin = (b0 & 0x80) != 0;
        h.rsv1 = (b0 & 0x40) != 0;
        h.rsv2 = (b0 & 0x20) != 0;
        h.rsv3 = (b0 & 0x10) != 0;
        const std::uint8_t raw_op = b0 & 0x0F;
        h.masked = (b1 & 0x80) != 0;
        const std::uint8_t len7 = b1 & 0x7F;

        if ((h.rsv1 && !limits_.allow_rsv1) || h.rsv2 || h.rsv3) return fail(starling::error::reserved_bits_set);
        if (is_reserved_opcode(raw_op)) return fail(starling::error::reserved_opcode);
        h.op = static_cast<opcode>(raw_op);
        if (h.rsv1 && (is_control(h.op) || h.op == opcode::continuation))
            return fail(starling::error::compressed_control_or_continuation);
        if (limits_.local_role == role::server && !h.masked) return fail(starling::error::unmasked_client_frame);
        if (limits_.local_role == role::client && h.masked) return fail(starling::error::masked_server_frame);

        std::size_t pos = 2;
        if (len7 < 126) {
            h.payload_length = len7;
        } else if (len7 == 126) {
            h.payload_length = (std::uint64_t{bytes[2]} << 8) | bytes[3];
            pos = 4;
            if (h.payload_length < 126) return fail(starling::error::non_minimal_length);
        } else {
            std::uint64_t len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | bytes[2 + i];
            pos = 10;
            if (len >> 63) return fail(starling::error::length_top_bit_set);
            if (len <= 0xFFFF) return fail(starling::error::non_minimal_length);
            h.payload_length = len;
        }
        if (is_control(h.op)) {
            if (!h.fin) return fail(starling::error::fragmented_control_frame);
            if (h.payload_length > max_control_payload) return fail(starling::error::control_frame_too_large);
        }
        if (h.masked) std::memcpy(h.key.data(), bytes.data() + pos, 4);
        // Control frames are bounded by the 125-byte rule above; the size limit is for data frames.
        if (!is_control(h.op) && h.payload_length > limits_.max_frame_size) return fail(starling::error::frame_too_big);
        return header_status::complete;
    }

    header_limits limits_;
    frame_header header_{};
    std::array<std::uint8_t, max_frame_header_size> buffer_{};
    std::size_t buffered_ = 0;
    std::error_code error_{};
};

}  // namespace starling
// ---- end starling/protocol/framer.hpp ----

// ---- begin starling/protocol/handshake.hpp ----
// The server side of the RFC 6455 opening handshake (section 4.2), sans I/O: judge a parsed request,
// and build the 101 that accepts it or the HTTP error that refuses it.

#include <array>        // std::array decoded key
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <string>       // std::string responses and accept key
#include <string_view>  // std::string_view inputs and reason phrases
#include <system_error> // std::error_code
#include <vector>       // std::vector repeated field values


// ---- begin starling/protocol/base64.hpp ----
// Base64 with the standard alphabet and padding (RFC 4648 section 4), for Sec-WebSocket-Key and
// Sec-WebSocket-Accept. The decoder is strict on purpose: a key is valid only if it is the canonical
// encoding of exactly 16 bytes, so anything a lenient decoder would forgive must be refused here.

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint32_t
#include <optional>     // std::optional decoded size
#include <span>         // std::span input and output bytes
#include <string>       // std::string encode result
#include <string_view>  // std::string_view encoded text

namespace starling::detail {

inline constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 6-bit value of an alphabet character, or -1 for anything else ('=' included).
constexpr int base64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/// Padded base64 of `bytes`.
inline std::string base64_encode(std::span<const std::uint8_t> bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t group = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) |
                                    std::uint32_t{bytes[i + 2]};
        out += base64_alphabet[(group >> 18) & 0x3F];
        out += base64_alphabet[(group >> 12) & 0x3F];
        out += base64_alphabet[(group >> 6) & 0x3F];
        out += base64_alphabet[group & 0x3F];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest == 1) {
        const std::uint32_t group = std::uint32_t{bytes[i]} << 16;
        out += base64_alphabet[(group >> 18) & 0x3F];
        out += base64_alphabet[(group >> 12) & 0x3F];
        out += "==";
    } else if (rest == 2) {
        const std::uint32_t group = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8);
        out += base64_alphabet[(group >> 18) & 0x3F];
        out += base64_alphabet[(group >> 12) & 0x3F];
        out += base64_alphabet[(group >> 6) & 0x3F];
        out += '=';
    }
    return out;
}

/// How many bytes `text` decodes to if it is valid, judged from its length and trailing '=' alone;
/// std::nullopt when those already rule it out (length not a multiple of 4, more than two '=').
/// Characters are not checked here: base64_decode does that.
constexpr std::optional<std::size_t> base64_decoded_size(std::string_view text) noexcept {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t padding = 0;
    while (padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
    if (padding > 2) return std::nullopt;
    return text.size() / 4 * 3 - padding;
}

/// Strict decoder: the standard alphabet only, no whitespace, length a multiple of 4, '=' only as
/// the last one or two characters, and the bits that padding leaves over must be zero (RFC 4648
/// section 3.5), so every byte string has exactly one accepted encoding. On success `written` is the
/// decoded size; on failure it is 0, `out` may hold partial output, and an `out` too small for the
/// result is a failure too.
constexpr bool base64_decode(std::string_view in, std::span<std::uint8_t> out, std::size_t& written) noexcept {
    written = 0;
    const std::optional<std::size_t> size = base64_decoded_size(in);
    if (!size || *size > out.size()) return false;

    const std::size_t padding = in.size() / 4 * 3 - *size;
    std::size_t o = 0;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        const std::size_t digits = last ? 4 - padding : 4;
        std::uint32_t group = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            int value = 0;
            if (j < digits) {
                value = base64_value(in[i + j]);
                if (value < 0) return false;
            }
            group = (group << 6) | static_cast<std::uint32_t>(value);
        }
        // Padding stands for zero bits; a non-zero leftover would make a second encoding of the
        // same bytes.
        if (digits == 2 && (group & 0xFFFF) != 0) return false;
        if (digits == 3 && (group & 0xFF) != 0) return false;
        out[o++] = static_cast<std::uint8_t>(group >> 16);
        if (digits >= 3) out[o++] = static_cast<std::uint8_t>(group >> 8);
        if (digits == 4) out[o++] = static_cast<std::uint8_t>(group);
    }
    written = o;
    return true;
}

}  // namespace starling::detail
// ---- end starling/protocol/base64.hpp ----

// ---- begin starling/protocol/sha1.hpp ----
// SHA-1 (FIPS 180-4), needed only to compute Sec-WebSocket-Accept in the opening handshake. SHA-1 is
// broken for collision resistance, which RFC 6455 does not rely on; never use this for security.

#include <array>        // std::array digest, state and block
#include <bit>          // std::rotl
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint32_t, std::uint64_t
#include <string_view>  // std::string_view input

namespace starling::detail {

inline constexpr std::size_t sha1_block_size = 64;
inline constexpr std::size_t sha1_digest_size = 20;

using sha1_digest = std::array<std::uint8_t, sha1_digest_size>;

/// One round of the compression function over a 512-bit block (FIPS 180-4 section 6.1.2).
constexpr void sha1_compress(std::array<std::uint32_t, 5>& state,
                             const std::array<std::uint8_t, sha1_block_size>& block) noexcept {
    std::array<std::uint32_t, 80> w{};
    for (std::size_t t = 0; t < 16; ++t) {
        w[t] = (std::uint32_t{block[4 * t]} << 24) | (std::uint32_t{block[4 * t + 1]} << 16) |
               (std::uint32_t{block[4 * t + 2]} << 8) | std::uint32_t{block[4 * t + 3]};
    }
    for (std::size_t t = 16; t < 80; ++t) {
        w[t] = std::rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    }

    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    for (std::size_t t = 0; t < 80; ++t) {
        std::uint32_t f = 0, k = 0;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        const std::uint32_t temp = std::rotl(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = std::rotl(b, 30);
        b = a;
        a = temp;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

/// The SHA-1 digest of `data`. constexpr so digests of constants can be checked at compile time.
constexpr sha1_digest sha1(std::string_view data) noexcept {
    std::array<std::uint32_t, 5> state{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::array<std::uint8_t, sha1_block_size> block{};

    // Whole blocks straight from the input; only the tail is copied into a padded block.
    const std::size_t whole = data.size() - data.size() % sha1_block_size;
    for (std::size_t offset = 0; offset < whole; offset += sha1_block_size) {
        for (std::size_t i = 0; i < sha1_block_size; ++i) {
            block[i] = static_cast<std::uint8_t>(data[offset + i]);
        }
        sha1_compress(state, block);
    }

    const std::size_t rest = data.size() - whole;
    block = {};
    for (std::size_t i = 0; i < rest; ++i) block[i] = static_cast<std::uint8_t>(data[whole + i]);
    block[rest] = 0x80;
    // The 64-bit length needs the last 8 bytes of a block; when the tail leaves no room for it, the
    // padding spills into one more block.
    if (rest >= sha1_block_size - 8) {
        sha1_compress(state, block);
        block = {};
    }
    const std::uint64_t bit_length = static_cast<std::uint64_t>(data.size()) * 8;
    for (std::size_t i = 0; i < 8; ++i) {
        block[sha1_block_size - 1 - i] = static_cast<std::uint8_t>(bit_length >> (8 * i));
    }
    sha1_compress(state, block);

    sha1_digest digest{};
    for (std::size_t i = 0; i < 5; ++i) {
        digest[4 * i] = static_cast<std::uint8_t>(state[i] >> 24);
        digest[4 * i + 1] = static_cast<std::uint8_t>(state[i] >> 16);
        digest[4 * i + 2] = static_cast<std::uint8_t>(state[i] >> 8);
        digest[4 * i + 3] = static_cast<std::uint8_t>(state[i]);
    }
    return digest;
}

}  // namespace starling::detail
// ---- end starling/protocol/sha1.hpp ----

// ---- begin starling/http/headers.hpp ----
// HTTP header fields as received: an ordered list of (name, value) pairs, looked up by name
// case-insensitively (RFC 9110 section 5.1), plus the ASCII helpers that field names and token lists
// need.

#include <cstddef>      // std::size_t
#include <optional>     // std::optional lookup result
#include <string>       // std::string owned names and values
#include <string_view>  // std::string_view lookups
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector field list

namespace starling::http {

namespace detail {

// Hand-rolled rather than <cctype>: those depend on the C locale and take int, and HTTP's case rules
// are plain ASCII.
constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

/// tchar of RFC 9110 section 5.6.2: what methods, field names and list tokens are made of.
constexpr bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

constexpr bool is_token(std::string_view text) noexcept {
    if (text.empty()) return false;
    for (char c : text) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

/// Optional whitespace (OWS): space and horizontal tab only.
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
    return text;
}

}  // namespace detail

/// Header fields in arrival order. Repeated names are kept as separate entries, because combining
/// them is only correct for list-valued fields and the caller knows which fields those are.
class headers {
public:
    using field = std::pair<std::string, std::string>;
    using const_iterator = std::vector<field>::const_iterator;

    void add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }

    /// The value of the first field called `name`, case-insensitively.
    std::optional<std::string_view> get(std::string_view name) const {
        for (const field& f : fields_) {
            if (detail::iequals(f.first, name)) return std::string_view{f.second};
        }
        return std::nullopt;
    }

    /// The values of every field called `name`, in arrival order.
    std::vector<std::string_view> get_all(std::string_view name) const {
        std::vector<std::string_view> values;
        for (const field& f : fields_) {
            if (detail::iequals(f.first, name)) values.emplace_back(f.second);
        }
        return values;
    }

    bool contains(std::string_view name) const { return get(name).has_value(); }

    /// True if any field called `name`, read as a comma-separated token list (RFC 9110 section 5.6.1:
    /// optional whitespace around elements, empty elements allowed), has an element equal to `token`
    /// ignoring ASCII case. This is how Connection and Upgrade must be read: browsers send
    /// `Connection: keep-alive, Upgrade`.
    bool has_token(std::string_view name, std::string_view token) const {
        if (token.empty()) return false;  // empty list elements are not tokens
        for (const field& f : fields_) {
            if (!detail::iequals(f.first, name)) continue;
            std::string_view rest = f.second;
            while (true) {
                const std::size_t comma = rest.find(',');
                if (detail::iequals(detail::trim_ows(rest.substr(0, comma)), token)) return true;
                if (comma == std::string_view::npos) break;
                rest.remove_prefix(comma + 1);
            }
        }
        return false;
    }

    std::size_t size() const noexcept { return fields_.size(); }
    bool empty() const noexcept { return fields_.empty(); }
    const_iterator begin() const noexcept { return fields_.begin(); }
    const_iterator end() const noexcept { return fields_.end(); }
    void clear() noexcept { fields_.clear(); }

private:
    std::vector<field> fields_;
};

/// Reads one field line of a head ("Name: value", without its CRLF) into `into`, strictly: no leading
/// whitespace (obsolete line folding, RFC 9112 section 5.2, is rejected, never unfolded), a token
/// name directly followed by the colon ("Host : x" fails, as section 5.1 requires), the value
/// trimmed of optional whitespace. False for a malformed line, which is then not added.
inline bool parse_field_line(std::string_view line, headers& into) {
    if (line.empty() || detail::is_ows(line.front())) return false;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    if (!detail::is_token(name)) return false;
    into.add(std::string{name}, std::string{detail::trim_ows(line.substr(colon + 1))});
    return true;
}

}  // namespace starling::http
// ---- end starling/http/headers.hpp ----

// ---- begin starling/http/request.hpp ----
// An HTTP/1.1 request head as the request parser produces it: request line and header fields. There
// is no body, because a WebSocket upgrade request has none.

#include <cstddef>      // std::size_t
#include <string>       // std::string request-line parts
#include <string_view>  // std::string_view path and query views


namespace starling::http {

struct request {
    std::string method;   // e.g. "GET"
    std::string target;   // origin form: "/chat?room=1"
    std::string version;  // "HTTP/1.1"
    headers fields;

    /// The target up to its '?' or '#', still percent-encoded: "/chat" for "/chat?room=1".
    std::string_view path() const noexcept {
        const std::string_view t = target;
        return t.substr(0, t.find_first_of("?#"));
    }

    /// What follows the first '?' of the target, up to any '#', still percent-encoded: "room=1" for
    /// "/chat?room=1". Empty when there is no query.
    std::string_view query_string() const noexcept {
        std::string_view t = target;
        t = t.substr(0, t.find('#'));  // a '?' inside a fragment does not start a query
        const std::size_t question = t.find('?');
        if (question == std::string_view::npos) return {};
        return t.substr(question + 1);
    }
};

}  // namespace starling::http
// ---- end starling/http/request.hpp ----

namespace starling {

/// Appended to the client's key before hashing (RFC 6455 section 1.3).
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)). Surrounding whitespace
/// of the key is ignored, as section 4.2.2 says, so a value read from any header source works.
inline std::string compute_accept_key(std::string_view client_key) {
    std::string input{http::detail::trim_ows(client_key)};
    input += websocket_guid;
    const detail::sha1_digest digest = detail::sha1(input);
    return detail::base64_encode(digest);
}

/// True if the request asks for a WebSocket upgrade at all, whether or not it is a valid one: this
/// tells an upgrade to refuse with 400/426 from a plain GET to serve as HTTP.
inline bool is_websocket_upgrade(const http::request& req) {
    return req.fields.has_token("Upgrade", "websocket");
}

namespace detail {

/// True if the request announces a body: a Transfer-Encoding field of any value, or a Content-Length
/// that is not exactly a run of zeros. A malformed or repeated-and-different Content-Length counts as
/// a body too: whatever it means, the request is not one with nothing after its head.
inline bool announces_body(const http::request& req) {
    if (req.fields.contains("Transfer-Encoding")) return true;
    for (const std::string_view value : req.fields.get_all("Content-Length")) {
        const std::string_view digits = http::detail::trim_ows(value);
        if (digits.empty() || digits.find_first_not_of('0') != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace detail

/// Checks a request against RFC 6455 section 4.2.1, in this order: GET (bad_method), HTTP/1.1
/// (bad_http_version), exactly one Host (missing_host), Upgrade lists "websocket" (missing_upgrade),
/// Connection lists "upgrade" (missing_connection_upgrade), exactly one Sec-WebSocket-Key
/// (missing_key when absent) that is the base64 of exactly 16 bytes (bad_key), exactly one
/// Sec-WebSocket-Version of "13" (unsupported_version, also when absent), no body
/// (request_has_body: a Content-Length other than 0, or any Transfer-Encoding). Empty when acceptable.
inline std::error_code validate_upgrade_request(const http::request& req) {
    if (req.method != "GET") return error::bad_method;
    if (req.version != "HTTP/1.1") return error::bad_http_version;
    // RFC 9112 section 3.2 answers two Host fields with 400, like a missing one.
    if (req.fields.get_all("Host").size() != 1) return error::missing_host;
    if (!req.fields.has_token("Upgrade", "websocket")) return error::missing_upgrade;
    if (!req.fields.has_token("Connection", "upgrade")) return error::missing_connection_upgrade;

    const std::vector<std::string_view> keys = req.fields.get_all("Sec-WebSocket-Key");
    if (keys.empty()) return error::missing_key;
    if (keys.size() != 1) return error::bad_key;  // section 11.3.1: at most once in a request
    std::array<std::uint8_t, 16> nonce{};
    std::size_t written = 0;
    // A 16-byte value encodes to exactly 24 characters, so a longer key cannot fit `nonce` and fails.
    if (!detail::base64_decode(http::detail::trim_ows(keys.front()), nonce, written) || written != nonce.size()) {
        return error::bad_key;
    }

    const std::vector<std::string_view> versions = req.fields.get_all("Sec-WebSocket-Version");
    if (versions.size() != 1 || http::detail::trim_ows(versions.front()) != "13") {
        return error::unsupported_version;
    }
    // The bytes after the head are read as WebSocket frames: a body there would be taken for frames
    // (and a client that meant to send one is confused about the protocol), so refuse it outright.
    if (detail::announces_body(req)) return error::request_has_body;
    return {};
}

/// The standard reason phrase of `status`, or "" for one this library never sends (an empty reason
/// phrase is valid HTTP).
constexpr std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

/// The 101 response accepting a handshake whose key is `client_key`, with `extra_headers` (whole
/// header lines: the agreed Sec-WebSocket-Extensions, "Sec-WebSocket-Protocol: chat\r\n") after the standard ones.
inline std::string make_accept_response(std::string_view client_key, std::string_view extra_headers = {}) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    out += compute_accept_key(client_key);
    out += "\r\n";
    out += extra_headers;
    out += "\r\n";
    return out;
}

/// A complete HTTP/1.1 response: status line, Content-Type (left out when `content_type` is empty),
/// Content-Length, Connection: close, then `extra_headers`, then the body. `extra_headers` is zero or
/// more whole header lines ("Name: value\r\n"); a missing final CRLF is added. Connection: close
/// because after a refused or plain-HTTP exchange the server closes rather than reading a second
/// request.
inline std::string make_response(int status, std::string_view content_type, std::string_view body,
                                 std::string_view extra_headers = {}) {
    std::string out = "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\n";
    if (!content_type.empty()) {
        out += "Content-Type: ";
        out += content_type;
        out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(body.size());
    out += "\r\nConnection: close\r\n";
    out += extra_headers;
    if (!extra_headers.empty() && !extra_headers.ends_with("\r\n")) out += "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

/// The status refusing a handshake with `ec`: its http_status_for status, 500 for an error_code from
/// another category.
inline int error_response_status(std::error_code ec) noexcept {
    return ec.category() == error_category() ? http_status_for(static_cast<error>(ec.value())) : 500;
}

/// The response refusing a handshake with `ec`: error_response_status, a text/plain body of
/// ec.message(), and on 426 the Sec-WebSocket-Version that section 4.4 requires, naming the version
/// this server speaks.
inline std::string make_error_response(std::error_code ec) {
    const int status = error_response_status(ec);
    const std::string_view extra = status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "";
    return make_response(status, "text/plain; charset=utf-8", ec.message(), extra);
}

}  // namespace starling
// ---- end starling/protocol/handshake.hpp ----

// ---- begin starling/http/request_parser.hpp ----
// Incremental, strict parser for an HTTP/1.1 request head (RFC 9112 sections 2-5), sans I/O: the
// caller feeds whatever bytes arrived and learns whether the head is complete. Strict because the
// only requests it has to understand are WebSocket upgrades, and every leniency is a way for a
// front proxy and this server to disagree about where a request ends.

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <string>       // std::string line buffer
#include <string_view>  // std::string_view input
#include <system_error> // std::error_code
#include <utility>      // std::move


namespace starling::http {

enum class parse_status { need_more, complete, failed };

struct parse_result {
    parse_status status;
    std::size_t consumed;  // bytes of this call's input that belong to the head
};

class request_parser {
public:
    static constexpr std::size_t default_max_header_bytes = 8 * 1024;
    /// More fields than this is header_too_large: a cap on work and memory per request that does not
    /// depend on how short each field is.
    static constexpr std::size_t max_fields = 100;

    /// `max_header_bytes` bounds the whole head: request line, fields, every CRLF and the blank line.
    explicit request_parser(std::size_t max_header_bytes = default_max_header_bytes) noexcept
        : max_bytes_(max_header_bytes) {}

    /// Feeds the next bytes, in any chunking. Stops right after the blank line that ends the head, so
    /// bytes past it (a client may send its first frame without waiting for the 101) are not consumed
    /// and stay with the caller. Once complete or failed, further calls consume nothing. On failure,
    /// `consumed` counts up to and including the byte that revealed the error; every error is found
    /// at the same byte whatever the chunking.
    parse_result put(std::string_view data);

    parse_status status() const noexcept { return status_; }
    /// The request parsed so far: whole once status() is complete.
    const request& get() const noexcept { return request_; }
    /// Moves the request out; get() is then empty until the next reset() and parse.
    request release() { return std::move(request_); }
    /// Why parsing failed; empty unless status() is failed.
    std::error_code error() const noexcept { return error_; }
    /// Forgets everything parsed so far, keeping the limit, to parse another head.
    void reset();

private:
    enum class stage { request_line, header_line };

    parse_result fail(std::error_code ec, std::size_t consumed) {
        status_ = parse_status::failed;
        error_ = ec;
        return {status_, consumed};
    }

    /// The error for a malformed byte in the line being read.
    starling::error line_error() const noexcept {
        return stage_ == stage::request_line ? starling::error::bad_request_line : starling::error::bad_header_line;
    }

    /// Bytes that may appear inside the current line. Checked as each byte arrives, so that a peer
    /// speaking something else (TLS, binary) is refused at once instead of when the limit is reached.
    bool allowed_in_line(char ch) const noexcept {
        const auto c = static_cast<unsigned char>(ch);
        if (stage_ == stage::request_line) return c == ' ' || (c > 0x20 && c < 0x7F);  // ASCII only
        return c == '\t' || (c >= 0x20 && c != 0x7F);  // field values may carry obs-text (0x80-0xFF)
    }

    std::error_code finish_line();
    std::error_code parse_request_line(std::string_view line);
    std::error_code parse_header_line(std::string_view line);

    request request_;
    std::string line_;  // the line being read, without its CRLF
    std::size_t max_bytes_;
    std::size_t head_bytes_ = 0;  // bytes of the head seen so far, CRLFs included
    parse_status status_ = parse_status::need_more;
    stage stage_ = stage::request_line;
    bool after_cr_ = false;  // the last byte was the CR of a line ending
    std::error_code error_;
};

inline parse_result request_parser::put(std::string_view data) {
    if (status_ != parse_status::need_more) return {status_, 0};

    std::size_t i = 0;
    while (i < data.size()) {
        // Refuse the first byte past the limit rather than anything later, so at most the limit is
        // ever buffered and a head of exactly the limit still completes.
        if (head_bytes_ == max_bytes_) return fail(starling::error::header_too_large, i + 1);

        if (after_cr_) {
            ++head_bytes_;
            if (data[i] != '\n') return fail(line_error(), i + 1);  // bare CR
            ++i;
            after_cr_ = false;
            if (const std::error_code ec = finish_line()) return fail(ec, i);
            if (status_ == parse_status::complete) return {status_, i};
            continue;
        }

        // Take the longest run of line bytes at once: feeding one large chunk costs one append, and
        // feeding one byte per call costs O(1) per byte, never a rescan of what is buffered.
        const std::size_t end = i + std::min(data.size() - i, max_bytes_ - head_bytes_);  // safe for a SIZE_MAX limit
        std::size_t j = i;
        for (; j < end; ++j) {
            const char c = data[j];
            if (c == '\r' || c == '\n') break;
            if (!allowed_in_line(c)) return fail(line_error(), j + 1);
        }
        line_.append(data.substr(i, j - i));
        head_bytes_ += j - i;
        i = j;
        if (i == data.size() || head_bytes_ == max_bytes_) continue;

        ++head_bytes_;
        if (data[i] == '\n') return fail(line_error(), i + 1);  // bare LF
        ++i;
        after_cr_ = true;
    }
    return {parse_status::need_more, data.size()};
}

inline void request_parser::reset() {
    request_ = request{};
    line_.clear();
    head_bytes_ = 0;
    status_ = parse_status::need_more;
    stage_ = stage::request_line;
    after_cr_ = false;
    error_.clear();
}

inline std::error_code request_parser::finish_line() {
    std::error_code ec;
    if (stage_ == stage::request_line) {
        ec = parse_request_line(line_);
        stage_ = stage::header_line;
    } else if (line_.empty()) {
        status_ = parse_status::complete;
    } else {
        ec = parse_header_line(line_);
    }
    line_.clear();
    return ec;
}

inline std::error_code request_parser::parse_request_line(std::string_view line) {
    // Exactly two single spaces: RFC 9112 allows servers to accept other whitespace, and this one
    // does not, so that no two parsers can split the line differently.
    const std::size_t first = line.find(' ');
    if (first == std::string_view::npos) return starling::error::bad_request_line;
    const std::size_t second = line.find(' ', first + 1);
    if (second == std::string_view::npos) return starling::error::bad_request_line;
    if (line.find(' ', second + 1) != std::string_view::npos) return starling::error::bad_request_line;

    const std::string_view method = line.substr(0, first);
    const std::string_view target = line.substr(first + 1, second - first - 1);
    const std::string_view version = line.substr(second + 1);
    if (!detail::is_token(method)) return starling::error::bad_request_line;
    // Origin form only: absolute form is for proxies and asterisk form for OPTIONS, neither of which
    // can be a WebSocket upgrade. allowed_in_line already kept out controls, spaces and non-ASCII.
    if (target.empty() || target.front() != '/') return starling::error::bad_request_line;
    if (version.empty()) return starling::error::bad_request_line;
    if (version != "HTTP/1.1") return starling::error::bad_http_version;

    request_.method = method;
    request_.target = target;
    request_.version = version;
    return {};
}

inline std::error_code request_parser::parse_header_line(std::string_view line) {
    if (request_.fields.size() == max_fields) return starling::error::header_too_large;
    if (!parse_field_line(line, request_.fields)) return starling::error::bad_header_line;
    return {};
}

}  // namespace starling::http
// ---- end starling/http/request_parser.hpp ----

// ---- begin starling/protocol/message_reader.hpp ----
// RFC 6455 section 5.4: turns a stream of frames into messages and control frames. Reassembles
// fragments (with control frames interleaved), validates text as UTF-8 as it arrives, enforces the
// message size limit from each frame header before buffering, and parses close frames. Pure: the
// caller feeds bytes it read from wherever it likes.

#include <algorithm>     // std::min
#include <array>         // std::array control-frame payload
#include <cstddef>       // std::size_t
#include <cstdint>       // std::uint64_t
#include <span>          // std::span input
#include <string>        // std::string reassembly buffer
#include <string_view>   // std::string_view payload views
#include <system_error>  // std::error_code


namespace starling {

/// Default maximum message size: 1 MiB, inclusive.
inline constexpr std::uint64_t default_max_message_size = 1024 * 1024;

struct reader_options {
    role local_role = role::server;
    /// Largest message (the sum of its fragments) accepted, inclusive; larger ones fail with 1009.
    std::uint64_t max_message_size = default_max_message_size;
    /// Largest single frame accepted, inclusive; 0 means "the message limit".
    std::uint64_t max_frame_size = 0;
    /// permessage-deflate was negotiated: a message whose first frame has RSV1 is compressed. It is
    /// handed out as it arrived (message_compressed()), for the caller to inflate and then validate:
    /// compressed bytes are not UTF-8-checked here.
    bool compression = false;
};

enum class read_status {
    need_more,  // every byte given was consumed; feed more
    message,    // a complete text or binary message: message_type() and payload()
    ping,       // payload() holds the ping's payload, to be echoed in a pong
    pong,       // payload() holds the pong's payload
    close,      // close_frame() holds the peer's parsed code and reason
    failed,     // error() says why; close_code_for(error) is the code to close with
};

struct read_result {
    read_status status;
    std::size_t consumed;  // bytes of the input used up to and including this event
};

class message_reader {
public:
    explicit message_reader(reader_options options = {}) noexcept
        : options_(options),
          headers_({options.local_role,
                    options.max_frame_size != 0 ? options.max_frame_size : wire_limit(options),
                    options.compression}) {}

    /// Parses from `data` up to the next event. Payload bytes are unmasked in place, which is why the
    /// input is mutable. An unfragmented message lying wholly inside `data` is returned as a view into
    /// `data` (no copy); anything else is reassembled in an internal buffer. Call again with the bytes
    /// after `consumed` until `need_more`. After `failed`, every call fails again and consumes nothing.
    read_result read(std::span<char> data) {
        view_ = {};  // a view from the last call may point into bytes the caller has since moved
        if (failed_) return {read_status::failed, 0};
        if (message_delivered_) {
            message_delivered_ = false;
            assembled_.clear();
        }
        std::size_t used = 0;
        for (;;) {
            if (!in_payload_) {
                const auto bytes = std::span<const std::uint8_t>(
                    reinterpret_cast<const std::uint8_t*>(data.data()) + used, data.size() - used);
                const header_status hs = headers_.put(bytes, used);
                if (hs == header_status::need_more) return {read_status::need_more, used};
                if (hs == header_status::failed) return fail(header_error(), used);
                if (const auto ec = begin_frame(); ec) return fail(ec, used);
            }
            // Zero-copy: a whole unfragmented data frame already in the buffer is handed out in place.
            const frame_header& h = headers_.header();
            const std::uint64_t available = data.size() - used;
            if (!is_control(h.op) && h.fin && h.op != opcode::continuation && payload_seen_ == 0 &&
                available >= h.payload_length) {
                const auto payload = data.subspan(used, static_cast<std::size_t>(h.payload_length));
                if (const auto ec = take_data(payload); ec) return fail(ec, used);
                used += payload.size();
                in_payload_ = false;
                view_ = std::string_view(payload.data(), payload.size());
                return finish_message(used);
            }
            const std::size_t chunk =
                static_cast<std::size_t>(std::min<std::uint64_t>(available, h.payload_length - payload_seen_));
            const auto payload = data.subspan(used, chunk);
            if (const auto ec = is_control(h.op) ? take_control(payload) : take_data(payload); ec)
                return fail(ec, used);
            used += chunk;
            if (payload_seen_ < h.payload_length) return {read_status::need_more, used};
            in_payload_ = false;
            if (is_control(h.op)) return finish_control(used);
            if (h.fin) {
                view_ = assembled_;
                return finish_message(used);
            }
        }
    }

    /// The type of the last message: text or binary.
    opcode message_type() const noexcept { return message_type_; }
    /// The last message arrived compressed (RSV1 on its first frame): its payload is deflate data,
    /// not yet checked as UTF-8.
    bool message_compressed() const noexcept { return compressed_; }
    /// The last message's or control frame's payload; valid until the next read() or until the bytes
    /// given to read() change.
    std::string_view payload() const noexcept { return view_; }
    /// Moves the last message's payload into `out`. When it was reassembled, the buffers are swapped,
    /// so `out`'s old capacity is reused for the next message: no allocation in steady state.
    void take_payload(std::string& out) {
        if (view_.data() == assembled_.data() && !assembled_.empty()) {
            out.swap(assembled_);
            assembled_.clear();
        } else {
            out.assign(view_);
        }
        view_ = out;
    }
    /// True when the last message was reassembled (take_payload then hands over the reader's buffer),
    /// false when it is a view into the caller's input.
    bool payload_assembled() const noexcept { return view_.data() == assembled_.data() && !assembled_.empty(); }

    // ---- The reassembly buffer, lent and taken back by the caller ----
    // The caller may keep large buffers for reuse across connections: between messages it can take a
    // large reassembly buffer back, and before a large frame it can lend one that is big enough.

    std::size_t assembly_capacity() const noexcept { return assembled_.capacity(); }
    /// The reassembly buffer, emptied; the reader goes on with none. Only between messages.
    std::string release_assembly() noexcept {
        std::string out;
        out.swap(assembled_);
        out.clear();
        return out;
    }
    /// Continues the current message in `bigger` if it is bigger than the buffer in use (what has
    /// arrived is copied over). Not while a direct_buffer() is out.
    void adopt_assembly(std::string bigger) {
        if (bigger.capacity() <= assembled_.capacity()) return;
        bigger.assign(assembled_);
        assembled_.swap(bigger);
    }

    const close_reason& close_frame() const noexcept { return close_; }
    std::error_code error() const noexcept { return error_; }
    /// True between the first and the last fragment of a message.
    bool in_message() const noexcept { return in_message_; }

    // ---- Direct input: a large frame's payload read straight into the message ----
    // Between two read() calls that returned need_more, a caller may read the rest of the current
    // data frame's payload into direct_buffer() instead of its own buffer, then commit_direct() the
    // bytes it got. That saves copying a large message out of a small read buffer.

    /// Payload bytes of the current data frame still to come; 0 outside a data frame's payload.
    std::uint64_t data_payload_remaining() const noexcept {
        if (failed_ || !in_payload_ || is_control(headers_.header().op)) return 0;
        return headers_.header().payload_length - payload_seen_;
    }

    /// Room for up to `max` more payload bytes of the current data frame, at the end of the message
    /// being assembled. Valid until the next call on this reader.
    ///
    /// What is committed follows what has arrived, never what a header announces. Until the message
    /// holds `proven_sender` bytes, the room is at most the bytes so far (and at least
    /// `min_direct_room`): a peer that sends the 14-byte header of a 1 MiB frame and then trickles
    /// commits a few KiB, not the frame. Past it, the whole frame is reserved at once (address space,
    /// which the kernel backs only as bytes land), so a large message is not copied as it grows.
    std::span<char> direct_buffer(std::size_t max) {
        const std::uint64_t remaining = data_payload_remaining();
        std::size_t room = max;
        if (direct_offered_) assembled_.resize(direct_start_);  // the last room was never committed
        direct_offered_ = true;
        direct_start_ = assembled_.size();
        const std::size_t whole = direct_start_ + static_cast<std::size_t>(remaining);
        if (assembled_.capacity() >= whole) {
            // The storage is there already (lent by the caller): nothing new is committed.
        } else if (direct_start_ < proven_sender) {
            room = std::max(min_direct_room, direct_start_);
        } else {
            assembled_.reserve(whole);
        }
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>({max, remaining, room}));
        assembled_.resize(direct_start_ + want);
        return {assembled_.data() + direct_start_, want};
    }

    /// Bytes of the current message received so far (when it is not handed out in place).
    std::size_t message_bytes_buffered() const noexcept { return assembled_.size(); }

    /// The least room direct_buffer() offers (unless the frame needs less).
    static constexpr std::size_t min_direct_room = 16 * 1024;
    /// Bytes of a message after which its sender has shown it really sends it.
    static constexpr std::size_t proven_sender = 64 * 1024;

    /// Takes the first `n` bytes written into the last direct_buffer(): unmasked, validated, counted,
    /// as read() would have. Returns need_more, message (the frame ended the message) or failed.
    read_result commit_direct(std::size_t n) {
        view_ = {};
        direct_offered_ = false;
        assembled_.resize(direct_start_ + n);
        if (const auto ec = accept_data({assembled_.data() + direct_start_, n}); ec) return fail(ec, 0);
        const frame_header& h = headers_.header();
        if (payload_seen_ < h.payload_length) return {read_status::need_more, 0};
        in_payload_ = false;
        if (!h.fin) return {read_status::need_more, 0};
        view_ = assembled_;
        return finish_message(0);
    }

    /// The most bytes a message may take on the wire. A compressed message's limit is on what it
    /// inflates to (the caller inflates it within max_message_size); on the wire it may be larger
    /// than that, since incompressible data grows when deflated: 5 bytes per block, and a compressor
    /// with little memory makes small blocks (zlib's memLevel 1: 128 symbols, about 4 %). A sixteenth
    /// more covers every zlib setting.
    static std::uint64_t wire_limit(const reader_options& o) noexcept {
        if (!o.compression) return o.max_message_size;
        const std::uint64_t slack = (o.max_message_size >> 4) + 64;
        return o.max_message_size > UINT64_MAX - slack ? UINT64_MAX : o.max_message_size + slack;
    }

private:
    /// The header parser checks lengths against the frame limit, which is the message limit when no
    /// frame limit is set: then the close reason names the limit the user configured.
    std::error_code header_error() const noexcept {
        const std::error_code ec = headers_.error();
        if (ec == make_error_code(error::frame_too_big) && options_.max_frame_size == 0)
            return make_error_code(error::message_too_big);
        return ec;
    }

    std::error_code begin_frame() noexcept {
        const frame_header& h = headers_.header();
        in_payload_ = true;
        payload_seen_ = 0;
        if (is_control(h.op)) {
            control_size_ = 0;
            return {};
        }
        if (h.op == opcode::continuation) {
            if (!in_message_) return make_error_code(error::continuation_without_start);
        } else {
            if (in_message_) return make_error_code(error::data_frame_in_open_message);
            in_message_ = true;
            message_type_ = h.op;
            compressed_ = h.rsv1;
            message_size_ = 0;
            utf8_.reset();
        }
        // The limit is checked against the announced length, before any of the payload is buffered.
        const std::uint64_t limit = compressed_ ? wire_limit(options_) : options_.max_message_size;
        if (h.payload_length > limit - message_size_)
            return make_error_code(error::message_too_big);
        message_size_ += h.payload_length;
        return {};
    }

    void unmask(std::span<char> payload) noexcept {
        const frame_header& h = headers_.header();
        if (h.masked) apply_mask(payload, h.key, payload_seen_);
        payload_seen_ += payload.size();
    }

    std::error_code take_control(std::span<char> payload) noexcept {
        unmask(payload);
        std::copy(payload.begin(), payload.end(), control_.begin() + static_cast<std::ptrdiff_t>(control_size_));
        control_size_ += payload.size();
        return {};
    }

    /// Unmasks data payload bytes in place, counts them, and validates them as they arrive if the
    /// message is text: what every data byte goes through, read() or direct input.
    std::error_code accept_data(std::span<char> payload) {
        unmask(payload);
        if (message_type_ == opcode::text && !compressed_ && !utf8_.write(std::string_view(payload.data(), payload.size())))
            return make_error_code(error::invalid_utf8);
        return {};
    }

    std::error_code take_data(std::span<char> payload) {
        if (const auto ec = accept_data(payload); ec) return ec;
        const std::string_view bytes(payload.data(), payload.size());
        const frame_header& h = headers_.header();
        // Only a message that cannot be handed out in place is copied.
        const bool in_place = h.fin && h.op != opcode::continuation && payload_seen_ == h.payload_length &&
                              bytes.size() == h.payload_length;
        if (!in_place) assembled_.append(bytes);
        return {};
    }

    read_result finish_message(std::size_t used) noexcept {
        in_message_ = false;
        if (message_type_ == opcode::text && !compressed_ && !utf8_.finish()) return fail(make_error_code(error::invalid_utf8), used);
        message_delivered_ = true;
        return {read_status::message, used};
    }

    read_result finish_control(std::size_t used) noexcept {
        view_ = std::string_view(control_.data(), control_size_);
        switch (headers_.header().op) {
        case opcode::ping: return {read_status::ping, used};
        case opcode::pong: return {read_status::pong, used};
        default: break;
        }
        if (const auto ec = parse_close_payload(view_, close_); ec) return fail(ec, used);
        return {read_status::close, used};
    }

    read_result fail(std::error_code ec, std::size_t used) noexcept {
        failed_ = true;
        error_ = ec;
        return {read_status::failed, used};
    }

    reader_options options_;
    frame_header_parser headers_;
    bool in_payload_ = false;      // the current frame's header is parsed, its payload is not complete
    std::uint64_t payload_seen_ = 0;
    bool in_message_ = false;
    bool message_delivered_ = false;
    opcode message_type_ = opcode::text;
    bool compressed_ = false;  // the message being read (or last read) is compressed
    std::uint64_t message_size_ = 0;
    std::string assembled_;
    std::size_t direct_start_ = 0;  // where the last direct_buffer() began in assembled_
    bool direct_offered_ = false;   // a direct_buffer() is out and not committed yet
    std::array<char, max_control_payload> control_{};
    std::size_t control_size_ = 0;
    std::string_view view_;
    utf8_validator utf8_;
    close_reason close_;
    bool failed_ = false;
    std::error_code error_{};
};

}  // namespace starling
// ---- end starling/protocol/message_reader.hpp ----

// ---- begin starling/protocol/query.hpp ----
// Query strings of request targets ("room=1&user=ann"): percent-decoding and a multimap of
// parameters, in the application/x-www-form-urlencoded style browsers use.

#include <cstddef>      // std::size_t
#include <optional>     // std::optional lookup result
#include <string>       // std::string decoded keys and values
#include <string_view>  // std::string_view inputs and lookups
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector parameter list

namespace starling {

namespace detail {

/// The value of a hex digit, or -1.
constexpr int hex_digit_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace detail

/// Decodes %XX escapes, and '+' to a space when `plus_is_space` (form encoding; pass false for
/// paths, where '+' is literal). A '%' not followed by two hex digits is kept as it is, because
/// refusing a whole request over one stray '%' helps nobody. The result is bytes: it is not checked
/// to be UTF-8.
inline std::string percent_decode(std::string_view text, bool plus_is_space = true) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%' && text.size() - i >= 3) {
            const int high = detail::hex_digit_value(text[i + 1]);
            const int low = detail::hex_digit_value(text[i + 2]);
            if (high >= 0 && low >= 0) {
                out += static_cast<char>(high * 16 + low);
                i += 2;
                continue;
            }
        }
        out += (plus_is_space && c == '+') ? ' ' : c;
    }
    return out;
}

/// Decoded query parameters in order of appearance. A multimap, because "tag=a&tag=b" is common and
/// dropping either value would be a silent loss.
class query_params {
public:
    using value_type = std::pair<std::string, std::string>;
    using const_iterator = std::vector<value_type>::const_iterator;

    /// Parses a query string without its '?'. Pieces are split on '&' and empty ones skipped; each
    /// splits at its first '=' ("a==b" is a -> "=b"), a piece without '=' is a key with value "", and
    /// keys and values are percent-decoded with '+' as space.
    static query_params parse(std::string_view query_string) {
        query_params params;
        while (!query_string.empty()) {
            const std::size_t amp = query_string.find('&');
            const std::string_view piece = query_string.substr(0, amp);
            query_string.remove_prefix(amp == std::string_view::npos ? query_string.size() : amp + 1);
            if (piece.empty()) continue;
            const std::size_t eq = piece.find('=');
            if (eq == std::string_view::npos) {
                params.add(percent_decode(piece), std::string{});
            } else {
                params.add(percent_decode(piece.substr(0, eq)), percent_decode(piece.substr(eq + 1)));
            }
        }
        return params;
    }

    /// The last value of `key`: with repeats, the last one wins, as in most web frameworks.
    std::optional<std::string_view> get(std::string_view key) const {
        for (auto it = params_.rbegin(); it != params_.rend(); ++it) {
            if (it->first == key) return std::string_view{it->second};
        }
        return std::nullopt;
    }

    std::string_view get(std::string_view key, std::string_view fallback) const {
        return get(key).value_or(fallback);
    }

    std::optional<std::string_view> get_first(std::string_view key) const {
        for (const value_type& p : params_) {
            if (p.first == key) return std::string_view{p.second};
        }
        return std::nullopt;
    }

    /// Every value of `key`, in order of appearance.
    std::vector<std::string_view> get_all(std::string_view key) const {
        std::vector<std::string_view> values;
        for (const value_type& p : params_) {
            if (p.first == key) values.emplace_back(p.second);
        }
        return values;
    }

    bool contains(std::string_view key) const { return get_first(key).has_value(); }

    void add(std::string key, std::string value) { params_.emplace_back(std::move(key), std::move(value)); }

    std::size_t size() const noexcept { return params_.size(); }
    bool empty() const noexcept { return params_.empty(); }
    const_iterator begin() const noexcept { return params_.begin(); }
    const_iterator end() const noexcept { return params_.end(); }

private:
    std::vector<value_type> params_;
};

}  // namespace starling
// ---- end starling/protocol/query.hpp ----

// The server and the coroutine API.

// ---- begin starling/app.hpp ----
// starling::app: register endpoints and routers, inject dependencies, then start the server.

#include <algorithm>    // std::find of a transport already reloaded
#include <cstdint>      // std::uint16_t port
#include <exception>    // std::exception of a failed reload
#include <functional>   // std::function signal actions
#include <memory>       // std::shared_ptr, std::unique_ptr
#include <stdexcept>    // std::invalid_argument, std::logic_error for set-up mistakes
#include <string>       // std::string paths
#include <string_view>  // std::string_view prefixes
#include <utility>      // std::move
#include <vector>       // std::vector of ports and topic sizes


// ---- begin starling/api/dependencies.hpp ----
// Dependency injection: containers of shared services, looked up by type or by name.
//
//     app.inject_global(logger{...});                 // by type: deps.get<logger>()
//     app.inject_global("audit", logger{...});        // by name: deps.get<logger>("audit")
//     app.inject(std::make_shared<cache>());          // a shared_ptr is stored as the object it owns
//
// Handlers receive `starling::global_dependencies&` (the app's), `starling::router_dependencies&`
// (those of the router that registered the endpoint), or a typed parameter `cache&` resolved by type
// (router first, then global). Containers are read-only once the server runs; the objects in them are
// shared by every connection on every worker thread, so they must be safe to use concurrently (or
// guard themselves with a mutex).

#include <memory>         // std::shared_ptr storage
#include <stdexcept>      // std::out_of_range, std::logic_error
#include <string>         // std::string names
#include <string_view>    // std::string_view lookups
#include <type_traits>    // std::decay_t
#include <typeindex>      // std::type_index keys
#include <unordered_map>  // lookup tables
#include <utility>        // std::move


// ---- begin starling/api/type_name.hpp ----
// Readable type names at compile time, for error messages ("needs dependency 'Database'").

#include <string_view>  // std::string_view results

namespace starling::detail {

/// The name of T as the compiler spells it, from __PRETTY_FUNCTION__ (g++ and clang both put it after
/// "T = " in the signature text).
template <class T>
constexpr std::string_view type_name() noexcept {
    const std::string_view signature = __PRETTY_FUNCTION__;
    const auto start = signature.find("T = ");
    if (start == std::string_view::npos) return signature;
    const auto rest = signature.substr(start + 4);
    const auto end = rest.find_first_of(";]");
    return rest.substr(0, end);
}

}  // namespace starling::detail
// ---- end starling/api/type_name.hpp ----

namespace starling {

/// Thrown by a lookup that finds nothing (or an object of another type under that name).
class missing_dependency : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

namespace detail {

/// T for std::shared_ptr<T>, T itself otherwise: what a shared_ptr dependency is stored and found as.
template <class T>
struct shared_target {
    using type = T;
};
template <class T>
struct shared_target<std::shared_ptr<T>> {
    using type = T;
};

template <class T>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};

}  // namespace detail

class dependency_container {
public:
    /// Adds `value` to be found by its type. A std::shared_ptr<T> is stored as the T it points to.
    template <class T>
    dependency_container& add(T&& value) {
        auto [type, object] = store(std::forward<T>(value));
        check_writable();
        by_type_.insert_or_assign(type, std::move(object));
        return *this;
    }

    /// Adds `value` under `name` (found by name and type) and by its type, unless that type is taken.
    template <class T>
    dependency_container& add(std::string name, T&& value) {
        auto [type, object] = store(std::forward<T>(value));
        check_writable();
        by_type_.try_emplace(type, object);
        by_name_.insert_or_assign(std::move(name), entry{type, std::move(object)});
        return *this;
    }

    /// The object of type T; throws missing_dependency if there is none.
    template <class T>
    T& get() const {
        if (T* found = find<T>()) return *found;
        throw missing_dependency("starling: no dependency of type '" + std::string(detail::type_name<T>()) +
                                 "' was injected");
    }

    /// The object named `name`, which must be a T; throws missing_dependency otherwise.
    template <class T>
    T& get(std::string_view name) const {
        const auto it = by_name_.find(std::string(name));
        if (it == by_name_.end())
            throw missing_dependency("starling: no dependency named '" + std::string(name) + "' was injected");
        if (it->second.type != std::type_index(typeid(T)))
            throw missing_dependency("starling: dependency '" + std::string(name) + "' is not a '" +
                                     std::string(detail::type_name<T>()) + "'");
        return *static_cast<T*>(it->second.object.get());
    }

    /// The object of type T, or nullptr.
    template <class T>
    T* find() const noexcept {
        const auto it = by_type_.find(std::type_index(typeid(T)));
        return it == by_type_.end() ? nullptr : static_cast<T*>(it->second.get());
    }

    /// The shared_ptr holding the object of type T (empty if none), for callers that keep it.
    template <class T>
    std::shared_ptr<T> find_shared() const noexcept {
        const auto it = by_type_.find(std::type_index(typeid(T)));
        return it == by_type_.end() ? nullptr : std::static_pointer_cast<T>(it->second);
    }

    bool contains(std::type_index type) const noexcept { return by_type_.contains(type); }
    template <class T>
    bool contains() const noexcept { return contains(std::type_index(typeid(T))); }
    bool contains(std::string_view name) const { return by_name_.contains(std::string(name)); }

    /// After this, add() throws: containers are read-only while the server runs, so handlers on every
    /// thread can read them without locks.
    void freeze() noexcept { frozen_ = true; }

private:
    struct entry {
        std::type_index type;
        std::shared_ptr<void> object;
    };

    template <class T>
    static std::pair<std::type_index, std::shared_ptr<void>> store(T&& value) {
        using D = std::decay_t<T>;
        using target = typename detail::shared_target<D>::type;
        if constexpr (detail::is_shared_ptr<D>::value) {
            return {std::type_index(typeid(target)), std::shared_ptr<void>(std::forward<T>(value))};
        } else {
            return {std::type_index(typeid(D)), std::make_shared<D>(std::forward<T>(value))};
        }
    }

    void check_writable() const {
        if (frozen_) throw std::logic_error("starling: dependencies are read-only once the server runs");
    }

    std::unordered_map<std::type_index, std::shared_ptr<void>> by_type_;
    std::unordered_map<std::string, entry> by_name_;
    bool frozen_ = false;
};

/// The app-wide container: app.inject_global(...).
class global_dependencies : public dependency_container {};

/// A router's own container: app.inject(...) for the app's top level, router.inject(...) for a router.
class router_dependencies : public dependency_container {};

}  // namespace starling
// ---- end starling/api/dependencies.hpp ----

// ---- begin starling/api/callbacks.hpp ----
// Adapts what users register for the coroutine API (lambdas, functions, coroutines with any of the
// parameters signature.hpp understands) to the endpoint's calling convention: a handler becomes
// task<>(websocket&); on_connect / on_close become "the text to send, if any". Misuse is caught at
// compile time with one readable message.

#include <concepts>     // std::convertible_to
#include <optional>     // std::optional results
#include <string>       // std::string text
#include <string_view>  // std::string_view results
#include <type_traits>  // std::is_same_v, std::remove_cvref_t
#include <utility>      // std::move


// ---- begin starling/runtime/endpoint_state.hpp ----
// What an endpoint is made of at run time: its path, handler and callbacks (already adapted to one
// calling convention), options, the registry of its open connections, and the app's topics.

#include <functional>  // std::function for type-erased handlers
#include <memory>      // std::shared_ptr<log_channel>
#include <optional>    // std::optional<std::string> callback results
#include <string>      // std::string path


// ---- begin starling/runtime/connection_registry.hpp ----
// The open connections of one endpoint: what broadcast and send_to reach.
//
// Members are kept per worker (event loop), and each worker's list is read and written only on that
// worker's own thread. A broadcast delivers to the members of its own worker at once, and posts ONE
// task to each other worker that has members, which delivers there to all of them: the cost of
// crossing threads grows with the number of workers, not of receivers. Nothing is posted while the
// lock is held; the lock guards only the id index (send_to, from any thread) and the list of workers.


// ---- begin starling/detail/asio_config.hpp ----
// Included before any Asio header. Asio 1.22 (Debian 12) recognises C++20 coroutines in clang only
// through the old `__cpp_coroutines` macro, which clang 14 no longer defines in C++20 mode; without
// this, clang builds would have no asio::awaitable at all.

// A standard header before any of Asio's: Asio decides whether to allocate with aligned_alloc from
// a macro of the standard library's configuration (_GLIBCXX_HAVE_ALIGNED_ALLOC), and decides it once
// per translation unit. In a unit whose first include is Asio's, the macro is not defined yet, so that
// unit would allocate with operator new and free with the other's std::free, or the reverse: an
// alloc-dealloc mismatch between units of one program (seen under AddressSanitizer).
#include <cstddef>  // the standard library's configuration, before Asio reads it

// Asio's coroutine headers (awaitable, use_awaitable, co_spawn) are empty when included without
// ASIO_HAS_CO_AWAIT; if one came before Starling under clang, every later error would be about
// use_awaitable. Say what to do instead. (Other Asio headers first are harmless.)
#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && \
    (defined(ASIO_AWAITABLE_HPP) || defined(ASIO_USE_AWAITABLE_HPP) || defined(ASIO_CO_SPAWN_HPP))
#error "Starling: include <starling.hpp> before Asio's coroutine headers (clang needs Starling's Asio coroutine setting first), or compile with -DASIO_HAS_CO_AWAIT=1"
#endif

#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && defined(__cpp_impl_coroutine)
#if __cpp_impl_coroutine >= 201902L && __has_include(<coroutine>)
#define ASIO_HAS_CO_AWAIT 1
#endif
#endif
// ---- end starling/detail/asio_config.hpp ----
#include <asio/io_context.hpp>  // asio::io_context: a member's worker
#include <asio/post.hpp>        // asio::post: one delivery task per other worker
#include <array>                // std::array: the workers to post to, without allocating
#include <atomic>               // std::atomic counts read from any thread
#include <cstddef>              // std::size_t
#include <functional>           // std::hash, std::equal_to<> for heterogeneous lookup
#include <memory>               // std::shared_ptr members, std::unique_ptr groups
#include <mutex>                // std::mutex guarding the index and the list of workers
#include <string>               // std::string keys
#include <string_view>          // std::string_view lookups
#include <unordered_map>        // id -> connection
#include <utility>              // std::move
#include <vector>               // each worker's members


// ---- begin starling/session/write_queue.hpp ----
// A connection's outbound frames, waiting for its one writer. Broadcast frames are shared, encoded
// once for every receiver; unicast frames keep their header inline and own their payload, so a send
// copies nothing it does not have to, and the writer hands header and payload to one gathered write.
// The queue counts what it costs in memory, not only what it will put on the wire: a million 1-byte
// frames are small on the wire and large in memory, and the limit that protects the server must see
// the latter. It holds a few pongs at most: a peer that pings faster than it reads gets answers to
// its first pings and to its latest one, not to each (RFC 6455 allows answering only the latest).

#include <array>          // std::array inline frame header
#include <asio/buffer.hpp>  // asio::const_buffer for gathered writes
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint8_t
#include <cstring>        // std::memcpy of a shared frame's header
#include <span>           // std::span of a payload to mask
#include <memory>         // std::shared_ptr shared broadcast frames
#include <mutex>          // std::mutex guarding a broadcast's compressed forms
#include <string>         // std::string payloads
#include <string_view>    // std::string_view pong payloads
#include <utility>        // std::move
#include <vector>         // std::vector buffer list


// ---- begin starling/session/masking_keys.hpp ----
// Masking keys for the frames a client sends (RFC 6455 section 5.3): fresh for every frame and
// unpredictable, so that nothing on the path can choose what the masked bytes look like. They come
// from the kernel's random source (getrandom), taken a few hundred bytes at a time per thread, so
// a frame costs four bytes of that buffer rather than a system call.

#include <sys/random.h>  // getrandom

#include <array>    // std::array buffer
#include <cerrno>   // EINTR
#include <cstddef>  // std::size_t
#include <cstring>  // std::memcpy
#include <random>   // std::random_device, if the kernel source fails
#include <span>     // std::span of bytes to fill


namespace starling::detail {

/// Fills `out` from the kernel's random source; std::random_device (itself the kernel's, on Linux)
/// only if getrandom is unavailable.
inline void fill_random(std::span<std::uint8_t> out) {
    std::size_t filled = 0;
    while (filled < out.size()) {
        const ssize_t n = ::getrandom(out.data() + filled, out.size() - filled, 0);
        if (n > 0) {
            filled += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EINTR) {
            std::random_device device;
            for (; filled < out.size(); ++filled) out[filled] = static_cast<std::uint8_t>(device());
        }
    }
}

/// The next masking key of this thread.
inline masking_key next_masking_key() {
    thread_local std::array<std::uint8_t, 256> pool{};
    thread_local std::size_t used = pool.size();
    if (used == pool.size()) {
        fill_random(pool);
        used = 0;
    }
    masking_key key;
    std::memcpy(key.data(), pool.data() + used, key.size());
    // Spent bytes are wiped: nothing left in memory predicts a key already used or to come.
    std::memset(pool.data() + used, 0, key.size());
    used += key.size();
    return key;
}

}  // namespace starling::detail
// ---- end starling/session/masking_keys.hpp ----

// ---- begin starling/session/payload_pool.hpp ----
// Payload strings that have been written, kept for the next messages received (each event loop has
// one: detail/worker_buffers.hpp). Bounded in count and bytes, so a burst of large messages does not
// stay resident. Kept by size class (powers of two of their capacity), so finding one that fits a
// message costs the same whatever the pool holds, and a small message never gets a large buffer (a
// 10-byte message that a handler keeps must not pin 1 MiB).

#include <algorithm>  // std::max
#include <array>      // std::array of size classes
#include <bit>        // std::bit_width: a capacity's size class
#include <cstddef>    // std::size_t
#include <string>     // std::string payloads
#include <utility>    // std::move
#include <vector>     // std::vector per size class

namespace starling::detail {

class payload_pool {
public:
    explicit payload_pool(std::size_t max_strings = 16, std::size_t max_bytes = 64 * 1024) noexcept
        : max_strings_(max_strings), max_bytes_(max_bytes) {}

    /// An empty string with room for `size` bytes and not much more (at most twice, or a small
    /// one), if the pool has one; otherwise a new, empty string.
    std::string take(std::size_t size = 0) noexcept {
        const std::size_t most = std::max<std::size_t>(2 * size, loose_fit);
        for (std::size_t c = class_of(std::max<std::size_t>(size, 1)); c < classes && (std::size_t{1} << c) <= most; ++c) {
            std::vector<std::string>& pooled = free_[c];
            if (pooled.empty()) continue;
            const std::size_t capacity = pooled.back().capacity();
            if (capacity < size || capacity > most) continue;
            std::string s = std::move(pooled.back());
            pooled.pop_back();
            bytes_ -= capacity;
            --count_;
            return s;
        }
        return {};
    }

    /// Keeps `s`'s buffer for later, if it is worth keeping and there is room; otherwise it is freed
    /// here (taken by value, so the caller's string never keeps a large buffer the pool refused).
    void give(std::string s) {
        const std::size_t capacity = s.capacity();
        if (capacity <= small_string || count_ == max_strings_ || bytes_ + capacity > max_bytes_) return;
        const std::size_t c = class_of(capacity);
        if (c >= classes) return;
        s.clear();
        bytes_ += capacity;
        ++count_;
        free_[c].push_back(std::move(s));
    }

    /// Strings held, and their bytes.
    std::size_t size() const noexcept { return count_; }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    /// Class c holds capacities in [2^c, 2^(c+1)).
    static std::size_t class_of(std::size_t capacity) noexcept {
        return static_cast<std::size_t>(std::bit_width(capacity)) - 1;
    }

    static constexpr std::size_t small_string = sizeof(std::string);  // lives inside the object anyway
    static constexpr std::size_t loose_fit = 1024;  // a small message may take any pooled string up to this
    static constexpr std::size_t classes = 32;      // up to 4 GiB: every capacity a message can have

    std::size_t max_strings_;
    std::size_t max_bytes_;
    std::array<std::vector<std::string>, classes> free_;
    std::size_t count_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace starling::detail
// ---- end starling/session/payload_pool.hpp ----

// ---- begin starling/session/ring.hpp ----
// A FIFO on one growing circular array: what a connection's inbox and outbound queue are. Unlike
// std::deque, which allocates and frees a node every few elements as a queue moves forward, a ring
// that has reached its working size allocates nothing more (steady state allocates nothing per
// message). It holds no memory until the first push, so an idle connection costs nothing here.

#include <cstddef>  // std::size_t
#include <memory>   // std::unique_ptr storage
#include <utility>  // std::move

namespace starling::detail {

template <class T>
class ring {
public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }

    /// The i-th element from the front.
    T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (capacity_ - 1)]; }
    const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & (capacity_ - 1)]; }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    void push_back(T value) {
        if (size_ == capacity_) grow();
        (*this)[size_] = std::move(value);
        ++size_;
    }

    /// Removes the front element, and whatever it owned with it. (Assigning T() would not do: a
    /// std::string assigned an empty one keeps its old buffer, so every slot of the ring would hold
    /// on to the largest payload that ever passed through it.)
    void pop_front() noexcept {
        release(front());
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
    }

    void pop_back() noexcept {
        release(back());
        --size_;
    }

    void clear() noexcept {
        while (!empty()) pop_front();
    }

    /// Releases the storage of an empty ring larger than `keep` slots: a burst's growth is not kept
    /// for the connection's whole life.
    void shrink(std::size_t keep) noexcept {
        if (size_ != 0 || capacity_ <= keep) return;
        slots_.reset();
        capacity_ = 0;
        head_ = 0;
    }

private:
    static void release(T& slot) noexcept { [[maybe_unused]] T gone = std::move(slot); }

    /// Doubles the capacity (a power of two, so indices wrap with a mask), keeping the order.
    void grow() {
        const std::size_t bigger = capacity_ == 0 ? 8 : capacity_ * 2;
        auto slots = std::make_unique<T[]>(bigger);
        for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move((*this)[i]);
        slots_ = std::move(slots);
        capacity_ = bigger;
        head_ = 0;
    }

    std::unique_ptr<T[]> slots_;
    std::size_t capacity_ = 0;  // 0 or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace starling::detail
// ---- end starling/session/ring.hpp ----

// ---- begin starling/protocol/deflate_codec.hpp ----
// The compressor and decompressor of permessage-deflate (RFC 7692 section 7.2), over zlib's raw
// deflate. A message is compressed with a sync flush whose trailing 00 00 FF FF is removed; it is
// inflated with those four bytes put back. Inflation is bounded: it grows its output up to a limit
// and stops there, so a few bytes that would inflate to gigabytes cost no more than the limit.
//
// Without context takeover nothing needs to outlive one message, so the codecs are per thread
// (shared_deflater, shared_inflater), reset between messages: a connection then holds no zlib state.
// With it, the connection owns its codec and its window stays.
//
// With STARLING_NO_DEFLATE defined, zlib is not used: this header declares only deflate_available
// (false), and every offer is declined.

#include <cstddef>      // std::size_t
#include <string>       // std::string output
#include <string_view>  // std::string_view input

#ifndef STARLING_NO_DEFLATE
#include <zlib.h>  // deflate, inflate (Debian: zlib1g-dev; link with -lz)

#include <algorithm>  // std::min, std::max
#include <array>      // std::array of codec settings
#include <cstdint>    // std::uint8_t, SIZE_MAX
#include <memory>     // std::unique_ptr per-thread codecs
#include <new>        // std::bad_alloc
#include <vector>     // std::vector per-thread cache
#endif

namespace starling {

/// How inflating a message ended.
enum class inflate_status { ok, too_big, corrupt };

#ifdef STARLING_NO_DEFLATE
inline constexpr bool deflate_available = false;
#else
inline constexpr bool deflate_available = true;

/// The four bytes a sync flush ends with, which permessage-deflate leaves off the wire.
inline constexpr std::array<std::uint8_t, 4> deflate_sync_tail{0x00, 0x00, 0xFF, 0xFF};

/// What a compressor's output depends on: messages compressed with the same setting and no context
/// takeover are the same bytes, whoever they go to.
struct deflate_setting {
    int window_bits = 15;
    int mem_level = 8;
    int level = 1;
    friend bool operator==(const deflate_setting&, const deflate_setting&) = default;
};

class deflater {
public:
    explicit deflater(deflate_setting setting) : setting_(setting) {
        if (deflateInit2(&z_, setting.level, Z_DEFLATED, -setting.window_bits, setting.mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }
    deflater(const deflater&) = delete;
    deflater& operator=(const deflater&) = delete;
    ~deflater() { deflateEnd(&z_); }

    const deflate_setting& setting() const noexcept { return setting_; }

    /// Compresses one message into `out` (replacing what it held). With `keep_context`, the window
    /// carries over to the next message (context takeover); otherwise the next starts afresh.
    void compress(std::string_view in, std::string& out, bool keep_context) {
        out.clear();
        out.resize(deflateBound(&z_, in.size()) + 8);
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        std::size_t produced = 0;
        for (;;) {
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            z_.avail_out = static_cast<uInt>(out.size() - produced);
            deflate(&z_, Z_SYNC_FLUSH);
            produced = out.size() - z_.avail_out;
            if (z_.avail_out != 0) break;  // the flush is complete
            out.resize(out.size() * 2);
        }
        // A sync flush always ends in the tail; the message goes without it.
        out.resize(produced >= 4 ? produced - 4 : produced);
        if (!keep_context) deflateReset(&z_);
    }

private:
    deflate_setting setting_;
    z_stream z_{};
};

class inflater {
public:
    explicit inflater(int window_bits = 15) {
        if (inflateInit2(&z_, -window_bits) != Z_OK) throw std::bad_alloc();
    }
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;
    ~inflater() { inflateEnd(&z_); }

    /// Inflates one whole message into `out` (replacing what it held), never letting `out` hold more
    /// than `limit` bytes: one more byte of output is too_big, and inflation stops there. Corrupt
    /// input is corrupt. Either way nothing more is done; the inflater is reset for the next message
    /// unless `keep_context` (and the message was good).
    inflate_status decompress(std::string_view in, std::string& out, std::size_t limit, bool keep_context) {
        out.clear();
        if (limit == SIZE_MAX) --limit;  // one byte over it must be representable
        // A first guess at the size from the input (text inflates a few times over), so a small
        // message gets a small buffer, as an uncompressed one would: a larger one than needed, freed
        // while the connection's next allocations are made, would leave holes behind it.
        const std::size_t guess = std::min(limit + 1, std::max<std::size_t>(4 * in.size() + 64, min_chunk));
        if (out.capacity() < guess) grow(out, guess);
        inflate_status status = feed(in, out, limit);
        if (status == inflate_status::ok && !ended_)
            status = feed({reinterpret_cast<const char*>(deflate_sync_tail.data()), deflate_sync_tail.size()}, out, limit);
        if (status != inflate_status::ok || !keep_context || ended_) {
            inflateReset(&z_);
            ended_ = false;
        }
        return status;
    }

private:
    inflate_status feed(std::string_view in, std::string& out, std::size_t limit) {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        for (;;) {
            const std::size_t produced = out.size();
            if (out.capacity() - produced < 32) {
                // Grow with what has been produced, never past one byte over the limit.
                const std::size_t want = std::min(std::max<std::size_t>(2 * produced, min_chunk), limit + 1);
                if (want > out.capacity()) grow(out, want);
            }
            // At least one byte of room: produced never exceeds the limit here.
            const std::size_t room = std::min(out.capacity(), limit + 1) - produced;
            out.resize(produced + room);
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            z_.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&z_, Z_SYNC_FLUSH);
            // Drop the room zlib left unused. erase, not resize: resize() has a growing branch, and
            // g++ 12 at -O2 cannot see that avail_out never exceeds the size, so it warns
            // (-Wstringop-overflow) about a memset that never runs, in users' builds too.
            out.erase(out.size() - z_.avail_out);
            if (out.size() > limit) return inflate_status::too_big;
            if (rc == Z_STREAM_END) {
                // A final block ends the stream; whatever follows it is not part of any message.
                ended_ = true;
                return inflate_status::ok;
            }
            if (rc == Z_BUF_ERROR) return inflate_status::ok;  // no progress possible: all input is taken
            if (rc != Z_OK) return inflate_status::corrupt;
            // Done when the input is used up and the output did not fill (nothing is pending).
            if (z_.avail_in == 0 && z_.avail_out != 0) return inflate_status::ok;
        }
    }

    /// Gives `out` room for exactly `capacity` bytes: std::string's reserve() may double instead,
    /// which past half the limit would allocate more than the limit.
    static void grow(std::string& out, std::size_t capacity) {
        std::string bigger;
        bigger.reserve(capacity);
        bigger.assign(out);
        out.swap(bigger);
    }

    static constexpr std::size_t min_chunk = 256;
    z_stream z_{};
    bool ended_ = false;
};

/// This thread's compressor for `setting`, without context takeover: one per setting per thread,
/// shared by every connection on it (a connection without server context takeover holds none).
inline deflater& shared_deflater(const deflate_setting& setting) {
    thread_local std::vector<std::unique_ptr<deflater>> cache;
    for (const auto& d : cache)
        if (d->setting() == setting) return *d;
    cache.push_back(std::make_unique<deflater>(setting));
    return *cache.back();
}

/// This thread's inflater for messages sent without client context takeover, whatever their window.
inline inflater& shared_inflater() {
    thread_local inflater one(15);
    return one;
}
#endif

}  // namespace starling
// ---- end starling/protocol/deflate_codec.hpp ----

namespace starling::detail {

/// Whole encoded frame bytes, shared by every connection that sends them.
using shared_bytes = std::shared_ptr<const std::string>;

/// A server frame with RSV1 set when `compressed`: header then payload.
inline std::string encode_server_frame(opcode op, std::string_view payload, bool compressed) {
    frame_header h;
    h.op = op;
    h.rsv1 = compressed;
    h.payload_length = payload.size();
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size = write_frame_header(h, header);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header_size).append(payload);
    return frame;
}

/// One message sent to many (a broadcast, a publish): encoded once as a plain frame, and compressed
/// at most once per compression setting, the first time a receiver that takes that setting gets it
/// (on whichever worker that is). Every receiver of the same form shares the same bytes.
class broadcast_frame {
public:
    broadcast_frame(opcode op, std::string_view payload)
        : op_(op), plain_(std::make_shared<const std::string>(encode_server_frame(op, payload, false))),
          header_size_(plain_->size() - payload.size()) {}

    opcode op() const noexcept { return op_; }
    const shared_bytes& plain() const noexcept { return plain_; }
    std::string_view payload() const noexcept { return std::string_view(*plain_).substr(header_size_); }

#ifndef STARLING_NO_DEFLATE
    /// The frame compressed with `setting` and no context takeover, made on the first call for that
    /// setting, from any thread; later calls share it.
    shared_bytes compressed(const deflate_setting& setting) const {
        std::lock_guard lock(mutex_);
        for (const auto& [made_with, frame] : compressed_)
            if (made_with == setting) return frame;
        std::string body;
        shared_deflater(setting).compress(payload(), body, /*keep_context=*/false);
        compressed_.emplace_back(setting, std::make_shared<const std::string>(encode_server_frame(op_, body, true)));
        return compressed_.back().second;
    }
#endif

private:
    opcode op_;
    shared_bytes plain_;
    std::size_t header_size_;
#ifndef STARLING_NO_DEFLATE
    mutable std::mutex mutex_;
    mutable std::vector<std::pair<deflate_setting, shared_bytes>> compressed_;
#endif
};

using shared_frame = std::shared_ptr<const broadcast_frame>;

inline shared_frame make_shared_frame(opcode op, std::string_view payload) {
    return std::make_shared<const broadcast_frame>(op, payload);
}

struct outbound_frame {
    std::array<std::uint8_t, max_frame_header_size> header{};
    std::uint8_t header_size = 0;
    std::string payload;   // owned payload of a unicast frame
    shared_bytes shared;   // or: a whole frame shared with other connections
    bool is_close = false;

    /// A frame of this connection's own; `compressed` sets RSV1 (the payload is deflate data).
    static outbound_frame unicast(opcode op, std::string payload, bool compressed = false) {
        outbound_frame f;
        frame_header h;
        h.op = op;
        h.rsv1 = compressed;
        h.payload_length = payload.size();
        f.header_size = static_cast<std::uint8_t>(write_frame_header(h, f.header));
        f.payload = std::move(payload);
        f.is_close = op == opcode::close;
        return f;
    }

    /// Frame bytes shared with other connections.
    static outbound_frame broadcast(shared_bytes frame) {
        outbound_frame f;
        f.shared = std::move(frame);
        return f;
    }
    /// A broadcast's plain form.
    static outbound_frame broadcast(const shared_frame& frame) { return broadcast(frame->plain()); }

    /// Bytes on the wire.
    std::size_t size() const noexcept { return shared ? shared->size() : header_size + payload.size(); }
    /// A text or binary frame, not a control frame.
    bool is_data() const noexcept {
        const std::uint8_t first = shared ? static_cast<std::uint8_t>((*shared)[0]) : header[0];
        return (first & 0x08) == 0;
    }
    /// Bytes of payload: the wire bytes less the header (a shared frame is one whole server frame,
    /// unmasked, so its header is 2, 4 or 10 bytes by its length code).
    std::size_t payload_size() const noexcept {
        if (!shared) return payload.size();
        const std::uint8_t length_code = static_cast<std::uint8_t>((*shared)[1]) & 0x7F;
        return shared->size() - (length_code < 126 ? 2 : length_code == 126 ? 4 : 10);
    }
    /// Bytes of memory held for it: its slot in the queue, plus its payload's storage (a shared frame
    /// counts whole for every receiver: it lives as long as the slowest of them).
    std::size_t memory() const noexcept {
        return sizeof(outbound_frame) + (shared ? shared->size() : payload.capacity());
    }
};

class write_queue {
public:
    /// A client's queue: every frame is masked with a fresh key as it is queued (clients mask, servers
    /// must not).
    void mask_frames() noexcept { masking_ = true; }

    void push(outbound_frame frame) {
        if (masking_) mask(frame);
        bytes_ += frame.size();
        memory_ += frame.memory();
        if (is_pong(frame)) {
            ++waiting_pongs_;
            latest_pong_ = popped_ + frames_.size();
        }
        frames_.push_back(std::move(frame));
    }

    /// Queues a pong with `payload`. When max_waiting_pongs already wait, the latest of them gets the
    /// new payload instead (unless it is already on the wire in part): however fast a peer pings, the
    /// pongs waiting for it stay few. Up to that many, every ping is answered, in order.
    void push_pong(std::string_view payload) {
        if (waiting_pongs_ >= max_waiting_pongs && !(latest_pong_ == popped_ && front_written_ != 0)) {
            outbound_frame& pong = frames_[static_cast<std::size_t>(latest_pong_ - popped_)];
            bytes_ -= pong.size();
            memory_ -= pong.memory();
            pong.payload.assign(payload);
            frame_header h;
            h.op = opcode::pong;
            h.payload_length = payload.size();
            pong.header_size = static_cast<std::uint8_t>(write_frame_header(h, pong.header));
            if (masking_) mask(pong);
            bytes_ += pong.size();
            memory_ += pong.memory();
            return;
        }
        push(outbound_frame::unicast(opcode::pong, std::string(payload)));
    }

    /// Slots of the queue's storage (what it holds in memory beyond the frames themselves).
    std::size_t storage_slots() const noexcept { return frames_.capacity(); }

    /// Pongs queued and not yet written whole.
    std::size_t waiting_pongs() const noexcept { return waiting_pongs_; }

    /// Pongs that may wait at once before later pings only update the latest one's payload.
    static constexpr std::size_t max_waiting_pongs = 16;

    bool empty() const noexcept { return frames_.empty(); }
    /// Bytes queued and not yet written.
    std::size_t bytes() const noexcept { return bytes_; }
    /// Bytes of memory the queued frames hold: what backpressure and the slow-consumer policy limit.
    std::size_t memory() const noexcept { return memory_; }

    /// Appends to `out` the buffers of the bytes not yet written, front first: at most `max_buffers`
    /// buffers (what one system call takes) and, past the first frame, no more than `max_bytes`. A
    /// close frame ends the list, since nothing may be written after it. Returns the bytes listed.
    /// The buffers point into the queue: they are valid until the next push, consume or drop.
    std::size_t gather(std::vector<asio::const_buffer>& out, std::size_t max_buffers, std::size_t max_bytes) const {
        std::size_t bytes = 0;
        std::size_t skip = front_written_;  // only the front frame can be partly written
        for (std::size_t i = 0; i < frames_.size(); ++i) {
            const outbound_frame& f = frames_[i];
            const std::size_t buffers = f.shared || f.payload.empty() ? 1 : 2;
            if (out.size() + buffers > max_buffers || (i > 0 && bytes + f.size() > max_bytes)) break;
            if (f.shared) {
                add(out, bytes, skip, f.shared->data(), f.shared->size());
            } else {
                add(out, bytes, skip, f.header.data(), f.header_size);
                add(out, bytes, skip, f.payload.data(), f.payload.size());
            }
            if (f.is_close) break;
        }
        return bytes;
    }

    /// Records that the first `n` gathered bytes were written. Frames written whole leave the queue
    /// (their owned payloads go back to `pool` for reuse); a frame written in part stays at the front
    /// and the next gather starts where it stopped. Returns true when a close frame was completed.
    bool consume(std::size_t n, payload_pool& pool) {
        bytes_ -= n;
        n += front_written_;
        front_written_ = 0;
        bool closed = false;
        while (n != 0) {
            outbound_frame& f = frames_.front();
            const std::size_t size = f.size();
            if (n < size) {
                front_written_ = n;
                break;
            }
            n -= size;
            closed = closed || f.is_close;
            memory_ -= f.memory();
            if (!f.shared) pool.give(std::move(f.payload));
            pop_front();
        }
        // A burst grew the ring; once it has drained, its storage goes back.
        if (frames_.empty()) frames_.shrink(kept_slots);
        return closed;
    }

    /// Drops every frame not yet begun on the wire; a frame written in part stays, since a frame
    /// cut short would corrupt the stream.
    void drop_unsent() {
        const std::size_t keep = front_written_ != 0 ? 1 : 0;
        while (frames_.size() > keep) {
            bytes_ -= frames_.back().size();
            memory_ -= frames_.back().memory();
            if (is_pong(frames_.back())) --waiting_pongs_;
            frames_.pop_back();
        }
        if (frames_.empty()) frames_.shrink(kept_slots);
    }

    void clear() {
        frames_.clear();
        frames_.shrink(0);
        bytes_ = 0;
        memory_ = 0;
        front_written_ = 0;
        waiting_pongs_ = 0;
    }

private:
    /// Masks `f` in place with a fresh key: its header gets the mask bit and the key, its payload is
    /// XORed. A shared frame (one encoded for many receivers) becomes a frame of its own first.
    static void mask(outbound_frame& f) {
        if (f.shared) {
            const std::size_t payload = f.payload_size();
            const std::size_t header = f.shared->size() - payload;
            f.payload.assign(f.shared->data() + header, payload);
            std::memcpy(f.header.data(), f.shared->data(), header);
            f.header_size = static_cast<std::uint8_t>(header);
            f.shared.reset();
        }
        const std::uint8_t first = f.header[0];  // FIN, RSV bits and opcode stay as they are
        frame_header h;
        h.payload_length = f.payload.size();
        h.masked = true;
        h.key = next_masking_key();
        f.header_size = static_cast<std::uint8_t>(write_frame_header(h, f.header));
        f.header[0] = first;
        apply_mask(std::span<char>(f.payload.data(), f.payload.size()), h.key);
    }

    /// Appends [data, data + size) less its first `skip` bytes (those already written).
    static void add(std::vector<asio::const_buffer>& out, std::size_t& bytes, std::size_t& skip, const void* data,
                    std::size_t size) {
        if (skip >= size) {
            skip -= size;
            return;
        }
        out.emplace_back(static_cast<const char*>(data) + skip, size - skip);
        bytes += size - skip;
        skip = 0;
    }

    static bool is_pong(const outbound_frame& f) noexcept {
        return !f.shared && f.header_size != 0 && (f.header[0] & 0x0F) == static_cast<std::uint8_t>(opcode::pong);
    }

    void pop_front() noexcept {
        if (is_pong(frames_.front())) --waiting_pongs_;
        frames_.pop_front();
        ++popped_;
    }

    /// Ring slots kept when the queue empties: what a connection's ordinary traffic needs, so steady
    /// state allocates nothing, while a burst's larger ring is released.
    static constexpr std::size_t kept_slots = 64;

    ring<outbound_frame> frames_;
    std::size_t bytes_ = 0;
    std::size_t memory_ = 0;
    std::size_t front_written_ = 0;  // bytes of the front frame already written
    std::uint64_t popped_ = 0;       // frames ever written whole: turns positions into indices
    std::uint64_t latest_pong_ = 0;  // where the latest pong is, counted from the first frame ever
    std::size_t waiting_pongs_ = 0;
    bool masking_ = false;
};

}  // namespace starling::detail
// ---- end starling/session/write_queue.hpp ----

namespace starling::detail {

/// `Member` is the connection type. It provides `receive_broadcast(const shared_frame&)`, called on its
/// own worker's thread, and `registry_slot()`, a `std::size_t&` the registry uses to find it in its
/// worker's list in constant time.
template <class Member>
class connection_registry {
public:
    connection_registry() = default;
    connection_registry(const connection_registry&) = delete;
    connection_registry& operator=(const connection_registry&) = delete;

    /// Joins `member`, which lives on `context`. Call on that context's thread.
    void add(asio::io_context& context, const std::string& id, std::shared_ptr<Member> member) {
        worker_group* group = nullptr;
        {
            std::lock_guard lock(mutex_);
            ids_.insert_or_assign(id, member);
            group = group_for(context);
        }
        member->registry_slot() = group->members.size();
        group->members.push_back(std::move(member));
        group->size.fetch_add(1, std::memory_order_relaxed);
        size_.fetch_add(1, std::memory_order_relaxed);
    }

    /// Leaves. Call on the member's thread, once for each add().
    void remove(asio::io_context& context, const std::string& id, Member& member) {
        worker_group* group = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (const auto it = ids_.find(id); it != ids_.end() && it->second.get() == &member) ids_.erase(it);
            group = group_for(context);
        }
        // Swap with the last one: constant time, whatever the number of members.
        auto& members = group->members;
        const std::size_t slot = member.registry_slot();
        if (slot >= members.size() || members[slot].get() != &member) return;
        if (slot + 1 != members.size()) {
            members[slot] = std::move(members.back());
            members[slot]->registry_slot() = slot;
        }
        members.pop_back();
        group->size.fetch_sub(1, std::memory_order_relaxed);
        size_.fetch_sub(1, std::memory_order_relaxed);
    }

    /// The member with that id, from any thread.
    std::shared_ptr<Member> find(std::string_view id) const {
        std::lock_guard lock(mutex_);
        const auto it = ids_.find(id);  // heterogeneous: no string built per send_to
        return it == ids_.end() ? nullptr : it->second;
    }

    /// Delivers `frame` to every member but `except` (which may be null): at once to those of
    /// `here` (the caller's worker), through one posted task per other worker with members. Call on
    /// `here`'s thread. Each receiver gets one sender's frames in the order it sent them: posts from
    /// one thread to one worker run in order.
    void broadcast(asio::io_context& here, const shared_frame& frame, const Member* except) {
        broadcast(&here, frame, except);
    }

    /// The same from any thread: `here` is the caller's worker, or null from a thread that is not a
    /// worker's (a broadcast another process made, arriving through the backplane), for which every
    /// worker with members gets its task.
    void broadcast(asio::io_context* here, const shared_frame& frame, const Member* except) {
        worker_group* local = nullptr;
        std::array<worker_group*, groups_per_pass> remote{};
        for (std::size_t start = 0;; start += groups_per_pass) {
            std::size_t count = 0;
            bool more = false;
            {
                std::lock_guard lock(mutex_);
                for (std::size_t i = start; i < groups_.size(); ++i) {
                    worker_group* g = groups_[i].get();
                    if (g->context == here) {
                        local = g;
                    } else if (g->size.load(std::memory_order_relaxed) != 0) {
                        if (count == remote.size()) {
                            more = true;
                            break;
                        }
                        remote[count++] = g;
                    }
                }
            }
            // Groups are never removed, so the pointers stay good without the lock.
            for (std::size_t i = 0; i < count; ++i)
                asio::post(*remote[i]->context, [g = remote[i], frame, except] { g->deliver(frame, except); });
            if (!more) break;
        }
        if (local != nullptr) local->deliver(frame, except);
    }

    /// Members, from any thread.
    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

private:
    /// The members of one worker. `members` is touched only on that worker's thread; `size` is read
    /// from others to skip workers with nobody to deliver to.
    struct worker_group {
        explicit worker_group(asio::io_context& c) : context(&c) {}

        void deliver(const shared_frame& frame, const Member* except) {
            // receive_broadcast only queues (or posts a close that runs later): nobody joins or
            // leaves this list while it is walked.
            for (const auto& member : members)
                if (member.get() != except) member->receive_broadcast(frame);
        }

        asio::io_context* context;
        std::vector<std::shared_ptr<Member>> members;
        std::atomic<std::size_t> size{0};
    };

    /// Under the lock.
    worker_group* group_for(asio::io_context& context) {
        for (const auto& g : groups_)
            if (g->context == &context) return g.get();
        groups_.push_back(std::make_unique<worker_group>(context));
        return groups_.back().get();
    }

    /// Lets find() look up by string_view.
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };

    static constexpr std::size_t groups_per_pass = 16;

    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Member>, id_hash, std::equal_to<>> ids_;
    std::vector<std::unique_ptr<worker_group>> groups_;
    std::atomic<std::size_t> size_{0};
};

}  // namespace starling::detail
// ---- end starling/runtime/connection_registry.hpp ----

// ---- begin starling/runtime/metrics.hpp ----
// Metrics: the per-worker counter blocks of each endpoint (session/counters.hpp), the server's
// handshake refusals, the backplane's link, a snapshot that sums them, and that snapshot in the
// Prometheus text exposition format (version 0.0.4).

#include <asio/io_context.hpp>              // asio::io_context: whose block
#include <algorithm>                        // std::max of high-water marks
#include <array>                            // std::array per-status counts
#include <atomic>                           // std::atomic refusal counts
#include <cstddef>                          // std::size_t
#include <cstdint>                          // std::uint64_t
#include <cstdio>                           // std::snprintf numbers
#include <memory>                           // std::unique_ptr blocks
#include <mutex>                            // std::mutex guarding the list of blocks
#include <optional>                         // std::optional backplane: only with one
#include <string>                           // std::string exposition text
#include <string_view>                      // std::string_view names
#include <vector>                           // std::vector blocks and endpoints


// ---- begin starling/runtime/backplane.hpp ----
// A backplane carries publishes, broadcasts and send_to between the processes (nodes) of one
// deployment: each node publishes once to it and delivers what the others published to its own
// connections. This header holds the interface and the in-process default, which links apps of one
// process (tests, a process that runs several apps); <starling/redis.hpp> holds the Redis one, opt-in
// so that plain users need neither its code nor a server.
//
// The contract an implementation keeps:
//   - publish(), subscribe() and unsubscribe() may be called from any thread, never block on the
//     network, and take effect in the order they were called (a publisher's messages stay in order);
//   - what arrives on a subscribed channel is handed to the handler given to start(), one message at a
//     time, in the order the channel delivered it; the publishing node gets its own messages back too
//     (the app recognises and skips them);
//   - when the link is down, publish() counts the message as dropped and returns: never a crash,
//     never an unbounded queue; subscriptions are restored when the link is back.

#include <algorithm>    // std::find
#include <condition_variable>  // std::condition_variable: stop() waits for handlers in progress
#include <cstdint>      // std::uint64_t counters
#include <functional>   // std::function handler
#include <map>          // channel -> subscribed
#include <memory>       // std::shared_ptr bus and handler
#include <mutex>        // std::mutex guarding the bus
#include <string>       // std::string channels and payloads
#include <string_view>  // std::string_view handler arguments
#include <utility>      // std::move
#include <vector>       // std::vector nodes

namespace starling {

/// What a backplane has done so far. `dropped` counts messages published while the link was down
/// (and, for Redis, those written but not yet confirmed when the link failed).
struct backplane_stats {
    bool connected = false;
    std::uint64_t published = 0;   // handed to the link
    std::uint64_t received = 0;    // arrived on a subscribed channel (the node's own included)
    std::uint64_t dropped = 0;
    std::uint64_t reconnects = 0;  // links made again after losing one
};

class backplane {
public:
    /// Called with each message arriving on a subscribed channel.
    using message_handler = std::function<void(std::string_view channel, std::string_view payload)>;

    backplane() = default;
    backplane(const backplane&) = delete;
    backplane& operator=(const backplane&) = delete;
    virtual ~backplane() = default;

    /// Starts the link; `handler` gets every message from now on. Called once, by the app, when it starts.
    virtual void start(message_handler handler) = 0;
    /// Ends the link: once it returns, the handler is not called again. Called by the app when it stops.
    virtual void stop() = 0;

    virtual void publish(std::string channel, std::string payload) = 0;
    virtual void subscribe(std::string channel) = 0;
    virtual void unsubscribe(std::string channel) = 0;

    virtual backplane_stats stats() const = 0;
};

/// The medium in-process backplanes share: make one, and give each app its own
/// `std::make_shared<starling::in_process_backplane>(bus)`. Messages are handed over on the
/// publisher's thread, as the publish is made.
class in_process_bus {
public:
    in_process_bus() = default;
    in_process_bus(const in_process_bus&) = delete;
    in_process_bus& operator=(const in_process_bus&) = delete;

private:
    friend class in_process_backplane;

    /// One attached backplane; everything in it is under the bus's lock.
    struct node {
        std::shared_ptr<const backplane::message_handler> handler;
        std::map<std::string, bool, std::less<>> channels;
        std::uint64_t published = 0;
        std::uint64_t received = 0;
        int calls_in_progress = 0;  // publishers inside this node's handler right now
    };

    std::mutex mutex_;
    std::condition_variable calls_ended_;
    std::vector<node*> nodes_;
};

class in_process_backplane final : public backplane {
public:
    explicit in_process_backplane(std::shared_ptr<in_process_bus> bus) : bus_(std::move(bus)) {}
    ~in_process_backplane() override { stop(); }

    void start(message_handler handler) override {
        std::lock_guard lock(bus_->mutex_);
        self_.handler = std::make_shared<const message_handler>(std::move(handler));
        if (std::find(bus_->nodes_.begin(), bus_->nodes_.end(), &self_) == bus_->nodes_.end())
            bus_->nodes_.push_back(&self_);
    }

    void stop() override {
        std::unique_lock lock(bus_->mutex_);
        std::erase(bus_->nodes_, &self_);
        // A publisher on another thread may be inside this node's handler: wait until it is out, so
        // that nothing reaches the app after stop() returns.
        bus_->calls_ended_.wait(lock, [this] { return self_.calls_in_progress == 0; });
    }

    void publish(std::string channel, std::string payload) override {
        std::vector<std::pair<in_process_bus::node*, std::shared_ptr<const message_handler>>> receivers;
        {
            std::lock_guard lock(bus_->mutex_);
            ++self_.published;
            for (in_process_bus::node* n : bus_->nodes_)
                if (n->channels.contains(channel)) {
                    ++n->calls_in_progress;
                    ++n->received;
                    receivers.emplace_back(n, n->handler);
                }
        }
        // Outside the lock: the handler takes the app's own locks, and those may call subscribe().
        for (auto& [n, handler] : receivers) {
            (*handler)(channel, payload);
            std::lock_guard lock(bus_->mutex_);
            if (--n->calls_in_progress == 0) bus_->calls_ended_.notify_all();
        }
    }

    void subscribe(std::string channel) override {
        std::lock_guard lock(bus_->mutex_);
        self_.channels.insert_or_assign(std::move(channel), true);
    }

    void unsubscribe(std::string channel) override {
        std::lock_guard lock(bus_->mutex_);
        if (const auto it = self_.channels.find(channel); it != self_.channels.end()) self_.channels.erase(it);
    }

    backplane_stats stats() const override {
        std::lock_guard lock(bus_->mutex_);
        backplane_stats s;
        s.connected = std::find(bus_->nodes_.begin(), bus_->nodes_.end(), &self_) != bus_->nodes_.end();
        s.published = self_.published;
        s.received = self_.received;
        return s;
    }

private:
    std::shared_ptr<in_process_bus> bus_;
    in_process_bus::node self_;
};

}  // namespace starling
// ---- end starling/runtime/backplane.hpp ----

// ---- begin starling/session/counters.hpp ----
// The counters of one endpoint on one worker: what its connections there opened, closed, received,
// sent and queued. Each block is written only by its worker's thread, so counting is never a shared
// write on the per-message path: every counter is an atomic loaded and stored with relaxed order (no
// read-modify-write, no lock), which costs what a plain increment costs, and can still be read from
// any thread. Reading sums the blocks of all workers (runtime/metrics.hpp).

#include <array>    // std::array buckets and close classes
#include <atomic>   // std::atomic counters
#include <chrono>   // std::chrono durations of round trips
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t, std::int64_t, std::uint16_t

namespace starling::detail {

// STARLING_NO_METRICS (defined before the first Starling include, the same in every file of a
// program) compiles every counter and gauge to nothing, so app.metrics() and the metrics page read
// zeros. It exists to measure what counting costs: the benchmark builds echo both ways and runs them
// side by side. Counting is meant to stay on.
#ifdef STARLING_NO_METRICS
inline constexpr bool metrics_compiled = false;
#else
inline constexpr bool metrics_compiled = true;
#endif

/// Only ever increased, by one thread.
class counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        if constexpr (metrics_compiled) value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

/// Goes up and down, by one thread.
class gauge {
public:
    void add(std::int64_t n) noexcept {
        if constexpr (metrics_compiled) value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void set(std::int64_t n) noexcept {
        if constexpr (metrics_compiled) value_.store(n, std::memory_order_relaxed);
    }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

/// How a connection ended, by its close code: the classes the metrics report.
enum class close_class : std::uint8_t { normal, going_away, protocol_error, policy, too_big, server_error, abnormal, other };
inline constexpr std::size_t close_class_count = 8;

constexpr close_class classify_close(std::uint16_t code) noexcept {
    switch (code) {
    case 1000: return close_class::normal;
    case 1001: return close_class::going_away;
    case 1002: case 1003: case 1007: case 1010: return close_class::protocol_error;
    case 1008: return close_class::policy;
    case 1009: return close_class::too_big;
    case 1011: return close_class::server_error;
    case 1005: return close_class::normal;  // a close frame without a code: what a browser's ws.close() sends
    case 1006: return close_class::abnormal;
    default: return close_class::other;
    }
}

constexpr const char* to_label(close_class c) noexcept {
    switch (c) {
    case close_class::normal: return "normal";
    case close_class::going_away: return "going_away";
    case close_class::protocol_error: return "protocol_error";
    case close_class::policy: return "policy";
    case close_class::too_big: return "too_big";
    case close_class::server_error: return "server_error";
    case close_class::abnormal: return "abnormal";
    case close_class::other: return "other";
    }
    return "other";
}

/// Round trips of pings (the idle check's): how many fell at or under each bound.
struct rtt_histogram {
    /// Upper bounds in seconds; one more bucket above the last.
    static constexpr std::array<double, 10> bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

    void observe(std::chrono::steady_clock::duration rtt) noexcept {
        const double seconds = std::chrono::duration<double>(rtt).count();
        std::size_t i = 0;
        while (i < bounds.size() && seconds > bounds[i]) ++i;
        buckets[i].add();
        count.add();
        sum_microseconds.add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(rtt).count()));
    }

    std::array<counter, bounds.size() + 1> buckets{};  // not cumulative: the exposition adds them up
    counter count;
    counter sum_microseconds;
};

struct endpoint_counters {
    gauge open;
    counter opened;
    std::array<counter, close_class_count> closed{};  // by close_class
    counter messages_in;
    counter bytes_in;   // payload bytes of received messages
    counter messages_out;
    counter bytes_out;  // payload bytes of queued data frames
    counter deliveries;  // frames from broadcast, publish or send_to queued for a connection
    counter slow_consumer_closes;
    counter slow_consumer_drops;
    gauge queued_bytes;             // what the outbound queues of this worker's connections hold now
    gauge queued_bytes_high_water;  // the most they held at once
    counter pings_sent;
    rtt_histogram pong_rtt;
    counter auth_refusals;        // upgrades the authentication hook refused
    counter rate_limited_drops;   // messages over the rate limit, dropped (rate_limit_policy::drop)
    counter rate_limited_closes;  // connections closed for going over it (rate_limit_policy::close)
};

}  // namespace starling::detail
// ---- end starling/session/counters.hpp ----

namespace starling {

/// What app.metrics() reports about one endpoint: the sums over its workers.
struct endpoint_metrics_snapshot {
    std::string endpoint;
    std::int64_t connections_open = 0;
    std::uint64_t connections_opened = 0;
    std::array<std::uint64_t, detail::close_class_count> connections_closed{};  // by close class
    std::uint64_t messages_in = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t messages_out = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t deliveries = 0;
    std::uint64_t slow_consumer_closes = 0;
    std::uint64_t slow_consumer_drops = 0;
    std::int64_t queued_bytes = 0;
    std::int64_t queued_bytes_high_water = 0;  // the highest of one worker's
    std::uint64_t pings_sent = 0;
    std::array<std::uint64_t, detail::rtt_histogram::bounds.size() + 1> pong_rtt_buckets{};  // not cumulative
    std::uint64_t pong_rtt_count = 0;
    double pong_rtt_sum_seconds = 0;
    std::uint64_t auth_refusals = 0;
    std::uint64_t rate_limited_drops = 0;
    std::uint64_t rate_limited_closes = 0;
};

/// HTTP statuses a refused handshake is counted under; anything else is "other".
inline constexpr std::array<int, 10> refusal_statuses{400, 401, 403, 404, 405, 426, 429, 431, 500, 503};

struct metrics_snapshot {
    std::vector<endpoint_metrics_snapshot> endpoints;
    /// Refused handshakes by status (refusal_statuses, then one for any other status).
    std::array<std::uint64_t, refusal_statuses.size() + 1> handshakes_refused{};
    /// The backplane's link and counts, when the app has one (app.use_backplane).
    std::optional<backplane_stats> backplane;

    /// The Prometheus text exposition format, version 0.0.4.
    std::string to_prometheus() const;
};

namespace detail {

/// One endpoint's counters, one block per worker its connections live on.
class endpoint_metrics {
public:
    /// The block of the worker that runs `context`, made on first use. Called once per connection.
    endpoint_counters& for_worker(asio::io_context& context) {
        std::lock_guard lock(mutex_);
        for (const auto& b : blocks_)
            if (b->context == &context) return b->counters;
        blocks_.push_back(std::make_unique<block>(&context));
        return blocks_.back()->counters;
    }

    endpoint_metrics_snapshot snapshot(std::string_view endpoint) const {
        endpoint_metrics_snapshot s;
        s.endpoint = std::string(endpoint);
        std::lock_guard lock(mutex_);
        for (const auto& b : blocks_) {
            const endpoint_counters& c = b->counters;
            s.connections_open += c.open.value();
            s.connections_opened += c.opened.value();
            for (std::size_t i = 0; i < c.closed.size(); ++i) s.connections_closed[i] += c.closed[i].value();
            s.messages_in += c.messages_in.value();
            s.bytes_in += c.bytes_in.value();
            s.messages_out += c.messages_out.value();
            s.bytes_out += c.bytes_out.value();
            s.deliveries += c.deliveries.value();
            s.slow_consumer_closes += c.slow_consumer_closes.value();
            s.slow_consumer_drops += c.slow_consumer_drops.value();
            s.queued_bytes += c.queued_bytes.value();
            s.queued_bytes_high_water = std::max(s.queued_bytes_high_water, c.queued_bytes_high_water.value());
            s.pings_sent += c.pings_sent.value();
            for (std::size_t i = 0; i < c.pong_rtt.buckets.size(); ++i) s.pong_rtt_buckets[i] += c.pong_rtt.buckets[i].value();
            s.pong_rtt_count += c.pong_rtt.count.value();
            s.pong_rtt_sum_seconds += static_cast<double>(c.pong_rtt.sum_microseconds.value()) / 1e6;
            s.auth_refusals += c.auth_refusals.value();
            s.rate_limited_drops += c.rate_limited_drops.value();
            s.rate_limited_closes += c.rate_limited_closes.value();
        }
        return s;
    }

private:
    struct block {
        explicit block(asio::io_context* c) : context(c) {}
        asio::io_context* context;
        endpoint_counters counters;
    };

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<block>> blocks_;  // never removed: connections point into them
};

/// Refused handshakes, server-wide (a refused request may match no endpoint). Not on any per-message
/// path, so one shared counter per status is enough.
class handshake_refusals {
public:
    void count(int status) noexcept {
        std::size_t i = 0;
        while (i < refusal_statuses.size() && refusal_statuses[i] != status) ++i;
        counts_[i].fetch_add(1, std::memory_order_relaxed);
    }
    void snapshot(metrics_snapshot& s) const noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i) s.handshakes_refused[i] = counts_[i].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, refusal_statuses.size() + 1> counts_{};
};

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
inline void append_label_value(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

inline void append_number(std::string& out, double v) {
    char buffer[32];
    const int n = std::snprintf(buffer, sizeof buffer, "%.15g", v);  // 0.025, not 0.025000000000000001
    out.append(buffer, static_cast<std::size_t>(n));
}

}  // namespace detail

inline std::string metrics_snapshot::to_prometheus() const {
    std::string out;
    auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
        out += "# HELP ";
        out += name;
        out += ' ';
        out += help;
        out += "\n# TYPE ";
        out += name;
        out += ' ';
        out += type;
        out += '\n';
    };
    auto sample = [&](std::string_view name, const endpoint_metrics_snapshot& e, std::string_view extra_label,
                      std::string_view extra_value, double value) {
        out += name;
        out += "{endpoint=\"";
        detail::append_label_value(out, e.endpoint);
        out += '"';
        if (!extra_label.empty()) {
            out += ',';
            out += extra_label;
            out += "=\"";
            detail::append_label_value(out, extra_value);
            out += '"';
        }
        out += "} ";
        detail::append_number(out, value);
        out += '\n';
    };
    auto per_endpoint = [&](std::string_view name, std::string_view type, std::string_view help, auto field) {
        family(name, type, help);
        for (const auto& e : endpoints) sample(name, e, {}, {}, static_cast<double>(field(e)));
    };

    per_endpoint("starling_connections_open", "gauge", "Open WebSocket connections.",
                 [](const auto& e) { return e.connections_open; });
    per_endpoint("starling_connections_opened_total", "counter", "WebSocket connections upgraded.",
                 [](const auto& e) { return e.connections_opened; });
    family("starling_connections_closed_total", "counter", "WebSocket connections ended, by close code class.");
    for (const auto& e : endpoints)
        for (std::size_t i = 0; i < detail::close_class_count; ++i)
            sample("starling_connections_closed_total", e, "code_class", detail::to_label(static_cast<detail::close_class>(i)),
                   static_cast<double>(e.connections_closed[i]));
    per_endpoint("starling_messages_received_total", "counter", "Messages received from clients.",
                 [](const auto& e) { return e.messages_in; });
    per_endpoint("starling_received_bytes_total", "counter", "Payload bytes of messages received.",
                 [](const auto& e) { return e.bytes_in; });
    per_endpoint("starling_messages_sent_total", "counter", "Text and binary messages queued for clients.",
                 [](const auto& e) { return e.messages_out; });
    per_endpoint("starling_sent_bytes_total", "counter", "Payload bytes of messages queued for clients.",
                 [](const auto& e) { return e.bytes_out; });
    per_endpoint("starling_deliveries_total", "counter", "Messages from broadcast, publish or send_to queued for a receiver.",
                 [](const auto& e) { return e.deliveries; });
    per_endpoint("starling_slow_consumer_closes_total", "counter", "Receivers closed for falling behind (slow_consumer close).",
                 [](const auto& e) { return e.slow_consumer_closes; });
    per_endpoint("starling_slow_consumer_drops_total", "counter", "Messages skipped for receivers falling behind (slow_consumer drop).",
                 [](const auto& e) { return e.slow_consumer_drops; });
    per_endpoint("starling_queued_bytes", "gauge", "Bytes of memory the outbound queues hold.",
                 [](const auto& e) { return e.queued_bytes; });
    per_endpoint("starling_queued_bytes_high_water", "gauge", "The most bytes one worker's outbound queues held at once.",
                 [](const auto& e) { return e.queued_bytes_high_water; });
    per_endpoint("starling_pings_sent_total", "counter", "Pings sent to idle connections.",
                 [](const auto& e) { return e.pings_sent; });
    per_endpoint("starling_auth_refusals_total", "counter", "Upgrades the authentication hook refused.",
                 [](const auto& e) { return e.auth_refusals; });
    per_endpoint("starling_rate_limited_messages_dropped_total", "counter", "Messages over the rate limit, dropped.",
                 [](const auto& e) { return e.rate_limited_drops; });
    per_endpoint("starling_rate_limit_closes_total", "counter", "Connections closed for going over the rate limit.",
                 [](const auto& e) { return e.rate_limited_closes; });

    family("starling_pong_rtt_seconds", "histogram", "Round trip of pings answered by a pong.");
    for (const auto& e : endpoints) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < e.pong_rtt_buckets.size(); ++i) {
            cumulative += e.pong_rtt_buckets[i];
            std::string le = "+Inf";
            if (i < detail::rtt_histogram::bounds.size()) {
                le.clear();
                detail::append_number(le, detail::rtt_histogram::bounds[i]);
            }
            sample("starling_pong_rtt_seconds_bucket", e, "le", le, static_cast<double>(cumulative));
        }
        sample("starling_pong_rtt_seconds_sum", e, {}, {}, e.pong_rtt_sum_seconds);
        sample("starling_pong_rtt_seconds_count", e, {}, {}, static_cast<double>(e.pong_rtt_count));
    }

    family("starling_handshakes_refused_total", "counter", "Upgrade requests answered with an HTTP error, by status.");
    for (std::size_t i = 0; i < handshakes_refused.size(); ++i) {
        out += "starling_handshakes_refused_total{status=\"";
        out += i < refusal_statuses.size() ? std::to_string(refusal_statuses[i]) : std::string("other");
        out += "\"} ";
        out += std::to_string(handshakes_refused[i]);
        out += '\n';
    }

    if (backplane) {
        auto node = [&](std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
            family(name, type, help);
            out += name;
            out += ' ';
            out += std::to_string(value);
            out += '\n';
        };
        node("starling_backplane_connected", "gauge", "1 while the link to the backplane is up, else 0.",
             backplane->connected ? 1 : 0);
        node("starling_backplane_published_total", "counter", "Messages handed to the backplane.", backplane->published);
        node("starling_backplane_received_total", "counter", "Messages that arrived from the backplane.",
             backplane->received);
        node("starling_backplane_dropped_total", "counter", "Messages lost because the link was down.",
             backplane->dropped);
        node("starling_backplane_reconnects_total", "counter", "Links to the backplane made again after losing one.",
             backplane->reconnects);
    }
    return out;
}

}  // namespace starling
// ---- end starling/runtime/metrics.hpp ----

// ---- begin starling/runtime/pubsub.hpp ----
// The app's topics, and what connects them and its endpoints' broadcasts to other processes through
// a backplane (runtime/backplane.hpp). One per app, shared by every endpoint.
//
// With a backplane, a publish (or a broadcast, or a send_to whose id is not here) is delivered here
// at once, as without one, and published once to the backplane; every other node delivers it to its
// own connections, encoding the frame once. What this node published comes back from the backplane
// too and is skipped: each message carries the id of the node that published it.
//
// Channels, each under the prefix given with the backplane ("starling:" by default):
//   PREFIX topic:NAME        a topic's publishes; a node subscribes while the topic has members here
//   PREFIX broadcast:PATH    an endpoint's broadcasts
//   PREFIX to:PATH           an endpoint's send_to; every node gets it, the one holding the id delivers
// A message is one byte of type ('t' text, 'b' binary), the publishing node's id (36 characters),
// then the payload; a send_to's payload is the connection id, a newline, then the text.

#include <cstddef>      // std::size_t
#include <map>          // path -> endpoint registry
#include <memory>       // std::shared_ptr backplane
#include <mutex>        // std::mutex: deliveries from the backplane against stop()
#include <string>       // std::string channels
#include <string_view>  // std::string_view payloads
#include <utility>      // std::move
#include <vector>       // std::vector topic sizes


// ---- begin starling/runtime/topic_registry.hpp ----
// Topics (rooms): named groups of connections that a publish reaches, across every worker of an app.
//
// It works as the endpoint's registry (runtime/connection_registry.hpp) does, one level down: each
// topic keeps its members per worker, and each worker's list is read and written only on that
// worker's own thread. A publish delivers to the members of the publisher's own worker at once and
// posts ONE task to each other worker where the topic has members, which delivers there to all of
// them, sharing the frame encoded once. Nothing is posted while the lock is held; the lock guards the
// map of names to topics and each topic's list of workers, never the members themselves.
//
// A topic exists while it has members: the last one to leave removes its name, and a later subscribe
// makes a fresh topic. A task already posted keeps the topic it was posted for alive, so it never
// reaches into freed memory; its members then are exactly those still in that topic.

#include <asio/io_context.hpp>  // asio::io_context: a member's worker
#include <asio/post.hpp>        // asio::post: one delivery task per other worker
#include <atomic>               // std::atomic sizes read from any thread
#include <cstddef>              // std::size_t
#include <functional>           // std::function observer, std::hash, std::equal_to<>
#include <memory>               // std::shared_ptr topics and members
#include <mutex>                // std::mutex guarding the names and the workers of each topic
#include <string>               // std::string names
#include <string_view>          // std::string_view lookups
#include <unordered_map>        // name -> topic
#include <utility>              // std::move, std::pair
#include <vector>               // members, workers, sizes


namespace starling::detail {

/// `Member` is the connection type; it provides `receive_broadcast(const shared_frame&)`, called on
/// its own worker's thread.
template <class Member>
class topic_registry {
    struct topic;
    struct worker_group;

public:
    /// One member's place in one topic. The member keeps it (at a stable address: the registry
    /// points back at it to move members in constant time) from join() until leave().
    struct membership {
        std::shared_ptr<topic> joined;
        worker_group* group = nullptr;
        std::size_t slot = 0;
    };

    /// Told, under the lock, when a name gets its first member (true) or loses its last (false): the
    /// app subscribes its backplane to the topic's channel then. Under the lock so that the calls
    /// come in the order the changes happened; it must only queue, never call back in here.
    using observer = std::function<void(const std::string& name, bool has_members)>;

    topic_registry() = default;
    topic_registry(const topic_registry&) = delete;
    topic_registry& operator=(const topic_registry&) = delete;

    void set_observer(observer watch) { observer_ = std::move(watch); }

    /// Adds `member`, which lives on `context`, to the topic `name`, filling `place`. Call on that
    /// context's thread, with a `place` not in any topic.
    void join(asio::io_context& context, const std::string& name, std::shared_ptr<Member> member, membership& place) {
        {
            std::lock_guard lock(mutex_);
            auto& entry = topics_[name];
            if (!entry) {
                entry = std::make_shared<topic>(name);
                if (observer_) observer_(name, true);
            }
            place.joined = entry;
            place.group = entry->group_for(context);
            entry->size.fetch_add(1, std::memory_order_relaxed);
            place.group->size.fetch_add(1, std::memory_order_relaxed);
        }
        place.slot = place.group->members.size();
        place.group->members.push_back({std::move(member), &place});
    }

    /// Takes the member out of the topic `place` is in. Call on the member's thread, once per join().
    void leave(membership& place) {
        if (!place.joined) return;
        {
            std::lock_guard lock(mutex_);
            place.group->size.fetch_sub(1, std::memory_order_relaxed);
            if (place.joined->size.fetch_sub(1, std::memory_order_relaxed) == 1) {
                // The last member anywhere: the name goes, unless a newer topic already holds it.
                if (const auto it = topics_.find(place.joined->name); it != topics_.end() && it->second == place.joined) {
                    topics_.erase(it);
                    if (observer_) observer_(place.joined->name, false);
                }
            }
        }
        // Swap with the last one: constant time, whatever the number of members.
        auto& members = place.group->members;
        const std::size_t slot = place.slot;
        if (slot < members.size() && members[slot].place == &place) {
            if (slot + 1 != members.size()) {
                members[slot] = std::move(members.back());
                members[slot].place->slot = slot;
            }
            members.pop_back();
        }
        place = membership{};
    }

    /// Delivers `frame` to every member of topic `name` but `except` (which may be null): at once to
    /// those of `here` (the caller's worker; null from any other thread), through one posted task per
    /// other worker with members. Each receiver gets one publisher's frames in the order it published
    /// them: posts from one thread to one worker run in order. Returns the members reached (counted
    /// when the publish was made).
    std::size_t publish(asio::io_context* here, std::string_view name, const shared_frame& frame, const Member* except) {
        std::shared_ptr<topic> target;
        std::vector<worker_group*> remote;
        worker_group* local = nullptr;
        std::size_t reached = 0;
        {
            std::lock_guard lock(mutex_);
            const auto it = topics_.find(name);
            if (it == topics_.end()) return 0;
            target = it->second;
            reached = target->size.load(std::memory_order_relaxed);
            remote.reserve(target->groups.size());
            for (const auto& g : target->groups) {
                if (g->context == here) {
                    local = g.get();
                } else if (g->size.load(std::memory_order_relaxed) != 0) {
                    remote.push_back(g.get());
                }
            }
        }
        // Groups are removed only with their topic, which each task holds: the pointers stay good.
        for (worker_group* g : remote)
            asio::post(*g->context, [target, g, frame, except] { g->deliver(frame, except); });
        if (local != nullptr) local->deliver(frame, except);
        return reached;
    }

    /// Members of topic `name` right now, from any thread (0 when nobody subscribes).
    std::size_t size(std::string_view name) const {
        std::lock_guard lock(mutex_);
        const auto it = topics_.find(name);
        return it == topics_.end() ? 0 : it->second->size.load(std::memory_order_relaxed);
    }

    /// Every topic with members and how many, from any thread, in no particular order.
    std::vector<std::pair<std::string, std::size_t>> sizes() const {
        std::vector<std::pair<std::string, std::size_t>> out;
        std::lock_guard lock(mutex_);
        out.reserve(topics_.size());
        for (const auto& [name, t] : topics_) out.emplace_back(name, t->size.load(std::memory_order_relaxed));
        return out;
    }

    /// Topics with members right now.
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return topics_.size();
    }

private:
    struct entry {
        std::shared_ptr<Member> member;
        membership* place;  // where the member keeps its slot in this list
    };

    /// The members of one topic on one worker. `members` is touched only on that worker's thread;
    /// `size` is read from others to skip workers with nobody to deliver to.
    struct worker_group {
        explicit worker_group(asio::io_context& c) : context(&c) {}

        void deliver(const shared_frame& frame, const Member* except) {
            // receive_broadcast only queues (or starts a close that runs later): nobody joins or
            // leaves this list while it is walked.
            for (const auto& e : members)
                if (e.member.get() != except) e.member->receive_broadcast(frame);
        }

        asio::io_context* context;
        std::vector<entry> members;
        std::atomic<std::size_t> size{0};
    };

    struct topic {
        explicit topic(std::string n) : name(std::move(n)) {}

        /// Under the registry's lock.
        worker_group* group_for(asio::io_context& context) {
            for (const auto& g : groups)
                if (g->context == &context) return g.get();
            groups.push_back(std::make_unique<worker_group>(context));
            return groups.back().get();
        }

        const std::string name;
        std::vector<std::unique_ptr<worker_group>> groups;  // grows under the lock, never shrinks
        std::atomic<std::size_t> size{0};
    };

    /// Lets lookups take a string_view.
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
    };

    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<topic>, name_hash, std::equal_to<>> topics_;
    observer observer_;
};

}  // namespace starling::detail
// ---- end starling/runtime/topic_registry.hpp ----

// ---- begin starling/session/connection_base.hpp ----
// The part of a connection that does not depend on its stream: where it is in its life (one status),
// the inbox the reader fills and receive() empties, the outbound queue every send goes through, the
// close handshake and on_close, and the one timer that keeps every time limit. session/connection.hpp
// adds the reader and the writer for one stream type; the runtime adds what the user's code is
// (runtime/endpoint_connection.hpp), through the hooks at the end of this class.
//
// How a connection begins and ends (greeting first, on_close exactly once, the close handshake within
// its timeout) lives in run().

#include <asio/co_spawn.hpp>        // asio::co_spawn for the handler and server-initiated closes
#include <asio/detached.hpp>        // asio::detached
#include <asio/io_context.hpp>      // asio::io_context, the worker's event loop
#include <asio/post.hpp>            // asio::post: deliveries, flushes and abort() onto the connection's thread
#include <asio/use_awaitable.hpp>   // asio::use_awaitable for a posted hop
#include <algorithm>                // std::min of the deadlines, std::max of statuses
#include <array>                    // std::array close payload
#include <chrono>                   // std::chrono deadlines
#include <cstdint>                  // std::uint16_t close codes, std::uint8_t status
#include <exception>                // std::exception_ptr of a handler that threw
#include <memory>                   // std::shared_ptr, std::enable_shared_from_this
#include <optional>                 // std::optional receive-with-deadline results
#include <string>                   // std::string payloads
#include <string_view>              // std::string_view views
#include <utility>                  // std::move


// ---- begin starling/logging.hpp ----
// Logging: every app has a sink that receives each record Starling reports, with its level, what
// happened (a short fixed event name), where (endpoint, connection id) and a message. The default
// writes warnings and errors to stderr as one line each; app.set_log_sink() routes records anywhere,
// app.set_log_level() sets the least level passed on, and app.set_logger() takes a plain
// (level, line) function. Nothing is logged per message, and a repeated warning or error is passed on
// at most a few times a second: the rest are counted and the count rides on the next one that passes.

#include <chrono>       // std::chrono::steady_clock rate windows
#include <cstddef>      // std::size_t
#include <cstdio>       // std::fwrite to stderr, without <iostream>'s static initialisation
#include <functional>   // std::function holding the user's sink
#include <mutex>        // std::mutex guarding the rate limiter
#include <string>       // std::string line buffer
#include <string_view>  // std::string_view fields
#include <utility>      // std::move
#include <vector>       // std::vector rate windows

namespace starling {

enum class log_level { debug, info, warning, error };

constexpr std::string_view to_string(log_level level) noexcept {
    switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    }
    return "unknown";
}

/// One thing Starling reports. The views are valid only during the sink's call.
struct log_record {
    log_level level = log_level::info;
    /// What happened, a fixed name: "handler_threw", "on_close_threw", "page_threw", "accept_failed",
    /// "shutdown_incomplete", "tls_reloaded", "tls_reload_failed", "signal_action_threw".
    std::string_view event;
    std::string_view endpoint;       // the endpoint's path, when there is one
    std::string_view connection_id;  // the connection's id, when there is one
    std::string_view message;        // the whole line, for people
};

/// Receives every record at or above the app's log level. Called from worker threads: make it
/// thread-safe.
using log_sink = std::function<void(const log_record&)>;

/// The older, plain form: the level and the message line.
using logger = std::function<void(log_level, std::string_view)>;

/// The default: one line per message on stderr, warnings and errors only.
inline void log_to_stderr(log_level level, std::string_view message) {
    if (level < log_level::warning) return;
    std::string line = "starling ";
    line += to_string(level);
    line += ": ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}
inline void log_to_stderr(const log_record& r) { log_to_stderr(r.level, r.message); }

namespace detail {

/// The app's sink, its level, and the rate limit on repeated warnings and errors.
class log_channel {
public:
    log_channel(log_sink sink, log_level least) : sink_(std::move(sink)), least_(least) {}

    bool enabled(log_level level) const noexcept { return sink_ && level >= least_; }

    /// Never throws: a sink that fails must not take a connection's end, or a shutdown, with it.
    void write(const log_record& r) const noexcept {
        try {
            pass_on(r);
        } catch (...) {
        }
    }

    void write(log_level level, std::string_view event, std::string_view endpoint, std::string_view connection_id,
               std::string_view message) const noexcept {
        write(log_record{level, event, endpoint, connection_id, message});
    }

    /// Records of one event passed on per window; the rest are counted.
    static constexpr std::size_t burst = 10;
    static constexpr std::chrono::seconds window{1};

private:
    void pass_on(const log_record& r) const {
        if (!enabled(r.level)) return;
        std::size_t suppressed = 0;
        if (r.level >= log_level::warning && !admit(r.event, suppressed)) return;
        if (suppressed == 0) return sink_(r);
        std::string message(r.message);
        message += " (" + std::to_string(suppressed) + " more like it suppressed)";
        log_record with_count = r;
        with_count.message = message;
        sink_(with_count);
    }

    struct rate {
        std::string event;
        std::chrono::steady_clock::time_point since;
        std::size_t passed = 0;
        std::size_t suppressed = 0;
    };

    /// True if a record of `event` may pass now; `suppressed` gets how many were held back before it.
    bool admit(std::string_view event, std::size_t& suppressed) const {
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        rate* r = nullptr;
        for (rate& candidate : rates_)
            if (candidate.event == event) r = &candidate;
        if (r == nullptr) {
            rates_.push_back(rate{std::string(event), now, 0, 0});
            r = &rates_.back();
        }
        if (now - r->since >= window) {
            r->since = now;
            r->passed = 0;
        }
        if (r->passed >= burst) {
            ++r->suppressed;
            return false;
        }
        ++r->passed;
        suppressed = r->suppressed;
        r->suppressed = 0;
        return true;
    }

    log_sink sink_;
    log_level least_;
    mutable std::mutex mutex_;
    mutable std::vector<rate> rates_;  // one per event name: a handful
};

}  // namespace detail
}  // namespace starling
// ---- end starling/logging.hpp ----

// ---- begin starling/options.hpp ----
// Limits and timeouts, with their defaults. Every limit is configurable per app (server_options,
// websocket_options given to app.start / app.set_websocket_options) and per endpoint
// (endpoint.options(...)).

#include <chrono>   // std::chrono::milliseconds timeouts
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint16_t, std::uint64_t
#include <memory>   // std::shared_ptr of the port's transport
#include <string>   // std::string file names


// ---- begin starling/protocol/permessage_deflate.hpp ----
// RFC 7692: the permessage-deflate extension's negotiation, sans I/O and without zlib. The server
// reads the client's offers from its Sec-WebSocket-Extensions fields, accepts the first one it can
// honour, and answers with exactly what was agreed; an offer it cannot honour (an unknown parameter,
// a bad value, a parameter twice) is declined, and the connection goes on uncompressed. The client
// makes one offer and holds the server's answer to it: anything it did not offer, or cannot keep
// to, fails the handshake (a client cannot decline). The compression itself is
// protocol/deflate_codec.hpp.

#include <algorithm>    // std::min of window sizes
#include <cstddef>      // std::size_t
#include <optional>     // std::optional agreement
#include <string>       // std::string response line
#include <string_view>  // std::string_view header values
#include <vector>       // std::vector of field values


namespace starling {

/// Per-endpoint compression settings (websocket_options::compression).
struct compression_options {
    /// Accept permessage-deflate when the client offers it (every browser does, and Python's
    /// websockets client): on by default. Messages below `threshold` go uncompressed anyway.
    bool enabled = true;
    /// Keep the server's compression state between messages: better ratio on similar messages, at
    /// the cost of a zlib compressor held per connection (see README's memory table). Off by default:
    /// then no state is held between messages, and a broadcast is compressed once for every receiver.
    bool server_context_takeover = false;
    /// Let the client keep its compression state between messages: the server then holds an
    /// inflater per connection. Off by default (the response says client_no_context_takeover).
    bool client_context_takeover = false;
    /// LZ77 window of the server's compressor, 9 to 15 (zlib cannot make 8-bit raw streams); the
    /// client may ask for less.
    int server_max_window_bits = 15;
    /// The window the client is asked to keep to, 8 to 15, when its offer allows asking. Only worth
    /// lowering with client context takeover (it bounds the inflater each connection keeps).
    int client_max_window_bits = 15;
    /// zlib's memLevel for the compressor, 1 to 9: memory of its hash tables (8 is zlib's default).
    int mem_level = 8;
    /// zlib's compression level, 1 (fastest) to 9 (smallest).
    int level = 1;
    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear): compressing a few
    /// bytes costs more time than it saves on the wire.
    std::size_t threshold = 256;
};

/// What a client offers (client_options::compression). Its defaults make the offer browsers and
/// Python's websockets client make, `permessage-deflate; client_max_window_bits`: the server decides
/// the rest.
struct client_compression_options {
    /// Offer permessage-deflate. The server may decline it; messages below `threshold` go
    /// uncompressed anyway.
    bool enabled = true;
    /// Offer client_no_context_takeover: each of our messages is compressed on its own, so no
    /// compressor is kept between them (a thread's shared one is borrowed), whatever the server says.
    bool client_no_context_takeover = false;
    /// Offer server_no_context_takeover: the server must compress each message on its own, so no
    /// inflater is kept between them. A server that does not agree fails the handshake.
    bool server_no_context_takeover = false;
    /// The window our compressor keeps to, 9 to 15 (zlib cannot make 8-bit raw streams), offered as
    /// client_max_window_bits (a value only below 15); the server may ask for less.
    int client_max_window_bits = 15;
    /// Whether client_max_window_bits is in the offer at all. Without it, the server may not ask us
    /// for a smaller window: an answer that does fails the handshake.
    bool offer_client_max_window_bits = true;
    /// The window the server is asked to keep to, 8 to 15 (15: nothing asked). A smaller window is a
    /// smaller inflater when the server keeps its context.
    int server_max_window_bits = 15;
    /// zlib's memLevel (1 to 9) and compression level (1 to 9) for our compressor.
    int mem_level = 8;
    int level = 1;
    /// Messages shorter than this many bytes are sent uncompressed.
    std::size_t threshold = 256;
};

/// What one connection agreed to.
struct deflate_agreement {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 15;  // our compressor's window
    int client_max_window_bits = 15;  // the client's, which our inflater needs
    /// Whether server_max_window_bits / client_max_window_bits appear in the response.
    bool server_window_named = false;
    bool client_window_named = false;
};

namespace detail {

/// One parameter of an extension offer: a name, and a value if it had one.
struct extension_param {
    std::string name;
    std::optional<std::string> value;
};

/// One element of an extension list (RFC 6455 section 9.1): a token, then ;-separated parameters,
/// each `token [= (token | quoted-string)]`. A quoted value's content must itself be a token.
struct extension_offer {
    std::string name;
    std::vector<extension_param> params;
    bool well_formed = true;
};

/// Splits a quoted-string's content out of `s` (which starts with '"'), advancing `s` past it.
inline std::optional<std::string> take_quoted(std::string_view& s) {
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i] == '\\') {
            if (++i == s.size()) return std::nullopt;
            out += s[i];
        } else if (s[i] == '"') {
            s.remove_prefix(i + 1);
            return out;
        } else {
            out += s[i];
        }
    }
    return std::nullopt;
}

/// Parses a whole Sec-WebSocket-Extensions value into its offers, in order. A malformed element
/// comes back marked so (it is declined, like an offer with a bad parameter); the rest stand.
inline std::vector<extension_offer> parse_extension_list(std::string_view value) {
    std::vector<extension_offer> offers;
    extension_offer current;
    bool in_offer = false;
    auto finish = [&] {
        if (in_offer) offers.push_back(std::move(current));
        current = {};
        in_offer = false;
    };
    while (!value.empty()) {
        // The next item up to ',' or ';' (a quoted-string may hold either).
        std::size_t i = 0;
        while (i < value.size() && value[i] != ',' && value[i] != ';' && value[i] != '=' && value[i] != '"') ++i;
        const std::string_view name = http::detail::trim_ows(value.substr(0, i));
        value.remove_prefix(i);
        std::optional<std::string> param_value;
        bool ok = http::detail::is_token(name);
        if (!value.empty() && value.front() == '=') {
            value.remove_prefix(1);
            std::size_t lead = 0;
            while (lead < value.size() && http::detail::is_ows(value[lead])) ++lead;
            value.remove_prefix(lead);
            if (!value.empty() && value.front() == '"') {
                param_value = take_quoted(value);
                if (!param_value) {
                    ok = false;
                    value = {};
                }
            } else {
                std::size_t j = 0;
                while (j < value.size() && value[j] != ',' && value[j] != ';') ++j;
                param_value = std::string(http::detail::trim_ows(value.substr(0, j)));
                value.remove_prefix(j);
            }
            if (ok && !http::detail::is_token(*param_value)) ok = false;
            // After a value, only spaces may come before the separator.
            std::size_t k = 0;
            while (k < value.size() && http::detail::is_ows(value[k])) ++k;
            if (k < value.size() && value[k] != ',' && value[k] != ';') ok = false;
            while (k < value.size() && value[k] != ',' && value[k] != ';') ++k;
            value.remove_prefix(k);
        } else if (!value.empty() && value.front() == '"') {
            ok = false;
            take_quoted(value);
        }
        if (!in_offer) {
            in_offer = true;
            current.name = std::string(name);
            if (!ok || param_value) current.well_formed = false;
        } else {
            if (!ok) current.well_formed = false;
            current.params.push_back({std::string(name), std::move(param_value)});
        }
        if (value.empty()) break;
        const char separator = value.front();
        value.remove_prefix(1);
        if (separator == ',') finish();
    }
    finish();
    // Empty list elements (", ,") are allowed by the list rule and mean nothing.
    std::vector<extension_offer> kept;
    for (auto& o : offers)
        if (!(o.name.empty() && o.params.empty())) kept.push_back(std::move(o));
    return kept;
}

/// A window-bits value: a decimal from 8 to 15 without leading zeros.
constexpr std::optional<int> parse_window_bits(std::string_view v) noexcept {
    if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
    if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
    return std::nullopt;
}

/// Judges one permessage-deflate offer against `options`: the agreement, or nothing to decline it.
inline std::optional<deflate_agreement> judge_offer(const extension_offer& offer, const compression_options& options) {
    if (!offer.well_formed) return std::nullopt;
    bool seen_server_nct = false, seen_client_nct = false, seen_server_bits = false, seen_client_bits = false;
    int server_bits = 15;
    std::optional<int> client_bits;  // present: the client allows asking; its value, if any
    bool client_bits_valued = false;
    for (const extension_param& p : offer.params) {
        bool* seen = nullptr;
        if (p.name == "server_no_context_takeover") {
            seen = &seen_server_nct;
            if (p.value) return std::nullopt;
        } else if (p.name == "client_no_context_takeover") {
            seen = &seen_client_nct;
            if (p.value) return std::nullopt;
        } else if (p.name == "server_max_window_bits") {
            seen = &seen_server_bits;
            if (!p.value) return std::nullopt;  // a value is required in an offer
            const auto bits = parse_window_bits(*p.value);
            if (!bits) return std::nullopt;
            server_bits = *bits;
        } else if (p.name == "client_max_window_bits") {
            seen = &seen_client_bits;
            client_bits = 15;
            if (p.value) {
                const auto bits = parse_window_bits(*p.value);
                if (!bits) return std::nullopt;
                client_bits = *bits;
                client_bits_valued = true;
            }
        } else {
            return std::nullopt;  // not a parameter of this extension
        }
        if (*seen) return std::nullopt;  // the same parameter twice
        *seen = true;
    }
    deflate_agreement a;
    // Our compressor keeps to the smaller of our window and the one the client allows. zlib makes no
    // raw stream with an 8-bit window (it would use 9), so an offer that demands 8 is one we cannot
    // honour.
    a.server_max_window_bits = std::min(server_bits, options.server_max_window_bits);
    if (a.server_max_window_bits < 9) return std::nullopt;
    a.server_window_named = seen_server_bits || a.server_max_window_bits < 15;
    // A server may not limit a client that did not offer client_max_window_bits; one that did, it
    // may ask to keep to less than it offered.
    if (client_bits) {
        a.client_max_window_bits = std::min(*client_bits, options.client_max_window_bits);
        a.client_window_named = client_bits_valued || a.client_max_window_bits < 15;
    }
    // No context takeover on our side is what the client asked for, or what we choose; on the
    // client's side, what we ask for (a server may always include it) or what the client offered.
    a.server_no_context_takeover = seen_server_nct || !options.server_context_takeover;
    a.client_no_context_takeover = seen_client_nct || !options.client_context_takeover;
    return a;
}

}  // namespace detail

/// The agreement for a request whose Sec-WebSocket-Extensions fields are `field_values` (each a whole
/// field value, in order; several fields read as one list): the first permessage-deflate offer that
/// can be honoured. Nothing when compression is off, or no offer can be (the connection then runs
/// uncompressed). Other extensions are ignored.
inline std::optional<deflate_agreement> negotiate_deflate(const std::vector<std::string_view>& field_values,
                                                          const compression_options& options) {
    if (!options.enabled) return std::nullopt;
    for (const std::string_view value : field_values)
        for (const detail::extension_offer& offer : detail::parse_extension_list(value)) {
            if (offer.name != "permessage-deflate") continue;
            if (auto agreed = detail::judge_offer(offer, options)) return agreed;
        }
    return std::nullopt;
}

/// What the client's offer names: the Sec-WebSocket-Extensions line, CRLF included.
inline std::string deflate_offer_field(const client_compression_options& o) {
    std::string line = "Sec-WebSocket-Extensions: permessage-deflate";
    if (o.client_no_context_takeover) line += "; client_no_context_takeover";
    if (o.server_no_context_takeover) line += "; server_no_context_takeover";
    if (o.server_max_window_bits < 15) line += "; server_max_window_bits=" + std::to_string(o.server_max_window_bits);
    // It tells the server it may ask us for a smaller window. Left out, our compressor still keeps
    // to client_max_window_bits: any window up to 15 is one the server can read.
    if (o.offer_client_max_window_bits) {
        line += "; client_max_window_bits";
        if (o.client_max_window_bits < 15) line += "=" + std::to_string(o.client_max_window_bits);
    }
    line += "\r\n";
    return line;
}

/// Why client_compression_options cannot be offered, or empty when they can.
inline std::string client_compression_problem(const client_compression_options& o) {
    if (!o.enabled) return {};
    if (o.client_max_window_bits < 9 || o.client_max_window_bits > 15) return "client_max_window_bits must be 9 to 15";
    if (o.server_max_window_bits < 8 || o.server_max_window_bits > 15) return "server_max_window_bits must be 8 to 15";
    if (o.level < 1 || o.level > 9) return "the compression level must be 1 to 9";
    if (o.mem_level < 1 || o.mem_level > 9) return "mem_level must be 1 to 9";
    return {};
}

/// The server's answer to a client's offer: what was agreed (nothing: the server declined, and the
/// connection runs uncompressed), or why the answer fails the handshake.
struct deflate_answer {
    std::optional<deflate_agreement> agreed;
    std::string error;
};

/// Holds the response's Sec-WebSocket-Extensions fields `field_values` to what the client offered
/// (`offered`; null when it offered nothing), as RFC 7692 section 7.1 tells a client to: an extension
/// that was not offered, a second permessage-deflate, an unknown or repeated parameter, a window
/// outside 8..15 or larger than the offer's, client_max_window_bits when it was not offered or
/// without a value, and the lack of a server_no_context_takeover that was asked for all fail.
inline deflate_answer judge_deflate_response(const std::vector<std::string_view>& field_values,
                                             const client_compression_options* offered) {
    deflate_answer out;
    auto fail = [&](std::string why) {
        out.agreed.reset();
        out.error = "handshake failed: " + std::move(why);
        return out;
    };
    bool answered = false;
    for (const std::string_view value : field_values) {
        for (const detail::extension_offer& element : detail::parse_extension_list(value)) {
            if (element.name != "permessage-deflate" || offered == nullptr)
                return fail("the server chose an extension that was not offered: " + std::string(http::detail::trim_ows(value)));
            if (answered) return fail("the server answered permessage-deflate twice");
            answered = true;
            if (!element.well_formed) return fail("malformed permessage-deflate response: " + std::string(value));
            deflate_agreement a;
            a.client_max_window_bits = offered->client_max_window_bits;
            bool seen_server_nct = false, seen_client_nct = false, seen_server_bits = false, seen_client_bits = false;
            for (const detail::extension_param& p : element.params) {
                bool* seen = nullptr;
                if (p.name == "server_no_context_takeover" || p.name == "client_no_context_takeover") {
                    seen = p.name.front() == 's' ? &seen_server_nct : &seen_client_nct;
                    if (p.value) return fail(p.name + " takes no value");
                } else if (p.name == "server_max_window_bits" || p.name == "client_max_window_bits") {
                    const bool server_side = p.name.front() == 's';
                    seen = server_side ? &seen_server_bits : &seen_client_bits;
                    if (!server_side && !offered->offer_client_max_window_bits)
                        return fail("client_max_window_bits was not offered");
                    if (!p.value) return fail(p.name + " needs a value in a response");
                    const auto bits = detail::parse_window_bits(*p.value);
                    if (!bits) return fail(p.name + "=" + *p.value + " is not 8 to 15");
                    const int most = server_side ? offered->server_max_window_bits : offered->client_max_window_bits;
                    if (*bits > most) return fail(p.name + "=" + *p.value + " is more than was offered");
                    (server_side ? a.server_max_window_bits : a.client_max_window_bits) = *bits;
                } else {
                    return fail("permessage-deflate parameter that was not offered: " + p.name);
                }
                if (*seen) return fail(p.name + " given twice");
                *seen = true;
            }
            if (offered->server_no_context_takeover && !seen_server_nct)
                return fail("the server did not agree to server_no_context_takeover");
            a.server_no_context_takeover = seen_server_nct;
            // The client's own offer of client_no_context_takeover binds it even when the answer
            // leaves it out.
            a.client_no_context_takeover = seen_client_nct || offered->client_no_context_takeover;
            a.server_window_named = seen_server_bits;
            a.client_window_named = seen_client_bits;
            out.agreed = a;
        }
    }
    return out;
}

/// The response's Sec-WebSocket-Extensions line (CRLF included) naming exactly what was agreed.
inline std::string deflate_response_field(const deflate_agreement& a) {
    std::string line = "Sec-WebSocket-Extensions: permessage-deflate";
    if (a.server_no_context_takeover) line += "; server_no_context_takeover";
    if (a.client_no_context_takeover) line += "; client_no_context_takeover";
    if (a.server_window_named) line += "; server_max_window_bits=" + std::to_string(a.server_max_window_bits);
    if (a.client_window_named) line += "; client_max_window_bits=" + std::to_string(a.client_max_window_bits);
    line += "\r\n";
    return line;
}

}  // namespace starling
// ---- end starling/protocol/permessage_deflate.hpp ----

namespace starling {

class transport;  // runtime/transport.hpp: what a listening port speaks

/// What happens to a connection whose typed query parameters are missing or invalid.
enum class invalid_query_policy {
    reject,  // answer the upgrade request with HTTP 400 and the message as text/plain body
    close,   // accept, then close at once with 1008 and the message as reason (browsers can read it)
};

/// What a broadcast does for a receiver whose outbound queue is over its high-water mark (a client
/// that reads slower than the server sends).
enum class slow_consumer_policy {
    close,  // close that connection with 1008 "slow consumer"; its unsent backlog is dropped (default)
    drop,   // skip this message for that receiver only; it stays connected and gets later messages
};

/// What a message over a connection's rate limit does.
enum class rate_limit_policy {
    close,  // close the connection with 1008 "rate limit exceeded" (default)
    drop,   // drop that message unseen by the handler, count it, and keep the connection
};

/// A per-connection message rate limit: token buckets of messages and of payload bytes. Off by default
/// (every rate 0): what a fair rate is depends on the application.
struct message_rate_limit {
    /// Messages per second, sustained; 0: the count is not limited.
    double messages_per_second = 0;
    /// Messages that may arrive at once above that rate (the bucket's size); 0: one second's worth.
    double message_burst = 0;
    /// Payload bytes per second, sustained; 0: bytes are not limited.
    double bytes_per_second = 0;
    /// Bytes that may arrive at once above that rate; 0: one second's worth.
    double byte_burst = 0;
    rate_limit_policy policy = rate_limit_policy::close;

    bool enabled() const noexcept { return messages_per_second > 0 || bytes_per_second > 0; }
};

/// Per-connection limits of a WebSocket endpoint.
struct websocket_options {
    /// Largest message accepted, inclusive (1 MiB); a larger one closes with 1009.
    std::uint64_t max_message_size = default_max_message_size;
    /// Largest single frame accepted, inclusive; 0 means the message limit.
    std::uint64_t max_frame_size = 0;
    /// Received messages buffered for a handler that has not asked for them yet; while the inbox is
    /// full the server stops reading from that client (TCP backpressure), nothing grows.
    std::size_t inbox_messages = 64;
    /// The same bound in bytes of memory (1 MiB): the inbox is full when either is reached. One
    /// message always fits, however large (up to max_message_size).
    std::size_t max_inbox_bytes = 1024 * 1024;
    /// Missing or invalid typed query parameters: 400 before the upgrade (default), or 1008 after it.
    invalid_query_policy invalid_query = invalid_query_policy::reject;
    /// How long a closing connection may take, from our close frame (or the peer's) to the end of TCP:
    /// a peer that never answers our close frame is dropped after it.
    std::chrono::milliseconds close_timeout = std::chrono::seconds(5);
    /// High-water mark of the outbound queue, in bytes of memory: each frame's payload plus a fixed
    /// overhead per frame (about a hundred bytes), control frames included. Above it,
    /// `co_await send...` suspends until the writer has drained the queue back to it, and a
    /// broadcast applies `slow_consumer`.
    std::size_t max_queued_bytes = 1024 * 1024;
    /// What a broadcast does for a receiver over max_queued_bytes.
    slow_consumer_policy slow_consumer = slow_consumer_policy::close;
    /// A connection silent this long (no frame, not even a pong) gets a ping; if it stays silent for
    /// another idle_timeout, it is closed with 1001 "idle timeout" (and dropped after close_timeout if
    /// it does not answer that either). 0 turns pings off.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
    /// A client whose socket takes no byte for this long while data waits for it (it stopped reading)
    /// is closed with 1008 "write timeout", its unsent backlog dropped; if even the close frame cannot
    /// be written, the connection is dropped close_timeout later. 0 turns the check off.
    std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
    /// A message must arrive whole within this time of its first bytes; one that does not (a peer
    /// trickling a large frame to hold memory) is closed with 1008 "message timeout". 0 turns the
    /// check off.
    std::chrono::milliseconds message_timeout = std::chrono::seconds(30);
    /// permessage-deflate (RFC 7692): on by default, without context takeover either way, for
    /// messages of 256 bytes and more. See compression_options.
    compression_options compression;
    /// Messages a client may send per second, and bytes (see message_rate_limit): off by default.
    message_rate_limit rate_limit;
};

/// Server-wide settings: app.start(server_options{...}).
struct server_options {
    /// TCP port; 0 picks a free one (read it back with app.port()).
    std::uint16_t port = 8080;
    /// Address to listen on.
    const char* host = "0.0.0.0";
    /// Worker threads, each with its own event loop; 0 means one per hardware thread.
    unsigned workers = 0;
    /// Largest request head (request line and headers) accepted: larger gets 431.
    std::size_t max_header_bytes = 8 * 1024;
    /// Time a client has to send its whole handshake request before it is dropped; on a TLS port, its
    /// TLS handshake counts in the same time.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
    /// Open connections (handshaking or upgraded) at most; connections over it are answered 503.
    std::size_t max_connections = 10000;
    /// Open connections (handshaking or upgraded) from one IP address at most; one more is answered
    /// 429 before the upgrade. 0 (the default) sets no cap: many users can share one address behind
    /// a NAT or a proxy, so a cap is for the deployment to choose.
    std::size_t max_connections_per_ip = 0;
    /// On shutdown, how long to wait for close handshakes before dropping what is left. Connections
    /// still open then are dropped (their TCP closed, on_close run with 1006).
    std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(5);
    /// What `port` speaks: empty for plain ws://; starling::tls(tls_options) from <starling/tls.hpp>
    /// for wss://. More ports, each with its own transport: app.add_listener().
    std::shared_ptr<starling::transport> transport;
};

/// The lowest TLS version a TLS listener accepts.
enum class tls_version { v1_2, v1_3 };

/// A TLS listener's certificate and key (<starling/tls.hpp>): PEM files, read when the app listens and
/// again on app.reload_tls().
struct tls_options {
    /// The server's certificate first, then the intermediates that lead to a trusted root.
    std::string certificate_chain_file;
    /// Its private key; encrypted keys need `private_key_password`.
    std::string private_key_file;
    std::string private_key_password;
    /// TLS 1.2 and later by default; TLS 1.0 and 1.1 are never accepted.
    tls_version min_version = tls_version::v1_2;
};

}  // namespace starling
// ---- end starling/options.hpp ----

// ---- begin starling/protocol/message.hpp ----
// A received WebSocket message with its type.

#include <string>       // std::string payload
#include <string_view>  // std::string_view accessors

namespace starling {

enum class message_type { text, binary };

struct message {
    message_type type = message_type::text;
    std::string data;

    bool is_text() const noexcept { return type == message_type::text; }
    bool is_binary() const noexcept { return type == message_type::binary; }
    std::string_view view() const noexcept { return data; }
};

}  // namespace starling
// ---- end starling/protocol/message.hpp ----

// ---- begin starling/protocol/websocket_disconnect.hpp ----
// The exception a receive (or send) throws once the connection has ended.

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
// ---- end starling/protocol/websocket_disconnect.hpp ----

// ---- begin starling/session/async_event.hpp ----
// Wake-up signals for coroutines on one executor, built on a timer so waiting allocates nothing beyond
// Asio's recycled operation memory: async_event for one waiter with an optional deadline,
// async_signal for any number of waiters.

#include <asio/use_awaitable.hpp>   // asio::use_awaitable
#include <cstddef>                  // std::size_t waiter count


// ---- begin starling/session/engine_clock.hpp ----
// The clock of the engine's protocol deadlines: the handshake and close timeouts, idle pings and the
// idle close, the write-stall and message timeouts, receive_for's deadline, the rate limit's buckets
// and the shutdown's wait. It is the steady clock plus an offset that only a test moves (the
// in-process test client's advance(), <starling/testing.hpp>), so that a test can make a minute pass
// at once and see the idle ping go out without waiting for it.
//
// The offset is one per process, not one per loop or connection: Asio's timer queue asks the clock
// type itself for now() (a static function), so a clock cannot carry state of its own. It only ever
// moves forward, since everything that measures with it (the timer heap, deadlines computed earlier,
// the token buckets) assumes time never goes back. Reading it costs one relaxed atomic load.
//
// Its time_point is a type of its own, not the steady clock's: a deadline computed from
// steady_clock::now() would be early by the offset once a test moved it, and the compiler now
// refuses the mix. Code that measures real time (the client's dial, log throttling, the accept
// back-off) keeps the steady clock; from_real() converts a real deadline where the two meet.

#include <asio/basic_waitable_timer.hpp>    // asio::basic_waitable_timer on this clock
#include <atomic>                           // std::atomic offset
#include <chrono>                           // std::chrono::steady_clock underneath

namespace starling::detail {

struct engine_clock {
    using duration = std::chrono::steady_clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<engine_clock, duration>;
    static constexpr bool is_steady = true;

    static time_point now() noexcept {
        return time_point(std::chrono::steady_clock::now().time_since_epoch() +
                          duration(offset_.load(std::memory_order_relaxed)));
    }

    /// The engine's time at the real (steady clock) instant `t`; max() stays max().
    static time_point from_real(std::chrono::steady_clock::time_point t) noexcept {
        if (t == std::chrono::steady_clock::time_point::max()) return time_point::max();
        return time_point(t.time_since_epoch() + duration(offset_.load(std::memory_order_relaxed)));
    }

    /// Moves every engine deadline `by` closer, for the whole process. A zero or negative `by` does
    /// nothing: time does not go back. Timers already due fire the next time their loop looks at its
    /// timers (the test client makes its loop look at once).
    static void advance(duration by) noexcept {
        if (by > duration::zero()) offset_.fetch_add(by.count(), std::memory_order_relaxed);
    }

private:
    static inline std::atomic<rep> offset_{0};
};

/// The engine's timers: every wait on a protocol deadline.
using engine_timer = asio::basic_waitable_timer<engine_clock>;

}  // namespace starling::detail
// ---- end starling/session/engine_clock.hpp ----

// ---- begin starling/task.hpp ----
// The coroutine type of Starling's API: handlers, callbacks and every receive/send are task<>s.

#include <asio/awaitable.hpp>               // asio::awaitable, the coroutine type Asio's I/O composes with
#include <asio/experimental/as_tuple.hpp>  // as_tuple: an operation's error code as a value
#include <asio/use_awaitable.hpp>           // asio::use_awaitable
#include <type_traits>         // std::false_type / std::true_type for is_task

namespace starling {

/// A coroutine returning T. It is Asio's awaitable, so a handler can co_await Starling's operations and
/// any Asio operation (timers, other sockets) with `asio::use_awaitable`.
template <class T = void>
using task = asio::awaitable<T>;

template <class T>
struct is_task : std::false_type {};
template <class T, class Executor>
struct is_task<asio::awaitable<T, Executor>> : std::true_type {};

template <class T>
inline constexpr bool is_task_v = is_task<T>::value;

namespace detail {

/// Completion token for `co_await op(..., as_tuple_awaitable)`: yields (error_code, result...) instead
/// of throwing, because a dropped peer is routine for a server, not exceptional.
inline constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace detail
}  // namespace starling
// ---- end starling/task.hpp ----

namespace starling::detail {

/// notify() wakes the coroutine suspended in wait(); a notify with nobody waiting is a no-op, so
/// callers re-check their condition in a loop (`while (!ready) co_await event.wait();`). Safe because
/// everything touching one event runs on one executor: nothing runs between the check and the wait.
class async_event {
public:
    template <class Executor>
    explicit async_event(const Executor& executor) : timer_(executor) {}

    /// Suspends until notify() (or until the waiter's coroutine is cancelled). No coroutine of its own,
    /// since an idle connection waits here all the time: the timer's own operation is handed back.
    auto wait() {
        timer_.expires_at(engine_clock::time_point::max());
        waiting_ = true;
        return timer_.async_wait(as_tuple_awaitable);
    }

    /// Suspends until notify(). Returns false if `deadline` passed first.
    task<bool> wait_until(engine_clock::time_point deadline) {
        timer_.expires_at(deadline);
        waiting_ = true;
        auto [ec] = co_await timer_.async_wait(as_tuple_awaitable);
        waiting_ = false;
        co_return ec == asio::error::operation_aborted;  // cancelled by notify(), not expired
    }

    /// Cheap when nobody waits (the common case on a busy connection): no timer operation at all.
    void notify() noexcept {
        if (!waiting_) return;
        waiting_ = false;  // the waiter is woken; further notifies before it runs have nothing to do
        timer_.cancel();
    }

private:
    engine_timer timer_;
    bool waiting_ = false;
};

/// notify_all() wakes every coroutine suspended in wait() (several senders may wait for the same
/// queue to drain). No deadline: re-arming the timer for one waiter would cancel the others' waits.
class async_signal {
public:
    template <class Executor>
    explicit async_signal(const Executor& executor) : timer_(executor) {}

    task<> wait() {
        if (waiters_++ == 0) timer_.expires_at(engine_clock::time_point::max());
        co_await timer_.async_wait(as_tuple_awaitable);
        --waiters_;
    }

    void notify_all() noexcept {
        if (waiters_ != 0) timer_.cancel();
    }

private:
    engine_timer timer_;
    std::size_t waiters_ = 0;
};

}  // namespace starling::detail
// ---- end starling/session/async_event.hpp ----

// ---- begin starling/session/inbox.hpp ----
// Messages received and not yet asked for by the handler, bounded by count and by bytes: while it is
// full the reader stops reading the socket, so a handler that falls behind slows its client down
// (TCP backpressure) instead of growing memory.

#include <cstddef>   // std::size_t
#include <optional>  // std::optional pop
#include <utility>   // std::move


namespace starling::detail {

class inbox {
public:
    inbox(std::size_t max_messages, std::size_t max_bytes) noexcept : max_messages_(max_messages), max_bytes_(max_bytes) {}

    void set_limits(std::size_t max_messages, std::size_t max_bytes) noexcept {
        max_messages_ = max_messages;
        max_bytes_ = max_bytes;
    }

    void push(message m) {
        bytes_ += cost(m);
        messages_.push_back(std::move(m));
    }

    std::optional<message> pop() {
        if (messages_.empty()) return std::nullopt;
        message m = std::move(messages_.front());
        messages_.pop_front();
        bytes_ -= cost(m);
        return m;
    }

    /// Full by count or by bytes; one message always fits, however large.
    bool full() const noexcept {
        return messages_.size() >= max_messages_ || (bytes_ >= max_bytes_ && !messages_.empty());
    }

    bool empty() const noexcept { return messages_.empty(); }
    std::size_t size() const noexcept { return messages_.size(); }
    /// What the waiting messages cost: their payloads' storage and their slots.
    std::size_t bytes() const noexcept { return bytes_; }

    void clear() {
        messages_.clear();
        bytes_ = 0;
    }

private:
    static std::size_t cost(const message& m) noexcept { return sizeof(message) + m.data.capacity(); }

    ring<message> messages_;
    std::size_t bytes_ = 0;
    std::size_t max_messages_;
    std::size_t max_bytes_;
};

}  // namespace starling::detail
// ---- end starling/session/inbox.hpp ----

// ---- begin starling/session/message_compression.hpp ----
// One connection's side of permessage-deflate, on a server or a client: what the handshake agreed,
// seen as what we send and what we receive, and the codecs that needs. Without context takeover
// (the server's default, both ways) it holds no zlib state at all: it borrows its thread's
// compressor and inflater for one message at a time (protocol/deflate_codec.hpp). With context
// takeover it owns them, made on first use and kept for the connection's life, because the window
// must carry over from one message to the next.

#include <algorithm>    // std::max window
#include <cstddef>      // std::size_t
#include <memory>       // std::unique_ptr owned codecs
#include <string>       // std::string payloads
#include <string_view>  // std::string_view input
#include <utility>      // std::swap


namespace starling::detail {

/// What our compressor is tuned with beyond what was negotiated: the endpoint's or the client's
/// settings.
struct compressor_tuning {
    std::size_t threshold = 256;
    int level = 1;
    int mem_level = 8;
};
inline compressor_tuning tuning_of(const compression_options& o) noexcept { return {o.threshold, o.level, o.mem_level}; }
inline compressor_tuning tuning_of(const client_compression_options& o) noexcept { return {o.threshold, o.level, o.mem_level}; }

class message_compression {
public:
    /// The handshake agreed to `agreement`, and this end of the connection is `local`: the server's
    /// parameters are our compressor's on a server and our inflater's on a client.
    void agree(const deflate_agreement& agreement, role local, const compressor_tuning& tuning) {
        if constexpr (deflate_available) {
            const direction server{agreement.server_max_window_bits, agreement.server_no_context_takeover};
            const direction client{agreement.client_max_window_bits, agreement.client_no_context_takeover};
            sending_ = local == role::server ? server : client;
            receiving_ = local == role::server ? client : server;
            active_ = true;
            threshold_ = tuning.threshold;
            level_ = tuning.level;
            mem_level_ = tuning.mem_level;
        }
    }

    /// Compression was negotiated: RSV1 may arrive, and our messages may be compressed.
    bool active() const noexcept { return active_; }

    /// Whether a payload of `size` bytes is sent compressed. Never when we were held to an 8-bit
    /// window: zlib cannot keep to one, and a message may always go uncompressed.
    bool worth_compressing(std::size_t size) const noexcept {
        return active_ && size >= threshold_ && sending_.window_bits >= 9;
    }

#ifndef STARLING_NO_DEFLATE
    /// What our compressor's output depends on, for sharing a broadcast's compressed form.
    deflate_setting setting() const noexcept { return {sending_.window_bits, mem_level_, level_}; }
    /// True when this connection can take a broadcast compressed once for everyone with its setting:
    /// no context takeover on our side, so each message stands alone.
    bool shares_compressed_broadcasts() const noexcept { return active_ && sending_.no_context_takeover; }

    /// Compresses `payload` (replacing it; its old storage goes to `pool`).
    void compress(std::string& payload, payload_pool& pool) {
        std::string out = pool.take(payload.size() / 2 + 64);
        if (!sending_.no_context_takeover) {
            if (!own_deflater_) own_deflater_ = std::make_unique<deflater>(setting());
            own_deflater_->compress(payload, out, true);
        } else {
            shared_deflater(setting()).compress(payload, out, false);
        }
        std::swap(payload, out);
        pool.give(std::move(out));
    }

    /// Inflates a compressed message into `out`, at most `limit` bytes.
    inflate_status inflate(std::string_view in, std::string& out, std::size_t limit) {
        if (receiving_.no_context_takeover) return shared_inflater().decompress(in, out, limit, false);
        // Asked for 8 bits, zlib's compressors use 9: an inflater of 9 reads both.
        if (!own_inflater_) own_inflater_ = std::make_unique<inflater>(std::max(receiving_.window_bits, 9));
        return own_inflater_->decompress(in, out, limit, true);
    }
#else
    void compress(std::string&, payload_pool&) {}
    inflate_status inflate(std::string_view, std::string&, std::size_t) { return inflate_status::corrupt; }
#endif

private:
    /// One way of the connection: the window its compressor keeps to, and whether each message stands
    /// alone.
    struct direction {
        int window_bits = 15;
        bool no_context_takeover = true;
    };
    bool active_ = false;
    direction sending_;
    direction receiving_;
    std::size_t threshold_ = 0;
    int level_ = 1;
    int mem_level_ = 8;
#ifndef STARLING_NO_DEFLATE
    std::unique_ptr<deflater> own_deflater_;  // with context takeover on our side only
    std::unique_ptr<inflater> own_inflater_;  // with context takeover on the peer's side only
#endif
};

}  // namespace starling::detail
// ---- end starling/session/message_compression.hpp ----

// ---- begin starling/session/rate_limiter.hpp ----
// A connection's message rate limit: two token buckets, one counting messages and one counting bytes,
// refilled continuously at their rates up to their bursts. A message passes when both buckets hold
// enough; it then takes its share from both. A message larger than the byte burst passes when that
// bucket is full and leaves it in debt, so a big message is slowed down, not refused forever.

#include <algorithm>  // std::min
#include <chrono>     // std::chrono::duration<double> of a refill
#include <cstddef>    // std::size_t


namespace starling::detail {

class token_bucket {
public:
    /// `rate` tokens per second, at most `burst` held (0: one second's worth). Starts full.
    token_bucket(double rate, double burst, engine_clock::time_point now) noexcept
        : rate_(rate), capacity_(burst > 0 ? burst : rate), tokens_(capacity_), refilled_at_(now) {}

    bool limited() const noexcept { return rate_ > 0; }

    /// Whether `cost` tokens are there (all of the bucket for a cost above its size).
    bool has(double cost, engine_clock::time_point now) noexcept {
        if (!limited()) return true;
        refill(now);
        return tokens_ >= std::min(cost, capacity_);
    }
    void take(double cost) noexcept {
        if (limited()) tokens_ -= cost;
    }

private:
    void refill(engine_clock::time_point now) noexcept {
        if (now <= refilled_at_) return;
        const double seconds = std::chrono::duration<double>(now - refilled_at_).count();
        tokens_ = std::min(capacity_, tokens_ + seconds * rate_);
        refilled_at_ = now;
    }

    double rate_;
    double capacity_;
    double tokens_;
    engine_clock::time_point refilled_at_;
};

class message_rate_limiter {
public:
    message_rate_limiter(const message_rate_limit& limit, engine_clock::time_point now) noexcept
        : messages_(limit.messages_per_second, limit.message_burst, now), bytes_(limit.bytes_per_second, limit.byte_burst, now) {}

    /// True when a message of `size` bytes is within the limit now (and takes its tokens); false when
    /// it is over (and takes none).
    bool admit(std::size_t size, engine_clock::time_point now) noexcept {
        const auto bytes = static_cast<double>(size);
        if (!messages_.has(1, now) || !bytes_.has(bytes, now)) return false;
        messages_.take(1);
        bytes_.take(bytes);
        return true;
    }

private:
    token_bucket messages_;
    token_bucket bytes_;
};

}  // namespace starling::detail
// ---- end starling/session/rate_limiter.hpp ----

// ---- begin starling/session/tcp_stream.hpp ----
// A TCP socket as the stream a connection runs on (session/connection.hpp).
//
// What the engine asks of a stream, and any stream type must offer (session/memory_stream.hpp is the
// other one):
//   get_executor()                         the event loop its operations complete on
//   async_read_some(buffer, token)         wait for input (Asio's AsyncReadStream)
//   async_write_some(buffers, token)       Asio's AsyncWriteStream, for the handshake's answer
//   read_some(buffer, ec)                  what is there now, without waiting: would_block if nothing
//   write_some(buffers, ec)                as much as is taken now, without waiting: would_block if none
//   async_wait_writable(handler)           handler(ec) once write_some can take bytes again
//   shutdown_send(ec)                      no more output; the peer reads an end of stream
//   close(ec)                              every pending and later operation fails at once
//   remote_address()                       the peer, for websocket::client()
// The engine writes synchronously until the kernel refuses and waits only then, so the socket is
// non-blocking from the start.

#include <asio/ip/tcp.hpp>                  // asio::ip::tcp::socket
#include <cstdint>                          // std::uint16_t port
#include <span>                             // std::span of gathered buffers
#include <string>                           // std::string address
#include <system_error>                     // std::error_code
#include <utility>                          // std::move

namespace starling {

/// The peer's address.
struct client_address {
    std::string ip;
    std::uint16_t port = 0;
};

namespace detail {

class tcp_stream {
public:
    using executor_type = asio::ip::tcp::socket::executor_type;

    explicit tcp_stream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
        std::error_code ignored;
        socket_.non_blocking(true, ignored);
        // Frames are written whole, in gathered writes: Nagle's delay would only hold them back.
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    }

    executor_type get_executor() noexcept { return socket_.get_executor(); }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return socket_.async_read_some(buffers, std::forward<Token>(token));
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return socket_.async_write_some(buffers, std::forward<Token>(token));
    }

    std::size_t read_some(asio::mutable_buffer buffer, std::error_code& ec) { return socket_.read_some(buffer, ec); }

    // A span, not a vector: the operation copies its buffer sequence, and copying a vector would
    // allocate.
    std::size_t write_some(std::span<const asio::const_buffer> buffers, std::error_code& ec) {
        return socket_.write_some(buffers, ec);
    }

    template <class Handler>
    void async_wait_writable(Handler&& handler) {
        socket_.async_wait(asio::socket_base::wait_write, std::forward<Handler>(handler));
    }

    void shutdown_send(std::error_code& ec) { socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec); }
    void close(std::error_code& ec) { socket_.close(ec); }

    client_address remote_address() const {
        std::error_code ec;
        const auto remote = socket_.remote_endpoint(ec);
        if (ec) return {};
        return {remote.address().to_string(), remote.port()};
    }

    asio::ip::tcp::socket& socket() noexcept { return socket_; }

private:
    asio::ip::tcp::socket socket_;
};

}  // namespace detail
}  // namespace starling
// ---- end starling/session/tcp_stream.hpp ----

// ---- begin starling/session/uuid.hpp ----
// Connection ids: random (version 4) UUID strings.

#include <array>    // std::array hex digits
#include <cstdint>  // std::uint64_t random words
#include <random>   // std::random_device seed, std::mt19937_64 generator
#include <string>   // std::string result

namespace starling::detail {

/// A random UUID v4 in its 36-character text form. Each thread has its own generator, seeded from the
/// OS, so ids are unpredictable across runs and no lock is taken.
inline std::string make_uuid_v4() {
    thread_local std::mt19937_64 generator{[] {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
        return std::mt19937_64(seed);
    }()};
    std::array<std::uint8_t, 16> bytes{};
    const std::uint64_t high = generator();
    const std::uint64_t low = generator();
    for (int i = 0; i < 8; ++i) {
        bytes[i] = static_cast<std::uint8_t>(high >> (8 * i));
        bytes[8 + i] = static_cast<std::uint8_t>(low >> (8 * i));
    }
    bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x40);  // version 4
    bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
    constexpr char hex[] = "0123456789abcdef";
    std::string text;
    text.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
        text.push_back(hex[bytes[i] >> 4]);
        text.push_back(hex[bytes[i] & 0x0F]);
    }
    return text;
}

}  // namespace starling::detail
// ---- end starling/session/uuid.hpp ----

// ---- begin starling/session/worker_buffers.hpp ----
// What the connections of one event loop share: one receive buffer, and the spare payload strings
// that finished messages leave behind.
//
// A connection reads into the shared receive buffer only when it can parse what arrives at once, and
// keeps for itself only what it cannot parse yet (bytes behind a message its handler has no room
// for). So an idle connection, or one between messages, holds no receive buffer of its own: what a
// connection costs follows what it is doing, not how many connections there are.
//
// Spare payloads close the loop that would otherwise allocate a string per message: an echo hands the
// received string to send_text, the writer gives it back here once written, and the reader fills it
// with the next message of any connection of the loop. Kept per loop, not per connection, so a
// drained connection holds none, and large ones are reused rather than freed and faulted in again
// (an allocator that returns a freed 1 MiB block to the kernel makes the next one cost 256 page
// faults).

#include <asio/execution_context.hpp>       // asio::execution_context::service: state per event loop
#include <cstddef>                          // std::size_t
#include <span>                             // std::span view of the buffer
#include <vector>                           // std::vector storage


namespace starling::detail {

/// Found with `asio::use_service<worker_buffers>(context)`. Everything on one loop runs on one thread,
/// and a connection uses the receive buffer only between two suspensions, so one buffer serves all.
class worker_buffers : public asio::execution_context::service {
public:
    using key_type = worker_buffers;
    static inline asio::execution_context::id id;

    explicit worker_buffers(asio::execution_context& context) : asio::execution_context::service(context) {}

    /// The receive buffer, allocated on first use. Its contents are only good until the user's next
    /// suspension: another connection of the loop may read into it then.
    std::span<char> read_buffer() {
        if (read_buffer_.empty()) read_buffer_.resize(read_buffer_size);
        return read_buffer_;
    }

    payload_pool& payloads() noexcept { return payloads_; }

    /// Big enough for many small frames, or a large frame's first 64 KiB, per read.
    static constexpr std::size_t read_buffer_size = 64 * 1024;
    /// Spare payloads kept per loop: a few large messages' worth.
    static constexpr std::size_t spare_payload_strings = 4096;  // many connections with messages in flight
    static constexpr std::size_t spare_payload_bytes = 4 * 1024 * 1024;

private:
    void shutdown() override {}

    std::vector<char> read_buffer_;
    payload_pool payloads_{spare_payload_strings, spare_payload_bytes};
};

}  // namespace starling::detail
// ---- end starling/session/worker_buffers.hpp ----

namespace starling {

/// What ws.stats() reports about one connection.
struct connection_stats {
    std::size_t buffered_bytes = 0;   // the outbound queue and the inbox, in bytes of memory
    std::uint64_t messages_in = 0;    // messages received
    std::uint64_t messages_out = 0;   // text and binary messages queued for the client
    /// The round trip of the last ping the client answered (the server pings idle connections).
    std::optional<std::chrono::steady_clock::duration> last_rtt;
    std::chrono::steady_clock::duration age{};  // since the upgrade
};

}  // namespace starling

namespace starling::detail {

/// Where a connection is in its life. It only ever moves forward (see advance()).
enum class connection_status : std::uint8_t {
    handshake,     // reading the upgrade request: only the handshake deadline applies
    open,          // messages flow both ways
    closing,       // a close has begun (either side): nothing new is delivered to the handler
    close_queued,  // our close frame is queued: nothing may be sent after it
    tearing_down,  // the reader has ended and on_close has run (a dropped peer gets here without a
                   // close frame): the writer sends what is left, then the stream closes
    closed,        // over (or aborted, while run() still finishes): the stream is closed, the timer off
};

/// The writer's state: see session/connection.hpp.
enum class writer_status : std::uint8_t {
    idle,               // nothing to write, or a flush is due at the end of this turn
    awaiting_writable,  // the kernel refused bytes; waiting until it takes more
    finished,           // the queue is written up to our close frame, or teardown emptied it
    failed,             // the stream failed: what is queued can never be written
};

class connection_base : public std::enable_shared_from_this<connection_base> {
public:
    connection_base(const connection_base&) = delete;
    connection_base& operator=(const connection_base&) = delete;
    virtual ~connection_base() = default;

    // ---- Identity (set by upgraded()) -------------------------------------------------------------

    const std::string& id() const noexcept { return id_; }
    const starling::query_params& query_params() const noexcept { return query_; }
    const http::headers& headers() const noexcept { return headers_; }
    const client_address& client() const noexcept { return client_; }
    std::string_view path() const noexcept { return path_; }
    /// True from the upgrade until the connection starts closing (either side).
    bool is_open() const noexcept { return status_ == connection_status::open; }
    connection_status status() const noexcept { return status_; }
    const websocket_options& options() const noexcept { return *options_; }
    /// The event loop this connection lives on; its coroutines must run there.
    asio::io_context& context() const noexcept { return context_; }
    /// Bytes of memory the outbound queue holds (what max_queued_bytes limits).
    std::size_t queued_bytes() const noexcept { return queue_.memory(); }

    connection_stats stats() const {
        connection_stats s;
        s.buffered_bytes = queue_.memory() + inbox_.bytes();
        s.messages_in = messages_in_;
        s.messages_out = messages_out_;
        if (last_rtt_.count() >= 0) s.last_rtt = last_rtt_;
        s.age = engine_clock::now() - opened_at_;
        return s;
    }

    // ---- Receiving --------------------------------------------------------------------------------
    // One receive at a time per connection. Messages the peer sent before it closed are still
    // delivered; after them, and at once when the server closed, receives throw websocket_disconnect.

    task<message> receive() {
        caught_up();
        for (;;) {
            if (auto m = pop_inbox()) co_return std::move(*m);
            co_await inbox_ready_.wait();
        }
    }

    /// The next text message. One coroutine from the handler's call to its wait, not three: an idle
    /// connection keeps this chain alive all the time.
    task<std::string> receive_text() {
        caught_up();
        for (;;) {
            if (auto m = pop_inbox()) {
                if (m->is_text()) co_return std::move(m->data);
                co_await close(static_cast<std::uint16_t>(close_code::unsupported_data), "expected a text message");
                throw websocket_disconnect(close_code_, close_reason_);
            }
            co_await inbox_ready_.wait();
        }
    }

    task<std::optional<message>> receive_for(engine_clock::duration timeout) {
        caught_up();
        const auto deadline = engine_clock::now() + timeout;
        for (;;) {
            if (auto m = pop_inbox()) co_return std::move(*m);
            if (!co_await inbox_ready_.wait_until(deadline)) {
                if (auto m = pop_inbox()) co_return std::move(*m);
                co_return std::nullopt;
            }
        }
    }

    /// The text of `m`. A binary message where text was expected is a protocol mismatch: the
    /// connection closes with 1003 (unsupported data) and this throws websocket_disconnect.
    task<std::string> expect_text(message m) {
        if (m.is_text()) co_return std::move(m.data);
        co_await close(static_cast<std::uint16_t>(close_code::unsupported_data), "expected a text message");
        throw websocket_disconnect(close_code_, close_reason_);
    }

    // ---- Sending ----------------------------------------------------------------------------------

    /// Queues the frame, then waits while the queue is over its high-water mark: a handler that sends
    /// faster than its client reads is slowed to the client's pace instead of growing the queue.
    task<> send_frame(opcode op, std::string payload) {
        if (!can_send()) throw websocket_disconnect(close_code_, close_reason_);
        enqueue(data_frame(op, std::move(payload)));
        while (queue_.memory() > options_->max_queued_bytes && can_send()) co_await queue_drained_.wait();
        if (!can_send()) throw websocket_disconnect(close_code_, close_reason_);
    }

    /// Queues a text frame without waiting (send_to this connection itself). False when it is gone.
    bool queue_text(std::string text) {
        if (!can_send()) return false;
        enqueue(data_frame(opcode::text, std::move(text)));
        return true;
    }

    /// False once the connection is gone for sending, however it went: our close frame is queued, the
    /// stream failed, or the connection is being torn down (the peer dropped TCP). A send then throws,
    /// so a handler that only sends (a timer loop) ends too.
    bool can_send() const noexcept { return status_ < connection_status::close_queued && writer_ != writer_status::failed; }

    /// A broadcast frame arriving on this connection's thread (the registry delivers it), in the form
    /// this connection takes: plain, compressed once for every receiver with the same setting, or
    /// (with server context takeover) compressed here, in this connection's own stream.
    void receive_broadcast(const shared_frame& frame) {
        const std::string_view payload = frame->payload();
        if (!compression_.worth_compressing(payload.size())) return receive_from_another(outbound_frame::broadcast(frame->plain()));
#ifndef STARLING_NO_DEFLATE
        if (compression_.shares_compressed_broadcasts())
            return receive_from_another(outbound_frame::broadcast(frame->compressed(compression_.setting())));
#endif
        receive_from_another(sizeof(outbound_frame) + payload.size(),
                             [&] { return data_frame(frame->op(), std::string(payload)); });
    }

    /// Queues a text message another connection sent to this one (send_to), from any thread: hops to
    /// this connection's thread first. A unicast frame, encoded here, but under the same
    /// slow_consumer policy as a broadcast, since the sender cannot wait for this client.
    void deliver_text(std::string text) {
        if (context_.get_executor().running_in_this_thread()) {
            receive_from_another(sizeof(outbound_frame) + text.capacity(), [&] { return data_frame(opcode::text, std::move(text)); });
            return;
        }
        asio::post(context_, [self = shared_from_this(), text = std::move(text)]() mutable {
            self->receive_from_another(sizeof(outbound_frame) + text.capacity(),
                                       [&] { return self->data_frame(opcode::text, std::move(text)); });
        });
    }

    // ---- Closing ----------------------------------------------------------------------------------

    /// Starts the close handshake: on_close runs (its text is sent), then a close frame with `code` and
    /// `reason`. Pending and later receives throw websocket_disconnect. Does nothing if already closing.
    task<> close(std::uint16_t code = 1000, std::string_view reason = {}) {
        if (status_ != connection_status::open) co_return;
        begin_closing(code, reason);
        co_await run_on_close(/*server_closing=*/true);
        queue_close_frame(code, reason);
        arm_close_deadline();
    }

    /// Drops the connection at once, from any thread: the stream closed without a close handshake,
    /// pending receives and sends woken, on_close run with 1006. What graceful shutdown does to
    /// connections still open at its deadline, so that every coroutine of theirs ends before the loops
    /// stop.
    void abort() {
        asio::post(context_, [self = shared_from_this()] {
            if (self->status_ <= connection_status::open)
                self->begin_closing(static_cast<std::uint16_t>(close_code::abnormal), {}, false);
            self->writer_ = writer_status::failed;  // nothing more is written or queued
            self->close_stream();
            self->advance(connection_status::closed);
            self->deadline_.cancel();
            self->queue_.clear();
            self->queue_changed();
            self->queue_drained_.notify_all();
            self->writer_finished_.notify();
            self->handler_caught_up_.notify();
        });
    }

    // ---- Life -------------------------------------------------------------------------------------

    /// The handshake has begun: the stream is closed at `deadline` unless upgraded() comes first.
    void begin_handshake(engine_clock::time_point deadline) {
        hard_deadline_ = deadline;
        update_deadline();
    }
    /// The same with a deadline in real time, as a client's dial measures it.
    void begin_handshake(std::chrono::steady_clock::time_point deadline) { begin_handshake(engine_clock::from_real(deadline)); }

    /// The handshake agreed to permessage-deflate (before upgraded()); this end is `local`.
    void set_compression(const deflate_agreement& agreement, role local, const compressor_tuning& tuning) {
        compression_.agree(agreement, local, tuning);
    }
    bool compressing() const noexcept { return compression_.active(); }

    /// The handshake succeeded: the connection gets its identity and limits and becomes open. Its
    /// handshake deadline no longer applies.
    void upgraded(const websocket_options& options, std::string path, starling::query_params query,
                  http::headers headers, endpoint_counters* counters = nullptr) {
        options_ = &options;
        counters_ = counters;
        opened_at_ = engine_clock::now();
        if (counters_) {
            counters_->opened.add();
            counters_->open.add(1);
        }
        id_ = make_uuid_v4();
        path_ = std::move(path);
        query_ = std::move(query);
        headers_ = std::move(headers);
        inbox_.set_limits(options.inbox_messages, options.max_inbox_bytes);
        if (options.rate_limit.enabled()) limiter_ = std::make_unique<message_rate_limiter>(options.rate_limit, opened_at_);
        hard_deadline_ = no_deadline;
        last_input_ = engine_clock::now();
        advance(connection_status::open);
        on_upgraded();
    }

    /// The handshake ended without an upgrade (answered, failed or timed out): the stream is closed and
    /// the timer stops, so nothing keeps the connection alive.
    void discard() noexcept {
        close_stream();
        advance(connection_status::closed);
        deadline_.cancel();
    }

    /// Runs the connection from just after the handshake to its end, and returns when it is over:
    /// the stream closed, on_close run, left().
    /// With `close_at_once`, the connection is closed at once with that code and reason; no callback
    /// runs (typed query parameters that did not resolve: 1008; the server began shutting down during
    /// the handshake: 1001).
    task<> run(std::optional<close_reason> close_at_once = std::nullopt) {
        auto self = shared_from_this();
        if (close_at_once) {
            on_close_state_ = callback_state::done;
            co_await close(close_at_once->code, close_at_once->reason);
        } else {
            if (has_handler()) asio::co_spawn(context_, handler_loop(self), asio::detached);
            update_deadline();  // the idle check
        }
        co_await read_loop();
        if (status_ == connection_status::open)
            begin_closing(static_cast<std::uint16_t>(close_code::abnormal), {}, false);
        inbox_ready_.notify();
        co_await run_on_close(/*server_closing=*/false);
        // Let the writer send what is queued (our close frame among it), within the close timeout.
        advance(connection_status::tearing_down);
        flush();
        arm_close_deadline();
        while (writer_ != writer_status::finished && writer_ != writer_status::failed)
            if (!co_await writer_finished_.wait_until(hard_deadline_)) break;
        co_await linger_and_close();
        advance(connection_status::closed);
        deadline_.cancel();  // the connection is over: nothing it checks for may keep it alive
        if (counters_) {
            counters_->open.add(-1);
            counters_->closed[static_cast<std::size_t>(classify_close(close_code_))].add();
            queue_.clear();
            queue_changed();
        }
        left();
    }

    /// Where the registry keeps this connection in its worker's list, and whether it is in it.
    std::size_t& registry_slot() noexcept { return registry_slot_; }
    bool registered = false;

protected:
    explicit connection_base(asio::io_context& context)
        : context_(context),
          worker_(asio::use_service<worker_buffers>(static_cast<asio::execution_context&>(context))),
          inbox_ready_(context.get_executor()),
          inbox_space_(context.get_executor()),
          writer_finished_(context.get_executor()),
          on_close_finished_(context.get_executor()),
          handler_caught_up_(context.get_executor()),
          queue_drained_(context.get_executor()),
          deadline_(context.get_executor()) {}

    // ---- What the stream part provides (session/connection.hpp) ----

    /// Reads and parses until the connection ends; returns when the reader is done.
    virtual task<> read_loop() = 0;
    /// Writes what is queued now, as far as the stream takes it.
    virtual void flush() = 0;
    /// Ends the stream politely within the close deadline, then closes it.
    virtual task<> linger_and_close() = 0;
    /// Closes the stream under whatever still uses it.
    virtual void close_stream() noexcept = 0;

    // ---- What the user's code is (runtime/endpoint_connection.hpp) ----

    /// The greeting to send first, if any (on_connect). May throw, as handle() may.
    virtual task<std::optional<std::string>> greet() = 0;
    /// After the greeting: the connection can be reached by others now (joins its endpoint's registry).
    virtual void joined() = 0;
    /// The handler. When it returns, the connection closes with 1000.
    virtual task<> handle() = 0;
    /// greet() or handle() threw this (not a websocket_disconnect): the close code and reason to end
    /// with. Reports it as it sees fit.
    virtual close_reason failed(std::exception_ptr error) noexcept = 0;
    /// The text to send on a server-side close, if any (on_close). Runs once.
    virtual task<std::optional<std::string>> farewell() = 0;
    /// The connection is over (leaves its endpoint's registry).
    virtual void left() = 0;
    /// The connection became open.
    virtual void on_upgraded() {}
    /// False for a connection whose user drives it from outside (a client's): no handler runs, and
    /// closes wait for nobody to catch up.
    virtual bool has_handler() const noexcept { return true; }

    // ---- for the stream part ----

    void advance(connection_status s) noexcept { status_ = std::max(status_, s); }

    std::optional<message> pop_inbox() {
        if (auto m = inbox_.pop()) {
            inbox_space_.notify();
            processing_message_ = true;
            return m;
        }
        if (status_ != connection_status::open) throw websocket_disconnect(close_code_, close_reason_);
        return std::nullopt;
    }

    /// A whole message from the reader.
    void deliver(message m) {
        ++messages_in_;
        if (counters_) {
            counters_->messages_in.add();
            counters_->bytes_in.add(m.data.size());
        }
        if (limiter_ && !limiter_->admit(m.data.size(), engine_clock::now())) return over_rate_limit();
        inbox_.push(std::move(m));
        inbox_ready_.notify();
    }

    bool inbox_full() const noexcept { return inbox_.full(); }

    /// The reader waits here while the inbox is full. Silence meanwhile is ours, not the peer's.
    task<> wait_for_inbox_space() {
        reader_paused_ = true;
        while (status_ == connection_status::open && inbox_.full()) co_await inbox_space_.wait();
        reader_paused_ = false;
        last_input_ = engine_clock::now();
    }

    /// A ping from the peer: answered with a pong, unless our close frame is already queued.
    void answer_ping(std::string_view payload) {
        if (status_ >= connection_status::close_queued) return;
        queue_.push_pong(payload);
        queue_changed();
        schedule_flush();
    }

    /// A pong from the peer: the answer to our idle ping, if one is outstanding.
    void pong_arrived() {
        if (!ping_outstanding_) return;
        ping_outstanding_ = false;
        last_rtt_ = engine_clock::now() - ping_sent_at_;
        if (counters_) counters_->pong_rtt.observe(last_rtt_);
    }

    /// The peer's close frame: the handler first handles what arrived before it, then the close is
    /// echoed.
    task<> peer_closed(const close_reason& peer) {
        if (status_ == connection_status::open) co_await let_handler_catch_up();
        if (status_ != connection_status::open) co_return;
        begin_closing(peer.code, peer.reason, false);
        queue_close_frame(peer.code == static_cast<std::uint16_t>(close_code::no_status)
                              ? static_cast<std::uint16_t>(close_code::normal)
                              : peer.code,
                          {});
    }

    /// The peer broke the protocol: fail the connection (RFC 6455 7.1.7) with a close frame carrying
    /// the matching code, without waiting for its answer.
    task<> protocol_failed(std::uint16_t code, std::string reason) {
        if (status_ == connection_status::open) co_await let_handler_catch_up();
        co_await close(code, reason);
    }

    /// A message began and did not end with this read: from now on it has message_timeout.
    void message_begun() {
        if (message_started_ != no_deadline) return;
        message_started_ = engine_clock::now();
        update_deadline();
    }
    void message_ended() noexcept { message_started_ = no_deadline; }
    void input_arrived() noexcept { last_input_ = engine_clock::now(); }

    // ---- for the writer ----

    /// A text or binary frame of this connection's own: compressed when that was negotiated and the
    /// payload is worth it. Made just before it is queued, since with context takeover the order of
    /// compression is the order on the wire.
    outbound_frame data_frame(opcode op, std::string payload) {
        if (!compression_.worth_compressing(payload.size())) return outbound_frame::unicast(op, std::move(payload));
        compression_.compress(payload, worker_.payloads());
        return outbound_frame::unicast(op, std::move(payload), true);
    }

    void enqueue(outbound_frame frame) {
        if (writer_ == writer_status::failed || (status_ >= connection_status::close_queued && !frame.is_close)) return;
        if (frame.is_data()) {
            ++messages_out_;
            if (counters_) {
                counters_->messages_out.add();
                counters_->bytes_out.add(frame.payload_size());
            }
        }
        queue_.push(std::move(frame));
        queue_changed();
        schedule_flush();
    }

    /// Writes at the end of this turn, unless the writer is waiting for the stream or already due.
    void schedule_flush() {
        if (writer_ != writer_status::idle || flush_scheduled_) return;
        flush_scheduled_ = true;
        asio::post(context_, [self = shared_from_this()] {
            self->flush_scheduled_ = false;
            self->flush();
        });
    }

    /// The stream took `written` bytes of the queue. True when that finished the writer (our close
    /// frame went out: nothing may follow it).
    bool written(std::size_t n) {
        const bool close_written = queue_.consume(n, worker_.payloads());
        queue_changed();
        if (queue_.memory() <= options_->max_queued_bytes) queue_drained_.notify_all();
        if (close_written) finish_writer();
        return close_written;
    }

    void stalled() {
        writer_ = writer_status::awaiting_writable;
        stall_since_ = engine_clock::now();
        update_deadline();  // the write-stall timeout
    }

    /// The stream failed (or was closed under the writer): what is queued can never be written.
    void fail_writer() {
        writer_ = writer_status::failed;
        queue_.clear();
        queue_changed();
        queue_drained_.notify_all();
        writer_finished_.notify();
    }

    /// Keeps the worker's queued-bytes gauge (and its high-water mark) in step with this queue.
    void queue_changed() noexcept {
        if (!counters_) return;
        const auto now = static_cast<std::int64_t>(queue_.memory());
        if (now == counted_queue_) return;
        counters_->queued_bytes.add(now - counted_queue_);
        counted_queue_ = now;
        if (counters_->queued_bytes.value() > counters_->queued_bytes_high_water.value())
            counters_->queued_bytes_high_water.set(counters_->queued_bytes.value());
    }

    void finish_writer() {
        if (writer_ != writer_status::failed) writer_ = writer_status::finished;
        writer_finished_.notify();
    }

    static constexpr auto no_deadline = engine_clock::time_point::max();

    asio::io_context& context_;
    worker_buffers& worker_;  // the receive buffer and spare payloads of this loop
    message_compression compression_;  // permessage-deflate, if the handshake agreed to it
    write_queue queue_;
    writer_status writer_ = writer_status::idle;
    bool flush_scheduled_ = false;  // a flush is posted for the end of this turn
    engine_clock::time_point hard_deadline_ = no_deadline;  // the stream is closed then

private:
    enum class callback_state : std::uint8_t { not_run, running, done };

    // ---- keeping replies in order with the close ----

    /// The handler asks for its next message, or has finished: whatever it had to say about the
    /// previous one is queued.
    void caught_up() {
        processing_message_ = false;
        handler_caught_up_.notify();
    }

    /// Before the server answers a peer's close frame or fails the connection, the handler gets to
    /// handle the messages that arrived before it (an echo server echoes them), within the close
    /// timeout.
    task<> let_handler_catch_up() {
        const auto give_up = engine_clock::now() + options_->close_timeout;
        while (handler_running_ && (!inbox_.empty() || processing_message_) && status_ < connection_status::closed)
            if (!co_await handler_caught_up_.wait_until(give_up)) break;
    }

    /// Marks the connection closing and wakes a waiting receive. Messages already received stay
    /// deliverable when the peer ended the connection; when the server closes, they are dropped.
    void begin_closing(std::uint16_t code, std::string_view reason, bool server_closing = true) {
        advance(connection_status::closing);
        close_code_ = code;
        close_reason_ = std::string(reason);
        if (server_closing) inbox_.clear();
        inbox_ready_.notify();
        inbox_space_.notify();
        queue_drained_.notify_all();
    }

    void queue_close_frame(std::uint16_t code, std::string_view reason) {
        if (status_ >= connection_status::close_queued) return;
        std::array<char, max_control_payload> payload{};
        const std::size_t n = write_close_payload(code, reason, payload);
        enqueue(outbound_frame::unicast(opcode::close, std::string(payload.data(), n)));
        advance(connection_status::close_queued);
        queue_drained_.notify_all();  // a send waiting for room now throws: nothing may follow the close
    }

    /// on_close runs exactly once, whichever path ends the connection first; a second caller waits for
    /// the first. Its text is sent only when the server is the closing side and has not sent its
    /// close frame yet.
    task<> run_on_close(bool server_closing) {
        if (on_close_state_ == callback_state::done) co_return;
        if (on_close_state_ == callback_state::running) {
            while (on_close_state_ != callback_state::done) co_await on_close_finished_.wait();
            co_return;
        }
        on_close_state_ = callback_state::running;
        auto text = co_await farewell();
        if (text && server_closing && status_ < connection_status::close_queued)
            enqueue(data_frame(opcode::text, std::move(*text)));
        on_close_state_ = callback_state::done;
        on_close_finished_.notify();
    }

    /// Starts the close timeout, once: the whole closing (waiting for the peer's close frame, flushing
    /// our queue, waiting for TCP's end) shares one deadline, after which the stream is closed under
    /// whatever still uses it, however much the peer keeps sending.
    void arm_close_deadline() {
        if (closing_deadline_armed_) return;
        closing_deadline_armed_ = true;
        hard_deadline_ = engine_clock::now() + options_->close_timeout;
        update_deadline();
    }

    /// A frame another connection sent (broadcast or send_to), on this connection's thread. One that
    /// would take the queue over the high-water mark while the kernel refuses this client's bytes
    /// meets the endpoint's slow_consumer policy. Only then: a queue that grew while this thread was
    /// busy elsewhere (a burst of broadcasts, a long handler on the same worker) says nothing about
    /// the client, and is written at the end of the turn.
    void receive_from_another(outbound_frame frame) {
        const std::size_t memory = frame.memory();
        receive_from_another(memory, [&] { return std::move(frame); });
    }

    /// The same for a frame made only if it is going to be queued (`memory` is what it will cost, or
    /// near): a message compressed with context takeover must reach the wire once compressed.
    template <class Make>
    void receive_from_another(std::size_t memory, Make&& make) {
        // Once a close is due, nothing from others may land behind the backlog it dropped.
        if (status_ != connection_status::open || close_pending_ || writer_ == writer_status::failed) return;
        if (writer_ == writer_status::awaiting_writable && queue_.memory() + memory > options_->max_queued_bytes) {
            if (options_->slow_consumer == slow_consumer_policy::drop) {
                if (counters_) counters_->slow_consumer_drops.add();
                return;
            }
            // The backlog not yet begun on the wire is dropped, so the close frame goes out next and
            // the memory is released now, not when (if ever) the client catches up.
            queue_.drop_unsent();
            queue_changed();
            if (counters_) counters_->slow_consumer_closes.add();
            return close_soon(close_code::policy_violation, "slow consumer: outbound queue over its limit");
        }
        if (counters_) counters_->deliveries.add();
        enqueue(make());
    }

    // ---- the deadline ----
    // One timer per connection serves every time limit: the handshake timeout, the close timeout,
    // idle pings and the idle close, the write-stall timeout and the message timeout. It is armed for
    // the earliest of them; when it fires it checks them all against the clock and re-arms for the
    // next. Moving a time forward (more input arrived) costs nothing: the timer fires at the old time
    // and finds nothing due yet.

    /// The earliest time something must be checked, or no_deadline.
    engine_clock::time_point next_check() const noexcept {
        auto due = hard_deadline_;
        if (status_ == connection_status::open) {
            const websocket_options& o = *options_;
            if (o.idle_timeout.count() > 0)
                due = std::min(due, (ping_outstanding_ ? ping_sent_at_ : last_input_) + o.idle_timeout);
            if (o.write_timeout.count() > 0 && writer_ == writer_status::awaiting_writable)
                due = std::min(due, stall_since_ + o.write_timeout);
            if (o.message_timeout.count() > 0 && message_started_ != no_deadline)
                due = std::min(due, message_started_ + o.message_timeout);
        }
        return due;
    }

    /// Arms the timer for next_check() if that is earlier than what it is armed for.
    void update_deadline() {
        if (status_ == connection_status::closed) return;
        const auto due = next_check();
        if (due >= armed_for_) return;
        armed_for_ = due;
        deadline_.expires_at(due);  // replaces a later wait, whose handler sees operation_aborted
        deadline_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec) return;
            self->armed_for_ = no_deadline;
            self->check_deadlines();
            self->update_deadline();
        });
    }

    void check_deadlines() {
        if (status_ == connection_status::closed) return;
        const auto now = engine_clock::now();
        if (now >= hard_deadline_) {
            // The handshake or the closing took too long: the stream goes, and with it every read
            // and write still using it. That deadline is spent: the timer must not fire for it again.
            close_stream();
            hard_deadline_ = no_deadline;
            return;
        }
        if (status_ != connection_status::open) return;
        const websocket_options& o = *options_;
        if (o.write_timeout.count() > 0 && writer_ == writer_status::awaiting_writable &&
            now - stall_since_ >= o.write_timeout) {
            // The client stopped reading: what it has not begun to receive is dropped, so the close
            // frame is next in line and the memory is released now.
            queue_.drop_unsent();
            queue_changed();
            return close_soon(close_code::policy_violation, "write timeout: the client stopped reading");
        }
        if (o.message_timeout.count() > 0 && message_started_ != no_deadline && now - message_started_ >= o.message_timeout)
            return close_soon(close_code::policy_violation, "message timeout: a message did not arrive whole in time");
        if (o.idle_timeout.count() > 0) check_idle(now, o.idle_timeout);
    }

    /// A connection silent for idle_timeout is pinged; one still silent idle_timeout after the ping is
    /// closed with 1001. While the reader is paused (the handler is behind and the inbox full),
    /// silence is ours, not the peer's: it does not count.
    void check_idle(engine_clock::time_point now, engine_clock::duration idle) {
        if (reader_paused_) last_input_ = now;
        if (ping_outstanding_) {
            if (last_input_ > ping_sent_at_) {
                ping_outstanding_ = false;
            } else if (now - ping_sent_at_ >= idle) {
                return close_soon(close_code::going_away, "idle timeout");
            } else {
                return;
            }
        }
        if (now - last_input_ >= idle) {
            enqueue(outbound_frame::unicast(opcode::ping, std::string()));
            ping_outstanding_ = true;
            ping_sent_at_ = now;
            if (counters_) counters_->pings_sent.add();
        }
    }

    /// A message over the rate limit (session/rate_limiter.hpp): dropped and counted, or the close.
    void over_rate_limit() {
        if (options_->rate_limit.policy == rate_limit_policy::drop) {
            if (counters_) counters_->rate_limited_drops.add();
            return;
        }
        if (!close_pending_ && counters_) counters_->rate_limited_closes.add();
        close_soon(close_code::policy_violation, "rate limit exceeded");
    }

    /// Starts a close from a timer or a delivery, which cannot wait for it themselves.
    void close_soon(close_code code, std::string_view reason) {
        if (close_pending_) return;
        close_pending_ = true;
        asio::co_spawn(context_, close_from_server(shared_from_this(), code, std::string(reason)), asio::detached);
    }

    /// close() started by the server itself (a timeout, a slow consumer), keeping the connection alive
    /// until it is done.
    static task<> close_from_server(std::shared_ptr<connection_base> self, close_code code, std::string reason) {
        // Later, not inside the caller: co_spawn starts a coroutine at once on its own thread, and the
        // caller may be walking a registry's list or checking deadlines; on_close is user code.
        co_await asio::post(self->context_, asio::use_awaitable);
        co_await self->close(static_cast<std::uint16_t>(code), reason);
    }

    // ---- the user's code ----

    task<> handler_loop(std::shared_ptr<connection_base> self) {
        handler_running_ = true;
        close_reason ending{static_cast<std::uint16_t>(close_code::normal), {}};
        try {
            auto greeting = co_await greet();
            if (greeting && status_ == connection_status::open)
                enqueue(data_frame(opcode::text, std::move(*greeting)));
            // Reachable by others only now: nothing reaches a client before its greeting.
            if (status_ == connection_status::open) joined();
            if (status_ == connection_status::open) co_await handle();
        } catch (const websocket_disconnect&) {
            // The connection is over; run() finishes it.
        } catch (...) {
            ending = failed(std::current_exception());
        }
        handler_running_ = false;
        caught_up();
        // A handler that returns closes with 1000; one that threw, with the code it chose.
        co_await self->close(ending.code, ending.reason);
    }

    // Identity
    std::string id_;
    std::string path_;
    starling::query_params query_;
    http::headers headers_;

protected:
    client_address client_;

private:
    static inline const websocket_options default_options{};
    const websocket_options* options_ = &default_options;

    connection_status status_ = connection_status::handshake;
    callback_state on_close_state_ = callback_state::not_run;
    bool handler_running_ = false;
    bool processing_message_ = false;  // the handler holds a message it may still answer
    bool reader_paused_ = false;       // waiting for inbox space, not reading the stream
    bool ping_outstanding_ = false;
    bool closing_deadline_armed_ = false;
    bool close_pending_ = false;  // close_soon() posted a close that has not begun yet
    std::uint16_t close_code_ = static_cast<std::uint16_t>(close_code::abnormal);
    std::string close_reason_;
    std::size_t registry_slot_ = 0;

    detail::inbox inbox_{64, 1024 * 1024};

    async_event inbox_ready_;
    async_event inbox_space_;
    async_event writer_finished_;
    async_event on_close_finished_;
    async_event handler_caught_up_;
    async_signal queue_drained_;  // the outbound queue fell back to its high-water mark

    engine_timer deadline_;  // the one timer: see next_check()
    engine_clock::time_point armed_for_ = no_deadline;
    engine_clock::time_point stall_since_;  // when the writer began waiting for the stream
    engine_clock::time_point message_started_ = no_deadline;  // a message is arriving since
    engine_clock::time_point last_input_ = engine_clock::now();
    engine_clock::time_point ping_sent_at_;

    std::unique_ptr<message_rate_limiter> limiter_;  // only with a rate limit: one pointer otherwise
    endpoint_counters* counters_ = nullptr;  // this endpoint's on this worker; none in unit tests
    std::int64_t counted_queue_ = 0;          // queue_.memory() as the gauge last saw it
    std::uint64_t messages_in_ = 0;
    std::uint64_t messages_out_ = 0;
    engine_clock::time_point opened_at_;
    engine_clock::duration last_rtt_{-1};  // negative: no ping answered yet
};

}  // namespace starling::detail
// ---- end starling/session/connection_base.hpp ----

namespace starling {

/// A topic and its members, as app.topics() lists them.
struct topic_info {
    std::string name;
    std::size_t size = 0;
};

namespace detail {

class pubsub {
public:
    using endpoint_registry = connection_registry<connection_base>;

    pubsub() = default;
    pubsub(const pubsub&) = delete;
    pubsub& operator=(const pubsub&) = delete;
    ~pubsub() { stop(); }

    topic_registry<connection_base> topics;

    /// Before start(): every publish, broadcast and send_to crosses processes through `bus`.
    void use(std::shared_ptr<backplane> bus, std::string prefix) {
        bus_ = std::move(bus);
        prefix_ = std::move(prefix);
    }
    bool has_backplane() const noexcept { return bus_ != nullptr; }
    backplane_stats stats() const { return bus_ ? bus_->stats() : backplane_stats{}; }

    /// Before start(): the endpoint at `path` shares its broadcasts and send_to through the backplane.
    void add_endpoint(const std::string& path, endpoint_registry& registry) { endpoints_[path] = &registry; }

    /// Links to the backplane, if any: subscribes the endpoints' channels, and from now on each topic's
    /// channel while the topic has members on this node.
    void start() {
        if (!bus_ || started_) return;
        started_ = true;
        accepting_ = true;
        topics.set_observer([this](const std::string& name, bool has_members) {
            if (has_members)
                bus_->subscribe(topic_channel(name));
            else
                bus_->unsubscribe(topic_channel(name));
        });
        for (const auto& [path, registry] : endpoints_) {
            bus_->subscribe(prefix_ + "broadcast:" + path);
            bus_->subscribe(prefix_ + "to:" + path);
        }
        for (const auto& [name, size] : topics.sizes()) bus_->subscribe(topic_channel(name));
        bus_->start([this](std::string_view channel, std::string_view payload) { arrived(channel, payload); });
    }

    /// Unlinks: nothing from the backplane is delivered once this returns.
    void stop() {
        if (!bus_ || !started_) return;
        {
            std::lock_guard lock(delivery_mutex_);
            accepting_ = false;
        }
        bus_->stop();
        started_ = false;
    }

    /// Delivers `frame` (of `op` and `payload`) to topic `name` here, and to the other nodes. `here` is
    /// the caller's worker, null from any other thread.
    std::size_t publish(asio::io_context* here, std::string_view name, const shared_frame& frame, opcode op,
                        std::string_view payload, const connection_base* except) {
        const std::size_t reached = topics.publish(here, name, frame, except);
        if (bus_) bus_->publish(topic_channel(name), message(op, payload));
        return reached;
    }

    /// An endpoint's broadcast, already delivered here, for the other nodes.
    void broadcast_elsewhere(const std::string& path, opcode op, std::string_view payload) {
        if (bus_ && endpoints_.contains(path)) bus_->publish(prefix_ + "broadcast:" + path, message(op, payload));
    }

    /// A send_to whose id is not on this node, for the other nodes. False without a backplane, or
    /// when it is down: the message is not going anywhere.
    bool send_elsewhere(const std::string& path, std::string_view id, std::string_view text) {
        if (!bus_ || !endpoints_.contains(path) || !bus_->stats().connected) return false;
        std::string body;
        body.reserve(id.size() + 1 + text.size());
        body.append(id).append(1, '\n').append(text);
        bus_->publish(prefix_ + "to:" + path, message(opcode::text, body));
        return true;
    }

private:
    static constexpr std::size_t node_id_size = 36;  // a UUID's text

    std::string topic_channel(std::string_view name) const {
        std::string channel = prefix_;
        channel.append("topic:").append(name);
        return channel;
    }

    std::string message(opcode op, std::string_view payload) const {
        std::string m;
        m.reserve(1 + node_id_size + payload.size());
        m.append(1, op == opcode::binary ? 'b' : 't').append(node_).append(payload);
        return m;
    }

    /// A message from the backplane, on its thread.
    void arrived(std::string_view channel, std::string_view m) {
        if (m.size() < 1 + node_id_size || (m[0] != 't' && m[0] != 'b')) return;  // not ours to read
        if (m.substr(1, node_id_size) == node_) return;                             // our own, delivered already
        const opcode op = m[0] == 'b' ? opcode::binary : opcode::text;
        const std::string_view payload = m.substr(1 + node_id_size);
        if (!channel.starts_with(prefix_)) return;
        channel.remove_prefix(prefix_.size());

        std::lock_guard lock(delivery_mutex_);
        if (!accepting_) return;
        if (channel.starts_with("topic:")) {
            const std::string_view name = channel.substr(6);
            if (topics.size(name) != 0) topics.publish(nullptr, name, make_shared_frame(op, payload), nullptr);
        } else if (channel.starts_with("broadcast:")) {
            if (const auto it = endpoints_.find(channel.substr(10)); it != endpoints_.end() && it->second->size() != 0)
                it->second->broadcast(nullptr, make_shared_frame(op, payload), nullptr);
        } else if (channel.starts_with("to:")) {
            const auto it = endpoints_.find(channel.substr(3));
            const std::size_t newline = payload.find('\n');
            if (it == endpoints_.end() || newline == std::string_view::npos) return;
            if (auto target = it->second->find(payload.substr(0, newline)))
                target->deliver_text(std::string(payload.substr(newline + 1)));
        }
    }

    std::shared_ptr<backplane> bus_;
    std::string prefix_ = "starling:";
    const std::string node_ = make_uuid_v4();
    std::map<std::string, endpoint_registry*, std::less<>> endpoints_;  // read-only once started
    bool started_ = false;
    std::mutex delivery_mutex_;
    bool accepting_ = false;  // under delivery_mutex_
};

}  // namespace detail
}  // namespace starling
// ---- end starling/runtime/pubsub.hpp ----

// ---- begin starling/api/admission.hpp ----
// What an endpoint's authentication hook decides: admit the client, with a value its connection
// carries (the authenticated user, say), or refuse it with an HTTP status and body before the upgrade.
//
//     app.websocket("/chat", handler).authenticate(
//         [](starling::query<"token", std::optional<std::string>> token) -> starling::admission<user> {
//             if (auto u = find_user(*token)) return *u;
//             return starling::refuse(401, "Unknown token");
//         });

#include <optional>  // std::optional value and refusal
#include <string>    // std::string body and headers
#include <utility>   // std::move

namespace starling {

/// An HTTP answer refusing an upgrade: status (401, 403, 429...), a text/plain body, and any header
/// lines of its own ("Retry-After: 30\r\n"). A 401 without a WWW-Authenticate line gets
/// "WWW-Authenticate: Bearer", which HTTP requires of a 401.
struct refusal {
    int status = 401;
    std::string body;
    std::string headers;
};

inline refusal refuse(int status, std::string body = {}, std::string headers = {}) {
    return refusal{status, std::move(body), std::move(headers)};
}

/// Admitted with a T, or refused. Converts from either, so a hook returns one or the other.
template <class T = void>
class admission {
public:
    admission(T value) : value_(std::move(value)) {}
    admission(refusal refused) : refused_(std::move(refused)) {}

    bool admitted() const noexcept { return !refused_.has_value(); }
    std::optional<T>& value() noexcept { return value_; }
    std::optional<refusal>& refused() noexcept { return refused_; }

private:
    std::optional<T> value_;
    std::optional<refusal> refused_;
};

/// Admitted with nothing to carry, or refused.
template <>
class admission<void> {
public:
    admission() = default;
    admission(refusal refused) : refused_(std::move(refused)) {}

    bool admitted() const noexcept { return !refused_.has_value(); }
    std::optional<refusal>& refused() noexcept { return refused_; }

private:
    std::optional<refusal> refused_;
};

}  // namespace starling
// ---- end starling/api/admission.hpp ----

// ---- begin starling/api/connection_state.hpp ----
// Per-connection state: one typed value a connection carries from its handshake to its end. The
// authentication hook's value lands here, on_connect may put one here, and every later callback reads
// it, with ws.state<T>() or by declaring starling::state<T>:
//
//     [](starling::websocket& ws, starling::state<user> me) -> starling::task<> { ... me->name ... }
//
// An empty slot is one null pointer: a connection that keeps no state pays nothing more.

#include <memory>       // std::unique_ptr holder
#include <stdexcept>    // std::logic_error for a missing or mistyped state
#include <string>       // std::string messages
#include <type_traits>  // std::is_constructible_v
#include <typeinfo>     // typeid of the held value
#include <utility>      // std::forward


namespace starling {

namespace detail {

/// The slot: nothing, or one value of any type, owned.
class state_slot {
public:
    state_slot() = default;

    template <class T, class... Args>
    T& emplace(Args&&... args) {
        auto made = std::make_unique<holder<T>>(std::forward<Args>(args)...);
        T& value = made->value;
        held_ = std::move(made);
        return value;
    }

    /// The value, if it is a T.
    template <class T>
    T* find() const noexcept {
        if (!held_ || held_->type() != typeid(T)) return nullptr;
        return &static_cast<holder<T>*>(held_.get())->value;
    }

    /// The value, which must be a T: throws std::logic_error otherwise (a handler closes with 1011).
    template <class T>
    T& get() const {
        if (T* found = find<T>()) return *found;
        throw std::logic_error(std::string("starling: this connection's state is ") +
                               (held_ ? "not a '" : "empty, not a '") + std::string(type_name<T>()) +
                               "' (set it in the authentication hook or with ws.emplace_state in on_connect)");
    }

    bool empty() const noexcept { return !held_; }
    void reset() noexcept { held_.reset(); }

private:
    struct holder_base {
        virtual ~holder_base() = default;
        virtual const std::type_info& type() const noexcept = 0;
    };
    template <class T>
    struct holder final : holder_base {
        template <class... Args>
        explicit holder(Args&&... args) : value(make(std::forward<Args>(args)...)) {}
        /// Braces for an aggregate ({"alice"} for a struct user), which not every compiler this
        /// library supports builds from parentheses; the result initialises `value` in place.
        template <class... Args>
        static T make(Args&&... args) {
            if constexpr (std::is_constructible_v<T, Args&&...>) return T(std::forward<Args>(args)...);
            else return T{std::forward<Args>(args)...};
        }
        const std::type_info& type() const noexcept override { return typeid(T); }
        T value;
    };

    std::unique_ptr<holder_base> held_;
};

struct connection_state_tag {};

}  // namespace detail

/// A handler or callback parameter: the connection's state, which must be a T. Refers to the value
/// in the connection; it does not copy it.
template <class T>
class state : public detail::connection_state_tag {
public:
    using value_type = T;
    explicit state(T& value) noexcept : value_(&value) {}

    T& value() const noexcept { return *value_; }
    T& operator*() const noexcept { return *value_; }
    T* operator->() const noexcept { return value_; }
    operator T&() const noexcept { return *value_; }

private:
    T* value_;
};

}  // namespace starling
// ---- end starling/api/connection_state.hpp ----

// ---- begin starling/api/signature.hpp ----
// Reads a handler's or callback's signature at compile time and says where each argument comes from:
// the connection, a typed request parameter (query, header, cookie, path), the connection's state, the
// upgrade request (authentication hooks), a dependency container, or a dependency by type. This is
// what lets handlers declare what they need, in any order.

#include <memory>       // std::shared_ptr dependency parameters
#include <cstddef>      // std::byte message bytes
#include <optional>     // std::optional check results
#include <span>         // std::span<const std::byte> message bytes
#include <string>       // std::string error messages
#include <string_view>  // std::string_view type names
#include <tuple>        // std::tuple argument lists
#include <type_traits>  // std::remove_cvref_t and friends
#include <typeindex>    // std::type_index requirements
#include <utility>      // std::index_sequence parameter positions
#include <vector>       // std::vector requirements


// ---- begin starling/api/params.hpp ----
// Typed request parameters declared in handler signatures: query parameters, headers, cookies and
// path segments, all under the same rules. Query parameters:
//
//     [](starling::websocket& ws, starling::query<"room", std::string, "default"> room,
//        starling::query<"page", int, "1"> page) -> starling::task<> { ... }
//
// The name is part of the type and checked at compile time. A parameter is required unless it has a
// default (given as the text it would have in a URL) or is a std::optional / std::vector. Values are
// resolved once per connection, before the upgrade: a missing or invalid value rejects the connection
// with HTTP 400 and a message such as "Missing required parameter: 'room'". starling::header<"X-API-Key",
// T>, starling::cookie<"session", T> and starling::path<"room", T> read the same way from the request's
// headers, its Cookie header and the segments of the endpoint's path template (a value that does not
// coerce is a 400 there too; a path that does not match the template is a 404 before any of this).

#include <cstddef>      // std::size_t
#include <optional>     // std::optional parameters and results
#include <string>       // std::string messages
#include <string_view>  // std::string_view names
#include <type_traits>  // std::false_type / std::true_type traits
#include <utility>      // std::move
#include <vector>       // std::vector parameters


// ---- begin starling/http/cookies.hpp ----
// Cookies of a request: the pairs of its Cookie header (RFC 6265 section 4.2.1), "a=1; b=2", looked
// up by name. Values are returned as the client sent them (only a pair of surrounding double quotes
// is removed): cookies carry no percent-decoding of their own, whatever an application put in them.

#include <cstddef>      // std::size_t
#include <optional>     // std::optional lookup result
#include <string_view>  // std::string_view names and values
#include <vector>       // std::vector repeated cookies


namespace starling::http {

namespace detail {

/// Calls `found(value)` for each pair named `name` in one Cookie header value, in order. Pieces are
/// split on ';' with optional whitespace around them; a piece without '=' is skipped.
template <class Found>
void for_each_cookie(std::string_view header_value, std::string_view name, Found&& found) {
    while (!header_value.empty()) {
        const std::size_t semicolon = header_value.find(';');
        const std::string_view piece = trim_ows(header_value.substr(0, semicolon));
        header_value = semicolon == std::string_view::npos ? std::string_view{} : header_value.substr(semicolon + 1);
        const std::size_t equals = piece.find('=');
        if (equals == std::string_view::npos) continue;
        if (trim_ows(piece.substr(0, equals)) != name) continue;  // cookie names are case-sensitive
        std::string_view value = trim_ows(piece.substr(equals + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        found(value);
    }
}

}  // namespace detail

/// Every value of the cookie `name`, across all Cookie fields, in arrival order.
inline std::vector<std::string_view> find_cookies(const headers& fields, std::string_view name) {
    std::vector<std::string_view> values;
    for (const std::string_view line : fields.get_all("Cookie"))
        detail::for_each_cookie(line, name, [&](std::string_view value) { values.push_back(value); });
    return values;
}

/// The first value of the cookie `name`. A browser sends the cookie with the most specific path
/// first (RFC 6265 section 5.4), so the first is the one meant for this request.
inline std::optional<std::string_view> find_cookie(const headers& fields, std::string_view name) {
    for (const std::string_view line : fields.get_all("Cookie")) {
        std::optional<std::string_view> first;
        detail::for_each_cookie(line, name, [&](std::string_view value) {
            if (!first) first = value;
        });
        if (first) return first;
    }
    return std::nullopt;
}

}  // namespace starling::http
// ---- end starling/http/cookies.hpp ----

// ---- begin starling/http/path_template.hpp ----
// Path templates: an endpoint path with named segments, "/rooms/{room}/ws". A template matches a
// request path with as many segments, the literal ones equal and each named one non-empty; the
// named segments are read back, still percent-encoded, by name.

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <optional>     // std::optional segment
#include <string>       // std::string problems
#include <string_view>  // std::string_view paths
#include <vector>       // std::vector names seen

namespace starling::http {

namespace detail {

constexpr bool is_named_segment(std::string_view segment) noexcept {
    return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

/// Calls `each(segment)` for every '/'-separated segment of `path` after its leading '/' ("/a//b/"
/// has "a", "", "b", ""); stops early when it returns false.
template <class Each>
void for_each_segment(std::string_view path, Each&& each) {
    std::size_t from = path.empty() ? 0 : 1;
    for (;;) {
        const std::size_t end = std::min(path.find('/', from), path.size());
        if (!each(path.substr(from, end - from))) return;
        if (end == path.size()) return;
        from = end + 1;
    }
}

/// Walks template and path segment by segment, calling `named(name, segment)` for each named one.
/// False when they do not match.
template <class Named>
bool walk_path_template(std::string_view pattern, std::string_view path, Named&& named) {
    if (pattern.empty() || path.empty() || pattern.front() != '/' || path.front() != '/') return false;
    std::size_t p = 1, q = 1;
    for (;;) {
        const std::size_t p_end = std::min(pattern.find('/', p), pattern.size());
        const std::size_t q_end = std::min(path.find('/', q), path.size());
        const std::string_view want = pattern.substr(p, p_end - p);
        const std::string_view got = path.substr(q, q_end - q);
        if (is_named_segment(want)) {
            if (got.empty()) return false;
            named(want.substr(1, want.size() - 2), got);
        } else if (want != got) {
            return false;
        }
        const bool pattern_over = p_end == pattern.size(), path_over = q_end == path.size();
        if (pattern_over || path_over) return pattern_over && path_over;
        p = p_end + 1;
        q = q_end + 1;
    }
}

constexpr bool is_name_character(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

}  // namespace detail

/// True when `path` has a named segment: it is a template, not a literal path.
constexpr bool is_path_template(std::string_view path) noexcept { return path.find('{') != std::string_view::npos; }

/// Why `pattern` is not a usable template ("" when it is): every '{' and '}' must enclose a whole
/// segment, and each name must be non-empty, made of letters, digits, '-', '.', '_' or '~', and unique.
inline std::string path_template_problem(std::string_view pattern) {
    std::vector<std::string_view> names;
    std::string problem;
    detail::for_each_segment(pattern, [&](std::string_view segment) {
        if (segment.find_first_of("{}") == std::string_view::npos) return true;
        const std::string_view name = segment.substr(1, segment.size() >= 2 ? segment.size() - 2 : 0);
        if (!detail::is_named_segment(segment) || name.empty() || name.find_first_of("{}") != std::string_view::npos) {
            problem = "a path parameter must be a whole, named segment, as in /rooms/{room}";
        } else {
            for (const char c : name)
                if (!detail::is_name_character(c)) problem = "path parameter names use letters, digits, '-', '.', '_' or '~'";
            for (const std::string_view seen : names)
                if (seen == name) problem = "the path parameter {" + std::string(name) + "} appears twice";
        }
        names.push_back(name);
        return problem.empty();
    });
    if (!problem.empty()) problem += ": \"" + std::string(pattern) + "\"";
    return problem;
}

/// True when `path` (a request path, still percent-encoded) matches `pattern`.
inline bool matches_path_template(std::string_view pattern, std::string_view path) {
    return detail::walk_path_template(pattern, path, [](std::string_view, std::string_view) {});
}

/// The segment of `path` in the place of `{name}` in `pattern`, still percent-encoded; nothing when
/// the path does not match or the template has no such name.
inline std::optional<std::string_view> path_segment(std::string_view pattern, std::string_view path, std::string_view name) {
    std::optional<std::string_view> found;
    const bool matched = detail::walk_path_template(pattern, path, [&](std::string_view n, std::string_view segment) {
        if (n == name) found = segment;
    });
    if (!matched) return std::nullopt;
    return found;
}

/// Whether `pattern` has the segment `{name}`.
inline bool path_template_has(std::string_view pattern, std::string_view name) {
    bool found = false;
    detail::for_each_segment(pattern, [&](std::string_view segment) {
        found = detail::is_named_segment(segment) && segment.substr(1, segment.size() - 2) == name;
        return !found;
    });
    return found;
}

}  // namespace starling::http
// ---- end starling/http/path_template.hpp ----

// ---- begin starling/api/query_coercion.hpp ----
// How a query-parameter string becomes a typed value: the built-in coercions (UTF-8 strings, integers with
// range checks, floating point, bool, enums by name) and the customisation point for user types.
//
// To make your own type usable in starling::query<"name", YourType>, specialise query_coercion:
//
//     template <> struct starling::query_coercion<point> {
//         static constexpr std::string_view expected = "point as x,y";      // used in error messages
//         static std::optional<point> parse(std::string_view text);         // nullopt: invalid value
//     };
//
// Enums are coerced by name once you list their names:
//
//     template <> inline constexpr auto starling::enum_names<color> =
//         std::array{std::pair{std::string_view("red"), color::red}, ...};

#include <array>         // std::array enum name tables
#include <charconv>      // std::from_chars
#include <concepts>      // std::integral, std::floating_point
#include <cstddef>       // std::size_t
#include <optional>      // std::optional results
#include <string>        // std::string values
#include <string_view>   // std::string_view inputs
#include <system_error>  // std::errc
#include <type_traits>   // std::is_enum_v
#include <utility>       // std::pair


namespace starling {

/// Customisation point: specialise for your type (see the top of this file).
template <class T>
struct query_coercion;

/// Names of an enum's values, for coercion by name: specialise as an array of (name, value) pairs.
template <class E>
inline constexpr int enum_names = 0;

namespace detail {

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

template <class E>
concept named_enum = std::is_enum_v<E> && !std::is_same_v<std::remove_cvref_t<decltype(enum_names<E>)>, int>;

}  // namespace detail

// Strings are text: a percent-decoded value that is not UTF-8 ("%FF") is refused here, so a handler
// never has to check, and never echoes bytes a browser could not display or a peer would fail a text
// message over. A handler that wants raw bytes can declare a type of its own.
template <>
struct query_coercion<std::string> {
    static constexpr std::string_view expected = "UTF-8 text";
    static std::optional<std::string> parse(std::string_view text) {
        if (!is_valid_utf8(text)) return std::nullopt;
        return std::string(text);
    }
};

template <>
struct query_coercion<std::string_view> {
    static constexpr std::string_view expected = "UTF-8 text";
    // The view points into the connection's own query parameters, which live as long as it does.
    static std::optional<std::string_view> parse(std::string_view text) {
        if (!is_valid_utf8(text)) return std::nullopt;
        return text;
    }
};

template <>
struct query_coercion<bool> {
    static constexpr std::string_view expected = "boolean";
    static std::optional<bool> parse(std::string_view text) {
        for (std::string_view yes : {"true", "1", "yes", "on"})
            if (detail::iequals(text, yes)) return true;
        for (std::string_view no : {"false", "0", "no", "off"})
            if (detail::iequals(text, no)) return false;
        return std::nullopt;
    }
};

template <std::integral T>
    requires(!std::is_same_v<T, bool>)
struct query_coercion<T> {
    static constexpr std::string_view expected = "integer";
    /// The whole text must be a base-10 integer that fits T: "5x", "", " 5" and overflow are invalid.
    static std::optional<T> parse(std::string_view text) {
        T value{};
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return value;
    }
};

template <std::floating_point T>
struct query_coercion<T> {
    static constexpr std::string_view expected = "number";
    static std::optional<T> parse(std::string_view text) {
        T value{};
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return value;
    }
};

template <detail::named_enum E>
struct query_coercion<E> {
    static constexpr std::string_view expected = "enum value name";
    /// Names match exactly first, then case-insensitively.
    static std::optional<E> parse(std::string_view text) {
        for (const auto& [name, value] : enum_names<E>)
            if (name == text) return value;
        for (const auto& [name, value] : enum_names<E>)
            if (detail::iequals(name, text)) return value;
        return std::nullopt;
    }
};

/// True when T has a coercion (built in or specialised by the user).
template <class T>
concept query_coercible = requires(std::string_view text) {
    { query_coercion<T>::parse(text) } -> std::same_as<std::optional<T>>;
    { query_coercion<T>::expected } -> std::convertible_to<std::string_view>;
};

}  // namespace starling
// ---- end starling/api/query_coercion.hpp ----

namespace starling {

namespace detail {
struct absent_t {};
}  // namespace detail

/// A string usable as a template argument: `query<"room", ...>`. Built at compile time only.
template <std::size_t N>
struct fixed_string {
    char chars[N]{};
    bool present = true;  // false only for the "no default" marker

    consteval fixed_string(const char (&text)[N]) {
        for (std::size_t i = 0; i < N; ++i) chars[i] = text[i];
    }
    consteval explicit fixed_string(detail::absent_t) : present(false) {}

    constexpr std::string_view view() const noexcept { return {chars, N - 1}; }
};

namespace detail {

inline constexpr fixed_string<1> no_default{absent_t{}};

/// Query parameter names: non-empty, made of URL-unreserved characters (RFC 3986), so the name in the
/// signature is exactly the one a client writes.
constexpr bool is_valid_parameter_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok) return false;
    }
    return true;
}

template <class T>
struct optional_traits : std::false_type {};
template <class T>
struct optional_traits<std::optional<T>> : std::true_type {
    using element = T;
};

template <class T>
struct vector_traits : std::false_type {};
template <class T>
struct vector_traits<std::vector<T>> : std::true_type {
    using element = T;
};

/// The type whose coercion applies: T itself, or the element of an optional / vector.
template <class T>
struct coerced {
    using type = T;
};
template <class T>
struct coerced<std::optional<T>> {
    using type = T;
};
template <class T>
struct coerced<std::vector<T>> {
    using type = T;
};
template <class T>
using coerced_type = typename coerced<T>::type;

}  // namespace detail

/// What went wrong resolving a parameter; its text is the HTTP 400 body (or the 1008 close reason).
struct parameter_error {
    std::string message;
};

namespace detail {

/// Where typed parameters are read from: one upgrade request.
struct request_values {
    const query_params* query = nullptr;
    const http::headers* headers = nullptr;
    std::string_view path;           // the request's path, still percent-encoded
    std::string_view path_template;  // the endpoint's path, with its {name} segments
};

/// What every typed parameter is made of: its value, and how to read it.
struct request_parameter_tag {};

template <class T>
class parameter_value : public request_parameter_tag {
public:
    using value_type = T;

    explicit parameter_value(T value) : value_(std::move(value)) {}

    const T& value() const& noexcept { return value_; }
    T&& value() && noexcept { return std::move(value_); }
    const T& operator*() const noexcept { return value_; }
    const T* operator->() const noexcept { return &value_; }
    operator const T&() const noexcept { return value_; }

private:
    T value_;
};

enum class parameter_kind { query, header, cookie, path };

template <class Self, class T, fixed_string Default, class One, class All>
std::optional<Self> resolve_parameter(std::string_view name, One&& one, All&& all, parameter_error& error);

}  // namespace detail

/// A typed query parameter: `starling::query<"room", std::string, "lobby">`.
template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class query : public detail::parameter_value<T> {
    static_assert(detail::is_valid_parameter_name(Name.view()),
                  "starling::query: the parameter name must be non-empty and use only letters, digits, "
                  "'-', '.', '_' or '~'");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::query;
    using detail::parameter_value<T>::parameter_value;

    /// Reads this parameter from a connection's query string; the last value wins when a key repeats.
    static std::optional<query> resolve(const query_params& params, parameter_error& error) {
        return detail::resolve_parameter<query, T, Default>(
            name, [&] { return params.get(name); }, [&] { return params.get_all(name); }, error);
    }
    static std::optional<query> resolve(const detail::request_values& from, parameter_error& error) {
        return resolve(*from.query, error);
    }
};

/// A typed request header: `starling::header<"X-API-Key", std::string>`. The name is matched
/// case-insensitively; a repeated header gives its first value (a std::vector gets them all).
template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class header : public detail::parameter_value<T> {
    static_assert(http::detail::is_token(Name.view()),
                  "starling::header: the header name must be a non-empty HTTP token (letters, digits and "
                  "!#$%&'*+-.^_`|~)");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::header;
    using detail::parameter_value<T>::parameter_value;

    static std::optional<header> resolve(const detail::request_values& from, parameter_error& error) {
        return detail::resolve_parameter<header, T, Default>(
            name, [&] { return from.headers->get(name); }, [&] { return from.headers->get_all(name); }, error);
    }
};

/// A typed cookie of the request's Cookie header: `starling::cookie<"session", std::string>`. Names
/// are case-sensitive; the value is taken as sent (no percent-decoding).
template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class cookie : public detail::parameter_value<T> {
    static_assert(http::detail::is_token(Name.view()),
                  "starling::cookie: the cookie name must be a non-empty HTTP token (letters, digits and "
                  "!#$%&'*+-.^_`|~)");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::cookie;
    using detail::parameter_value<T>::parameter_value;

    static std::optional<cookie> resolve(const detail::request_values& from, parameter_error& error) {
        return detail::resolve_parameter<cookie, T, Default>(
            name, [&] { return http::find_cookie(*from.headers, name); },
            [&] { return http::find_cookies(*from.headers, name); }, error);
    }
};

/// A typed segment of the endpoint's path template: `starling::path<"room", std::string>` for
/// app.websocket("/rooms/{room}/ws", ...). The segment is percent-decoded ('+' stays '+').
template <fixed_string Name, class T>
class path : public detail::parameter_value<T> {
    static_assert(detail::is_valid_parameter_name(Name.view()),
                  "starling::path: the parameter name must be non-empty and use only letters, digits, "
                  "'-', '.', '_' or '~'");
    static_assert(!detail::vector_traits<T>::value && !detail::optional_traits<T>::value,
                  "starling::path: a path parameter is one segment, always present: declare its type itself");
    static_assert(!std::is_same_v<T, std::string_view>,
                  "starling::path: the segment is decoded into a value of its own: use std::string");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = false;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::path;
    using detail::parameter_value<T>::parameter_value;

    static std::optional<path> resolve(const detail::request_values& from, parameter_error& error) {
        std::string decoded;
        const auto one = [&]() -> std::optional<std::string_view> {
            const auto segment = http::path_segment(from.path_template, from.path, name);
            if (!segment) return std::nullopt;
            decoded = percent_decode(*segment, /*plus_is_space=*/false);
            return std::string_view(decoded);
        };
        return detail::resolve_parameter<path, T, detail::no_default>(
            name, one, [] { return std::vector<std::string_view>{}; }, error);
    }
};

namespace detail {

/// True for query, header, cookie and path parameters.
template <class T>
inline constexpr bool is_request_parameter = std::is_base_of_v<request_parameter_tag, T>;

/// A decoded value as an error message quotes it. The message is an HTTP body or a close reason, both
/// text, so the quote must be UTF-8 even when the value is not: valid text is quoted as it is, and
/// each byte of an ill-formed piece is written percent-encoded again ("%FF"), as the client sent it,
/// so the client sees exactly which bytes were refused. (A literal "%FF" that the client itself
/// encoded as "%25FF" looks the same; the message is for reading, not for parsing back.)
inline std::string quote_value(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const utf8_step step = next_utf8_step(text);
        if (step.valid) {
            out.append(text.substr(0, step.size));
        } else {
            for (const char c : text.substr(0, step.size)) {
                const auto byte = static_cast<unsigned char>(c);
                out += '%';
                out += hex[byte >> 4];
                out += hex[byte & 0xF];
            }
        }
        text.remove_prefix(step.size);
    }
    return out;
}

template <class Element>
std::optional<Element> coerce_one(std::string_view name, std::string_view text, parameter_error& error) {
    auto value = query_coercion<Element>::parse(text);
    if (!value) {
        error.message = "Invalid value '" + quote_value(text) + "' for parameter '" + std::string(name) +
                        "': expected " + std::string(query_coercion<Element>::expected);
    }
    return value;
}

}  // namespace detail

namespace detail {

/// The rules every typed parameter follows, wherever its text comes from: `one()` is its value if
/// present, `all()` every value (for a std::vector).
template <class Self, class T, fixed_string Default, class One, class All>
std::optional<Self> resolve_parameter(std::string_view name, One&& one, All&& all, parameter_error& error) {
    using element = coerced_type<T>;
    static_assert(query_coercible<element>,
                  "starling: no coercion for this parameter type; use a string, integer, floating "
                  "point, bool, an enum with starling::enum_names, std::optional / std::vector of those, "
                  "or specialise starling::query_coercion for your type");
    if constexpr (vector_traits<T>::value) {
        T values;
        for (std::string_view text : all()) {
            auto value = coerce_one<element>(name, text, error);
            if (!value) return std::nullopt;
            values.push_back(std::move(*value));
        }
        if (values.empty() && Default.present) {
            auto value = coerce_one<element>(name, Default.view(), error);
            if (!value) return std::nullopt;
            values.push_back(std::move(*value));
        }
        return Self(std::move(values));
    } else {
        const std::optional<std::string_view> text = one();
        if (!text) {
            if constexpr (Default.present) {
                auto value = coerce_one<element>(name, Default.view(), error);
                if (!value) return std::nullopt;
                return Self(T(std::move(*value)));
            } else if constexpr (optional_traits<T>::value) {
                return Self(T{});
            } else {
                error.message = "Missing required parameter: '" + std::string(name) + "'";
                return std::nullopt;
            }
        }
        auto value = coerce_one<element>(name, *text, error);
        if (!value) return std::nullopt;
        return Self(T(std::move(*value)));
    }
}

}  // namespace detail

}  // namespace starling
// ---- end starling/api/params.hpp ----

namespace starling {

class websocket;
class connector;
class handshake_request;

namespace detail {

// ---- what a callable takes and returns ----

template <class F>
struct function_traits {};  // not a function: no `arguments`, so has_readable_signature is false
template <class R, class... A>
struct function_traits<R (*)(A...)> {
    using result = R;
    using arguments = std::tuple<A...>;
};
template <class R, class... A>
struct function_traits<R (*)(A...) noexcept> : function_traits<R (*)(A...)> {};
template <class R, class... A>
struct function_traits<R(A...)> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...)> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...) const> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...) noexcept> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...) const noexcept> : function_traits<R (*)(A...)> {};

/// A lambda or function object is read through its one operator(); a generic lambda has none to read.
template <class F>
struct callable_traits : function_traits<F> {};
template <class F>
    requires requires { &F::operator(); }
struct callable_traits<F> : function_traits<decltype(&F::operator())> {};

/// True for lambdas, function objects with one non-template operator(), functions and pointers to them.
template <class F>
concept has_readable_signature = requires { typename callable_traits<std::decay_t<F>>::arguments; };

// ---- where each parameter comes from ----

enum class source {
    websocket,          // starling::websocket&
    connector,          // starling::connector& (event API)
    message,            // the message text (event API): std::string_view, std::string, const std::string&
    bytes,              // the message bytes (event API): std::span<const std::byte>
    whole_message,      // the message with its type (event API): const starling::message&
    request_parameter,  // starling::query / header / cookie / path<"name", T, ...>
    state,              // starling::state<T>: the connection's state
    request,            // const starling::handshake_request& (authentication hooks)
    globals,            // starling::global_dependencies&
    router,             // starling::router_dependencies&
    dependency,         // T& or const T&: an injected object found by type
    shared_dependency,  // std::shared_ptr<T>: the same, shared
    unsupported,
};

template <class P>
constexpr source source_of() {
    using bare = std::remove_cvref_t<P>;
    if constexpr (std::is_same_v<bare, websocket> && std::is_lvalue_reference_v<P>) return source::websocket;
    else if constexpr (std::is_same_v<bare, connector> && std::is_lvalue_reference_v<P>) return source::connector;
    else if constexpr (std::is_same_v<bare, std::string_view> || std::is_same_v<bare, std::string>) return source::message;
    else if constexpr (std::is_same_v<bare, std::span<const std::byte>>) return source::bytes;
    else if constexpr (std::is_same_v<bare, message> && std::is_const_v<std::remove_reference_t<P>>) return source::whole_message;
    else if constexpr (is_request_parameter<bare>) return source::request_parameter;
    else if constexpr (std::is_base_of_v<connection_state_tag, bare>) return source::state;
    else if constexpr (std::is_same_v<bare, handshake_request> && std::is_lvalue_reference_v<P> &&
                       std::is_const_v<std::remove_reference_t<P>>) return source::request;
    else if constexpr (std::is_same_v<bare, global_dependencies> && std::is_lvalue_reference_v<P>) return source::globals;
    else if constexpr (std::is_same_v<bare, router_dependencies> && std::is_lvalue_reference_v<P>) return source::router;
    else if constexpr (is_shared_ptr<bare>::value) return source::shared_dependency;
    else if constexpr (std::is_lvalue_reference_v<P> && std::is_class_v<bare>) return source::dependency;
    else return source::unsupported;
}

/// Everything a parameter may be drawn from, for one call.
struct call_context {
    websocket* ws = nullptr;
    connector* conn = nullptr;
    const starling::message* received = nullptr;
    request_values request;  // what typed parameters are read from
    state_slot* state = nullptr;
    const handshake_request* handshake = nullptr;
    global_dependencies* globals = nullptr;
    router_dependencies* router = nullptr;
};

/// Looks a typed dependency up: the router's container first, then the app's.
template <class T>
T* find_dependency(const call_context& ctx) {
    if (ctx.router)
        if (T* found = ctx.router->find<T>()) return found;
    return ctx.globals ? ctx.globals->find<T>() : nullptr;
}

template <class P>
decltype(auto) resolve_argument(const call_context& ctx) {
    using bare = std::remove_cvref_t<P>;
    constexpr source from = source_of<P>();
    if constexpr (from == source::websocket) return (*ctx.ws);
    else if constexpr (from == source::connector) return (*ctx.conn);
    else if constexpr (from == source::message) return bare(ctx.received->view());
    else if constexpr (from == source::bytes) return std::as_bytes(std::span<const char>(ctx.received->data));
    else if constexpr (from == source::whole_message) return (*ctx.received);
    else if constexpr (from == source::globals) return (*ctx.globals);
    else if constexpr (from == source::router) return (*ctx.router);
    else if constexpr (from == source::request_parameter) {
        parameter_error ignored;  // checked before the upgrade: it resolves now
        return bare(*bare::resolve(ctx.request, ignored));  // a value: the optional is a temporary
    } else if constexpr (from == source::state) return bare(ctx.state->get<typename bare::value_type>());
    else if constexpr (from == source::request) return (*ctx.handshake); else if constexpr (from == source::shared_dependency) {
        using T = typename shared_target<bare>::type;
        if (ctx.router)
            if (auto found = ctx.router->find_shared<T>()) return found;
        return ctx.globals->find_shared<T>();
    } else {
        return (*find_dependency<bare>(ctx));
    }
}

/// A dependency some handler needs by type, checked when the app starts.
struct dependency_requirement {
    std::type_index type;
    std::string_view name;
};

/// What the app checks about a registered callable before it serves: its typed request parameters
/// (per connection, before the upgrade), its dependencies and the path segments it names (once, at
/// start).
struct signature_checks {
    /// Resolves every typed request parameter; returns the first error message, or nothing.
    std::optional<std::string> (*check_request)(const request_values&) = nullptr;
    std::vector<dependency_requirement> dependencies;
    std::vector<std::string_view> path_names;  // of its starling::path parameters
};

/// Derives from report<position, P> only when the parameter is not supported. report's static_assert
/// then fails inside a template whose arguments are the parameter's position and type, so the
/// compiler's instantiation notes show both next to the message.
template <bool supported, template <int, class> class report, int position, class P>
struct report_if_unsupported {};
template <template <int, class> class report, int position, class P>
struct report_if_unsupported<false, report, position, P> : report<position, P> {};

template <class Arguments>
struct signature;

template <class... A>
struct signature<std::tuple<A...>> {
    /// True when every parameter's source is one `allowed` accepts (each API has its own set).
    template <bool (*allowed)(source)>
    static constexpr bool all_allowed = (allowed(source_of<A>()) && ...);

    /// Fails compilation once for each parameter `allowed` rejects, through report<position, type>
    /// (position counted from 1 over the whole parameter list), when its size is asked for.
    template <bool (*allowed)(source), template <int, class> class report,
              class = std::index_sequence_for<A...>>
    struct unsupported_report;
    template <bool (*allowed)(source), template <int, class> class report, std::size_t... I>
    struct unsupported_report<allowed, report, std::index_sequence<I...>>
        : report_if_unsupported<allowed(source_of<A>()), report, static_cast<int>(I) + 1, A>... {};

    static std::optional<std::string> check_request(const request_values& values) {
        std::optional<std::string> failure;
        auto check_one = [&]<class P>() {
            if constexpr (source_of<P>() == source::request_parameter) {
                if (failure) return;
                parameter_error error;
                if (!std::remove_cvref_t<P>::resolve(values, error)) failure = std::move(error.message);
            }
        };
        (check_one.template operator()<A>(), ...);
        (void)check_one;  // unused when the callable takes no parameters
        return failure;
    }

    static signature_checks checks() {
        signature_checks result;
        result.check_request = &check_request;
        auto add_one = [&]<class P>() {
            constexpr source from = source_of<P>();
            if constexpr (from == source::dependency) {
                using T = std::remove_cvref_t<P>;
                result.dependencies.push_back({std::type_index(typeid(T)), type_name<T>()});
            } else if constexpr (from == source::shared_dependency) {
                using T = typename shared_target<std::remove_cvref_t<P>>::type;
                result.dependencies.push_back({std::type_index(typeid(T)), type_name<T>()});
            } else if constexpr (from == source::request_parameter) {
                using T = std::remove_cvref_t<P>;
                if constexpr (T::kind == parameter_kind::path) result.path_names.push_back(T::name);
            }
        };
        (add_one.template operator()<A>(), ...);
        (void)add_one;
        return result;
    }

    template <class F>
    static decltype(auto) invoke(F& f, const call_context& ctx) {
        return f(resolve_argument<A>(ctx)...);
    }
};

template <class F>
using signature_of = signature<typename callable_traits<std::decay_t<F>>::arguments>;

template <class F>
using result_of = typename callable_traits<std::decay_t<F>>::result;

}  // namespace detail
}  // namespace starling
// ---- end starling/api/signature.hpp ----

namespace starling {

class websocket;

namespace detail {

using handler_function = std::function<task<>(websocket&)>;
/// on_connect / on_close after adaptation: the text to send, if any.
using text_callback = std::function<task<std::optional<std::string>>(websocket&)>;

/// What an authentication hook decided: refused, or admitted with the state its connection starts with.
struct hook_outcome {
    std::optional<refusal> refused;
    state_slot state;
};
/// The authentication hook after adaptation, called with the upgrade request's context.
using hook_function = std::function<task<hook_outcome>(const call_context&)>;

struct endpoint_state {
    std::string path;
    handler_function handler;
    text_callback on_connect;
    text_callback on_close;
    signature_checks handler_checks;
    signature_checks on_connect_checks;
    signature_checks on_close_checks;
    /// Runs before the upgrade; may refuse it or give the connection its state. None by default.
    hook_function hook;
    signature_checks hook_checks;
    /// The endpoint's subprotocols in order of preference (none: no Sec-WebSocket-Protocol answer).
    std::vector<std::string> subprotocols;
    /// A client that offers subprotocols, none of them ours: refused with 400 (true), or served
    /// without one.
    bool refuse_unknown_subprotocol = true;
    /// Origin patterns accepted (http/origin.hpp); empty accepts every origin.
    std::vector<std::string> allowed_origins;
    /// With an allow-list: whether a request without an Origin header (not from a browser) passes.
    bool allow_missing_origin = true;
    websocket_options options;
    bool options_set = false;  // set through endpoint.options(); otherwise the app's defaults apply
    connection_registry<connection_base> registry;
    endpoint_metrics metrics;  // its connections' counters, one block per worker
    std::shared_ptr<const log_channel> log;
    std::shared_ptr<global_dependencies> globals;
    /// The container of the router that registered this endpoint (the app's own for app.websocket).
    std::shared_ptr<starling::router_dependencies> router_deps;
    /// The app's topics and backplane, shared by all its endpoints (the app sets its own when it
    /// starts; this one serves an endpoint used without an app).
    std::shared_ptr<pubsub> hub = std::make_shared<pubsub>();
    /// With the app's backplane: whether this endpoint's broadcasts and send_to reach other processes.
    bool across_processes = true;

    /// Resolves every typed request parameter the handler and callbacks declare; the first problem's
    /// message, or nothing. Run before the upgrade.
    std::optional<std::string> check_request(const request_values& values) const {
        for (const signature_checks* checks : {&handler_checks, &on_connect_checks, &on_close_checks})
            if (checks->check_request)
                if (auto problem = checks->check_request(values)) return problem;
        return std::nullopt;
    }

    void log_line(log_level level, std::string_view event, std::string_view connection_id, std::string_view line) const noexcept {
        if (log) log->write(level, event, path, connection_id, line);
    }
};

}  // namespace detail
}  // namespace starling
// ---- end starling/runtime/endpoint_state.hpp ----

// ---- begin starling/api/websocket.hpp ----
// The `websocket` a handler receives: a thin handle on one upgraded connection. Its
// receive/send/broadcast/close are coroutines. The connection itself (session/connection.hpp) reads,
// writes, closes and keeps the time limits; this handle adds what belongs to the endpoint: broadcast
// and send_to reach the endpoint's other connections, JSON is parsed with a parser of this
// connection's own. It lives as long as the connection, so a handler, on_connect and on_close all see
// the same object.

#include <chrono>       // std::chrono::steady_clock::duration timeouts
#include <cstdint>      // std::uint16_t close codes
#include <optional>     // std::optional receive-with-deadline results
#include <string>       // std::string payloads
#include <string_view>  // std::string_view views
#include <unordered_map>  // topic name -> this connection's membership
#include <vector>         // std::vector topic names


// ---- begin starling/api/message_calls.hpp ----
// What both ends of a WebSocket connection can do with it: receive, send and close, as coroutines,
// with the JSON forms. The server's `websocket` and the client's `client_websocket` both offer
// exactly these, from this one place; each adds what belongs to its side (broadcast and topics for
// the server, the chosen subprotocol and the URL for the client).

#include <chrono>       // std::chrono::steady_clock::duration timeouts
#include <cstdint>      // std::uint16_t close codes
#include <optional>     // std::optional receive-with-deadline results
#include <string>       // std::string payloads
#include <string_view>  // std::string_view close reasons


// ---- begin starling/api/json.hpp ----
// JSON for send_json / receive_json: a small writer for C++ values, and an owning document type for
// what simdjson parses, so a received value outlives the connection's next receive.

#include <charconv>      // std::to_chars for numbers
#include <cmath>         // std::isfinite
#include <concepts>      // std::integral, std::floating_point
#include <cstddef>       // std::nullptr_t
#include <cstdint>       // std::int64_t, std::uint64_t: how simdjson hands out integers
#include <cstdio>        // std::snprintf for control-character escapes
#include <initializer_list>  // json_object's field list
#include <limits>        // std::numeric_limits<float> for get<float>
#include <map>           // std::map detection
#include <optional>      // std::optional values
#include <ranges>        // std::ranges::range for arrays
#include <simdjson.h>    // simdjson::dom parser, document and element
#include <stdexcept>     // std::runtime_error for invalid_json
#include <string>        // std::string output
#include <string_view>   // std::string_view keys and strings
#include <type_traits>   // std::remove_cvref_t, std::conditional_t
#include <utility>       // std::move, std::exchange, std::in_range, std::index_sequence

namespace starling {

/// Already-serialised JSON, written as it is.
struct raw_json {
    using serialized_json = void;  // written verbatim by write_json
    std::string text;
};

/// Thrown by receive_json() for a message that is not JSON. Left uncaught in a handler, it closes the
/// connection with 1007 (invalid payload) rather than 1011.
class invalid_json : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

inline void write_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (const char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                out += buf;
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

template <class T>
concept string_like = std::convertible_to<const T&, std::string_view>;

/// What may name a field: text. nullptr converts to std::string_view in C++20, and would crash.
template <class T>
concept json_key = string_like<T> && !std::same_as<std::remove_cvref_t<T>, std::nullptr_t>;

template <class T>
concept map_like = requires(const T& m) {
    typename T::key_type;
    typename T::mapped_type;
    requires string_like<typename T::key_type>;
    m.begin()->second;
};

}  // namespace detail

class json_document;

/// Appends `value` as JSON to `out`: strings, numbers, bools, null (nullptr, empty optional), ranges
/// (arrays), maps with string keys (objects), raw_json, and received json_documents or their parts.
template <class T>
void write_json(std::string& out, const T& value);

inline void write_json(std::string& out, const simdjson::dom::element& value) { out += simdjson::to_string(value); }

template <class T>
void write_json(std::string& out, const T& value) {
    if constexpr (std::same_as<T, std::nullptr_t>) {
        out += "null";
    } else if constexpr (std::same_as<T, bool>) {
        out += value ? "true" : "false";
    } else if constexpr (requires { typename T::serialized_json; }) {
        out += value.text;  // raw_json, json_object
    } else if constexpr (std::same_as<T, simdjson::simdjson_result<simdjson::dom::element>>) {
        // doc["key"]: written as the element it holds (whatever its JSON type), or null if absent.
        if (value.error()) out += "null"; else write_json(out, value.value_unsafe());
    } else if constexpr (detail::string_like<T>) {
        detail::write_json_string(out, std::string_view(value));
    } else if constexpr (std::integral<T>) {
        char buf[32];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
        (void)ec;  // 32 bytes hold any integer
        out.append(buf, end);
    } else if constexpr (std::floating_point<T>) {
        if (!std::isfinite(value)) {
            out += "null";  // JSON has no NaN or infinity
            return;
        }
        char buf[64];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
        (void)ec;  // 64 bytes hold any shortest-round-trip double
        const std::string_view text(buf, static_cast<std::size_t>(end - buf));
        out += text;
        // Keep a double a double for the reader: 3.0 is written "3.0", not "3".
        if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
    } else if constexpr (requires { value.has_value(); *value; }) {
        if (value.has_value()) write_json(out, *value); else out += "null";
    } else if constexpr (requires { value.root(); }) {
        write_json(out, value.root());
    } else if constexpr (detail::map_like<T>) {
        out.push_back('{');
        bool first = true;
        for (const auto& [key, item] : value) {
            if (!first) out.push_back(',');
            first = false;
            detail::write_json_string(out, std::string_view(key));
            out.push_back(':');
            write_json(out, item);
        }
        out.push_back('}');
    } else if constexpr (std::ranges::range<T>) {
        out.push_back('[');
        bool first = true;
        for (const auto& item : value) {
            if (!first) out.push_back(',');
            first = false;
            write_json(out, item);
        }
        out.push_back(']');
    } else {
        static_assert(sizeof(T) == 0,
                      "starling::write_json: unsupported type; use strings, numbers, bools, nullptr, "
                      "optionals, ranges, maps with string keys, or starling::raw_json");
    }
}

template <class T>
std::string to_json(const T& value) {
    std::string out;
    write_json(out, value);
    return out;
}

/// One "key": value pair of a json_object, serialised when made, so the values may differ in type.
struct json_field {
    template <class T>
    json_field(std::string_view key, const T& value) {
        detail::write_json_string(text, key);
        text.push_back(':');
        write_json(text, value);
    }
    std::string text;
};

/// A heterogeneous JSON object: `json_object{{"id", ws.id()}, {"echo", data}, {"timestamp", 1.5}}`.
struct json_object {
    using serialized_json = void;
    json_object(std::initializer_list<json_field> fields) {
        text.push_back('{');
        bool first = true;
        for (const json_field& f : fields) {
            if (!first) text.push_back(',');
            first = false;
            text += f.text;
        }
        text.push_back('}');
    }
    std::string text;
};

// ---- Objects without a braced list ------------------------------------------------------------
// g++ 12 rejects a braced list inside a co_await expression ("array used as initializer"), so
// `co_await ws.send_json(json_object{{"k", v}})` does not compile. These forms take plain arguments
// instead: keys and values alternating, or one add() per field on a builder.

namespace detail {

template <class... Args>
consteval bool keys_are_text() {
    constexpr std::size_t count = sizeof...(Args);
    constexpr bool is_key[count + 1] = {json_key<Args>..., true};  // +1: no zero-length array
    for (std::size_t i = 0; i < count; i += 2)
        if (!is_key[i]) return false;
    return true;
}

template <class Key, class Value>
void write_json_field(std::string& out, const Key& key, const Value& value) {
    if (out.size() > 1) out.push_back(',');  // past the '{'
    write_json_string(out, std::string_view(key));
    out.push_back(':');
    write_json(out, value);
}

template <class Key, class Value, class... More>
void write_json_fields(std::string& out, const Key& key, const Value& value, const More&... more) {
    write_json_field(out, key, value);
    if constexpr (sizeof...(More) > 0) write_json_fields(out, more...);
}

}  // namespace detail

/// `to_json_object("type", "move", "x", 3, "ok", true)` is `{"type":"move","x":3,"ok":true}`: keys
/// (text) and values (anything to_json takes) alternating. What `ws.send_json(key, value, ...)` sends.
template <class... Args>
std::string to_json_object(const Args&... args) {
    static_assert(sizeof...(Args) % 2 == 0,
                  "starling::send_json(key, value, ...) / starling::to_json_object: keys and values come in "
                  "pairs (\"key\", value, \"key\", value, ...), and this call has an odd number of arguments");
    static_assert(detail::keys_are_text<Args...>(),
                  "starling::send_json(key, value, ...) / starling::to_json_object: every key (the 1st, 3rd, "
                  "5th... argument) must be text: a string literal, std::string or std::string_view");
    std::string out = "{";
    // Only a well-formed call goes on, so a mistake gives the one message above, not more errors.
    if constexpr (sizeof...(Args) % 2 == 0 && detail::keys_are_text<Args...>()) {
        if constexpr (sizeof...(Args) > 0) detail::write_json_fields(out, args...);
    }
    out.push_back('}');
    return out;
}

/// An object built one field at a time, for fields that depend on conditions or loops:
///
///     starling::json_object_builder reply;
///     reply.add("type", "move");
///     if (hit) reply.add("target", *hit);
///     co_await ws.send_json(reply);
///
/// `text` is a complete object after every add(), so the builder can be sent or nested at any point.
/// Each value is serialised when added.
struct json_object_builder {
    using serialized_json = void;  // written verbatim by write_json

    template <class Value>
    json_object_builder& add(std::string_view key, const Value& value) & {
        text.pop_back();  // the closing '}'
        detail::write_json_field(text, key, value);
        text.push_back('}');
        return *this;
    }
    /// On a temporary: `starling::json_object_builder().add("a", 1).add("b", 2)`.
    template <class Value>
    json_object_builder&& add(std::string_view key, const Value& value) && {
        return std::move(add(key, value));
    }

    std::string text = "{}";
};

// ---- Typed fields of a received document --------------------------------------------------------

namespace detail {

// Character types are not numbers here (get<std::string> reads text); signed and unsigned char are,
// being std::int8_t and std::uint8_t.
template <class T>
concept character = std::same_as<T, char> || std::same_as<T, wchar_t> || std::same_as<T, char8_t> ||
                    std::same_as<T, char16_t> || std::same_as<T, char32_t>;

template <class T>
concept json_readable =
    std::same_as<T, bool> || (std::integral<T> && !character<T>) || std::floating_point<T> ||
    std::same_as<T, std::string> || std::same_as<T, std::string_view> || std::same_as<T, simdjson::dom::element> ||
    std::same_as<T, simdjson::dom::object> || std::same_as<T, simdjson::dom::array>;

/// One step of a path: a key into an object, or an index into an array.
template <class Step>
simdjson::simdjson_result<simdjson::dom::element> json_step(const simdjson::dom::element& at, const Step& step) noexcept {
    if constexpr (json_key<Step>) {
        simdjson::dom::object object;
        if (at.get(object) != simdjson::SUCCESS) return simdjson::INCORRECT_TYPE;
        return object[std::string_view(step)];
    } else {
        simdjson::dom::array array;
        if (at.get(array) != simdjson::SUCCESS) return simdjson::INCORRECT_TYPE;
        if (!std::in_range<std::size_t>(step)) return simdjson::INDEX_OUT_OF_BOUNDS;
        return array.at(static_cast<std::size_t>(step));
    }
}

/// The value as T, or nothing when it is of another JSON type or out of T's range.
template <class T>
std::optional<T> json_as(const simdjson::dom::element& value) {
    if constexpr (std::same_as<T, bool> || std::same_as<T, std::string_view> || std::same_as<T, simdjson::dom::element> ||
                  std::same_as<T, simdjson::dom::object> || std::same_as<T, simdjson::dom::array>) {
        T out{};
        if (value.get(out) != simdjson::SUCCESS) return std::nullopt;
        return out;
    } else if constexpr (std::same_as<T, std::string>) {
        std::string_view out;
        if (value.get(out) != simdjson::SUCCESS) return std::nullopt;
        return std::string(out);
    } else if constexpr (std::integral<T>) {
        // simdjson keeps integers as int64 or uint64 (and refuses a double such as 3.0 for either);
        // each is then checked against T's range, so 300 is no std::uint8_t and -1 no unsigned.
        using wide = std::conditional_t<std::is_signed_v<T>, std::int64_t, std::uint64_t>;
        wide out = 0;
        if (value.get(out) != simdjson::SUCCESS || !std::in_range<T>(out)) return std::nullopt;
        return static_cast<T>(out);
    } else {
        double out = 0;  // any JSON number: simdjson converts integers too
        if (value.get(out) != simdjson::SUCCESS) return std::nullopt;
        if constexpr (std::same_as<T, float>) {
            if (out > std::numeric_limits<float>::max() || out < -std::numeric_limits<float>::max()) return std::nullopt;
        }
        return static_cast<T>(out);
    }
}

template <class Step>
concept json_path_step = json_key<Step> || (std::integral<Step> && !std::same_as<Step, bool>);

template <class T, class... Path>
consteval void check_json_get() {
    static_assert(json_readable<T>,
                  "starling::json_get<T> / json_document::get<T>: T must be bool, an integer type, float, double, "
                  "std::string, std::string_view (valid while the document is), or simdjson::dom::element, "
                  "object or array");
    static_assert((json_path_step<Path> && ...),
                  "starling::json_get / json_document::get: each step of the path is a key (text) or an array "
                  "index (an integer)");
}

}  // namespace detail

/// The value at `path` under `at` as T: `json_get<int>(element, "player", "score")`,
/// `json_get<std::string>(element, "players", 0, "name")`. Nothing if a step is missing (no such key,
/// an index past the end, not an object or array where the path goes on) or the value is of another
/// type or out of T's range. Never throws for what the JSON holds.
template <class T, class... Path>
std::optional<T> json_get(const simdjson::dom::element& at, const Path&... path) {
    detail::check_json_get<T, Path...>();
    if constexpr (detail::json_readable<T> && (detail::json_path_step<Path> && ...)) {
        simdjson::dom::element here = at;
        const bool found = ((detail::json_step(here, path).get(here) == simdjson::SUCCESS) && ...);
        if (!found) return std::nullopt;
        return detail::json_as<T>(here);
    } else {
        return std::nullopt;
    }
}

/// A parsed JSON message that owns its storage: valid for as long as you keep it, across any number of
/// later receives. `doc["type"]`, `doc.root()` give simdjson elements.
class json_document {
public:
    json_document() = default;

    /// Parses `text`; throws invalid_json if it is not JSON. `parser` is reused scratch space only.
    static json_document parse(simdjson::dom::parser& parser, std::string_view text) {
        json_document d;
        // simdjson reads up to SIMDJSON_PADDING bytes past the end, so parse from a padded copy.
        const simdjson::padded_string padded(text);
        const auto result = parser.parse_into_document(d.document_, padded);
        if (result.error()) throw invalid_json(std::string("invalid JSON: ") + simdjson::error_message(result.error()));
        d.parsed_ = true;
        return d;
    }

    /// parse() for what receive_text_for() gave: nothing stays nothing.
    static std::optional<json_document> parse_optional(simdjson::dom::parser& parser,
                                                       const std::optional<std::string>& text) {
        if (!text) return std::nullopt;
        return parse(parser, *text);
    }

    json_document(json_document&& other) noexcept
        : document_(std::move(other.document_)), parsed_(std::exchange(other.parsed_, false)) {}
    json_document& operator=(json_document&& other) noexcept {
        document_ = std::move(other.document_);
        parsed_ = std::exchange(other.parsed_, false);
        return *this;
    }

    // Elements point at the document object itself, so they are made on demand, never stored: that
    // keeps a moved json_document valid.
    simdjson::dom::element root() const noexcept { return document_.root(); }
    simdjson::simdjson_result<simdjson::dom::element> operator[](std::string_view key) const noexcept { return root()[key]; }
    std::string dump() const { return simdjson::to_string(root()); }

    /// The field as T, or nothing if it is missing or of another type (see json_get): `doc.get<int>("n")`,
    /// `doc.get<std::string>("player", "name")`, `doc.get<double>("points", 0)`. Never throws for what
    /// the message holds; an empty (default-made or moved-from) document has no fields.
    template <class T, class... Path>
    std::optional<T> get(const Path&... path) const {
        if (!parsed_) return std::nullopt;
        return json_get<T>(root(), path...);
    }

    /// The field as the fallback's type, or the fallback: `doc.get_or("n", 0)`, `doc.get_or("ok", false)`.
    /// A text fallback (`doc.get_or("name", "anonymous")`) gives a std::string.
    template <class T>
    auto get_or(std::string_view key, const T& fallback) const {
        using result = std::conditional_t<detail::json_key<T> && !std::same_as<T, std::string_view>, std::string, T>;
        return get<result>(key).value_or(result(fallback));
    }

private:
    simdjson::dom::document document_;
    bool parsed_ = false;  // root() of a document never parsed into reads no tape
};

}  // namespace starling
// ---- end starling/api/json.hpp ----

namespace starling::detail {

class message_calls {
public:
    /// True until the connection starts closing (either side).
    bool is_open() const noexcept { return connection_->is_open(); }

    // ---- Receiving --------------------------------------------------------------------------------
    // One receive at a time per connection. Messages the peer sent before it closed are still
    // delivered; after them, and at once when this side closed, receives throw websocket_disconnect.
    // (Plain functions handing back the connection's coroutine: no coroutine frame of their own.)

    /// The next message, text or binary.
    task<message> receive() { return connection_->receive(); }

    /// The next message, or nothing if `timeout` passes first (a receive with a timeout, as Robyn's
    /// guide writes with wait_for).
    task<std::optional<message>> receive_for(std::chrono::steady_clock::duration timeout) {
        return connection_->receive_for(timeout);
    }

    /// The next text message. A binary message here is a protocol mismatch: the connection closes with
    /// 1003 (unsupported data) and this throws websocket_disconnect.
    task<std::string> receive_text() { return connection_->receive_text(); }

    /// receive_text() with a deadline: nothing if `timeout` passes first.
    task<std::optional<std::string>> receive_text_for(std::chrono::steady_clock::duration timeout) {
        auto m = co_await connection_->receive_for(timeout);
        if (!m) co_return std::nullopt;
        co_return co_await connection_->expect_text(std::move(*m));
    }

    /// The next message's bytes, binary or text.
    task<std::string> receive_bytes() { co_return (co_await connection_->receive()).data; }

    /// The next text message parsed as JSON (simdjson). The document owns its data: it stays valid
    /// across later receives. Throws invalid_json for a message that is not JSON.
    task<json_document> receive_json() {
        const std::string text = co_await receive_text();
        co_return json_document::parse(json_parser_, text);
    }

    // ---- Sending ----------------------------------------------------------------------------------
    // Every send goes through this connection's one writer, so frames never interleave. A send
    // completes once the frame is queued; while the queue is above the high-water mark it waits for it
    // to drain. After the connection is gone for sending (our close frame queued, the peer gone),
    // sends throw websocket_disconnect.

    task<> send_text(std::string text) { return connection_->send_frame(opcode::text, std::move(text)); }
    task<> send_bytes(std::string bytes) { return connection_->send_frame(opcode::binary, std::move(bytes)); }

    /// Sends `value` as a JSON text message: strings, numbers, bools, nullptr, optionals, vectors,
    /// maps, raw_json, json_object, received json_documents. `value` is serialised at the call.
    template <class T>
    task<> send_json(const T& value) {
        return connection_->send_frame(opcode::text, to_json(value));
    }
    task<> send_json(json_object object) { return connection_->send_frame(opcode::text, std::move(object.text)); }

    // ---- JSON without braced lists (the logic is in api/json.hpp; this block only forwards) -------
    /// Sends the object of these keys and values: `co_await ws.send_json("type", "move", "x", 3)`.
    /// No braced list, so it compiles inside co_await with g++ 12 (see to_json_object).
    template <class Key, class Value, class... More>
    task<> send_json(const Key& key, const Value& value, const More&... more) {
        return connection_->send_frame(opcode::text, to_json_object(key, value, more...));
    }
    /// receive_json() with a deadline: nothing if `timeout` passes first.
    task<std::optional<json_document>> receive_json_for(std::chrono::steady_clock::duration timeout) {
        const std::optional<std::string> text = co_await receive_text_for(timeout);
        co_return json_document::parse_optional(json_parser_, text);
    }
    // ---- end of JSON without braced lists ----------------------------------------------------------

    /// Starts the close handshake: (on the server, on_close runs and its text is sent, then) a close
    /// frame with `code` and `reason`. Pending and later receives throw websocket_disconnect. Does
    /// nothing if already closing.
    task<> close(std::uint16_t code = 1000, std::string_view reason = {}) { return connection_->close(code, reason); }
    task<> close(close_code code, std::string_view reason = {}) {
        return connection_->close(static_cast<std::uint16_t>(code), reason);
    }

    // ---- The rest ---------------------------------------------------------------------------------

    /// The event loop this connection lives on; its coroutines must run there (a timer of the
    /// handler's is made on it).
    asio::io_context& context() const noexcept { return connection_->context(); }

    /// Bytes of memory the outbound queue holds (what max_queued_bytes limits): payloads plus a fixed
    /// overhead per frame.
    std::size_t queued_bytes() const noexcept { return connection_->queued_bytes(); }

    /// This connection's numbers: what it buffers, messages in and out, the last ping's round trip,
    /// its age.
    connection_stats stats() const { return connection_->stats(); }

protected:
    explicit message_calls(connection_base& connection) noexcept : connection_(&connection) {}
    message_calls(message_calls&&) noexcept = default;
    message_calls& operator=(message_calls&&) noexcept = default;
    ~message_calls() = default;

    /// The connection these calls reach, for what each side adds.
    connection_base& engine() const noexcept { return *connection_; }

private:
    connection_base* connection_;
    simdjson::dom::parser json_parser_;
};

}  // namespace starling::detail
// ---- end starling/api/message_calls.hpp ----

// ---- begin starling/api/recipients.hpp ----
// Who a broadcast reaches. The fan-out itself (one shared frame, delivered to each receiver on its
// own thread, in order) is websocket::broadcast; the frame sharing is detail/write_queue.hpp.

namespace starling {

/// Recipients of websocket::broadcast: every open connection of the endpoint, or all but the sender.
enum class recipients { everyone, others };

}  // namespace starling
// ---- end starling/api/recipients.hpp ----

namespace starling {

/// receive/send/close (api/message_calls.hpp), and what belongs to the server's side: identity,
/// broadcast, send_to and topics.
class websocket : public detail::message_calls {
public:
    /// Made by the runtime once per connection, when it is upgraded.
    websocket(detail::connection_base& connection, detail::endpoint_state& endpoint) noexcept
        : message_calls(connection), endpoint_(endpoint) {}

    websocket(const websocket&) = delete;
    websocket& operator=(const websocket&) = delete;

    // ---- Identity -------------------------------------------------------------------------------

    /// A random UUID v4, unique to this connection.
    const std::string& id() const noexcept { return engine().id(); }
    /// The query string's parameters, percent-decoded.
    const starling::query_params& query_params() const noexcept { return engine().query_params(); }
    /// The upgrade request's headers; names are case-insensitive.
    const http::headers& headers() const noexcept { return engine().headers(); }
    /// The peer's IP address and port.
    const client_address& client() const noexcept { return engine().client(); }
    /// The request path, without the query string.
    std::string_view path() const noexcept { return engine().path(); }
    /// The subprotocol chosen in the handshake (the endpoint's subprotocols()), or "" for none.
    std::string_view subprotocol() const noexcept;

    // ---- State ------------------------------------------------------------------------------------
    // One typed value per connection (api/connection_state.hpp): the authentication hook's, or one
    // put here in on_connect. Every later callback sees it; it goes with the connection.

    /// The state, which must be a T: throws std::logic_error otherwise (in a handler: a 1011 close).
    template <class T>
    T& state() const { return state_.get<T>(); }
    /// The state if it is a T, else nullptr.
    template <class T>
    T* find_state() const noexcept { return state_.find<T>(); }
    /// Replaces the state with a T made of `args`.
    template <class T, class... Args>
    T& emplace_state(Args&&... args) { return state_.emplace<T>(std::forward<Args>(args)...); }


    /// Sends a text message to every open connection of this endpoint (this one included, unless
    /// `who` is recipients::others). The frame is encoded once and shared by all receivers.
    task<> broadcast(std::string_view text, recipients who = recipients::everyone) {
        queue_broadcast(text, who);
        co_return;
    }
    task<> broadcast_bytes(std::string_view bytes, recipients who = recipients::everyone) {
        fan_out(detail::make_shared_frame(opcode::binary, bytes), who);
        endpoint_.hub->broadcast_elsewhere(endpoint_.path, opcode::binary, bytes);  // other processes, if any
        co_return;
    }

    /// Sends a text message to the connection of this endpoint with that id. False if there is none.
    task<bool> send_to(std::string_view connection_id, std::string_view text) { co_return queue_to(connection_id, text); }

    /// The queueing under broadcast() and send_to(), without suspending (the event API's sync_* calls).
    void queue_broadcast(std::string_view text, recipients who = recipients::everyone) {
        fan_out(detail::make_shared_frame(opcode::text, text), who);
        endpoint_.hub->broadcast_elsewhere(endpoint_.path, opcode::text, text);  // other processes, if any
    }
    bool queue_to(std::string_view connection_id, std::string_view text) {
        // This connection itself, also before it joins the registry (in on_connect).
        if (connection_id == engine().id()) return engine().queue_text(std::string(text));
        auto target = endpoint_.registry.find(connection_id);
        if (!target) return endpoint_.hub->send_elsewhere(endpoint_.path, connection_id, text);  // another process?
        target->deliver_text(std::string(text));
        return true;
    }

    // ---- Topics (runtime/topic_registry.hpp; other processes through the app's backplane) --------
    // Topics are the app's, shared by all its endpoints. A connection is in a topic from subscribe()
    // to unsubscribe() or its end, however it ends. One subscribed in on_connect receives the topic's
    // publishes once its greeting is queued (nothing reaches a client before its greeting), as for
    // broadcasts; topic sizes count it from then on.

    /// Joins `topic`. False if this connection is in it already, or is closing.
    bool subscribe(std::string_view topic) {
        if (topics_over_ || !engine().is_open() || memberships_.contains(topic)) return false;
        auto& place = memberships_[std::string(topic)];
        if (topics_live_) endpoint_.hub->topics.join(engine().context(), std::string(topic), engine().shared_from_this(), place);
        return true;
    }

    /// Leaves `topic`. False if this connection was not in it.
    bool unsubscribe(std::string_view topic) {
        const auto it = memberships_.find(topic);
        if (it == memberships_.end()) return false;
        endpoint_.hub->topics.leave(it->second);
        memberships_.erase(it);
        return true;
    }

    /// The topics this connection is in, in no particular order.
    std::vector<std::string> topics() const {
        std::vector<std::string> names;
        names.reserve(memberships_.size());
        for (const auto& [name, place] : memberships_) names.push_back(name);
        return names;
    }
    bool subscribed(std::string_view topic) const { return memberships_.contains(topic); }

    /// Sends a text message to every connection in `topic` (this one included if it is in it, unless
    /// `who` is recipients::others), on every worker and, with a backplane, in every process. The
    /// frame is encoded once per process and shared by all receivers.
    task<> publish(std::string_view topic, std::string_view text, recipients who = recipients::everyone) {
        queue_publish(topic, text, who);
        co_return;
    }
    task<> publish_bytes(std::string_view topic, std::string_view bytes, recipients who = recipients::everyone) {
        publish_frame(topic, opcode::binary, bytes, who);
        co_return;
    }
    /// publish() without suspending (the event API's sync_publish). Returns the members reached in
    /// this process, counted as the publish was made.
    std::size_t queue_publish(std::string_view topic, std::string_view text, recipients who = recipients::everyone) {
        return publish_frame(topic, opcode::text, text, who);
    }

    /// For the runtime: the connection's greeting is queued, its subscriptions take effect now.
    void topics_reachable() {
        if (topics_live_ || topics_over_) return;
        topics_live_ = true;
        for (auto& [name, place] : memberships_)
            endpoint_.hub->topics.join(engine().context(), name, engine().shared_from_this(), place);
    }
    /// For the runtime: the connection ended; it leaves every topic and joins none again.
    void leave_topics() {
        topics_over_ = true;
        for (auto& [name, place] : memberships_) endpoint_.hub->topics.leave(place);
        memberships_.clear();
    }
    // ---- end of topics ----------------------------------------------------------------------------

    // ---- The rest ---------------------------------------------------------------------------------

    /// The endpoint this connection belongs to.
    const detail::endpoint_state& endpoint() const noexcept { return endpoint_; }

    /// For the runtime: the handshake's decisions, kept for the connection's life.
    void adopt_handshake(detail::state_slot state, int subprotocol) noexcept {
        state_ = std::move(state);
        subprotocol_ = static_cast<std::int16_t>(subprotocol);
    }
    detail::state_slot& state_storage() noexcept { return state_; }

    /// Asks for a close (1000) once the current reply is sent: the event API's connector::close(),
    /// where a handler closes and still returns its reply ("Closing connection").
    void request_close_after_reply() noexcept { close_requested_ = true; }
    bool close_requested() const noexcept { return close_requested_; }

private:
    void fan_out(const detail::shared_frame& frame, recipients who) {
        // In on_connect the connection is not in the registry yet (nothing reaches a client before its
        // greeting), but a broadcast it makes itself still includes it.
        if (who == recipients::everyone && !engine().registered) engine().receive_broadcast(frame);
        endpoint_.registry.broadcast(engine().context(), frame, who == recipients::others ? &engine() : nullptr);
    }

    // ---- topics ----
    std::size_t publish_frame(std::string_view topic, opcode op, std::string_view payload, recipients who) {
        const auto frame = detail::make_shared_frame(op, payload);
        // Before the greeting the connection is not in its topics yet, but its own publish still
        // reaches it, as a broadcast does.
        if (who == recipients::everyone && !topics_live_ && !topics_over_ && memberships_.contains(topic))
            engine().receive_broadcast(frame);
        return endpoint_.hub->publish(&engine().context(), topic, frame, op, payload,
                                      who == recipients::others ? &engine() : nullptr);
    }

    struct topic_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
    };
    using membership = detail::topic_registry<detail::connection_base>::membership;
    // Node-based: the registry points at each membership, so they must not move.
    std::unordered_map<std::string, membership, topic_hash, std::equal_to<>> memberships_;
    bool topics_live_ = false;  // the greeting is queued: memberships are in the registry
    bool topics_over_ = false;  // the connection ended
    // ---- end of topics ----

    detail::endpoint_state& endpoint_;
    detail::state_slot state_;      // one pointer while empty
    std::int16_t subprotocol_ = -1;  // an index into the endpoint's subprotocols, or none
    bool close_requested_ = false;
};

inline std::string_view websocket::subprotocol() const noexcept {
    if (subprotocol_ < 0) return {};
    return endpoint_.subprotocols[static_cast<std::size_t>(subprotocol_)];
}

}  // namespace starling
// ---- end starling/api/websocket.hpp ----

namespace starling::detail {

template <class T>
inline constexpr bool dependent_false = false;

/// A callback's result as optional text: nothing for void, an empty optional or empty text (as in
/// Robyn, where returning "" from on_connect sends nothing).
template <class R>
std::optional<std::string> to_optional_text(R&& result) {
    using T = std::remove_cvref_t<R>;
    if constexpr (std::convertible_to<T, std::string_view>) {
        const std::string_view text(result);
        if (text.empty()) return std::nullopt;
        return std::string(text);
    } else {
        if (!result.has_value()) return std::nullopt;
        return to_optional_text(*std::forward<R>(result));
    }
}

template <class R>
concept text_result = std::convertible_to<std::remove_cvref_t<R>, std::string_view> ||
                      requires(R r) { { r.has_value() } -> std::convertible_to<bool>; { std::string_view(*r) }; };

/// What a callable produces: T for a task<T>, R itself otherwise.
template <class R>
struct task_value {
    using type = R;
};
template <class T, class Executor>
struct task_value<asio::awaitable<T, Executor>> {
    using type = T;
};

template <class R>
inline constexpr bool returns_text_or_nothing = std::is_void_v<typename task_value<R>::type> ||
                                                text_result<typename task_value<R>::type>;

/// Calls `f` with its arguments resolved from `ctx` and turns whatever it returns (text, an optional,
/// nothing, or a task of those) into the text to send, if any.
template <class F>
task<std::optional<std::string>> invoke_for_text(F& f, call_context ctx) {
    using R = result_of<F>;
    if constexpr (is_task_v<R>) {
        if constexpr (std::is_void_v<typename R::value_type>) {
            co_await signature_of<F>::invoke(f, ctx);
            co_return std::nullopt;
        } else {
            co_return to_optional_text(co_await signature_of<F>::invoke(f, ctx));
        }
    } else if constexpr (std::is_void_v<R>) {
        signature_of<F>::invoke(f, ctx);
        co_return std::nullopt;
    } else {
        co_return to_optional_text(signature_of<F>::invoke(f, ctx));
    }
}

/// What coroutine-API handlers and callbacks may declare.
constexpr bool coroutine_api_parameter(source s) {
    return s == source::websocket || s == source::request_parameter || s == source::state || s == source::globals ||
           s == source::router || s == source::dependency || s == source::shared_dependency;
}

/// What an authentication hook may declare: the request and what is read from it, and dependencies.
constexpr bool hook_parameter(source s) {
    return s == source::request || s == source::request_parameter || s == source::globals || s == source::router ||
           s == source::dependency || s == source::shared_dependency;
}

/// What a callable of `ws`'s endpoint may draw its arguments from (the event API adds its own).
inline call_context context_for(websocket& ws, connector* conn = nullptr, const message* received = nullptr) {
    const endpoint_state& endpoint = ws.endpoint();
    call_context ctx;
    ctx.ws = &ws;
    ctx.conn = conn;
    ctx.received = received;
    ctx.request = request_values{&ws.query_params(), &ws.headers(), ws.path(), endpoint.path};
    ctx.state = &ws.state_storage();
    ctx.globals = endpoint.globals.get();
    ctx.router = endpoint.router_deps.get();
    return ctx;
}

/// Instantiated for a handler or callback parameter no source supplies: the compiler's notes read
/// `unsupported_handler_parameter<position, type>`, the position counted from 1.
template <int position, class type>
struct unsupported_handler_parameter {
    static_assert(dependent_false<type>,
                  "starling: unsupported parameter type in a websocket handler or callback (the note "
                  "'unsupported_handler_parameter<position, type>' names it, counting from 1); it may "
                  "declare starling::websocket&, starling::query<\"name\", T>, starling::header<...>, "
                  "starling::cookie<...>, starling::path<...>, starling::state<T>, "
                  "starling::global_dependencies&, starling::router_dependencies&, or an injected "
                  "dependency as T& or std::shared_ptr<T>");
};

template <class F>
constexpr bool readable_coroutine_api_signature() {
    if constexpr (!has_readable_signature<F>) return false;
    else return signature_of<F>::template all_allowed<coroutine_api_parameter>;
}

/// The one readable error for a signature readable_coroutine_api_signature rejects. Kept apart from
/// that check, which sits in `if constexpr` conditions: a failed instantiation inside it would make
/// clang report the condition as not constant, a second error.
template <class F>
void reject_coroutine_api_signature() {
    if constexpr (!has_readable_signature<F>) {
        static_assert(dependent_false<F>,
                      "starling: a handler or callback must be a function or a lambda with concrete "
                      "parameter types (no 'auto' parameters)");
    } else {
        (void)sizeof(typename signature_of<F>::template unsupported_report<coroutine_api_parameter,
                                                                             unsupported_handler_parameter>);
    }
}

template <class F>
void adapt_handler(F handler, endpoint_state& endpoint) {
    if constexpr (readable_coroutine_api_signature<F>()) {
        if constexpr (!std::is_same_v<result_of<F>, task<>>) {
            static_assert(dependent_false<F>,
                          "starling: a websocket handler must be a coroutine returning starling::task<> "
                          "(write `-> starling::task<>` and use co_await)");
        } else {
            endpoint.handler = [handler = std::move(handler)](websocket& ws) mutable {
                return signature_of<F>::invoke(handler, context_for(ws));
            };
            endpoint.handler_checks = signature_of<F>::checks();
        }
    } else {
        reject_coroutine_api_signature<F>();
    }
}

template <class F>
void adapt_text_callback(F callback, text_callback& slot, signature_checks& checks) {
    if constexpr (readable_coroutine_api_signature<F>()) {
        static_assert(returns_text_or_nothing<result_of<F>>,
                      "starling: on_connect / on_close must return text (std::string, const char*, "
                      "std::string_view), std::optional of text, or nothing (or a task of those)");
        slot = [callback = std::move(callback)](websocket& ws) mutable {
            return invoke_for_text(callback, context_for(ws));
        };
        checks = signature_of<F>::checks();
    } else {
        reject_coroutine_api_signature<F>();
    }
}

}  // namespace starling::detail

namespace starling::detail {

/// Instantiated for a hook parameter no source supplies: the compiler's notes read
/// `unsupported_hook_parameter<position, type>`, the position counted from 1.
template <int position, class type>
struct unsupported_hook_parameter {
    static_assert(dependent_false<type>,
                  "starling: unsupported parameter type in an authentication hook (the note "
                  "'unsupported_hook_parameter<position, type>' names it, counting from 1); it may declare "
                  "const starling::handshake_request&, starling::query / header / cookie / path<\"name\", T>, "
                  "starling::global_dependencies&, starling::router_dependencies&, or an injected "
                  "dependency as T& or std::shared_ptr<T>");
};

template <class R>
struct is_admission : std::false_type {};
template <class T>
struct is_admission<admission<T>> : std::true_type {};

/// An admission as the upgrade uses it: refused, or the state it starts the connection with.
template <class T>
hook_outcome to_hook_outcome(admission<T>&& decided) {
    hook_outcome outcome;
    if (!decided.admitted()) {
        outcome.refused = std::move(*decided.refused());
    } else if constexpr (!std::is_void_v<T>) {
        outcome.state.emplace<T>(std::move(*decided.value()));
    }
    return outcome;
}

template <class F>
task<hook_outcome> run_hook(F& hook, call_context ctx) {
    using R = result_of<F>;
    if constexpr (is_task_v<R>) co_return to_hook_outcome(co_await signature_of<F>::invoke(hook, ctx));
    else co_return to_hook_outcome(signature_of<F>::invoke(hook, ctx));
}

template <class F>
void adapt_hook(F hook, endpoint_state& endpoint) {
    if constexpr (!has_readable_signature<F>) {
        static_assert(dependent_false<F>,
                      "starling: an authentication hook must be a function or a lambda with concrete "
                      "parameter types (no 'auto' parameters)");
    } else if constexpr (!signature_of<F>::template all_allowed<hook_parameter>) {
        (void)sizeof(typename signature_of<F>::template unsupported_report<hook_parameter, unsupported_hook_parameter>);
    } else if constexpr (!is_admission<std::remove_cvref_t<typename task_value<result_of<F>>::type>>::value) {
        static_assert(dependent_false<F>,
                      "starling: an authentication hook returns starling::admission<T> (a T admits, "
                      "starling::refuse(status, body) refuses), or a task of one");
    } else {
        endpoint.hook = [hook = std::move(hook)](const call_context& ctx) mutable { return run_hook(hook, ctx); };
        endpoint.hook_checks = signature_of<F>::checks();
    }
}

}  // namespace starling::detail
// ---- end starling/api/callbacks.hpp ----

// ---- begin starling/endpoint.hpp ----
// The handle app.websocket() returns: attach on_connect / on_close, set per-endpoint options.

#include <cstddef>  // std::size_t
#include <memory>   // std::shared_ptr endpoint state
#include <initializer_list>  // subprotocol and origin lists
#include <stdexcept>         // std::invalid_argument for unusable lists
#include <string>            // std::string path
#include <utility>           // std::move
#include <vector>            // std::vector lists


namespace starling {

class endpoint {
public:
    explicit endpoint(std::shared_ptr<detail::endpoint_state> state) : state_(std::move(state)) {}

    /// Runs when a client connects, before the handler; its returned text is the client's first
    /// message. A plain function or a coroutine; may return text, an optional, or nothing.
    template <class F>
    endpoint& on_connect(F callback) {
        detail::adapt_text_callback(std::move(callback), state_->on_connect, state_->on_connect_checks);
        return *this;
    }

    /// Runs exactly once when the connection ends, however it ends. Its returned text is sent as the
    /// final message when the server is the side that closes.
    template <class F>
    endpoint& on_close(F callback) {
        detail::adapt_text_callback(std::move(callback), state_->on_close, state_->on_close_checks);
        return *this;
    }

    /// Runs before the upgrade, once per connection: declares what it reads (the request, typed
    /// headers, cookies, query and path parameters, dependencies), may be a coroutine, and returns a
    /// starling::admission<T>. A refusal (starling::refuse(401, "...")) answers the upgrade request
    /// with that status and body, and nothing else runs: no on_connect, no handler, no registration.
    /// An admission's T becomes the connection's state, which every callback can declare as
    /// starling::state<T> or read with ws.state<T>(). Like a handler, the hook runs on the worker of
    /// its connection, so connections on different workers run it at once: what it shares must be
    /// safe to use that way. Call before the app starts.
    template <class F>
    endpoint& authenticate(F hook) {
        detail::adapt_hook(std::move(hook), *state_);
        return *this;
    }

    /// What a client that offers subprotocols none of which is ours gets.
    enum class unknown_subprotocol { refuse, serve_without };

    /// The subprotocols this endpoint speaks, most preferred first. Of those the client offers, the
    /// first in this list is chosen and answered in Sec-WebSocket-Protocol (ws.subprotocol() reads it).
    /// A client offering none of them gets 400 naming these (or, with serve_without, is served with
    /// no subprotocol); a client offering none at all is served without one.
    endpoint& subprotocols(std::vector<std::string> supported, unknown_subprotocol policy = unknown_subprotocol::refuse) {
        for (const std::string& name : supported)
            if (!http::detail::is_token(name))
                throw std::invalid_argument("starling: a subprotocol name must be an HTTP token: \"" + name + "\"");
        if (supported.size() > 1000) throw std::invalid_argument("starling: too many subprotocols");
        state_->subprotocols = std::move(supported);
        state_->refuse_unknown_subprotocol = policy == unknown_subprotocol::refuse;
        return *this;
    }

    /// Browsers' origins this endpoint accepts, as exact origins ("https://example.com") or with a
    /// wildcard for subdomains ("https://*.example.com"); any other Origin gets 403 before the upgrade.
    /// Without a list (the default) every origin is accepted. A request with no Origin header (a
    /// program, not a browser page, which could send any Origin it likes) passes unless
    /// `allow_missing` is false.
    endpoint& allow_origins(std::vector<std::string> patterns, bool allow_missing = true) {
        state_->allowed_origins = std::move(patterns);
        state_->allow_missing_origin = allow_missing;
        return *this;
    }

    /// This endpoint's limits (message size, queues, timeouts).
    endpoint& options(const websocket_options& options) {
        state_->options = options;
        state_->options_set = true;
        return *this;
    }
    const websocket_options& options() const noexcept { return state_->options; }

    const std::string& path() const noexcept { return state_->path; }

    /// With a backplane (app.use_backplane), this endpoint's broadcasts and send_to reach the
    /// endpoint in every process; `false` keeps them to this process. Topics are the app's and cross
    /// processes either way. Call before the app starts.
    endpoint& across_processes(bool shared) {
        state_->across_processes = shared;
        return *this;
    }

    /// Open connections right now.
    std::size_t connection_count() const { return state_->registry.size(); }

private:
    std::shared_ptr<detail::endpoint_state> state_;
};

}  // namespace starling
// ---- end starling/endpoint.hpp ----

// ---- begin starling/http/response.hpp ----
// Plain HTTP answers on the WebSocket port: app.get("/", ...) serves a page (a browser client, a
// health check) next to the endpoints. One request per connection: the server answers, then closes.

#include <functional>  // std::function page handlers
#include <string>      // std::string content type and body


namespace starling::http {

struct response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

/// Answers a GET on its path. Runs on a worker thread, synchronously: keep it quick.
using page_handler = std::function<response(const request&)>;

}  // namespace starling::http
// ---- end starling/http/response.hpp ----

// ---- begin starling/router.hpp ----
// Routers: a path prefix with its own endpoints and its own dependency container, included into an
// app (or into another router, joining prefixes).
//
//     starling::router rooms("/rooms");
//     rooms.inject(room_directory{});
//     rooms.websocket("/ws", handler);          // served at /rooms/ws with rooms' dependencies
//     app.include_router(rooms);

#include <memory>     // std::shared_ptr router state
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string prefixes and paths
#include <utility>    // std::move
#include <vector>     // std::vector endpoints and children


namespace starling {

namespace detail {

/// Joins path pieces with single slashes: ("/sub_router", "/nested/", "ws") -> "/sub_router/nested/ws".
inline std::string join_paths(std::string_view prefix, std::string_view path) {
    std::string joined(prefix);
    while (!joined.empty() && joined.back() == '/') joined.pop_back();
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    joined += '/';
    joined += path;
    return joined;
}

struct router_state {
    std::string prefix;
    std::shared_ptr<starling::router_dependencies> dependencies = std::make_shared<starling::router_dependencies>();
    /// Endpoints with their paths relative to prefix (an included endpoint's state holds its full path).
    std::vector<std::pair<std::string, std::shared_ptr<endpoint_state>>> endpoints;
    std::vector<std::shared_ptr<router_state>> children;

    std::shared_ptr<endpoint_state> add_endpoint(std::string path) {
        if (path.empty() || path.front() != '/')
            throw std::invalid_argument("starling: endpoint path must start with '/': \"" + path + "\"");
        if (const std::string problem = http::path_template_problem(path); !problem.empty())
            throw std::invalid_argument("starling: " + problem);
        for (const auto& [existing, state] : endpoints)
            if (existing == path)
                throw std::invalid_argument("starling: an endpoint is already registered at " +
                                            join_paths(prefix, path));
        auto state = std::make_shared<endpoint_state>();
        state->path = join_paths(prefix, path);
        state->router_deps = dependencies;
        endpoints.emplace_back(std::move(path), state);
        return state;
    }
};

}  // namespace detail

class router {
public:
    explicit router(std::string prefix) : state_(std::make_shared<detail::router_state>()) {
        if (prefix.empty() || prefix.front() != '/')
            throw std::invalid_argument("starling: router prefix must start with '/': \"" + prefix + "\"");
        state_->prefix = std::move(prefix);
    }

    /// Registers a coroutine endpoint at prefix + path, with this router's dependencies.
    template <class Handler>
    endpoint websocket(std::string path, Handler handler) {
        auto state = state_->add_endpoint(std::move(path));
        detail::adapt_handler(std::move(handler), *state);
        return endpoint(state);
    }

    /// Adds a dependency to this router's container, found by type.
    template <class T>
    router& inject(T&& value) {
        state_->dependencies->add(std::forward<T>(value));
        return *this;
    }
    /// Adds a dependency found by name (and by type).
    template <class T>
    router& inject(std::string name, T&& value) {
        state_->dependencies->add(std::move(name), std::forward<T>(value));
        return *this;
    }

    /// Nests `child`: its endpoints are served under this router's prefix followed by its own.
    router& include_router(const router& child) {
        state_->children.push_back(child.state_);
        return *this;
    }

    router_dependencies& dependencies() noexcept { return *state_->dependencies; }
    const std::string& prefix() const noexcept { return state_->prefix; }

    /// For the app: what this router holds.
    const std::shared_ptr<detail::router_state>& state() const noexcept { return state_; }

private:
    std::shared_ptr<detail::router_state> state_;
};

}  // namespace starling
// ---- end starling/router.hpp ----

// ---- begin starling/runtime/server.hpp ----
// The network side of an app: worker threads (one event loop each), the listening sockets (each with
// its transport: plain TCP here, TLS from <starling/tls.hpp>; see runtime/transport.hpp), the
// connections from accept to their end (runtime/upgrade.hpp runs their handshake), and graceful
// shutdown.

#include <asio/co_spawn.hpp>      // asio::co_spawn per connection
#include <asio/detached.hpp>      // asio::detached
#include <asio/executor_work_guard.hpp>  // keeps idle worker loops running
#include <asio/io_context.hpp>    // asio::io_context per worker
#include <asio/ip/tcp.hpp>        // asio::ip::tcp acceptor and sockets
#include <asio/post.hpp>          // asio::post cross-thread hand-offs
#include <asio/signal_set.hpp>    // asio::signal_set for SIGINT / SIGTERM
#include <asio/steady_timer.hpp>  // asio::steady_timer accept pause
#include <asio/use_awaitable.hpp> // asio::use_awaitable
#include <asio/write.hpp>         // asio::async_write responses
#include <algorithm>              // std::max, std::min
#include <atomic>                 // std::atomic counters and flags
#include <cerrno>                 // ENFILE
#include <chrono>                 // std::chrono deadlines
#include <csignal>                // SIGINT, SIGTERM
#include <cstddef>                // std::size_t
#include <cstdint>                // std::uint16_t port
#include <functional>             // std::less<> for heterogeneous route lookup, std::function signal actions
#include <exception>              // std::exception of a signal action
#include <map>                    // std::map routes
#include <memory>                 // std::shared_ptr, std::unique_ptr
#include <optional>               // std::optional handshake results
#include <string>                 // std::string responses
#include <thread>                 // std::thread workers
#include <vector>                 // std::vector workers


// ---- begin starling/runtime/accept_backoff.hpp ----
// What the accept loop does when accepting fails, sans I/O: how long to pause before the next try,
// and which failures to log. A failure that repeats (out of file descriptors, say: the waiting
// connection stays in the backlog and every retry fails at once) must cost neither a spinning core
// nor a flood of log lines, and the server must resume at full speed as soon as accepting works again.

#include <algorithm>  // std::min
#include <chrono>     // std::chrono durations and time points
#include <cstddef>    // std::size_t
#include <optional>   // std::optional report

namespace starling::detail {

class accept_backoff {
public:
    using clock = std::chrono::steady_clock;

    /// The first pause is short, so a passing shortage costs a client little; each failure in a row
    /// doubles it up to a second, so a lasting one costs the server next to nothing.
    static constexpr std::chrono::milliseconds first_pause{10};
    static constexpr std::chrono::milliseconds longest_pause{1000};
    /// At most one log line per this interval.
    static constexpr std::chrono::seconds report_interval{10};

    /// An accept failed: how long to pause before the next one.
    std::chrono::milliseconds failed() noexcept {
        const std::chrono::milliseconds pause = pause_;
        pause_ = std::min(pause_ * 2, longest_pause);
        return pause;
    }

    /// An accept succeeded: the next failure pauses briefly again.
    void succeeded() noexcept { pause_ = first_pause; }

    /// Whether the failure that happened at `now` gets a log line. If it does, the result is how many
    /// failures went unlogged since the last line; if not, this one is counted among them.
    std::optional<std::size_t> report(clock::time_point now) noexcept {
        if (reported_ && now - last_report_ < report_interval) {
            ++unreported_;
            return std::nullopt;
        }
        reported_ = true;
        last_report_ = now;
        const std::size_t skipped = unreported_;
        unreported_ = 0;
        return skipped;
    }

private:
    std::chrono::milliseconds pause_ = first_pause;
    bool reported_ = false;
    clock::time_point last_report_{};
    std::size_t unreported_ = 0;
};

}  // namespace starling::detail
// ---- end starling/runtime/accept_backoff.hpp ----

// ---- begin starling/runtime/address_counts.hpp ----
// Open connections per client IP address, server-wide, for server_options::max_connections_per_ip.
// A connection counts from the start of its handshake to its end, so a burst from one address is
// judged as it arrives, before any of it is upgraded. Touched twice per connection, never per message:
// one mutex is enough.

#include <cstddef>        // std::size_t
#include <mutex>          // std::mutex: connections of every worker come and go
#include <string>         // std::string addresses
#include <unordered_map>  // address -> open connections
#include <utility>        // std::move

namespace starling::detail {

class address_counts {
public:
    /// One more connection from `ip`; returns how many it has now, this one included.
    std::size_t add(const std::string& ip) {
        std::lock_guard lock(mutex_);
        return ++counts_[ip];
    }
    void remove(const std::string& ip) {
        std::lock_guard lock(mutex_);
        const auto it = counts_.find(ip);
        if (it == counts_.end()) return;
        if (--it->second == 0) counts_.erase(it);
    }
    std::size_t count(const std::string& ip) const {
        std::lock_guard lock(mutex_);
        const auto it = counts_.find(ip);
        return it == counts_.end() ? 0 : it->second;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::size_t> counts_;
};

/// Counts a connection from its address for as long as it lives; counts nothing without a cap.
class address_guard {
public:
    address_guard(address_counts& counts, std::string ip, std::size_t cap)
        : counts_(cap == 0 ? nullptr : &counts), ip_(std::move(ip)) {
        if (counts_) over_ = counts_->add(ip_) > cap;
    }
    address_guard(const address_guard&) = delete;
    address_guard& operator=(const address_guard&) = delete;
    ~address_guard() {
        if (counts_) counts_->remove(ip_);
    }
    bool over_cap() const noexcept { return over_; }

private:
    address_counts* counts_;
    std::string ip_;
    bool over_ = false;
};

}  // namespace starling::detail
// ---- end starling/runtime/address_counts.hpp ----

// ---- begin starling/runtime/live_connections.hpp ----
// Every connection the server holds, from accept to its end, whether still in its handshake or
// upgraded, so that graceful shutdown reaches all of them: the endpoints' registries only know
// connections whose on_connect has finished (the greeting-first rule), which would let a connection
// upgraded just before a SIGTERM miss its 1001.

#include <asio/co_spawn.hpp>     // asio::co_spawn the 1001 closes
#include <asio/detached.hpp>     // asio::detached
#include <asio/io_context.hpp>   // asio::io_context each connection lives on
#include <asio/post.hpp>         // asio::post: the 1001 closes start later, not under the lock
#include <asio/use_awaitable.hpp>  // asio::use_awaitable
#include <cstdint>               // std::uint64_t ids
#include <memory>                // std::shared_ptr
#include <mutex>                 // std::mutex: connections of every worker come and go
#include <unordered_map>         // id -> connection


namespace starling::detail {

class live_connections {
public:
    using id_type = std::uint64_t;

    /// A connection in its handshake.
    id_type add(asio::io_context& context, std::shared_ptr<connection_base> connection) {
        std::lock_guard lock(mutex_);
        const id_type id = next_id_++;
        connections_.emplace(id, entry{&context, std::move(connection), false});
        return id;
    }

    /// The connection is upgraded. False once shutdown has begun: the caller closes it with 1001
    /// itself, since close_all() has already passed it by.
    bool upgraded(id_type id) {
        std::lock_guard lock(mutex_);
        if (closing_) return false;
        if (const auto it = connections_.find(id); it != connections_.end()) it->second.upgraded = true;
        return true;
    }

    void remove(id_type id) {
        std::lock_guard lock(mutex_);
        connections_.erase(id);
    }

    /// Shutdown's first step: upgraded connections start their close handshake with 1001. Those still
    /// in their handshake finish it (answered 503, or upgraded and closed with 1001 at once) or run
    /// into their handshake timeout or abort_all().
    void close_all() {
        std::lock_guard lock(mutex_);
        closing_ = true;
        for (const auto& [id, e] : connections_)
            if (e.upgraded) asio::co_spawn(*e.context, close_going_away(e.connection), asio::detached);
    }

    /// Shutdown's last step, at its deadline: drop whatever is left, so that every connection's
    /// coroutines finish while the event loops still run.
    void abort_all() {
        std::lock_guard lock(mutex_);
        for (const auto& [id, e] : connections_) e.connection->abort();
    }

private:
    struct entry {
        asio::io_context* context;
        std::shared_ptr<connection_base> connection;
        bool upgraded;
    };

    static task<> close_going_away(std::shared_ptr<connection_base> connection) {
        // Later, not under close_all()'s lock: co_spawn would start it at once on this thread, and
        // on_close is user code.
        co_await asio::post(connection->context(), asio::use_awaitable);
        co_await connection->close(static_cast<std::uint16_t>(close_code::going_away), "server shutting down");
    }

    std::mutex mutex_;
    std::unordered_map<id_type, entry> connections_;
    id_type next_id_ = 0;
    bool closing_ = false;
};

}  // namespace starling::detail
// ---- end starling/runtime/live_connections.hpp ----

// ---- begin starling/runtime/reserve_descriptor.hpp ----
// A file descriptor held in reserve. Out of descriptors, a server cannot even accept a connection to
// refuse it: the client waits in the listen backlog for an answer that never comes. With one
// descriptor set aside, the server can give it back, accept the waiting connections one at a time
// (each reuses the freed number), answer them, close them, and take its reserve again.

#if defined(_WIN32)

namespace starling::detail {

// Sockets on Windows are handles, with no per-process limit like POSIX's RLIMIT_NOFILE to run into:
// nothing to reserve.
class reserve_descriptor {
public:
    bool acquire() noexcept { return false; }
    bool release() noexcept { return false; }
    bool held() const noexcept { return false; }
};

}  // namespace starling::detail

#else

#include <fcntl.h>   // ::open
#include <unistd.h>  // ::close

namespace starling::detail {

class reserve_descriptor {
public:
    reserve_descriptor() = default;
    reserve_descriptor(const reserve_descriptor&) = delete;
    reserve_descriptor& operator=(const reserve_descriptor&) = delete;
    ~reserve_descriptor() { release(); }

    /// Takes a descriptor (of /dev/null, which any process may open and which costs nothing) unless
    /// one is held already. False if none could be had.
    bool acquire() noexcept {
        if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        return fd_ >= 0;
    }

    /// Gives the descriptor back, so that the next one the process opens can have it. False if none
    /// was held.
    bool release() noexcept {
        if (fd_ < 0) return false;
        ::close(fd_);
        fd_ = -1;
        return true;
    }

    bool held() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace starling::detail

#endif
// ---- end starling/runtime/reserve_descriptor.hpp ----

// ---- begin starling/runtime/endpoint_connection.hpp ----
// A connection of an endpoint: the engine (session/connection.hpp) joined to what the user wrote for
// that endpoint. It owns the connection's one `websocket` handle, calls on_connect, the handler and
// on_close through it, turns what they throw into a close code, and keeps the connection in the
// endpoint's registry (what broadcasts reach) and its topics from its greeting to its end.

#include <exception>    // std::exception_ptr, std::rethrow_exception
#include <memory>       // std::shared_ptr of the endpoint
#include <optional>     // std::optional handle, made at the upgrade
#include <string>       // std::string texts
#include <string_view>  // std::string_view bytes behind the handshake
#include <utility>      // std::move


// ---- begin starling/session/connection.hpp ----
// A connection on one stream type: the reader and the writer over `Stream` (a TCP socket, an
// in-memory stream in tests; see session/tcp_stream.hpp for what a stream offers), on top of what
// every connection shares (session/connection_base.hpp).
//
// The reader is a coroutine, the only code that reads the stream: it parses frames, answers pings
// and fills the inbox. The writer is not a coroutine: at the end of each turn of the event loop it
// writes the outbound queue in gathered writes until the stream refuses, and only then waits for the
// stream to become writable.

#include <asio/buffer.hpp>                  // asio::buffer, asio::const_buffer
#include <asio/post.hpp>                    // asio::post: let the loop's others run
#include <asio/use_awaitable.hpp>           // asio::use_awaitable
#include <algorithm>                        // std::copy_n of the probe
#include <array>                            // std::array probe
#include <cstdint>                          // SIZE_MAX, std::uint64_t
#include <chrono>                           // std::chrono deadlines
#include <cstddef>                          // std::size_t
#include <optional>                         // std::optional direct-read result
#include <span>                             // std::span views of input
#include <string>                           // std::string carried input
#include <string_view>                      // std::string_view bytes behind the handshake
#include <utility>                          // std::move
#include <vector>                           // std::vector gathered buffers


namespace starling::detail {

template <class Stream>
class connection : public connection_base {
public:
    /// A connection on `stream`, whose operations complete on `context`; it begins in its handshake.
    connection(Stream stream, asio::io_context& context) : connection_base(context), stream_(std::move(stream)) {
        client_ = stream_.remote_address();
    }

    /// The stream, for the handshake (runtime/upgrade.hpp) before the connection runs.
    Stream& stream() noexcept { return stream_; }

    /// After upgraded(): `already_read` holds bytes the peer sent right behind its handshake (its
    /// first frames), which the reader parses before reading more. A client's connection reads as
    /// `role::client`: the server's frames must not be masked.
    void set_already_read(std::string_view already_read, role local = role::server) {
        reader_ = message_reader({local, options().max_message_size, options().max_frame_size, compressing()});
        carried_.assign(already_read.begin(), already_read.end());
    }

protected:
    // ---- reading ----
    // The reader waits for input with a read into probe_, a few hundred bytes of its own: a small
    // message arrives whole in it, at the cost of one system call, as with any buffer. When the probe
    // fills, the rest is read at once into the worker's shared buffer (session/worker_buffers.hpp)
    // behind a copy of the probe. (Waiting for readiness instead would cost an epoll_ctl per wait.)
    // Whatever was read is parsed before the reader next suspends. Only two things make it suspend
    // with bytes unparsed: a full inbox (bytes in the shared buffer move to carried_, this
    // connection's own, until the handler makes room) and the end of the connection (the rest no
    // longer matters). A large frame's payload is read straight into the message instead, in reads
    // that grow with what has arrived.

    task<> read_loop() override {
        std::span<char> input(carried_.data(), carried_.size());  // first, the bytes behind the handshake
        bool input_is_shared = false;  // in the worker's buffer, which others reuse while we wait
        bool more_waiting = false;     // the last read filled its buffer: the stream may hold more now
        std::optional<read_result> direct;  // the outcome of a direct read, handled as read()'s are
        unsigned reads_in_a_row = 0;
        for (;;) {
            while (direct || !input.empty()) {
                read_result r{read_status::need_more, 0};
                if (direct) {
                    r = *direct;
                    direct.reset();
                } else {
                    r = reader_.read(input);
                    input = input.subspan(r.consumed);
                }
                switch (r.status) {
                case read_status::need_more: break;
                case read_status::message: {
                    message_ended();
                    if (!is_open()) break;  // closing: data is no longer delivered
                    std::error_code bad;
                    message m = take_message(bad);
                    if (bad) {
                        co_await protocol_failed(static_cast<std::uint16_t>(close_code_for(static_cast<error>(bad.value()))),
                                                 bad.message());
                        co_return;
                    }
                    deliver(std::move(m));
                    if (is_open() && inbox_full()) {
                        // Other connections of this worker read into the shared buffer while this one
                        // waits: what is left of the input must be this connection's own.
                        if (input_is_shared) {
                            carried_.assign(input.data(), input.size());
                            input = std::span<char>(carried_.data(), carried_.size());
                            input_is_shared = false;
                        }
                        co_await wait_for_inbox_space();
                    }
                    break;
                }
                case read_status::ping: answer_ping(reader_.payload()); break;
                case read_status::pong: pong_arrived(); break;  // any input counts as life
                case read_status::close: co_await peer_closed(reader_.close_frame()); co_return;
                case read_status::failed: {
                    const auto ec = reader_.error();
                    co_await protocol_failed(static_cast<std::uint16_t>(close_code_for(static_cast<error>(ec.value()))),
                                             ec.message());
                    co_return;
                }
                }
                if (r.status == read_status::need_more) break;
            }
            if (carried_.capacity() > sizeof(std::string)) std::string().swap(carried_);  // parsed: the storage goes
            if (reader_.in_message()) message_begun();
            // The rest of a large frame goes straight into the message.
            if (reader_.data_payload_remaining() >= direct_read_threshold) {
                // A spare buffer of this loop big enough for the whole frame, if there is one: memory
                // already resident, so lending it commits nothing new. Without one, the message's
                // storage grows with what arrives (message_reader::direct_buffer).
                const std::size_t whole = reader_.message_bytes_buffered() + static_cast<std::size_t>(reader_.data_payload_remaining());
                if (reader_.assembly_capacity() < whole) reader_.adopt_assembly(worker_.payloads().take(whole));
                const std::span<char> into = reader_.direct_buffer(direct_read_size);
                auto [ec, n] = co_await stream_.async_read_some(asio::buffer(into.data(), into.size()),
                                                                as_tuple_awaitable);
                if (ec) co_return;
                input_arrived();
                direct = reader_.commit_direct(n);
                continue;
            }
            if (more_waiting) {
                if (++reads_in_a_row > reads_before_yield) {
                    // A peer that always has more to send must not keep this worker's other
                    // connections and timers waiting.
                    reads_in_a_row = 0;
                    co_await asio::post(context_, asio::use_awaitable);
                }
                const std::span<char> buffer = worker_.read_buffer();
                std::error_code ec;
                const std::size_t n = stream_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
                if (!ec) {
                    input_arrived();
                    input = buffer.first(n);
                    input_is_shared = true;
                    more_waiting = n == buffer.size();
                    continue;
                }
                if (ec != asio::error::would_block && ec != asio::error::try_again) co_return;
            }
            reads_in_a_row = 0;
            auto [ec, n] = co_await stream_.async_read_some(asio::buffer(probe_), as_tuple_awaitable);
            if (ec) co_return;  // dropped, reset, or the close deadline closed the stream
            input_arrived();
            if (n < probe_.size()) {
                input = std::span<char>(probe_.data(), n);  // all there was
                input_is_shared = false;
                more_waiting = false;
                continue;
            }
            // The probe is full: it and what follows it go to the worker's buffer, read at once, so
            // that a message of up to 64 KiB is still parsed in place, without reassembly.
            const std::span<char> buffer = worker_.read_buffer();
            std::copy_n(probe_.data(), n, buffer.data());
            std::error_code rest_ec;
            std::size_t rest = stream_.read_some(asio::buffer(buffer.data() + n, buffer.size() - n), rest_ec);
            if (rest_ec) rest = 0;  // nothing more yet, or an error the next read reports
            input = buffer.first(n + rest);
            input_is_shared = true;
            more_waiting = n + rest == buffer.size();
        }
    }

    /// The message the reader just completed, in storage of its own; inflated if it came compressed
    /// (`bad` then says why one could not be: over the size limit, not deflate data, not UTF-8).
    message take_message(std::error_code& bad) {
        message m;
        m.type = reader_.message_type() == opcode::binary ? message_type::binary : message_type::text;
        if (reader_.message_compressed()) {
            m.data = worker_.payloads().take(4 * reader_.payload().size() + 64);
            const auto limit = static_cast<std::size_t>(std::min<std::uint64_t>(options().max_message_size, SIZE_MAX));
            switch (compression_.inflate(reader_.payload(), m.data, limit)) {
            case inflate_status::ok: break;
            case inflate_status::too_big: bad = make_error_code(error::message_too_big); break;
            case inflate_status::corrupt: bad = make_error_code(error::invalid_compressed_data); break;
            }
            if (!bad && m.type == message_type::text) {
                utf8_validator utf8;
                if (!utf8.write(m.data) || !utf8.finish()) bad = make_error_code(error::invalid_utf8);
            }
            if (reader_.assembly_capacity() > kept_assembly) worker_.payloads().give(reader_.release_assembly());
            return m;
        }
        // A message in place is copied into a pooled string that fits it; a reassembled one hands over
        // the reader's buffer, and the reader gets a small one back.
        m.data = worker_.payloads().take(reader_.payload_assembled() ? 0 : reader_.payload().size());
        reader_.take_payload(m.data);
        // Between messages the reader keeps no large buffer: it goes back to the loop's spares, for
        // the next large message of any of its connections.
        if (reader_.assembly_capacity() > kept_assembly) worker_.payloads().give(reader_.release_assembly());
        return m;
    }

    // ---- writing ----
    // Everything queued during one turn of the event loop is written at the end of it, synchronously,
    // for as long as the stream takes bytes. Only when it refuses (the client reads slower than we
    // send) does the writer wait for it to become writable, which is also what marks a consumer as
    // slow. No buffer list is kept across that wait: the next attempt gathers afresh from the queue,
    // whose storage may have moved.

    /// Writes what is queued until the queue is empty (then, once the connection is tearing down, the
    /// writer is done), a close frame has gone out, or the stream takes no more.
    void flush() override {
        if (writer_ != writer_status::idle) return;
        while (!queue_.empty()) {
            gathered_.clear();
            queue_.gather(gathered_, max_buffers_per_write, max_bytes_per_write);
            std::error_code ec;
            const std::size_t n = stream_.write_some(std::span<const asio::const_buffer>(gathered_), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) return await_writable();
            if (ec) return fail_writer();
            if (n == 0) return await_writable();  // nothing taken, no error: wait rather than spin
            if (written(n)) return;               // nothing may follow a close frame
        }
        if (status() >= connection_status::tearing_down) finish_writer();
    }

    void await_writable() {
        stalled();
        stream_.async_wait_writable([self = shared_from_this(), this](std::error_code ec) {
            if (writer_ == writer_status::awaiting_writable) writer_ = writer_status::idle;
            if (ec) return fail_writer();
            flush();
        });
    }

    // ---- ending ----

    /// Ends the stream politely: stop sending, read (and discard) until the peer closes or the close
    /// deadline passes (the deadline closes the stream under the read), then close. Closing with
    /// unread input would reset a TCP connection and could destroy our close frame before the peer
    /// reads it.
    task<> linger_and_close() override {
        std::error_code ec;
        stream_.shutdown_send(ec);
        if (!ec && engine_clock::now() < hard_deadline_) {
            char sink[512];
            for (;;) {
                auto [read_ec, n] = co_await stream_.async_read_some(asio::buffer(sink), as_tuple_awaitable);
                if (read_ec) break;
            }
        }
        stream_.close(ec);
    }

    void close_stream() noexcept override {
        std::error_code ignored;
        stream_.close(ignored);
    }

private:
    static constexpr unsigned reads_before_yield = 4;  // reads that found data, before letting others run
    static constexpr std::size_t probe_size = 512;     // holds a typical small message whole
    static constexpr std::size_t kept_assembly = 64 * 1024;  // reassembly buffer kept between messages
    static constexpr std::size_t direct_read_threshold = 64 * 1024;  // frame payload left to read
    static constexpr std::size_t direct_read_size = 256 * 1024;      // at most per direct read
    static constexpr std::size_t max_buffers_per_write = 64;  // what Asio hands to one sendmsg
    static constexpr std::size_t max_bytes_per_write = 256 * 1024;

    Stream stream_;
    message_reader reader_{{role::server, default_max_message_size, 0}};
    std::string carried_;  // input not parsed yet that must outlive a suspension (usually empty)
    std::array<char, probe_size> probe_;  // where the reader waits for input: see read_loop()
    std::vector<asio::const_buffer> gathered_;  // the buffer list of one write, reused
};

}  // namespace starling::detail
// ---- end starling/session/connection.hpp ----

namespace starling::detail {

template <class Stream>
class endpoint_connection final : public connection<Stream> {
public:
    endpoint_connection(Stream stream, asio::io_context& context) : connection<Stream>(std::move(stream), context) {}

    /// The handshake routed `request` to `endpoint` and answered 101: the connection opens, with
    /// `already_read` (bytes behind the request) as its first input.
    /// The handshake's decisions come along: the state the authentication hook gave it, and the
    /// index of the chosen subprotocol (or -1).
    void attach(std::shared_ptr<endpoint_state> endpoint, http::request request, starling::query_params query,
                std::string_view already_read, state_slot state = {}, int subprotocol = -1) {
        endpoint_ = std::move(endpoint);
        const std::string path(request.path());
        this->upgraded(endpoint_->options, path, std::move(query), std::move(request.fields),
                       &endpoint_->metrics.for_worker(this->context()));
        this->set_already_read(already_read);
        handle_.emplace(*this, *endpoint_);
        handle_->adopt_handshake(std::move(state), subprotocol);
    }

private:
    task<std::optional<std::string>> greet() override {
        if (!endpoint_->on_connect) co_return std::nullopt;
        co_return co_await endpoint_->on_connect(*handle_);
    }

    void joined() override {
        endpoint_->registry.add(this->context(), this->id(), this->shared_from_this());
        this->registered = true;
        handle_->topics_reachable();
    }

    // The handler's own coroutine, handed back: no frame of ours stays alive beside it.
    task<> handle() override { return endpoint_->handler(*handle_); }

    close_reason failed(std::exception_ptr error) noexcept override {
        std::string line;
        try {
            std::rethrow_exception(error);
        } catch (const invalid_json& e) {
            return {static_cast<std::uint16_t>(close_code::invalid_payload), e.what()};
        } catch (const std::exception& e) {
            line = "handler for " + endpoint_->path + " threw: " + e.what();
        } catch (...) {
            line = "handler for " + endpoint_->path + " threw a non-exception";
        }
        endpoint_->log_line(log_level::error, "handler_threw", this->id(), line);  // never throws
        return {static_cast<std::uint16_t>(close_code::internal_error), "internal error"};
    }

    task<std::optional<std::string>> farewell() override {
        if (!endpoint_ || !endpoint_->on_close) co_return std::nullopt;
        try {
            co_return co_await endpoint_->on_close(*handle_);
        } catch (const std::exception& e) {
            endpoint_->log_line(log_level::error, "on_close_threw", this->id(), "on_close for " + endpoint_->path + " threw: " + e.what());
        } catch (...) {
            endpoint_->log_line(log_level::error, "on_close_threw", this->id(), "on_close for " + endpoint_->path + " threw a non-exception");
        }
        co_return std::nullopt;
    }

    void left() override {
        if (this->registered) endpoint_->registry.remove(this->context(), this->id(), *this);
        if (handle_) handle_->leave_topics();  // every topic, however the connection ended
    }

    std::shared_ptr<endpoint_state> endpoint_;
    std::optional<starling::websocket> handle_;
};

}  // namespace starling::detail
// ---- end starling/runtime/endpoint_connection.hpp ----

// ---- begin starling/runtime/transport.hpp ----
// What a listening port speaks: how the server turns a socket accepted on that port into a stream the
// engine runs on. Plain TCP (ws://) is built in (runtime/server.hpp); TLS (wss://) comes from
// <starling/tls.hpp>, so that a program without it needs no OpenSSL headers or libraries. Every port
// of an app serves the same endpoints with the same registry, limits and shutdown: only this differs.

#include <asio/io_context.hpp>              // asio::io_context the connection lives on
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp::socket, as accepted
#include <string>                           // std::string descriptions


namespace starling {

namespace detail {
class server;
}

class transport {
public:
    transport() = default;
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;
    virtual ~transport() = default;

    /// "ws" or "wss", for log lines and URLs.
    virtual const char* scheme() const noexcept = 0;

    /// Called by listen() before anything is bound: loads what the transport needs (certificates), and
    /// throws an exception that says what is wrong, naming the file, so that a bad set-up stops the
    /// program at start instead of failing every connection later.
    virtual void prepare() {}

    /// Loads its configuration again (certificate and key files, for TLS): connections accepted from
    /// now on use it, open ones keep what they began with. Throws, keeping the configuration it had,
    /// when the new one cannot be loaded. False for a transport with nothing to reload.
    virtual bool reload() { return false; }

    /// True when an answer written straight onto the accepted socket reaches the client as HTTP: what
    /// the server does with connections it must refuse (over max_connections, out of descriptors).
    virtual bool speaks_plain_http() const noexcept { return false; }

    /// Serves one accepted connection to its end on `context` (its worker's loop), through
    /// server::serve_stream(). `over_limit`: the server holds max_connections already; refuse it.
    virtual task<> serve(detail::server& server, asio::ip::tcp::socket socket, asio::io_context& context,
                         bool over_limit) = 0;
};

}  // namespace starling
// ---- end starling/runtime/transport.hpp ----

// ---- begin starling/runtime/upgrade.hpp ----
// The opening handshake of one connection: read the request under the size and time limits, route
// it, validate it, check its origin, choose its subprotocol, resolve its typed parameters, run the
// endpoint's authentication hook, and answer 101, a page, or an error. The
// time limit is the connection's own deadline (session/connection_base.hpp), armed by the server
// before a TLS handshake if there is one: when it passes, the stream is closed under the handshake,
// whatever the client does.

#include <asio/buffer.hpp>                  // asio::buffer
#include <asio/write.hpp>                   // asio::async_write answers
#include <algorithm>                        // std::min
#include <atomic>                           // std::atomic<bool> stopping flag
#include <exception>                        // std::exception of a page handler
#include <functional>                       // std::less<> for heterogeneous route lookup
#include <map>                              // std::map routes and pages
#include <memory>                           // std::shared_ptr endpoints
#include <optional>                         // std::optional results
#include <string>                           // std::string responses
#include <string_view>                      // std::string_view bytes behind the request


// ---- begin starling/api/handshake_request.hpp ----
// The upgrade request as an authentication hook sees it: headers, cookies, query parameters, path and
// the client's address. A view: valid during the hook only.

#include <optional>     // std::optional lookups
#include <string_view>  // std::string_view names and values


namespace starling {

class handshake_request {
public:
    handshake_request(const http::request& request, const starling::query_params& query, const client_address& client) noexcept
        : request_(request), query_(query), client_(client) {}

    const http::headers& headers() const noexcept { return request_.fields; }
    /// The first header called `name` (case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const { return request_.fields.get(name); }
    /// The cookie called `name`, as sent.
    std::optional<std::string_view> cookie(std::string_view name) const { return http::find_cookie(request_.fields, name); }
    /// The query string's parameters, percent-decoded.
    const starling::query_params& query_params() const noexcept { return query_; }
    /// The request path, still percent-encoded, without the query string.
    std::string_view path() const noexcept { return request_.path(); }
    /// The peer's IP address and port.
    const client_address& client() const noexcept { return client_; }

    /// The token of an "Authorization: Bearer <token>" header, if there is one.
    std::optional<std::string_view> bearer_token() const {
        const auto value = request_.fields.get("Authorization");
        if (!value) return std::nullopt;
        const std::string_view text = http::detail::trim_ows(*value);
        constexpr std::string_view scheme = "Bearer ";
        if (text.size() <= scheme.size() || !http::detail::iequals(text.substr(0, scheme.size()), scheme)) return std::nullopt;
        return http::detail::trim_ows(text.substr(scheme.size()));
    }

private:
    const http::request& request_;
    const starling::query_params& query_;
    const client_address& client_;
};

}  // namespace starling
// ---- end starling/api/handshake_request.hpp ----

// ---- begin starling/http/origin.hpp ----
// Origin allow-lists: whether a request's Origin header (RFC 6454: "scheme://host[:port]", or
// "null") is one an endpoint accepts. Patterns are exact origins ("https://example.com"), origins
// whose host is a wildcard for every subdomain ("https://*.example.com": a.example.com and
// a.b.example.com, not example.com itself), either without a scheme to accept any scheme
// ("*.example.com", "example.com:8443"), or "*" for every origin. Case does not matter; a port is part
// of the host, so "https://example.com" does not accept "https://example.com:8443", unless the
// pattern ends in ":*" for any port ("http://localhost:*", what a development server needs).

#include <span>         // std::span of patterns
#include <string>       // std::string patterns
#include <string_view>  // std::string_view origins


namespace starling::http {

namespace detail {

/// `host` without its ":port", if it has one ("[::1]:8080" -> "[::1]").
inline std::string_view without_port(std::string_view host) noexcept {
    const std::size_t colon = host.rfind(':');
    if (colon == std::string_view::npos) return host;
    if (host.find(']', colon) != std::string_view::npos) return host;  // a colon inside an IPv6 literal
    return host.substr(0, colon);
}

inline bool iends_with(std::string_view text, std::string_view suffix) noexcept {
    return text.size() >= suffix.size() && iequals(text.substr(text.size() - suffix.size()), suffix);
}

}  // namespace detail

/// True when `origin` matches `pattern` (see the top of this file).
inline bool origin_matches(std::string_view pattern, std::string_view origin) {
    if (pattern == "*") return true;
    const std::size_t origin_scheme_end = origin.find("://");
    if (origin_scheme_end == std::string_view::npos) return detail::iequals(pattern, origin);  // "null"
    std::string_view host = origin.substr(origin_scheme_end + 3);
    const std::size_t pattern_scheme_end = pattern.find("://");
    if (pattern_scheme_end != std::string_view::npos) {
        if (!detail::iequals(pattern.substr(0, pattern_scheme_end), origin.substr(0, origin_scheme_end))) return false;
        pattern.remove_prefix(pattern_scheme_end + 3);
    }
    if (pattern.ends_with(":*")) {  // any port, or none
        pattern.remove_suffix(2);
        host = detail::without_port(host);
    }
    if (pattern.starts_with("*.")) {
        const std::string_view suffix = pattern.substr(1);  // ".example.com", port included if any
        return host.size() > suffix.size() && detail::iends_with(host, suffix) &&
               host.substr(0, host.size() - suffix.size()).find_first_of("/:") == std::string_view::npos;
    }
    return detail::iequals(pattern, host);
}

/// True when `origin` matches one of `patterns`.
inline bool origin_allowed(std::span<const std::string> patterns, std::string_view origin) {
    for (const std::string& pattern : patterns)
        if (origin_matches(pattern, origin)) return true;
    return false;
}

}  // namespace starling::http
// ---- end starling/http/origin.hpp ----

// ---- begin starling/protocol/subprotocol.hpp ----
// Choosing a subprotocol (RFC 6455 sections 1.9 and 4.2.2): the client lists those it speaks in
// Sec-WebSocket-Protocol (one field or several, comma-separated), the server answers with exactly one
// of them, or none. The endpoint's own list is its order of preference: the first of its protocols
// that the client offered wins, wherever the client put it. The client's list is never echoed.

#include <cstddef>      // std::size_t
#include <optional>     // std::optional choice
#include <span>         // std::span of supported protocols
#include <string>       // std::string protocols and messages
#include <string_view>  // std::string_view tokens


namespace starling {

struct subprotocol_choice {
    bool offered = false;               // the client listed at least one protocol
    std::optional<std::size_t> chosen;  // the index in the endpoint's list, if one matched
};

/// True when the client's Sec-WebSocket-Protocol fields list `protocol` (exactly: protocol names are
/// case-sensitive tokens).
inline bool offers_subprotocol(const http::headers& fields, std::string_view protocol) {
    for (const std::string_view line : fields.get_all("Sec-WebSocket-Protocol")) {
        std::string_view rest = line;
        for (;;) {
            const std::size_t comma = rest.find(',');
            if (http::detail::trim_ows(rest.substr(0, comma)) == protocol) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

/// The first of `supported` that the request offers.
inline subprotocol_choice choose_subprotocol(const http::headers& fields, std::span<const std::string> supported) {
    subprotocol_choice choice;
    for (const std::string_view line : fields.get_all("Sec-WebSocket-Protocol"))
        if (!http::detail::trim_ows(line).empty()) choice.offered = true;
    if (!choice.offered) return choice;
    for (std::size_t i = 0; i < supported.size(); ++i) {
        if (offers_subprotocol(fields, supported[i])) {
            choice.chosen = i;
            break;
        }
    }
    return choice;
}

/// The 400 body for a client that offered none of `supported`: it names them, so the client's
/// author can see what to offer.
inline std::string unsupported_subprotocol_message(std::span<const std::string> supported) {
    std::string text = "Unsupported subprotocol: this endpoint speaks ";
    for (std::size_t i = 0; i < supported.size(); ++i) {
        if (i != 0) text += ", ";
        text += supported[i];
    }
    return text;
}

}  // namespace starling
// ---- end starling/protocol/subprotocol.hpp ----

namespace starling::detail {

using route_table = std::map<std::string, std::shared_ptr<endpoint_state>, std::less<>>;
using page_table = std::map<std::string, http::page_handler, std::less<>>;

/// What the handshake needs of the server.
struct upgrade_settings {
    const route_table& routes;
    const page_table& pages;
    const server_options& options;
    const std::atomic<bool>& stopping;
    const log_channel* log;
    handshake_refusals& refusals;
};

/// How a handshake ended.
struct upgrade_outcome {
    bool upgraded = false;  // answered 101: the connection is attached to its endpoint and can run
    /// Upgraded, but to be closed at once: typed query parameters that did not resolve, on an endpoint
    /// that accepts and then closes (1008).
    std::optional<close_reason> close_at_once;
};

/// Writes `response`, ends the stream and closes it.
template <class Stream>
task<> respond_and_close(Stream& stream, std::string response) {
    co_await asio::async_write(stream, asio::buffer(response), as_tuple_awaitable);
    std::error_code ec;
    stream.shutdown_send(ec);
    stream.close(ec);
}

/// A page's answer: GET only (HEAD gets the head without the body); a handler that throws is a 500.
inline std::string answer_page(const http::page_handler& page, const http::request& request, const log_channel* log) {
    if (request.method != "GET" && request.method != "HEAD")
        return make_response(405, "text/plain; charset=utf-8", "Method Not Allowed", "Allow: GET, HEAD\r\n");
    http::response answer;
    try {
        answer = page(request);
    } catch (const std::exception& e) {
        if (log) log->write(log_level::error, "page_threw", request.path(), {}, "page " + std::string(request.path()) + " threw: " + e.what());
        return make_response(500, "text/plain; charset=utf-8", "Internal Server Error");
    } catch (...) {
        if (log) log->write(log_level::error, "page_threw", request.path(), {}, "page " + std::string(request.path()) + " threw a non-exception");
        return make_response(500, "text/plain; charset=utf-8", "Internal Server Error");
    }
    std::string out = make_response(answer.status, answer.content_type, answer.body);
    if (request.method == "HEAD") out.resize(out.size() - answer.body.size());
    return out;
}

/// The permessage-deflate agreement for `request`, if compression is on, built in, and offered.
inline std::optional<deflate_agreement> agree_compression(const http::request& request, const compression_options& options) {
    if constexpr (!deflate_available) return std::nullopt;
    return negotiate_deflate(request.fields.get_all("Sec-WebSocket-Extensions"), options);
}

/// The endpoint serving `path`: the one registered at exactly that path, else the first template
/// (in the order of their paths) that matches it. Nothing: 404.
inline const std::shared_ptr<endpoint_state>* find_route(const route_table& routes, std::string_view path) {
    if (const auto exact = routes.find(path); exact != routes.end()) return &exact->second;
    for (const auto& [pattern, endpoint] : routes)
        if (http::is_path_template(pattern) && http::matches_path_template(pattern, path)) return &endpoint;
    return nullptr;
}

/// Runs handshakes for a server.
class upgrader {
public:
    explicit upgrader(upgrade_settings settings) noexcept : settings_(settings) {}

    /// Runs the handshake on `connection`'s stream, within the handshake timeout, which the caller
    /// armed (connection_base::begin_handshake) before the stream's own opening (a TLS handshake), so
    /// that one deadline covers both. Its buffers are gone when it returns: an idle connection costs
    /// only what it keeps.
    /// `over_ip_cap`: the client's address has more open connections than the server allows, so the
    /// request is answered 429 once it is routed.
    template <class Stream>
    task<upgrade_outcome> upgrade(endpoint_connection<Stream>& connection, bool over_ip_cap = false) const {
        const upgrade_settings& settings = settings_;
        Stream& stream = connection.stream();

        http::request_parser parser(settings.options.max_header_bytes);
        std::string buffer(std::min<std::size_t>(settings.options.max_header_bytes, 4096), '\0');
        std::string_view after_head;
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), as_tuple_awaitable);
            if (ec) co_return upgrade_outcome{};  // dropped, or too slow (the deadline closed the stream)
            const std::string_view chunk(buffer.data(), n);
            const auto result = parser.put(chunk);
            if (result.status == http::parse_status::failed) {
                co_await refuse(stream, parser.error());
                co_return upgrade_outcome{};
            }
            if (result.status == http::parse_status::complete) {
                after_head = chunk.substr(result.consumed);
                break;
            }
        }

        const http::request& request = parser.get();
        if (settings.stopping) {
            co_await refuse(stream, 503, make_response(503, "text/plain", "Server shutting down"));
            co_return upgrade_outcome{};
        }
        if (!request.fields.has_token("Upgrade", "websocket")) {
            if (const auto page = settings.pages.find(request.path()); page != settings.pages.end()) {
                co_await respond_and_close(stream, answer_page(page->second, request, settings.log));  // a page, not a refusal
                co_return upgrade_outcome{};
            }
        }
        const std::shared_ptr<endpoint_state>* route = find_route(settings.routes, request.path());
        if (!route) {
            co_await refuse(stream, make_error_code(error::not_found));
            co_return upgrade_outcome{};
        }
        if (const auto ec = validate_upgrade_request(request); ec) {
            co_await refuse(stream, ec);
            co_return upgrade_outcome{};
        }
        if (over_ip_cap) {
            co_await refuse(stream, 429, make_response(429, "text/plain; charset=utf-8", "Too many connections from this address"));
            co_return upgrade_outcome{};
        }
        endpoint_state& endpoint = **route;
        auto query = query_params::parse(request.query_string());
        const request_values values{&query, &request.fields, request.path(), endpoint.path};
        endpoint_checks checked = check_endpoint(endpoint, request, values);
        if (checked.refused_status != 0) {
            co_await refuse(stream, checked.refused_status, std::move(checked.refusal_response));
            co_return upgrade_outcome{};
        }
        state_slot state;
        if (endpoint.hook) {
            std::optional<hook_outcome> decided = co_await run_hook(endpoint, request, values, connection.client());
            if (!decided) {
                co_await refuse(stream, 500, make_response(500, "text/plain; charset=utf-8", "Internal Server Error"));
                co_return upgrade_outcome{};
            }
            if (decided->refused) {
                endpoint.metrics.for_worker(connection.context()).auth_refusals.add();
                co_await refuse(stream, *decided->refused);
                co_return upgrade_outcome{};
            }
            state = std::move(decided->state);
        }
        const int subprotocol = checked.subprotocol;
        std::string agreed;  // the 101's lines for what was agreed: the subprotocol, the compression
        if (subprotocol >= 0) agreed = "Sec-WebSocket-Protocol: " + endpoint.subprotocols[static_cast<std::size_t>(subprotocol)] + "\r\n";
        const auto compression = agree_compression(request, endpoint.options.compression);
        if (compression) agreed += deflate_response_field(*compression);
        const std::string accept = make_accept_response(*request.fields.get("Sec-WebSocket-Key"), agreed);
        auto [write_ec, written] = co_await asio::async_write(stream, asio::buffer(accept), as_tuple_awaitable);
        if (write_ec) co_return upgrade_outcome{};

        if (compression) connection.set_compression(*compression, role::server, tuning_of(endpoint.options.compression));
        connection.attach(*route, parser.release(), std::move(query), after_head, std::move(state), subprotocol);
        upgrade_outcome outcome{true, std::nullopt};
        if (checked.rejection)
            outcome.close_at_once = close_reason{static_cast<std::uint16_t>(close_code::policy_violation), std::move(*checked.rejection)};
        co_return outcome;
    }

private:
    /// What the endpoint's own checks that need no waiting decided about a valid upgrade request.
    struct endpoint_checks {
        int refused_status = 0;  // non-zero: refused, with this status and `refusal_response`
        std::string refusal_response;
        int subprotocol = -1;  // the index of the chosen one in the endpoint's list, or none
        /// Typed parameters that did not resolve, on an endpoint whose invalid_query policy is to
        /// accept and close with 1008.
        std::optional<std::string> rejection;
    };

    /// Origin (403), subprotocol (400), typed parameters (400: the hook's always, the others per
    /// invalid_query). Not a coroutine: an endpoint without a hook adds no frame to the handshake,
    /// whose freed frames Asio's allocator would hand on to the connection's long-lived ones.
    static endpoint_checks check_endpoint(const endpoint_state& endpoint, const http::request& request,
                                          const request_values& values) {
        endpoint_checks checks;
        const auto refuse_with = [&](int status, std::string body, const char* type = "text/plain; charset=utf-8") {
            checks.refused_status = status;
            checks.refusal_response = make_response(status, type, body);
            return std::move(checks);
        };
        if (!origin_accepted(endpoint, request)) return refuse_with(403, "Origin not allowed");
        if (!endpoint.subprotocols.empty()) {
            const subprotocol_choice choice = choose_subprotocol(request.fields, endpoint.subprotocols);
            if (choice.chosen) checks.subprotocol = static_cast<int>(*choice.chosen);
            else if (choice.offered && endpoint.refuse_unknown_subprotocol)
                return refuse_with(400, unsupported_subprotocol_message(endpoint.subprotocols));
        }
        // The hook's own parameters are needed before the upgrade, whatever invalid_query says.
        if (endpoint.hook_checks.check_request)
            if (auto problem = endpoint.hook_checks.check_request(values)) return refuse_with(400, std::move(*problem), "text/plain");
        if (auto problem = endpoint.check_request(values)) {
            if (endpoint.options.invalid_query == invalid_query_policy::reject) return refuse_with(400, std::move(*problem), "text/plain");
            checks.rejection = std::move(problem);  // accepted, then closed with 1008
        }
        return checks;
    }

    /// Answers an upgrade request with an HTTP error, counted under its status.
    template <class Stream>
    task<> refuse(Stream& stream, int status, std::string response) const {
        settings_.refusals.count(status);
        co_await respond_and_close(stream, std::move(response));
    }
    template <class Stream>
    task<> refuse(Stream& stream, std::error_code ec) const {
        return refuse(stream, error_response_status(ec), make_error_response(ec));
    }
    /// The hook's refusal as an answer. HTTP requires a 401 to say how to authenticate: one that does
    /// not gets "WWW-Authenticate: Bearer".
    template <class Stream>
    task<> refuse(Stream& stream, refusal& refused) const {
        const int status = refused.status >= 400 && refused.status <= 599 ? refused.status : 500;
        std::string extra = std::move(refused.headers);
        if (!extra.empty() && !extra.ends_with("\r\n")) extra += "\r\n";
        if (status == 401 && !http::detail::iequals(extra.substr(0, 17), "WWW-Authenticate:") &&
            extra.find("\r\nWWW-Authenticate:") == std::string::npos)
            extra += "WWW-Authenticate: Bearer\r\n";
        return refuse(stream, status, make_response(status, "text/plain; charset=utf-8", refused.body, extra));
    }

    static bool origin_accepted(const endpoint_state& endpoint, const http::request& request) {
        if (endpoint.allowed_origins.empty()) return true;
        const auto origin = request.fields.get("Origin");
        if (!origin) return endpoint.allow_missing_origin;
        return http::origin_allowed(endpoint.allowed_origins, *origin);
    }

    /// Runs the endpoint's hook; nothing when it threw (logged: the client gets a 500).
    task<std::optional<hook_outcome>> run_hook(const endpoint_state& endpoint, const http::request& request,
                                               const request_values& values, const client_address& client) const {
        const auto query = values.query;
        const handshake_request seen(request, *query, client);
        call_context ctx;
        ctx.request = values;
        ctx.handshake = &seen;
        ctx.globals = endpoint.globals.get();
        ctx.router = endpoint.router_deps.get();
        std::string line;
        try {
            co_return co_await endpoint.hook(ctx);
        } catch (const std::exception& e) {
            line = "authentication hook for " + endpoint.path + " threw: " + e.what();
        } catch (...) {
            line = "authentication hook for " + endpoint.path + " threw a non-exception";
        }
        endpoint.log_line(log_level::error, "hook_threw", {}, line);
        co_return std::nullopt;
    }

    upgrade_settings settings_;
};

}  // namespace starling::detail
// ---- end starling/runtime/upgrade.hpp ----

namespace starling::detail {

/// A port to listen on and what it speaks (a null transport is plain TCP).
struct port_spec {
    std::uint16_t port = 0;
    std::shared_ptr<starling::transport> transport;
};

/// Plain TCP: ws://, and HTTP for the pages.
std::shared_ptr<starling::transport> plain_transport();

class server {
public:
    /// A server listening on `ports` (the first is server_options::port with its transport, as app
    /// passes them).
    server(route_table routes, page_table pages, server_options options, std::shared_ptr<const log_channel> log,
           std::vector<port_spec> ports)
        : routes_(std::move(routes)), pages_(std::move(pages)), options_(options), log_(std::move(log)) {
        const unsigned count = options_.workers != 0 ? options_.workers : std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < count; ++i) workers_.push_back(std::make_unique<worker>());
        for (port_spec& p : ports) {
            if (!p.transport) p.transport = plain_transport();
            listeners_.push_back(std::make_unique<listener>(workers_[0]->context, p));
        }
        drained_ = std::make_unique<async_event>(workers_[0]->context.get_executor());
    }

    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() {
        stop();
        // Destroying the loops destroys the coroutines still suspended on them (connections that
        // outlived the shutdown timeout); their bookkeeping must not reach into loops already gone.
        torn_down_ = true;
        signals_.reset();
        user_signals_.clear();
        // The loops go first, before the members declared after them: a coroutine destroyed with its
        // loop leaves the live list and its address's count on the way out, and those must still
        // exist then. What uses a loop goes before it: the acceptors, the drain event's timer.
        listeners_.clear();
        drained_.reset();
        workers_.clear();
    }

    /// Prepares every transport (a TLS listener loads its certificate: a bad file throws here, before
    /// anything is bound), then binds and listens on every port; throws std::system_error when an
    /// address is taken. Returns the first port as bound.
    std::uint16_t listen() {
        for (auto& l : listeners_) l->how->prepare();
        for (auto& l : listeners_) {
            const asio::ip::tcp::endpoint where(asio::ip::make_address(options_.host), l->requested);
            l->acceptor.open(where.protocol());
            l->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
            l->acceptor.bind(where);
            l->acceptor.listen(asio::socket_base::max_listen_connections);
            // Synchronous accepts (refuse_waiting_connections) must find the backlog empty rather than
            // wait on it; asynchronous ones work the same either way.
            l->acceptor.non_blocking(true);
            l->port = l->acceptor.local_endpoint().port();
        }
        reserve_.acquire();
        for (auto& l : listeners_) asio::co_spawn(workers_[0]->context, accept_loop(*l), asio::detached);
        return port();
    }

    /// The first port, as bound.
    std::uint16_t port() const noexcept { return listeners_.empty() ? 0 : listeners_[0]->port; }
    /// Every port as bound, in the order given.
    std::vector<std::uint16_t> ports() const {
        std::vector<std::uint16_t> bound;
        for (const auto& l : listeners_) bound.push_back(l->port);
        return bound;
    }
    /// Every port's transport, in the order given.
    std::vector<std::shared_ptr<starling::transport>> transports() const {
        std::vector<std::shared_ptr<starling::transport>> all;
        for (const auto& l : listeners_) all.push_back(l->how);
        return all;
    }

    /// Refused handshakes so far, into `s`.
    void count_refusals(metrics_snapshot& s) const noexcept { refusals_.snapshot(s); }

    std::size_t worker_count() const noexcept { return workers_.size(); }
    /// The event loop of worker `index`: what an in-process caller runs itself when it starts no
    /// threads (the test client, <starling/testing.hpp>).
    asio::io_context& worker_loop(std::size_t index) noexcept { return workers_[index]->context; }

    /// Runs `action` on worker 0's thread each time `number` arrives, from now until the server stops.
    /// An exception it throws is logged.
    void on_signal(int number, std::function<void()> action) {
        auto& set = *user_signals_.emplace_back(std::make_unique<asio::signal_set>(workers_[0]->context, number));
        wait_for_signal(set, std::move(action));
    }

    /// Serves one connection on `stream` from its opening to its end: what a transport's serve() does
    /// once it has made the stream. A stream with an opening of its own (TLS: async_handshake) runs it
    /// first, under the same handshake deadline as the HTTP upgrade, armed before either begins.
    template <class Stream>
    task<> serve_stream(Stream stream, asio::io_context& context) {
        auto connection = std::make_shared<endpoint_connection<Stream>>(std::move(stream), context);
        const live_guard listed(live_, live_.add(context, connection));
        const address_guard from_address(addresses_, connection->client().ip, options_.max_connections_per_ip);
        connection->begin_handshake(engine_clock::now() + options_.handshake_timeout);
        if constexpr (requires(Stream& s) { s.async_handshake(as_tuple_awaitable); }) {
            // A client that fails it (plain HTTP or garbage on a TLS port) or runs out of time (the
            // deadline closes the stream under it) is dropped here, leaving nothing behind.
            auto [ec] = co_await connection->stream().async_handshake(as_tuple_awaitable);
            if (ec) {
                connection->discard();
                co_return;
            }
        }
        upgrade_outcome outcome = co_await upgrader_.upgrade(*connection, from_address.over_cap());
        if (!outcome.upgraded) {
            connection->discard();
            co_return;
        }
        if (!live_.upgraded(listed.id_) && !outcome.close_at_once)
            outcome.close_at_once = close_reason{static_cast<std::uint16_t>(close_code::going_away), "server shutting down"};
        co_await connection->run(std::move(outcome.close_at_once));
    }

    /// Runs the event loops. With `block`, worker 0 runs on the calling thread until the server stops,
    /// and SIGINT / SIGTERM stop it gracefully; otherwise every worker gets a thread of its own.
    void run(bool block) {
        for (std::size_t i = block ? 1 : 0; i < workers_.size(); ++i) {
            worker& w = *workers_[i];
            w.thread = std::thread([&w] { w.context.run(); });
        }
        if (!block) return;
        stop_on_signals();
        workers_[0]->context.run();
        join();
    }

    /// From now on SIGINT and SIGTERM stop the server gracefully. Called as soon as it listens, so a
    /// signal sent right after a program announced its port is not lost to the default action.
    void stop_on_signals() {
        if (signals_) return;
        signals_ = std::make_unique<asio::signal_set>(workers_[0]->context, SIGINT, SIGTERM);
        signals_->async_wait([this](std::error_code ec, int) {
            if (!ec) request_stop();
        });
    }

    /// Starts a graceful shutdown from any thread, and returns at once: stop accepting, close every
    /// connection with 1001, wait up to shutdown_timeout for them to finish, drop what is left, then
    /// stop the loops.
    void request_stop() {
        if (stopping_.exchange(true)) return;
        asio::co_spawn(workers_[0]->context, shutdown(), asio::detached);
    }

    /// request_stop(), then wait for the worker threads (unless called from one of them).
    void stop() {
        request_stop();
        join();
    }

private:
    /// One listening port: its acceptor, what it speaks, and its accept loop's pause and back-off.
    struct listener {
        listener(asio::io_context& context, const port_spec& spec)
            : requested(spec.port), how(spec.transport), acceptor(context), pause(context) {}
        std::uint16_t requested;
        std::shared_ptr<starling::transport> how;
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer pause;  // accept_loop's pause after a failed accept
        accept_backoff backoff;    // used by its accept_loop only, on worker 0
        std::uint16_t port = 0;
    };

    struct worker {
        asio::io_context context{1};  // one thread runs each loop
        // An idle loop would return from run() at once; this keeps it waiting for connections.
        asio::executor_work_guard<asio::io_context::executor_type> keep_running = asio::make_work_guard(context);
        std::thread thread;
    };

    void join() {
        for (auto& w : workers_)
            if (w->thread.joinable() && w->thread.get_id() != std::this_thread::get_id()) w->thread.join();
    }

    void log_line(log_level level, std::string_view event, std::string_view line) const {
        if (log_) log_->write(level, event, {}, {}, line);
    }

    void wait_for_signal(asio::signal_set& set, std::function<void()> action) {
        set.async_wait([this, &set, action = std::move(action)](std::error_code ec, int) mutable {
            if (ec) return;
            try {
                action();
            } catch (const std::exception& e) {
                log_line(log_level::error, "signal_action_threw", std::string("signal action threw: ") + e.what());
            }
            wait_for_signal(set, std::move(action));
        });
    }

    task<> accept_loop(listener& l) {
        std::size_t next = 0;
        while (!stopping_) {
            // Round-robin: the new socket belongs to the next worker's loop, and so does its session.
            worker& w = *workers_[next];
            next = (next + 1) % workers_.size();
            auto [ec, socket] = co_await l.acceptor.async_accept(w.context, detail::as_tuple_awaitable);
            if (ec) {
                if (stopping_ || ec == asio::error::operation_aborted) co_return;
                co_await pause_accepting(l, ec);  // keep serving the connections we have, then retry
                continue;
            }
            l.backoff.succeeded();
            if (!reserve_.held()) reserve_.acquire();  // given back earlier and not re-taken then
            // Counted here, at accept, not when serve() first runs on its worker: with several workers
            // a burst of connections would otherwise pass the limit before any of them was counted.
            const bool over_limit = active_.fetch_add(1) >= options_.max_connections;
            asio::co_spawn(w.context, serve(l, std::move(socket), w.context, over_limit), asio::detached);
        }
    }

    /// EMFILE (this process) or ENFILE (the whole system). Asio reports them in a category of its own,
    /// which std::errc conditions do not match.
    static bool out_of_descriptors(std::error_code ec) noexcept {
        return ec == asio::error::no_descriptors || ec == std::error_code(ENFILE, asio::error::get_system_category());
    }

    /// After a failed accept: refuse the connections that wait in the backlog if descriptors ran out,
    /// log (at most once per report interval), and pause before the next accept, longer each time
    /// in a row. Without the pause, a connection that cannot be accepted stays in the backlog and every
    /// retry fails at once: a core spent on retries and log lines.
    task<> pause_accepting(listener& l, std::error_code ec) {
        const std::size_t refused = out_of_descriptors(ec) ? refuse_waiting_connections(l) : 0;
        const std::chrono::milliseconds pause = l.backoff.failed();
        if (const std::optional<std::size_t> unreported = l.backoff.report(std::chrono::steady_clock::now())) {
            std::string line = "accept failed: " + ec.message() + "; pausing accepts for " +
                               std::to_string(pause.count()) + " ms";
            if (refused != 0)
                line += "; " + std::string(l.how->speaks_plain_http() ? "answered " : "closed ") + std::to_string(refused) +
                        " waiting connection(s)" + (l.how->speaks_plain_http() ? " with 503" : "");
            if (*unreported != 0)
                line += " (" + std::to_string(*unreported) + " more accept failure(s) since the last report)";
            log_line(log_level::warning, "accept_failed", line);
        }
        l.pause.expires_after(pause);
        co_await l.pause.async_wait(detail::as_tuple_awaitable);  // cancelled by shutdown()
    }

    /// Out of descriptors, the connections in the backlog would wait for an answer that never comes.
    /// The reserve descriptor is given back, so each of them can be accepted in turn (reusing the one
    /// number freed), answered 503 and closed; then the reserve is taken again. Returns how many were
    /// answered. Bounded, so that a flood of connections cannot keep the loop here. A port whose
    /// clients expect TLS first gets no plain-text answer, only the close.
    std::size_t refuse_waiting_connections(listener& l) {
        if (!reserve_.release()) return 0;
        static constexpr std::size_t most_at_once = 256;
        const std::string answer = make_response(503, "text/plain", "Too many open files");
        std::size_t refused = 0;
        while (refused < most_at_once) {
            std::error_code ec;
            asio::ip::tcp::socket socket(workers_[0]->context);
            l.acceptor.accept(socket, ec);
            if (ec) break;  // none left (would block), or another thread took the freed descriptor
            socket.non_blocking(true, ec);
            // Read what the client sent already, so that closing does not reset the connection (which
            // could discard our answer), then answer without waiting: a few bytes into an empty send
            // buffer.
            char request[4096];
            socket.read_some(asio::buffer(request), ec);
            if (l.how->speaks_plain_http()) socket.write_some(asio::buffer(answer), ec);
            socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
            socket.close(ec);
            ++refused;
        }
        reserve_.acquire();
        return refused;
    }

    /// Ends the count of a connection that accept_loop() counted; the last one out during shutdown
    /// wakes shutdown().
    struct connection_count_guard {
        explicit connection_count_guard(server& s) : s_(s) {}
        ~connection_count_guard() {
            if (s_.active_.fetch_sub(1) == 1 && s_.stopping_ && !s_.torn_down_)
                asio::post(s_.workers_[0]->context, [&s = s_] { s.drained_->notify(); });
        }
        server& s_;
    };

    /// Takes a connection off the live list when its serve() ends, however it ends.
    struct live_guard {
        live_guard(live_connections& live, live_connections::id_type id) : live_(live), id_(id) {}
        ~live_guard() { live_.remove(id_); }
        live_connections& live_;
        live_connections::id_type id_;
    };

    /// One accepted connection, counted from accept to its end, served by its port's transport.
    task<> serve(listener& l, asio::ip::tcp::socket accepted, asio::io_context& context, bool over_limit) {
        connection_count_guard counted(*this);
        // The transport lives as long as the server; the connection may outlive the listener's loop.
        const std::shared_ptr<starling::transport> how = l.how;
        co_await how->serve(*this, std::move(accepted), context, over_limit);
    }

    /// Stop accepting; close every connection with 1001 and give them shutdown_timeout to finish
    /// their close handshakes; then drop what is left and give those a moment to wind down, so their
    /// coroutines end (and free the connection) while the loops still run.
    task<> shutdown() {
        std::error_code ignored;
        for (auto& l : listeners_) {
            l->acceptor.close(ignored);
            l->pause.cancel();
        }
        for (auto& set : user_signals_) set->cancel(ignored);
        live_.close_all();
        const auto polite_until = engine_clock::now() + options_.shutdown_timeout;
        while (active_.load() > 0)
            if (!co_await drained_->wait_until(polite_until)) break;
        if (active_.load() > 0) {
            live_.abort_all();
            const auto grace_until = engine_clock::now() + abort_grace;
            while (active_.load() > 0)
                if (!co_await drained_->wait_until(grace_until)) break;
            if (active_.load() > 0) log_line(log_level::warning, "shutdown_incomplete", "shutdown: a handler did not return after its connection was dropped");
        }
        for (auto& w : workers_) w->context.stop();
    }

    /// How long dropped connections get to finish their coroutines (run on_close, return from the
    /// handler) at the end of a shutdown.
    static constexpr std::chrono::seconds abort_grace{1};

    route_table routes_;
    page_table pages_;
    server_options options_;
    std::shared_ptr<const log_channel> log_;
    handshake_refusals refusals_;
    upgrader upgrader_{upgrade_settings{routes_, pages_, options_, stopping_, log_.get(), refusals_}};
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::unique_ptr<listener>> listeners_;
    reserve_descriptor reserve_;  // given back when descriptors run out
    std::unique_ptr<async_event> drained_;
    live_connections live_;
    address_counts addresses_;  // open connections per client address, with max_connections_per_ip
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> torn_down_{false};
    std::unique_ptr<asio::signal_set> signals_;
    std::vector<std::unique_ptr<asio::signal_set>> user_signals_;  // on_signal()
};

/// Plain TCP: the socket as it was accepted; a connection over the limit is answered 503.
class tcp_transport final : public starling::transport {
public:
    const char* scheme() const noexcept override { return "ws"; }
    bool speaks_plain_http() const noexcept override { return true; }
    task<> serve(server& s, asio::ip::tcp::socket socket, asio::io_context& context, bool over_limit) override {
        if (over_limit) {
            tcp_stream refused(std::move(socket));
            co_await respond_and_close(refused, make_response(503, "text/plain", "Too many connections"));
            co_return;
        }
        co_await s.serve_stream(tcp_stream(std::move(socket)), context);
    }
};

inline std::shared_ptr<starling::transport> plain_transport() { return std::make_shared<tcp_transport>(); }

}  // namespace starling::detail
// ---- end starling/runtime/server.hpp ----

namespace starling {

class app;
namespace detail {
std::unique_ptr<server> make_unlistened_server(app& a, const server_options& options);
/// The containers an app's endpoints resolve dependencies from, by route (for the test client's overrides).
route_table& routes_of(app& a) noexcept;
}  // namespace detail

/// What app.get(path, starling::metrics_page()) serves: app.metrics() in the Prometheus text format.
struct metrics_page_t {};
inline metrics_page_t metrics_page() noexcept { return {}; }

class app {
public:
    app() = default;
    app(const app&) = delete;
    app& operator=(const app&) = delete;
    ~app() { stop(); }

    /// Registers a coroutine endpoint. `handler` is a coroutine returning starling::task<> that takes
    /// starling::websocket& and, in any order, typed query parameters and dependencies. Returns the
    /// endpoint, for on_connect / on_close / options. Throws std::invalid_argument if the path is not
    /// absolute or already taken.
    template <class Handler>
    endpoint websocket(std::string path, Handler handler) {
        check_not_started("add endpoint " + path);
        auto state = root_->add_endpoint(std::move(path));
        detail::adapt_handler(std::move(handler), *state);
        add_route(state);
        return endpoint(state);
    }

    /// Answers plain HTTP GET (and HEAD) requests for `path` with `page`: a browser client, a health
    /// check. An upgrade request for the same path still goes to its WebSocket endpoint, if any.
    app& get(std::string path, http::response page) {
        return get(std::move(path), [page = std::move(page)](const http::request&) { return page; });
    }
    /// The same with a handler that builds the answer per request (on a worker thread; keep it quick).
    app& get(std::string path, http::page_handler handler) {
        check_not_started("add page " + path);
        if (path.empty() || path.front() != '/') throw std::invalid_argument("starling: a page path must start with '/': " + path);
        if (pages_.contains(path)) throw std::invalid_argument("starling: a page is already registered at " + path);
        pages_.emplace(std::move(path), std::move(handler));
        return *this;
    }

    /// Serves app.metrics() at `path`, in the Prometheus text exposition format (version 0.0.4).
    app& get(std::string path, metrics_page_t) {
        return get(std::move(path), [this](const http::request&) {
            return http::response{200, "text/plain; version=0.0.4; charset=utf-8", metrics().to_prometheus()};
        });
    }

    /// What the endpoints and the handshakes have counted so far, summed over the workers. Cheap
    /// enough to call often, from any thread.
    metrics_snapshot metrics() const {
        metrics_snapshot s;
        for (const auto& [path, state] : routes_) s.endpoints.push_back(state->metrics.snapshot(path));
        if (server_) server_->count_refusals(s);
        if (hub_->has_backplane()) s.backplane = hub_->stats();
        return s;
    }

    /// Serves `r`'s endpoints (and those of routers nested in it) under its prefix.
    app& include_router(const router& r) {
        check_not_started("include router " + r.prefix());
        include(*r.state(), "");
        return *this;
    }

    /// The app-wide container (declared by handlers as starling::global_dependencies&).
    template <class T>
    app& inject_global(T&& value) {
        globals_->add(std::forward<T>(value));
        return *this;
    }
    template <class T>
    app& inject_global(std::string name, T&& value) {
        globals_->add(std::move(name), std::forward<T>(value));
        return *this;
    }

    /// The app's own router container (starling::router_dependencies& in the app's endpoints).
    template <class T>
    app& inject(T&& value) {
        root_->dependencies->add(std::forward<T>(value));
        return *this;
    }
    template <class T>
    app& inject(std::string name, T&& value) {
        root_->dependencies->add(std::move(name), std::forward<T>(value));
        return *this;
    }

    global_dependencies& globals() noexcept { return *globals_; }
    router_dependencies& dependencies() noexcept { return *root_->dependencies; }

    /// Routes every log record to `sink` (stderr by default). Call before start().
    void set_log_sink(log_sink sink) { sink_ = std::move(sink); }
    /// Records below `least` are not passed on (default: info, so the sink sees info and above; the
    /// default stderr sink itself prints warnings and errors only).
    void set_log_level(log_level least) { least_level_ = least; }
    /// The plain form of set_log_sink: `log` gets each record's level and message line.
    void set_logger(logger log) {
        if (!log) return set_log_sink(nullptr);  // no logger: nothing is logged
        sink_ = [log = std::move(log)](const log_record& r) { log(r.level, r.message); };
    }

    /// Limits for every endpoint that does not set its own with endpoint.options().
    void set_websocket_options(const websocket_options& options) { default_options_ = options; }

    /// One more port to listen on besides server_options::port, with the same endpoints, pages,
    /// registry (a broadcast reaches the clients of every port), limits and shutdown. `how` is what it
    /// speaks: empty for plain ws://, starling::tls(tls_options) from <starling/tls.hpp> for wss://.
    /// Port 0 picks a free one (app.ports() reads it back). Call before listen().
    app& add_listener(std::uint16_t port, std::shared_ptr<starling::transport> how = {}) {
        check_not_started("add a listener");
        more_ports_.push_back(detail::port_spec{port, std::move(how)});
        return *this;
    }

    /// Runs `action` on a worker thread each time the process receives `signal` (SIGHUP, say) while
    /// the app serves; an exception it throws is logged. Call before listen() or start().
    app& on_signal(int signal, std::function<void()> action) {
        check_not_started("add a signal action");
        signal_actions_.emplace_back(signal, std::move(action));
        return *this;
    }

    /// Loads the certificate and key files of every TLS listener again, from any thread: connections
    /// accepted from now on use them, open ones keep theirs. When a listener's files cannot be loaded
    /// (missing, unreadable, or a key that does not match its certificate), it keeps serving with what
    /// it had, and this logs the reason and throws it (naming the file). Throws std::logic_error
    /// before listen() or when no listener uses TLS.
    void reload_tls() {
        if (!server_) throw std::logic_error("starling: app.reload_tls() needs app.listen() first");
        std::size_t reloaded = 0;
        std::vector<std::shared_ptr<starling::transport>> done;
        for (const auto& how : server_->transports()) {
            if (std::find(done.begin(), done.end(), how) != done.end()) continue;  // one transport, two ports
            done.push_back(how);
            try {
                if (how->reload()) ++reloaded;
            } catch (const std::exception& e) {
                log_->write(log_level::error, "tls_reload_failed", {}, {},
                            std::string("TLS reload failed, still serving the previous certificate: ") + e.what());
                throw;
            }
        }
        if (reloaded == 0) throw std::logic_error("starling: app.reload_tls() found no TLS listener");
        log_->write(log_level::info, "tls_reloaded", {}, {}, "TLS certificates reloaded");
    }

    /// Serves on `port` until SIGINT, SIGTERM or stop(): blocks.
    void start(std::uint16_t port) {
        server_options options;
        options.port = port;
        start(options);
    }
    void start(const server_options& options) {
        listen(options);
        run();
    }

    /// start() in two steps: listen() checks the set-up, binds (throwing if the address is taken) and
    /// returns the port, so a program can announce it; run() then serves until SIGINT, SIGTERM or stop().
    std::uint16_t listen(const server_options& options) {
        const std::uint16_t bound = make_server(options).listen();
        server_->stop_on_signals();
        return bound;
    }
    void run() {
        if (!server_) throw std::logic_error("starling: app.run() needs app.listen() first");
        server_->run(/*block=*/true);
    }

    /// Serves in background threads and returns the bound port at once (port 0 picks a free one).
    std::uint16_t start_in_background(const server_options& options) {
        const std::uint16_t bound = make_server(options).listen();
        server_->run(/*block=*/false);
        return bound;
    }
    std::uint16_t start_in_background(std::uint16_t port = 0) {
        server_options options;
        options.port = port;
        return start_in_background(options);
    }

    /// Graceful shutdown: closes every connection with 1001, waits for the close handshakes (up to
    /// server_options::shutdown_timeout), runs every on_close, and makes start() return.
    void stop() {
        if (server_) server_->stop();
        hub_->stop();  // after the connections' on_close, which may still publish
    }

    /// The port the server listens on (useful after starting on port 0): server_options::port.
    std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }
    /// Every port, as bound: server_options::port first, then those of add_listener() in order.
    std::vector<std::uint16_t> ports() const { return server_ ? server_->ports() : std::vector<std::uint16_t>{}; }

    // ---- Topics and the backplane (runtime/pubsub.hpp) ---------------------------------------------

    /// Sends a text message to every connection in `topic`, on every worker and, with a backplane, in
    /// every process. From any thread, also one that is not the server's: each worker with members
    /// gets one task. Returns the members reached in this process (counted as the publish was made).
    std::size_t publish(std::string_view topic, std::string_view text) {
        return hub_->publish(nullptr, topic, detail::make_shared_frame(opcode::text, text), opcode::text, text, nullptr);
    }
    std::size_t publish_bytes(std::string_view topic, std::string_view bytes) {
        return hub_->publish(nullptr, topic, detail::make_shared_frame(opcode::binary, bytes), opcode::binary, bytes,
                             nullptr);
    }

    /// Connections in `topic` in this process right now, from any thread: one lock and one lookup.
    std::size_t topic_size(std::string_view topic) const { return hub_->topics.size(topic); }
    /// Every topic with members in this process and how many, in no particular order.
    std::vector<topic_info> topics() const {
        std::vector<topic_info> out;
        for (auto& [name, size] : hub_->topics.sizes()) out.push_back({std::move(name), size});
        return out;
    }

    /// Before start(): publishes, broadcasts and send_to cross processes through `bus` (one app per
    /// backplane object). Its channels are named under `prefix`: apps sharing one Redis keep apart
    /// by using different prefixes.
    app& use_backplane(std::shared_ptr<backplane> bus, std::string prefix = "starling:") {
        check_not_started("set a backplane");
        hub_->use(std::move(bus), std::move(prefix));
        return *this;
    }
    /// The backplane's counters (all zero without one).
    backplane_stats backplane_status() const { return hub_->stats(); }

private:
    friend class WebSocket;

    /// An endpoint whose handlers the caller installs (the event API).
    std::shared_ptr<detail::endpoint_state> add_endpoint_state(std::string path) {
        check_not_started("add endpoint " + path);
        auto state = root_->add_endpoint(std::move(path));
        add_route(state);
        return state;
    }

    void check_not_started(const std::string& what) const {
        if (server_) throw std::logic_error("starling: cannot " + what + " after the app started");
    }

    void add_route(const std::shared_ptr<detail::endpoint_state>& state) {
        if (routes_.contains(state->path))
            throw std::invalid_argument("starling: an endpoint is already registered at " + state->path);
        routes_.emplace(state->path, state);
    }

    void include(const detail::router_state& r, std::string_view outer_prefix) {
        const std::string prefix = detail::join_paths(outer_prefix, r.prefix);
        for (const auto& [relative, state] : r.endpoints) {
            state->path = detail::join_paths(prefix, relative);
            add_route(state);
        }
        for (const auto& child : r.children) include(*child, prefix);
    }

    /// Fails with a message naming the route and the type when a handler or callback declares a
    /// dependency that no container holds.
    static void check_dependencies(const detail::endpoint_state& e) {
        const std::pair<const char*, const detail::signature_checks*> callables[] = {
            {"handler", &e.handler_checks}, {"on_connect", &e.on_connect_checks}, {"on_close", &e.on_close_checks},
            {"authentication hook", &e.hook_checks}};
        for (const auto& [role, checks] : callables) {
            for (const std::string_view name : checks->path_names)
                if (!http::path_template_has(e.path, name))
                    throw std::logic_error("starling: the " + std::string(role) + " of " + e.path + " declares starling::path<\"" +
                                           std::string(name) + "\">, which its path has no {" + std::string(name) + "} segment for");
            for (const auto& need : checks->dependencies) {
                if (e.router_deps->contains(need.type) || e.globals->contains(need.type)) continue;
                throw std::logic_error("starling: the " + std::string(role) + " of " + e.path +
                                       " needs a dependency of type '" + std::string(need.name) +
                                       "', which was not injected (app.inject_global, app.inject or router.inject)");
            }
        }
    }

    detail::server& make_server(const server_options& options) {
        check_not_started("start it again");
        prepare_routes();
        globals_->freeze();
        for (auto& [path, state] : routes_) state->router_deps->freeze();
        std::vector<detail::port_spec> ports{detail::port_spec{options.port, options.transport}};
        ports.insert(ports.end(), more_ports_.begin(), more_ports_.end());
        server_ = std::make_unique<detail::server>(routes_, pages_, options, log_, std::move(ports));
        for (const auto& [signal, action] : signal_actions_) server_->on_signal(signal, action);
        hub_->start();  // the backplane, if any, before the first connection
        return *server_;
    }

    /// Gives every endpoint what the app holds for it (the log, the containers, the default limits,
    /// the topics) and checks that its dependencies were injected. `in_process`: for a test client,
    /// which keeps the containers of one still alive (its dependency overrides) where it finds them.
    void prepare_routes(bool in_process = false) {
        log_ = std::make_shared<const detail::log_channel>(sink_, least_level_);
        for (auto& [path, state] : routes_) {
            state->log = log_;
            if (!in_process || !state->globals) state->globals = globals_;
            if (!state->options_set) state->options = default_options_;
            check_dependencies(*state);
            state->hub = hub_;
            if (state->across_processes) hub_->add_endpoint(state->path, state->registry);
        }
    }

    /// A server of this app's endpoints and pages that listens on no port and starts no thread: its
    /// one worker's loop is run by the caller (the test client of <starling/testing.hpp>). The app
    /// itself is not started by it: more endpoints, dependencies and servers may follow. No
    /// backplane is started and no signal handled.
    friend std::unique_ptr<detail::server> detail::make_unlistened_server(app& a, const server_options& options);
    friend detail::route_table& detail::routes_of(app& a) noexcept;

    std::shared_ptr<detail::router_state> root_ = std::make_shared<detail::router_state>();
    std::shared_ptr<global_dependencies> globals_ = std::make_shared<global_dependencies>();
    detail::route_table routes_;
    detail::page_table pages_;
    websocket_options default_options_;
    log_sink sink_ = [](const log_record& r) { log_to_stderr(r); };
    log_level least_level_ = log_level::info;
    std::shared_ptr<const detail::log_channel> log_;
    std::vector<detail::port_spec> more_ports_;
    std::vector<std::pair<int, std::function<void()>>> signal_actions_;
    std::unique_ptr<detail::server> server_;
    // Declared last: destroyed first, after ~app's stop() has unlinked it.
    std::shared_ptr<detail::pubsub> hub_ = std::make_shared<detail::pubsub>();
};

namespace detail {

inline std::unique_ptr<server> make_unlistened_server(app& a, const server_options& options) {
    a.check_not_started("serve it in process");
    a.prepare_routes(/*in_process=*/true);
    server_options one_worker = options;
    one_worker.workers = 1;
    return std::make_unique<server>(a.routes_, a.pages_, one_worker, a.log_, std::vector<port_spec>{});
}

inline route_table& routes_of(app& a) noexcept { return a.routes_; }

}  // namespace detail
}  // namespace starling
// ---- end starling/app.hpp ----

// ---- begin starling/api/run_concurrently.hpp ----
// run_concurrently: several coroutines on one connection at once (a receive loop beside a ticker, a
// game tick, a keep-alive), ending together. The first side to end, however it ends, stops the
// others through Asio's per-operation cancellation; the call returns once every side has finished, so
// the sides may keep references to the handler's locals. What it then throws is the one thing that
// ended the connection: a side's own error, else the websocket_disconnect, else nothing.

#include <asio/associated_cancellation_slot.hpp>  // the caller's slot, to pass its cancellation on
#include <asio/associated_executor.hpp>  // where the caller resumes
#include <asio/async_result.hpp>         // asio::async_initiate
#include <asio/bind_cancellation_slot.hpp>  // each side's own cancellation signal
#include <asio/cancellation_signal.hpp>  // asio::cancellation_signal
#include <asio/cancellation_type.hpp>    // asio::cancellation_type::terminal
#include <asio/co_spawn.hpp>             // each side runs as its own coroutine thread
#include <asio/error.hpp>                // asio::error::operation_aborted, what a cancelled wait throws
#include <asio/io_context.hpp>           // asio::io_context::executor_type
#include <asio/post.hpp>                 // the caller resumes in a turn of its own
#include <asio/use_awaitable.hpp>        // asio::use_awaitable
#include <array>                         // std::array of sides and their signals
#include <concepts>                      // std::same_as
#include <cstddef>                       // std::size_t
#include <exception>                     // std::exception_ptr
#include <memory>                        // std::shared_ptr shared by the sides' completions
#include <system_error>                  // std::system_error
#include <type_traits>                   // std::decay_t of the caller's handler
#include <utility>                       // std::move


namespace starling {
namespace detail {

/// The state the sides' completions share. Lives as long as a side is still running; hands the
/// caller its outcome when the last one finishes.
template <std::size_t N, class Handler>
class concurrent_run : public std::enable_shared_from_this<concurrent_run<N, Handler>> {
public:
    using executor_type = asio::io_context::executor_type;

    concurrent_run(executor_type executor, Handler handler)
        : executor_(std::move(executor)), handler_(std::move(handler)) {}

    concurrent_run(const concurrent_run&) = delete;
    concurrent_run& operator=(const concurrent_run&) = delete;

    ~concurrent_run() {
        // Only reached with the caller not resumed when its event loop is destroyed with the sides
        // still pending: the slot must not keep a handler that points here.
        if (!completed_) clear_caller_slot();
    }

    void start(std::array<task<>, N> sides) {
        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            // The caller's own cancellation (it is itself one side of an outer run_concurrently, say)
            // stops every side. `this` is safe: the slot is cleared before the handler is let go.
            slot.assign([this](asio::cancellation_type) {
                caller_cancelled_ = true;
                stop_running_sides();
            });
        }
        for (std::size_t i = 0; i < N; ++i) {
            asio::co_spawn(executor_, std::move(sides[i]),
                           asio::bind_cancellation_slot(signals_[i].slot(),
                                                        [self = this->shared_from_this(), i](std::exception_ptr e) {
                                                            self->side_finished(i, std::move(e));
                                                        }));
            started_[i] = true;
            // A side that ended while the later ones were being started (co_spawn posts completions,
            // so not before this loop is over; checked all the same) stops those too.
            if (stopping_ && !stop_requested_[i]) stop(i);
        }
    }

private:
    void side_finished(std::size_t i, std::exception_ptr e) {
        finished_[i] = true;
        --running_;
        record(i, std::move(e));
        if (!stopping_) stop_running_sides();  // the first to end, however it ended, ends the rest
        if (running_ == 0) complete();
    }

    /// Sorts a side's ending into the three things the caller may be told. Only the first of each kind
    /// is kept: the first error is what went wrong, whatever the sides did while being stopped.
    void record(std::size_t i, std::exception_ptr e) {
        if (!e) return;  // returned
        try {
            std::rethrow_exception(e);
        } catch (const websocket_disconnect&) {
            if (!disconnect_) disconnect_ = e;
        } catch (const std::system_error& error) {
            // A wait ended by our own request to stop is how a stopped side ends, not an error of its
            // own; the same exception from a side nobody asked to stop is one.
            if (stop_requested_[i] && error.code() == asio::error::operation_aborted) {
                if (!cancellation_) cancellation_ = e;
            } else if (!failure_) {
                failure_ = e;
            }
        } catch (...) {
            if (!failure_) failure_ = e;
        }
    }

    void stop_running_sides() {
        stopping_ = true;
        for (std::size_t i = 0; i < N; ++i)
            if (started_[i] && !finished_[i] && !stop_requested_[i]) stop(i);
    }

    void stop(std::size_t i) {
        stop_requested_[i] = true;
        signals_[i].emit(asio::cancellation_type::terminal);
    }

    void complete() {
        completed_ = true;
        clear_caller_slot();
        std::exception_ptr outcome = failure_ ? failure_ : disconnect_;
        if (!outcome && caller_cancelled_) {
            // Stopped from outside: the caller sees the cancellation it asked for, not a normal end.
            outcome = cancellation_ ? cancellation_
                                    : std::make_exception_ptr(std::system_error(asio::error::operation_aborted));
        }
        // Resumed in a turn of its own rather than inside the last side's completion.
        auto caller_executor = asio::get_associated_executor(handler_, executor_);
        asio::post(caller_executor, [handler = std::move(handler_), outcome = std::move(outcome)]() mutable {
            std::move(handler)(std::move(outcome));
        });
    }

    void clear_caller_slot() {
        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) slot.clear();
    }

    executor_type executor_;
    Handler handler_;
    std::array<asio::cancellation_signal, N> signals_;
    std::array<bool, N> started_{};
    std::array<bool, N> finished_{};
    std::array<bool, N> stop_requested_{};
    std::size_t running_ = N;
    bool stopping_ = false;
    bool caller_cancelled_ = false;
    bool completed_ = false;
    std::exception_ptr failure_;
    std::exception_ptr disconnect_;
    std::exception_ptr cancellation_;
};

template <std::size_t N>
struct initiate_concurrent_run {
    asio::io_context::executor_type executor;

    template <class Handler>
    void operator()(Handler&& handler, std::array<task<>, N> sides) const {
        auto run = std::make_shared<concurrent_run<N, std::decay_t<Handler>>>(executor, std::forward<Handler>(handler));
        run->start(std::move(sides));
    }
};

}  // namespace detail

/// Runs `sides` at once on `executor` and returns when all of them have finished. When one side ends
/// (returns or throws), the others are cancelled: a pending receive, send or Asio wait in them throws
/// std::system_error (operation_aborted), and so does any later co_await of theirs. Afterwards this
/// throws the first error a side threw of its own, else the first websocket_disconnect, else returns.
/// Cancelling the call itself cancels every side.
template <class... Sides>
    requires(sizeof...(Sides) >= 1 && (std::same_as<Sides, task<>> && ...))
task<> run_concurrently(asio::io_context::executor_type executor, Sides... sides) {
    constexpr std::size_t n = sizeof...(Sides);
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        detail::initiate_concurrent_run<n>{std::move(executor)}, asio::use_awaitable,
        std::array<task<>, n>{std::move(sides)...});
}

/// The same on the connection's event loop, where its coroutines must run. A dropped connection ends
/// a side as soon as it receives or sends: a pending receive throws websocket_disconnect at once, so a
/// receive loop as one side ends a ticker waiting on its timer too. A websocket_disconnect thrown from
/// here is the normal end of a handler; an error is thrown as it was, so the log names it.
template <class... Sides>
    requires(sizeof...(Sides) >= 1 && (std::same_as<Sides, task<>> && ...))
task<> run_concurrently(websocket& ws, Sides... sides) {
    return run_concurrently(ws.context().get_executor(), std::move(sides)...);
}

}  // namespace starling
// ---- end starling/api/run_concurrently.hpp ----

// ---- begin starling/session/memory_stream.hpp ----
// Two connected in-memory streams, for driving a connection with no socket: unit tests of the engine
// (fragmentation, close, pings, backpressure, deadlines) and an in-process client. Each end offers
// what the engine asks of a stream (see session/tcp_stream.hpp), and behaves as a TCP socket does
// where the engine can tell: each direction holds at most `capacity` bytes, so a writer whose peer
// does not read is refused (would_block) and waits; an operation that can complete at once still
// completes later, through the executor, as a socket's does; shutdown_send gives the peer an end of
// stream after what was already written; close fails this end's operations and the peer's writes,
// and closing with input unread resets the connection (the peer's reads fail, as after a TCP RST).
// Unlike a socket, a pending operation ignores per-operation cancellation.
//
// Both ends run on one executor; nothing here is thread-safe, as nothing on one event loop needs to be.

#include <asio/any_io_executor.hpp>         // asio::any_io_executor both ends complete on
#include <asio/buffer.hpp>                  // asio::buffer_copy between buffer sequences and the pipe
#include <asio/compose.hpp>                 // asio::async_compose for the waiting operations
#include <asio/error.hpp>                   // would_block, eof, broken_pipe, operation_aborted
#include <asio/post.hpp>                    // asio::post an immediate completion
#include <asio/steady_timer.hpp>            // asio::steady_timer as the wake-up of a waiting operation
#include <algorithm>                        // std::min
#include <chrono>                           // std::chrono::steady_clock::time_point::max
#include <cstddef>                          // std::size_t
#include <memory>                           // std::shared_ptr of the state both ends share
#include <span>                             // std::span of gathered buffers
#include <string>                           // std::string bytes in flight
#include <string_view>                      // std::string_view test helpers
#include <system_error>                     // std::error_code
#include <utility>                          // std::pair, std::move, std::exchange


namespace starling::detail {

class memory_stream {
public:
    using executor_type = asio::any_io_executor;

    /// Two connected ends on `executor`; each direction buffers at most `capacity` bytes.
    static std::pair<memory_stream, memory_stream> make_pair(const asio::any_io_executor& executor,
                                                             std::size_t capacity = 1024 * 1024) {
        auto state = std::make_shared<shared_state>(executor, capacity);
        return {memory_stream(state, 0), memory_stream(state, 1)};
    }

    executor_type get_executor() const noexcept { return state_->executor; }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return asio::async_compose<Token, void(std::error_code, std::size_t)>(
            [state = state_, side = side_, buffers, first = true](auto& self, std::error_code = {}) mutable {
                direction& in = state->into(side);
                if (std::exchange(first, false)) return asio::post(state->executor, std::move(self));
                std::error_code ec;
                const std::size_t n = take(*state, side, buffers, ec);
                if (ec != asio::error::would_block) return self.complete(ec, n);
                in.readable.expires_at(std::chrono::steady_clock::time_point::max());
                in.readable.async_wait(std::move(self));
            },
            token, state_->executor);
    }

    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return asio::async_compose<Token, void(std::error_code, std::size_t)>(
            [state = state_, side = side_, buffers, first = true](auto& self, std::error_code = {}) mutable {
                if (std::exchange(first, false)) return asio::post(state->executor, std::move(self));
                std::error_code ec;
                const std::size_t n = put(*state, side, buffers, ec);
                if (ec != asio::error::would_block) return self.complete(ec, n);
                direction& out = state->out_of(side);
                out.writable.expires_at(std::chrono::steady_clock::time_point::max());
                out.writable.async_wait(std::move(self));
            },
            token, state_->executor);
    }

    std::size_t read_some(asio::mutable_buffer buffer, std::error_code& ec) { return take(*state_, side_, buffer, ec); }

    std::size_t write_some(std::span<const asio::const_buffer> buffers, std::error_code& ec) {
        return put(*state_, side_, buffers, ec);
    }

    template <class Handler>
    void async_wait_writable(Handler&& handler) {
        asio::async_compose<Handler, void(std::error_code)>(
            [state = state_, side = side_, first = true](auto& self, std::error_code = {}) mutable {
                if (std::exchange(first, false)) return asio::post(state->executor, std::move(self));
                direction& out = state->out_of(side);
                if (state->closed[side]) return self.complete(asio::error::operation_aborted);
                if (out.reader_gone) return self.complete(asio::error::broken_pipe);
                if (out.bytes.size() < state->capacity) return self.complete({});
                out.writable.expires_at(std::chrono::steady_clock::time_point::max());
                out.writable.async_wait(std::move(self));
            },
            handler, state_->executor);
    }

    void shutdown_send(std::error_code& ec) {
        ec = state_->closed[side_] ? asio::error::bad_descriptor : std::error_code();
        direction& out = state_->out_of(side_);
        out.writer_shut = true;
        out.readable.cancel();
    }

    /// This end's pending operations complete with operation_aborted and later ones fail; the peer
    /// reads what was written, then an end of stream, and its writes fail with broken_pipe.
    void close(std::error_code& ec) {
        ec = {};
        if (state_->closed[side_]) return;
        state_->closed[side_] = true;
        direction& out = state_->out_of(side_);
        direction& in = state_->into(side_);
        out.writer_shut = true;
        out.reset = !in.bytes.empty();  // input left unread: the peer is reset, as by TCP
        in.reader_gone = true;
        in.bytes.clear();
        for (direction* d : {&out, &in}) {
            d->readable.cancel();
            d->writable.cancel();
        }
    }
    void close() {
        std::error_code ignored;
        close(ignored);
    }

    client_address remote_address() const { return {"memory", static_cast<std::uint16_t>(side_ == 0 ? 2 : 1)}; }

    // ---- for tests, on the far end ----

    /// Writes all of `bytes` at once, past the capacity if need be (a test's own input is never refused).
    void write_all(std::string_view bytes) {
        direction& out = state_->out_of(side_);
        out.bytes.append(bytes);
        out.readable.cancel();
    }
    /// Everything the peer wrote and this end has not read yet, taken.
    std::string take_all() {
        direction& in = state_->into(side_);
        std::string all = std::move(in.bytes);
        in.bytes.clear();
        in.writable.cancel();
        return all;
    }
    /// Bytes this end wrote that the peer has not read yet.
    std::size_t unread_by_peer() const noexcept { return state_->out_of(side_).bytes.size(); }
    /// Bytes waiting to be read by this end.
    std::size_t available() const noexcept { return state_->into(side_).bytes.size(); }
    /// True once the peer shut down its sending side or closed.
    bool peer_finished_sending() const noexcept { return state_->into(side_).writer_shut; }
    /// True once the peer closed its end.
    bool peer_closed() const noexcept { return state_->closed[1 - side_]; }

private:
    /// Bytes travelling one way.
    struct direction {
        explicit direction(const asio::any_io_executor& executor) : readable(executor), writable(executor) {}
        std::string bytes;
        bool writer_shut = false;  // the writing end shut down or closed: an end of stream after `bytes`
        bool reader_gone = false;  // the reading end closed: writes fail
        bool reset = false;        // the writing end closed with input unread: reads fail
        asio::steady_timer readable;  // cancelled when bytes arrive or the writer shuts
        asio::steady_timer writable;  // cancelled when room is made or the reader goes
    };

    struct shared_state {
        shared_state(const asio::any_io_executor& ex, std::size_t cap)
            : executor(ex), capacity(cap), directions{direction(ex), direction(ex)} {}
        asio::any_io_executor executor;
        std::size_t capacity;
        direction directions[2];  // [0]: written by end 0, read by end 1
        bool closed[2] = {false, false};
        direction& out_of(int side) noexcept { return directions[side]; }
        direction& into(int side) noexcept { return directions[1 - side]; }
    };

    memory_stream(std::shared_ptr<shared_state> state, int side) : state_(std::move(state)), side_(side) {}

    template <class Buffers>
    static std::size_t take(shared_state& state, int side, const Buffers& buffers, std::error_code& ec) {
        ec = {};
        if (state.closed[side]) {
            ec = asio::error::operation_aborted;
            return 0;
        }
        direction& in = state.into(side);
        if (in.reset) {
            ec = asio::error::connection_reset;
            return 0;
        }
        if (asio::buffer_size(buffers) == 0) return 0;
        if (in.bytes.empty()) {
            ec = in.writer_shut ? std::error_code(asio::error::eof) : std::error_code(asio::error::would_block);
            return 0;
        }
        const std::size_t n = asio::buffer_copy(buffers, asio::buffer(in.bytes));
        in.bytes.erase(0, n);
        in.writable.cancel();
        return n;
    }

    template <class Buffers>
    static std::size_t put(shared_state& state, int side, const Buffers& buffers, std::error_code& ec) {
        ec = {};
        if (state.closed[side]) {
            ec = asio::error::bad_descriptor;
            return 0;
        }
        direction& out = state.out_of(side);
        if (out.reader_gone) {
            ec = asio::error::broken_pipe;
            return 0;
        }
        const std::size_t wanted = asio::buffer_size(buffers);
        if (wanted == 0) return 0;
        const std::size_t room = state.capacity > out.bytes.size() ? state.capacity - out.bytes.size() : 0;
        if (room == 0) {
            ec = asio::error::would_block;
            return 0;
        }
        const std::size_t n = std::min(room, wanted);
        const std::size_t old = out.bytes.size();
        out.bytes.resize(old + n);
        asio::buffer_copy(asio::buffer(out.bytes.data() + old, n), buffers);
        out.readable.cancel();
        return n;
    }

    std::shared_ptr<shared_state> state_;
    int side_;
};

}  // namespace starling::detail
// ---- end starling/session/memory_stream.hpp ----

// Typed query parameters, dependency injection, routers.

// The event API.

// ---- begin starling/api/connector.hpp ----
// The event API's view of a connection: what an event handler's `ws` is.

#include <cstddef>      // std::size_t members reached
#include <string>       // std::string ids
#include <string_view>  // std::string_view messages
#include <utility>      // std::forward
#include <vector>       // std::vector topic names


namespace starling {

/// Handed to event handlers ("connect", "message", "close"). Sends are queued for the connection's
/// writer, so the sync_* calls never block the event loop; the async_* calls are the same operations
/// as coroutines, for handlers written as coroutines.
class connector {
public:
    explicit connector(websocket& ws) noexcept : ws_(ws) {}

    const std::string& id() const noexcept { return ws_.id(); }
    const starling::query_params& query_params() const noexcept { return ws_.query_params(); }
    const http::headers& headers() const noexcept { return ws_.headers(); }
    /// The subprotocol chosen in the handshake, or "".
    std::string_view subprotocol() const noexcept { return ws_.subprotocol(); }
    /// The connection's state (see websocket::state).
    template <class T>
    T& state() const { return ws_.state<T>(); }
    /// Replaces the connection's state with a T made of `args` (in a "connect" handler, say).
    template <class T, class... Args>
    T& emplace_state(Args&&... args) { return ws_.emplace_state<T>(std::forward<Args>(args)...); }

    /// Queues `message` for the connection `id` of this endpoint (this one included). False if no
    /// such connection is open: reported, never a crash.
    bool sync_send_to(std::string_view connection_id, std::string_view message) {
        return ws_.queue_to(connection_id, message);
    }
    task<bool> async_send_to(std::string_view connection_id, std::string_view message) {
        co_return ws_.queue_to(connection_id, message);
    }

    /// Queues `message` for every open connection of this endpoint, this one included.
    void sync_broadcast(std::string_view message) { ws_.queue_broadcast(message); }
    task<> async_broadcast(std::string_view message) {
        ws_.queue_broadcast(message);
        co_return;
    }

    // ---- Topics: the coroutine API's calls (websocket.hpp, "Topics"), for event handlers ----------

    bool subscribe(std::string_view topic) { return ws_.subscribe(topic); }
    bool unsubscribe(std::string_view topic) { return ws_.unsubscribe(topic); }
    std::vector<std::string> topics() const { return ws_.topics(); }

    /// Queues `message` for every connection in `topic`, this one included if it is in it (unless
    /// `who` is recipients::others); the members reached in this process.
    std::size_t sync_publish(std::string_view topic, std::string_view message, recipients who = recipients::everyone) {
        return ws_.queue_publish(topic, message, who);
    }
    task<> async_publish(std::string_view topic, std::string_view message, recipients who = recipients::everyone) {
        ws_.queue_publish(topic, message, who);
        co_return;
    }

    /// Closes the connection with 1000 once the current handler has returned and its reply is sent.
    void close() noexcept { ws_.request_close_after_reply(); }

    /// The coroutine-API connection underneath, for anything the event API does not offer.
    websocket& underlying() noexcept { return ws_; }

private:
    websocket& ws_;
};

}  // namespace starling
// ---- end starling/api/connector.hpp ----

// ---- begin starling/event_websocket.hpp ----
// The event API: Robyn's older style, where a WebSocket object on a path gets
// "connect", "message" and "close" handlers whose returned text is sent to the client.
//
//     starling::WebSocket websocket(app, "/web_socket");
//     websocket.on("message", [](starling::connector& ws, std::string_view msg) -> std::string {
//         ws.sync_send_to(ws.id(), "This is a message to self");
//         return "";
//     });
//
// It runs on the coroutine API's machinery: the "connect" handler is the endpoint's on_connect (its
// text is the first message), "close" is on_close (exactly once, however the connection ends), and
// "message" handlers run one at a time per connection, in order; a slow coroutine handler delays only
// its own connection.

#include <functional>   // std::function event callbacks
#include <memory>       // std::shared_ptr handler table
#include <optional>     // std::optional replies
#include <stdexcept>    // std::invalid_argument for unknown events
#include <string>       // std::string paths and replies
#include <string_view>  // std::string_view event names
#include <utility>      // std::move


namespace starling {

namespace detail {

using event_callback = std::function<task<std::optional<std::string>>(connector&, const message*)>;

struct event_handlers {
    event_callback on_connect;
    event_callback on_message;
    event_callback on_close;
    bool message_needs_text = false;  // the message handler declared text: binary messages get 1003
};

/// What event handlers may declare.
constexpr bool event_api_parameter(source s) {
    return s == source::connector || s == source::message || s == source::bytes || s == source::whole_message ||
           s == source::request_parameter || s == source::state || s == source::globals || s == source::router || s == source::dependency ||
           s == source::shared_dependency;
}

template <class... A>
constexpr bool declares_text(std::tuple<A...>*) {
    return ((source_of<A>() == source::message) || ...);
}

/// Instantiated for an event handler parameter no source supplies: the compiler's notes read
/// `unsupported_event_parameter<position, type>`, the position counted from 1.
template <int position, class type>
struct unsupported_event_parameter {
    static_assert(dependent_false<type>,
                  "starling: unsupported parameter type in an event handler (the note "
                  "'unsupported_event_parameter<position, type>' names it, counting from 1); it may declare "
                  "starling::connector&, the message (std::string_view, std::string, "
                  "std::span<const std::byte>, const starling::message&), starling::query<\"name\", T> "
                  "(or header, cookie, path), starling::state<T>, "
                  "starling::global_dependencies&, starling::router_dependencies&, or an injected "
                  "dependency as T& or std::shared_ptr<T>");
};

template <class F>
event_callback adapt_event(F handler, signature_checks& checks, bool& needs_text) {
    if constexpr (!has_readable_signature<F>) {
        static_assert(dependent_false<F>,
                      "starling: an event handler must be a function or a lambda with concrete parameter "
                      "types (no 'auto' parameters)");
        return {};
    } else if constexpr (!signature_of<F>::template all_allowed<event_api_parameter>) {
        (void)sizeof(typename signature_of<F>::template unsupported_report<event_api_parameter, unsupported_event_parameter>);
        return {};
    } else {
        static_assert(returns_text_or_nothing<result_of<F>>,
                      "starling: an event handler must return text (std::string, const char*, "
                      "std::string_view), std::optional of text, or nothing (or a task of those)");
        checks = signature_of<F>::checks();
        needs_text = declares_text(static_cast<typename callable_traits<std::decay_t<F>>::arguments*>(nullptr));
        return [handler = std::move(handler)](connector& conn, const message* received) mutable {
            return invoke_for_text(handler, context_for(conn.underlying(), &conn, received));
        };
    }
}

}  // namespace detail

/// An event-style endpoint: `starling::WebSocket websocket(app, "/web_socket");` (or on a router),
/// then `websocket.on("connect" | "message" | "close", handler)`.
class WebSocket {
public:
    WebSocket(app& owner, std::string path) : WebSocket(owner.add_endpoint_state(std::move(path))) {}
    WebSocket(router& owner, std::string path) : WebSocket(owner.state()->add_endpoint(std::move(path))) {}

    /// Sets the handler of an event: "connect", "message" or "close". Any other name throws
    /// std::invalid_argument. The handler is a plain function or a coroutine; it declares what it needs
    /// (the connector, the message, dependencies, typed query parameters) in any order, and its
    /// returned text is sent to the client (nothing for void, an empty optional or empty text).
    template <class Handler>
    WebSocket& on(std::string_view event, Handler handler) {
        if (event == "connect") {
            bool unused = false;
            events_->on_connect = detail::adapt_event(std::move(handler), state_->on_connect_checks, unused);
        } else if (event == "message") {
            events_->on_message = detail::adapt_event(std::move(handler), state_->handler_checks, events_->message_needs_text);
        } else if (event == "close") {
            bool unused = false;
            events_->on_close = detail::adapt_event(std::move(handler), state_->on_close_checks, unused);
        } else {
            throw std::invalid_argument("starling: unknown WebSocket event \"" + std::string(event) + "\" on " +
                                        state_->path + "; the events are \"connect\", \"message\" and \"close\"");
        }
        return *this;
    }

    /// The endpoint, for options() and connection_count().
    starling::endpoint endpoint() const { return starling::endpoint(state_); }

private:
    explicit WebSocket(std::shared_ptr<detail::endpoint_state> state)
        : state_(std::move(state)), events_(std::make_shared<detail::event_handlers>()) {
        auto events = events_;
        state_->on_connect = [events](websocket& ws) -> task<std::optional<std::string>> {
            if (!events->on_connect) co_return std::nullopt;
            connector conn(ws);
            co_return co_await events->on_connect(conn, nullptr);
        };
        state_->on_close = [events](websocket& ws) -> task<std::optional<std::string>> {
            if (!events->on_close) co_return std::nullopt;
            connector conn(ws);
            co_return co_await events->on_close(conn, nullptr);
        };
        state_->handler = [events](websocket& ws) -> task<> { co_await run_messages(events, ws); };
    }

    /// One connection's message loop: each message's handler runs to completion, its reply is sent,
    /// then the next message is read.
    static task<> run_messages(std::shared_ptr<detail::event_handlers> events, websocket& ws) {
        connector conn(ws);
        while (!ws.close_requested()) {
            const message received = co_await ws.receive();
            if (!events->on_message) continue;
            if (received.is_binary() && events->message_needs_text) {
                co_await ws.close(close_code::unsupported_data, "expected a text message");
                co_return;
            }
            std::optional<std::string> reply = co_await events->on_message(conn, &received);
            if (reply) co_await ws.send_text(std::move(*reply));
        }
        co_await ws.close(close_code::normal);
    }

    std::shared_ptr<detail::endpoint_state> state_;
    std::shared_ptr<detail::event_handlers> events_;
};

}  // namespace starling
// ---- end starling/event_websocket.hpp ----

// The client.

// ---- begin starling/client.hpp ----
// The client: co_await starling::connect("ws://host:port/path?x=1", options) dials a server and
// hands back a client_websocket with the same receive, send and close as the server's websocket.
//
//     auto ws = co_await starling::connect("ws://127.0.0.1:8080/echo");
//     co_await ws.send_text("hello");
//     std::string reply = co_await ws.receive_text();
//     co_await ws.close();
//     co_await ws.wait_closed();
//
// The connection lives on the event loop connect() runs on (an asio::io_context), and is driven
// from the caller's coroutines: nothing runs on a thread of its own.

#include <asio/io_context.hpp>              // asio::io_context
#include <asio/this_coro.hpp>               // asio::this_coro::executor
#include <chrono>                           // std::chrono::steady_clock
#include <memory>                           // std::make_shared
#include <string>                           // std::string URL
#include <string_view>                      // std::string_view URL
#include <utility>                          // std::move


// ---- begin starling/api/client_websocket.hpp ----
// The client's handle on one connection it dialled (starling::connect): the same receive, send and
// close as the server's `websocket` (api/message_calls.hpp), plus what the handshake settled. The
// connection runs on its own once open (it answers pings, keeps its limits, finishes a close the
// server starts); the handle only reaches into it. Letting the handle go while the connection is
// open closes it with 1000.

#include <asio/co_spawn.hpp>                // asio::co_spawn the close of a handle let go
#include <asio/detached.hpp>                // asio::detached
#include <memory>                           // std::shared_ptr of the connection
#include <string>                           // std::string subprotocol and URL
#include <utility>                          // std::move


// ---- begin starling/runtime/client_connection.hpp ----
// A connection made by a client: the engine (session/connection.hpp) with a client's rules. Its
// frames are masked, the server's must not be; no handler runs inside it (the user's code drives it
// from outside, through a client_websocket); it owns its limits, since there is no endpoint to hold
// them; and its end can be awaited.

#include <memory>       // std::shared_ptr
#include <optional>     // std::optional greeting and farewell (none)
#include <string>       // std::string path
#include <string_view>  // std::string_view bytes behind the handshake
#include <utility>      // std::move


namespace starling::detail {

/// What a client's handle needs of its connection whatever the stream: to await its end.
class client_end {
public:
    /// Returns once the connection is over: the close handshake done (or given up), the stream closed.
    virtual task<> wait_over() = 0;
    virtual bool is_over() const noexcept = 0;

protected:
    ~client_end() = default;
};

template <class Stream>
class client_connection final : public connection<Stream>, public client_end {
public:
    client_connection(Stream stream, asio::io_context& context, const websocket_options& options)
        : connection<Stream>(std::move(stream), context), options_(options), over_(context.get_executor()) {
        this->queue_.mask_frames();
    }

    /// The server accepted the upgrade: the connection opens, its limits and the compression agreed
    /// (if any) in force, `already_read` (frames the server sent right behind its 101) its first input.
    void opened(std::string path, http::headers response_fields, std::string_view already_read,
                const std::optional<deflate_agreement>& compression, const client_compression_options& offered) {
        if (compression) this->set_compression(*compression, role::client, tuning_of(offered));
        this->upgraded(options_, std::move(path), starling::query_params{}, std::move(response_fields));
        this->set_already_read(already_read, role::client);
    }

    task<> wait_over() override {
        auto self = this->shared_from_this();  // the handle may go while this waits
        while (!is_over_) co_await over_.wait();
    }
    bool is_over() const noexcept override { return is_over_; }

private:
    bool has_handler() const noexcept override { return false; }
    task<std::optional<std::string>> greet() override { co_return std::nullopt; }
    void joined() override {}
    task<> handle() override { co_return; }
    close_reason failed(std::exception_ptr) noexcept override {
        return {static_cast<std::uint16_t>(close_code::internal_error), "internal error"};
    }
    task<std::optional<std::string>> farewell() override { co_return std::nullopt; }
    void left() override {
        is_over_ = true;
        over_.notify();
    }

    websocket_options options_;  // the connection points at its limits: they live here
    async_event over_;
    bool is_over_ = false;
};

}  // namespace starling::detail
// ---- end starling/runtime/client_connection.hpp ----

// ---- begin starling/runtime/dial.hpp ----
// Dialling a WebSocket server: DNS, a TCP connection under the connect timeout, then the opening
// handshake under the handshake timeout (the connection's own deadline, as on the server). Every
// failure is a connect_error that says what failed: "connection refused (127.0.0.1:9)",
// "handshake failed: status 403", "bad Sec-WebSocket-Accept".

#include <asio/buffer.hpp>                  // asio::buffer
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp resolver and socket
#include <asio/steady_timer.hpp>            // asio::steady_timer: the connect timeout
#include <asio/write.hpp>                   // asio::async_write the request
#include <algorithm>                        // std::min of the body length
#include <array>                            // std::array key nonce
#include <charconv>                         // std::from_chars Content-Length
#include <chrono>                           // std::chrono timeouts
#include <cstdint>                          // std::uint16_t port
#include <memory>                           // std::shared_ptr
#include <stdexcept>                        // std::runtime_error
#include <string>                           // std::string messages and bytes
#include <utility>                          // std::move
#include <vector>                           // std::vector subprotocols


// ---- begin starling/protocol/client_handshake.hpp ----
// The client's side of the opening handshake (RFC 6455 section 4.1), sans I/O: the upgrade request
// it sends, and the checks on the server's response before a single frame is trusted. Strict, as
// the server's side is: a response that is not exactly an accepted upgrade of what was asked for
// fails the connection, with a message that says what was wrong.

#include <charconv>     // std::from_chars status
#include <cstddef>      // std::size_t
#include <optional>     // std::optional compression agreed
#include <string>       // std::string request and messages
#include <string_view>  // std::string_view head
#include <vector>       // std::vector subprotocols


// ---- begin starling/protocol/websocket_url.hpp ----
// ws:// and wss:// URLs as a client dials them (RFC 6455 section 3): scheme, host (a name, an IPv4
// address or a bracketed IPv6 one), optional port, and the request target (path and query). A
// fragment is refused, as the RFC requires; so is user information, which a WebSocket URL cannot
// carry.

#include <charconv>     // std::from_chars port
#include <cstdint>      // std::uint16_t port
#include <optional>     // std::optional result
#include <string>       // std::string parts
#include <string_view>  // std::string_view input


namespace starling {

struct websocket_url {
    bool secure = false;       // wss://
    std::string host;          // as written, without IPv6 brackets: what DNS (or the address parser) takes
    std::uint16_t port = 0;    // the default for the scheme when none is written
    std::string target = "/";  // path and query, what the request line asks for
    /// The Host field's value: the host as written (brackets kept), with the port unless it is the
    /// scheme's default.
    std::string host_field() const {
        std::string field = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        if (port != (secure ? 443 : 80)) field += ":" + std::to_string(port);
        return field;
    }
};

/// The URL's parts, or nothing with `why` set to what is wrong with it.
inline std::optional<websocket_url> parse_websocket_url(std::string_view text, std::string& why) {
    websocket_url url;
    const std::size_t scheme_end = text.find("://");
    const std::string_view scheme = scheme_end == std::string_view::npos ? std::string_view{} : text.substr(0, scheme_end);
    if (http::detail::iequals(scheme, "ws")) {
        url.secure = false;
    } else if (http::detail::iequals(scheme, "wss")) {
        url.secure = true;
    } else {
        why = "not a WebSocket URL (ws:// or wss://): " + std::string(text);
        return std::nullopt;
    }
    std::string_view rest = text.substr(scheme_end + 3);
    if (rest.find('#') != std::string_view::npos) {
        why = "a WebSocket URL cannot have a fragment: " + std::string(text);
        return std::nullopt;
    }
    const std::size_t authority_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, authority_end);
    if (authority_end != std::string_view::npos) {
        std::string_view target = rest.substr(authority_end);
        url.target = target.front() == '?' ? "/" + std::string(target) : std::string(target);
    }
    for (const char c : url.target) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
            why = "the URL's path or query has a space or a control character (percent-encode it): " + std::string(text);
            return std::nullopt;
        }
    }
    if (authority.find('@') != std::string_view::npos) {
        why = "a WebSocket URL cannot carry user information: " + std::string(text);
        return std::nullopt;
    }
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            why = "unterminated IPv6 address in " + std::string(text);
            return std::nullopt;
        }
        url.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                why = "unexpected text after the IPv6 address in " + std::string(text);
                return std::nullopt;
            }
            port_text = after.substr(1);
        }
    } else {
        const std::size_t colon = authority.rfind(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
        if (url.host.find(':') != std::string::npos) {
            why = "an IPv6 address in a URL goes in brackets ([::1]): " + std::string(text);
            return std::nullopt;
        }
    }
    if (url.host.empty()) {
        why = "no host in " + std::string(text);
        return std::nullopt;
    }
    url.port = url.secure ? 443 : 80;
    if (!port_text.empty() || (authority.size() > 0 && authority.back() == ':')) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
            why = "bad port in " + std::string(text);
            return std::nullopt;
        }
        url.port = static_cast<std::uint16_t>(value);
    }
    return url;
}

}  // namespace starling
// ---- end starling/protocol/websocket_url.hpp ----

namespace starling {

/// The status line and fields of the server's answer to an upgrade request.
struct upgrade_response {
    int status = 0;
    std::string reason;
    http::headers fields;
};

namespace detail {

/// The subprotocols as one Sec-WebSocket-Protocol value, or empty when a name is not a token.
inline bool valid_subprotocols(const std::vector<std::string>& names) {
    for (const std::string& name : names)
        if (!http::detail::is_token(name)) return false;
    return true;
}

}  // namespace detail

/// The GET request that asks `url`'s server to upgrade, with `key` (16 random bytes, base64), the
/// caller's extra fields and subprotocols, and `extensions` (a whole Sec-WebSocket-Extensions line
/// from deflate_offer_field, or nothing). Fields the handshake itself sets are the caller's mistake,
/// refused by the caller before this (see connect()).
inline std::string make_upgrade_request(const websocket_url& url, std::string_view key, const http::headers& extra,
                                        const std::vector<std::string>& subprotocols, std::string_view extensions = {}) {
    std::string out = "GET ";
    out += url.target;
    out += " HTTP/1.1\r\nHost: ";
    out += url.host_field();
    out += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    out += key;
    out += "\r\nSec-WebSocket-Version: 13\r\n";
    if (!subprotocols.empty()) {
        out += "Sec-WebSocket-Protocol: ";
        for (std::size_t i = 0; i < subprotocols.size(); ++i) {
            if (i) out += ", ";
            out += subprotocols[i];
        }
        out += "\r\n";
    }
    out += extensions;
    for (const auto& [name, value] : extra) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

/// Fields of the upgrade request that the handshake sets itself: an extra field by one of these
/// names would contradict it.
inline bool is_handshake_field(std::string_view name) {
    for (std::string_view own : {"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                                 "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Content-Length",
                                 "Transfer-Encoding"})
        if (http::detail::iequals(name, own)) return true;
    return false;
}

/// Where the response head ends: the offset just past its blank line, or npos while incomplete.
inline std::size_t response_head_end(std::string_view received) {
    const std::size_t blank = received.find("\r\n\r\n");
    return blank == std::string_view::npos ? std::string_view::npos : blank + 4;
}

/// Parses a response head (everything up to and including its blank line). False, with `why`, for
/// anything that is not a well-formed HTTP/1.1 status line and fields.
inline bool parse_upgrade_response(std::string_view head, upgrade_response& out, std::string& why) {
    if (head.ends_with("\r\n\r\n")) head.remove_suffix(2);  // each line keeps its own CRLF below
    std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 101 Switching Protocols": version, one space, three digits, one space, any reason.
    if (!status_line.starts_with("HTTP/1.1 ") || status_line.size() < 12 ||
        (status_line.size() > 12 && status_line[12] != ' ')) {
        why = "handshake failed: not an HTTP/1.1 response";
        return false;
    }
    const std::string_view digits = status_line.substr(9, 3);
    int status = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + 3, status);
    if (ec != std::errc() || end != digits.data() + 3 || status < 100) {
        why = "handshake failed: bad status line";
        return false;
    }
    out.status = status;
    out.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : std::string();
    while (line_end != std::string_view::npos && line_end + 2 < head.size()) {
        const std::size_t next = head.find("\r\n", line_end + 2);
        const std::string_view line = head.substr(line_end + 2, next - line_end - 2);
        if (line.find_first_of("\r\n") != std::string_view::npos || !http::parse_field_line(line, out.fields)) {
            why = "handshake failed: malformed header line in the response";
            return false;
        }
        line_end = next;
    }
    return true;
}

/// The outcome of checking a response: an error message, or the subprotocol the server chose (empty
/// for none) and the compression it agreed to (none when it declined the offer).
struct upgrade_check {
    std::string error;
    std::string subprotocol;
    std::optional<deflate_agreement> compression;
    bool ok() const noexcept { return error.empty(); }
};

/// Checks that `response` accepts the upgrade asked with `key`, `offered` subprotocols and the
/// `compression` offered (null: none) (RFC 6455 section 4.1, the client's checks): 101, Upgrade:
/// websocket, Connection: Upgrade, the accept key, no extension or subprotocol that was not offered,
/// and an answer to the compression offer that RFC 7692 allows.
inline upgrade_check check_upgrade_response(const upgrade_response& response, std::string_view key,
                                            const std::vector<std::string>& offered,
                                            const client_compression_options* compression = nullptr) {
    upgrade_check result;
    if (response.status != 101) {
        result.error = "handshake failed: status " + std::to_string(response.status);
        if (response.status >= 300 && response.status < 400) {
            const auto location = response.fields.get("Location");
            result.error += " (a redirect";
            if (location) result.error += " to " + std::string(*location);
            result.error += "; redirects are not followed)";
        }
        return result;
    }
    if (!response.fields.has_token("Upgrade", "websocket")) {
        result.error = "handshake failed: the response has no Upgrade: websocket";
        return result;
    }
    if (!response.fields.has_token("Connection", "upgrade")) {
        result.error = "handshake failed: the response has no Connection: Upgrade";
        return result;
    }
    const auto accept = response.fields.get_all("Sec-WebSocket-Accept");
    if (accept.size() != 1 || http::detail::trim_ows(accept.front()) != compute_accept_key(key)) {
        result.error = "bad Sec-WebSocket-Accept";
        return result;
    }
    deflate_answer deflate = judge_deflate_response(response.fields.get_all("Sec-WebSocket-Extensions"), compression);
    if (!deflate.error.empty()) {
        result.error = std::move(deflate.error);
        return result;
    }
    result.compression = deflate.agreed;
    const auto protocols = response.fields.get_all("Sec-WebSocket-Protocol");
    if (protocols.size() > 1) {
        result.error = "handshake failed: the server chose more than one subprotocol";
        return result;
    }
    if (protocols.size() == 1) {
        const std::string_view chosen = http::detail::trim_ows(protocols.front());
        bool was_offered = false;
        for (const std::string& name : offered) was_offered = was_offered || name == chosen;
        if (!was_offered) {
            result.error = "handshake failed: the server chose a subprotocol that was not offered: " + std::string(chosen);
            return result;
        }
        result.subprotocol = std::string(chosen);
    }
    return result;
}

}  // namespace starling
// ---- end starling/protocol/client_handshake.hpp ----

namespace starling {

/// How starling::connect dials and what the connection then allows.
struct client_options {
    /// Extra fields of the upgrade request (Authorization, Origin, cookies...). The handshake's own
    /// fields (Host, Upgrade, Connection, Sec-WebSocket-*) cannot be set here.
    http::headers headers;
    /// Subprotocols to offer, most preferred first; the server picks one or none.
    std::vector<std::string> subprotocols;
    /// DNS and the TCP connection together.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
    /// From the request's first byte to the end of the server's response.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
    /// The server's response head may be at most this large.
    std::size_t max_response_head = 16 * 1024;
    /// wss:// (with <starling/tls.hpp>): the server's certificate must be valid for the URL's host and
    /// signed by an authority in `tls_ca_file` (PEM), or in the system's store when that is empty
    /// (which OpenSSL's SSL_CERT_FILE and SSL_CERT_DIR variables can point elsewhere). Turning
    /// `tls_verify` off accepts any certificate: for tests only.
    std::string tls_ca_file;
    bool tls_verify = true;
    /// permessage-deflate: offered by default, as browsers and Python's websockets client offer it.
    /// The server decides whether it is used and with what context takeover; see
    /// client_compression_options. (websocket.compression is the server's setting: a client ignores
    /// it.)
    client_compression_options compression;
    /// The connection's limits, as the server has them: message and frame sizes, inbox, queue,
    /// close_timeout, idle pings (idle_timeout), write and message timeouts. A compressed message
    /// is inflated only up to max_message_size (then 1009).
    websocket_options websocket;
};

/// Why connect() failed. For a refused handshake, status() is the HTTP status and body() what the
/// server said (as much as arrived, up to 64 KiB).
class connect_error : public std::runtime_error {
public:
    explicit connect_error(const std::string& what, int status = 0, std::string body = {})
        : std::runtime_error(what), status_(status), body_(std::move(body)) {}
    int status() const noexcept { return status_; }
    const std::string& body() const noexcept { return body_; }

private:
    int status_;
    std::string body_;
};

namespace detail {

/// What a successful handshake leaves: the open connection and the subprotocol chosen (empty for none).
template <class Stream>
struct dialed {
    std::shared_ptr<client_connection<Stream>> connection;
    std::string subprotocol;
};

/// A TCP connection to `url`'s host and port, trying each address DNS gives in turn, all within
/// `timeout`.
inline task<asio::ip::tcp::socket> connect_tcp(asio::io_context& context, const websocket_url& url,
                                               std::chrono::milliseconds timeout) {
    // host:port as it would be written in a URL, the default port included: what the errors name.
    const std::string where =
        (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::ip::tcp::resolver resolver(context);
    auto [resolve_ec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), as_tuple_awaitable);
    if (resolve_ec) throw connect_error("cannot resolve " + url.host + ": " + resolve_ec.message());

    std::error_code last;
    for (const auto& entry : results) {
        if (std::chrono::steady_clock::now() >= deadline) break;
        asio::ip::tcp::socket socket(context);
        // The timer closes the socket under a connect that takes too long. It may fire after the
        // connect completed, so it looks at `settled` first, and touches the socket only while this
        // frame still waits on it.
        auto settled = std::make_shared<bool>(false);
        asio::steady_timer timer(context);
        timer.expires_at(deadline);
        timer.async_wait([settled, &socket](std::error_code ec) {
            if (ec || *settled) return;
            std::error_code ignored;
            socket.close(ignored);
        });
        auto [ec] = co_await socket.async_connect(entry.endpoint(), as_tuple_awaitable);
        *settled = true;
        timer.cancel();
        if (!ec) co_return std::move(socket);
        last = ec;
    }
    if (std::chrono::steady_clock::now() >= deadline)
        throw connect_error("connect timed out after " + std::to_string(timeout.count()) + " ms (" + where + ")");
    if (last == asio::error::connection_refused) throw connect_error("connection refused (" + where + ")");
    throw connect_error("cannot connect to " + where + ": " + last.message());
}

/// A fresh Sec-WebSocket-Key: 16 random bytes, base64.
inline std::string make_client_key() {
    std::array<std::uint8_t, 16> nonce{};
    fill_random(nonce);
    return base64_encode(nonce);
}

/// The refused handshake's body: what follows the head, as much as Content-Length says and arrives
/// before the deadline closes the stream, at most 64 KiB.
template <class Stream>
task<std::string> read_refusal_body(Stream& stream, const upgrade_response& response, std::string body) {
    constexpr std::size_t most = 64 * 1024;
    std::size_t length = 0;
    if (const auto field = response.fields.get("Content-Length")) {
        const auto [end, ec] = std::from_chars(field->data(), field->data() + field->size(), length);
        if (ec != std::errc() || end != field->data() + field->size()) length = 0;
    }
    length = std::min(length, most);
    char chunk[4096];
    while (body.size() < length) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), as_tuple_awaitable);
        if (ec) break;
        body.append(chunk, n);
    }
    if (body.size() > length) body.resize(length);
    co_return body;
}

/// Options a connection cannot be dialled with, refused before anything is sent.
inline void check_client_options(const client_options& options) {
    for (const auto& [name, value] : options.headers)
        if (is_handshake_field(name)) throw connect_error("the handshake sets " + name + " itself: it cannot be an extra header");
    if (!valid_subprotocols(options.subprotocols)) throw connect_error("a subprotocol name must be an HTTP token");
    if (const std::string problem = client_compression_problem(options.compression); !problem.empty())
        throw connect_error("compression: " + problem);
}

/// The compression offered with `options`: none when it is off, or when the build has no zlib.
inline const client_compression_options* offered_compression(const client_options& options) noexcept {
    return deflate_available && options.compression.enabled ? &options.compression : nullptr;
}

/// The opening handshake on `connection`'s stream (already connected, and through TLS for wss://),
/// which the connection closes at `deadline` (begin_handshake) under whatever waits on it.
template <class Stream>
task<dialed<Stream>> upgrade_client(std::shared_ptr<client_connection<Stream>> connection, const websocket_url& url,
                                    const client_options& options, std::chrono::steady_clock::time_point deadline) {
    const std::string key = make_client_key();
    const client_compression_options* compression = offered_compression(options);
    const std::string request = make_upgrade_request(url, key, options.headers, options.subprotocols,
                                                     compression ? deflate_offer_field(*compression) : std::string());
    auto timed_out = [&] {
        return connect_error("handshake failed: no response within " + std::to_string(options.handshake_timeout.count()) +
                             " ms");
    };
    auto [write_ec, written] = co_await asio::async_write(connection->stream(), asio::buffer(request), as_tuple_awaitable);
    if (write_ec) {
        connection->discard();
        if (std::chrono::steady_clock::now() >= deadline) throw timed_out();
        throw connect_error("handshake failed: " + write_ec.message());
    }

    std::string received;
    std::size_t head_end = std::string::npos;
    char chunk[4096];
    while ((head_end = response_head_end(received)) == std::string::npos) {
        if (received.size() > options.max_response_head) {
            connection->discard();
            throw connect_error("handshake failed: the response head is larger than " +
                                std::to_string(options.max_response_head) + " bytes");
        }
        auto [ec, n] = co_await connection->stream().async_read_some(asio::buffer(chunk), as_tuple_awaitable);
        if (ec) {
            connection->discard();
            if (std::chrono::steady_clock::now() >= deadline) throw timed_out();
            throw connect_error(received.empty() ? "handshake failed: the server closed the connection without a response"
                                                 : "handshake failed: the server closed the connection mid-response");
        }
        received.append(chunk, n);
    }

    upgrade_response response;
    std::string why;
    if (!parse_upgrade_response(std::string_view(received).substr(0, head_end), response, why)) {
        connection->discard();
        throw connect_error(why);
    }
    upgrade_check check = check_upgrade_response(response, key, options.subprotocols, compression);
    if (!check.ok()) {
        std::string body;
        if (response.status != 101)
            body = co_await read_refusal_body(connection->stream(), response, received.substr(head_end));
        connection->discard();
        throw connect_error(check.error, response.status == 101 ? 0 : response.status, std::move(body));
    }
    const std::string path(url.target.substr(0, url.target.find('?')));
    connection->opened(path, std::move(response.fields), std::string_view(received).substr(head_end), check.compression,
                       options.compression);
    co_return dialed<Stream>{std::move(connection), std::move(check.subprotocol)};
}

}  // namespace detail
}  // namespace starling
// ---- end starling/runtime/dial.hpp ----

namespace starling {

class client_websocket : public detail::message_calls {
public:
    /// Made by connect() once the handshake succeeded.
    client_websocket(std::shared_ptr<detail::connection_base> connection, detail::client_end& end, std::string url,
                     std::string subprotocol)
        : message_calls(*connection),
          connection_(std::move(connection)),
          end_(&end),
          url_(std::move(url)),
          subprotocol_(std::move(subprotocol)) {}

    client_websocket(client_websocket&&) noexcept = default;
    client_websocket& operator=(client_websocket&& other) noexcept {
        if (this != &other) {
            close_if_open();
            message_calls::operator=(std::move(other));
            connection_ = std::move(other.connection_);
            end_ = other.end_;
            url_ = std::move(other.url_);
            subprotocol_ = std::move(other.subprotocol_);
        }
        return *this;
    }
    ~client_websocket() { close_if_open(); }

    /// The URL it was dialled with.
    const std::string& url() const noexcept { return url_; }
    /// The subprotocol the server chose among those offered; empty for none.
    const std::string& subprotocol() const noexcept { return subprotocol_; }
    /// The server's 101 response fields; names are case-insensitive.
    const http::headers& response_headers() const noexcept { return connection_->headers(); }

    /// Returns once the connection is over: after close(), once the server has answered (or
    /// close_timeout passed) and the stream is closed; without it, once the server has closed or the
    /// connection dropped.
    task<> wait_closed() { return end_->wait_over(); }

private:
    void close_if_open() noexcept {
        if (!connection_ || !connection_->is_open()) return;
        try {
            asio::co_spawn(connection_->context(), close_left(connection_), asio::detached);
        } catch (...) {
            try {
                connection_->abort();  // no memory for the close: drop it rather than leave it open
            } catch (...) {
                // Not even that: the connection's own timeouts end it.
            }
        }
    }
    static task<> close_left(std::shared_ptr<detail::connection_base> connection) {
        co_await connection->close(1000, {});
    }

    std::shared_ptr<detail::connection_base> connection_;
    detail::client_end* end_;
    std::string url_;
    std::string subprotocol_;
};

namespace detail {

/// The handshake succeeded: the connection runs on its own from now on, and the caller gets the handle.
template <class Stream>
client_websocket start_client(dialed<Stream> done, std::string url) {
    auto& connection = *done.connection;
    asio::co_spawn(connection.context(), connection.run(), asio::detached);
    client_end& end = connection;
    return client_websocket(std::move(done.connection), end, std::move(url), std::move(done.subprotocol));
}

}  // namespace detail
}  // namespace starling
// ---- end starling/api/client_websocket.hpp ----

namespace starling {
namespace detail {

/// How wss:// is dialled: set by <starling/tls.hpp>, which plain programs do not include.
using secure_dial = task<client_websocket> (*)(asio::io_context&, const websocket_url&, std::string url,
                                                const client_options&);
inline secure_dial& secure_dialer() noexcept {
    static secure_dial dialer = nullptr;
    return dialer;
}

}  // namespace detail

namespace detail {

/// connect() itself: dials `url` on `context`, or on the calling coroutine's loop when that is null.
/// Its parameters are values of its own frame, made by the plain functions below: a class temporary
/// made inside the caller's co_await (a defaulted options argument, say) is what g++ 12 mishandles.
inline task<client_websocket> dial(asio::io_context* context, std::string url, client_options options) {
    if (context == nullptr) {
        auto executor = co_await asio::this_coro::executor;
        const auto* loop = executor.template target<asio::io_context::executor_type>();
        if (loop == nullptr) throw connect_error("starling::connect runs on an asio::io_context's executor");
        context = &loop->context();
    }
    std::string why;
    const auto parsed = parse_websocket_url(url, why);
    if (!parsed) throw connect_error(why);
    check_client_options(options);
    if (parsed->secure) {
        if (secure_dialer() == nullptr) throw connect_error("wss:// needs TLS: #include <starling/tls.hpp> and link OpenSSL");
        co_return co_await secure_dialer()(*context, *parsed, std::move(url), options);
    }
    asio::ip::tcp::socket socket = co_await connect_tcp(*context, *parsed, options.connect_timeout);
    const auto deadline = std::chrono::steady_clock::now() + options.handshake_timeout;
    auto connection =
        std::make_shared<client_connection<tcp_stream>>(tcp_stream(std::move(socket)), *context, options.websocket);
    connection->begin_handshake(deadline);
    co_return start_client(co_await upgrade_client(std::move(connection), *parsed, options, deadline), std::move(url));
}

}  // namespace detail

/// Dials `url` (ws://, or wss:// with <starling/tls.hpp>) on the calling coroutine's event loop,
/// which must be an asio::io_context's. Throws connect_error saying what failed.
inline task<client_websocket> connect(std::string_view url) { return detail::dial(nullptr, std::string(url), {}); }
inline task<client_websocket> connect(std::string_view url, const client_options& options) {
    return detail::dial(nullptr, std::string(url), options);
}

/// The same on `context`, from any coroutine.
inline task<client_websocket> connect(asio::io_context& context, std::string_view url) {
    return detail::dial(&context, std::string(url), {});
}
inline task<client_websocket> connect(asio::io_context& context, std::string_view url, const client_options& options) {
    return detail::dial(&context, std::string(url), options);
}

}  // namespace starling
// ---- end starling/client.hpp ----
// ---- end starling.hpp ----
