// The HTTP/1.1 request-head parser, plus the header list and request type it fills. Nearly every
// input is parsed whole, one byte per call, in chunks of a few sizes and split in two at every
// position, and all of those must agree on status, error, bytes consumed and the parsed request.
#include <starling/http/request_parser.hpp>

#include <doctest/doctest.h>

#include <cstddef>      // std::size_t
#include <limits>       // std::numeric_limits for an unlimited parser
#include <ostream>      // lets doctest print std::error_code in failure messages
#include <string>       // std::string inputs
#include <string_view>  // std::string_view inputs
#include <system_error> // std::error_code
#include <vector>       // std::vector cut positions

#include <starling/protocol/error.hpp>  // starling::error, compared against parser errors

namespace {

using starling::error;
using starling::http::parse_status;
using starling::http::request;
using starling::http::request_parser;

constexpr std::size_t default_limit = request_parser::default_max_header_bytes;

struct outcome {
    parse_status status = parse_status::need_more;
    std::size_t consumed = 0;  // summed over every call
    std::error_code ec;
    request req;
};

/// Feeds `input` cut at `cuts` (increasing positions). Checks the per-call contract on the way: no
/// call consumes more than it was given, need_more consumes everything, and once the parser is done
/// every further call consumes nothing and reports the same status.
outcome feed(std::string_view input, const std::vector<std::size_t>& cuts, std::size_t limit) {
    request_parser parser{limit};
    outcome result;
    std::size_t start = 0;
    auto put = [&](std::string_view piece) {
        const parse_status before = result.status;
        const starling::http::parse_result r = parser.put(piece);
        REQUIRE(r.consumed <= piece.size());
        if (before != parse_status::need_more) {
            REQUIRE(r.consumed == 0);
            REQUIRE(r.status == before);
            return;
        }
        if (r.status == parse_status::need_more) REQUIRE(r.consumed == piece.size());
        result.consumed += r.consumed;
        result.status = r.status;
    };
    for (std::size_t cut : cuts) {
        put(input.substr(start, cut - start));
        start = cut;
    }
    put(input.substr(start));
    REQUIRE(parser.status() == result.status);
    result.ec = parser.error();
    if (result.status == parse_status::failed) {
        REQUIRE(result.ec);
    } else {
        REQUIRE_FALSE(result.ec);
    }
    result.req = parser.get();
    return result;
}

outcome whole(std::string_view input, std::size_t limit = default_limit) { return feed(input, {}, limit); }

std::vector<std::size_t> every(std::size_t step, std::size_t size) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = step; i < size; i += step) cuts.push_back(i);
    return cuts;
}

void check_same(const outcome& a, const outcome& b) {
    REQUIRE(a.status == b.status);
    REQUIRE(a.consumed == b.consumed);
    REQUIRE(a.ec == b.ec);
    REQUIRE(a.req.method == b.req.method);
    REQUIRE(a.req.target == b.req.target);
    REQUIRE(a.req.version == b.req.version);
    REQUIRE(a.req.fields.size() == b.req.fields.size());
    auto it = b.req.fields.begin();
    for (const auto& field : a.req.fields) {
        REQUIRE(field == *it);
        ++it;
    }
}

/// Parses whole, byte by byte, in chunks of 2, 3, 7 and 64, and split in two at every position;
/// requires every way to agree, and returns the result.
outcome parse_every_way(std::string_view input, std::size_t limit = default_limit) {
    const outcome reference = whole(input, limit);
    check_same(reference, feed(input, every(1, input.size()), limit));
    for (std::size_t step : {2, 3, 7, 64}) check_same(reference, feed(input, every(step, input.size()), limit));
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        CAPTURE(cut);
        check_same(reference, feed(input, {cut}, limit));
    }
    return reference;
}

/// Requires `input` to fail with `expected` at the same byte however it is fed.
void check_fails(std::string_view input, error expected, std::size_t limit = default_limit) {
    CAPTURE(input);
    const outcome o = parse_every_way(input, limit);
    CHECK(o.status == parse_status::failed);
    CHECK(o.ec == expected);
}

/// Requires `input` to complete, however it is fed, and returns the request.
request check_parses(std::string_view input, std::size_t limit = default_limit) {
    CAPTURE(input);
    const outcome o = parse_every_way(input, limit);
    REQUIRE(o.status == parse_status::complete);
    CHECK(o.consumed == input.size());
    return o.req;
}

