// expect: keys and values come in pairs
// expect: this call has an odd number of arguments
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_json("type", "move", "x");  // "x" has no value
    });
}
