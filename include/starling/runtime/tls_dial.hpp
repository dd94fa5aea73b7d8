// Dialling wss://: the TCP connection, then the TLS handshake as a client (SNI, the certificate
// checked against the host name and the trusted authorities, TLS 1.2 at least, ALPN http/1.1), then
// the WebSocket handshake, all under one handshake deadline. Reached only through <starling/tls.hpp>.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/ssl/context.hpp>             // asio::ssl::context of one client connection
#include <openssl/ssl.h>                    // SSL_CTX_set_alpn_protos
#include <chrono>                           // std::chrono::steady_clock deadline
#include <memory>                           // std::make_shared
#include <string>                           // std::string URL
#include <system_error>                     // std::system_error of an unreadable CA file
#include <utility>                          // std::move

#include "starling/api/client_websocket.hpp"
#include "starling/runtime/dial.hpp"
#include "starling/session/tls_stream.hpp"

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
