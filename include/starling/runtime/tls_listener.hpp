// TLS as a listening port's transport (runtime/transport.hpp): wss://, and https for the pages.
// Included only through <starling/tls.hpp>, so that nothing else needs OpenSSL.
//
// The certificate, key and versions live in one asio::ssl::context. Each connection takes the context
// current when it is accepted and keeps it for its life (session/tls_stream.hpp holds it), so that
// reload() only swaps which context the next connections get: open connections are untouched, and a
// reload that fails changes nothing.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
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

#include "starling/options.hpp"
#include "starling/runtime/server.hpp"
#include "starling/runtime/transport.hpp"
#include "starling/session/tls_stream.hpp"
#include "starling/task.hpp"

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
