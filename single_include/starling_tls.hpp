// Starling with TLS (wss://): single_include/starling.hpp plus <starling/tls.hpp>.
//
// GENERATED FILE, DO NOT EDIT. Made by tools/amalgamate.py from include/; edit those headers and run
// the script again. A test fails when this file is stale.
//
// Needs: what starling.hpp needs (keep it beside this file), and OpenSSL (link -lssl -lcrypto).
#pragma once

#include "starling.hpp"

// ---- begin starling/tls.hpp ----
// TLS for Starling: wss:// (and https for pages) on the same API, through asio::ssl and OpenSSL.
// Opt-in: include this header after <starling.hpp> and link OpenSSL (-lssl -lcrypto; meson:
// dependency('openssl'), or Starling's 'starling-tls' dependency). Programs that do not include it need
// neither OpenSSL's headers nor its libraries.
//
//   starling::server_options options;
//   options.port = 8443;
//   options.transport = starling::tls({.certificate_chain_file = "cert.pem", .private_key_file = "key.pem"});
//   app.add_listener(8080);  // plain ws:// beside it, same endpoints
//   app.listen(options);     // throws, naming the file, when a certificate or key cannot be used
//   app.reload_tls();        // later, from any thread: new connections get the files as they are now
//
// With it, starling::connect() dials wss:// URLs too (client_options::tls_ca_file, tls_verify).

#include <memory>   // std::shared_ptr of the transport
#include <utility>  // std::move


// ---- begin starling/runtime/tls_dial.hpp ----
// Dialling wss://: the TCP connection, then the TLS handshake as a client (SNI, the certificate
// checked against the host name and the trusted authorities, TLS 1.2 at least, ALPN http/1.1), then
// the WebSocket handshake, all under one handshake deadline. Reached only through <starling/tls.hpp>.

#include <asio/ssl/context.hpp>             // asio::ssl::context of one client connection
#include <openssl/ssl.h>                    // SSL_CTX_set_alpn_protos
#include <chrono>                           // std::chrono::steady_clock deadline
#include <memory>                           // std::make_shared
#include <string>                           // std::string URL
#include <system_error>                     // std::system_error of an unreadable CA file
#include <utility>                          // std::move


// ---- begin starling/session/tls_stream.hpp ----
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
// ---- end starling/session/tls_stream.hpp ----

namespace starling::detail {

/// The TLS settings of one client connection, from its options.
inline std::shared_ptr<asio::ssl::context> client_tls_context(const client_options& options) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                         asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1);
    if (options.tls_verify) {
        context->set_verify_mode(asio::ssl::verify_peer);
        try {
            if (options.tls_ca_file.empty())
                context->set_default_verify_paths();
            else
                context->load_verify_file(options.tls_ca_file);
        } catch (const std::system_error& e) {
            throw connect_error("cannot load the trusted authorities " +
                                (options.tls_ca_file.empty() ? std::string("of the system") : options.tls_ca_file) + ": " +
                                e.code().message());
        }
    } else {
        context->set_verify_mode(asio::ssl::verify_none);
    }
    static constexpr unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(context->native_handle(), alpn, sizeof alpn);
    return context;
}

inline task<client_websocket> dial_tls(asio::io_context& context, const websocket_url& url, std::string text,
                                       const client_options& options) {
    auto tls = client_tls_context(options);
    asio::ip::tcp::socket socket = co_await connect_tcp(context, url, options.connect_timeout);
    const auto deadline = std::chrono::steady_clock::now() + options.handshake_timeout;
    auto connection = std::make_shared<client_connection<tls_stream>>(tls_stream(std::move(socket), std::move(tls)),
                                                                      context, options.websocket);
    connection->begin_handshake(deadline);  // the TLS handshake and the upgrade together
    auto [ec] = co_await connection->stream().async_client_handshake(url.host, as_tuple_awaitable);
    if (ec) {
        connection->discard();
        if (std::chrono::steady_clock::now() >= deadline)
            throw connect_error("TLS handshake failed: no answer within " + std::to_string(options.handshake_timeout.count()) +
                                " ms");
        throw connect_error("TLS handshake failed: " + ec.message());
    }
    co_return start_client(co_await upgrade_client(std::move(connection), url, options, deadline), std::move(text));
}

/// Makes connect() dial wss:// in every program that includes <starling/tls.hpp>.
inline const bool tls_dialer_installed = [] {
    secure_dialer() = &dial_tls;
    return true;
}();

}  // namespace starling::detail
// ---- end starling/runtime/tls_dial.hpp ----

// ---- begin starling/runtime/tls_listener.hpp ----
// TLS as a listening port's transport (runtime/transport.hpp): wss://, and https for the pages.
// Included only through <starling/tls.hpp>, so that nothing else needs OpenSSL.
//
// The certificate, key and versions live in one asio::ssl::context. Each connection takes the context
// current when it is accepted and keeps it for its life (session/tls_stream.hpp holds it), so that
// reload() only swaps which context the next connections get: open connections are untouched, and a
// reload that fails changes nothing.

