// A TCP socket as the stream a connection runs on (session/connection.hpp).
//
// What the engine asks of a stream, and any stream type must offer (session/memory_stream.hpp is the
// other one):
//   get_executor()                         the event loop its operations complete on
//   async_read_some(buffer, token)         wait for input (Asio's AsyncReadStream)
//   async_write_some(buffers, token)       Asio's AsyncWriteStream, for the handshake's answer
//   read_some(buffer, ec)                  what is there now, without waiting: would_block if nothing
//   write_some(buffers, ec)                as much as is taken now, without waiting: would_block if none
//   async_wait_writable(handler)           handler(ec) once write_some can take bytes again
//   shutdown_send(ec)                      no more output; the peer reads an end of stream
//   close(ec)                              every pending and later operation fails at once
//   remote_address()                       the peer, for websocket::client()
// The engine writes synchronously until the kernel refuses and waits only then, so the socket is
// non-blocking from the start.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp::socket
#include <cstdint>                          // std::uint16_t port
#include <span>                             // std::span of gathered buffers
#include <string>                           // std::string address
#include <system_error>                     // std::error_code
#include <utility>                          // std::move

namespace starling {

/// The peer's address.
struct client_address {
    std::string ip;
    std::uint16_t port = 0;
};

namespace detail {

class tcp_stream {
public:
    using executor_type = asio::ip::tcp::socket::executor_type;

    explicit tcp_stream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
        std::error_code ignored;
        socket_.non_blocking(true, ignored);
        // Frames are written whole, in gathered writes: Nagle's delay would only hold them back.
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    }

    executor_type get_executor() noexcept { return socket_.get_executor(); }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return socket_.async_read_some(buffers, std::forward<Token>(token));
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return socket_.async_write_some(buffers, std::forward<Token>(token));
    }

    std::size_t read_some(asio::mutable_buffer buffer, std::error_code& ec) { return socket_.read_some(buffer, ec); }

    // A span, not a vector: the operation copies its buffer sequence, and copying a vector would
    // allocate.
    std::size_t write_some(std::span<const asio::const_buffer> buffers, std::error_code& ec) {
        return socket_.write_some(buffers, ec);
    }

    template <class Handler>
    void async_wait_writable(Handler&& handler) {
        socket_.async_wait(asio::socket_base::wait_write, std::forward<Handler>(handler));
    }

    void shutdown_send(std::error_code& ec) { socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec); }
    void close(std::error_code& ec) { socket_.close(ec); }

    client_address remote_address() const {
        std::error_code ec;
        const auto remote = socket_.remote_endpoint(ec);
        if (ec) return {};
        return {remote.address().to_string(), remote.port()};
    }

    asio::ip::tcp::socket& socket() noexcept { return socket_; }

private:
    asio::ip::tcp::socket socket_;
};

}  // namespace detail
}  // namespace starling
