// Tests of the client (starling/client.hpp): its URL parsing, the request it builds and the checks
// on the response (pure), the masking of what it queues, and whole connections to a Starling app on
// loopback: the message API both ways, extra headers, a refusal's status and body, the handshake
// timeout against a server that never answers, and the close code the server sees.
#include <starling.hpp>

#include <doctest/doctest.h>

#include <atomic>     // std::atomic close code seen by the server
#include <chrono>     // std::chrono timeouts
#include <exception>  // std::exception_ptr
#include <optional>   // std::optional results
#include <string>     // std::string
#include <vector>     // std::vector buffers

namespace {

using namespace std::chrono_literals;

/// Runs `body` on a fresh event loop until it finishes (at most 10 s) and rethrows what it threw.
template <class Body>
void run_client(Body body) {
    asio::io_context io;
    bool finished = false;
    std::exception_ptr error;
    asio::co_spawn(io, body(io), [&](std::exception_ptr e) {
        finished = true;
        error = e;
    });
    io.run_for(10s);
    REQUIRE(finished);
    if (error) std::rethrow_exception(error);
}

starling::upgrade_response response_of(std::string_view head) {
    starling::upgrade_response r;
    std::string why;
    REQUIRE(starling::parse_upgrade_response(head, r, why));
    return r;
}

}  // namespace

TEST_CASE("client: URLs") {
    std::string why;
    auto url = starling::parse_websocket_url("ws://example.com/chat?room=1", why);
    REQUIRE(url);
    CHECK(!url->secure);
    CHECK(url->host == "example.com");
    CHECK(url->port == 80);
    CHECK(url->target == "/chat?room=1");
    CHECK(url->host_field() == "example.com");

    url = starling::parse_websocket_url("WSS://[::1]:8443", why);
    REQUIRE(url);
    CHECK(url->secure);
    CHECK(url->host == "::1");
    CHECK(url->port == 8443);
    CHECK(url->target == "/");
    CHECK(url->host_field() == "[::1]:8443");

    url = starling::parse_websocket_url("ws://h:9?x=1", why);
    REQUIRE(url);
    CHECK(url->target == "/?x=1");
    CHECK(url->host_field() == "h:9");

    for (const char* bad : {"http://h/", "ws://h/#frag", "ws://user@h/", "ws://h:0/", "ws://h:70000/", "ws://:80/",
                            "ws://[::1/", "ws://::1/", "ws://h/a b", "ws://h:/"}) {
        CAPTURE(bad);
        CHECK(!starling::parse_websocket_url(bad, why));
        CHECK(!why.empty());
    }
}

TEST_CASE("client: the upgrade request") {
    std::string why;
    const auto url = starling::parse_websocket_url("ws://127.0.0.1:8080/p?q=1", why);
    REQUIRE(url);
    starling::http::headers extra;
    extra.add("Authorization", "Bearer t");
    const std::string request = starling::make_upgrade_request(*url, "a2V5", extra, {"chat.v1", "chat.v0"});
    CHECK(request ==
          "GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v1, chat.v0\r\n"
          "Authorization: Bearer t\r\n\r\n");
    CHECK(starling::is_handshake_field("sec-websocket-key"));
    CHECK(!starling::is_handshake_field("Authorization"));
}

TEST_CASE("client: the checks on the response") {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    const std::string ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    CHECK(starling::check_upgrade_response(response_of(ok + "\r\n"), key, {}).ok());

    auto chosen = starling::check_upgrade_response(response_of(ok + "Sec-WebSocket-Protocol: b\r\n\r\n"), key, {"a", "b"});
    CHECK(chosen.ok());
    CHECK(chosen.subprotocol == "b");
    CHECK(starling::check_upgrade_response(response_of(ok + "Sec-WebSocket-Protocol: c\r\n\r\n"), key, {"a", "b"}).error ==
          "handshake failed: the server chose a subprotocol that was not offered: c");
    CHECK(starling::check_upgrade_response(response_of(ok + "\r\n"), "another key", {}).error == "bad Sec-WebSocket-Accept");
    CHECK(starling::check_upgrade_response(response_of("HTTP/1.1 403 Forbidden\r\n\r\n"), key, {}).error ==
          "handshake failed: status 403");
    CHECK(starling::check_upgrade_response(response_of("HTTP/1.1 301 Moved\r\nLocation: ws://b/\r\n\r\n"), key, {}).error ==
          "handshake failed: status 301 (a redirect to ws://b/; redirects are not followed)");

    starling::upgrade_response r;
    std::string why;
    CHECK(!starling::parse_upgrade_response("HTTP/1.0 101 OK\r\n\r\n", r, why));
    CHECK(!starling::parse_upgrade_response("HTTP/1.1 1x1 OK\r\n\r\n", r, why));
    CHECK(!starling::parse_upgrade_response("HTTP/1.1 101 OK\r\n folded: no\r\n\r\n", r, why));
    CHECK(!starling::parse_upgrade_response("HTTP/1.1 101 OK\r\nName : v\r\n\r\n", r, why));
}

