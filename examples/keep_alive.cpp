// Error handling and timeouts (the patterns of Robyn's WebSockets guide):
//   /monitored_service: "Processed: msg" for each message; after 30 s of silence, "Keep-alive ping".
//   /robust_chat:       "Echo: msg" for each message.
// Both log how the connection ended, and on an unexpected error tell the client (where they still can)
// and close with 1011.
//   build/examples/keep_alive --port 8080 [--workers N]
#include <chrono>     // the keep-alive interval
#include <cstdio>     // std::fprintf standing in for a logger
#include <exception>  // std::exception
#include <optional>   // receive_text_for's result
#include <string>

#include "cli.hpp"

namespace {

using namespace std::chrono_literals;

constexpr auto keep_alive_interval = 30s;

}  // namespace

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/monitored_service", [](starling::websocket& ws) -> starling::task<> {
        bool failed = false;
        try {
            for (;;) {
                // Python's asyncio.wait_for(receive_text(), timeout=30.0): nothing when the time passes.
                const std::optional<std::string> message = co_await ws.receive_text_for(keep_alive_interval);
                if (message)
                    co_await ws.send_text("Processed: " + *message);
                else
                    co_await ws.send_text("Keep-alive ping");
            }
        } catch (const starling::websocket_disconnect&) {
            std::fprintf(stderr, "Client %s disconnected\n", ws.id().c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "Error in %s: %s\n", ws.id().c_str(), e.what());
            failed = true;
        }
        // C++ does not allow co_await inside a catch block, so the error reply comes after it.
        if (failed) {
            try {
                co_await ws.send_text("Service error occurred");
                co_await ws.close(starling::close_code::internal_error);
            } catch (const starling::websocket_disconnect&) {
                // Connection might already be closed
            }
        }
    });

    app.websocket("/robust_chat", [](starling::websocket& ws) -> starling::task<> {
        bool failed = false;
        try {
            for (;;) {
                const std::string message = co_await ws.receive_text();
                co_await ws.send_text("Echo: " + message);
            }
        } catch (const starling::websocket_disconnect&) {
            std::fprintf(stderr, "Client %s disconnected gracefully\n", ws.id().c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "Unexpected error for %s: %s\n", ws.id().c_str(), e.what());
            failed = true;
        }
        // Returning would close with 1000; an error deserves 1011. (close() after a disconnect is a no-op.)
        if (failed) co_await ws.close(starling::close_code::internal_error);
    });

    return example::serve(app, argc, argv);
}
