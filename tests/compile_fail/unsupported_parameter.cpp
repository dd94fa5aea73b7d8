// expect: unsupported parameter type in a websocket handler or callback
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket&, int page) -> starling::task<> { (void)page; co_return; });
}
