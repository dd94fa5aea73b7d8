#include <starling/api/json.hpp>

#include <doctest/doctest.h>

#include <starling/app.hpp>  // a handler using the websocket's JSON forms, registered on an app

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;

namespace {

starling::json_document parse(std::string_view text) {
    simdjson::dom::parser parser;
    return starling::json_document::parse(parser, text);
}

// What the functions under test hand to a send, kept for the checks. A coroutine taking the text by
// value, as websocket::send_text does, so the calls below are made inside real co_await expressions.
struct sink {
    std::vector<std::string> sent;
    starling::task<> send(std::string text) {
        sent.push_back(std::move(text));
        co_return;
    }
    template <class T>
    starling::task<> send_json(const T& value) {
        return send(starling::to_json(value));
    }
};

void run(starling::task<> work) {
    asio::io_context context;
    auto done = asio::co_spawn(context, std::move(work), asio::use_future);
    context.run();
    done.get();  // rethrows what the coroutine threw
}

// The websocket's own forms inside co_await, as a handler writes them. Registered, not run (that is
// tests/integration/test_coroutine_api.py's /json_forms): compiling it is the point, with g++ 12 and
// -Werror. The same sends written `send_json(starling::json_object{{"type", "move"}})` do not compile
// with g++ 12 (tests/compile_fail/braced_json_in_co_await.cpp).
starling::task<> handler_with_every_json_form(starling::websocket& ws) {
    co_await ws.send_json("type", "move", "x", 3, "ok", true);
    co_await ws.send_json(starling::json_object_builder().add("type", "hello").add("id", ws.id()));
    const std::optional<starling::json_document> doc = co_await ws.receive_json_for(std::chrono::seconds(1));
    if (!doc) co_return;
    co_await ws.send_json("n", doc->get<int>("n"), "name", doc->get_or("name", "anonymous"));
}

}  // namespace

TEST_CASE("to_json_object: keys and values alternating, values of any type to_json takes") {
    CHECK(starling::to_json_object() == "{}");
    CHECK(starling::to_json_object("type", "move", "x", 3, "ok", true) == R"({"type":"move","x":3,"ok":true})");
    const std::string name = "ann";
    const std::string_view key = "who";
    const std::optional<int> none;
    const std::vector<int> list{1, 2};
    const std::map<std::string, double> map{{"a", 1.5}};
    CHECK(starling::to_json_object(key, name, "none", none, "null", nullptr, "list", list, "map", map, "d", 2.0) ==
          R"({"who":"ann","none":null,"null":null,"list":[1,2],"map":{"a":1.5},"d":2.0})");
    CHECK(starling::to_json_object("raw", starling::raw_json{"[true]"}, "obj",
                                   starling::json_object{{"k", -1}}) == R"({"raw":[true],"obj":{"k":-1}})");
}

TEST_CASE("keys and values are escaped: quotes, backslashes, control characters; UTF-8 passes through") {
    CHECK(starling::to_json_object("say \"hi\"", "a\\b") == R"({"say \"hi\"":"a\\b"})");
    CHECK(starling::to_json_object("ctl", "\n\r\t\b\f"s + '\x01' + '\x1f' + '\0') ==
          R"({"ctl":"\n\r\t\b\f\u0001\u001f\u0000"})");
    CHECK(starling::to_json_object("\xc3\xa9t\xc3\xa9", "\xe2\x82\xac \xf0\x9f\x90\xa6") ==
          "{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x90\xa6\"}");
    CHECK(starling::to_json_object("del", "\x7f") == "{\"del\":\"\x7f\"}");  // not a control character in JSON
    // Whatever is written reads back as what was given.
    const std::string tricky = "q\" b\\ n\n z"s + '\0' + " \xc3\xa9";
    const starling::json_document doc = parse(starling::to_json_object(tricky, tricky));
    CHECK(doc.get<std::string>(tricky) == tricky);
}

