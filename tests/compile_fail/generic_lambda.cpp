// expect: with concrete parameter types (no 'auto' parameters)
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](auto& ws) -> starling::task<> { (void)ws; co_return; });
}
