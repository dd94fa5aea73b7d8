// An echo server with a short handshake timeout, for tests/integration/test_accept_limits.py: a client
// that never finishes its opening handshake is dropped in a few hundred milliseconds, so a test can
// watch it happen without waiting out the default 10 s. Its other endpoints are for
// tests/integration/test_handshake_step.py.
//
//   handshake_server --port N [--workers N] [--tls-cert FILE --tls-key FILE]
//
// server_options::handshake_timeout 300 ms, everything else default. Endpoints:
//   /echo                  echoes text as text and binary as binary
//   /bytes-limited         echo under a byte rate limit: 20000 bytes per second, a burst of 5000,
//                          then 1008 "rate limit exceeded"
//   /bytes-limited-drop    the same limit, messages over it dropped (and counted) instead
//   /closing/{id}          typed path<"id", int>, header<"X-Count", int> and cookie<"n", int> under
//                          invalid_query = close: a bad one is accepted, then closed with 1008 and
//                          the parameter's message; with all three good it sends "id I count C n N"
//   /metrics               app.metrics() for Prometheus
#include <starling.hpp>  // first: Starling configures Asio's coroutine support for clang
#include <starling/tls.hpp>  // --tls-cert / --tls-key: the same limits over wss:// (test_tls.py)

#include "../../examples/cli.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

int main(int argc, char** argv) {
    starling::server_options options = example::parse_command_line(argc, argv);
    options.handshake_timeout = std::chrono::milliseconds(300);

    starling::app app;
    auto echo = [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.send_text(std::move(m.data));
            else
                co_await ws.send_bytes(std::move(m.data));
        }
    };
    app.websocket("/echo", echo);

    starling::websocket_options bytes_limited;
    bytes_limited.rate_limit.bytes_per_second = 20000;
    bytes_limited.rate_limit.byte_burst = 5000;
    app.websocket("/bytes-limited", echo).options(bytes_limited);
    bytes_limited.rate_limit.policy = starling::rate_limit_policy::drop;
    app.websocket("/bytes-limited-drop", echo).options(bytes_limited);

    starling::websocket_options closing;
    closing.invalid_query = starling::invalid_query_policy::close;
    app.websocket("/closing/{id}", [](starling::websocket& ws, starling::path<"id", int> id,
                                      starling::header<"X-Count", int> count,
                                      starling::cookie<"n", int> n) -> starling::task<> {
           co_await ws.send_text("id " + std::to_string(*id) + " count " + std::to_string(*count) + " n " +
                                 std::to_string(*n));
           for (;;) co_await ws.receive();
       }).options(closing);

    app.get("/metrics", starling::metrics_page());

    const std::uint16_t port = example::listen(app, options);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
