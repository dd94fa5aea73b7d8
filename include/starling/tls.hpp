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
#pragma once

#include <memory>   // std::shared_ptr of the transport
#include <utility>  // std::move

#include "starling/app.hpp"
#include "starling/options.hpp"
#include "starling/client.hpp"
#include "starling/runtime/tls_dial.hpp"  // connect() dials wss:// too
#include "starling/runtime/tls_listener.hpp"
#include "starling/runtime/transport.hpp"

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