const std::string chrome_request =
    "GET /chat?room=lobby HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://example.com:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

}  // namespace

// ---- headers ----

TEST_CASE("headers: arrival order, case-insensitive lookup, repeats kept") {
    starling::http::headers h;
    CHECK(h.empty());
    CHECK(h.size() == 0);
    CHECK_FALSE(h.get("Host").has_value());
    CHECK(h.get_all("Host").empty());

    h.add("Host", "example.com");
    h.add("X-Tag", "a");
    h.add("x-tag", "b");
    h.add("X-TAG", "c");
    CHECK_FALSE(h.empty());
    CHECK(h.size() == 4);
    CHECK(h.get("host") == "example.com");
    CHECK(h.get("HOST") == "example.com");
    CHECK(h.get("X-Tag") == "a");  // first match
    CHECK(h.get_all("X-TAG") == std::vector<std::string_view>{"a", "b", "c"});
    CHECK(h.contains("hOsT"));
    CHECK_FALSE(h.contains("Hos"));
    CHECK_FALSE(h.contains("Hostt"));

    // Names keep their spelling.
    std::vector<std::string> names;
    for (const auto& [name, value] : h) names.push_back(name);
    CHECK(names == std::vector<std::string>{"Host", "X-Tag", "x-tag", "X-TAG"});

    h.clear();
    CHECK(h.empty());
}

TEST_CASE("headers: has_token reads comma-separated token lists") {
    starling::http::headers h;
    h.add("Connection", "keep-alive, Upgrade");
    h.add("Upgrade", "WebSocket");
    h.add("X-Spaces", " \t first ,\tsecond\t,  third  ");
    h.add("X-Empty-Elements", ",, ,upgrade,,");
    h.add("X-Nothing", "");
    CHECK(h.has_token("Connection", "upgrade"));
    CHECK(h.has_token("connection", "UPGRADE"));
    CHECK(h.has_token("Connection", "keep-alive"));
    CHECK(h.has_token("upgrade", "websocket"));
    CHECK(h.has_token("X-Spaces", "first"));
    CHECK(h.has_token("X-Spaces", "second"));
    CHECK(h.has_token("X-Spaces", "third"));
    CHECK(h.has_token("X-Empty-Elements", "upgrade"));

    // Whole elements only, never substrings or prefixes.
    CHECK_FALSE(h.has_token("Connection", "upgraded"));
    CHECK_FALSE(h.has_token("Connection", "grade"));
    CHECK_FALSE(h.has_token("Connection", "keep"));
    CHECK_FALSE(h.has_token("Connection", "keep-alive, Upgrade"));
    CHECK_FALSE(h.has_token("Upgrade", "websockets"));
    // An empty element is not a token.
    CHECK_FALSE(h.has_token("X-Empty-Elements", ""));
    CHECK_FALSE(h.has_token("X-Nothing", ""));
    // Other fields do not count.
    CHECK_FALSE(h.has_token("Upgrade", "keep-alive"));
    CHECK_FALSE(h.has_token("Missing", "upgrade"));
}

TEST_CASE("headers: has_token looks through every field of the name") {
    starling::http::headers h;
    h.add("Connection", "keep-alive");
    h.add("Connection", "Upgrade");
    CHECK(h.has_token("Connection", "upgrade"));
    CHECK(h.has_token("Connection", "keep-alive"));

    starling::http::headers versioned;
    versioned.add("Upgrade", "websocket/13, h2c");
    CHECK_FALSE(versioned.has_token("Upgrade", "websocket"));
    CHECK(versioned.has_token("Upgrade", "h2c"));
}

// ---- request ----

TEST_CASE("request: path and query_string split the target") {
    struct row {
        std::string_view target, path, query;
    };
    const row rows[] = {
        {"/", "/", ""},
        {"/chat", "/chat", ""},
        {"/chat?room=1", "/chat", "room=1"},
        {"/chat?room=1&user=a%20b", "/chat", "room=1&user=a%20b"},
        {"/a?b?c", "/a", "b?c"},
        {"/a?", "/a", ""},
        {"/?x", "/", "x"},
        {"/a#frag", "/a", ""},
        {"/a?x=1#frag", "/a", "x=1"},
        {"/a#frag?x=1", "/a", ""},
        {"/a%3Fb?c", "/a%3Fb", "c"},
    };
    for (const row& r : rows) {
        CAPTURE(r.target);
        request req;
        req.target = r.target;
        CHECK(req.path() == r.path);
        CHECK(req.query_string() == r.query);
    }
}

