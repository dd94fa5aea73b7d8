// The handshake as a typed step, one endpoint per feature: README's sections on authentication hooks,
// per-connection state, refusing from on_connect, typed headers, cookies and path parameters, origin
// allow-lists, subprotocols and limits take their snippets from here.
//   build/examples/gatekeeper --port N
//   /vault               X-API-Key header checked by a coroutine hook: 400 / 403 / 429 / 500 / admitted
//   /events              the event API with the same hook: "event from NAME: text"
//   /whoami              a hook reading the request itself: "ADDRESS cookie=SESSION agent=USER-AGENT"
//   /rooms/{room}/ws     path, header and cookie parameters: "room R as C (session S)", then echo
//   /items/{id}          a typed path parameter (int): "item N"
//   /members             on_connect refuses (1008 "members only") without ?member=yes
//   /sessions?name=N     state made in on_connect, seen by the handler and on_close, destroyed at the end;
//                        "bye" ends it (on_close answers "bye N after K")
//   /browser             only pages from http://localhost:* or https://*.example.com (others: 403)
//   /protocols           subprotocols v2.game, v1.game; /protocols-optional serves clients offering others
//   /limited, /limited-drop   5 messages/s (burst 5): close with 1008, or drop and count
//   GET /page            a page opening /browser from wherever it was loaded (the origin test)
//   GET /counts          how often each callback ran; GET /metrics the counters
// The server takes at most 100 open connections from one IP address (429 beyond).
#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>

#include <starling.hpp>

#include "cli.hpp"

namespace {

std::atomic<long> vault_handlers{0};   // handler runs on /vault: a refusal must not add one
std::atomic<long> vault_connects{0};   // on_connect runs on /vault
std::atomic<long> members_handlers{0}; // handler runs on /members
std::atomic<long> sessions_live{0};    // session objects alive (the state of /sessions)
std::atomic<long> sessions_destroyed{0};

struct api_client {
    std::string name;
};

// [session]
/// The state of a /sessions connection: made in on_connect, gone with the connection.
struct session {
    explicit session(std::string who) : name(std::move(who)) { ++sessions_live; }
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session() {
        --sessions_live;
        ++sessions_destroyed;
    }
    std::string name;
    int messages = 0;
};
// [session]

// [vault_hook]
/// A coroutine hook: it could ask a database; here the keys are fixed.
starling::task<starling::admission<api_client>> check_key(starling::header<"X-API-Key", std::string> key) {
    if (*key == "open-sesame") co_return api_client{"keyholder"};
    if (*key == "banned") co_return starling::refuse(403, "This key is banned");
    if (*key == "busy") co_return starling::refuse(429, "Slow down", "Retry-After: 5\r\n");
    if (*key == "boom") throw std::runtime_error("the key store is down");  // the client gets 500
    co_return starling::refuse(401, "Unknown key");
}
// [vault_hook]

}  // namespace

