// Included before any Asio header. Asio 1.22 (Debian 12) recognises C++20 coroutines in clang only
// through the old `__cpp_coroutines` macro, which clang 14 no longer defines in C++20 mode; without
// this, clang builds would have no asio::awaitable at all.
#pragma once

// Asio decides once, in its first header; if that came before Starling's, clang is left without
// asio::awaitable and every later error would be about use_awaitable. Say what to do instead.
#if defined(__clang__) && defined(ASIO_DETAIL_CONFIG_HPP) && !defined(ASIO_HAS_CO_AWAIT)
#error "Starling: include <starling.hpp> before any Asio header (clang needs Starling's Asio coroutine setting first), or compile with -DASIO_HAS_CO_AWAIT=1"
#endif

#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && defined(__cpp_impl_coroutine)
#if __cpp_impl_coroutine >= 201902L && __has_include(<coroutine>)
#define ASIO_HAS_CO_AWAIT 1
#endif
#endif
