// Masking keys for the frames a client sends (RFC 6455 section 5.3): fresh for every frame and
// unpredictable, so that nothing on the path can choose what the masked bytes look like. They come
// from the kernel's random source (getrandom), taken a few hundred bytes at a time per thread, so
// a frame costs four bytes of that buffer rather than a system call.
#pragma once

#include <sys/random.h>  // getrandom

#include <array>    // std::array buffer
#include <cerrno>   // EINTR
#include <cstddef>  // std::size_t
#include <cstring>  // std::memcpy
#include <random>   // std::random_device, if the kernel source fails
#include <span>     // std::span of bytes to fill

#include "starling/protocol/framer.hpp"  // masking_key

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
