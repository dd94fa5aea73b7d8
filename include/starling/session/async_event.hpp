// Wake-up signals for coroutines on one executor, built on a timer so waiting allocates nothing beyond
// Asio's recycled operation memory: async_event for one waiter with an optional deadline,
// async_signal for any number of waiters.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/use_awaitable.hpp>   // asio::use_awaitable
#include <cstddef>                  // std::size_t waiter count

#include "starling/session/engine_clock.hpp"  // the timer, and the clock of wait_until's deadline
#include "starling/task.hpp"

namespace starling::detail {

/// notify() wakes the coroutine suspended in wait(); a notify with nobody waiting is a no-op, so
/// callers re-check their condition in a loop (`while (!ready) co_await event.wait();`). Safe because
/// everything touching one event runs on one executor: nothing runs between the check and the wait.
class async_event {
public:
    template <class Executor>
    explicit async_event(const Executor& executor) : timer_(executor) {}

    /// Suspends until notify() (or until the waiter's coroutine is cancelled). No coroutine of its own,
    /// since an idle connection waits here all the time: the timer's own operation is handed back.
    auto wait() {
        timer_.expires_at(engine_clock::time_point::max());
        waiting_ = true;
        return timer_.async_wait(as_tuple_awaitable);
    }

    /// Suspends until notify(). Returns false if `deadline` passed first.
    task<bool> wait_until(engine_clock::time_point deadline) {
        timer_.expires_at(deadline);
        waiting_ = true;
        auto [ec] = co_await timer_.async_wait(as_tuple_awaitable);
        waiting_ = false;
        co_return ec == asio::error::operation_aborted;  // cancelled by notify(), not expired
    }

    /// Cheap when nobody waits (the common case on a busy connection): no timer operation at all.
    void notify() noexcept {
        if (!waiting_) return;
        waiting_ = false;  // the waiter is woken; further notifies before it runs have nothing to do
        timer_.cancel();
    }

private:
    engine_timer timer_;
    bool waiting_ = false;
};

/// notify_all() wakes every coroutine suspended in wait() (several senders may wait for the same
/// queue to drain). No deadline: re-arming the timer for one waiter would cancel the others' waits.
class async_signal {
public:
    template <class Executor>
    explicit async_signal(const Executor& executor) : timer_(executor) {}

    task<> wait() {
        if (waiters_++ == 0) timer_.expires_at(engine_clock::time_point::max());
        co_await timer_.async_wait(as_tuple_awaitable);
        --waiters_;
    }

    void notify_all() noexcept {
        if (waiters_ != 0) timer_.cancel();
    }

private:
    engine_timer timer_;
    std::size_t waiters_ = 0;
};

}  // namespace starling::detail
