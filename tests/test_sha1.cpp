// SHA-1 against the FIPS 180-4 / RFC 3174 vectors and every padding boundary.
#include <starling/protocol/sha1.hpp>

#include <doctest/doctest.h>

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <string>       // std::string inputs and hex digests
#include <string_view>  // std::string_view inputs

namespace {

std::string hex(const starling::detail::sha1_digest& digest) {
    constexpr std::string_view digits = "0123456789abcdef";
    std::string out;
    for (std::uint8_t byte : digest) {
        out += digits[byte >> 4];
        out += digits[byte & 0xF];
    }
    return out;
}

std::string sha1_hex(std::string_view data) { return hex(starling::detail::sha1(data)); }

}  // namespace

TEST_CASE("sha1: FIPS 180-4 test vectors") {
    CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    // 448 bits: the padding no longer fits the block, so a second block is needed.
    CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(sha1_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                   "mnopqrstnopqrstu") == "a49b2446a02c645bf419f995b67091253a04a259");
}

TEST_CASE("sha1: one million 'a'") {
    const std::string million(1'000'000, 'a');
    CHECK(sha1_hex(million) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("sha1: other well-known digests") {
    CHECK(sha1_hex("The quick brown fox jumps over the lazy dog") == "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
    CHECK(sha1_hex("The quick brown fox jumps over the lazy cog") == "de9f2c7fd25e1b3afad3e85a0bd17d9b100db4b3");
}

TEST_CASE("sha1: lengths around the padding and block boundaries") {
    // 55 is the longest tail that still fits 0x80 and the length in one block; 56-63 spill into a
    // second; 64 and 128 are whole blocks with a padding-only block after them.
    struct vector {
        std::size_t length;
        std::string_view digest;
    };
    const vector vectors[] = {
        {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},  {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
        {57, "f08f24908d682555111be7ff6f004e78283d989a"},  {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
        {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},  {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
        {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"}, {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"},
        {128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0"},
    };
    for (const vector& v : vectors) {
        CAPTURE(v.length);
        CHECK(sha1_hex(std::string(v.length, 'a')) == v.digest);
    }
}

TEST_CASE("sha1: every byte value, including NUL and bytes above 0x7F") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    CHECK(sha1_hex(all) == "4916d6bdb7f78e6803698cab32d1586ea457dfc8");
    // A NUL inside the view is data, not a terminator.
    CHECK(sha1_hex(std::string_view{"a\0b", 3}) != sha1_hex("a"));
}

TEST_CASE("sha1: usable in constant expressions") {
    constexpr starling::detail::sha1_digest digest = starling::detail::sha1("abc");
    static_assert(digest[0] == 0xa9 && digest[1] == 0x99 && digest[19] == 0x9d);
    CHECK(hex(digest) == "a9993e364706816aba3e25717850c26c9cd0d89d");
}