int main(int argc, char** argv) {
    starling::app app;

    // [vault]
    auto vault = app.websocket("/vault", [](starling::websocket& ws, starling::state<api_client> client) -> starling::task<> {
        ++vault_handlers;
        for (;;) co_await ws.send_text(client->name + ": " + co_await ws.receive_text());
    });
    vault.authenticate(check_key);
    vault.on_connect([](starling::state<api_client> client) {
        ++vault_connects;
        return "hello " + client->name;
    });
    // [vault]

    // The hook sees the whole request: here the client's address, a cookie and a header, untyped.
    app.websocket("/whoami", [](starling::websocket& ws, starling::state<std::string> who) -> starling::task<> {
           co_await ws.send_text(*who);
       }).authenticate([](const starling::handshake_request& request) -> starling::admission<std::string> {
        if (request.path() != "/whoami" || request.query_params().get("deny")) return starling::refuse(403, "denied");
        return request.client().ip + " cookie=" + std::string(request.cookie("session").value_or("-")) +
               " agent=" + std::string(request.header("User-Agent").value_or("-"));
    });

    starling::WebSocket events(app, "/events");
    events.on("message", [](starling::connector&, std::string_view text, starling::state<api_client> client) {
        return "event from " + client->name + ": " + std::string(text);
    });
    events.endpoint().authenticate(check_key);

    // [rooms]
    app.websocket("/rooms/{room}/ws",
                  [](starling::websocket& ws, starling::path<"room", std::string> room,
                     starling::header<"X-Client", std::string, "anonymous"> client,
                     starling::cookie<"session", std::optional<std::string>> session_id) -> starling::task<> {
                      co_await ws.send_text("room " + *room + " as " + *client + " (session " +
                                            session_id->value_or("none") + ")");
                      for (;;) co_await ws.send_text(co_await ws.receive_text());
                  });
    app.websocket("/items/{id}", [](starling::websocket& ws, starling::path<"id", int> id) -> starling::task<> {
        co_await ws.send_text("item " + std::to_string(*id));
    });
    // [rooms]

    // [members]
    auto members = app.websocket("/members", [](starling::websocket& ws) -> starling::task<> {
        ++members_handlers;
        co_await ws.send_text("welcome, member");
        for (;;) co_await ws.receive();
    });
    // Refusing after the upgrade, with a close code and reason the client can read (a browser too,
    // which never sees an HTTP refusal's body): the handler does not run.
    members.on_connect([](starling::websocket& ws, starling::query<"member", bool, "false"> member) -> starling::task<> {
        if (!*member) co_await ws.close(starling::close_code::policy_violation, "members only");
    });
    // [members]

    // [sessions]
    auto sessions = app.websocket("/sessions", [](starling::websocket& ws, starling::state<session> s) -> starling::task<> {
        for (;;) {
            const std::string text = co_await ws.receive_text();
            if (text == "bye") co_return;  // the server closes: on_close's text goes out first
            ++s->messages;
            co_await ws.send_text(s->name + " #" + std::to_string(s->messages) + ": " + text);
        }
    });
    sessions.on_connect([](starling::websocket& ws, starling::query<"name", std::string, "guest"> name) {
        ws.emplace_state<session>(*name);
    });
    sessions.on_close([](starling::websocket& ws) {
        return "bye " + ws.state<session>().name + " after " + std::to_string(ws.state<session>().messages);
    });
    // [sessions]

    // [origins]
    app.websocket("/browser", [](starling::websocket& ws) -> starling::task<> {
           co_await ws.send_text("origin " + std::string(ws.headers().get("Origin").value_or("none")));
           for (;;) co_await ws.receive();
       }).allow_origins({"http://localhost:*", "https://*.example.com"});
    // [origins]

    // [protocols]
    auto protocols = app.websocket("/protocols", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_text("speaking " + std::string(ws.subprotocol()));
    });
    protocols.subprotocols({"v2.game", "v1.game"});
    app.websocket("/protocols-optional", [](starling::websocket& ws) -> starling::task<> {
           const std::string chosen = ws.subprotocol().empty() ? "nothing" : std::string(ws.subprotocol());
           co_await ws.send_text("speaking " + chosen);
       }).subprotocols({"v2.game", "v1.game"}, starling::endpoint::unknown_subprotocol::serve_without);
    // [protocols]

    // [limits]
    starling::websocket_options limited;
    limited.rate_limit.messages_per_second = 5;
    limited.rate_limit.message_burst = 5;
    limited.rate_limit.policy = starling::rate_limit_policy::close;  // the default: 1008 "rate limit exceeded"
    auto echo = [](starling::websocket& ws) -> starling::task<> {
        for (;;) co_await ws.send_text(co_await ws.receive_text());
    };
    app.websocket("/limited", echo).options(limited);
    limited.rate_limit.policy = starling::rate_limit_policy::drop;  // dropped and counted, still connected
    app.websocket("/limited-drop", echo).options(limited);
    // [limits]

    app.get("/page", starling::http::response{200, "text/html; charset=utf-8",
                                              "<!doctype html><title>origin test</title><script>"
                                              "window.result = new Promise(done => {"
                                              "  const ws = new WebSocket(`ws://${location.host}/browser`);"
                                              "  ws.onmessage = e => done('message ' + e.data);"
                                              "  ws.onclose = e => done('closed ' + e.code);"
                                              "});</script>"});
    app.get("/counts", [](const starling::http::request&) {
        return starling::http::response{200, "text/plain",
                                        "vault_handlers " + std::to_string(vault_handlers.load()) + "\nvault_connects " +
                                            std::to_string(vault_connects.load()) + "\nmembers_handlers " +
                                            std::to_string(members_handlers.load()) + "\nsessions_live " +
                                            std::to_string(sessions_live.load()) + "\nsessions_destroyed " +
                                            std::to_string(sessions_destroyed.load()) + "\n"};
    });
    app.get("/metrics", starling::metrics_page());

    // [per_ip]
    starling::server_options options = example::parse_command_line(argc, argv);
    options.max_connections_per_ip = 100;  // the 101st open connection from one address gets 429
    return example::serve(app, options);
    // [per_ip]
}
