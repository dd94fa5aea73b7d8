#include <starling/app.hpp>
#include <starling/testing.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

namespace {

starling::task<> idle(starling::websocket&) { co_return; }

struct database {};

std::string error_of(auto&& action) {
    try {
        action();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("registering two endpoints on one path throws with the path in the message") {
    starling::app app;
    app.websocket("/chat", idle);
    CHECK(error_of([&] { app.websocket("/chat", idle); }) == "starling: an endpoint is already registered at /chat");
    CHECK(error_of([&] { app.websocket("chat", idle); }).find("must start with '/'") != std::string::npos);
}

TEST_CASE("routers join prefixes, nest, and clash with app paths") {
    starling::router nested("/nested");
    auto n = nested.websocket("/ws", idle);
    starling::router sub("/sub_router/");
    auto s = sub.websocket("/ws", idle);
    sub.include_router(nested);
    starling::app app;
    app.include_router(sub);
    CHECK(s.path() == "/sub_router/ws");
    CHECK(n.path() == "/sub_router/nested/ws");

    starling::router clash("/sub_router");
    clash.websocket("/ws", idle);
    CHECK(error_of([&] { app.include_router(clash); }) == "starling: an endpoint is already registered at /sub_router/ws");
    CHECK(error_of([&] { starling::router bad("rooms"); }).find("must start with '/'") != std::string::npos);
}

TEST_CASE("a handler needing a dependency nobody injected stops the start, naming route and type") {
    starling::app app;
    app.websocket("/needs_db", [](starling::websocket&, database&) -> starling::task<> { co_return; });
    const std::string message = error_of([&] { app.start_in_background(0); });
    CHECK(message.find("/needs_db") != std::string::npos);
    CHECK(message.find("database") != std::string::npos);
    CHECK(message.find("not injected") != std::string::npos);
    starling::app in_process;
    in_process.websocket("/needs_db", [](starling::websocket&, database&) -> starling::task<> { co_return; });
    CHECK(error_of([&] { starling::testing::test_client client(in_process); }) == message);  // a test client checks the same
}

TEST_CASE("callbacks' dependencies are checked too, and router dependencies satisfy them") {
    starling::router r("/r");
    r.websocket("/ws", idle).on_close([](starling::websocket&, database&) {});
    starling::app app;
    app.include_router(r);
    CHECK(error_of([&] { app.start_in_background(0); }).find("on_close of /r/ws") != std::string::npos);

    starling::router ok("/r");
    ok.inject(database{});
    bool closed_with_database = false;
    ok.websocket("/ws", idle).on_close([&](starling::websocket&, database&) { closed_with_database = true; });
    starling::app fine;
    fine.include_router(ok);
    // In process: the same checks as listen(), then a connection whose on_close gets the router's database.
    starling::testing::test_client client(fine);
    client.run([&]() -> starling::task<> {
        auto ws = co_await client.connect("/r/ws");
        co_await ws.wait_closed();  // the handler returns at once: the server closes
    });
    CHECK(closed_with_database);
}

TEST_CASE("each app has its own global container, read-only once started") {
    starling::app first;
    starling::app second;
    first.inject_global(database{});
    CHECK(first.globals().contains<database>());
    CHECK_FALSE(second.globals().contains<database>());
    first.websocket("/x", idle);
    first.start_in_background(0);
    CHECK_THROWS_AS(first.inject_global(std::string("late")), std::logic_error);
    CHECK_THROWS_AS(first.websocket("/y", idle), std::logic_error);
    first.stop();
}

TEST_CASE("path templates are checked when registered, and path parameters against them when the app starts") {
    starling::app app;
    CHECK(error_of([&] { app.websocket("/rooms/x{room}", idle); }) ==
          "starling: a path parameter must be a whole, named segment, as in /rooms/{room}: \"/rooms/x{room}\"");
    app.websocket("/rooms/{room}", [](starling::websocket&, starling::path<"id", int>) -> starling::task<> { co_return; });
    CHECK(error_of([&] { app.start_in_background(0); }) ==
          "starling: the handler of /rooms/{room} declares starling::path<\"id\">, which its path has no {id} segment for");
}

TEST_CASE("an authentication hook's dependencies are checked at start; subprotocol names must be tokens") {
    starling::app app;
    auto e = app.websocket("/ws", idle);
    CHECK(error_of([&] { e.subprotocols({"chat v1"}); }) == "starling: a subprotocol name must be an HTTP token: \"chat v1\"");
    e.authenticate([](database&) -> starling::admission<> { return {}; });
    const std::string message = error_of([&] { app.start_in_background(0); });
    CHECK(message.find("the authentication hook of /ws needs a dependency of type") != std::string::npos);
}
