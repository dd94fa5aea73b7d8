// One app on two ports, TLS and plain, for tests/integration/test_tls.py: the same endpoints, one
// registry, one set of limits and one shutdown behind both.
//
//   tls_server --port N --tls-cert FILE --tls-key FILE [--workers N] [--plain-port N]
//
// wss:// on --port (examples/cli.hpp), ws:// on --plain-port (0, a free one, by default); prints
// `listening on TLS_PORT plain PLAIN_PORT`. server_options::handshake_timeout 300 ms (TLS handshake and
// HTTP upgrade together), everything else default. SIGHUP reloads the certificate and key.
//
// Endpoints:
//   /echo       text as text, binary as binary
//   /typed      typed query parameter n (an int, required) and a global dependency: each text message
//               is answered "<greeting> n=<n>: <message>"
//   /broadcast  every message goes to every client of /broadcast, on either port, the sender included
//   /reload     any text message calls app.reload_tls(); answered "reloaded" or "failed: <why>"
#include <starling.hpp>
#include <starling/tls.hpp>

#include "../../examples/cli.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct greeting {
    std::string text;
};

}  // namespace

int main(int argc, char** argv) {
    unsigned plain_port = 0;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--plain-port" && i + 1 < argc) {
            plain_port = static_cast<unsigned>(std::stoul(argv[++i]));
        } else {
            rest.push_back(argv[i]);
        }
    }
    starling::server_options options = example::parse_command_line(static_cast<int>(rest.size()), rest.data());
    if (!options.transport) {
        std::fprintf(stderr, "tls_server needs --tls-cert and --tls-key\n");
        return 2;
    }
    options.handshake_timeout = std::chrono::milliseconds(300);

    starling::app app;
    app.inject_global(greeting{"hello"});

    app.websocket("/echo", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.send_text(std::move(m.data));
            else
                co_await ws.send_bytes(std::move(m.data));
        }
    });

    app.websocket("/typed", [](starling::websocket& ws, starling::query<"n", int> n, greeting& g) -> starling::task<> {
        for (;;) {
            const std::string text = co_await ws.receive_text();
            co_await ws.send_text(g.text + " n=" + std::to_string(*n) + ": " + text);
        }
    });

    app.websocket("/broadcast", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.broadcast(m.data);
            else
                co_await ws.broadcast_bytes(m.data);
        }
    });

    app.websocket("/reload", [&app](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            co_await ws.receive_text();
            std::string answer = "reloaded";
            try {
                app.reload_tls();
            } catch (const std::exception& e) {
                answer = std::string("failed: ") + e.what();
            }
            co_await ws.send_text(std::move(answer));
        }
    });

    app.on_signal(SIGHUP, [&app] {
        try {
            app.reload_tls();
        } catch (const std::exception&) {
            // Logged by reload_tls(); the previous certificate stays.
        }
    });
    app.add_listener(static_cast<std::uint16_t>(plain_port));
    example::listen(app, options);
    const std::vector<std::uint16_t> ports = app.ports();
    std::printf("listening on %u plain %u\n", static_cast<unsigned>(ports[0]), static_cast<unsigned>(ports[1]));
    std::fflush(stdout);
    app.run();
    return 0;
}
