// Base64 with the standard alphabet and padding (RFC 4648 section 4), for Sec-WebSocket-Key and
// Sec-WebSocket-Accept. The decoder is strict on purpose: a key is valid only if it is the canonical
// encoding of exactly 16 bytes, so anything a lenient decoder would forgive must be refused here.
#pragma once

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
