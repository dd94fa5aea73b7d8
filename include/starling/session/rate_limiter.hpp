// A connection's message rate limit: two token buckets, one counting messages and one counting bytes,
// refilled continuously at their rates up to their bursts. A message passes when both buckets hold
// enough; it then takes its share from both. A message larger than the byte burst passes when that
// bucket is full and leaves it in debt, so a big message is slowed down, not refused forever.
#pragma once

#include <algorithm>  // std::min
#include <chrono>     // std::chrono::duration<double> of a refill
#include <cstddef>    // std::size_t

#include "starling/options.hpp"
#include "starling/session/engine_clock.hpp"

namespace starling::detail {

class token_bucket {
public:
    /// `rate` tokens per second, at most `burst` held (0: one second's worth). Starts full.
    token_bucket(double rate, double burst, engine_clock::time_point now) noexcept
        : rate_(rate), capacity_(burst > 0 ? burst : rate), tokens_(capacity_), refilled_at_(now) {}

    bool limited() const noexcept { return rate_ > 0; }

    /// Whether `cost` tokens are there (all of the bucket for a cost above its size).
    bool has(double cost, engine_clock::time_point now) noexcept {
        if (!limited()) return true;
        refill(now);
        return tokens_ >= std::min(cost, capacity_);
    }
    void take(double cost) noexcept {
        if (limited()) tokens_ -= cost;
    }

private:
    void refill(engine_clock::time_point now) noexcept {
        if (now <= refilled_at_) return;
        const double seconds = std::chrono::duration<double>(now - refilled_at_).count();
        tokens_ = std::min(capacity_, tokens_ + seconds * rate_);
        refilled_at_ = now;
    }

    double rate_;
    double capacity_;
    double tokens_;
    engine_clock::time_point refilled_at_;
};

class message_rate_limiter {
public:
    message_rate_limiter(const message_rate_limit& limit, engine_clock::time_point now) noexcept
        : messages_(limit.messages_per_second, limit.message_burst, now), bytes_(limit.bytes_per_second, limit.byte_burst, now) {}

    /// True when a message of `size` bytes is within the limit now (and takes its tokens); false when
    /// it is over (and takes none).
    bool admit(std::size_t size, engine_clock::time_point now) noexcept {
        const auto bytes = static_cast<double>(size);
        if (!messages_.has(1, now) || !bytes_.has(bytes, now)) return false;
        messages_.take(1);
        bytes_.take(bytes);
        return true;
    }

private:
    token_bucket messages_;
    token_bucket bytes_;
};

}  // namespace starling::detail
