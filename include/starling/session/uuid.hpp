// Connection ids: random (version 4) UUID strings.
#pragma once

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
