// Included before any Asio header. Asio 1.22 (Debian 12) recognises C++20 coroutines in clang only
// through the old `__cpp_coroutines` macro, which clang 14 no longer defines in C++20 mode; without
// this, clang builds would have no asio::awaitable at all.
#pragma once

#if defined(__clang__) && !defined(ASIO_HAS_CO_AWAIT) && defined(__cpp_impl_coroutine)
#if __cpp_impl_coroutine >= 201902L && __has_include(<coroutine>)
#define ASIO_HAS_CO_AWAIT 1
#endif
#endif
