// A JSON API: /api/ws answers each JSON message with {"id", "echo", "timestamp"}, the echo
// being the received value itself and the timestamp seconds since the Unix epoch (Python's time.time()).
// A message that is not JSON ends the connection with 1007 (invalid payload).
//   build/examples/json_api --port 8080 [--workers N]
#include <chrono>  // std::chrono::system_clock for the timestamp

#include "cli.hpp"

namespace {

/// Python's time.time(): seconds since the epoch, with a fractional part.
double unix_time() {
    using seconds = std::chrono::duration<double>;
    return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/api/ws", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const starling::json_document data = co_await ws.receive_json();
            // Built before the co_await: GCC 12 miscompiles braced lists inside co_await expressions.
            starling::json_object response{{"id", ws.id()}, {"echo", data}, {"timestamp", unix_time()}};
            co_await ws.send_json(std::move(response));
        }
    });

    return example::serve(app, argc, argv);
}
