// The coroutine type of Starling's API: handlers, callbacks and every receive/send are task<>s.
#pragma once

#include "starling/detail/asio_config.hpp"  // first: makes Asio see clang's coroutines
#include <asio/awaitable.hpp>               // asio::awaitable, the coroutine type Asio's I/O composes with
#include <asio/experimental/as_tuple.hpp>  // as_tuple: an operation's error code as a value
#include <asio/use_awaitable.hpp>           // asio::use_awaitable
#include <type_traits>         // std::false_type / std::true_type for is_task

namespace starling {

/// A coroutine returning T. It is Asio's awaitable, so a handler can co_await Starling's operations and
/// any Asio operation (timers, other sockets) with `asio::use_awaitable`.
template <class T = void>
using task = asio::awaitable<T>;

template <class T>
struct is_task : std::false_type {};
template <class T, class Executor>
struct is_task<asio::awaitable<T, Executor>> : std::true_type {};

template <class T>
inline constexpr bool is_task_v = is_task<T>::value;

namespace detail {

/// Completion token for `co_await op(..., as_tuple_awaitable)`: yields (error_code, result...) instead
/// of throwing, because a dropped peer is routine for a server, not exceptional.
inline constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace detail
}  // namespace starling
