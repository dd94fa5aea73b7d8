// expect: the parameter name must be non-empty
#include <starling.hpp>

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket&, starling::query<"", int> page) -> starling::task<> {
        (void)page;
        co_return;
    });
}
