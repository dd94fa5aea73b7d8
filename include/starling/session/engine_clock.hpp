// The clock of the engine's protocol deadlines: the handshake and close timeouts, idle pings and the
// idle close, the write-stall and message timeouts, receive_for's deadline, the rate limit's buckets
// and the shutdown's wait. It is the steady clock plus an offset that only a test moves (the
// in-process test client's advance(), <starling/testing.hpp>), so that a test can make a minute pass
// at once and see the idle ping go out without waiting for it.
//
// The offset is one per process, not one per loop or connection: Asio's timer queue asks the clock
// type itself for now() (a static function), so a clock cannot carry state of its own. It only ever
// moves forward, since everything that measures with it (the timer heap, deadlines computed earlier,
// the token buckets) assumes time never goes back. Reading it costs one relaxed atomic load.
//
// Its time_point is a type of its own, not the steady clock's: a deadline computed from
// steady_clock::now() would be early by the offset once a test moved it, and the compiler now
// refuses the mix. Code that measures real time (the client's dial, log throttling, the accept
// back-off) keeps the steady clock; from_real() converts a real deadline where the two meet.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/basic_waitable_timer.hpp>    // asio::basic_waitable_timer on this clock
#include <atomic>                           // std::atomic offset
#include <chrono>                           // std::chrono::steady_clock underneath

namespace starling::detail {

struct engine_clock {
    using duration = std::chrono::steady_clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<engine_clock, duration>;
    static constexpr bool is_steady = true;

    static time_point now() noexcept {
        return time_point(std::chrono::steady_clock::now().time_since_epoch() +
                          duration(offset_.load(std::memory_order_relaxed)));
    }

    /// The engine's time at the real (steady clock) instant `t`; max() stays max().
    static time_point from_real(std::chrono::steady_clock::time_point t) noexcept {
        if (t == std::chrono::steady_clock::time_point::max()) return time_point::max();
        return time_point(t.time_since_epoch() + duration(offset_.load(std::memory_order_relaxed)));
    }

    /// Moves every engine deadline `by` closer, for the whole process. A zero or negative `by` does
    /// nothing: time does not go back. Timers already due fire the next time their loop looks at its
    /// timers (the test client makes its loop look at once).
    static void advance(duration by) noexcept {
        if (by > duration::zero()) offset_.fetch_add(by.count(), std::memory_order_relaxed);
    }

private:
    static inline std::atomic<rep> offset_{0};
};

/// The engine's timers: every wait on a protocol deadline.
using engine_timer = asio::basic_waitable_timer<engine_clock>;

}  // namespace starling::detail
