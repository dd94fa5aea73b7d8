// expect: unsupported parameter type in an event handler
// expect: unsupported_event_parameter<2, int>
#include <starling.hpp>

int main() {
    starling::app app;
    starling::WebSocket websocket(app, "/ws");
    // The second parameter is neither the message nor anything injected.
    websocket.on("message", [](std::string_view msg, int count) -> std::string {
        (void)count;
        return std::string(msg);
    });
}
