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

/// Dials `url` (ws://, or wss:// with <starling/tls.hpp>) on `context`. Throws connect_error saying
/// what failed.
inline task<client_websocket> connect(asio::io_context& context, std::string_view url, client_options options = {}) {
    std::string why;
    const auto parsed = parse_websocket_url(url, why);
    if (!parsed) throw connect_error(why);
    if (parsed->secure) throw connect_error("wss:// is not supported by this client yet: " + std::string(url));
    asio::ip::tcp::socket socket = co_await detail::connect_tcp(context, *parsed, options.connect_timeout);
    auto connection = std::make_shared<detail::client_connection<detail::tcp_stream>>(
        detail::tcp_stream(std::move(socket)), context, options.websocket);
    auto done = co_await detail::upgrade_client(std::move(connection), *parsed, options);
    asio::co_spawn(context, done.connection->run(), asio::detached);
    detail::client_end& end = *done.connection;
    co_return client_websocket(std::move(done.connection), end, std::string(url), std::move(done.subprotocol));
}

/// Dials `url` on the event loop of the calling coroutine, which must be an asio::io_context's.
inline task<client_websocket> connect(std::string_view url, client_options options = {}) {
    auto executor = co_await asio::this_coro::executor;
    const auto* loop = executor.template target<asio::io_context::executor_type>();
    if (loop == nullptr) throw connect_error("starling::connect runs on an asio::io_context's executor");
    co_return co_await connect(loop->context(), url, std::move(options));
}

}  // namespace starling
