// Routers: endpoints grouped under a prefix, nested routers joining prefixes, each router with its
// own dependencies.
//   build/examples/subrouter --port N
// /sub_router/ws         greets "hello from sub_router" and answers "sub_router got: <msg>"
// /sub_router/nested/ws  greets "hello from nested"     and answers "nested got: <msg>"
#include "cli.hpp"

namespace {

// What each router injects: its name, found by type in the handlers below.
struct router_name {
    std::string value;
};

starling::task<> reply_with_router_name(starling::websocket& ws, router_name& name) {
    for (;;) {
        const std::string msg = co_await ws.receive_text();
        co_await ws.send_text(name.value + " got: " + msg);
    }
}

std::string greet(starling::websocket&, router_name& name) { return "hello from " + name.value; }

}  // namespace

int main(int argc, char** argv) {
    starling::router nested("/nested");
    nested.inject(router_name{"nested"});
    nested.websocket("/ws", reply_with_router_name).on_connect(greet);

    starling::router sub("/sub_router");
    sub.inject(router_name{"sub_router"});
    sub.websocket("/ws", reply_with_router_name).on_connect(greet);
    sub.include_router(nested);

    starling::app app;
    app.include_router(sub);
    return example::serve(app, argc, argv);
}
