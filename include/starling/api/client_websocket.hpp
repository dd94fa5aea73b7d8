// The client's handle on one connection it dialled (starling::connect): the same receive, send and
// close as the server's `websocket` (api/message_calls.hpp), plus what the handshake settled. The
// connection runs on its own once open (it answers pings, keeps its limits, finishes a close the
// server starts); the handle only reaches into it. Letting the handle go while the connection is
// open closes it with 1000.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>                // asio::co_spawn the close of a handle let go
#include <asio/detached.hpp>                // asio::detached
#include <memory>                           // std::shared_ptr of the connection
#include <string>                           // std::string subprotocol and URL
#include <utility>                          // std::move

#include "starling/api/message_calls.hpp"
#include "starling/http/headers.hpp"
#include "starling/runtime/client_connection.hpp"
#include "starling/runtime/dial.hpp"  // dialed: what a handshake hands over
#include "starling/task.hpp"

namespace starling {

class client_websocket : public detail::message_calls {
public:
    /// Made by connect() once the handshake succeeded.
    client_websocket(std::shared_ptr<detail::connection_base> connection, detail::client_end& end, std::string url,
                     std::string subprotocol)
        : message_calls(*connection),
          connection_(std::move(connection)),
          end_(&end),
          url_(std::move(url)),
          subprotocol_(std::move(subprotocol)) {}

    client_websocket(client_websocket&&) noexcept = default;
    client_websocket& operator=(client_websocket&& other) noexcept {
        if (this != &other) {
            close_if_open();
            message_calls::operator=(std::move(other));
            connection_ = std::move(other.connection_);
            end_ = other.end_;
            url_ = std::move(other.url_);
            subprotocol_ = std::move(other.subprotocol_);
        }
        return *this;
    }
    ~client_websocket() { close_if_open(); }

    /// The URL it was dialled with.
    const std::string& url() const noexcept { return url_; }
    /// The subprotocol the server chose among those offered; empty for none.
    const std::string& subprotocol() const noexcept { return subprotocol_; }
    /// The server's 101 response fields; names are case-insensitive.
    const http::headers& response_headers() const noexcept { return connection_->headers(); }

    /// Returns once the connection is over: after close(), once the server has answered (or
    /// close_timeout passed) and the stream is closed; without it, once the server has closed or the
    /// connection dropped.
    task<> wait_closed() { return end_->wait_over(); }

private:
    void close_if_open() noexcept {
        if (!connection_ || !connection_->is_open()) return;
        try {
            asio::co_spawn(connection_->context(), close_left(connection_), asio::detached);
        } catch (...) {
            try {
                connection_->abort();  // no memory for the close: drop it rather than leave it open
            } catch (...) {
                // Not even that: the connection's own timeouts end it.
            }
        }
    }
    static task<> close_left(std::shared_ptr<detail::connection_base> connection) {
        co_await connection->close(1000, {});
    }

    std::shared_ptr<detail::connection_base> connection_;
    detail::client_end* end_;
    std::string url_;
    std::string subprotocol_;
};

namespace detail {

/// The handshake succeeded: the connection runs on its own from now on, and the caller gets the handle.
template <class Stream>
client_websocket start_client(dialed<Stream> done, std::string url) {
    auto& connection = *done.connection;
    asio::co_spawn(connection.context(), connection.run(), asio::detached);
    client_end& end = connection;
    return client_websocket(std::move(done.connection), end, std::move(url), std::move(done.subprotocol));
}

}  // namespace detail
}  // namespace starling
