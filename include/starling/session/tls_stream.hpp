// A TLS connection over a TCP socket (asio::ssl, OpenSSL) as the stream a connection runs on: what
// the engine asks of a stream (see session/tcp_stream.hpp), plus async_handshake(), the TLS opening
// the server runs before the HTTP upgrade. Included only through <starling/tls.hpp>.
//
// The engine reads and writes synchronously while the stream takes bytes, and waits only when it
// refuses. asio::ssl's synchronous writes cannot do that on a non-blocking socket: when the kernel
// takes part of what OpenSSL encrypted, the rest is lost. So nothing here is synchronous on the wire:
//   read_some    what OpenSSL has already decrypted and not handed out (the rest of the TLS record the
//                last async_read_some took its first bytes from), else would_block: the engine then
//                waits with async_read_some. Taking bytes of a record already decrypted needs no I/O
//                and makes none, so it cannot get in the way of asio's operations; it lets a message
//                of up to a record (16 KiB) be parsed in place in the worker's buffer, as over a plain
//                socket, instead of being reassembled in the connection's own.
//   write_some   copies what it is given (up to a bound) into this stream's own buffer and returns the
//                count taken. One asio::async_write of that buffer is in flight at a time; what comes
//                meanwhile is gathered in a second buffer, sent when the first is done. Only when that
//                second one is full does write_some refuse (would_block), and async_wait_writable
//                completes when the write in flight finishes (with its error, if it failed). Like a
//                kernel's send buffer, these hold at most a bounded amount per connection, and they
//                are released when the connection goes idle, so idle connections stay small.
// shutdown_send ends the TCP sending side once what was taken is written, without a TLS close_notify:
// WebSocket's close handshake already tells the peer the stream ends, and waiting for the peer's
// close_notify would read the stream under the engine's own reads.
//
// Everything lives in a shared state that the write in flight holds: the connection may be gone (its
// stream closed under it) before asio delivers that write's completion.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/buffer.hpp>                  // asio::buffer, asio::const_buffer, asio::mutable_buffer
#include <asio/compose.hpp>                 // asio::async_compose for async_wait_writable
#include <asio/error.hpp>                   // would_block, operation_aborted, bad_descriptor
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp::socket under the TLS layer
#include <asio/ssl/context.hpp>             // asio::ssl::context, shared by a listener's connections
#include <asio/ssl/host_name_verification.hpp>  // a client checks the certificate names its host
#include <asio/ssl/stream.hpp>              // asio::ssl::stream
#include <asio/steady_timer.hpp>            // asio::steady_timer as the writable wake-up
#include <asio/write.hpp>                   // asio::async_write of the gathered bytes
#include <openssl/ssl.h>                    // SSL_pending, SSL_read of bytes already decrypted
#include <algorithm>                        // std::min
#include <chrono>                           // std::chrono::steady_clock::time_point::max
#include <cstddef>                          // std::size_t
#include <memory>                           // std::shared_ptr of the state and the context
#include <span>                             // std::span of gathered buffers
#include <string>                           // std::string host of a client's handshake
#include <system_error>                     // std::error_code
#include <utility>                          // std::move
#include <vector>                           // std::vector<char> write buffers

#include "starling/session/tcp_stream.hpp"  // client_address

namespace starling::detail {

class tls_stream {
public:
    using ssl_stream = asio::ssl::stream<asio::ip::tcp::socket>;
    using executor_type = ssl_stream::executor_type;

    /// Bytes gathered for the next write while one is in flight, at most: what write_some takes
    /// before it refuses.
    static constexpr std::size_t max_gathered = 64 * 1024;
    /// A write buffer larger than this is released when the connection goes idle: small messages
    /// (chat lines, JSON events) reuse their buffers, and an idle connection keeps at most two of them.
    static constexpr std::size_t kept_when_idle = 1024;

    /// A server-side TLS stream on an accepted socket, with `context` (certificate, key, versions).
    tls_stream(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context)
        : state_(std::make_shared<state>(std::move(socket), std::move(context))) {
        std::error_code ignored;
        // Frames are written whole: Nagle's delay would only hold them back.
        state_->ssl.next_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
    }

    executor_type get_executor() noexcept { return state_->ssl.get_executor(); }

    /// The TLS handshake, as the server.
    template <class Token>
    auto async_handshake(Token&& token) {
        return state_->ssl.async_handshake(asio::ssl::stream_base::server, std::forward<Token>(token));
    }

