// Chat room: every message sent to /chat goes to every connected client, the sender included,
// unchanged and with its type.
//   build/examples/chat --port 8080 [--workers N]
#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;
    app.websocket("/chat", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.broadcast(m.data);
            else
                co_await ws.broadcast_bytes(m.data);
        }
    });
    return example::serve(app, argc, argv);
}
