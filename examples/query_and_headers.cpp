// Query parameters and headers:
//   /ws?name=gordon&role=commissioner  Gordon's arrival is broadcast ("Gordon authorized!"),
//                      then every message is answered "Hello <name>: msg".
//   /secure_chat?token=T&room=R        a valid token joins room R ("Joined room: R") and each
//                      message is broadcast as "Room R - <id>: msg"; a bad or missing token closes (1008).
//   /api/stream                        a valid X-API-Key header gets a JSON reading every
//                      250 ms ({"seq": n, "time": t}); a bad or missing key closes (1008).
// Tokens and keys are checked against small in-memory sets, standing in for a real auth service.
//   build/examples/query_and_headers --port 8080 [--workers N]
#include <chrono>       // stream interval, timestamps
#include <cstdio>       // std::fprintf for the Python print() call
#include <functional>   // std::less<> for lookups by string_view
#include <optional>     // header and query lookups may find nothing
#include <set>          // the token and key sets
#include <string>
#include <string_view>

#include "cli.hpp"

namespace {

using namespace std::chrono_literals;

// Read-only after start-up, so every worker thread may read them without a lock.
const std::set<std::string, std::less<>> valid_tokens{"batcave-7", "gcpd-1939"};
const std::set<std::string, std::less<>> valid_api_keys{"wayne-enterprises-key"};

bool authenticate_token(std::string_view token) { return valid_tokens.contains(token); }
bool validate_api_key(std::optional<std::string_view> key) { return key && valid_api_keys.contains(*key); }

constexpr auto stream_interval = 250ms;

/// Stands in for a real data source: waits for the next tick with an Asio timer on
/// the connection's own event loop (task<> is asio::awaitable, so any Asio operation can be awaited),
/// then returns a reading.
starling::task<starling::json_object> get_stream_data(starling::websocket& ws, int& seq) {
    asio::steady_timer tick(ws.context(), stream_interval);
    co_await tick.async_wait(asio::use_awaitable);
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    starling::json_object reading{{"seq", ++seq}, {"time", now}};
    co_return reading;
}

}  // namespace

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/ws", [](starling::websocket& ws) -> starling::task<> {
        // Python formats a missing parameter as None; the fallback keeps that output.
        const std::string_view name = ws.query_params().get("name", "None");
        const std::string_view role = ws.query_params().get("role", "None");

        if (name == "gordon" && role == "commissioner") {
            co_await ws.broadcast("Gordon authorized!");  // Gordon himself hears it too
        }

        for (;;) {
            const std::string msg = co_await ws.receive_text();
            co_await ws.send_text("Hello " + std::string(name) + ": " + msg);
        }
    });

    app.websocket("/secure_chat", [](starling::websocket& ws) -> starling::task<> {
        // Access query parameters
        const std::optional<std::string_view> token = ws.query_params().get("token");
        const std::string_view room_id = ws.query_params().get("room", "None");

        if (!token || !authenticate_token(*token)) {
            // Robyn's close() sends 1000; 1008 (policy violation) tells the client why it was refused.
            co_await ws.close(starling::close_code::policy_violation, "invalid token");
            co_return;
        }

        co_await ws.send_text("Joined room: " + std::string(room_id));
        for (;;) {
            const std::string message = co_await ws.receive_text();
            // On purpose, this reaches every /secure_chat client: the room only labels the message.
            // Per-room delivery would keep room -> ids and use send_to().
            co_await ws.broadcast("Room " + std::string(room_id) + " - " + ws.id() + ": " + message);
        }
    });

    app.websocket("/api/stream", [](starling::websocket& ws) -> starling::task<> {
        // Access headers (names are case-insensitive)
        const std::string_view user_agent = ws.headers().get("User-Agent").value_or("unknown");
        const std::optional<std::string_view> api_key = ws.headers().get("X-API-Key");

        if (!validate_api_key(api_key)) {
            co_await ws.close(starling::close_code::policy_violation, "invalid API key");
            co_return;
        }

        std::fprintf(stderr, "Client connected: %.*s\n", static_cast<int>(user_agent.size()), user_agent.data());

        // Stream data; once the client has gone, send_json throws websocket_disconnect, ending the loop.
        int seq = 0;
        for (;;) {
            starling::json_object data = co_await get_stream_data(ws, seq);
            co_await ws.send_json(std::move(data));
        }
    });

    return example::serve(app, argc, argv);
}
