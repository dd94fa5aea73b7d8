// A game relay: players send JSON actions to /game and every player (the mover included)
// gets the resulting event as JSON:
//   {"type": "move", "position": P}   -> {"type": "player_moved", "player_id": id, "position": P}
//   {"type": "chat", "message": M}    -> {"type": "chat_message", "player_id": id, "message": M}
// Other action types are ignored. A message that is not JSON closes with 1007; an action without the
// fields it needs is a handler error (Python's KeyError) and closes with 1011.
//   build/examples/game --port 8080 [--workers N]
#include <string_view>  // std::string_view action type

#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/game", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const starling::json_document action = co_await ws.receive_json();
            // simdjson's conversions throw simdjson_error when the field is missing or not a string.
            const std::string_view type = action["type"];
            if (type == "move") {
                // Broadcast player movement to all players; the position is passed through as received.
                const starling::json_object moved{
                    {"type", "player_moved"}, {"player_id", ws.id()}, {"position", action["position"].value()}};
                co_await ws.broadcast(starling::to_json(moved));  // json.dumps(...)
            } else if (type == "chat") {
                // Broadcast chat message
                const starling::json_object chat{
                    {"type", "chat_message"}, {"player_id", ws.id()}, {"message", action["message"].value()}};
                co_await ws.broadcast(starling::to_json(chat));
            }
        }
    });

    return example::serve(app, argc, argv);
}