    /// The TLS handshake, as a client of `host`: its name goes in SNI, and (when the context verifies
    /// peers) the certificate must be for that name, not only signed by a trusted authority.
    template <class Token>
    auto async_client_handshake(const std::string& host, Token&& token) {
        SSL_set_tlsext_host_name(state_->ssl.native_handle(), host.c_str());
        state_->ssl.set_verify_callback(asio::ssl::host_name_verification(host));
        return state_->ssl.async_handshake(asio::ssl::stream_base::client, std::forward<Token>(token));
    }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return state_->ssl.async_read_some(buffers, std::forward<Token>(token));
    }
    /// For the handshake's answer, before the engine writes through write_some.
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return state_->ssl.async_write_some(buffers, std::forward<Token>(token));
    }

    /// Decrypted bytes already waiting in OpenSSL, without reading the socket; would_block if none.
    std::size_t read_some(asio::mutable_buffer buffer, std::error_code& ec) {
        ec = {};
        if (state_->closed) {
            ec = asio::error::bad_descriptor;
            return 0;
        }
        SSL* ssl = state_->ssl.native_handle();
        const int pending = SSL_pending(ssl);
        if (pending <= 0 || buffer.size() == 0) {
            if (buffer.size() != 0) ec = asio::error::would_block;
            return 0;
        }
        const int wanted = static_cast<int>(std::min<std::size_t>(buffer.size(), static_cast<std::size_t>(pending)));
        const int n = SSL_read(ssl, buffer.data(), wanted);
        if (n <= 0) {
            ec = asio::error::would_block;  // nothing after all: the next async_read_some tells what happened
            return 0;
        }
        return static_cast<std::size_t>(n);
    }

    /// Takes up to max_gathered bytes of `buffers` into this stream's buffer, to be encrypted and sent.
    std::size_t write_some(std::span<const asio::const_buffer> buffers, std::error_code& ec) {
        state& s = *state_;
        ec = {};
        if (s.closed) {
            ec = asio::error::bad_descriptor;
            return 0;
        }
        if (s.error) {
            ec = s.error;
            return 0;
        }
        std::size_t taken = 0;
        for (const asio::const_buffer& b : buffers) {
            const std::size_t room = max_gathered - s.gathered.size();
            const std::size_t n = std::min(room, b.size());
            const char* bytes = static_cast<const char*>(b.data());
            s.gathered.insert(s.gathered.end(), bytes, bytes + n);
            taken += n;
            if (n < b.size()) break;
        }
        if (taken == 0) {
            if (asio::buffer_size(buffers) != 0) ec = asio::error::would_block;
            return 0;
        }
        if (!s.writing) start_write(state_);
        return taken;
    }

    /// handler(ec) once write_some takes bytes again: at once if it does now, else when the write in
    /// flight finishes.
    template <class Handler>
    void async_wait_writable(Handler&& handler) {
        asio::async_compose<Handler, void(std::error_code)>(
            [s = state_](auto& self, std::error_code = {}) {
                if (s->closed) return self.complete(asio::error::operation_aborted);
                if (s->error) return self.complete(s->error);
                if (s->gathered.size() < max_gathered) return self.complete({});
                s->writable.expires_at(std::chrono::steady_clock::time_point::max());
                s->writable.async_wait(std::move(self));
            },
            handler, state_->ssl.get_executor());
    }

    /// Ends TCP's sending side once everything taken is written.
    void shutdown_send(std::error_code& ec) {
        state& s = *state_;
        ec = s.closed ? std::error_code(asio::error::bad_descriptor) : std::error_code();
        if (s.closed) return;
        if (s.writing) {
            s.shutdown_when_written = true;
            return;
        }
        s.ssl.next_layer().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    }

    void close(std::error_code& ec) {
        state& s = *state_;
        s.closed = true;
        s.ssl.next_layer().close(ec);
        s.writable.cancel();
    }

    client_address remote_address() const {
        std::error_code ec;
        const auto remote = state_->ssl.next_layer().remote_endpoint(ec);
        if (ec) return {};
        return {remote.address().to_string(), remote.port()};
    }

    ssl_stream& ssl() noexcept { return state_->ssl; }

private:
    struct state {
        state(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> c)
            : context(std::move(c)), ssl(std::move(socket), *context), writable(ssl.get_executor()) {}
        // First, so it outlives the SSL object made from it: OpenSSL counts its own reference to the
        // context, but what asio::ssl::context owns beside it (callbacks) is freed with this object.
        std::shared_ptr<asio::ssl::context> context;
        ssl_stream ssl;
        asio::steady_timer writable;  // cancelled when the write in flight finishes, or on close
        std::vector<char> sending;    // the bytes of the write in flight
        std::vector<char> gathered;   // taken meanwhile, sent next
        std::error_code error;        // the first write that failed
        bool writing = false;
        bool closed = false;
        bool shutdown_when_written = false;
    };

    /// Sends what is gathered; when that is done, whatever was gathered meanwhile, and so on.
    static void start_write(const std::shared_ptr<state>& s) {
        s->sending.swap(s->gathered);
        s->gathered.clear();
        s->writing = true;
        asio::async_write(s->ssl, asio::buffer(s->sending), [s](std::error_code ec, std::size_t) {
            s->writing = false;
            s->sending.clear();
            if (ec && !s->error) s->error = ec;
            if (!s->error && !s->closed && !s->gathered.empty()) {
                start_write(s);
            } else {
                // Idle (or failed): the large buffers go, so an idle connection keeps only its state.
                if (s->error) s->gathered.clear();
                release_if_large(s->sending);
                release_if_large(s->gathered);
                if (s->shutdown_when_written && !s->closed) {
                    s->shutdown_when_written = false;
                    std::error_code ignored;
                    s->ssl.next_layer().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                }
            }
            s->writable.cancel();
        });
    }

    static void release_if_large(std::vector<char>& buffer) {
        if (buffer.capacity() > kept_when_idle) std::vector<char>().swap(buffer);
    }

    std::shared_ptr<state> state_;
};

}  // namespace starling::detail
