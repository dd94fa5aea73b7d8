// Limits and timeouts, with their defaults. Every limit is configurable per app (server_options,
// websocket_options given to app.start / app.set_websocket_options) and per endpoint
// (endpoint.options(...)).
#pragma once

#include <chrono>   // std::chrono::milliseconds timeouts
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint16_t, std::uint64_t
#include <memory>   // std::shared_ptr of the port's transport
#include <string>   // std::string file names

#include "starling/protocol/message_reader.hpp"
#include "starling/protocol/permessage_deflate.hpp"

namespace starling {

class transport;  // runtime/transport.hpp: what a listening port speaks

/// What happens to a connection whose typed query parameters are missing or invalid.
enum class invalid_query_policy {
    reject,  // answer the upgrade request with HTTP 400 and the message as text/plain body
    close,   // accept, then close at once with 1008 and the message as reason (browsers can read it)
};

/// What a broadcast does for a receiver whose outbound queue is over its high-water mark (a client
/// that reads slower than the server sends).
enum class slow_consumer_policy {
    close,  // close that connection with 1008 "slow consumer"; its unsent backlog is dropped (default)
    drop,   // skip this message for that receiver only; it stays connected and gets later messages
};

/// What a message over a connection's rate limit does.
enum class rate_limit_policy {
    close,  // close the connection with 1008 "rate limit exceeded" (default)
    drop,   // drop that message unseen by the handler, count it, and keep the connection
};

/// A per-connection message rate limit: token buckets of messages and of payload bytes. Off by default
/// (every rate 0): what a fair rate is depends on the application.
struct message_rate_limit {
    /// Messages per second, sustained; 0: the count is not limited.
    double messages_per_second = 0;
    /// Messages that may arrive at once above that rate (the bucket's size); 0: one second's worth.
    double message_burst = 0;
    /// Payload bytes per second, sustained; 0: bytes are not limited.
    double bytes_per_second = 0;
    /// Bytes that may arrive at once above that rate; 0: one second's worth.
    double byte_burst = 0;
    rate_limit_policy policy = rate_limit_policy::close;

    bool enabled() const noexcept { return messages_per_second > 0 || bytes_per_second > 0; }
};

/// Per-connection limits of a WebSocket endpoint.
struct websocket_options {
    /// Largest message accepted, inclusive (1 MiB); a larger one closes with 1009.
    std::uint64_t max_message_size = default_max_message_size;
    /// Largest single frame accepted, inclusive; 0 means the message limit.
    std::uint64_t max_frame_size = 0;
    /// Received messages buffered for a handler that has not asked for them yet; while the inbox is
    /// full the server stops reading from that client (TCP backpressure), nothing grows.
    std::size_t inbox_messages = 64;
    /// The same bound in bytes of memory (1 MiB): the inbox is full when either is reached. One
    /// message always fits, however large (up to max_message_size).
    std::size_t max_inbox_bytes = 1024 * 1024;
    /// Missing or invalid typed query parameters: 400 before the upgrade (default), or 1008 after it.
    invalid_query_policy invalid_query = invalid_query_policy::reject;
    /// How long a closing connection may take, from our close frame (or the peer's) to the end of TCP:
    /// a peer that never answers our close frame is dropped after it.
    std::chrono::milliseconds close_timeout = std::chrono::seconds(5);
    /// High-water mark of the outbound queue, in bytes of memory: each frame's payload plus a fixed
    /// overhead per frame (about a hundred bytes), control frames included. Above it,
    /// `co_await send...` suspends until the writer has drained the queue back to it, and a
    /// broadcast applies `slow_consumer`.
    std::size_t max_queued_bytes = 1024 * 1024;
    /// What a broadcast does for a receiver over max_queued_bytes.
    slow_consumer_policy slow_consumer = slow_consumer_policy::close;
    /// A connection silent this long (no frame, not even a pong) gets a ping; if it stays silent for
    /// another idle_timeout, it is closed with 1001 "idle timeout" (and dropped after close_timeout if
    /// it does not answer that either). 0 turns pings off.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
    /// A client whose socket takes no byte for this long while data waits for it (it stopped reading)
    /// is closed with 1008 "write timeout", its unsent backlog dropped; if even the close frame cannot
    /// be written, the connection is dropped close_timeout later. 0 turns the check off.
    std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
    /// A message must arrive whole within this time of its first bytes; one that does not (a peer
    /// trickling a large frame to hold memory) is closed with 1008 "message timeout". 0 turns the
    /// check off.
    std::chrono::milliseconds message_timeout = std::chrono::seconds(30);
    /// permessage-deflate (RFC 7692): on by default, without context takeover either way, for
    /// messages of 256 bytes and more. See compression_options.
    compression_options compression;
    /// Messages a client may send per second, and bytes (see message_rate_limit): off by default.
    message_rate_limit rate_limit;
};

/// Server-wide settings: app.start(server_options{...}).
struct server_options {
    /// TCP port; 0 picks a free one (read it back with app.port()).
    std::uint16_t port = 8080;
    /// Address to listen on.
    const char* host = "0.0.0.0";
    /// Worker threads, each with its own event loop; 0 means one per hardware thread.
    unsigned workers = 0;
    /// Largest request head (request line and headers) accepted: larger gets 431.
    std::size_t max_header_bytes = 8 * 1024;
    /// Time a client has to send its whole handshake request before it is dropped; on a TLS port, its
    /// TLS handshake counts in the same time.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
    /// Open connections (handshaking or upgraded) at most; connections over it are answered 503.
    std::size_t max_connections = 10000;
    /// Open connections (handshaking or upgraded) from one IP address at most; one more is answered
    /// 429 before the upgrade. 0 (the default) sets no cap: many users can share one address behind
    /// a NAT or a proxy, so a cap is for the deployment to choose.
    std::size_t max_connections_per_ip = 0;
    /// On shutdown, how long to wait for close handshakes before dropping what is left. Connections
    /// still open then are dropped (their TCP closed, on_close run with 1006).
    std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(5);
    /// What `port` speaks: empty for plain ws://; starling::tls(tls_options) from <starling/tls.hpp>
    /// for wss://. More ports, each with its own transport: app.add_listener().
    std::shared_ptr<starling::transport> transport;
};

/// The lowest TLS version a TLS listener accepts.
enum class tls_version { v1_2, v1_3 };

/// A TLS listener's certificate and key (<starling/tls.hpp>): PEM files, read when the app listens and
/// again on app.reload_tls().
struct tls_options {
    /// The server's certificate first, then the intermediates that lead to a trusted root.
    std::string certificate_chain_file;
    /// Its private key; encrypted keys need `private_key_password`.
    std::string private_key_file;
    std::string private_key_password;
    /// TLS 1.2 and later by default; TLS 1.0 and 1.1 are never accepted.
    tls_version min_version = tls_version::v1_2;
};

}  // namespace starling