TEST_CASE("client: every queued frame is masked with a fresh key") {
    starling::detail::write_queue queue;
    queue.mask_frames();
    queue.push(starling::detail::outbound_frame::unicast(starling::opcode::text, "hello"));
    queue.push(starling::detail::outbound_frame::unicast(starling::opcode::text, "hello"));
    queue.push_pong("p");
    std::vector<asio::const_buffer> buffers;
    queue.gather(buffers, 64, 1 << 20);
    std::string wire;
    for (const auto& b : buffers) wire.append(static_cast<const char*>(b.data()), b.size());
    REQUIRE(wire.size() == 2 * (2 + 4 + 5) + (2 + 4 + 1));
    std::vector<std::string> keys;
    for (std::size_t at = 0; at < wire.size();) {
        const auto b0 = static_cast<std::uint8_t>(wire[at]);
        const auto b1 = static_cast<std::uint8_t>(wire[at + 1]);
        CHECK((b1 & 0x80) != 0);  // masked
        const std::size_t length = b1 & 0x7F;
        const std::string key = wire.substr(at + 2, 4);
        std::string payload = wire.substr(at + 6, length);
        for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ key[i % 4]);
        CHECK(payload == ((b0 & 0x0F) == 0xA ? "p" : "hello"));
        keys.push_back(key);
        at += 6 + length;
    }
    CHECK(keys[0] != keys[1]);
    CHECK(keys[1] != keys[2]);
}

TEST_CASE("client: a whole conversation with a Starling app") {
    starling::app app;
    std::atomic<int> close_seen{0};
    app.websocket("/json", [&](starling::websocket& ws) -> starling::task<> {
        co_await ws.send_text(std::string(ws.headers().get("X-Token").value_or("none")));
        try {
            for (;;) {
                auto doc = co_await ws.receive_json();
                co_await ws.send_json("doubled", doc.get<std::int64_t>("n").value_or(0) * 2, "path", std::string(ws.path()));
            }
        } catch (const starling::websocket_disconnect& e) {
            close_seen = e.code();
        }
    });
    const std::uint16_t port = app.start_in_background();
    const std::string base = "ws://127.0.0.1:" + std::to_string(port);

    run_client([&](asio::io_context&) -> starling::task<> {
        starling::client_options options;
        options.headers.add("X-Token", "abc");
        auto ws = co_await starling::connect(base + "/json?x=1", options);
        CHECK(ws.subprotocol().empty());
        CHECK(ws.response_headers().has_token("Upgrade", "websocket"));
        CHECK(co_await ws.receive_text() == "abc");
        co_await ws.send_json("n", 21);
        auto reply = co_await ws.receive_json();
        CHECK(reply.get<std::int64_t>("doubled") == 42);
        CHECK(reply.get<std::string>("path") == "/json");
        co_await ws.close();
        CHECK(!ws.is_open());
        co_await ws.wait_closed();
    });
    app.stop();
    CHECK(close_seen == 1000);
}

TEST_CASE("client: refusals and timeouts say what failed") {
    starling::app app;
    app.websocket("/here", [](starling::websocket& ws) -> starling::task<> { co_await ws.receive(); });
    const std::uint16_t port = app.start_in_background();
    const std::string base = "ws://127.0.0.1:" + std::to_string(port);

    run_client([&](asio::io_context& io) -> starling::task<> {
        try {
            co_await starling::connect(base + "/not-here");
            FAIL("connected to an endpoint that does not exist");
        } catch (const starling::connect_error& e) {
            CHECK(std::string(e.what()) == "handshake failed: status 404");
            CHECK(e.status() == 404);
            CHECK(!e.body().empty());
        }

        starling::client_options own_upgrade;
        own_upgrade.headers.add("Upgrade", "h2c");
        try {
            co_await starling::connect(base + "/here", own_upgrade);
            FAIL("an extra Upgrade field was sent");
        } catch (const starling::connect_error& e) {
            CHECK(std::string(e.what()).find("sets Upgrade itself") != std::string::npos);
        }

        // A server that accepts TCP and never answers the handshake.
        asio::ip::tcp::acceptor silent(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        asio::ip::tcp::socket held(io);
        silent.async_accept(held, [](std::error_code) {});
        starling::client_options quick;
        quick.handshake_timeout = 100ms;
        const auto began = std::chrono::steady_clock::now();
        try {
            co_await starling::connect("ws://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/", quick);
            FAIL("a silent server completed a handshake");
        } catch (const starling::connect_error& e) {
            CHECK(std::string(e.what()) == "handshake failed: no response within 100 ms");
        }
        CHECK(std::chrono::steady_clock::now() - began < 5s);
    });
    app.stop();
}
