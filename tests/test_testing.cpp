// Tests of the in-process test client (starling/testing.hpp): an app's endpoints driven over memory
// streams with the real handshake, typed parameters, hooks, callbacks, dependencies and limits; the
// engine clock advanced to fire idle pings, the idle close, the close timeout and receive_for
// deadlines; dependency overrides that leave the app as it was; a coroutine that would wait forever
// refused; and ten thousand connections in a row.
#include <starling/testing.hpp>
#include <starling.hpp>

#include <doctest/doctest.h>

#include <chrono>     // std::chrono durations
#include <cstdint>    // std::uint16_t close codes
#include <memory>     // std::make_shared dependencies
#include <optional>   // std::optional receive results
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <vector>     // std::vector of what a fake saw

using namespace std::chrono_literals;

namespace {

// ---- README's example (the section "Testing your handlers" quotes it) ----

/// What the handler greets with: the app injects the real one, a test may override it.
struct greeting {
    std::string word;
};

starling::task<> greet_then_echo(starling::websocket& ws, starling::query<"name", std::string> name, greeting& hello) {
    const std::string line = hello.word + ", " + *name;
    co_await ws.send_text(line);
    for (;;) co_await ws.send_text(co_await ws.receive_text());
}

}  // namespace

TEST_CASE("testing: a handler driven in process, with a dependency overridden") {
    starling::app app;
    app.inject_global(greeting{"hello"});
    app.websocket("/greet", greet_then_echo);

    starling::testing::test_client client(app);  // no port, no thread
    client.override_dependency(greeting{"hi"});  // for this client only
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/greet?name=ada");
        CHECK(co_await ws.receive_text() == "hi, ada");
        co_await ws.send_text("echo me");
        CHECK(co_await ws.receive_text() == "echo me");
        co_await ws.close();
        co_await ws.wait_closed();
    });
}

namespace {

starling::task<> echo(starling::websocket& ws) {
    for (;;) co_await ws.send_text(co_await ws.receive_text());
}

starling::task<> doubler(starling::websocket& ws, starling::query<"n", int> n) {
    co_await ws.send_text(std::to_string(*n * 2));
}

/// The status and body of a connect() the server refuses; status 0 if it was not refused.
starling::connect_error refusal_of(starling::testing::test_client& client, std::string target) {
    starling::connect_error caught("not refused");
    client.run([&]() -> starling::task<> {
        try {
            co_await client.connect(target);
        } catch (const starling::connect_error& e) {
            caught = e;
        }
    });
    return caught;
}

/// The close code a receive on `target` ends with (0 if it got a message instead).
std::uint16_t close_code_at(starling::testing::test_client& client, std::string target) {
    std::uint16_t code = 0;
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect(target);
        try {
            co_await ws.receive();
        } catch (const starling::websocket_disconnect& e) {
            code = e.code();
        }
    });
    return code;
}

starling::endpoint_metrics_snapshot metrics_of(const starling::app& app, const std::string& path) {
    for (auto& e : app.metrics().endpoints)
        if (e.endpoint == path) return e;
    FAIL("no endpoint " << path);
    return {};
}

}  // namespace

TEST_CASE("testing: echo, and typed query parameters coerced or refused with 400 naming them") {
    starling::app app;
    app.websocket("/echo", echo);
    app.websocket("/double", doubler);
    starling::testing::test_client client(app);
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/echo");
        for (const char* text : {"one", "two", "three"}) {
            co_await ws.send_text(text);
            CHECK(co_await ws.receive_text() == text);
        }
        co_await ws.close();
        co_await ws.wait_closed();

        auto doubled = co_await client.connect("/double?n=21");
        CHECK(co_await doubled.receive_text() == "42");
    });

    const auto missing = refusal_of(client, "/double");
    CHECK(missing.status() == 400);
    CHECK(missing.body() == "Missing required parameter: 'n'");
    const auto invalid = refusal_of(client, "/double?n=many");
    CHECK(invalid.status() == 400);
    CHECK(invalid.body() == "Invalid value 'many' for parameter 'n': expected integer");
    CHECK(refusal_of(client, "/nowhere").status() == 404);
}

