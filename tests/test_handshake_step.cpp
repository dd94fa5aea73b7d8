// The pure parts of the handshake step: origin patterns, subprotocol choice, path templates, cookies,
// typed header / cookie / path parameters (the query parameters' rules), the state slot and the
// message rate limiter's token buckets.
#include <starling/api/admission.hpp>
#include <starling/api/connection_state.hpp>
#include <starling/api/params.hpp>
#include <starling/http/cookies.hpp>
#include <starling/http/origin.hpp>
#include <starling/http/path_template.hpp>
#include <starling/protocol/handshake.hpp>
#include <starling/protocol/subprotocol.hpp>
#include <starling/session/rate_limiter.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

starling::http::headers fields(std::initializer_list<std::pair<const char*, const char*>> list) {
    starling::http::headers h;
    for (const auto& [name, value] : list) h.add(name, value);
    return h;
}

}  // namespace

TEST_CASE("origin patterns: exact origins, subdomain wildcards, any port, no scheme, '*'") {
    using starling::http::origin_matches;
    CHECK(origin_matches("https://example.com", "https://example.com"));
    CHECK(origin_matches("https://example.com", "HTTPS://EXAMPLE.COM"));
    CHECK_FALSE(origin_matches("https://example.com", "http://example.com"));
    CHECK_FALSE(origin_matches("https://example.com", "https://example.com:8443"));
    CHECK_FALSE(origin_matches("https://example.com", "https://www.example.com"));
    CHECK(origin_matches("https://*.example.com", "https://a.example.com"));
    CHECK(origin_matches("https://*.example.com", "https://a.b.example.com"));
    CHECK_FALSE(origin_matches("https://*.example.com", "https://example.com"));
    CHECK_FALSE(origin_matches("https://*.example.com", "https://evilexample.com"));
    CHECK_FALSE(origin_matches("https://*.example.com", "https://a.example.com.evil.test"));
    CHECK_FALSE(origin_matches("https://*.example.com", "https://a.example.com:444"));
    CHECK_FALSE(origin_matches("https://*.example.com", "http://a.example.com"));
    CHECK(origin_matches("*.example.com", "http://a.example.com"));
    CHECK(origin_matches("example.com:8443", "wss://example.com:8443"));
    CHECK(origin_matches("http://localhost:*", "http://localhost:5173"));
    CHECK(origin_matches("http://localhost:*", "http://localhost"));
    CHECK_FALSE(origin_matches("http://localhost:*", "http://localhost.evil.test:80"));
    CHECK(origin_matches("http://[::1]:*", "http://[::1]:8080"));
    CHECK(origin_matches("https://*.example.com:*", "https://a.example.com:444"));
    CHECK(origin_matches("*", "http://anything.test"));
    CHECK(origin_matches("null", "null"));
    CHECK_FALSE(origin_matches("https://example.com", "null"));
    const std::vector<std::string> list{"https://app.test", "https://*.example.com"};
    CHECK(starling::http::origin_allowed(list, "https://x.example.com"));
    CHECK_FALSE(starling::http::origin_allowed(list, "https://other.test"));
}

TEST_CASE("subprotocols: the endpoint's first that the client offered, across fields; none echoed") {
    const std::vector<std::string> supported{"v2.game", "v1.game"};
    auto choice = starling::choose_subprotocol(fields({{"Sec-WebSocket-Protocol", "v1.game, v2.game"}}), supported);
    CHECK(choice.offered);
    CHECK(choice.chosen == 0u);
    choice = starling::choose_subprotocol(fields({{"Sec-WebSocket-Protocol", "x"}, {"Sec-WebSocket-Protocol", " v1.game "}}), supported);
    CHECK(choice.chosen == 1u);
    choice = starling::choose_subprotocol(fields({{"Sec-WebSocket-Protocol", "V2.GAME, v1.gamex"}}), supported);
    CHECK(choice.offered);
    CHECK_FALSE(choice.chosen);  // names are case-sensitive, and whole
    choice = starling::choose_subprotocol(fields({{"Host", "x"}}), supported);
    CHECK_FALSE(choice.offered);
    CHECK_FALSE(choice.chosen);
    choice = starling::choose_subprotocol(fields({{"Sec-WebSocket-Protocol", ""}}), supported);
    CHECK_FALSE(choice.offered);
    CHECK(starling::unsupported_subprotocol_message(supported) == "Unsupported subprotocol: this endpoint speaks v2.game, v1.game");
}

