// Tests of starling/redis.hpp without a Redis server: the protocol (RESP) the client writes and
// reads, and a backplane whose Redis is unreachable, which counts publishes as dropped instead of
// waiting or failing. tests/integration/test_backplane.py runs it against a real redis-server.
#include <starling/redis.hpp>

#include <doctest/doctest.h>

#include <asio/ip/tcp.hpp>  // a port nobody listens on

#include <cstddef>  // std::size_t
#include <memory>   // std::make_shared
#include <string>   // std::string wire bytes

namespace resp = starling::detail::resp;

TEST_CASE("commands are arrays of bulk strings") {
    std::string out;
    resp::append_command(out, {"PUBLISH", "ch", ""});
    CHECK(out == "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n");
    resp::append_command(out, {"SUBSCRIBE", std::string_view("a\r\nb", 4)});  // binary-safe
    CHECK(out.ends_with("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\na\r\nb\r\n"));
}

TEST_CASE("replies parse whole, and a partial one waits for more without moving") {
    const std::string wire = ":3\r\n+OK\r\n-ERR no\r\n$-1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\nl\r\n";
    std::size_t pos = 0;
    auto v = resp::parse(wire, pos);
    REQUIRE(v);
    CHECK(v->type == resp::value::kind::integer);
    CHECK(v->integer == 3);
    v = resp::parse(wire, pos);
    CHECK((v && v->type == resp::value::kind::simple && v->text == "OK"));
    v = resp::parse(wire, pos);
    CHECK((v && v->type == resp::value::kind::error && v->text == "ERR no"));
    v = resp::parse(wire, pos);
    CHECK((v && v->type == resp::value::kind::nil));
    v = resp::parse(wire, pos);
    REQUIRE(v);
    REQUIRE(v->items.size() == 3);
    CHECK(v->items[2].text == "he\r\nl");
    CHECK(pos == wire.size());

    // Every cut short of the end is "not yet", and leaves the position alone.
    const std::string message = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n";
    for (std::size_t cut = 0; cut < message.size(); ++cut) {
        std::size_t at = 0;
        CHECK_FALSE(resp::parse(std::string_view(message).substr(0, cut), at));
        CHECK(at == 0);
    }
}

TEST_CASE("what is not RESP is an error, not a guess") {
    for (const std::string bad : {"?x\r\n", ":12a\r\n", "$3\r\nabcd\r\n", "$99999999999\r\n"}) {
        std::size_t pos = 0;
        CHECK_THROWS_AS(resp::parse(bad, pos), resp::protocol_error);
    }
    std::string deep;
    for (int i = 0; i < 20; ++i) deep += "*1\r\n";
    deep += ":1\r\n";
    std::size_t pos = 0;
    CHECK_THROWS_AS(resp::parse(deep, pos), resp::protocol_error);
}

TEST_CASE("with Redis unreachable, publishes are dropped and counted, and stop() returns") {
    // A port nobody listens on: bound, then closed.
    std::uint16_t port = 0;
    {
        asio::io_context io;
        asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = a.local_endpoint().port();
    }
    starling::redis_options options;
    options.port = port;
    options.reconnect_min = std::chrono::milliseconds(5);
    options.reconnect_max = std::chrono::milliseconds(20);
    int lines = 0;
    options.log = [&lines](starling::log_level, std::string_view) { ++lines; };  // the backplane's thread only
    starling::redis_backplane redis(options);
    redis.start([](std::string_view, std::string_view) { FAIL("nothing can arrive"); });
    redis.subscribe("starling:topic:a");
    for (int i = 0; i < 5; ++i) redis.publish("starling:topic:a", "x");
    const starling::backplane_stats s = redis.stats();
    CHECK_FALSE(s.connected);
    CHECK(s.dropped == 5);
    CHECK(s.published == 0);
    redis.stop();
    CHECK(lines <= 2);  // one "lost" line per link, not one per attempt
}