TEST_CASE("testing: the authentication hook's refusals are the status and body; on_connect's close is the close code") {
    starling::app app;
    auto guarded = app.websocket("/guarded", echo);
    guarded.authenticate([](starling::query<"token", std::optional<std::string>> token) -> starling::admission<> {
        if (!token->has_value()) return starling::refuse(401, "Who are you?");
        if (**token == "banned") return starling::refuse(403, "Not you");
        return {};
    });
    auto members = app.websocket("/members", echo);
    members.on_connect([](starling::websocket& ws, starling::query<"member", bool, "false"> member) -> starling::task<> {
        if (!*member) co_await ws.close(starling::close_code::policy_violation, "members only");
    });
    starling::testing::test_client client(app);

    const auto anonymous = refusal_of(client, "/guarded");
    CHECK(anonymous.status() == 401);
    CHECK(anonymous.body() == "Who are you?");
    const auto banned = refusal_of(client, "/guarded?token=banned");
    CHECK(banned.status() == 403);
    CHECK(banned.body() == "Not you");
    CHECK(refusal_of(client, "/guarded?token=fine").status() == 0);

    CHECK(close_code_at(client, "/members") == 1008);
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/members?member=true");
        co_await ws.send_text("in");
        CHECK(co_await ws.receive_text() == "in");
    });
}

namespace {

struct database {
    std::string name;
};
struct router_label {
    std::string text;
};

starling::task<> describe(starling::websocket& ws, database& db, router_label& label) {
    const std::string line = db.name + " " + label.text;
    co_await ws.send_text(line);
}

std::string described(starling::testing::test_client& client, std::string target) {
    std::string seen;
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect(target);
        seen = co_await ws.receive_text();
    });
    return seen;
}

}  // namespace

TEST_CASE("testing: global and router dependencies, each overridden for one client and the app left as it was") {
    starling::router rooms("/rooms");
    rooms.inject(router_label{"rooms"});
    rooms.websocket("/ws", describe);
    starling::app app;
    app.inject_global(database{"postgres"});
    app.include_router(rooms);

    {
        starling::testing::test_client plain(app);
        CHECK(described(plain, "/rooms/ws") == "postgres rooms");
    }
    {
        starling::testing::test_client faked(app);
        faked.override_dependency(database{"fake db"});
        CHECK(described(faked, "/rooms/ws") == "fake db rooms");
        faked.override_dependency(std::make_shared<router_label>(router_label{"fake rooms"}));
        CHECK(described(faked, "/rooms/ws") == "fake db fake rooms");
        CHECK(app.globals().get<database>().name == "postgres");  // the app's own container is untouched
    }
    starling::testing::test_client after(app);
    CHECK(described(after, "/rooms/ws") == "postgres rooms");
}

namespace {

/// A service with a fake for tests: the override names the type handlers declare.
struct mailer {
    virtual ~mailer() = default;
    virtual std::string send(const std::string& to) { return "mailed " + to; }
};
struct fake_mailer : mailer {
    std::vector<std::string> sent;
    std::string send(const std::string& to) override {
        sent.push_back(to);
        return "pretended to mail " + to;
    }
};

starling::task<> notify(starling::websocket& ws, mailer& mail, starling::global_dependencies& deps) {
    const std::string line = mail.send("ada") + " (" + deps.get<database>("audit").name + ")";
    co_await ws.send_text(line);
}

}  // namespace

TEST_CASE("testing: a derived fake kept by the test, and a dependency overridden by name") {
    starling::app app;
    app.inject_global(mailer{});
    app.inject_global("audit", database{"audit log"});
    app.websocket("/notify", notify);

    starling::testing::test_client client(app);
    CHECK(described(client, "/notify") == "mailed ada (audit log)");
    auto fake = std::make_shared<fake_mailer>();
    client.override_dependency<mailer>(fake);
    client.override_dependency("audit", database{"fake audit"});
    CHECK(described(client, "/notify") == "pretended to mail ada (fake audit)");
    CHECK(fake->sent == std::vector<std::string>{"ada"});
}

