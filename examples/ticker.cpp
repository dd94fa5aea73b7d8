// Ticker: /ticker sends "tick 1", "tick 2", ... every 100 ms and answers "ping" with "pong", both on
// one connection. A client that sends nothing for a minute is closed with 1000, ending its ticks.
//   build/examples/ticker --port 8080 [--workers N]
#include <chrono>    // the tick interval and the silence limit
#include <cstdint>   // std::uint64_t tick numbers
#include <optional>  // receive_text_for's result
#include <string>

#include "cli.hpp"

#include <asio/steady_timer.hpp>   // the ticker's timer
#include <asio/use_awaitable.hpp>  // co_await on its wait

namespace {

using namespace std::chrono_literals;

constexpr auto tick_interval = 100ms;
constexpr auto silence_limit = 60s;

}  // namespace

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/ticker", [](starling::websocket& ws) -> starling::task<> {
        // The two sides are locals of the handler: run_concurrently returns only once both have
        // finished, so their references to ws stay valid.
        auto replies = [&ws]() -> starling::task<> {
            for (;;) {
                const std::optional<std::string> text = co_await ws.receive_text_for(silence_limit);
                if (!text) co_return;  // silent too long: returning stops the ticks as well
                if (*text == "ping") co_await ws.send_text("pong");
            }
        };
        auto ticks = [&ws]() -> starling::task<> {
            asio::steady_timer timer(ws.context());
            auto next = std::chrono::steady_clock::now();
            for (std::uint64_t n = 1;; ++n) {
                co_await ws.send_text("tick " + std::to_string(n));
                next += tick_interval;  // on a fixed schedule, so slow turns do not add up to drift
                timer.expires_at(next);
                co_await timer.async_wait(asio::use_awaitable);
            }
        };
        // Either side ending ends both; a dropped client ends the pending receive at once, and with
        // it the ticks. A disconnect comes out as websocket_disconnect, the normal end of a handler.
        co_await starling::run_concurrently(ws, replies(), ticks());
    });

    return example::serve(app, argc, argv);
}