TEST_CASE("json_object_builder: a complete object after every add, on a named builder or a temporary") {
    starling::json_object_builder reply;
    CHECK(starling::to_json(reply) == "{}");
    reply.add("type", "move");
    CHECK(reply.text == R"({"type":"move"})");
    const bool hit = true;
    if (hit) reply.add("target", std::optional<int>(4)).add("tab\t", "x");
    CHECK(reply.text == R"({"type":"move","target":4,"tab\t":"x"})");
    CHECK(starling::to_json(starling::json_object_builder().add("a", 1).add("b", std::vector<bool>{true})) ==
          R"({"a":1,"b":[true]})");
    // Nested, and inside the other forms.
    CHECK(starling::to_json_object("inner", reply) == R"({"inner":{"type":"move","target":4,"tab\t":"x"}})");
    CHECK(starling::to_json(starling::json_object_builder().add("empty", starling::json_object_builder())) ==
          R"({"empty":{}})");
}

TEST_CASE("the new forms inside co_await: sent text is whole and right (g++ 12 keeps the temporaries alive)") {
    sink out;
    run([&]() -> starling::task<> {
        co_await out.send(starling::to_json_object("type", "move", "x", 3, "ok", true));
        co_await out.send_json(starling::json_object_builder().add("name", std::string(40, 'n')).add("n", 1));
        const std::string who = "player one with a name too long for the small-string buffer";
        co_await out.send(starling::to_json_object("who", who, "again", std::string(who)));
    }());
    REQUIRE(out.sent.size() == 3);
    CHECK(out.sent[0] == R"({"type":"move","x":3,"ok":true})");
    CHECK(out.sent[1] == R"({"name":")" + std::string(40, 'n') + R"(","n":1})");
    CHECK(out.sent[2] == R"({"who":"player one with a name too long for the small-string buffer",)"
                         R"("again":"player one with a name too long for the small-string buffer"})");
}

TEST_CASE("a handler using the websocket's JSON forms inside co_await compiles and registers") {
    starling::app app;
    auto endpoint = app.websocket("/json_forms", handler_with_every_json_form);
    CHECK(endpoint.connection_count() == 0);
}

TEST_CASE("get<T>: the field as T when it is there and of that type") {
    const auto doc = parse(R"({"n": 42, "big": 5000000000, "neg": -3, "pi": 3.25, "name": "ann", "ok": true,
                               "none": null, "three": 3.0, "huge": 18446744073709551615,
                               "list": [10, {"name": "bo"}], "player": {"score": 7, "tags": ["a"]}})");
    CHECK(doc.get<int>("n") == 42);
    CHECK(doc.get<std::int64_t>("big") == 5000000000);
    CHECK(doc.get<std::uint64_t>("huge") == std::numeric_limits<std::uint64_t>::max());
    CHECK(doc.get<int>("neg") == -3);
    CHECK(doc.get<double>("pi") == 3.25);
    CHECK(doc.get<float>("pi") == 3.25f);
    CHECK(doc.get<double>("n") == 42.0);  // an integer is a number too
    CHECK(doc.get<std::string>("name") == "ann");
    CHECK(doc.get<std::string_view>("name") == "ann");
    CHECK(doc.get<bool>("ok") == true);
    CHECK(doc.get<simdjson::dom::element>("none").has_value());
    CHECK(doc.get<simdjson::dom::array>("list").has_value());
    CHECK(doc.get<simdjson::dom::object>("player").has_value());
    // Nested: keys into objects, indexes into arrays.
    CHECK(doc.get<int>("player", "score") == 7);
    CHECK(doc.get<std::string>("player", "tags", 0) == "a");
    CHECK(doc.get<int>("list", 0) == 10);
    CHECK(doc.get<std::string>("list", 1u, "name") == "bo");
    CHECK(doc.get<std::string>("list", std::size_t{1}, std::string("name")) == "bo");
    // The whole document, with no path; and an element of it, with the free function.
    CHECK(doc.get<simdjson::dom::object>().has_value());
    CHECK(starling::json_get<int>(doc["player"].value(), "score") == 7);
}

