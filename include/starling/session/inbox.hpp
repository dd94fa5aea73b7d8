// Messages received and not yet asked for by the handler, bounded by count and by bytes: while it is
// full the reader stops reading the socket, so a handler that falls behind slows its client down
// (TCP backpressure) instead of growing memory.
#pragma once

#include <cstddef>   // std::size_t
#include <optional>  // std::optional pop
#include <utility>   // std::move

#include "starling/protocol/message.hpp"
#include "starling/session/ring.hpp"

namespace starling::detail {

class inbox {
public:
    inbox(std::size_t max_messages, std::size_t max_bytes) noexcept : max_messages_(max_messages), max_bytes_(max_bytes) {}

    void set_limits(std::size_t max_messages, std::size_t max_bytes) noexcept {
        max_messages_ = max_messages;
        max_bytes_ = max_bytes;
    }

    void push(message m) {
        bytes_ += cost(m);
        messages_.push_back(std::move(m));
    }

    std::optional<message> pop() {
        if (messages_.empty()) return std::nullopt;
        message m = std::move(messages_.front());
        messages_.pop_front();
        bytes_ -= cost(m);
        return m;
    }

    /// Full by count or by bytes; one message always fits, however large.
    bool full() const noexcept {
        return messages_.size() >= max_messages_ || (bytes_ >= max_bytes_ && !messages_.empty());
    }

    bool empty() const noexcept { return messages_.empty(); }
    std::size_t size() const noexcept { return messages_.size(); }
    /// What the waiting messages cost: their payloads' storage and their slots.
    std::size_t bytes() const noexcept { return bytes_; }

    void clear() {
        messages_.clear();
        bytes_ = 0;
    }

private:
    static std::size_t cost(const message& m) noexcept { return sizeof(message) + m.data.capacity(); }

    ring<message> messages_;
    std::size_t bytes_ = 0;
    std::size_t max_messages_;
    std::size_t max_bytes_;
};

}  // namespace starling::detail
