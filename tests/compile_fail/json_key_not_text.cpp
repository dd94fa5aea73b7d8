// expect: every key (the 1st, 3rd, 5th... argument) must be text
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_json("type", "move", 3, "x");  // key and value swapped
    });
}
