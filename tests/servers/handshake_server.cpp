// An echo server with a short handshake timeout, for tests/integration/test_accept_limits.py: a client
// that never finishes its opening handshake is dropped in a few hundred milliseconds, so a test can
// watch it happen without waiting out the default 10 s.
//
//   handshake_server --port N [--workers N] [--tls-cert FILE --tls-key FILE]
//
// server_options::handshake_timeout 300 ms, everything else default. /echo echoes text as text and
// binary as binary.
#include <starling.hpp>  // first: Starling configures Asio's coroutine support for clang
#include <starling/tls.hpp>  // --tls-cert / --tls-key: the same limits over wss:// (test_tls.py)

#include "../../examples/cli.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <utility>

int main(int argc, char** argv) {
    starling::server_options options = example::parse_command_line(argc, argv);
    options.handshake_timeout = std::chrono::milliseconds(300);

    starling::app app;
    app.websocket("/echo", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.send_text(std::move(m.data));
            else
                co_await ws.send_bytes(std::move(m.data));
        }
    });

    const std::uint16_t port = example::listen(app, options);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
