// A notification hub: each text sent to /notifications goes to every client as
// "Notification: msg", and the sender then gets "Notification sent!".
//   build/examples/notifications --port 8080 [--workers N]
#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/notifications", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string message = co_await ws.receive_text();
            // Broadcast to all connected clients (the sender too, and before its confirmation).
            co_await ws.broadcast("Notification: " + message);
            // Confirm to sender
            co_await ws.send_text("Notification sent!");
        }
    });

    return example::serve(app, argc, argv);
}