TEST_CASE("testing: advancing the clock fires the idle ping, then the idle close (1001), then the close timeout") {
    starling::app app;
    app.websocket("/quiet", [](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_text("fill");
        for (;;) co_await ws.receive();
    });
    starling::testing::test_client client(app);
    client.run([&]() -> starling::task<> {
        // An inbox of one message, filled by "fill" and not read: the client's reader pauses, so it
        // neither answers the server's ping nor its close frame: the server's timers have to act.
        starling::client_options options;
        options.websocket.inbox_messages = 1;
        auto ws = co_await client.connect("/quiet", options);
        client.run_ready();
        CHECK(metrics_of(app, "/quiet").pings_sent == 0);

        client.advance(61s);  // idle_timeout (60 s) of silence: a ping
        CHECK(metrics_of(app, "/quiet").pings_sent == 1);
        CHECK(metrics_of(app, "/quiet").connections_open == 1);

        client.advance(61s);  // no pong within another idle_timeout: closed with 1001, waiting for the answer
        CHECK(metrics_of(app, "/quiet").connections_open == 1);

        client.advance(6s);  // close_timeout (5 s) without the client's close frame: dropped
        CHECK(metrics_of(app, "/quiet").connections_open == 0);

        CHECK(co_await ws.receive_text() == "fill");
        try {
            co_await ws.receive();
            FAIL("the connection should be closed");
        } catch (const starling::websocket_disconnect& e) {
            CHECK(e.code() == 1001);
            CHECK(e.reason() == "idle timeout");
        }
    });
}

TEST_CASE("testing: receive_text_for times out once the clock is advanced, on the server and on the client") {
    starling::app app;
    app.websocket("/patient", [](starling::websocket& ws) -> starling::task<> {
        const std::optional<std::string> text = co_await ws.receive_text_for(10s);
        std::string answer = "timed out";
        if (text) answer = *text;
        co_await ws.send_text(std::move(answer));
        for (;;) co_await ws.receive();
    });
    starling::testing::test_client client(app);
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/patient");
        client.advance(9s);
        CHECK(ws.is_open());
        client.advance(2s);
        CHECK(co_await ws.receive_text() == "timed out");

        // The client's own receive_for, waiting in a coroutine of its own while this one moves time.
        bool waited = false;
        std::optional<std::string> got = "unset";
        asio::co_spawn(client.context(), [&]() -> starling::task<> {
            got = co_await ws.receive_text_for(30s);
            waited = true;
        }, asio::detached);
        client.advance(29s);
        CHECK_FALSE(waited);
        client.advance(2s);
        CHECK(waited);
        CHECK_FALSE(got.has_value());
    });
}

TEST_CASE("testing: a message over the endpoint's size limit closes with 1009") {
    starling::app app;
    starling::websocket_options small;
    small.max_message_size = 16;
    app.websocket("/small", echo).options(small);
    starling::testing::test_client client(app);
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/small");
        co_await ws.send_text("short");
        CHECK(co_await ws.receive_text() == "short");
        co_await ws.send_text(std::string(100, 'x'));
        try {
            co_await ws.receive();
            FAIL("the connection should be closed");
        } catch (const starling::websocket_disconnect& e) {
            CHECK(e.code() == 1009);
        }
    });
}

TEST_CASE("testing: a test coroutine that would wait forever fails the run, and its exception is rethrown otherwise") {
    starling::app app;
    app.websocket("/silent", [](starling::websocket& ws) -> starling::task<> {
        for (;;) co_await ws.receive();
    });
    starling::testing::test_client client(app);
    std::uint16_t dropped_with = 0;
    CHECK_THROWS_WITH(client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/silent");
        try {
            co_await ws.receive();  // nobody ever sends
        } catch (const starling::websocket_disconnect& e) {
            dropped_with = e.code();  // the run drops the connections before it fails
            throw;
        }
    }), doctest::Contains("would wait forever"));
    CHECK(dropped_with == 1006);

    CHECK_THROWS_WITH(client.run([]() -> starling::task<> { throw std::logic_error("from the test body"); co_return; }),
                      "from the test body");
    // The client still works after both.
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/silent");
        CHECK(ws.is_open());
    });
}

TEST_CASE("testing: ten thousand connections, each echoing, one after another") {
    starling::app app;
    app.websocket("/echo", echo);
    starling::testing::test_client client(app);
    int echoed = 0;
    client.run([&]() -> starling::task<> {
        for (int i = 0; i < 10000; ++i) {
            auto ws = co_await client.connect("/echo");
            co_await ws.send_text("ping");
            if (co_await ws.receive_text() == "ping") ++echoed;
            co_await ws.close();
            co_await ws.wait_closed();
        }
    });
    CHECK(echoed == 10000);
    CHECK(metrics_of(app, "/echo").connections_open == 0);
}
