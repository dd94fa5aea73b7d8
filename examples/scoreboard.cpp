// A scoreboard on /scores?player=NAME: JSON in and out, coroutine on_connect and on_close, and what a
// handler learns when its client leaves.
//   no ?player=    closed at once with 1008 "player missing"; nothing else happens
//   connecting     "welcome, NAME" to the newcomer; "NAME joined" to everyone else
//   {"points": N}  {"player": NAME, "points": N, "total": T} to everyone, then "NAME wins" (once T
//                  reaches 100) or "keep going" to the sender
//   other JSON     "points must be an integer"; not JSON: closed with 1007
//   leaving        "NAME left" to everyone else; stderr gets "NAME left: CODE REASON"
//   build/examples/scoreboard --port 8080 [--workers N]
#include <cstdint>  // std::int64_t points
#include <cstdio>   // std::fprintf for the departure line
#include <optional> // std::optional points
#include <string>   // std::string names and replies

#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    auto scores = app.websocket("/scores", [](starling::websocket& ws) -> starling::task<> {
        const std::string player(ws.query_params().get("player", ""));
        std::int64_t total = 0;
        try {
            for (;;) {
                const starling::json_document move = co_await ws.receive_json();
                const std::optional<std::int64_t> points = move.get<std::int64_t>("points");
                if (!points) {  // missing, or not an integer
                    co_await ws.send_text("points must be an integer");
                    continue;
                }
                total += *points;
                // Keys and values as plain arguments, no braced list: fine inside co_await with g++ 12.
                co_await ws.broadcast(starling::to_json_object("player", player, "points", *points, "total", total));
                // Named before the co_await: see README, "Troubleshooting".
                const std::string verdict = total >= 100 ? player + " wins" : std::string("keep going");
                co_await ws.send_text(verdict);
            }
        } catch (const starling::websocket_disconnect& e) {
            // The client's close code and reason; 1006 and no reason when the connection dropped.
            std::fprintf(stderr, "%s left: %u %s\n", player.c_str(), static_cast<unsigned>(e.code()),
                         e.reason().c_str());
        }
    });

    scores.on_connect([](starling::websocket& ws) -> starling::task<std::string> {
        const std::string player(ws.query_params().get("player", ""));
        if (player.empty()) {
            // The handler will not run and this connection never receives broadcasts; on_close still
            // runs, and the text returned below is not sent.
            co_await ws.close(starling::close_code::policy_violation, "player missing");
            co_return "";
        }
        co_await ws.broadcast(player + " joined", starling::recipients::others);
        co_return "welcome, " + player;
    });

    scores.on_close([](starling::websocket& ws) -> starling::task<> {
        const std::string player(ws.query_params().get("player", ""));
        if (!player.empty()) co_await ws.broadcast(player + " left", starling::recipients::others);
    });

    return example::serve(app, argc, argv);
}
