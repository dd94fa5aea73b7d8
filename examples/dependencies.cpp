// Dependency injection, as in Robyn's WebSockets guide: a global dependency and a router dependency, read by name in the
// handler and in on_connect.
//   build/examples/dependencies --port N
// /web_socket_di sends "connect: GLOBAL DEPENDENCY ROUTER DEPENDENCY" on connect and answers every
// message with "handler: GLOBAL DEPENDENCY ROUTER DEPENDENCY".
#include "cli.hpp"

namespace {

std::string both(starling::global_dependencies& global, starling::router_dependencies& router) {
    return global.get<std::string>("GLOBAL_DEPENDENCY") + " " + router.get<std::string>("ROUTER_DEPENDENCY");
}

}  // namespace

int main(int argc, char** argv) {
    starling::app app;
    app.inject_global("GLOBAL_DEPENDENCY", std::string("GLOBAL DEPENDENCY"));
    app.inject("ROUTER_DEPENDENCY", std::string("ROUTER DEPENDENCY"));

    app.websocket("/web_socket_di",
                  [](starling::websocket& ws, starling::global_dependencies& global,
                     starling::router_dependencies& router) -> starling::task<> {
                      for (;;) {
                          co_await ws.receive_text();
                          co_await ws.send_text("handler: " + both(global, router));
                      }
                  })
        .on_connect([](starling::websocket&, starling::global_dependencies& global,
                       starling::router_dependencies& router) { return "connect: " + both(global, router); });
    return example::serve(app, argc, argv);
}
