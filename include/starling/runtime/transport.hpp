// What a listening port speaks: how the server turns a socket accepted on that port into a stream the
// engine runs on. Plain TCP (ws://) is built in (runtime/server.hpp); TLS (wss://) comes from
// <starling/tls.hpp>, so that a program without it needs no OpenSSL headers or libraries. Every port
// of an app serves the same endpoints with the same registry, limits and shutdown: only this differs.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/io_context.hpp>              // asio::io_context the connection lives on
#include <asio/ip/tcp.hpp>                  // asio::ip::tcp::socket, as accepted
#include <string>                           // std::string descriptions

#include "starling/task.hpp"

namespace starling {

namespace detail {
class server;
}

class transport {
public:
    transport() = default;
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;
    virtual ~transport() = default;

    /// "ws" or "wss", for log lines and URLs.
    virtual const char* scheme() const noexcept = 0;

    /// Called by listen() before anything is bound: loads what the transport needs (certificates), and
    /// throws an exception that says what is wrong, naming the file, so that a bad set-up stops the
    /// program at start instead of failing every connection later.
    virtual void prepare() {}

    /// Loads its configuration again (certificate and key files, for TLS): connections accepted from
    /// now on use it, open ones keep what they began with. Throws, keeping the configuration it had,
    /// when the new one cannot be loaded. False for a transport with nothing to reload.
    virtual bool reload() { return false; }

    /// True when an answer written straight onto the accepted socket reaches the client as HTTP: what
    /// the server does with connections it must refuse (over max_connections, out of descriptors).
    virtual bool speaks_plain_http() const noexcept { return false; }

    /// Serves one accepted connection to its end on `context` (its worker's loop), through
    /// server::serve_stream(). `over_limit`: the server holds max_connections already; refuse it.
    virtual task<> serve(detail::server& server, asio::ip::tcp::socket socket, asio::io_context& context,
                         bool over_limit) = 0;
};

}  // namespace starling
