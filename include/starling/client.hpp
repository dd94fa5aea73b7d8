// The client: co_await starling::connect("ws://host:port/path?x=1", options) dials a server and
// hands back a client_websocket with the same receive, send and close as the server's websocket.
//
//     auto ws = co_await starling::connect("ws://127.0.0.1:8080/echo");
//     co_await ws.send_text("hello");
//     std::string reply = co_await ws.receive_text();
//     co_await ws.close();
//     co_await ws.wait_closed();
//
// The connection lives on the event loop connect() runs on (an asio::io_context), and is driven
// from the caller's coroutines: nothing runs on a thread of its own.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/io_context.hpp>              // asio::io_context
#include <asio/this_coro.hpp>               // asio::this_coro::executor
#include <chrono>                           // std::chrono::steady_clock
#include <memory>                           // std::make_shared
#include <string>                           // std::string URL
#include <string_view>                      // std::string_view URL
#include <utility>                          // std::move

#include "starling/api/client_websocket.hpp"
#include "starling/protocol/websocket_url.hpp"
#include "starling/runtime/dial.hpp"
#include "starling/session/tcp_stream.hpp"
#include "starling/task.hpp"

namespace starling {
namespace detail {

/// How wss:// is dialled: set by <starling/tls.hpp>, which plain programs do not include.
using secure_dial = task<client_websocket> (*)(asio::io_context&, const websocket_url&, std::string url,
                                                const client_options&);
inline secure_dial& secure_dialer() noexcept {
    static secure_dial dialer = nullptr;
    return dialer;
}

}  // namespace detail

namespace detail {

/// connect() itself: dials `url` on `context`, or on the calling coroutine's loop when that is null.
/// Its parameters are values of its own frame, made by the plain functions below: a class temporary
/// made inside the caller's co_await (a defaulted options argument, say) is what g++ 12 mishandles.
inline task<client_websocket> dial(asio::io_context* context, std::string url, client_options options) {
    if (context == nullptr) {
        auto executor = co_await asio::this_coro::executor;
        const auto* loop = executor.template target<asio::io_context::executor_type>();
        if (loop == nullptr) throw connect_error("starling::connect runs on an asio::io_context's executor");
        context = &loop->context();
    }
    std::string why;
    const auto parsed = parse_websocket_url(url, why);
    if (!parsed) throw connect_error(why);
    check_client_options(options);
    if (parsed->secure) {
        if (secure_dialer() == nullptr) throw connect_error("wss:// needs TLS: #include <starling/tls.hpp> and link OpenSSL");
        co_return co_await secure_dialer()(*context, *parsed, std::move(url), options);
    }
    asio::ip::tcp::socket socket = co_await connect_tcp(*context, *parsed, options.connect_timeout);
    const auto deadline = std::chrono::steady_clock::now() + options.handshake_timeout;
    auto connection =
        std::make_shared<client_connection<tcp_stream>>(tcp_stream(std::move(socket)), *context, options.websocket);
    connection->begin_handshake(deadline);
    co_return start_client(co_await upgrade_client(std::move(connection), *parsed, options, deadline), std::move(url));
}

}  // namespace detail

/// Dials `url` (ws://, or wss:// with <starling/tls.hpp>) on the calling coroutine's event loop,
/// which must be an asio::io_context's. Throws connect_error saying what failed.
inline task<client_websocket> connect(std::string_view url) { return detail::dial(nullptr, std::string(url), {}); }
inline task<client_websocket> connect(std::string_view url, const client_options& options) {
    return detail::dial(nullptr, std::string(url), options);
}

/// The same on `context`, from any coroutine.
inline task<client_websocket> connect(asio::io_context& context, std::string_view url) {
    return detail::dial(&context, std::string(url), {});
}
inline task<client_websocket> connect(asio::io_context& context, std::string_view url, const client_options& options) {
    return detail::dial(&context, std::string(url), options);
}

}  // namespace starling
