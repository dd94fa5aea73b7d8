// expect: an authentication hook returns starling::admission<T>
#include <starling.hpp>

int main() {
    starling::app app;
    auto chat = app.websocket("/chat", [](starling::websocket&) -> starling::task<> { co_return; });
    chat.authenticate([](starling::query<"token", std::string> token) { return *token == "secret"; });
}
