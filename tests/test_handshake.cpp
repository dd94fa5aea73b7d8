// The server side of the opening handshake: the accept key, every reason validate_upgrade_request
// refuses a request (with the status that answers it), real clients' requests, and the exact bytes of
// every response.
#include <starling/protocol/handshake.hpp>

#include <doctest/doctest.h>

#include <initializer_list>  // std::initializer_list field lists
#include <ostream>           // lets doctest print std::error_code in failure messages
#include <string>            // std::string requests and responses
#include <string_view>       // std::string_view expected bytes
#include <system_error>      // std::error_code, std::errc
#include <utility>           // std::pair
#include <vector>            // std::vector field lists

#include <starling/protocol/error.hpp>                // starling::error, http_status_for
#include <starling/http/request_parser.hpp>  // parsing the real clients' requests

namespace {

using starling::error;
using starling::http::request;
using field_list = std::vector<std::pair<std::string, std::string>>;

const field_list valid_fields = {
    {"Host", "server.example.com"},
    {"Upgrade", "websocket"},
    {"Connection", "Upgrade"},
    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
    {"Sec-WebSocket-Version", "13"},
};

request make_request(const field_list& fields, std::string method = "GET", std::string version = "HTTP/1.1") {
    request req;
    req.method = std::move(method);
    req.target = "/chat";
    req.version = std::move(version);
    for (const auto& [name, value] : fields) req.fields.add(name, value);
    return req;
}

field_list without(std::string_view name) {
    field_list out;
    for (const auto& f : valid_fields) {
        if (f.first != name) out.push_back(f);
    }
    return out;
}

field_list replacing(std::string_view name, std::string value) {
    field_list out = without(name);
    out.emplace_back(std::string{name}, std::move(value));
    return out;
}

field_list adding(std::string name, std::string value) {
    field_list out = valid_fields;
    out.emplace_back(std::move(name), std::move(value));
    return out;
}

request parse(std::string_view text) {
    starling::http::request_parser parser;
    const starling::http::parse_result r = parser.put(text);
    REQUIRE(r.status == starling::http::parse_status::complete);
    REQUIRE(r.consumed == text.size());
    return parser.release();
}

/// The request as a client would send it, so each case also goes through the parser.
std::string serialize(const request& req) {
    std::string text = req.method + " " + req.target + " " + req.version + "\r\n";
    for (const auto& [name, value] : req.fields) text += name + ": " + value + "\r\n";
    return text + "\r\n";
}

/// Validates both the request as built and the request after a trip through the parser.
std::error_code validate_both_ways(const request& req) {
    const std::error_code direct = starling::validate_upgrade_request(req);
    CHECK(starling::validate_upgrade_request(parse(serialize(req))) == direct);
    return direct;
}

}  // namespace

// ---- accept key ----

