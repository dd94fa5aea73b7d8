// SHA-1 (FIPS 180-4), needed only to compute Sec-WebSocket-Accept in the opening handshake. SHA-1 is
// broken for collision resistance, which RFC 6455 does not rely on; never use this for security.
#pragma once

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
