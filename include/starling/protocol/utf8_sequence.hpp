// Walking text one UTF-8 sequence at a time, for the places that must turn arbitrary bytes into valid
// UTF-8 of their own (close reasons we send, values quoted in error messages) rather than only say
// whether the bytes are valid.
#pragma once

#include <cstddef>      // std::size_t
#include <string_view>  // std::string_view

#include "starling/protocol/utf8.hpp"  // detail::utf8_sequence_length

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
