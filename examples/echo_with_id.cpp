// The first example of Robyn's WebSockets guide: /web_socket echoes each text message prefixed with the connection's id,
// greets in two steps and says goodbye when the server ends the connection.
//   build/examples/echo_with_id --port 8080 [--workers N]
#include <cstdio>     // std::fprintf for the Python print() calls
#include <exception>  // std::exception

#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    // Connections are accepted before the handler runs: there is no accept() to call.
    auto endpoint = app.websocket("/web_socket", [](starling::websocket& ws) -> starling::task<> {
        try {
            for (;;) {
                const std::string message = co_await ws.receive_text();
                const std::string& websocket_id = ws.id();
                co_await ws.send_text("Echo from " + websocket_id + ": " + message);
            }
        } catch (const std::exception& e) {
            // Python's `except Exception`: a disconnect lands here too, so a client leaving is logged.
            std::fprintf(stderr, "WebSocket %s error: %s\n", ws.id().c_str(), e.what());
        }
    });

    // on_connect may send by itself and also return text: "Connected!" goes out first, then the
    // returned "Connection established".
    endpoint.on_connect([](starling::websocket& ws) -> starling::task<std::string> {
        co_await ws.send_text("Connected!");
        co_return "Connection established";
    });

    // The returned text is the last message, sent when the server closes (a client that closes first
    // does not get it: its side of the conversation is already over).
    endpoint.on_close([](starling::websocket& ws) {
        std::fprintf(stderr, "WebSocket %s disconnected\n", ws.id().c_str());
        return "Disconnected";
    });

    return example::serve(app, argc, argv);
}
