// A server for tests/integration/test_permessage_deflate.py: the same echo and fan-out under each
// compression setting an endpoint can have.
//
//   deflate_server --port N [--workers N]
//
// Endpoints (echo: text as text, binary as binary; the text "please close" closes with 4000):
//   /echo       the defaults: compression on, no context takeover either way, threshold 256 bytes;
//               max_message_size 1 MiB
//   /takeover   echo with context takeover both ways (the server keeps its window; so may the client)
//   /window     echo with server_max_window_bits 10, client_max_window_bits 9, threshold 0
//   /plain      echo with compression off
//   /small      echo with max_message_size 64 KiB (the bomb's limit)
//   /room, /room_plain, /room_takeover
//               one topic, "room", across three endpoints that compress by default, not at all, and
//               with context takeover: every message received is published to the room (sender
//               included); the text "broadcast TEXT" broadcasts TEXT to the sender's endpoint instead
#include <starling.hpp>  // first: Starling configures Asio's coroutine support for clang

#include "../../examples/cli.hpp"

#include <cstdio>
#include <string>
#include <string_view>

namespace {

starling::task<> echo(starling::websocket& ws) {
    for (;;) {
        starling::message m = co_await ws.receive();
        if (m.is_text() && m.data == "please close") {
            co_await ws.close(4000, "asked to close");
            co_return;
        }
        if (m.is_text())
            co_await ws.send_text(std::move(m.data));
        else
            co_await ws.send_bytes(std::move(m.data));
    }
}

starling::task<> room(starling::websocket& ws) {
    ws.subscribe("room");
    for (;;) {
        starling::message m = co_await ws.receive();
        constexpr std::string_view broadcast = "broadcast ";
        if (m.is_text() && m.data.starts_with(broadcast))
            co_await ws.broadcast(std::string_view(m.data).substr(broadcast.size()));
        else if (m.is_text())
            co_await ws.publish("room", m.data);
        else
            co_await ws.publish_bytes("room", m.data);
    }
}

starling::websocket_options with(void (*change)(starling::websocket_options&)) {
    starling::websocket_options options;
    change(options);
    return options;
}

}  // namespace

int main(int argc, char** argv) {
    starling::server_options server = example::parse_command_line(argc, argv);
    starling::app app;
    app.set_logger([](starling::log_level level, std::string_view line) {
        if (level >= starling::log_level::warning)
            std::fprintf(stderr, "log: %.*s\n", static_cast<int>(line.size()), line.data());
    });
    const auto takeover = with([](starling::websocket_options& o) {
        o.compression.server_context_takeover = true;
        o.compression.client_context_takeover = true;
    });
    app.websocket("/echo", echo);
    app.websocket("/takeover", echo).options(takeover);
    app.websocket("/window", echo).options(with([](starling::websocket_options& o) {
        o.compression.server_max_window_bits = 10;
        o.compression.client_max_window_bits = 9;
        o.compression.threshold = 0;
    }));
    app.websocket("/plain", echo).options(with([](starling::websocket_options& o) { o.compression.enabled = false; }));
    app.websocket("/small", echo).options(with([](starling::websocket_options& o) { o.max_message_size = 64 * 1024; }));
    app.websocket("/room", room);
    app.websocket("/room_plain", room).options(with([](starling::websocket_options& o) { o.compression.enabled = false; }));
    app.websocket("/room_takeover", room).options(takeover);

    const std::uint16_t port = app.listen(server);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
