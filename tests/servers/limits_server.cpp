// A server with deliberately SMALL limits, driven by tests/integration/test_limits.py and
// test_soak.py: every limit of README's "Limits and defaults" table can be hit over the wire in a few
// bytes and a few hundred milliseconds.
//
//   limits_server --port N [--workers N] [--max-connections N] [--shutdown-timeout-ms N] [--handshake-timeout-ms N]
//
// Server-wide (server_options): max_header_bytes 1024, handshake_timeout 300 ms, max_connections 20
// (--max-connections), shutdown_timeout 2 s (--shutdown-timeout-ms).
// App-wide websocket_options (app.set_websocket_options): close_timeout 300 ms, everything else default.
//
// Endpoints (each echoes text as text and binary as binary; the text "please close" makes the server
// close with 4000 "asked to close"):
//   /echo      endpoint.options: max_message_size 1000, close_timeout 300 ms
//   /big       endpoint.options: max_message_size 4000 (the per-endpoint override), close_timeout 300 ms
//   /frames    endpoint.options: max_message_size 4000, max_frame_size 100, close_timeout 300 ms
//   /default   no endpoint.options: the app-wide options, so the default 1 MiB message limit
//   /lingering endpoint.options: max_message_size 1000, close_timeout 30 s (outlives the shutdown timeout)
//   /stats     any text message is answered with {"/echo": n, "/big": n, ...}: connection_count() of
//              every endpoint, /stats itself included.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "../../examples/cli.hpp"

namespace {

using namespace std::chrono_literals;

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

starling::websocket_options limits(std::uint64_t max_message_size, std::chrono::milliseconds close_timeout,
                                   std::uint64_t max_frame_size = 0) {
    starling::websocket_options options;
    options.max_message_size = max_message_size;
    options.max_frame_size = max_frame_size;
    options.close_timeout = close_timeout;
    return options;
}

[[noreturn]] void usage(const char* program) {
    std::fprintf(stderr, "usage: %s --port N [--workers N] [--max-connections N] [--shutdown-timeout-ms N] [--handshake-timeout-ms N]\n", program);
    std::exit(2);
}

unsigned long number(const char* program, const char* text) {
    const std::string_view view(text);
    unsigned long value = 0;
    const auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
    if (ec != std::errc() || end != view.data() + view.size()) usage(program);
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    // Our own flags first; the rest (--port, --workers) goes to the examples' parser.
    std::size_t max_connections = 20;
    std::chrono::milliseconds shutdown_timeout = 2s;
    std::chrono::milliseconds handshake_timeout = 300ms;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--max-connections" || arg == "--shutdown-timeout-ms" || arg == "--handshake-timeout-ms") {
            if (i + 1 >= argc) usage(argv[0]);
            const unsigned long value = number(argv[0], argv[++i]);
            if (arg == "--max-connections")
                max_connections = value;
            else if (arg == "--shutdown-timeout-ms")
                shutdown_timeout = std::chrono::milliseconds(value);
            else
                handshake_timeout = std::chrono::milliseconds(value);
        } else {
            rest.push_back(argv[i]);
        }
    }
    starling::server_options server = example::parse_command_line(static_cast<int>(rest.size()), rest.data());
    server.max_header_bytes = 1024;
    server.handshake_timeout = handshake_timeout;
    server.max_connections = max_connections;
    server.shutdown_timeout = shutdown_timeout;

    starling::app app;
    app.set_logger([](starling::log_level level, std::string_view line) {
        if (level >= starling::log_level::warning)
            std::fprintf(stderr, "log: %.*s\n", static_cast<int>(line.size()), line.data());
    });
    starling::websocket_options app_wide;
    app_wide.close_timeout = 300ms;
    app.set_websocket_options(app_wide);

    std::map<std::string, starling::endpoint> endpoints;
    endpoints.emplace("/echo", app.websocket("/echo", echo));
    endpoints.at("/echo").options(limits(1000, 300ms));
    endpoints.emplace("/big", app.websocket("/big", echo));
    endpoints.at("/big").options(limits(4000, 300ms));
    endpoints.emplace("/frames", app.websocket("/frames", echo));
    endpoints.at("/frames").options(limits(4000, 300ms, 100));
    endpoints.emplace("/default", app.websocket("/default", echo));
    endpoints.emplace("/lingering", app.websocket("/lingering", echo));
    endpoints.at("/lingering").options(limits(1000, 30s));

    endpoints.emplace("/stats", app.websocket("/stats", [&endpoints](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            co_await ws.receive_text();
            std::map<std::string, long> counts;
            for (const auto& [path, e] : endpoints) counts[path] = static_cast<long>(e.connection_count());
            co_await ws.send_json(counts);
        }
    }));

    const std::uint16_t port = app.listen(server);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
