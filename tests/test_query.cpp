// Percent-decoding and query parameters: escapes valid and malformed, '+', repeated keys, empty
// pieces and values.
#include <starling/protocol/query.hpp>

#include <doctest/doctest.h>

#include <optional>     // std::optional lookups
#include <string>       // std::string decoded text
#include <string_view>  // std::string_view expected values
#include <utility>      // std::pair
#include <vector>       // std::vector expected lists

using starling::percent_decode;
using starling::query_params;

using values = std::vector<std::string_view>;

TEST_CASE("query: percent_decode of valid escapes") {
    CHECK(percent_decode("%41") == "A");
    CHECK(percent_decode("%20") == " ");
    CHECK(percent_decode("a%20b%20c") == "a b c");
    CHECK(percent_decode("%E2%82%AC") == "\xE2\x82\xAC");  // the euro sign in UTF-8
    CHECK(percent_decode("%e2%82%ac") == "\xE2\x82\xAC");  // hex digits in either case
    CHECK(percent_decode("%eA%Ea") == "\xEA\xEA");
    CHECK(percent_decode("%2B") == "+");  // an escaped plus stays a plus
    CHECK(percent_decode("%25") == "%");
    CHECK(percent_decode("%2525") == "%25");  // decoded once, never twice
    CHECK(percent_decode("%3D%26%3F%23") == "=&?#");
    CHECK(percent_decode("%FF") == "\xFF");  // bytes, not checked to be UTF-8
    CHECK(percent_decode("%00") == std::string(1, '\0'));
    CHECK(percent_decode("plain-text_1.2~") == "plain-text_1.2~");
    CHECK(percent_decode("") == "");
}

TEST_CASE("query: parameters hold decoded bytes; whether they must be text is the typed parameter's call") {
    const query_params params = query_params::parse("room=%FF&name=caf%C3%A9&%FE=k");
    CHECK(params.get("room") == std::string_view("\xFF"));
    CHECK(params.get("name") == std::string_view("caf\xC3\xA9"));
    CHECK(params.get("\xFE") == std::string_view("k"));
}

TEST_CASE("query: '+' is a space only when asked") {
    CHECK(percent_decode("a+b") == "a b");
    CHECK(percent_decode("+++") == "   ");
    CHECK(percent_decode("a+b", true) == "a b");
    CHECK(percent_decode("a+b", false) == "a+b");
    CHECK(percent_decode("a+%20b", false) == "a+ b");
    CHECK(percent_decode("%2B+", true) == "+ ");
}

TEST_CASE("query: malformed escapes are kept literally") {
    CHECK(percent_decode("%") == "%");
    CHECK(percent_decode("%4") == "%4");
    CHECK(percent_decode("%zz") == "%zz");
    CHECK(percent_decode("%4g") == "%4g");
    CHECK(percent_decode("%g4") == "%g4");
    CHECK(percent_decode("% 41") == "% 41");
    CHECK(percent_decode("abc%") == "abc%");
    CHECK(percent_decode("abc%4") == "abc%4");
    CHECK(percent_decode("%%41") == "%A");  // the second '%' still starts a valid escape
    CHECK(percent_decode("%%") == "%%");
    CHECK(percent_decode("100%+sure") == "100% sure");
    CHECK(percent_decode("%+41") == "% 41");
    CHECK(percent_decode("%-1") == "%-1");
    CHECK(percent_decode("%\xff\xff") == "%\xff\xff");
}

TEST_CASE("query: parse splits on '&' and the first '='") {
    const query_params q = query_params::parse("a=1&b=2&c=three");
    CHECK(q.size() == 3);
    CHECK_FALSE(q.empty());
    CHECK(q.get("a") == "1");
    CHECK(q.get("b") == "2");
    CHECK(q.get("c") == "three");
    CHECK_FALSE(q.get("d").has_value());
    CHECK(q.contains("a"));
    CHECK_FALSE(q.contains("A"));  // keys are case-sensitive
    CHECK_FALSE(q.contains("d"));

    std::vector<std::pair<std::string, std::string>> seen(q.begin(), q.end());
    CHECK(seen == std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"b", "2"}, {"c", "three"}});
}

TEST_CASE("query: repeated keys keep every value; get is the last, get_first the first") {
    const query_params q = query_params::parse("a=1&b=2&a=3&a=");
    CHECK(q.size() == 4);
    CHECK(q.get("a") == "");
    CHECK(q.get_first("a") == "1");
    CHECK(q.get_all("a") == values{"1", "3", ""});
    CHECK(q.get_all("b") == values{"2"});
    CHECK(q.get_all("missing").empty());
    CHECK_FALSE(q.get_first("missing").has_value());
}

TEST_CASE("query: empty pieces are skipped, keys without '=' have empty values") {
    const query_params q = query_params::parse("&&flag&a=&&=x&b=1&");
    CHECK(q.size() == 4);
    CHECK(q.get("flag") == "");
    CHECK(q.contains("flag"));
    CHECK(q.get("a") == "");
    CHECK(q.get("") == "x");  // "=x" is an empty key, not nothing
    CHECK(q.get("b") == "1");

    CHECK(query_params::parse("").empty());
    CHECK(query_params::parse("&").empty());
    CHECK(query_params::parse("&&&").size() == 0);
    CHECK(query_params::parse("=").size() == 1);
    CHECK(query_params::parse("=").get("") == "");
}

TEST_CASE("query: only the first '=' separates") {
    const query_params q = query_params::parse("a==b&c=d=e&f=%3D");
    CHECK(q.get("a") == "=b");
    CHECK(q.get("c") == "d=e");
    CHECK(q.get("f") == "=");
}

TEST_CASE("query: keys and values are decoded after splitting") {
    const query_params q =
        query_params::parse("na%20me=J%C3%B6rg+M%C3%BCller&x+y=1&%26=%26&%3D=eq&msg=a%2Bb+c&bad=%zz%");
    CHECK(q.get("na me") == "J\xC3\xB6rg M\xC3\xBCller");
    CHECK(q.get("x y") == "1");
    CHECK(q.get("&") == "&");  // an escaped '&' does not split
    CHECK(q.get("=") == "eq");  // an escaped '=' does not separate
    CHECK(q.get("msg") == "a+b c");
    CHECK(q.get("bad") == "%zz%");
    CHECK(q.size() == 6);
}

TEST_CASE("query: get with a fallback") {
    const query_params q = query_params::parse("room=lobby&empty=");
    CHECK(q.get("room", "default") == "lobby");
    CHECK(q.get("empty", "default") == "");  // present but empty is not missing
    CHECK(q.get("missing", "default") == "default");
    CHECK(q.get("missing", "") == "");
}

TEST_CASE("query: add appends, in order, without decoding") {
    query_params q;
    CHECK(q.empty());
    CHECK(q.size() == 0);
    CHECK(q.begin() == q.end());
    q.add("k", "v1");
    q.add("k", "%41");
    q.add("other", "x");
    CHECK(q.size() == 3);
    CHECK(q.get("k") == "%41");
    CHECK(q.get_first("k") == "v1");
    CHECK(q.get_all("k") == values{"v1", "%41"});
    CHECK(q.begin()->first == "k");
}

TEST_CASE("query: lookups return views into the parameters") {
    const query_params q = query_params::parse("long=" + std::string(1000, 'x'));
    const std::optional<std::string_view> v = q.get("long");
    REQUIRE(v.has_value());
    CHECK(v->size() == 1000);
    CHECK(v->data() == q.begin()->second.data());
}
