// The event API over the wire, for tests/integration/test_event_api.py: close-handler counting, slow
// handlers, binary messages, typed parameters and dependencies in event handlers, both APIs in one app.
#include <asio/steady_timer.hpp>
#include <atomic>
#include <span>
#include <string>

#include "../../examples/cli.hpp"

namespace {

struct counters {
    std::atomic<int> close_calls{0};
};

}  // namespace

int main(int argc, char** argv) {
    starling::app app;
    auto seen = std::make_shared<counters>();
    app.inject_global(seen);

    // "close" runs once however the connection ends; "bye" makes the server close.
    starling::WebSocket counted(app, "/counted");
    counted.on("message", [](starling::connector& ws, std::string_view msg) -> std::string {
        if (msg == "bye") ws.close();
        return "ok";
    });
    counted.on("close", [](counters& c) { ++c.close_calls; });

    // A slow coroutine handler: it delays only its own connection, whose messages stay in order.
    starling::WebSocket slow(app, "/slow");
    slow.on("message", [](starling::connector& ws, std::string msg) -> starling::task<std::string> {
        if (msg.starts_with("slow")) {
            asio::steady_timer timer(ws.underlying().context(), std::chrono::milliseconds(300));
            co_await timer.async_wait(asio::use_awaitable);
        }
        co_return "done " + msg;
    });

    // Text handlers refuse binary (1003); a bytes handler takes both.
    starling::WebSocket text_only(app, "/text_only");
    text_only.on("message", [](std::string_view msg) { return std::string("text ") + std::string(msg); });
    starling::WebSocket bytes(app, "/bytes");
    bytes.on("message", [](std::span<const std::byte> data) { return "bytes " + std::to_string(data.size()); });

    // Typed query parameters and dependencies in any order; the connect handler can refuse.
    starling::WebSocket typed(app, "/typed");
    typed.on("connect", [](starling::query<"user", std::string> user, starling::connector&) { return "hi " + *user; });
    typed.on("message", [](counters& c, std::string_view msg, starling::query<"times", int, "1"> times,
                           starling::connector&) -> std::string {
        std::string out;
        for (int i = 0; i < *times; ++i) out += msg;
        return out + " " + std::to_string(c.close_calls.load() >= 0);
    });

    // send_to an unknown id is reported, not a crash.
    starling::WebSocket send_to(app, "/send_to");
    send_to.on("message", [](starling::connector& ws, std::string_view target) -> std::string {
        if (target == "me") target = ws.id();
        return ws.sync_send_to(target, "for " + std::string(target)) ? "delivered" : "unknown id";
    });

    // The coroutine API beside the event API, in one app.
    app.websocket("/coroutine", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_text("coroutine endpoint");
        co_await ws.receive_text();
    });

    app.websocket("/stats", [](starling::websocket& ws, counters& c) -> starling::task<> {
        for (;;) {
            co_await ws.receive_text();
            co_await ws.send_text(std::to_string(c.close_calls.load()));
        }
    });
    return example::serve(app, argc, argv);
}
