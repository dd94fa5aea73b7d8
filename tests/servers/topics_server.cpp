// Topics and the backplane over the wire, driven by tests/integration/test_topics.py and
// test_backplane.py.
//
//   topics_server --port N [--workers N] [--redis PORT] [--prefix P]
//
// With --redis, the app uses a Redis backplane at 127.0.0.1:PORT (channels under P, "starling:" by
// default): two of these on one Redis are two nodes of one deployment.
//
// Endpoints (text commands; a connection first subscribes to every ?topic= given, then gets
// "ready ID"):
//   /t       sub X | unsub X          -> "subscribed X true|false" / "unsubscribed X true|false"
//            pub X TEXT | pubo X TEXT -> publish to X (pubo: recipients::others); no answer
//            pubb X TEXT              -> publish_bytes
//            burst X N SIZE           -> N binary publishes of SIZE bytes to X, each starting with its
//                                        index as 8 bytes big-endian, without yielding in between
//            bcast TEXT               -> broadcast to /t (everyone); no answer
//            to ID TEXT               -> send_to on /t; answers "sent true|false"
//            topics                   -> a JSON list of this connection's topics, sorted
//            close                    -> the server closes with 1000
//   /small   the same handler; max_queued_bytes 64 KiB, slow_consumer close, close_timeout 30 s
//   /greet   on_connect subscribes to ?topic= and publishes "hello TOPIC" to it (this client
//            included) and greets "welcome"; with ?close=1 it closes with 1008 instead. Then as /t.
//   /stats   any text message is answered with {"topics": {NAME: SIZE, ...}, "backplane":
//            {"connected": bool, "published": n, "received": n, "dropped": n, "reconnects": n}}
//            and ?publish=TOPIC&text=T on the /stats URL makes app.publish(TOPIC, T) at connect
#include <algorithm>    // std::sort
#include <charconv>     // std::from_chars
#include <cstdint>      // std::uint64_t indexes
#include <cstdio>       // std::printf the port
#include <cstdlib>      // std::exit
#include <map>          // std::map stats
#include <memory>       // std::make_shared
#include <string>       // std::string commands
#include <string_view>  // std::string_view words
#include <vector>       // std::vector argv

#include <starling.hpp>
#include <starling/redis.hpp>

namespace {

/// The first word of `line` and the rest after one space.
std::pair<std::string_view, std::string_view> split(std::string_view line) {
    const auto space = line.find(' ');
    if (space == std::string_view::npos) return {line, {}};
    return {line.substr(0, space), line.substr(space + 1)};
}

unsigned number(std::string_view text) {
    unsigned value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

starling::task<> commands(starling::websocket& ws) {
    for (const auto topic : ws.query_params().get_all("topic")) ws.subscribe(topic);
    co_await ws.send_text("ready " + ws.id());
    for (;;) {
        const std::string line = co_await ws.receive_text();
        const auto [verb, rest] = split(line);
        if (verb == "sub") {
            const bool done = ws.subscribe(rest);
            co_await ws.send_text("subscribed " + std::string(rest) + (done ? " true" : " false"));
        } else if (verb == "unsub") {
            const bool done = ws.unsubscribe(rest);
            co_await ws.send_text("unsubscribed " + std::string(rest) + (done ? " true" : " false"));
        } else if (verb == "pub" || verb == "pubo" || verb == "pubb") {
            const auto [topic, text] = split(rest);
            if (verb == "pubb")
                co_await ws.publish_bytes(topic, text);
            else
                co_await ws.publish(topic, text, verb == "pubo" ? starling::recipients::others : starling::recipients::everyone);
        } else if (verb == "burst") {
            const auto [topic, counts] = split(rest);
            const auto [n, size] = split(counts);
            std::string payload(std::max(8u, number(size)), 'x');
            for (std::uint64_t i = 0; i < number(n); ++i) {
                for (int b = 0; b < 8; ++b) payload[static_cast<std::size_t>(b)] = static_cast<char>(i >> (56 - 8 * b));
                co_await ws.publish_bytes(topic, payload);
            }
        } else if (verb == "bcast") {
            co_await ws.broadcast(rest);
        } else if (verb == "to") {
            const auto [id, text] = split(rest);
            const bool sent = co_await ws.send_to(id, text);
            co_await ws.send_text(sent ? "sent true" : "sent false");
        } else if (verb == "topics") {
            auto names = ws.topics();
            std::sort(names.begin(), names.end());
            co_await ws.send_json(names);
        } else if (verb == "close") {
            co_await ws.close(1000, "asked to close");
        } else {
            co_await ws.send_text("unknown command");
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    starling::server_options server;
    server.host = "127.0.0.1";
    std::optional<std::uint16_t> redis_port;
    std::string prefix = "starling:";
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "usage: %s --port N [--workers N] [--redis PORT] [--prefix P]\n", argv[0]);
            return 2;
        }
        const std::string_view value = argv[++i];
        if (arg == "--port") server.port = static_cast<std::uint16_t>(number(value));
        else if (arg == "--workers") server.workers = number(value);
        else if (arg == "--redis") redis_port = static_cast<std::uint16_t>(number(value));
        else if (arg == "--prefix") prefix = std::string(value);
        else return 2;
    }

    starling::app app;
    if (redis_port) {
        starling::redis_options redis;
        redis.port = *redis_port;
        redis.reconnect_min = std::chrono::milliseconds(20);
        redis.reconnect_max = std::chrono::milliseconds(200);
        app.use_backplane(std::make_shared<starling::redis_backplane>(redis), prefix);
    }

    app.websocket("/t", commands);

    starling::websocket_options small;
    small.max_queued_bytes = 64 * 1024;
    small.slow_consumer = starling::slow_consumer_policy::close;
    small.close_timeout = std::chrono::seconds(30);
    app.websocket("/small", commands).options(small);

    app.websocket("/greet", commands).on_connect([](starling::websocket& ws) -> starling::task<std::string> {
        const std::string topic(ws.query_params().get("topic", "greet"));
        if (ws.query_params().get("close", "") == "1") {
            ws.subscribe(topic);
            co_await ws.close(starling::close_code::policy_violation, "asked to close in on_connect");
            co_return "";
        }
        ws.subscribe(topic);
        co_await ws.publish(topic, "hello " + topic);
        co_return "welcome";
    });

    app.websocket("/stats", [&app](starling::websocket& ws) -> starling::task<> {
        if (const auto topic = ws.query_params().get("publish")) app.publish(*topic, ws.query_params().get("text", ""));
        for (;;) {
            co_await ws.receive_text();
            auto listed = app.topics();
            std::sort(listed.begin(), listed.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
            std::map<std::string, std::size_t> by_name;
            for (const auto& t : listed) by_name[t.name] = t.size;
            const starling::backplane_stats b = app.backplane_status();
            // Named before the co_await: no braced temporary inside it (README, "Troubleshooting").
            const starling::raw_json backplane{starling::to_json_object(
                "connected", b.connected, "published", b.published, "received", b.received, "dropped", b.dropped,
                "reconnects", b.reconnects)};
            const std::string answer = starling::to_json_object("topics", by_name, "backplane", backplane);
            co_await ws.send_text(answer);
        }
    });

    app.get("/metrics", starling::metrics_page());  // the backplane's link and counts, as operators see them

    const std::uint16_t port = app.listen(server);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