TEST_CASE("the 101 carries the chosen subprotocol's line after the standard ones") {
    CHECK(starling::make_accept_response("dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: chat.v1\r\n") ==
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat.v1\r\n\r\n");
}

TEST_CASE("path templates: whole named segments, as many segments, literal ones equal") {
    using namespace starling::http;
    CHECK(is_path_template("/rooms/{room}/ws"));
    CHECK_FALSE(is_path_template("/rooms/ws"));
    CHECK(matches_path_template("/rooms/{room}/ws", "/rooms/lobby/ws"));
    CHECK_FALSE(matches_path_template("/rooms/{room}/ws", "/rooms//ws"));
    CHECK_FALSE(matches_path_template("/rooms/{room}/ws", "/rooms/ws"));
    CHECK_FALSE(matches_path_template("/rooms/{room}/ws", "/rooms/a/b/ws"));
    CHECK_FALSE(matches_path_template("/rooms/{room}/ws", "/rooms/a/ws/"));
    CHECK_FALSE(matches_path_template("/rooms/{room}/ws", "/Rooms/a/ws"));
    CHECK(matches_path_template("/{a}/{b}", "/1/2"));
    CHECK(path_segment("/rooms/{room}/ws", "/rooms/caf%C3%A9/ws", "room") == "caf%C3%A9");
    CHECK(path_segment("/{a}/{b}", "/1/2", "b") == "2");
    CHECK_FALSE(path_segment("/{a}/{b}", "/1/2", "c"));
    CHECK_FALSE(path_segment("/{a}/{b}", "/1", "a"));
    CHECK(path_template_has("/rooms/{room}/ws", "room"));
    CHECK_FALSE(path_template_has("/rooms/{room}/ws", "roo"));
    CHECK(path_template_problem("/rooms/{room}/ws").empty());
    CHECK(path_template_problem("/plain/path").empty());
    CHECK(path_template_problem("/rooms/x{room}") == "a path parameter must be a whole, named segment, as in /rooms/{room}: \"/rooms/x{room}\"");
    CHECK(path_template_problem("/rooms/{}") == "a path parameter must be a whole, named segment, as in /rooms/{room}: \"/rooms/{}\"");
    CHECK(path_template_problem("/rooms/{a b}") != "");
    CHECK(path_template_problem("/{a}/{a}") == "the path parameter {a} appears twice: \"/{a}/{a}\"");
}

TEST_CASE("cookies: pairs of every Cookie field, by exact name, quotes removed") {
    const auto h = fields({{"Cookie", "theme=dark; session=abc; Session=upper"}, {"Cookie", "session=second;flag; q=\"x y\""}});
    CHECK(starling::http::find_cookie(h, "session") == "abc");
    CHECK(starling::http::find_cookie(h, "Session") == "upper");
    CHECK(starling::http::find_cookie(h, "q") == "x y");
    CHECK_FALSE(starling::http::find_cookie(h, "flag"));  // no '=': not a pair
    CHECK_FALSE(starling::http::find_cookie(h, "missing"));
    CHECK(starling::http::find_cookies(h, "session") == std::vector<std::string_view>{"abc", "second"});
    CHECK(starling::http::find_cookie(fields({{"Cookie", "a=; b=2"}}), "a") == "");
}

TEST_CASE("typed headers, cookies and path segments follow the query parameters' rules and messages") {
    const auto h = fields({{"x-api-key", "k1"}, {"X-Count", "12"}, {"X-Count", "13"}, {"X-Bad", "twelve"},
                           {"Cookie", "session=s1; n=7"}});
    const starling::query_params none;
    const starling::detail::request_values values{&none, &h, "/items/42/caf%C3%A9+x", "/items/{id}/{name}"};
    starling::parameter_error error;

    CHECK(**starling::header<"X-API-Key", std::string>::resolve(values, error) == "k1");
    CHECK(**starling::header<"X-Count", int>::resolve(values, error) == 12);  // the first of a repeated header
    CHECK(**starling::header<"X-Count", std::vector<int>>::resolve(values, error) == std::vector<int>{12, 13});
    CHECK(**starling::header<"X-None", std::string, "dflt">::resolve(values, error) == "dflt");
    CHECK_FALSE(**starling::header<"X-None", std::optional<int>>::resolve(values, error));
    CHECK_FALSE(starling::header<"X-None", std::string>::resolve(values, error));
    CHECK(error.message == "Missing required parameter: 'X-None'");
    CHECK_FALSE(starling::header<"X-Bad", int>::resolve(values, error));
    CHECK(error.message == "Invalid value 'twelve' for parameter 'X-Bad': expected integer");

    CHECK(**starling::cookie<"session", std::string>::resolve(values, error) == "s1");
    CHECK(**starling::cookie<"n", int>::resolve(values, error) == 7);
    CHECK_FALSE(starling::cookie<"gone", std::string>::resolve(values, error));
    CHECK(error.message == "Missing required parameter: 'gone'");

    CHECK(**starling::path<"id", int>::resolve(values, error) == 42);
    CHECK(**starling::path<"name", std::string>::resolve(values, error) == "café+x");  // '+' is not a space in a path
    CHECK_FALSE(starling::path<"name", int>::resolve(values, error));
    CHECK(error.message == "Invalid value 'café+x' for parameter 'name': expected integer");
}

TEST_CASE("the state slot: empty costs one pointer, holds one value of any type, says what it is not") {
    static_assert(sizeof(starling::detail::state_slot) == sizeof(void*));
    struct tracked {
        int* destroyed;
        ~tracked() { ++*destroyed; }
    };
    int destroyed = 0;
    {
        starling::detail::state_slot slot;
        CHECK(slot.empty());
        CHECK_THROWS_AS(slot.get<int>(), std::logic_error);
        slot.emplace<tracked>(&destroyed);
        CHECK(slot.find<tracked>() != nullptr);
        CHECK(slot.find<int>() == nullptr);
        CHECK_THROWS_WITH_AS(slot.get<int>(), doctest::Contains("this connection's state is not a 'int'"), std::logic_error);
        slot.emplace<int>(5);  // replaces, destroying the old value
        CHECK(destroyed == 1);
        slot.emplace<tracked>(&destroyed);
    }
    CHECK(destroyed == 2);
}

TEST_CASE("admission: a value admits, a refusal refuses") {
    starling::admission<std::string> yes = std::string("ann");
    CHECK(yes.admitted());
    CHECK(*yes.value() == "ann");
    starling::admission<std::string> no = starling::refuse(403, "no");
    CHECK_FALSE(no.admitted());
    CHECK(no.refused()->status == 403);
    starling::admission<> plain;
    CHECK(plain.admitted());
}

TEST_CASE("token buckets: a burst passes, then the rate; a big message leaves the byte bucket in debt") {
    using clock = starling::detail::engine_clock;
    const auto t0 = clock::now();
    starling::message_rate_limit limit;
    limit.messages_per_second = 10;
    limit.message_burst = 3;
    starling::detail::message_rate_limiter messages(limit, t0);
    CHECK(messages.admit(1, t0));
    CHECK(messages.admit(1, t0));
    CHECK(messages.admit(1, t0));
    CHECK_FALSE(messages.admit(1, t0));  // the burst is spent
    CHECK_FALSE(messages.admit(1, t0 + std::chrono::milliseconds(50)));
    CHECK(messages.admit(1, t0 + std::chrono::milliseconds(100)));  // one token back after 1/10 s
    CHECK_FALSE(messages.admit(1, t0 + std::chrono::milliseconds(100)));
    CHECK(messages.admit(1, t0 + std::chrono::seconds(10)));  // refilled to the burst, not beyond
    CHECK(messages.admit(1, t0 + std::chrono::seconds(10)));
    CHECK(messages.admit(1, t0 + std::chrono::seconds(10)));
    CHECK_FALSE(messages.admit(1, t0 + std::chrono::seconds(10)));

    starling::message_rate_limit bytes_only;
    bytes_only.bytes_per_second = 1000;  // burst 0: one second's worth
    starling::detail::message_rate_limiter bytes(bytes_only, t0);
    CHECK(bytes.admit(600, t0));
    CHECK_FALSE(bytes.admit(600, t0));
    CHECK(bytes.admit(400, t0));
    CHECK(bytes.admit(5000, t0 + std::chrono::seconds(2)));  // bigger than the bucket: passes when full
    CHECK_FALSE(bytes.admit(1, t0 + std::chrono::seconds(5)));  // 4000 in debt, 3000 back
    CHECK(bytes.admit(1, t0 + std::chrono::seconds(7)));
    CHECK_FALSE(limit.policy != starling::rate_limit_policy::close);  // close is the default
    CHECK_FALSE(starling::message_rate_limit{}.enabled());
}
