// The build-cost floor: what any Asio coroutine WebSocket-ish server on these dependencies pays
// before Starling adds anything. A bare Asio C++20-coroutine TCP echo server, plus simdjson's header.
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <simdjson.h>

namespace {

asio::awaitable<void> echo(asio::ip::tcp::socket socket) {
    char data[4096];
    for (;;) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(data), asio::experimental::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        auto [write_ec, written] = co_await asio::async_write(socket, asio::buffer(data, n),
                                                              asio::experimental::as_tuple(asio::use_awaitable));
        if (write_ec) co_return;
    }
}

asio::awaitable<void> listen(asio::ip::tcp::acceptor& acceptor) {
    for (;;) {
        auto socket = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
    }
}

}  // namespace

int main() {
    asio::io_context context;
    asio::ip::tcp::acceptor acceptor(context, {asio::ip::tcp::v4(), 8080});
    asio::co_spawn(context, listen(acceptor), asio::detached);
    context.run();
}
