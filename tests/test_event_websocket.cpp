#include <starling/event_websocket.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

namespace {

starling::task<> idle(starling::websocket&) { co_return; }

}  // namespace

TEST_CASE("unknown event names throw at registration, naming the event and the path") {
    starling::app app;
    starling::WebSocket websocket(app, "/web_socket");
    websocket.on("message", [] { return "ok"; });
    try {
        websocket.on("mesage", [] { return "typo"; });
        FAIL("an unknown event was accepted");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CHECK(what.find("\"mesage\"") != std::string::npos);
        CHECK(what.find("/web_socket") != std::string::npos);
    }
}

TEST_CASE("an event endpoint and a coroutine endpoint cannot share a path") {
    starling::app app;
    app.websocket("/shared", idle);
    CHECK_THROWS_WITH_AS(starling::WebSocket(app, "/shared"), "starling: an endpoint is already registered at /shared",
                         std::invalid_argument);
    starling::WebSocket events(app, "/events");
    CHECK_THROWS_AS(app.websocket("/events", idle), std::invalid_argument);
}

TEST_CASE("event endpoints on a router get its prefix") {
    starling::router r("/r");
    starling::WebSocket websocket(r, "/ws");
    starling::app app;
    app.include_router(r);
    CHECK(websocket.endpoint().path() == "/r/ws");
}
