// Payload strings that have been written, kept for the next messages received (each event loop has
// one: detail/worker_buffers.hpp). Bounded in count and bytes, so a burst of large messages does not
// stay resident. Kept by size class (powers of two of their capacity), so finding one that fits a
// message costs the same whatever the pool holds, and a small message never gets a large buffer (a
// 10-byte message that a handler keeps must not pin 1 MiB).
#pragma once

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
