// A server exercising every part of the coroutine API, driven by tests/integration/test_coroutine_api.py.
// Each endpoint isolates one behaviour; /stats reports what the callbacks observed.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../examples/cli.hpp"

#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

namespace {

// What on_close and the handlers observed, for the tests to ask about through /stats.
struct observations {
    std::atomic<int> on_close_calls{0};
    std::mutex mutex;
    std::map<std::string, std::string> last_disconnect;  // path -> "code reason"
    std::map<std::string, std::vector<std::string>> endings;  // path -> how each run_concurrently ended
};
observations seen;

void record_disconnect(const starling::websocket& ws, const starling::websocket_disconnect& d) {
    std::lock_guard lock(seen.mutex);
    seen.last_disconnect[std::string(ws.path())] = std::to_string(d.code()) + " " + d.reason();
}

starling::task<> echo_until_disconnect(starling::websocket& ws) {
    try {
        for (;;) {
            auto m = co_await ws.receive();
            if (m.is_text()) co_await ws.send_text(std::move(m.data)); else co_await ws.send_bytes(std::move(m.data));
        }
    } catch (const starling::websocket_disconnect& d) {
        record_disconnect(ws, d);
        throw;
    }
}

void record_ending(const starling::websocket& ws, std::string ending) {
    std::lock_guard lock(seen.mutex);
    seen.endings[std::string(ws.path())].push_back(std::move(ending));
}

// The two sides of the /ticks endpoints. The ticker sends "tick N" every 50 ms; with `last`, it
// returns after that tick, or throws there with `fail`.
starling::task<> tick(starling::websocket& ws, int last, bool fail) {
    asio::steady_timer timer(ws.context());
    for (int n = 1;; ++n) {
        co_await ws.send_text("tick " + std::to_string(n));
        if (n == last) {
            if (fail) throw std::runtime_error("tick source failed");
            co_return;
        }
        timer.expires_after(std::chrono::milliseconds(50));
        co_await timer.async_wait(asio::use_awaitable);
    }
}

// "ping" gets "pong", "stop" returns, "boom" throws; with `silence`, so does a quiet client (returns).
starling::task<> answer(starling::websocket& ws, std::optional<std::chrono::milliseconds> silence) {
    for (;;) {
        std::optional<std::string> text;
        if (silence)
            text = co_await ws.receive_text_for(*silence);
        else
            text = co_await ws.receive_text();
        if (!text || *text == "stop") co_return;
        if (*text == "boom") throw std::runtime_error("reader failed on boom");
        if (*text == "ping") co_await ws.send_text("pong");
    }
}

// A handler running both with run_concurrently, recording how the call ended before the framework
// sees it.
auto ticks_handler(int last, bool fail, std::optional<std::chrono::milliseconds> silence) {
    return [=](starling::websocket& ws) -> starling::task<> {
        try {
            co_await starling::run_concurrently(ws, answer(ws, silence), tick(ws, last, fail));
        } catch (const starling::websocket_disconnect& d) {
            record_ending(ws, "disconnect " + std::to_string(d.code()));
            throw;
        } catch (const std::exception& e) {
            record_ending(ws, std::string("error: ") + e.what());
            throw;
        }
        record_ending(ws, "returned");
    };
}

}  // namespace

