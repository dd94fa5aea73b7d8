// Echo server: /echo sends every message back, text as text and binary as binary.
//   build/examples/echo --port 8080 [--workers N] [--tls-cert FILE --tls-key FILE]
// With a certificate and key it serves wss:// on that port, and reloads both files on SIGHUP.
#include <starling.hpp>
#include <starling/tls.hpp>  // --tls-cert / --tls-key (examples/cli.hpp)

#include "cli.hpp"

int main(int argc, char** argv) {
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
    return example::serve(app, argc, argv);
}