TEST_CASE("get<T>: nothing, never an exception, when the field is missing or of another type") {
    const auto doc = parse(R"({"n": 42, "big": 5000000000, "neg": -3, "pi": 3.25, "name": "ann", "ok": true,
                               "none": null, "three": 3.0, "list": [10], "player": {"score": 7}})");
    CHECK_FALSE(doc.get<int>("missing"));
    CHECK_FALSE(doc.get<int>("name"));
    CHECK_FALSE(doc.get<int>("pi"));
    CHECK_FALSE(doc.get<int>("three"));  // 3.0 is written as a double: not an integer
    CHECK_FALSE(doc.get<int>("none"));
    CHECK_FALSE(doc.get<int>("ok"));
    CHECK_FALSE(doc.get<std::string>("n"));
    CHECK_FALSE(doc.get<std::string>("none"));
    CHECK_FALSE(doc.get<bool>("n"));
    CHECK_FALSE(doc.get<double>("name"));
    CHECK_FALSE(doc.get<simdjson::dom::array>("player"));
    // Out of the type's range.
    CHECK_FALSE(doc.get<int>("big"));
    CHECK_FALSE(doc.get<std::uint8_t>("big"));
    CHECK(doc.get<std::uint8_t>("n") == 42);
    CHECK_FALSE(doc.get<unsigned>("neg"));
    CHECK_FALSE(doc.get<std::uint64_t>("neg"));
    // Paths that go nowhere.
    CHECK_FALSE(doc.get<int>("player", "missing"));
    CHECK_FALSE(doc.get<int>("player", "score", "deeper"));
    CHECK_FALSE(doc.get<int>("list", 1));
    CHECK_FALSE(doc.get<int>("list", -1));
    CHECK_FALSE(doc.get<int>("list", "0"));  // a key into an array
    CHECK_FALSE(doc.get<int>("player", 0));  // an index into an object
    CHECK_FALSE(doc.get<int>("n", "x"));
    // A root that is no object has no fields.
    CHECK_FALSE(parse("[1, 2]").get<int>("n"));
    CHECK(parse("[1, 2]").get<int>(1) == 2);
    CHECK_FALSE(parse("17").get<int>("n"));
    CHECK(parse("17").get<int>() == 17);
    // A document never parsed, or moved from, has none either.
    CHECK_FALSE(starling::json_document().get<int>("n"));
    auto moved_from = parse(R"({"n": 1})");
    const starling::json_document moved = std::move(moved_from);
    CHECK(moved.get<int>("n") == 1);
    CHECK_FALSE(moved_from.get<int>("n"));  // NOLINT(bugprone-use-after-move): the point of the check
}

TEST_CASE("get_or: the field, or the fallback's value and type") {
    const auto doc = parse(R"({"n": 42, "name": "ann", "ok": false, "pi": 3.5})");
    CHECK(doc.get_or("n", 0) == 42);
    CHECK(doc.get_or("missing", -1) == -1);
    CHECK(doc.get_or("name", 0) == 0);
    CHECK(doc.get_or("ok", true) == false);
    CHECK(doc.get_or("pi", 0.0) == 3.5);
    const std::string name = doc.get_or("name", "anonymous");  // a text fallback gives a std::string
    CHECK(name == "ann");
    CHECK(doc.get_or("missing", "anonymous") == "anonymous");
    CHECK(doc.get_or("missing", std::string("x")) == "x");
    CHECK(doc.get_or("name", std::string_view("x")) == "ann");
}

TEST_CASE("parse_optional: what receive_json_for does with receive_text_for's result") {
    simdjson::dom::parser parser;
    CHECK_FALSE(starling::json_document::parse_optional(parser, std::nullopt));
    const auto doc = starling::json_document::parse_optional(parser, std::optional<std::string>(R"({"n": 5})"));
    REQUIRE(doc);
    CHECK(doc->get<int>("n") == 5);
    CHECK_THROWS_AS(starling::json_document::parse_optional(parser, std::optional<std::string>("{nope")),
                    starling::invalid_json);
}
