// Connect and close callbacks: /chat relays every text message to all clients, greets
// each newcomer by id and says "Goodbye!" when the server closes the connection.
//   build/examples/welcome_chat --port 8080 [--workers N]
#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    auto chat = app.websocket("/chat", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string msg = co_await ws.receive_text();
            co_await ws.broadcast(msg);  // everyone on /chat, the sender included
        }
    });

    // Plain functions work as callbacks; their text is the first / last message the client gets.
    chat.on_connect([](starling::websocket& ws) { return "Welcome, " + ws.id() + "!"; });
    chat.on_close([](starling::websocket&) { return "Goodbye!"; });

    return example::serve(app, argc, argv);
}
