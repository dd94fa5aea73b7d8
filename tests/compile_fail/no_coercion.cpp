// expect: no coercion for this parameter type
#include <starling.hpp>

struct point {
    int x, y;
};

int main() {
    starling::app app;
    app.websocket("/ws", [](starling::websocket&, starling::query<"at", point> at) -> starling::task<> {
        (void)at;
        co_return;
    });
}
