// Typed query parameters, read from the handler's signature:
//   ws://127.0.0.1:N/ws?room=chat&page=5
// `room` defaults to "default" and `page` to 1; `page=abc` is refused before the upgrade with HTTP 400
// "Invalid value 'abc' for parameter 'page': expected integer".
//   build/examples/query_params --port N
#include "cli.hpp"

using room_param = starling::query<"room", std::string, "default">;
using page_param = starling::query<"page", int, "1">;

int main(int argc, char** argv) {
    starling::app app;
    auto ws = app.websocket("/ws", [](starling::websocket& ws, room_param room, page_param page) -> starling::task<> {
        try {
            for (;;) {
                const std::string msg = co_await ws.receive_text();
                co_await ws.send_text("room=" + *room + " page=" + std::to_string(*page) + " msg=" + msg);
            }
        } catch (const starling::websocket_disconnect&) {
            // The client left; nothing to clean up.
        }
    });
    // Callbacks declare parameters too; the value is resolved once per connection.
    ws.on_connect([](starling::websocket&, room_param room) { return "connected to " + *room; });
    return example::serve(app, argc, argv);
}
