// Tests of starling/api/run_concurrently.hpp on a plain event loop: the first side to end stops the
// others (their pending timer waits and the connection's wake-up events are cancelled), the call
// returns only once every side has finished, and it throws the one exception that explains the end.
// Every loop is run for a bounded time, and the sides wait far longer than that: a cancellation that
// does not arrive fails the test instead of passing late.
#include <starling/api/run_concurrently.hpp>

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "starling/session/async_event.hpp"

namespace {

using namespace std::chrono_literals;
using starling::task;

// Longer than any loop below runs: a side still waiting this long was never cancelled.
constexpr auto forever = 1h;
constexpr auto loop_limit = 5s;

/// How a side or the whole call ended.
struct ending {
    bool done = false;
    std::string what;  // "returned", "aborted", "disconnect <code>", or the error's message
};

void describe(ending& out, std::exception_ptr e) {
    out.done = true;
    if (!e) {
        out.what = "returned";
        return;
    }
    try {
        std::rethrow_exception(e);
    } catch (const starling::websocket_disconnect& d) {
        out.what = "disconnect " + std::to_string(d.code());
    } catch (const std::system_error& s) {
        out.what = s.code() == asio::error::operation_aborted ? "aborted" : s.what();
    } catch (const std::exception& other) {
        out.what = other.what();
    }
}

/// Runs `body` (a call of run_concurrently) as a coroutine on `io` until it and everything it started
/// are done, or loop_limit passes.
ending run_bounded(asio::io_context& io, task<> body) {
    ending result;
    asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) { describe(result, e); });
    io.run_for(loop_limit);
    return result;
}

/// A side that waits on a timer until cancelled, and records how its wait ended.
task<> wait_on_timer(ending& seen) {
    asio::steady_timer timer(co_await asio::this_coro::executor, forever);
    try {
        co_await timer.async_wait(asio::use_awaitable);
        seen.done = true;
        seen.what = "expired";
    } catch (...) {
        describe(seen, std::current_exception());
        throw;
    }
}

task<> return_after(std::chrono::milliseconds delay) {
    asio::steady_timer timer(co_await asio::this_coro::executor, delay);
    co_await timer.async_wait(asio::use_awaitable);
}

task<> throw_after(std::chrono::milliseconds delay, std::exception_ptr e) {
    co_await return_after(delay);
    std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("a side that returns cancels a pending steady_timer wait in the other, and the call returns") {
    asio::io_context io;
    ending waiter;
    const auto began = std::chrono::steady_clock::now();
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(), return_after(10ms), wait_on_timer(waiter)));
    CHECK(all.done);
    CHECK(all.what == "returned");
    CHECK(waiter.what == "aborted");
    CHECK(std::chrono::steady_clock::now() - began < loop_limit);
}

TEST_CASE("cancellation reaches a receive-style loop waiting on the connection's async_event") {
    // receive() loops on an async_event of the connection; a cancelled wait looks like a wake-up to
    // the event, so the loop must still end (its next co_await throws).
    asio::io_context io;
    starling::detail::async_event inbox_ready(io.get_executor());
    bool message_arrived = false;
    int wakeups = 0;
    ending receiver;
    auto receive_like = [&]() -> task<> {
        try {
            while (!message_arrived) {
                co_await inbox_ready.wait();
                ++wakeups;
            }
        } catch (...) {
            describe(receiver, std::current_exception());
            throw;
        }
    };
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(), receive_like(), return_after(10ms)));
    CHECK(all.what == "returned");
    CHECK(receiver.what == "aborted");
    CHECK(wakeups == 1);  // woken once by the cancellation, then stopped at the next co_await

    // The same with a deadline, as receive_for() waits.
    receiver = {};
    auto receive_for_like = [&]() -> task<> {
        try {
            for (;;) co_await inbox_ready.wait_until(starling::detail::engine_clock::now() + forever);
        } catch (...) {
            describe(receiver, std::current_exception());
            throw;
        }
    };
    io.restart();
    const ending again = run_bounded(io, starling::run_concurrently(io.get_executor(), return_after(10ms), receive_for_like()));
    CHECK(again.what == "returned");
    CHECK(receiver.what == "aborted");
}

