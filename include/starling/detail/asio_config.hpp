// Included before any Asio header. Asio 1.22 (Debian 12) recognises C++20 coroutines in clang only
// through the old `__cpp_coroutines` macro, which clang 14 no longer defines in C++20 mode; without
// this, clang builds would have no asio::awaitable at all.
#pragma once

// Asio's coroutine headers (awaitable, use_awaitable, co_spawn) are empty when included without
// ASIO_HAS_CO_AWAIT; if one came before Starling under clang, every later error would be about
// use_awaitable. Say what to do instead. (Other Asio headers first are harmless.)
#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && \
    (defined(ASIO_AWAITABLE_HPP) || defined(ASIO_USE_AWAITABLE_HPP) || defined(ASIO_CO_SPAWN_HPP))
#error "Starling: include <starling.hpp> before Asio's coroutine headers (clang needs Starling's Asio coroutine setting first), or compile with -DASIO_HAS_CO_AWAIT=1"
#endif

#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && defined(__cpp_impl_coroutine)
#if __cpp_impl_coroutine >= 201902L && __has_include(<coroutine>)
#define ASIO_HAS_CO_AWAIT 1
#endif
#endif
