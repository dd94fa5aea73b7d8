// expect: unsupported parameter type in a websocket handler or callback
// expect: unsupported_handler_parameter<3, settings>
#include <starling.hpp>

struct settings {
    int limit = 0;
};

int main() {
    starling::app app;
    // The third parameter is a dependency taken by value: it must be `settings&` (or shared_ptr).
    app.websocket("/ws", [](starling::websocket&, starling::global_dependencies&, settings config) -> starling::task<> {
        (void)config;
        co_return;
    });
}
