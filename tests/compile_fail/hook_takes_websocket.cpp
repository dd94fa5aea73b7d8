// expect: unsupported parameter type in an authentication hook
// expect: unsupported_hook_parameter<1
#include <starling.hpp>

int main() {
    starling::app app;
    auto chat = app.websocket("/chat", [](starling::websocket&) -> starling::task<> { co_return; });
    // Before the upgrade there is no connection yet: the hook sees the request.
    chat.authenticate([](starling::websocket&) -> starling::admission<> { return {}; });
}
