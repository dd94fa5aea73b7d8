// expect: array used as initializer
// The g++ 12 trap that send_json(key, value, ...) and json_object_builder avoid (README,
// "Troubleshooting"): a braced list inside a co_await expression. Checked with g++ 12 only; a compiler
// that accepts it needs no workaround.
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_json(starling::json_object{{"id", ws.id()}, {"n", 1}});
    });
}