TEST_CASE("an error of one side is rethrown as itself, once, after the other side was stopped") {
    asio::io_context io;
    ending waiter;
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(), wait_on_timer(waiter),
        throw_after(10ms, std::make_exception_ptr(std::runtime_error("tick source failed")))));
    CHECK(all.what == "tick source failed");
    CHECK(waiter.what == "aborted");
}

TEST_CASE("a disconnect in one side ends the others and comes out as websocket_disconnect") {
    asio::io_context io;
    ending waiter;
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(),
        throw_after(10ms, std::make_exception_ptr(starling::websocket_disconnect(1006, ""))), wait_on_timer(waiter)));
    CHECK(all.what == "disconnect 1006");
    CHECK(waiter.what == "aborted");
}

TEST_CASE("an error wins over a disconnect, and a stopped side's own later error is still an error") {
    asio::io_context io;
    // The first side ends with a disconnect; the second, while being stopped, fails in its cleanup.
    auto failing_cleanup = [&]() -> task<> {
        bool stopped = false;
        try {
            asio::steady_timer timer(co_await asio::this_coro::executor, forever);
            co_await timer.async_wait(asio::use_awaitable);
        } catch (const std::system_error&) {
            stopped = true;
        }
        if (stopped) throw std::logic_error("cleanup failed");
    };
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(),
        throw_after(10ms, std::make_exception_ptr(starling::websocket_disconnect(1000, "bye"))), failing_cleanup()));
    CHECK(all.what == "cleanup failed");
}

TEST_CASE("operation_aborted from a side nobody stopped is that side's error, not a quiet end") {
    asio::io_context io;
    asio::steady_timer shared(io, forever);
    auto waits = [&]() -> task<> { co_await shared.async_wait(asio::use_awaitable); };
    auto cancels_it = [&]() -> task<> {
        co_await return_after(10ms);
        shared.cancel();  // the first side's wait ends with operation_aborted of its own
        asio::steady_timer later(co_await asio::this_coro::executor, forever);
        co_await later.async_wait(asio::use_awaitable);
    };
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(), waits(), cancels_it()));
    CHECK(all.what == "aborted");
}

TEST_CASE("the call returns only when every side has finished, cleanup included") {
    asio::io_context io;
    bool cleaned_up = false;
    bool cleaned_up_before_return = false;
    auto slow_cleanup = [&]() -> task<> {
        try {
            asio::steady_timer timer(co_await asio::this_coro::executor, forever);
            co_await timer.async_wait(asio::use_awaitable);
        } catch (const std::system_error&) {
        }
        // Stopped: co_await throws from here on, so the cleanup is synchronous, as in a destructor.
        cleaned_up = true;
    };
    auto body = [&]() -> task<> {
        co_await starling::run_concurrently(io.get_executor(), return_after(10ms), slow_cleanup());
        cleaned_up_before_return = cleaned_up;
    };
    const ending all = run_bounded(io, body());
    CHECK(all.what == "returned");
    CHECK(cleaned_up_before_return);
}

TEST_CASE("three sides: the first to end stops both others") {
    asio::io_context io;
    ending first, second;
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(), wait_on_timer(first),
        return_after(10ms), wait_on_timer(second)));
    CHECK(all.what == "returned");
    CHECK(first.what == "aborted");
    CHECK(second.what == "aborted");
}

TEST_CASE("a side that ends at once still stops the others") {
    asio::io_context io;
    ending waiter;
    auto immediate = []() -> task<> { co_return; };
    const ending all = run_bounded(io, starling::run_concurrently(io.get_executor(), immediate(), wait_on_timer(waiter)));
    CHECK(all.what == "returned");
    CHECK(waiter.what == "aborted");
}

TEST_CASE("cancelling the call cancels every side, and the caller sees the cancellation") {
    asio::io_context io;
    ending a, b, all;
    asio::cancellation_signal cancel;
    asio::co_spawn(io, starling::run_concurrently(io.get_executor(), wait_on_timer(a), wait_on_timer(b)),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) { describe(all, e); }));
    asio::steady_timer soon(io, 10ms);
    soon.async_wait([&](std::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    io.run_for(loop_limit);
    CHECK(all.what == "aborted");
    CHECK(a.what == "aborted");
    CHECK(b.what == "aborted");
}
