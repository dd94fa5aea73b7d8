// Dialling a WebSocket server: DNS, a TCP connection under the connect timeout, then the opening
// handshake under the handshake timeout (the connection's own deadline, as on the server). Every
// failure is a connect_error that says what failed: "connection refused (127.0.0.1:9)",
// "handshake failed: status 403", "bad Sec-WebSocket-Accept".
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/buffer.hpp>                  // asio::buffer
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp resolver and socket
#include <asio/steady_timer.hpp>            // asio::steady_timer: the connect timeout
#include <asio/write.hpp>                   // asio::async_write the request
#include <algorithm>                        // std::min of the body length
#include <array>                            // std::array key nonce
#include <charconv>                         // std::from_chars Content-Length
#include <chrono>                           // std::chrono timeouts
#include <cstdint>                          // std::uint16_t port
#include <memory>                           // std::shared_ptr
#include <stdexcept>                        // std::runtime_error
#include <string>                           // std::string messages and bytes
#include <utility>                          // std::move
#include <vector>                           // std::vector subprotocols

#include "starling/protocol/base64.hpp"
#include "starling/http/headers.hpp"
#include "starling/options.hpp"
#include "starling/protocol/client_handshake.hpp"
#include "starling/protocol/deflate_codec.hpp"  // deflate_available: without zlib, nothing is offered
#include "starling/protocol/permessage_deflate.hpp"
#include "starling/protocol/websocket_url.hpp"
#include "starling/runtime/client_connection.hpp"
#include "starling/session/masking_keys.hpp"  // fill_random: the handshake key
#include "starling/session/tcp_stream.hpp"
#include "starling/task.hpp"

namespace starling {

/// How starling::connect dials and what the connection then allows.
struct client_options {
    /// Extra fields of the upgrade request (Authorization, Origin, cookies...). The handshake's own
    /// fields (Host, Upgrade, Connection, Sec-WebSocket-*) cannot be set here.
    http::headers headers;
    /// Subprotocols to offer, most preferred first; the server picks one or none.
    std::vector<std::string> subprotocols;
    /// DNS and the TCP connection together.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
    /// From the request's first byte to the end of the server's response.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
    /// The server's response head may be at most this large.
    std::size_t max_response_head = 16 * 1024;
    /// wss:// (with <starling/tls.hpp>): the server's certificate must be valid for the URL's host and
    /// signed by an authority in `tls_ca_file` (PEM), or in the system's store when that is empty
    /// (which OpenSSL's SSL_CERT_FILE and SSL_CERT_DIR variables can point elsewhere). Turning
    /// `tls_verify` off accepts any certificate: for tests only.
    std::string tls_ca_file;
    bool tls_verify = true;
    /// permessage-deflate: offered by default, as browsers and Python's websockets client offer it.
    /// The server decides whether it is used and with what context takeover; see
    /// client_compression_options. (websocket.compression is the server's setting: a client ignores
    /// it.)
    client_compression_options compression;
    /// The connection's limits, as the server has them: message and frame sizes, inbox, queue,
    /// close_timeout, idle pings (idle_timeout), write and message timeouts. A compressed message
    /// is inflated only up to max_message_size (then 1009).
    websocket_options websocket;
};

/// Why connect() failed. For a refused handshake, status() is the HTTP status and body() what the
/// server said (as much as arrived, up to 64 KiB).
class connect_error : public std::runtime_error {
public:
    explicit connect_error(const std::string& what, int status = 0, std::string body = {})
        : std::runtime_error(what), status_(status), body_(std::move(body)) {}
    int status() const noexcept { return status_; }
    const std::string& body() const noexcept { return body_; }

private:
    int status_;
    std::string body_;
};

namespace detail {

/// What a successful handshake leaves: the open connection and the subprotocol chosen (empty for none).
template <class Stream>
struct dialed {
    std::shared_ptr<client_connection<Stream>> connection;
    std::string subprotocol;
};

/// A TCP connection to `url`'s host and port, trying each address DNS gives in turn, all within
/// `timeout`.
inline task<asio::ip::tcp::socket> connect_tcp(asio::io_context& context, const websocket_url& url,
                                               std::chrono::milliseconds timeout) {
    // host:port as it would be written in a URL, the default port included: what the errors name.
    const std::string where =
        (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::ip::tcp::resolver resolver(context);
    auto [resolve_ec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), as_tuple_awaitable);
    if (resolve_ec) throw connect_error("cannot resolve " + url.host + ": " + resolve_ec.message());

    std::error_code last;
    for (const auto& entry : results) {
        if (std::chrono::steady_clock::now() >= deadline) break;
        asio::ip::tcp::socket socket(context);
        // The timer closes the socket under a connect that takes too long. It may fire after the
        // connect completed, so it looks at `settled` first, and touches the socket only while this
        // frame still waits on it.
        auto settled = std::make_shared<bool>(false);
        asio::steady_timer timer(context);
        timer.expires_at(deadline);
        timer.async_wait([settled, &socket](std::error_code ec) {
            if (ec || *settled) return;
            std::error_code ignored;
            socket.close(ignored);
        });
        auto [ec] = co_await socket.async_connect(entry.endpoint(), as_tuple_awaitable);
        *settled = true;
        timer.cancel();
        if (!ec) co_return std::move(socket);
        last = ec;
    }
    if (std::chrono::steady_clock::now() >= deadline)
        throw connect_error("connect timed out after " + std::to_string(timeout.count()) + " ms (" + where + ")");
    if (last == asio::error::connection_refused) throw connect_error("connection refused (" + where + ")");
    throw connect_error("cannot connect to " + where + ": " + last.message());
}

/// A fresh Sec-WebSocket-Key: 16 random bytes, base64.
inline std::string make_client_key() {
    std::array<std::uint8_t, 16> nonce{};
    fill_random(nonce);
    return base64_encode(nonce);
}

/// The refused handshake's body: what follows the head, as much as Content-Length says and arrives
/// before the deadline closes the stream, at most 64 KiB.
template <class Stream>
task<std::string> read_refusal_body(Stream& stream, const upgrade_response& response, std::string body) {
    constexpr std::size_t most = 64 * 1024;
    std::size_t length = 0;
    if (const auto field = response.fields.get("Content-Length")) {
        const auto [end, ec] = std::from_chars(field->data(), field->data() + field->size(), length);
        if (ec != std::errc() || end != field->data() + field->size()) length = 0;
    }
    length = std::min(length, most);
    char chunk[4096];
    while (body.size() < length) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), as_tuple_awaitable);
        if (ec) break;
        body.append(chunk, n);
    }
    if (body.size() > length) body.resize(length);
    co_return body;
}

