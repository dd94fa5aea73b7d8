// The counters of one endpoint on one worker: what its connections there opened, closed, received,
// sent and queued. Each block is written only by its worker's thread, so counting is never a shared
// write on the per-message path: every counter is an atomic loaded and stored with relaxed order (no
// read-modify-write, no lock), which costs what a plain increment costs, and can still be read from
// any thread. Reading sums the blocks of all workers (runtime/metrics.hpp).
#pragma once

#include <array>    // std::array buckets and close classes
#include <atomic>   // std::atomic counters
#include <chrono>   // std::chrono durations of round trips
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t, std::int64_t, std::uint16_t

namespace starling::detail {

// STARLING_NO_METRICS (defined before the first Starling include, the same in every file of a
// program) compiles every counter and gauge to nothing, so app.metrics() and the metrics page read
// zeros. It exists to measure what counting costs: the benchmark builds echo both ways and runs them
// side by side. Counting is meant to stay on.
#ifdef STARLING_NO_METRICS
inline constexpr bool metrics_compiled = false;
#else
inline constexpr bool metrics_compiled = true;
#endif

/// Only ever increased, by one thread.
class counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        if constexpr (metrics_compiled) value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

/// Goes up and down, by one thread.
class gauge {
public:
    void add(std::int64_t n) noexcept {
        if constexpr (metrics_compiled) value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void set(std::int64_t n) noexcept {
        if constexpr (metrics_compiled) value_.store(n, std::memory_order_relaxed);
    }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

/// How a connection ended, by its close code: the classes the metrics report.
enum class close_class : std::uint8_t { normal, going_away, protocol_error, policy, too_big, server_error, abnormal, other };
inline constexpr std::size_t close_class_count = 8;

constexpr close_class classify_close(std::uint16_t code) noexcept {
    switch (code) {
    case 1000: return close_class::normal;
    case 1001: return close_class::going_away;
    case 1002: case 1003: case 1007: case 1010: return close_class::protocol_error;
    case 1008: return close_class::policy;
    case 1009: return close_class::too_big;
    case 1011: return close_class::server_error;
    case 1005: return close_class::normal;  // a close frame without a code: what a browser's ws.close() sends
    case 1006: return close_class::abnormal;
    default: return close_class::other;
    }
}

constexpr const char* to_label(close_class c) noexcept {
    switch (c) {
    case close_class::normal: return "normal";
    case close_class::going_away: return "going_away";
    case close_class::protocol_error: return "protocol_error";
    case close_class::policy: return "policy";
    case close_class::too_big: return "too_big";
    case close_class::server_error: return "server_error";
    case close_class::abnormal: return "abnormal";
    case close_class::other: return "other";
    }
    return "other";
}

/// Round trips of pings (the idle check's): how many fell at or under each bound.
struct rtt_histogram {
    /// Upper bounds in seconds; one more bucket above the last.
    static constexpr std::array<double, 10> bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

    void observe(std::chrono::steady_clock::duration rtt) noexcept {
        const double seconds = std::chrono::duration<double>(rtt).count();
        std::size_t i = 0;
        while (i < bounds.size() && seconds > bounds[i]) ++i;
        buckets[i].add();
        count.add();
        sum_microseconds.add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(rtt).count()));
    }

    std::array<counter, bounds.size() + 1> buckets{};  // not cumulative: the exposition adds them up
    counter count;
    counter sum_microseconds;
};

struct endpoint_counters {
    gauge open;
    counter opened;
    std::array<counter, close_class_count> closed{};  // by close_class
    counter messages_in;
    counter bytes_in;   // payload bytes of received messages
    counter messages_out;
    counter bytes_out;  // payload bytes of queued data frames
    counter deliveries;  // frames from broadcast, publish or send_to queued for a connection
    counter slow_consumer_closes;
    counter slow_consumer_drops;
    gauge queued_bytes;             // what the outbound queues of this worker's connections hold now
    gauge queued_bytes_high_water;  // the most they held at once
    counter pings_sent;
    rtt_histogram pong_rtt;
    counter auth_refusals;        // upgrades the authentication hook refused
    counter rate_limited_drops;   // messages over the rate limit, dropped (rate_limit_policy::drop)
    counter rate_limited_closes;  // connections closed for going over it (rate_limit_policy::close)
};

}  // namespace starling::detail
