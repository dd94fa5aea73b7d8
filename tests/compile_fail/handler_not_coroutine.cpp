// expect: a websocket handler must be a coroutine returning starling::task<>
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket&) { return 42; });
}