/// Options a connection cannot be dialled with, refused before anything is sent.
inline void check_client_options(const client_options& options) {
    for (const auto& [name, value] : options.headers)
        if (is_handshake_field(name)) throw connect_error("the handshake sets " + name + " itself: it cannot be an extra header");
    if (!valid_subprotocols(options.subprotocols)) throw connect_error("a subprotocol name must be an HTTP token");
    if (const std::string problem = client_compression_problem(options.compression); !problem.empty())
        throw connect_error("compression: " + problem);
}

/// The compression offered with `options`: none when it is off, or when the build has no zlib.
inline const client_compression_options* offered_compression(const client_options& options) noexcept {
    return deflate_available && options.compression.enabled ? &options.compression : nullptr;
}

/// The opening handshake on `connection`'s stream (already connected, and through TLS for wss://),
/// which the connection closes at `deadline` (begin_handshake) under whatever waits on it.
template <class Stream>
task<dialed<Stream>> upgrade_client(std::shared_ptr<client_connection<Stream>> connection, const websocket_url& url,
                                    const client_options& options, std::chrono::steady_clock::time_point deadline) {
    const std::string key = make_client_key();
    const client_compression_options* compression = offered_compression(options);
    const std::string request = make_upgrade_request(url, key, options.headers, options.subprotocols,
                                                     compression ? deflate_offer_field(*compression) : std::string());
    auto timed_out = [&] {
        return connect_error("handshake failed: no response within " + std::to_string(options.handshake_timeout.count()) +
                             " ms");
    };
    auto [write_ec, written] = co_await asio::async_write(connection->stream(), asio::buffer(request), as_tuple_awaitable);
    if (write_ec) {
        connection->discard();
        if (std::chrono::steady_clock::now() >= deadline) throw timed_out();
        throw connect_error("handshake failed: " + write_ec.message());
    }

    std::string received;
    std::size_t head_end = std::string::npos;
    char chunk[4096];
    while ((head_end = response_head_end(received)) == std::string::npos) {
        if (received.size() > options.max_response_head) {
            connection->discard();
            throw connect_error("handshake failed: the response head is larger than " +
                                std::to_string(options.max_response_head) + " bytes");
        }
        auto [ec, n] = co_await connection->stream().async_read_some(asio::buffer(chunk), as_tuple_awaitable);
        if (ec) {
            connection->discard();
            if (std::chrono::steady_clock::now() >= deadline) throw timed_out();
            throw connect_error(received.empty() ? "handshake failed: the server closed the connection without a response"
                                                 : "handshake failed: the server closed the connection mid-response");
        }
        received.append(chunk, n);
    }

    upgrade_response response;
    std::string why;
    if (!parse_upgrade_response(std::string_view(received).substr(0, head_end), response, why)) {
        connection->discard();
        throw connect_error(why);
    }
    upgrade_check check = check_upgrade_response(response, key, options.subprotocols, compression);
    if (!check.ok()) {
        std::string body;
        if (response.status != 101)
            body = co_await read_refusal_body(connection->stream(), response, received.substr(head_end));
        connection->discard();
        throw connect_error(check.error, response.status == 101 ? 0 : response.status, std::move(body));
    }
    const std::string path(url.target.substr(0, url.target.find('?')));
    connection->opened(path, std::move(response.fields), std::string_view(received).substr(head_end), check.compression,
                       options.compression);
    co_return dialed<Stream>{std::move(connection), std::move(check.subprotocol)};
}

}  // namespace detail
}  // namespace starling
