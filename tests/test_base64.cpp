// Base64: the RFC 4648 section 10 vectors both ways, round trips, and every input the strict decoder
// must refuse.
#include <starling/protocol/base64.hpp>

#include <doctest/doctest.h>

#include <array>        // std::array output buffers
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <optional>     // std::optional decoded size
#include <string>       // std::string inputs
#include <string_view>  // std::string_view encoded text
#include <vector>       // std::vector byte strings

namespace {

std::vector<std::uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

std::string encode(std::string_view text) { return starling::detail::base64_encode(bytes_of(text)); }

/// Decodes into a buffer with room to spare, so only the decoder's own rules can fail it.
std::optional<std::string> decode(std::string_view text) {
    std::vector<std::uint8_t> out(text.size() + 8, 0xEE);
    std::size_t written = 99;
    if (!starling::detail::base64_decode(text, out, written)) {
        CHECK(written == 0);
        return std::nullopt;
    }
    return std::string(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(written));
}

struct vector {
    std::string_view plain;
    std::string_view encoded;
};

constexpr vector rfc4648_vectors[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

}  // namespace

TEST_CASE("base64: RFC 4648 vectors encode") {
    for (const vector& v : rfc4648_vectors) {
        CAPTURE(v.plain);
        CHECK(encode(v.plain) == v.encoded);
    }
}

TEST_CASE("base64: RFC 4648 vectors decode") {
    for (const vector& v : rfc4648_vectors) {
        CAPTURE(v.encoded);
        CHECK(decode(v.encoded) == std::string{v.plain});
        CHECK(starling::detail::base64_decoded_size(v.encoded) == v.plain.size());
    }
}

TEST_CASE("base64: every byte value, both alphabet ends and every length 0-40 round-trip") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    const std::string encoded = encode(all);
    CHECK(encoded.substr(0, 8) == "AAECAwQF");
    CHECK(decode(encoded) == all);

    CHECK(encode("\xff\xff\xff") == "////");
    CHECK(encode("\xfb\xef\xbe") == "++++");
    CHECK(encode(std::string(3, '\0')) == "AAAA");

    for (std::size_t n = 0; n <= 40; ++n) {
        CAPTURE(n);
        const std::string text = all.substr(200, n);
        const std::string e = encode(text);
        CHECK(e.size() == (n + 2) / 3 * 4);
        CHECK(decode(e) == text);
    }
}

TEST_CASE("base64: decoded size from length and padding") {
    using starling::detail::base64_decoded_size;
    CHECK(base64_decoded_size("") == 0u);
    CHECK(base64_decoded_size("AAAA") == 3u);
    CHECK(base64_decoded_size("AAA=") == 2u);
    CHECK(base64_decoded_size("AA==") == 1u);
    CHECK(base64_decoded_size("dGhlIHNhbXBsZSBub25jZQ==") == 16u);
    CHECK_FALSE(base64_decoded_size("A").has_value());
    CHECK_FALSE(base64_decoded_size("AA").has_value());
    CHECK_FALSE(base64_decoded_size("AAA").has_value());
    CHECK_FALSE(base64_decoded_size("AAAAA").has_value());
    CHECK_FALSE(base64_decoded_size("A===").has_value());
    CHECK_FALSE(base64_decoded_size("====").has_value());
    static_assert(base64_decoded_size("Zm9vYmE=") == 5u);
}

TEST_CASE("base64: wrong length is refused") {
    for (std::string_view text : {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg", "Zm9vYg=", "Zm9vYmFy="}) {
        CAPTURE(text);
        CHECK_FALSE(decode(text).has_value());
    }
}

TEST_CASE("base64: characters outside the standard alphabet are refused") {
    // URL-safe digits, whitespace anywhere, NUL, non-ASCII, other punctuation.
    for (std::string_view text : {"Zm9-", "Zm9_", "Zm9v\nYmF", "Zm9v\r\nYm", " Zm9", "Zm9 ", "Zm 9", "Zm9\t",
                                  "Zm.v", "Zm9*", "Zm9\x80", "Zm9\xff"}) {
        CAPTURE(text);
        CHECK_FALSE(decode(text).has_value());
    }
    CHECK_FALSE(decode(std::string_view{"Zm9\0", 4}).has_value());
}

TEST_CASE("base64: misplaced or excess padding is refused") {
    for (std::string_view text : {"====", "A===", "=AAA", "A=AA", "AA=A", "Zg==Zm8=", "Zg==Zm9v", "Zm8=Zm9v",
                                  "Zm9vYg===", "Zm9vY==="}) {
        CAPTURE(text);
        CHECK_FALSE(decode(text).has_value());
    }
}

TEST_CASE("base64: non-zero bits under the padding are refused") {
    // "Zg==" is the one encoding of "f"; "Zh==" .. "Zv==" differ only in bits padding discards.
    CHECK(decode("Zg==") == std::string{"f"});
    for (std::string_view text : {"Zh==", "Zi==", "Zp==", "Zv==", "Zm9=", "Zm+=", "Zm/="}) {
        CAPTURE(text);
        CHECK_FALSE(decode(text).has_value());
    }
    CHECK(decode("Zm8=") == std::string{"fo"});
    // The non-canonical form of the RFC 6455 sample nonce.
    CHECK(decode("dGhlIHNhbXBsZSBub25jZQ==").has_value());
    CHECK_FALSE(decode("dGhlIHNhbXBsZSBub25jZR==").has_value());
}

TEST_CASE("base64: an output buffer too small is a failure, exactly the size is fine") {
    std::array<std::uint8_t, 6> out{};
    std::size_t written = 99;
    CHECK(starling::detail::base64_decode("Zm9vYmFy", out, written));
    CHECK(written == 6);
    CHECK(out[5] == 'r');

    std::array<std::uint8_t, 5> small{};
    written = 99;
    CHECK_FALSE(starling::detail::base64_decode("Zm9vYmFy", small, written));
    CHECK(written == 0);

    std::array<std::uint8_t, 0> none{};
    CHECK(starling::detail::base64_decode("", none, written));
    CHECK(written == 0);
    CHECK_FALSE(starling::detail::base64_decode("Zg==", none, written));
}

TEST_CASE("base64: decoding works in constant expressions") {
    constexpr auto decoded = [] {
        std::array<std::uint8_t, 3> out{};
        std::size_t written = 0;
        const bool ok = starling::detail::base64_decode("Zm9v", out, written);
        return ok && written == 3 && out[0] == 'f' && out[2] == 'o';
    }();
    static_assert(decoded);
    CHECK(decoded);
}