TEST_CASE("handshake: the accept key of RFC 6455 section 1.3") {
    CHECK(starling::compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("handshake: more accept keys, and surrounding whitespace is not part of the key") {
    CHECK(starling::compute_accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK(starling::compute_accept_key("wDqumtseNBJdhkihL6PW7w==") == "0FFP+2nmNIf/h+4BP36k9uzrYGk=");
    CHECK(starling::compute_accept_key("AAAAAAAAAAAAAAAAAAAAAA==") == "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
    CHECK(starling::compute_accept_key(" \tdGhlIHNhbXBsZSBub25jZQ== \t") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(starling::websocket_guid == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
}

// ---- validate_upgrade_request ----

TEST_CASE("handshake: a minimal valid upgrade request") {
    const request req = make_request(valid_fields);
    CHECK_FALSE(validate_both_ways(req));
    CHECK(starling::is_websocket_upgrade(req));
}

TEST_CASE("handshake: not GET is bad_method, answered with 400") {
    for (const char* method : {"POST", "HEAD", "PUT", "OPTIONS", "CONNECT", "get", "Get", "GETX"}) {
        CAPTURE(method);
        CHECK(validate_both_ways(make_request(valid_fields, method)) == error::bad_method);
    }
    CHECK(starling::http_status_for(error::bad_method) == 400);
}

TEST_CASE("handshake: not HTTP/1.1 is bad_http_version, answered with 400") {
    // Only a hand-built request can get here: the parser refuses other versions itself.
    for (const char* version : {"HTTP/1.0", "HTTP/2.0", "HTTP/2", "", "http/1.1"}) {
        CAPTURE(version);
        CHECK(starling::validate_upgrade_request(make_request(valid_fields, "GET", version)) ==
              error::bad_http_version);
    }
    CHECK(starling::http_status_for(error::bad_http_version) == 400);
}

TEST_CASE("handshake: no Host, or two, is missing_host, answered with 400") {
    CHECK(validate_both_ways(make_request(without("Host"))) == error::missing_host);
    CHECK(validate_both_ways(make_request(adding("Host", "other.example.com"))) == error::missing_host);
    CHECK(validate_both_ways(make_request(adding("host", "server.example.com"))) == error::missing_host);
    // An empty Host is a Host (RFC 9112 allows it when the authority is empty).
    CHECK_FALSE(validate_both_ways(make_request(replacing("Host", ""))));
    CHECK(starling::http_status_for(error::missing_host) == 400);
}

TEST_CASE("handshake: Upgrade without the websocket token is missing_upgrade, answered with 400") {
    CHECK(validate_both_ways(make_request(without("Upgrade"))) == error::missing_upgrade);
    for (const char* value : {"", "h2c", "websockets", "web socket", "websocket/13", "x-websocket", "WebSocket2"}) {
        CAPTURE(value);
        CHECK(validate_both_ways(make_request(replacing("Upgrade", value))) == error::missing_upgrade);
    }
    CHECK(starling::http_status_for(error::missing_upgrade) == 400);
}

TEST_CASE("handshake: Connection without the upgrade token is missing_connection_upgrade, answered with 400") {
    CHECK(validate_both_ways(make_request(without("Connection"))) == error::missing_connection_upgrade);
    for (const char* value : {"", "keep-alive", "close", "upgraded", "keep-alive upgrade", "Upgrade;", "websocket"}) {
        CAPTURE(value);
        CHECK(validate_both_ways(make_request(replacing("Connection", value))) == error::missing_connection_upgrade);
    }
    CHECK(starling::http_status_for(error::missing_connection_upgrade) == 400);
}

TEST_CASE("handshake: no Sec-WebSocket-Key is missing_key, answered with 400") {
    CHECK(validate_both_ways(make_request(without("Sec-WebSocket-Key"))) == error::missing_key);
    CHECK(starling::http_status_for(error::missing_key) == 400);
}

TEST_CASE("handshake: a key that is not base64 of exactly 16 bytes is bad_key, answered with 400") {
    for (const char* key : {
             "",                          // empty
             "short",                     //
             "dGhlIHNhbXBsZSBub25jZQ",    // padding left off
             "dGhlIHNhbXBsZSBub25jZQ=",   // half the padding
             "dGhlIHNhbXBsZSBub25jZQ===",  // too much padding
             "dGhlIHNhbXBsZSBub25jZR==",  // non-zero bits under the padding
             "dGhlIHNhbXBsZSBub25jZQ==dGhl",  // trailing data
             "dGhlIHNhbXBsZSBub25j ZQ==",     // space inside
             "dGhlIHNhbXBsZSBub25jZQ-_",      // URL-safe alphabet
             "eHh4eHh4eHh4eHh4eHh4",      // 15 bytes
             "eHh4eHh4eHh4eHh4eHh4eHg=",  // 17 bytes
             "eHh4eHh4eHh4eHh4eHh4eHh4eHg=",  // 20 bytes
             "0123456789abcdef",          // 16 characters, not 16 bytes
         }) {
        CAPTURE(key);
        CHECK(validate_both_ways(make_request(replacing("Sec-WebSocket-Key", key))) == error::bad_key);
    }
    // Section 11.3.1: the key appears at most once, even if both copies are valid.
    CHECK(validate_both_ways(make_request(adding("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))) ==
          error::bad_key);
    CHECK(starling::http_status_for(error::bad_key) == 400);
}

TEST_CASE("handshake: any version other than one 13 is unsupported_version, answered with 426") {
    CHECK(validate_both_ways(make_request(without("Sec-WebSocket-Version"))) == error::unsupported_version);
    for (const char* version : {"", "8", "12", "14", "013", "13.0", "13, 8", "8, 13", "thirteen"}) {
        CAPTURE(version);
        CHECK(validate_both_ways(make_request(replacing("Sec-WebSocket-Version", version))) ==
              error::unsupported_version);
    }
    CHECK(validate_both_ways(make_request(adding("Sec-WebSocket-Version", "13"))) == error::unsupported_version);
    CHECK(starling::http_status_for(error::unsupported_version) == 426);
}

TEST_CASE("handshake: a request that announces a body is request_has_body, answered with 400") {
    // What follows the head is read as WebSocket frames, so a body would be taken for frames.
    for (const char* length : {"5", "1", "00001", "18446744073709551616", "-0", "0x0", "abc", "", "0, 5", "5, 5"}) {
        CAPTURE(length);
        CHECK(validate_both_ways(make_request(adding("Content-Length", length))) == error::request_has_body);
    }
    for (const char* coding : {"chunked", "gzip, chunked", "identity", ""}) {
        CAPTURE(coding);
        CHECK(validate_both_ways(make_request(adding("Transfer-Encoding", coding))) == error::request_has_body);
    }
    field_list both = adding("Content-Length", "5");
    both.emplace_back("Transfer-Encoding", "chunked");
    CHECK(validate_both_ways(make_request(both)) == error::request_has_body);
    // A second Content-Length that disagrees with a first 0 still announces a body.
    field_list repeated = adding("Content-Length", "0");
    repeated.emplace_back("Content-Length", "7");
    CHECK(validate_both_ways(make_request(repeated)) == error::request_has_body);
    // Names are case-insensitive here as everywhere.
    CHECK(validate_both_ways(make_request(adding("content-length", "2"))) == error::request_has_body);
    CHECK(validate_both_ways(make_request(adding("TRANSFER-ENCODING", "chunked"))) == error::request_has_body);

    CHECK(starling::http_status_for(error::request_has_body) == 400);
    CHECK(std::error_code(error::request_has_body) == starling::condition::handshake_failed);
    CHECK(std::error_code(error::request_has_body).message() == "WebSocket upgrade request must not have a body");
    CHECK(starling::make_error_response(error::request_has_body).starts_with("HTTP/1.1 400 Bad Request\r\n"));
}

TEST_CASE("handshake: Content-Length 0 is no body, and is accepted") {
    for (const char* length : {"0", "000", " 0 "}) {
        CAPTURE(length);
        CHECK_FALSE(validate_both_ways(make_request(adding("Content-Length", length))));
    }
    field_list twice = adding("Content-Length", "0");
    twice.emplace_back("Content-Length", "0");
    CHECK_FALSE(validate_both_ways(make_request(twice)));
}

TEST_CASE("handshake: whitespace around key and version is ignored in hand-built requests") {
    // The parser trims values already; a request built by hand may not be.
    field_list fields = {{"Host", "a"}, {"Upgrade", " websocket "}, {"Connection", "\tUpgrade"}};
    fields.emplace_back("Sec-WebSocket-Key", " dGhlIHNhbXBsZSBub25jZQ==\t");
    fields.emplace_back("Sec-WebSocket-Version", " 13 ");
    CHECK_FALSE(starling::validate_upgrade_request(make_request(fields)));
}

TEST_CASE("handshake: problems are reported in a fixed order") {
    CHECK(starling::validate_upgrade_request(make_request({}, "POST", "HTTP/1.0")) == error::bad_method);
    CHECK(starling::validate_upgrade_request(make_request({}, "GET", "HTTP/1.0")) == error::bad_http_version);
    CHECK(validate_both_ways(make_request({})) == error::missing_host);
    CHECK(validate_both_ways(make_request({{"Host", "a"}})) == error::missing_upgrade);
    CHECK(validate_both_ways(make_request({{"Host", "a"}, {"Upgrade", "websocket"}})) ==
          error::missing_connection_upgrade);
    CHECK(validate_both_ways(make_request({{"Host", "a"}, {"Upgrade", "websocket"}, {"Connection", "upgrade"}})) ==
          error::missing_key);
    CHECK(validate_both_ways(make_request({{"Host", "a"},
                                           {"Upgrade", "websocket"},
                                           {"Connection", "upgrade"},
                                           {"Sec-WebSocket-Key", "bad"}})) == error::bad_key);
    CHECK(validate_both_ways(make_request({{"Host", "a"},
                                           {"Upgrade", "websocket"},
                                           {"Connection", "upgrade"},
                                           {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}})) ==
          error::unsupported_version);
    CHECK(validate_both_ways(make_request({{"Host", "a"},
                                           {"Upgrade", "websocket"},
                                           {"Connection", "upgrade"},
                                           {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                           {"Content-Length", "5"}})) == error::unsupported_version);
}

TEST_CASE("handshake: field names and token lists are case-insensitive") {
    const request req = make_request({
        {"hOST", "a"},
        {"upgrade", "WebSocket"},
        {"CONNECTION", "keep-alive, UPGRADE"},
        {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
        {"SEC-WEBSOCKET-VERSION", "13"},
    });
    CHECK_FALSE(validate_both_ways(req));
    CHECK(starling::is_websocket_upgrade(req));

    // Lists in several fields, extra tokens, odd spacing.
    CHECK_FALSE(validate_both_ways(make_request(replacing("Connection", "keep-alive,Upgrade"))));
    CHECK_FALSE(validate_both_ways(make_request(replacing("Connection", "Upgrade, keep-alive"))));
    CHECK_FALSE(validate_both_ways(make_request(replacing("Connection", " ,upgrade,, "))));
    CHECK_FALSE(validate_both_ways(make_request(replacing("Upgrade", "h2c, websocket"))));
    field_list split = without("Connection");
    split.emplace_back("Connection", "keep-alive");
    split.emplace_back("Connection", "Upgrade");
    CHECK_FALSE(validate_both_ways(make_request(split)));
}

// ---- real clients ----

TEST_CASE("handshake: Chrome's request is accepted") {
    const request req = parse(
        "GET /chat HTTP/1.1\r\n"
        "Host: localhost:9001\r\n"
        "Connection: Upgrade\r\n"
        "Pragma: no-cache\r\n"
        "Cache-Control: no-cache\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36\r\n"
        "Upgrade: websocket\r\n"
        "Origin: http://localhost:9001\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "Sec-WebSocket-Key: wDqumtseNBJdhkihL6PW7w==\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "\r\n");
    CHECK(starling::is_websocket_upgrade(req));
    CHECK_FALSE(starling::validate_upgrade_request(req));
    CHECK(starling::compute_accept_key(*req.fields.get("Sec-WebSocket-Key")) == "0FFP+2nmNIf/h+4BP36k9uzrYGk=");
}

TEST_CASE("handshake: Firefox's request, with Connection: keep-alive, Upgrade, is accepted") {
    const request req = parse(
        "GET /chat?room=1 HTTP/1.1\r\n"
        "Host: localhost:9001\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
        "Accept: */*\r\n"
        "Accept-Language: en-US,en;q=0.5\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Origin: http://localhost:9001\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Sec-Fetch-Dest: empty\r\n"
        "Sec-Fetch-Mode: websocket\r\n"
        "Sec-Fetch-Site: same-origin\r\n"
        "Pragma: no-cache\r\n"
        "Cache-Control: no-cache\r\n"
        "Upgrade: websocket\r\n"
        "\r\n");
    CHECK(starling::is_websocket_upgrade(req));
    CHECK_FALSE(starling::validate_upgrade_request(req));
    CHECK(req.path() == "/chat");
    CHECK(starling::make_accept_response(*req.fields.get("Sec-WebSocket-Key")) ==
          "HTTP/1.1 101 Switching Protocols\r\n"
          "Upgrade: websocket\r\n"
          "Connection: Upgrade\r\n"
          "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n"
          "\r\n");
}

TEST_CASE("handshake: Python websockets' request is accepted") {
    const request req = parse(
        "GET /ws HTTP/1.1\r\n"
        "Host: localhost:8765\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: E4WSEcseoWr4csPLS2QJHA==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "User-Agent: Python/3.11 websockets/12.0\r\n"
        "\r\n");
    CHECK(starling::is_websocket_upgrade(req));
    CHECK_FALSE(starling::validate_upgrade_request(req));
    CHECK(starling::compute_accept_key(*req.fields.get("Sec-WebSocket-Key")) == "7eQChgCtQMnVILefJAO6dK5JwPc=");
}

TEST_CASE("handshake: is_websocket_upgrade tells upgrades from plain requests") {
    CHECK_FALSE(starling::is_websocket_upgrade(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
    CHECK_FALSE(starling::is_websocket_upgrade(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n")));
    CHECK_FALSE(starling::is_websocket_upgrade(parse("GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")));
    CHECK(starling::is_websocket_upgrade(parse("GET / HTTP/1.1\r\nUPGRADE: h2c, WEBSOCKET\r\n\r\n")));
    // An upgrade attempt that will be refused is still an upgrade attempt: it gets 400/426, not a page.
    const request post = parse("POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    CHECK(starling::is_websocket_upgrade(post));
    CHECK(starling::validate_upgrade_request(post) == error::bad_method);
}

// ---- responses ----

TEST_CASE("handshake: the 101 response, byte for byte") {
    CHECK(starling::make_accept_response("dGhlIHNhbXBsZSBub25jZQ==") ==
          "HTTP/1.1 101 Switching Protocols\r\n"
          "Upgrade: websocket\r\n"
          "Connection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
          "\r\n");
}

TEST_CASE("handshake: reason phrases") {
    CHECK(starling::reason_phrase(101) == "Switching Protocols");
    CHECK(starling::reason_phrase(200) == "OK");
    CHECK(starling::reason_phrase(400) == "Bad Request");
    CHECK(starling::reason_phrase(404) == "Not Found");
    CHECK(starling::reason_phrase(405) == "Method Not Allowed");
    CHECK(starling::reason_phrase(408) == "Request Timeout");
    CHECK(starling::reason_phrase(426) == "Upgrade Required");
    CHECK(starling::reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(starling::reason_phrase(500) == "Internal Server Error");
    CHECK(starling::reason_phrase(503) == "Service Unavailable");
    CHECK(starling::reason_phrase(204) == "No Content");
    CHECK(starling::reason_phrase(599).empty());
    CHECK(starling::reason_phrase(0).empty());
    CHECK(starling::reason_phrase(-1).empty());
    static_assert(starling::reason_phrase(404) == "Not Found");
}

TEST_CASE("handshake: make_response, byte for byte") {
    CHECK(starling::make_response(200, "text/plain", "hello") ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: text/plain\r\n"
          "Content-Length: 5\r\n"
          "Connection: close\r\n"
          "\r\n"
          "hello");
    CHECK(starling::make_response(404, "text/html; charset=utf-8", "") ==
          "HTTP/1.1 404 Not Found\r\n"
          "Content-Type: text/html; charset=utf-8\r\n"
          "Content-Length: 0\r\n"
          "Connection: close\r\n"
          "\r\n");
    CHECK(starling::make_response(405, "text/plain", "GET only", "Allow: GET\r\n") ==
          "HTTP/1.1 405 Method Not Allowed\r\n"
          "Content-Type: text/plain\r\n"
          "Content-Length: 8\r\n"
          "Connection: close\r\n"
          "Allow: GET\r\n"
          "\r\n"
          "GET only");
    // The final CRLF of the extra headers may be left off; several lines keep their order.
    CHECK(starling::make_response(503, "text/plain", "busy", "Retry-After: 5\r\nX-A: b") ==
          "HTTP/1.1 503 Service Unavailable\r\n"
          "Content-Type: text/plain\r\n"
          "Content-Length: 4\r\n"
          "Connection: close\r\n"
          "Retry-After: 5\r\n"
          "X-A: b\r\n"
          "\r\n"
          "busy");
    // No Content-Type without a content type; an unknown status keeps the space before its empty reason.
    CHECK(starling::make_response(599, "", "") ==
          "HTTP/1.1 599 \r\n"
          "Content-Length: 0\r\n"
          "Connection: close\r\n"
          "\r\n");
}

TEST_CASE("handshake: make_response carries any body, binary and large") {
    const std::string body(100'000, '\0');
    const std::string response = starling::make_response(200, "application/octet-stream", body);
    CHECK(response.find("Content-Length: 100000\r\n") != std::string::npos);
    CHECK(response.size() == response.find("\r\n\r\n") + 4 + body.size());
    CHECK(response.substr(response.size() - body.size()) == body);
}

TEST_CASE("handshake: error responses, byte for byte") {
    CHECK(starling::make_error_response(error::unsupported_version) ==
          "HTTP/1.1 426 Upgrade Required\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 47\r\n"
          "Connection: close\r\n"
          "Sec-WebSocket-Version: 13\r\n"
          "\r\n"
          "unsupported Sec-WebSocket-Version (13 required)");
    CHECK(starling::make_error_response(error::header_too_large) ==
          "HTTP/1.1 431 Request Header Fields Too Large\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 31\r\n"
          "Connection: close\r\n"
          "\r\n"
          "request header fields too large");
    CHECK(starling::make_error_response(error::not_found) ==
          "HTTP/1.1 404 Not Found\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 24\r\n"
          "Connection: close\r\n"
          "\r\n"
          "no endpoint at this path");
    CHECK(starling::make_error_response(error::bad_key) ==
          "HTTP/1.1 400 Bad Request\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 48\r\n"
          "Connection: close\r\n"
          "\r\n"
          "Sec-WebSocket-Key is not 16 base64-encoded bytes");
}

TEST_CASE("handshake: every handshake error gets its status and its message as the body") {
    for (int e = static_cast<int>(error::header_too_large); e <= static_cast<int>(error::not_found); ++e) {
        const std::error_code ec = static_cast<error>(e);
        CAPTURE(ec.message());
        const std::string response = starling::make_error_response(ec);
        const int status = starling::http_status_for(static_cast<error>(e));
        CHECK(response.starts_with("HTTP/1.1 " + std::to_string(status) + " " +
                                   std::string{starling::reason_phrase(status)} + "\r\n"));
        CHECK(response.ends_with("\r\n\r\n" + ec.message()));
        CHECK(response.find("Content-Length: " + std::to_string(ec.message().size()) + "\r\n") != std::string::npos);
        CHECK((response.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos) == (status == 426));
    }
}

TEST_CASE("handshake: an error from another category is a 500") {
    const std::error_code ec = std::make_error_code(std::errc::connection_reset);
    const std::string response = starling::make_error_response(ec);
    CHECK(response.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    CHECK(response.ends_with("\r\n\r\n" + ec.message()));
}

TEST_CASE("handshake: a parser failure turns into the matching error response") {
    starling::http::request_parser parser{32};
    REQUIRE(parser.put("GET /a-rather-long-target-for-a-32-byte-limit HTTP/1.1\r\n").status ==
            starling::http::parse_status::failed);
    CHECK(starling::make_error_response(parser.error()).starts_with("HTTP/1.1 431 "));
}