#include <asio/io_context.hpp>              // asio::io_context the connection lives on
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp::socket, as accepted
#include <asio/ssl/context.hpp>             // asio::ssl::context
#include <openssl/err.h>                    // ERR_GET_REASON of a key that does not fit
#include <openssl/ssl.h>                    // versions, ALPN, SSL_CTX_check_private_key
#include <openssl/x509.h>                   // X509_R_KEY_VALUES_MISMATCH
#include <cerrno>                           // errno of a file that cannot be opened
#include <cstdio>                           // std::fopen to tell a missing file from a bad one
#include <cstring>                          // std::strerror
#include <memory>                           // std::shared_ptr of the context
#include <mutex>                            // std::mutex around the current context
#include <stdexcept>                        // std::runtime_error naming the file
#include <string>                           // std::string messages
#include <system_error>                     // std::error_code
#include <utility>                          // std::move


namespace starling::detail {

class tls_transport final : public starling::transport {
public:
    explicit tls_transport(tls_options options) : options_(std::move(options)) {}

    const char* scheme() const noexcept override { return "wss"; }

    /// Loads the files once (listen() calls this for each port the transport serves).
    void prepare() override {
        std::lock_guard lock(mutex_);
        if (!current_) current_ = load(options_);
    }

    /// Loads the files again; on failure throws and keeps the context it had.
    bool reload() override {
        std::shared_ptr<asio::ssl::context> fresh = load(options_);
        std::lock_guard lock(mutex_);
        current_ = std::move(fresh);
        return true;
    }

    /// The context new connections get.
    std::shared_ptr<asio::ssl::context> current() const {
        std::lock_guard lock(mutex_);
        return current_;
    }

    task<> serve(server& s, asio::ip::tcp::socket socket, asio::io_context& context, bool over_limit) override {
        if (over_limit) {
            // A client expecting TLS cannot read a plain 503, and a TLS handshake just to refuse would
            // spend the most CPU exactly when the server is fullest: the connection is closed.
            std::error_code ignored;
            socket.close(ignored);
            co_return;
        }
        co_await s.serve_stream(tls_stream(std::move(socket), current()), context);
    }

    /// A context made from `options`; throws std::runtime_error naming the file that is missing,
    /// unreadable or unusable, or the key that does not match its certificate.
    static std::shared_ptr<asio::ssl::context> load(const tls_options& options) {
        auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                             asio::ssl::context::single_dh_use);
        SSL_CTX* native = context->native_handle();
        SSL_CTX_set_min_proto_version(native, options.min_version == tls_version::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
        SSL_CTX_set_alpn_select_cb(native, &select_alpn, nullptr);
        // Always a callback: without one, OpenSSL would ask for an encrypted key's password on the
        // terminal. With no password given, an encrypted key fails to load, which is reported.
        context->set_password_callback(
            [password = options.private_key_password](std::size_t, asio::ssl::context::password_purpose) { return password; });

        const std::string& chain = options.certificate_chain_file;
        const std::string& key = options.private_key_file;
        check_readable(chain, "certificate chain", "certificate_chain_file");
        check_readable(key, "private key", "private_key_file");
        std::error_code ec;
        context->use_certificate_chain_file(chain, ec);
        if (ec) throw std::runtime_error("starling: TLS certificate chain file '" + chain + "' is not usable: " + ec.message());
        context->use_private_key_file(key, asio::ssl::context::pem, ec);
        if (ec && !(ec.category() == asio::error::get_ssl_category() &&
                    ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH))
            throw std::runtime_error("starling: TLS private key file '" + key + "' is not usable: " + ec.message());
        if (ec || SSL_CTX_check_private_key(native) != 1)
            throw std::runtime_error("starling: TLS private key file '" + key +
                                     "' does not match the certificate in '" + chain + "'");
        return context;
    }

private:
    static void check_readable(const std::string& file, const char* what, const char* field) {
        if (file.empty()) throw std::runtime_error(std::string("starling: no TLS ") + what + " file given (tls_options::" + field + ")");
        std::FILE* f = std::fopen(file.c_str(), "rb");
        if (!f) {
            const int error = errno;
            throw std::runtime_error(std::string("starling: TLS ") + what + " file '" + file + "' cannot be read: " + std::strerror(error));
        }
        std::fclose(f);
    }

    /// ALPN: http/1.1 when the client offers it (WebSocket upgrades are HTTP/1.1); otherwise the
    /// handshake goes on without ALPN rather than failing a client that offers only something else.
    static int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
                           unsigned int offered_length, void*) {
        static constexpr unsigned char http_1_1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        unsigned char* chosen = nullptr;
        if (SSL_select_next_proto(&chosen, out_length, http_1_1, sizeof http_1_1, offered, offered_length) !=
            OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_NOACK;
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }

    tls_options options_;
    mutable std::mutex mutex_;
    std::shared_ptr<asio::ssl::context> current_;
};

}  // namespace starling::detail
// ---- end starling/runtime/tls_listener.hpp ----

/// Defined once TLS is available, for code that offers it only then (examples/cli.hpp).
#define STARLING_TLS 1

namespace starling {

/// A transport serving wss:// with `options`' certificate and key, for server_options::transport or
/// app.add_listener(). The files are read when the app listens, and again by app.reload_tls(). One
/// transport may serve several ports; they reload together.
inline std::shared_ptr<transport> tls(tls_options options) {
    return std::make_shared<detail::tls_transport>(std::move(options));
}

}  // namespace starling
// ---- end starling/tls.hpp ----
