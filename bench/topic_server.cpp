// The same fan-out two ways, for the topics rows of docs/benchmarks.md: a publish to a topic every
// connection is in against a broadcast to every connection of an endpoint. bench/loadgen's broadcast
// scenario drives either path (--path /chat or --path /room); each message must reach every
// connection, the sender included, in both.
//   /chat   every message broadcast to every connection of /chat (as examples/chat)
//   /room   every connection subscribes to the topic "room"; every message is published to it
//   build-bench/bench/topic_server --port N [--workers N] [--redis PORT]
// With --redis, publishes and broadcasts go through a Redis backplane on 127.0.0.1:PORT, so that
// several topic_server processes serve one deployment (loadgen --also-port spreads its connections
// over them).
#include <charconv>     // std::from_chars
#include <cstdio>       // std::printf the port
#include <string>       // std::string
#include <string_view>  // std::string_view arguments

#include <memory>       // std::make_shared backplane
#include <optional>     // std::optional Redis port

#include <starling.hpp>
#include <starling/redis.hpp>

int main(int argc, char** argv) {
    starling::server_options options;
    options.host = "127.0.0.1";
    std::optional<std::uint16_t> redis_port;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view arg = argv[i], value = argv[i + 1];
        unsigned n = 0;
        std::from_chars(value.data(), value.data() + value.size(), n);
        if (arg == "--port") options.port = static_cast<std::uint16_t>(n);
        else if (arg == "--workers") options.workers = n;
        else if (arg == "--redis") redis_port = static_cast<std::uint16_t>(n);
    }
    starling::app app;
    if (redis_port) {
        starling::redis_options redis;
        redis.port = *redis_port;
        app.use_backplane(std::make_shared<starling::redis_backplane>(redis), "bench:");
    }
    app.websocket("/chat", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.broadcast(m.data);
            else
                co_await ws.broadcast_bytes(m.data);
        }
    });
    app.websocket("/room", [](starling::websocket& ws) -> starling::task<> {
        ws.subscribe("room");
        for (;;) {
            const starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.publish("room", m.data);
            else
                co_await ws.publish_bytes("room", m.data);
        }
    });
    const std::uint16_t port = app.listen(options);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
