// Chat room: every message sent to /chat goes to every connected client, the sender included,
// unchanged and with its type. GET / serves a browser client for it (examples/chat_page.hpp): open
// http://127.0.0.1:8080/?user=Ann and http://127.0.0.1:8080/?user=Bob in two tabs and talk.
//   build/examples/chat --port 8080 [--workers N] [--tls-cert FILE --tls-key FILE]
// With a certificate and key, the page is served over https and /chat over wss:// on that port (the
// page picks wss:// itself when it was loaded over https); SIGHUP reloads both files.
// GET /metrics serves the server's counters in the Prometheus text format.
//
// Who sent a message is the page's business, not the server's: the page sends
// {"user": NAME, "text": TEXT, "client": ID}, which goes through here unchanged like any message. Wrapping or prefixing
// on the server (say from a ?user= on the WebSocket URL) would change what every client receives, and
// plain-text clients and the tools built on /chat rely on getting messages exactly as they were sent.
#include <starling.hpp>
#include <starling/tls.hpp>  // --tls-cert / --tls-key (examples/cli.hpp)

#include "chat_page.hpp"
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
    app.get("/", starling::http::response{200, "text/html; charset=utf-8", std::string(example::chat_page)});
    // What the server has counted (connections, messages, queues, pings), for Prometheus to scrape.
    app.get("/metrics", starling::metrics_page());
    return example::serve(app, argc, argv);
}
