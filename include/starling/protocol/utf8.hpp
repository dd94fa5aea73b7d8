// UTF-8 validation for text messages and close reasons (RFC 6455 8.1), including messages that arrive
// in fragments cut at arbitrary byte positions.
#pragma once

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