int main(int argc, char** argv) {
    starling::app app;
    app.set_logger([](starling::log_level level, std::string_view line) {
        if (level >= starling::log_level::warning) std::fprintf(stderr, "log: %.*s\n", static_cast<int>(line.size()), line.data());
    });

    // Greeting first, echo, farewell last when the server closes ("close" makes the server close).
    std::map<std::string, starling::endpoint> endpoints;
    endpoints.emplace("/greet", app.websocket("/greet", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            auto text = co_await ws.receive_text();
            if (text == "close") co_return;
            co_await ws.send_text(std::move(text));
        }
    }));
    endpoints.at("/greet")
        .on_connect([](starling::websocket& ws) { return "welcome " + ws.id(); })
        .on_close([](starling::websocket&) {
            ++seen.on_close_calls;
            return "goodbye";
        });

    // Empty on_connect text: nothing is sent. Echo records the disconnect it sees.
    endpoints.emplace("/echo", app.websocket("/echo", echo_until_disconnect));
    endpoints.at("/echo")
        .on_connect([](starling::websocket&) { return ""; })
        .on_close([](starling::websocket&) -> starling::task<std::string> {
            ++seen.on_close_calls;
            co_return "";
        });

    // Robyn's JSON acceptance test: {"ws_id", "resp", "msg"}.
    app.websocket("/json", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            auto doc = co_await ws.receive_json();
            starling::json_object reply{{"ws_id", ws.id()}, {"resp", "Whooo??"}, {"msg", doc}};
            co_await ws.send_json(std::move(reply));
        }
    });

    // The JSON forms without braced lists, each inside co_await: every message is answered with its
    // typed fields (get<T>, get_or; null for one that is missing or of another type), or, when it has
    // "text", with that text through a builder; 200 ms of silence with {"type":"timeout"}.
    app.websocket("/json_forms", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::optional<starling::json_document> doc = co_await ws.receive_json_for(std::chrono::milliseconds(200));
            if (!doc) {
                co_await ws.send_json("type", "timeout");
            } else if (doc->get<simdjson::dom::element>("text")) {
                co_await ws.send_json(starling::json_object_builder()
                                          .add("type", "text")
                                          .add("text", doc->get<std::string>("text"))
                                          .add("length", doc->get<std::string_view>("text").value_or("").size()));
            } else {
                co_await ws.send_json("type", "fields", "n", doc->get<int>("n"), "big", doc->get<std::int64_t>("big"),
                                      "ratio", doc->get<double>("ratio"), "ok", doc->get<bool>("ok"),
                                      "name", doc->get_or("name", "anonymous"),
                                      "score", doc->get<int>("player", "score"),
                                      "first_tag", doc->get<std::string>("player", "tags", 0), "echo", *doc);
            }
        }
    });

    // A handler that returns after one message: the server closes with 1000.
    app.websocket("/once", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_text("got " + co_await ws.receive_text());
    });

    // A handler that throws: logged, closed with 1011.
    app.websocket("/throw", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.receive_text();
        throw std::runtime_error("deliberate failure");
    });

    // Broadcast: "all:x" to everyone, "others:x" to all but the sender; "id" answers with the own id;
    // "to:<id>:x" sends x to one connection and answers "sent" or "unknown".
    endpoints.emplace("/room", app.websocket("/room", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string text = co_await ws.receive_text();
            if (text.starts_with("all:")) {
                co_await ws.broadcast(text.substr(4));
            } else if (text.starts_with("others:")) {
                co_await ws.broadcast(text.substr(7), starling::recipients::others);
            } else if (text.starts_with("bytes:")) {
                co_await ws.broadcast_bytes(text.substr(6));
            } else if (text == "id") {
                co_await ws.send_text(ws.id());
            } else if (text.starts_with("to:")) {
                const auto colon = text.find(':', 3);
                const bool sent = co_await ws.send_to(text.substr(3, colon - 3), text.substr(colon + 1));
                co_await ws.send_text(sent ? "sent" : "unknown");
            }
        }
    }));
    endpoints.at("/room").on_close([](starling::websocket&) { ++seen.on_close_calls; });

    // Query parameters, headers, client address and path, as JSON.
    app.websocket("/inspect", [](starling::websocket& ws) -> starling::task<> {
        std::map<std::string, std::vector<std::string>> query;
        for (const auto& [key, value] : ws.query_params()) query[key].push_back(value);
        std::map<std::string, std::string> picked;
        for (const char* name : {"user-agent", "X-Api-Key", "host"})
            if (auto v = ws.headers().get(name)) picked[name] = std::string(*v);
        starling::json_object info{{"query", query},
                                   {"headers", picked},
                                   {"ip", ws.client().ip},
                                   {"port", ws.client().port},
                                   {"path", ws.path()},
                                   {"room_last", ws.query_params().get("room")},
                                   {"room_first", ws.query_params().get_first("room")}};
        co_await ws.send_json(std::move(info));
        co_await ws.receive_text();
    });

    // Receiving with a deadline: "timeout" after 200 ms of silence, else the message back.
    app.websocket("/deadline", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            auto text = co_await ws.receive_text_for(std::chrono::milliseconds(200));
            std::string reply = text ? "got " + *text : std::string("timeout");
            co_await ws.send_text(std::move(reply));
        }
    });

    // Server-side close with a code and reason on "quit".
    app.websocket("/quit", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            auto text = co_await ws.receive_text();
            if (text == "quit") {
                co_await ws.close(4001, "bye now");
                co_return;
            }
            co_await ws.send_text("Got: " + text);
        }
    });

    // run_concurrently's endings (tests/integration/test_ticker.py): /ticks runs until a side ends
    // (the client's "stop" or "boom", or the connection); /ticks_three's ticker returns after tick 3
    // while the reader waits in receive_text(); /ticks_fail's ticker throws after tick 2; /ticks_quiet's
    // reader returns after 300 ms without a message while the ticker waits on its timer.
    endpoints.emplace("/ticks", app.websocket("/ticks", ticks_handler(0, false, std::nullopt)));
    endpoints.emplace("/ticks_three", app.websocket("/ticks_three", ticks_handler(3, false, std::nullopt)));
    endpoints.emplace("/ticks_fail", app.websocket("/ticks_fail", ticks_handler(2, true, std::nullopt)));
    endpoints.emplace("/ticks_quiet",
                      app.websocket("/ticks_quiet", ticks_handler(0, false, std::chrono::milliseconds(300))));

    // What the callbacks saw, and how many connections each endpoint holds right now.
    app.websocket("/stats", [&endpoints](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            const std::string path = co_await ws.receive_text();
            std::string disconnect;
            std::vector<std::string> endings;
            {
                std::lock_guard lock(seen.mutex);
                disconnect = seen.last_disconnect[path];
                endings = seen.endings[path];
            }
            const auto it = endpoints.find(path);
            starling::json_object stats{
                {"on_close_calls", seen.on_close_calls.load()},
                {"connections", it == endpoints.end() ? -1 : static_cast<long>(it->second.connection_count())},
                {"last_disconnect", disconnect},
                {"endings", endings}};
            co_await ws.send_json(std::move(stats));
        }
    });

    // Plain HTTP pages next to the endpoints: a fixed one, one built per request, one that throws, and
    // one sharing its path with a WebSocket endpoint.
    app.get("/page", starling::http::response{200, "text/html; charset=utf-8", "<p>hello</p>"});
    app.get("/hello", [](const starling::http::request& request) {
        return starling::http::response{200, "text/plain; charset=utf-8", "you asked for " + request.target};
    });
    app.get("/broken", [](const starling::http::request&) -> starling::http::response {
        throw std::runtime_error("page failed");
    });
    app.get("/echo", starling::http::response{200, "text/plain; charset=utf-8", "the echo endpoint speaks WebSocket"});

    return example::serve(app, argc, argv);
}
