// Included before any Asio header. Asio 1.22 (Debian 12) recognises C++20 coroutines in clang only
// through the old `__cpp_coroutines` macro, which clang 14 no longer defines in C++20 mode; without
// this, clang builds would have no asio::awaitable at all.
#pragma once

// A standard header before any of Asio's: Asio decides whether to allocate with aligned_alloc from
// a macro of the standard library's configuration (_GLIBCXX_HAVE_ALIGNED_ALLOC), and decides it once
// per translation unit. In a unit whose first include is Asio's, the macro is not defined yet, so that
// unit would allocate with operator new and free with the other's std::free, or the reverse: an
// alloc-dealloc mismatch between units of one program (seen under AddressSanitizer).
#include <cstddef>  // the standard library's configuration, before Asio reads it

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
