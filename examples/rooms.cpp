// Chat rooms on topics: /ws?room=NAME&user=NICK joins room NAME ("lobby" when absent) as NICK. `user`
// is a typed query parameter without a default: a request without it is refused with HTTP 400
// "Missing required parameter: 'user'" before the upgrade.
//   build/examples/rooms --port 8080 [--workers N] [--redis HOST:PORT]
//
// With --redis, several of these processes on one Redis are one deployment: a room's members may be
// connected to any of them (README, "Topics across processes").
//
// What a client sends: {"text": TEXT}. What members of the room get, as JSON objects:
//   {"type": "welcome", "room": R, "user": U, "members": N}  to the newcomer alone, once it is in the room
//   {"type": "join",    "room": R, "user": U, "members": N}  to the others when someone joins
//   {"type": "message", "room": R, "user": U, "text": T}     to the whole room, the sender included
//   {"type": "leave",   "room": R, "user": U, "members": N}  to the others when someone leaves
//   {"type": "error",   "error": E}                           to a sender whose JSON has no string "text"
// A message that is not JSON closes the connection with 1007. N counts this process's members.
// GET /rooms answers {"lobby": 2, ...}: each room with members in this process and how many.
#include <charconv>     // std::from_chars the Redis port
#include <cstring>      // std::strcmp
#include <map>          // std::map rooms for /rooms
#include <memory>       // std::make_shared backplane
#include <optional>     // std::optional text
#include <string>       // std::string names
#include <string_view>  // std::string_view topic names
#include <vector>       // std::vector arguments

#include "cli.hpp"
#include <starling/redis.hpp>  // opt-in: the Redis backplane

namespace {

using room_param = starling::query<"room", std::string, "lobby">;
using user_param = starling::query<"user", std::string>;  // no default: required

constexpr std::string_view room_prefix = "room:";

std::string topic_of(const std::string& room) { return std::string(room_prefix) + room; }

}  // namespace

int main(int argc, char** argv) {
    // --redis HOST:PORT is this example's own; the rest is the shared command line (cli.hpp).
    std::vector<char*> args;
    std::optional<starling::redis_options> redis;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            const std::string_view where = argv[++i];
            const auto colon = where.rfind(':');
            starling::redis_options o;
            o.host = std::string(where.substr(0, colon));
            if (colon != std::string_view::npos) {
                unsigned port = 0;
                std::from_chars(where.data() + colon + 1, where.data() + where.size(), port);
                o.port = static_cast<std::uint16_t>(port);
            }
            redis = o;
        } else {
            args.push_back(argv[i]);
        }
    }

    starling::app app;
    if (redis) app.use_backplane(std::make_shared<starling::redis_backplane>(*redis), "rooms:");

    auto rooms = app.websocket("/ws", [&app](starling::websocket& ws, room_param room, user_param user) -> starling::task<> {
        const std::string topic = topic_of(*room);
        ws.subscribe(topic);
        co_await ws.send_json("type", "welcome", "room", *room, "user", *user, "members", app.topic_size(topic));
        co_await ws.publish(topic,
                            starling::to_json_object("type", "join", "room", *room, "user", *user, "members",
                                                     app.topic_size(topic)),
                            starling::recipients::others);
        for (;;) {
            const starling::json_document message = co_await ws.receive_json();
            const std::optional<std::string> text = message.get<std::string>("text");
            if (!text) {
                co_await ws.send_json("type", "error", "error", "expected {\"text\": string}");
                continue;
            }
            co_await ws.publish(topic, starling::to_json_object("type", "message", "room", *room, "user", *user, "text", *text));
        }
    });
    // The connection is still in its room here (it leaves every topic when it ends, after on_close),
    // so "others" leaves it out and the count still includes it.
    rooms.on_close([&app](starling::websocket& ws, room_param room, user_param user) -> starling::task<> {
        const std::string topic = topic_of(*room);
        if (!ws.subscribed(topic)) co_return;  // closed before it joined
        co_await ws.publish(topic,
                            starling::to_json_object("type", "leave", "room", *room, "user", *user, "members",
                                                     app.topic_size(topic) - 1),
                            starling::recipients::others);
    });

    app.get("/rooms", [&app](const starling::http::request&) {
        std::map<std::string, std::size_t> sizes;
        for (const auto& t : app.topics())
            if (t.name.starts_with(room_prefix)) sizes[t.name.substr(room_prefix.size())] = t.size;
        return starling::http::response{200, "application/json", starling::to_json(sizes)};
    });

    return example::serve(app, static_cast<int>(args.size()), args.data());
}