// ---- request_parser: accepted input ----

TEST_CASE("request_parser: a minimal request") {
    const request req = check_parses("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(req.method == "GET");
    CHECK(req.target == "/");
    CHECK(req.version == "HTTP/1.1");
    REQUIRE(req.fields.size() == 1);
    CHECK(req.fields.get("host") == "a");
}

TEST_CASE("request_parser: a request with no fields at all is complete") {
    // Host is the handshake's business, not the parser's.
    const request req = check_parses("GET /x HTTP/1.1\r\n\r\n");
    CHECK(req.target == "/x");
    CHECK(req.fields.empty());
}

TEST_CASE("request_parser: a browser's upgrade request") {
    const request req = check_parses(chrome_request);
    CHECK(req.method == "GET");
    CHECK(req.target == "/chat?room=lobby");
    CHECK(req.path() == "/chat");
    CHECK(req.query_string() == "room=lobby");
    CHECK(req.fields.size() == 12);
    CHECK(req.fields.get("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(req.fields.get("sec-websocket-extensions") == "permessage-deflate; client_max_window_bits");
    CHECK(req.fields.get("Accept-Language") == "en-US,en;q=0.9");
    CHECK(req.fields.begin()->first == "Host");
}

TEST_CASE("request_parser: any token is a method, and the target may hold any visible ASCII") {
    CHECK(check_parses("POST / HTTP/1.1\r\n\r\n").method == "POST");
    CHECK(check_parses("get / HTTP/1.1\r\n\r\n").method == "get");
    CHECK(check_parses("M-SEARCH! / HTTP/1.1\r\n\r\n").method == "M-SEARCH!");
    CHECK(check_parses("GET /a/b/../c;p?q=1&r=%20#f HTTP/1.1\r\n\r\n").target == "/a/b/../c;p?q=1&r=%20#f");
    CHECK(check_parses("GET //~!$&'()*+,;=:@[]{}|\\^`\"<> HTTP/1.1\r\n\r\n").target ==
          "//~!$&'()*+,;=:@[]{}|\\^`\"<>");
}

TEST_CASE("request_parser: field values are trimmed of surrounding whitespace only") {
    const request req = check_parses(
        "GET / HTTP/1.1\r\n"
        "A:plain\r\n"
        "B:   spaced   \r\n"
        "C:\t\ttabbed\t \t\r\n"
        "D: inner  spaces\tand tabs \r\n"
        "E:\r\n"
        "F:    \r\n"
        "G: caf\xc3\xa9 \x80\xff\r\n"
        "H: a:b: c\r\n"
        "\r\n");
    CHECK(req.fields.get("A") == "plain");
    CHECK(req.fields.get("B") == "spaced");
    CHECK(req.fields.get("C") == "tabbed");
    CHECK(req.fields.get("D") == "inner  spaces\tand tabs");
    CHECK(req.fields.get("E") == "");
    CHECK(req.fields.get("F") == "");
    CHECK(req.fields.get("G") == "caf\xc3\xa9 \x80\xff");  // obs-text is allowed in values
    CHECK(req.fields.get("H") == "a:b: c");               // only the first colon separates
}

TEST_CASE("request_parser: repeated fields stay separate and in order") {
    const request req = check_parses(
        "GET / HTTP/1.1\r\nConnection: keep-alive\r\nX: 1\r\nconnection: Upgrade\r\nX: 2\r\n\r\n");
    CHECK(req.fields.get_all("Connection") == std::vector<std::string_view>{"keep-alive", "Upgrade"});
    CHECK(req.fields.get_all("x") == std::vector<std::string_view>{"1", "2"});
    CHECK(req.fields.has_token("CONNECTION", "upgrade"));
}

TEST_CASE("request_parser: bytes after the head are left to the caller") {
    const std::string head = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    // A masked text frame "Hi", sent before the 101 arrived, and more after it.
    const std::string frame = "\x81\x82\x01\x02\x03\x04Ii";
    for (const std::string& tail : {frame, frame + frame, std::string{"\r\n"}, std::string{"GET / HTTP/1.1\r\n\r\n"}}) {
        const outcome o = parse_every_way(head + tail);
        REQUIRE(o.status == parse_status::complete);
        CHECK(o.consumed == head.size());
        CHECK(o.req.fields.get("Upgrade") == "websocket");
    }

    request_parser parser;
    const std::string input = head + frame;
    const starling::http::parse_result r = parser.put(input);
    CHECK(r.status == parse_status::complete);
    CHECK(std::string_view{input}.substr(r.consumed) == frame);
    const starling::http::parse_result again = parser.put(frame);
    CHECK(again.status == parse_status::complete);
    CHECK(again.consumed == 0);
}

TEST_CASE("request_parser: need_more until the blank line, consuming everything given") {
    request_parser parser;
    starling::http::parse_result r = parser.put("GET / HTTP/1.1\r\nHost: a\r\n");
    CHECK(r.status == parse_status::need_more);
    CHECK(r.consumed == 25);
    CHECK_FALSE(parser.error());
    r = parser.put("");
    CHECK(r.status == parse_status::need_more);
    CHECK(r.consumed == 0);
    r = parser.put("\r");
    CHECK(r.status == parse_status::need_more);
    CHECK(r.consumed == 1);
    r = parser.put("\n");
    CHECK(r.status == parse_status::complete);
    CHECK(r.consumed == 1);
    CHECK(parser.status() == parse_status::complete);
    CHECK(parser.get().fields.get("Host") == "a");
}

TEST_CASE("request_parser: release moves the request out, reset starts over") {
    request_parser parser{64};
    REQUIRE(parser.put("GET /one HTTP/1.1\r\nHost: a\r\n\r\n").status == parse_status::complete);
    const request first = parser.release();
    CHECK(first.target == "/one");
    CHECK(first.fields.get("Host") == "a");

    parser.reset();
    CHECK(parser.status() == parse_status::need_more);
    REQUIRE(parser.put("GET /two HTTP/1.1\r\n\r\n").status == parse_status::complete);
    CHECK(parser.get().target == "/two");
    CHECK(parser.get().fields.empty());

    parser.reset();
    REQUIRE(parser.put("GET /three HTTP/1.0\r\n").status == parse_status::failed);
    CHECK(parser.error() == error::bad_http_version);
    CHECK(parser.put("GET / HTTP/1.1\r\n\r\n").consumed == 0);  // failed stays failed
    parser.reset();
    CHECK_FALSE(parser.error());
    // The limit survives reset: 64 bytes still fit, 65 do not.
    const std::string at_limit = "GET /" + std::string(40, 'x') + " HTTP/1.1\r\nH: v\r\n\r\n";
    REQUIRE(at_limit.size() == 64);
    CHECK(parser.put(at_limit).status == parse_status::complete);
    parser.reset();
    CHECK(parser.put(at_limit.substr(0, 5) + "y" + at_limit.substr(5)).status == parse_status::failed);
    CHECK(parser.error() == error::header_too_large);
}

// ---- request_parser: the request line ----

TEST_CASE("request_parser: malformed request lines") {
    for (std::string_view line : {
             "GET/ HTTP/1.1",        // no space after the method
             "GET /HTTP/1.1",        // no space before the version
             "GET",                  //
             "GET /",                // no version
             "GET / ",               // empty version
             "GET  / HTTP/1.1",      // two spaces
             "GET /  HTTP/1.1",      //
             "GET / HTTP/1.1 ",      // trailing space
             " GET / HTTP/1.1",      // leading space
             "GET / HTTP/1.1 x",     // extra field
             " / HTTP/1.1",          // empty method
             "G(T / HTTP/1.1",       // method not a token
             "GET: / HTTP/1.1",      //
             "GET chat HTTP/1.1",    // target not in origin form
             "GET * HTTP/1.1",       // asterisk form
             "GET http://a/ HTTP/1.1",  // absolute form
             "GET  HTTP/1.1",        // empty target
             "",                     // blank line before the request line
         }) {
        CAPTURE(line);
        check_fails(std::string{line} + "\r\nHost: a\r\n\r\n", error::bad_request_line);
    }
}

TEST_CASE("request_parser: controls, tabs, DEL and non-ASCII in the request line fail on arrival") {
    for (std::string_view line : {"GET\t/ HTTP/1.1", "GET /\t HTTP/1.1", "GET /a\x01 HTTP/1.1", "GET /\x7f HTTP/1.1",
                                  "GET /caf\xc3\xa9 HTTP/1.1", "GET /\xff HTTP/1.1", "\x16\x03\x01"}) {
        CAPTURE(line);
        check_fails(std::string{line} + "\r\n\r\n", error::bad_request_line);
    }
    CHECK(whole(std::string_view{"GET /a\0b HTTP/1.1\r\n\r\n", 21}).ec == error::bad_request_line);

    // Found at the offending byte, before any line ending: a TLS ClientHello is refused at once.
    const outcome tls = whole("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    CHECK(tls.status == parse_status::failed);
    CHECK(tls.consumed == 1);
    const outcome tab = whole("GET /a\tb HTTP/1.1");
    CHECK(tab.consumed == 7);
}

TEST_CASE("request_parser: only HTTP/1.1 exactly") {
    for (std::string_view version :
         {"HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/1.10", "HTTP/01.1", "HTTP/1", "HTTP/11", "http/1.1",
          "Http/1.1", "HTTP/1.1x", "HTTP-1.1", "HTTPS/1.1", "FOO", "1.1", "HTTP/", "HTTP/1.1/"}) {
        CAPTURE(version);
        check_fails("GET / " + std::string{version} + "\r\nHost: a\r\n\r\n", error::bad_http_version);
    }
}

// ---- request_parser: line endings ----

TEST_CASE("request_parser: a bare LF or bare CR fails") {
    check_fails("GET / HTTP/1.1\nHost: a\r\n\r\n", error::bad_request_line);
    check_fails("GET / HTTP/1.1\rHost: a\r\n\r\n", error::bad_request_line);
    check_fails("GET / HTTP/1.1\r\r\n", error::bad_request_line);
    check_fails("GET /\r HTTP/1.1\r\n\r\n", error::bad_request_line);
    check_fails("\n", error::bad_request_line);
    check_fails("\r\r", error::bad_request_line);
    check_fails("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nHost: a\r\n\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nHost: a\r\n\r\r", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nHost: a\r\n\rX", error::bad_header_line);
    check_fails("GET / HTTP/1.1\n\n", error::bad_request_line);

    // The bare LF is the failing byte; a bare CR is found at the byte after it.
    CHECK(whole("GET / HTTP/1.1\nHost").consumed == 15);
    CHECK(whole("GET / HTTP/1.1\rHost").consumed == 16);
}

// ---- request_parser: header lines ----

TEST_CASE("request_parser: malformed header lines") {
    for (std::string_view line : {
             "Host : a",        // whitespace before the colon
             "Host\t: a",       //
             "Host",            // no colon
             "Host a",          //
             ": a",             // empty name
             ":",               //
             "Bad(Name): a",    // name not a token
             "Bad Name: a",     //
             "Bad/Name: a",     //
             "Bad\"Name\": a",  //
             "H\xc3\xb3st: a",  // non-ASCII name
         }) {
        CAPTURE(line);
        check_fails("GET / HTTP/1.1\r\nX: 1\r\n" + std::string{line} + "\r\nY: 2\r\n\r\n", error::bad_header_line);
    }
}

TEST_CASE("request_parser: obsolete line folding and leading whitespace are refused") {
    check_fails("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nX: a\r\n \r\n\r\n", error::bad_header_line);
    // Whitespace between the request line and the first field.
    check_fails("GET / HTTP/1.1\r\n Host: a\r\n\r\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", error::bad_header_line);
}

TEST_CASE("request_parser: control characters in field values fail on arrival, HTAB is allowed") {
    for (char c = 0; c < 0x20; ++c) {
        if (c == '\t' || c == '\r' || c == '\n') continue;
        CAPTURE(static_cast<int>(c));
        const std::string input = "GET / HTTP/1.1\r\nX: a" + std::string(1, c) + "b\r\n\r\n";
        check_fails(input, error::bad_header_line);
        CHECK(whole(input).consumed == 21);
    }
    check_fails("GET / HTTP/1.1\r\nX: a\x7f" "b\r\n\r\n", error::bad_header_line);
    check_fails("GET / HTTP/1.1\r\nX\x01: a\r\n\r\n", error::bad_header_line);
    CHECK(check_parses("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n").fields.get("X") == "a\tb");
}

// ---- request_parser: limits ----

TEST_CASE("request_parser: header_too_large exactly past the byte limit") {
    const std::string head = "GET /chat HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
    const std::string frame{"\x81\x80\x00\x00\x00\x00", 6};  // an empty masked text frame
    // Every limit around the head's size, so the boundary is tested at each kind of byte: inside a
    // line, on a CR, on an LF and on the final LF.
    for (std::size_t limit = 0; limit <= head.size() + 2; ++limit) {
        CAPTURE(limit);
        const outcome o = parse_every_way(head + frame, limit);
        if (limit >= head.size()) {
            CHECK(o.status == parse_status::complete);
            CHECK(o.consumed == head.size());  // bytes past the head never count against the limit
        } else {
            CHECK(o.status == parse_status::failed);
            CHECK(o.ec == error::header_too_large);
            CHECK(o.consumed == limit + 1);
        }
    }
}

TEST_CASE("request_parser: the default limit is 8 KiB of head") {
    const std::string start = "GET / HTTP/1.1\r\nX: ";
    const std::string end = "\r\n\r\n";
    const std::string fits = start + std::string(default_limit - start.size() - end.size(), 'v') + end;
    REQUIRE(fits.size() == 8192);
    const outcome ok = whole(fits);
    CHECK(ok.status == parse_status::complete);

    const std::string over = start + std::string(default_limit - start.size() - end.size() + 1, 'v') + end;
    const outcome too_big = whole(over);
    CHECK(too_big.status == parse_status::failed);
    CHECK(too_big.ec == error::header_too_large);
    CHECK(too_big.consumed == 8193);
}

TEST_CASE("request_parser: an endless line fails once the limit is passed, not before") {
    const std::string endless = "GET /" + std::string(100'000, 'a');
    const outcome o = whole(endless, 4096);
    CHECK(o.status == parse_status::failed);
    CHECK(o.ec == error::header_too_large);
    CHECK(o.consumed == 4097);

    request_parser parser{4096};
    std::size_t fed = 0;
    while (parser.put(std::string_view{endless}.substr(fed, 1)).status == parse_status::need_more) ++fed;
    CHECK(fed == 4096);  // the 4097th byte is the one refused
    CHECK(parser.error() == error::header_too_large);
}

TEST_CASE("request_parser: a limit of SIZE_MAX means no byte limit") {
    const std::size_t unlimited = std::numeric_limits<std::size_t>::max();
    const request req = check_parses(chrome_request, unlimited);
    CHECK(req.fields.size() == 12);
    const outcome endless = whole("GET /" + std::string(100'000, 'a'), unlimited);
    CHECK(endless.status == parse_status::need_more);
}

TEST_CASE("request_parser: at most 100 fields") {
    std::string fields;
    for (int i = 0; i < 100; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
    const outcome ok = whole("GET / HTTP/1.1\r\n" + fields + "\r\n", 1 << 20);
    REQUIRE(ok.status == parse_status::complete);
    CHECK(ok.req.fields.size() == request_parser::max_fields);

    const std::string over = "GET / HTTP/1.1\r\n" + fields + "Host: a\r\n\r\n";
    const outcome o = parse_every_way(over, 1 << 20);
    CHECK(o.status == parse_status::failed);
    CHECK(o.ec == error::header_too_large);
    CHECK(o.consumed == over.size() - 2);  // refused at the end of the 101st field line
}

TEST_CASE("request_parser: linear time when fed one byte per call") {
    // 100 fields of ~10 KiB each, a byte at a time: quadratic rescanning would take minutes.
    std::string head = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 100; ++i) head += "X-" + std::to_string(i) + ": " + std::string(10'000, 'v') + "\r\n";
    head += "\r\n";
    request_parser parser{head.size()};
    starling::http::parse_result r{};
    for (char c : head) r = parser.put(std::string_view{&c, 1});
    CHECK(r.status == parse_status::complete);
    CHECK(parser.get().fields.size() == 100);
    CHECK(parser.get().fields.get("X-99")->size() == 10'000);
}

TEST_CASE("request_parser: the error and status of a fresh parser") {
    request_parser parser;
    CHECK(parser.status() == parse_status::need_more);
    CHECK_FALSE(parser.error());
    CHECK(parser.get().method.empty());
    const starling::http::parse_result r = parser.put("");
    CHECK(r.status == parse_status::need_more);
    CHECK(r.consumed == 0);
}

TEST_CASE("request_parser: errors belong to the handshake_failed condition") {
    const outcome o = whole("GET / HTTP/1.0\r\n\r\n");
    CHECK(o.ec == starling::condition::handshake_failed);
    CHECK(o.ec.category() == starling::error_category());
}
