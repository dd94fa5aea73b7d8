// Broadcasting, two ways:
//   /chat:  "User <id>: msg" to everyone, then "Your message was sent" to the sender only.
//   /chat2: "You said: msg" to the sender, then "User <id>: msg" to everyone.
//   build/examples/broadcast_chat --port 8080 [--workers N]
#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/chat", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string msg = co_await ws.receive_text();
            // Send to all connected clients of /chat, this one included.
            co_await ws.broadcast("User " + ws.id() + ": " + msg);
            // Also send a confirmation to this client only. The sender's copy of the broadcast was
            // queued first, so it arrives before the confirmation.
            co_await ws.send_text("Your message was sent");
        }
    });

    app.websocket("/chat2", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string message = co_await ws.receive_text();
            const std::string& websocket_id = ws.id();
            // Send to this client
            co_await ws.send_text("You said: " + message);
            // Broadcast to all clients
            co_await ws.broadcast("User " + websocket_id + ": " + message);
        }
    });

    return example::serve(app, argc, argv);
}
