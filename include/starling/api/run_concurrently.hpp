// run_concurrently: several coroutines on one connection at once (a receive loop beside a ticker, a
// game tick, a keep-alive), ending together. The first side to end, however it ends, stops the
// others through Asio's per-operation cancellation; the call returns once every side has finished, so
// the sides may keep references to the handler's locals. What it then throws is the one thing that
// ended the connection: a side's own error, else the websocket_disconnect, else nothing.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/associated_cancellation_slot.hpp>  // the caller's slot, to pass its cancellation on
#include <asio/associated_executor.hpp>  // where the caller resumes
#include <asio/async_result.hpp>         // asio::async_initiate
#include <asio/bind_cancellation_slot.hpp>  // each side's own cancellation signal
#include <asio/cancellation_signal.hpp>  // asio::cancellation_signal
#include <asio/cancellation_type.hpp>    // asio::cancellation_type::terminal
#include <asio/co_spawn.hpp>             // each side runs as its own coroutine thread
#include <asio/error.hpp>                // asio::error::operation_aborted, what a cancelled wait throws
#include <asio/io_context.hpp>           // asio::io_context::executor_type
#include <asio/post.hpp>                 // the caller resumes in a turn of its own
#include <asio/use_awaitable.hpp>        // asio::use_awaitable
#include <array>                         // std::array of sides and their signals
#include <concepts>                      // std::same_as
#include <cstddef>                       // std::size_t
#include <exception>                     // std::exception_ptr
#include <memory>                        // std::shared_ptr shared by the sides' completions
#include <system_error>                  // std::system_error
#include <type_traits>                   // std::decay_t of the caller's handler
#include <utility>                       // std::move

#include "starling/api/websocket.hpp"
#include "starling/protocol/websocket_disconnect.hpp"
#include "starling/task.hpp"

namespace starling {
namespace detail {

/// The state the sides' completions share. Lives as long as a side is still running; hands the
/// caller its outcome when the last one finishes.
template <std::size_t N, class Handler>
class concurrent_run : public std::enable_shared_from_this<concurrent_run<N, Handler>> {
public:
    using executor_type = asio::io_context::executor_type;

    concurrent_run(executor_type executor, Handler handler)
        : executor_(std::move(executor)), handler_(std::move(handler)) {}

    concurrent_run(const concurrent_run&) = delete;
    concurrent_run& operator=(const concurrent_run&) = delete;

    ~concurrent_run() {
        // Only reached with the caller not resumed when its event loop is destroyed with the sides
        // still pending: the slot must not keep a handler that points here.
        if (!completed_) clear_caller_slot();
    }

    void start(std::array<task<>, N> sides) {
        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            // The caller's own cancellation (it is itself one side of an outer run_concurrently, say)
            // stops every side. `this` is safe: the slot is cleared before the handler is let go.
            slot.assign([this](asio::cancellation_type) {
                caller_cancelled_ = true;
                stop_running_sides();
            });
        }
        for (std::size_t i = 0; i < N; ++i) {
            asio::co_spawn(executor_, std::move(sides[i]),
                           asio::bind_cancellation_slot(signals_[i].slot(),
                                                        [self = this->shared_from_this(), i](std::exception_ptr e) {
                                                            self->side_finished(i, std::move(e));
                                                        }));
            started_[i] = true;
            // A side that ended while the later ones were being started (co_spawn posts completions,
            // so not before this loop is over; checked all the same) stops those too.
            if (stopping_ && !stop_requested_[i]) stop(i);
        }
    }

private:
    void side_finished(std::size_t i, std::exception_ptr e) {
        finished_[i] = true;
        --running_;
        record(i, std::move(e));
        if (!stopping_) stop_running_sides();  // the first to end, however it ended, ends the rest
        if (running_ == 0) complete();
    }

