// A server with deliberately SMALL limits, driven by tests/integration/test_limits.py and
// test_soak.py: every limit of README's "Limits and defaults" table can be hit over the wire in a few
// bytes and a few hundred milliseconds.
//
//   limits_server --port N [--workers N] [--max-connections N] [--shutdown-timeout-ms N] [--handshake-timeout-ms N]
//                 [--tls-cert FILE --tls-key FILE]
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
//   /broadcast       every message is broadcast to every client of /broadcast (sender included);
//                    max_message_size 64 KiB, max_queued_bytes 1 MiB, slow_consumer close (the
//                    default), close_timeout 30 s (a slow client reads its backlog, and our close
//                    frame, only after the whole burst, however long a loaded machine takes)
//                    The text "burst N SIZE" instead broadcasts N numbered binary messages of
//                    SIZE bytes (as /flood numbers them) in one go, without yielding in between.
//   /broadcast_drop  the same with slow_consumer drop
//   /flood     the text "flood N SIZE" makes the handler send N binary messages of SIZE bytes, each
//              starting with its index as 8 bytes big-endian, as fast as send() lets it;
//              max_queued_bytes 64 KiB. Progress is published in /stats.
//   /idle      echo; idle_timeout 300 ms (ping after 300 ms of silence, 1001 after 300 more)
//   /idle_busy echo, idle_timeout 300 ms, inbox_messages 1; the text "busy" takes the handler 1 s
//   /slow_connect  echo, but on_connect takes 500 ms before greeting "welcome" (a connection upgraded
//              and not yet in the registry: what shutdown must still close with 1001)
//   /stalled   as /flood, with write_timeout 300 ms: a client that stops reading is closed (1008)
//   /trickle   echo, message_timeout 300 ms: a message must arrive whole within 300 ms of its start
//   /ticker    a send-only handler: "tick N" every 20 ms until a send throws; "ticker ended" in
//              /stats counts handlers that ended (a send after the client vanished must throw)
//   /joined    on_connect broadcasts "joined" (the connecting client included), then echo
//   /stats     any text message is answered with {"/echo": n, "/big": n, ...}: connection_count() of
//              every endpoint, /stats itself included; plus "flood sent" (messages the /flood handler
//              has queued so far), "flood queued" (its queued_bytes() after the last send) and
//              "idle on_close" (how often /idle's on_close ran), "ticker ended".
#include <starling.hpp>  // first: Starling configures Asio's coroutine support for clang
#include <starling/tls.hpp>  // --tls-cert / --tls-key: the same limits over wss:// (test_tls.py)

#include "../../examples/cli.hpp"

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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

/// SIZE bytes (at least 8) starting with `index` as 8 bytes big-endian: what /flood and "burst" send.
std::string numbered(long index, std::size_t size) {
    std::string payload(size, 'n');
    for (int b = 0; b < 8; ++b) payload[static_cast<std::size_t>(b)] = static_cast<char>((index >> (56 - 8 * b)) & 0xff);
    return payload;
}

struct flood_progress {
    std::atomic<long> sent{0};
    std::atomic<long> queued{0};
};

/// /flood: "flood N SIZE" -> N numbered binary messages of SIZE bytes, sent as fast as backpressure
/// allows; progress published for /stats.
starling::task<> flood(starling::websocket& ws, flood_progress& progress) {
    const std::string command = co_await ws.receive_text();
    long count = 0;
    std::size_t size = 0;
    if (std::sscanf(command.c_str(), "flood %ld %zu", &count, &size) != 2 || size < 8) {
        co_await ws.close(4001, "expected: flood N SIZE");
        co_return;
    }
    for (long i = 0; i < count; ++i) {
        co_await ws.send_bytes(numbered(i, size));
        progress.sent = i + 1;
        progress.queued = static_cast<long>(ws.queued_bytes());
    }
    co_await ws.receive();  // stay open until the client is done
}

