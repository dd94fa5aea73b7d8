#include <starling/api/params.hpp>

#include <doctest/doctest.h>

#include <starling/protocol/utf8.hpp>  // is_valid_utf8 on the messages

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace {

enum class color { red, green, blue };

struct point {
    int x = 0;
    int y = 0;
    bool operator==(const point&) const = default;
};

}  // namespace

template <>
inline constexpr auto starling::enum_names<color> =
    std::array{std::pair{std::string_view("red"), color::red}, std::pair{std::string_view("green"), color::green},
               std::pair{std::string_view("blue"), color::blue}};

template <>
struct starling::query_coercion<point> {
    static constexpr std::string_view expected = "point as x,y";
    static std::optional<point> parse(std::string_view text) {
        const auto comma = text.find(',');
        if (comma == std::string_view::npos) return std::nullopt;
        auto x = query_coercion<int>::parse(text.substr(0, comma));
        auto y = query_coercion<int>::parse(text.substr(comma + 1));
        if (!x || !y) return std::nullopt;
        return point{*x, *y};
    }
};

using starling::query;
using starling::query_coercion;

TEST_CASE("integers: whole string, base 10, range-checked for the declared type") {
    CHECK(query_coercion<int>::parse("5") == 5);
    CHECK(query_coercion<int>::parse("-12") == -12);
    CHECK_FALSE(query_coercion<int>::parse(""));
    CHECK_FALSE(query_coercion<int>::parse("5x"));
    CHECK_FALSE(query_coercion<int>::parse(" 5"));
    CHECK_FALSE(query_coercion<int>::parse("+5"));
    CHECK_FALSE(query_coercion<int>::parse("99999999999"));
    CHECK(query_coercion<long long>::parse("99999999999") == 99999999999LL);
    CHECK(query_coercion<std::int8_t>::parse("127") == 127);
    CHECK_FALSE(query_coercion<std::int8_t>::parse("128"));
    CHECK_FALSE(query_coercion<unsigned>::parse("-1"));
    CHECK(query_coercion<std::uint64_t>::parse("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
    CHECK_FALSE(query_coercion<std::uint64_t>::parse("18446744073709551616"));
}

TEST_CASE("floating point, bool, strings") {
    CHECK(query_coercion<double>::parse("2.5") == 2.5);
    CHECK(query_coercion<float>::parse("-1e3") == -1000.0f);
    CHECK_FALSE(query_coercion<double>::parse("2.5.1"));
    CHECK_FALSE(query_coercion<double>::parse(""));
    for (const char* yes : {"true", "TRUE", "1", "yes", "Yes", "on", "ON"}) CHECK(query_coercion<bool>::parse(yes) == true);
    for (const char* no : {"false", "False", "0", "no", "NO", "off", "Off"}) CHECK(query_coercion<bool>::parse(no) == false);
    CHECK_FALSE(query_coercion<bool>::parse("2"));
    CHECK_FALSE(query_coercion<bool>::parse(""));
    CHECK(query_coercion<std::string>::parse("") == std::string());
    CHECK(query_coercion<std::string_view>::parse("a b") == std::string_view("a b"));
}

TEST_CASE("enums by name and user types through the customisation point") {
    CHECK(query_coercion<color>::parse("green") == color::green);
    CHECK(query_coercion<color>::parse("BLUE") == color::blue);
    CHECK_FALSE(query_coercion<color>::parse("purple"));
    CHECK(query_coercion<point>::parse("3,4") == point{3, 4});
    CHECK_FALSE(query_coercion<point>::parse("3;4"));
}

namespace {

template <class Q>
std::pair<std::optional<Q>, std::string> resolve(std::string_view query_string) {
    starling::parameter_error error;
    auto value = Q::resolve(starling::query_params::parse(query_string), error);
    return {std::move(value), error.message};
}

}  // namespace

TEST_CASE("required parameters: present, missing, invalid, with the exact messages") {
    using room = query<"room", std::string>;
    using page = query<"page", int>;
    CHECK(**resolve<room>("room=chat").first == "chat");
    CHECK(resolve<room>("").second == "Missing required parameter: 'room'");
    CHECK(resolve<page>("page=abc").second == "Invalid value 'abc' for parameter 'page': expected integer");
    CHECK(resolve<query<"flag", bool>>("flag=maybe").second == "Invalid value 'maybe' for parameter 'flag': expected boolean");
    CHECK(resolve<query<"at", point>>("at=x").second == "Invalid value 'x' for parameter 'at': expected point as x,y");
    CHECK(resolve<query<"c", color>>("c=purple").second == "Invalid value 'purple' for parameter 'c': expected enum value name");
    // Percent-decoded before coercion; the last value wins when a key repeats.
    CHECK(**resolve<room>("room=a%20b").first == "a b");
    CHECK(**resolve<page>("page=1&page=7").first == 7);
}

TEST_CASE("defaults, optionals and vectors are not required") {
    using room = query<"room", std::string, "default">;
    using page = query<"page", int, "1">;
    CHECK(**resolve<room>("").first == "default");
    CHECK(**resolve<room>("room=x").first == "x");
    CHECK(**resolve<page>("").first == 1);
    CHECK(resolve<page>("page=abc").second == "Invalid value 'abc' for parameter 'page': expected integer");
    CHECK(room::has_default);
    CHECK_FALSE(query<"room", std::string>::has_default);

    using maybe = query<"limit", std::optional<int>>;
    CHECK_FALSE((**resolve<maybe>("").first).has_value());
    CHECK(**resolve<maybe>("limit=3").first == 3);
    CHECK(resolve<maybe>("limit=three").second == "Invalid value 'three' for parameter 'limit': expected integer");

    using tags = query<"tag", std::vector<std::string>>;
    CHECK((**resolve<tags>("tag=a&x=1&tag=b&tag=c").first) == std::vector<std::string>{"a", "b", "c"});
    CHECK((**resolve<tags>("").first).empty());
    using ids = query<"id", std::vector<int>>;
    CHECK((**resolve<ids>("id=1&id=2").first) == std::vector<int>{1, 2});
    CHECK(resolve<ids>("id=1&id=x").second == "Invalid value 'x' for parameter 'id': expected integer");
}

TEST_CASE("string parameters are UTF-8 text") {
    CHECK(query_coercion<std::string>::parse("caf\xc3\xa9") == std::string("caf\xc3\xa9"));
    CHECK(query_coercion<std::string_view>::parse("\xf0\x9f\x98\x80") == std::string_view("\xf0\x9f\x98\x80"));
    for (std::string_view bad : {std::string_view("\xff"), std::string_view("caf\xe9"), std::string_view("\xc0\x80"),
                                 std::string_view("\xed\xa0\x80"), std::string_view("cut \xe2\x82")}) {
        CAPTURE(bad);
        CHECK_FALSE(query_coercion<std::string>::parse(bad));
        CHECK_FALSE(query_coercion<std::string_view>::parse(bad));
    }

    using room = query<"room", std::string>;
    CHECK(**resolve<room>("room=caf%C3%A9").first == "caf\xc3\xa9");
    CHECK(resolve<room>("room=%FF").second == "Invalid value '%FF' for parameter 'room': expected UTF-8 text");
    CHECK(resolve<query<"room", std::string_view>>("room=%FF").second ==
          "Invalid value '%FF' for parameter 'room': expected UTF-8 text");
    CHECK(resolve<query<"room", std::string, "lobby">>("room=a%FFb").second ==
          "Invalid value 'a%FFb' for parameter 'room': expected UTF-8 text");
    CHECK(resolve<query<"room", std::optional<std::string>>>("room=%C0%80").second ==
          "Invalid value '%C0%80' for parameter 'room': expected UTF-8 text");
    CHECK(resolve<query<"tag", std::vector<std::string>>>("tag=ok&tag=%E2%82").second ==
          "Invalid value '%E2%82' for parameter 'tag': expected UTF-8 text");
}

TEST_CASE("an invalid value is quoted as UTF-8: valid text as it is, bad bytes percent-encoded") {
    using starling::detail::quote_value;
    CHECK(quote_value("") == "");
    CHECK(quote_value("abc") == "abc");
    CHECK(quote_value("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(quote_value("\xff") == "%FF");
    CHECK(quote_value("caf\xe9!") == "caf%E9!");
    CHECK(quote_value("\xe2\x82\xac\xe2\x82x") == "\xe2\x82\xac%E2%82x");
    CHECK(quote_value("\xed\xa0\x80") == "%ED%A0%80");
    CHECK(quote_value(std::string_view("\0\x01", 2)) == std::string("\0\x01", 2));  // valid, if unprintable

    // Whatever the type, the message is UTF-8 text, since it becomes an HTTP body or a close reason.
    const std::string message = resolve<query<"page", int>>("page=%FF%FE9").second;
    CHECK(message == "Invalid value '%FF%FE9' for parameter 'page': expected integer");
    CHECK(starling::is_valid_utf8(message));
    CHECK(resolve<query<"c", color>>("c=r%E9d").second == "Invalid value 'r%E9d' for parameter 'c': expected enum value name");
}

TEST_CASE("a query parameter reads like its value") {
    query<"n", int> n(5);
    const int& plain = n;
    CHECK(plain == 5);
    CHECK(*n == 5);
    CHECK(n.value() == 5);
    query<"s", std::string> s(std::string("abc"));
    CHECK(s->size() == 3);
    CHECK(query<"room", std::string>::name == "room");
}
