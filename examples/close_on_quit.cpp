// Closing from the server side:
//   /ws:          "quit" closes the connection (1000), anything else is answered "Got: msg".
//   /admin_panel: "shutdown" says "Shutting down connection..." and closes (1000);
//                 "kick_user:<id>" tells every admin-panel client "User <id> has been kicked";
//                 any other command is answered "Command executed: <command>".
//   build/examples/close_on_quit --port 8080 [--workers N]
#include <stdexcept>  // std::invalid_argument for a kick_user without an id

#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/ws", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string msg = co_await ws.receive_text();
            if (msg == "quit") {
                co_await ws.close();  // 1000; a pending or later receive would now throw websocket_disconnect
                break;
            }
            co_await ws.send_text("Got: " + msg);
        }
    });

    app.websocket("/admin_panel", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string command = co_await ws.receive_text();
            if (command == "shutdown") {
                co_await ws.send_text("Shutting down connection...");
                co_await ws.close();
                break;
            } else if (command.starts_with("kick_user")) {
                // Python's command.split(":")[1]: the text between the first and the second ':'. With no
                // ':' Python raises IndexError; throwing here likewise ends the connection (1011).
                const auto colon = command.find(':');
                if (colon == std::string::npos) throw std::invalid_argument("usage: kick_user:<id>");
                const std::string user_id = command.substr(colon + 1, command.find(':', colon + 1) - colon - 1);
                co_await ws.broadcast("User " + user_id + " has been kicked");
                // Closing that user's connection would need its own tracking: send_to() can reach a
                // connection by id, but only the connection itself can close().
            } else {
                co_await ws.send_text("Command executed: " + command);
            }
        }
    });

    return example::serve(app, argc, argv);
}