starling::task<> broadcast_all(starling::websocket& ws) {
    for (;;) {
        starling::message m = co_await ws.receive();
        long count = 0;
        std::size_t size = 0;
        if (m.is_text() && std::sscanf(m.data.c_str(), "burst %ld %zu", &count, &size) == 2 && size >= 8) {
            // All in one turn of the event loop: nothing is written until the burst is queued.
            for (long i = 0; i < count; ++i) {
                const std::string payload = numbered(i, size);
                co_await ws.broadcast_bytes(payload);
            }
        } else if (m.is_text())
            co_await ws.broadcast(m.data);
        else
            co_await ws.broadcast_bytes(m.data);
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

    starling::websocket_options broadcasting = limits(64 * 1024, 30s);
    broadcasting.max_queued_bytes = 1024 * 1024;
    endpoints.emplace("/broadcast", app.websocket("/broadcast", broadcast_all));
    endpoints.at("/broadcast").options(broadcasting);
    broadcasting.slow_consumer = starling::slow_consumer_policy::drop;
    endpoints.emplace("/broadcast_drop", app.websocket("/broadcast_drop", broadcast_all));
    endpoints.at("/broadcast_drop").options(broadcasting);

    flood_progress progress;
    endpoints.emplace("/flood", app.websocket("/flood", [&progress](starling::websocket& ws) -> starling::task<> {
        co_await flood(ws, progress);
    }));
    starling::websocket_options flooding = limits(1000, 300ms);
    flooding.max_queued_bytes = 64 * 1024;
    endpoints.at("/flood").options(flooding);

    starling::websocket_options stalling = flooding;
    stalling.write_timeout = 300ms;
    endpoints.emplace("/stalled", app.websocket("/stalled", [&progress](starling::websocket& ws) -> starling::task<> {
        co_await flood(ws, progress);
    }));
    endpoints.at("/stalled").options(stalling);

    starling::websocket_options trickling = limits(64 * 1024, 300ms);
    trickling.message_timeout = 300ms;
    endpoints.emplace("/trickle", app.websocket("/trickle", echo));
    endpoints.at("/trickle").options(trickling);

    std::atomic<long> tickers_ended{0};
    endpoints.emplace("/ticker", app.websocket("/ticker", [&tickers_ended](starling::websocket& ws) -> starling::task<> {
        struct count_end {
            std::atomic<long>& ended;
            ~count_end() { ++ended; }
        } counted{tickers_ended};
        asio::steady_timer tick(co_await asio::this_coro::executor);
        for (long n = 1;; ++n) {
            co_await ws.send_text("tick " + std::to_string(n));
            tick.expires_after(20ms);
            co_await tick.async_wait(asio::use_awaitable);
        }
    }));
    endpoints.at("/ticker").options(limits(1000, 300ms));

    endpoints.emplace("/joined", app.websocket("/joined", echo));
    endpoints.at("/joined").options(limits(1000, 300ms)).on_connect([](starling::websocket& ws) -> starling::task<> {
        co_await ws.broadcast("joined");
    });

    std::atomic<long> idle_closes{0};
    endpoints.emplace("/idle", app.websocket("/idle", echo));
    starling::websocket_options idling = limits(1000, 300ms);
    idling.idle_timeout = 300ms;
    endpoints.at("/idle").options(idling).on_close([&idle_closes](starling::websocket&) { ++idle_closes; });

    // /idle_busy: idle_timeout 300 ms, an inbox of one message, and a handler that takes 1 s over the
    // text "busy": while it works, the server stops reading that client, and that silence is not the
    // client's.
    endpoints.emplace("/idle_busy", app.websocket("/idle_busy", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text() && m.data == "busy") {
                asio::steady_timer work(co_await asio::this_coro::executor, 1s);
                co_await work.async_wait(asio::use_awaitable);
            }
            co_await ws.send_text(std::move(m.data));
        }
    }));
    starling::websocket_options busy = limits(1000, 300ms);
    busy.idle_timeout = 300ms;
    busy.inbox_messages = 1;
    endpoints.at("/idle_busy").options(busy);

    endpoints.emplace("/slow_connect", app.websocket("/slow_connect", echo));
    endpoints.at("/slow_connect").options(limits(1000, 300ms)).on_connect([](starling::websocket&) -> starling::task<std::string> {
        asio::steady_timer pause(co_await asio::this_coro::executor, 500ms);
        co_await pause.async_wait(asio::use_awaitable);
        co_return "welcome";
    });

    endpoints.emplace("/stats", app.websocket("/stats", [&](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            co_await ws.receive_text();
            std::map<std::string, long> counts;
            for (const auto& [path, e] : endpoints) counts[path] = static_cast<long>(e.connection_count());
            counts["flood sent"] = progress.sent;
            counts["flood queued"] = progress.queued;
            counts["idle on_close"] = idle_closes;
            counts["ticker ended"] = tickers_ended;
            co_await ws.send_json(counts);
        }
    }));

    const std::uint16_t port = example::listen(app, server);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
