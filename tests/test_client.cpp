// Tests of the client (starling/client.hpp): its URL parsing, the request it builds and the checks
// on the response (pure), the masking of what it queues, and whole connections to a Starling app on
// loopback: the message API both ways, extra headers, a refusal's status and body, the handshake
// timeout against a server that never answers, and the close code the server sees. Compression:
// the offer, every answer a client must accept or refuse (canned responses), and whole compressed
// connections to a Starling app, with and without context takeover, up to a reply that inflates
// past the client's limit (1009).
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

// ---- permessage-deflate: the offer, the answers a client holds it to, and whole connections ----

namespace {

const std::string deflate_key = "dGhlIHNhbXBsZSBub25jZQ==";
const std::string accepted_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

/// The check of a 101 carrying `extension_lines` (whole field lines) against `offer` (null: none).
starling::upgrade_check answered(const std::string& extension_lines, const starling::client_compression_options* offer) {
    return starling::check_upgrade_response(response_of(accepted_head + extension_lines + "\r\n"), deflate_key, {}, offer);
}

std::string field(std::string_view value) { return "Sec-WebSocket-Extensions: " + std::string(value) + "\r\n"; }

/// Compressible text of `size` bytes that is not one repeated byte.
std::string prose(std::size_t size) {
    std::string out;
    for (std::size_t i = 0; out.size() < size; ++i) out += "starling " + std::to_string(i % 97) + " murmuration; ";
    out.resize(size);
    return out;
}

}  // namespace