    /// Sorts a side's ending into the three things the caller may be told. Only the first of each kind
    /// is kept: the first error is what went wrong, whatever the sides did while being stopped.
    void record(std::size_t i, std::exception_ptr e) {
        if (!e) return;  // returned
        try {
            std::rethrow_exception(e);
        } catch (const websocket_disconnect&) {
            if (!disconnect_) disconnect_ = e;
        } catch (const std::system_error& error) {
            // A wait ended by our own request to stop is how a stopped side ends, not an error of its
            // own; the same exception from a side nobody asked to stop is one.
            if (stop_requested_[i] && error.code() == asio::error::operation_aborted) {
                if (!cancellation_) cancellation_ = e;
            } else if (!failure_) {
                failure_ = e;
            }
        } catch (...) {
            if (!failure_) failure_ = e;
        }
    }

    void stop_running_sides() {
        stopping_ = true;
        for (std::size_t i = 0; i < N; ++i)
            if (started_[i] && !finished_[i] && !stop_requested_[i]) stop(i);
    }

    void stop(std::size_t i) {
        stop_requested_[i] = true;
        signals_[i].emit(asio::cancellation_type::terminal);
    }

    void complete() {
        completed_ = true;
        clear_caller_slot();
        std::exception_ptr outcome = failure_ ? failure_ : disconnect_;
        if (!outcome && caller_cancelled_) {
            // Stopped from outside: the caller sees the cancellation it asked for, not a normal end.
            outcome = cancellation_ ? cancellation_
                                    : std::make_exception_ptr(std::system_error(asio::error::operation_aborted));
        }
        // Resumed in a turn of its own rather than inside the last side's completion.
        auto caller_executor = asio::get_associated_executor(handler_, executor_);
        asio::post(caller_executor, [handler = std::move(handler_), outcome = std::move(outcome)]() mutable {
            std::move(handler)(std::move(outcome));
        });
    }

    void clear_caller_slot() {
        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) slot.clear();
    }

    executor_type executor_;
    Handler handler_;
    std::array<asio::cancellation_signal, N> signals_;
    std::array<bool, N> started_{};
    std::array<bool, N> finished_{};
    std::array<bool, N> stop_requested_{};
    std::size_t running_ = N;
    bool stopping_ = false;
    bool caller_cancelled_ = false;
    bool completed_ = false;
    std::exception_ptr failure_;
    std::exception_ptr disconnect_;
    std::exception_ptr cancellation_;
};

template <std::size_t N>
struct initiate_concurrent_run {
    asio::io_context::executor_type executor;

    template <class Handler>
    void operator()(Handler&& handler, std::array<task<>, N> sides) const {
        auto run = std::make_shared<concurrent_run<N, std::decay_t<Handler>>>(executor, std::forward<Handler>(handler));
        run->start(std::move(sides));
    }
};

}  // namespace detail

/// Runs `sides` at once on `executor` and returns when all of them have finished. When one side ends
/// (returns or throws), the others are cancelled: a pending receive, send or Asio wait in them throws
/// std::system_error (operation_aborted), and so does any later co_await of theirs. Afterwards this
/// throws the first error a side threw of its own, else the first websocket_disconnect, else returns.
/// Cancelling the call itself cancels every side.
template <class... Sides>
    requires(sizeof...(Sides) >= 1 && (std::same_as<Sides, task<>> && ...))
task<> run_concurrently(asio::io_context::executor_type executor, Sides... sides) {
    constexpr std::size_t n = sizeof...(Sides);
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        detail::initiate_concurrent_run<n>{std::move(executor)}, asio::use_awaitable,
        std::array<task<>, n>{std::move(sides)...});
}

/// The same on the connection's event loop, where its coroutines must run. A dropped connection ends
/// a side as soon as it receives or sends: a pending receive throws websocket_disconnect at once, so a
/// receive loop as one side ends a ticker waiting on its timer too. A websocket_disconnect thrown from
/// here is the normal end of a handler; an error is thrown as it was, so the log names it.
template <class... Sides>
    requires(sizeof...(Sides) >= 1 && (std::same_as<Sides, task<>> && ...))
task<> run_concurrently(websocket& ws, Sides... sides) {
    return run_concurrently(ws.context().get_executor(), std::move(sides)...);
}

}  // namespace starling
