// Payload strings a connection has finished writing, kept for the next messages it receives: an echo
// hands the received string to send_text, the writer gives it back here once written, and the reader
// fills it with the next message. That closes the loop that would otherwise allocate one string per
// message. Bounded in count and bytes, so a burst of large messages does not stay resident.
#pragma once

#include <cstddef>  // std::size_t
#include <string>   // std::string payloads
#include <utility>  // std::move
#include <vector>   // std::vector free list

namespace starling::detail {

class payload_pool {
public:
    /// An empty string, with capacity if one is pooled.
    std::string take() noexcept {
        if (free_.empty()) return {};
        std::string s = std::move(free_.back());
        free_.pop_back();
        bytes_ -= s.capacity();
        return s;
    }

    /// Keeps `s`'s buffer for later, if it is worth keeping and there is room; otherwise it is freed
    /// here (taken by value, so the caller's string never keeps a large buffer the pool refused).
    void give(std::string s) {
        const std::size_t capacity = s.capacity();
        if (capacity <= small_string || free_.size() == max_strings || bytes_ + capacity > max_bytes) return;
        s.clear();
        bytes_ += capacity;
        free_.push_back(std::move(s));
    }

private:
    static constexpr std::size_t small_string = sizeof(std::string);  // lives inside the object anyway
    static constexpr std::size_t max_strings = 16;
    static constexpr std::size_t max_bytes = 64 * 1024;

    std::vector<std::string> free_;
    std::size_t bytes_ = 0;
};

}  // namespace starling::detail