TEST_CASE("client compression: the offer") {
    const starling::client_compression_options defaults;
    CHECK(defaults.enabled);
    // What browsers and Python's websockets client offer.
    CHECK(starling::deflate_offer_field(defaults) == "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    starling::client_compression_options all = defaults;
    all.client_no_context_takeover = true;
    all.server_no_context_takeover = true;
    all.server_max_window_bits = 10;
    all.client_max_window_bits = 12;
    CHECK(starling::deflate_offer_field(all) ==
          "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
          "server_max_window_bits=10; client_max_window_bits=12\r\n");

    std::string why;
    const auto url = starling::parse_websocket_url("ws://h/", why);
    REQUIRE(url);
    const std::string request = starling::make_upgrade_request(*url, "a2V5", {}, {}, starling::deflate_offer_field(defaults));
    CHECK(request.find("\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n") != std::string::npos);
    CHECK(request.ends_with("\r\n\r\n"));

    CHECK(starling::client_compression_problem(defaults).empty());
    starling::client_compression_options eight = defaults;
    eight.client_max_window_bits = 8;
    CHECK(starling::client_compression_problem(eight) == "client_max_window_bits must be 9 to 15");
    eight.enabled = false;  // nothing is offered, so nothing is wrong
    CHECK(starling::client_compression_problem(eight).empty());
    starling::client_compression_options wide = defaults;
    wide.server_max_window_bits = 16;
    CHECK(starling::client_compression_problem(wide) == "server_max_window_bits must be 8 to 15");
}

TEST_CASE("client compression: the answers a client accepts") {
    const starling::client_compression_options offer;
    // Declined: no field, or an empty one.
    auto none = answered("", &offer);
    CHECK(none.ok());
    CHECK(!none.compression);
    CHECK(answered(field(""), &offer).ok());

    // Starling's own default answer.
    auto starling_default = answered(field("permessage-deflate; server_no_context_takeover; client_no_context_takeover"), &offer);
    REQUIRE(starling_default.ok());
    REQUIRE(starling_default.compression);
    CHECK(starling_default.compression->server_no_context_takeover);
    CHECK(starling_default.compression->client_no_context_takeover);
    CHECK(starling_default.compression->server_max_window_bits == 15);
    CHECK(starling_default.compression->client_max_window_bits == 15);

    // Python websockets' server default; parameter names and values compared exactly, spaces aside.
    auto python = answered(field("permessage-deflate;server_max_window_bits=12 ; client_max_window_bits=\"12\""), &offer);
    REQUIRE(python.ok());
    REQUIRE(python.compression);
    CHECK(!python.compression->server_no_context_takeover);
    CHECK(!python.compression->client_no_context_takeover);
    CHECK(python.compression->server_max_window_bits == 12);
    CHECK(python.compression->client_max_window_bits == 12);

    // A bare permessage-deflate: context takeover both ways, full windows.
    auto bare = answered(field("permessage-deflate"), &offer);
    REQUIRE(bare.compression);
    CHECK(!bare.compression->client_no_context_takeover);

    // Our own client_no_context_takeover binds us even when the answer leaves it out; a window we
    // offered may be answered with less.
    starling::client_compression_options modest = offer;
    modest.client_no_context_takeover = true;
    modest.client_max_window_bits = 11;
    modest.server_no_context_takeover = true;
    modest.server_max_window_bits = 10;
    auto kept = answered(field("permessage-deflate; server_no_context_takeover; server_max_window_bits=9"), &modest);
    REQUIRE(kept.ok());
    REQUIRE(kept.compression);
    CHECK(kept.compression->client_no_context_takeover);
    CHECK(kept.compression->client_max_window_bits == 11);
    CHECK(kept.compression->server_max_window_bits == 9);
    auto smaller = answered(field("permessage-deflate; server_no_context_takeover; client_max_window_bits=8"), &modest);
    REQUIRE(smaller.compression);
    CHECK(smaller.compression->client_max_window_bits == 8);  // we then send uncompressed
}

TEST_CASE("client compression: answers that fail the handshake") {
    const starling::client_compression_options offer;
    const auto error = [&](const std::string& lines, const starling::client_compression_options* o) {
        const auto check = answered(lines, o);
        CHECK(!check.compression);
        return check.error;
    };
    // Nothing offered, or something else chosen.
    CHECK(error(field("permessage-deflate"), nullptr) ==
          "handshake failed: the server chose an extension that was not offered: permessage-deflate");
    CHECK(error(field("x-webkit-deflate-frame"), &offer) ==
          "handshake failed: the server chose an extension that was not offered: x-webkit-deflate-frame");
    CHECK(error(field("permessage-deflate, x-foo"), &offer) ==
          "handshake failed: the server chose an extension that was not offered: permessage-deflate, x-foo");
    // Two answers, in one field or two.
    CHECK(error(field("permessage-deflate, permessage-deflate"), &offer) ==
          "handshake failed: the server answered permessage-deflate twice");
    CHECK(error(field("permessage-deflate") + field("permessage-deflate; server_no_context_takeover"), &offer) ==
          "handshake failed: the server answered permessage-deflate twice");
    // Windows: a value is needed, 8 to 15, written plainly.
    CHECK(error(field("permessage-deflate; server_max_window_bits=7"), &offer) ==
          "handshake failed: server_max_window_bits=7 is not 8 to 15");
    CHECK(error(field("permessage-deflate; server_max_window_bits=16"), &offer) ==
          "handshake failed: server_max_window_bits=16 is not 8 to 15");
    CHECK(error(field("permessage-deflate; server_max_window_bits=09"), &offer) ==
          "handshake failed: server_max_window_bits=09 is not 8 to 15");
    CHECK(error(field("permessage-deflate; server_max_window_bits"), &offer) ==
          "handshake failed: server_max_window_bits needs a value in a response");
    CHECK(error(field("permessage-deflate; client_max_window_bits"), &offer) ==
          "handshake failed: client_max_window_bits needs a value in a response");
    // More than offered.
    starling::client_compression_options narrow = offer;
    narrow.server_max_window_bits = 10;
    narrow.client_max_window_bits = 10;
    CHECK(error(field("permessage-deflate; server_max_window_bits=12"), &narrow) ==
          "handshake failed: server_max_window_bits=12 is more than was offered");
    CHECK(error(field("permessage-deflate; client_max_window_bits=11"), &narrow) ==
          "handshake failed: client_max_window_bits=11 is more than was offered");
    // Repeated, valued where none is allowed, unknown.
    CHECK(error(field("permessage-deflate; server_no_context_takeover; server_no_context_takeover"), &offer) ==
          "handshake failed: server_no_context_takeover given twice");
    CHECK(error(field("permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"), &offer) ==
          "handshake failed: client_max_window_bits given twice");
    CHECK(error(field("permessage-deflate; client_no_context_takeover=1"), &offer) ==
          "handshake failed: client_no_context_takeover takes no value");
    CHECK(error(field("permessage-deflate; mem_level=8"), &offer) ==
          "handshake failed: permessage-deflate parameter that was not offered: mem_level");
    CHECK(error(field("permessage-deflate; server_max_window_bits=\"1 2\""), &offer) ==
          "handshake failed: malformed permessage-deflate response: permessage-deflate; server_max_window_bits=\"1 2\"");
    // Not offered, then answered.
    starling::client_compression_options quiet = offer;
    quiet.offer_client_max_window_bits = false;
    CHECK(starling::deflate_offer_field(quiet) == "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    CHECK(error(field("permessage-deflate; client_max_window_bits=10"), &quiet) ==
          "handshake failed: client_max_window_bits was not offered");
    CHECK(answered(field("permessage-deflate; server_max_window_bits=10"), &quiet).ok());
    // Asked for and not granted.
    starling::client_compression_options strict = offer;
    strict.server_no_context_takeover = true;
    CHECK(error(field("permessage-deflate; client_no_context_takeover"), &strict) ==
          "handshake failed: the server did not agree to server_no_context_takeover");
}

TEST_CASE("client compression: with a Starling app, both ways, with and without context takeover") {
    starling::app app;
    auto echo = [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text() && m.data == "bomb") {
                co_await ws.send_text(std::string(1024 * 1024, 'a'));  // about 1 KiB compressed
                continue;
            }
            if (m.is_text())
                co_await ws.send_text(std::move(m.data));
            else
                co_await ws.send_bytes(std::move(m.data));
        }
    };
    app.websocket("/echo", echo);
    starling::websocket_options keep;
    keep.compression.server_context_takeover = true;
    keep.compression.client_context_takeover = true;
    app.websocket("/takeover", echo).options(keep);
    const std::uint16_t port = app.start_in_background();
    const std::string base = "ws://127.0.0.1:" + std::to_string(port);

    run_client([&](asio::io_context&) -> starling::task<> {
        for (const char* path : {"/echo", "/takeover"}) {
            CAPTURE(path);
            auto ws = co_await starling::connect(base + path);
            const auto extensions = ws.response_headers().get("Sec-WebSocket-Extensions");
            REQUIRE(extensions);
            CHECK(extensions->starts_with("permessage-deflate"));
            for (std::size_t size : {10u, 300u, 5000u, 70000u, 5000u}) {
                const std::string text = prose(size);
                co_await ws.send_text(text);
                CHECK(co_await ws.receive_text() == text);
            }
            co_await ws.send_bytes(prose(4000));
            const starling::message reply = co_await ws.receive();
            CHECK(reply.is_binary());
            CHECK(reply.data == prose(4000));
            co_await ws.close();
            co_await ws.wait_closed();
        }

        // Off: nothing offered, nothing answered.
        starling::client_options plain;
        plain.compression.enabled = false;
        auto ws = co_await starling::connect(base + "/echo", plain);
        CHECK(!ws.response_headers().get("Sec-WebSocket-Extensions"));
        co_await ws.send_text(prose(5000));
        CHECK(co_await ws.receive_text() == prose(5000));
        co_await ws.close();
        co_await ws.wait_closed();

        // A reply that inflates past the client's limit: the client closes with 1009, having inflated
        // no more than the limit.
        starling::client_options small;
        small.websocket.max_message_size = 64 * 1024;
        auto bombed = co_await starling::connect(base + "/echo", small);
        co_await bombed.send_text("bomb");
        try {
            co_await bombed.receive();
            FAIL("a reply over the limit was delivered");
        } catch (const starling::websocket_disconnect& e) {
            CHECK(e.code() == 1009);
        }
        co_await bombed.wait_closed();

        // Bad settings are refused before anything is dialled.
        starling::client_options bad;
        bad.compression.client_max_window_bits = 8;
        try {
            co_await starling::connect(base + "/echo", bad);
            FAIL("an 8-bit compressor window was offered");
        } catch (const starling::connect_error& e) {
            CHECK(std::string(e.what()) == "compression: client_max_window_bits must be 9 to 15");
        }
    });
    const auto metrics = app.metrics();
    app.stop();
    // The server's echoes went compressed: fewer payload bytes out than it received, inflated.
    for (const auto& e : metrics.endpoints) {
        CAPTURE(e.endpoint);
        CHECK(e.bytes_out * 2 < e.bytes_in);
    }
}
