// The program every packaging test builds outside the meson build tree, the way a downstream project
// would: it includes only <starling.hpp>, whichever way Starling was obtained (the single header, a meson
// subproject, an installed copy found with pkg-config or CMake).
//   echo_consumer [--port N]     prints "listening on N" (the real port) once it serves, then serves
//                                until SIGINT or SIGTERM.
// Routes: /echo sends every message back (text as text, binary as binary); /json answers a JSON message
// with {"echo": <the message>, "count": <messages so far on this connection>}, which needs libsimdjson.
// With CONSUMER_SECOND_TU defined (single_header/server.cpp), main also adds the routes that a second
// translation unit defines (single_header/other.cpp).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include <starling.hpp>

#ifdef CONSUMER_SECOND_TU
namespace consumer {
void add_info_route(starling::app& app);  // defined in other.cpp
}
#endif

int main(int argc, char** argv) {
    starling::server_options options;
    options.host = "127.0.0.1";
    options.port = 8080;
    options.workers = 2;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--port" && i + 1 < argc) {
            options.port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
            return 2;
        }
    }

    starling::app app;
    app.websocket("/echo", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.send_text(std::move(m.data));
            else
                co_await ws.send_bytes(std::move(m.data));
        }
    });
    app.websocket("/json", [](starling::websocket& ws) -> starling::task<> {
        for (int count = 1;; ++count) {
            const starling::json_document doc = co_await ws.receive_json();
            // Built before the co_await: g++ 12 miscompiles braced lists inside co_await expressions.
            starling::json_object reply{{"echo", doc}, {"count", count}};
            co_await ws.send_json(std::move(reply));
        }
    });
#ifdef CONSUMER_SECOND_TU
    consumer::add_info_route(app);
#endif

    const std::uint16_t port = app.listen(options);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
