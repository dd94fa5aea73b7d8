// The server side of the RFC 6455 opening handshake (section 4.2), sans I/O: judge a parsed request,
// and build the 101 that accepts it or the HTTP error that refuses it.
#pragma once

#include <array>        // std::array decoded key
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <string>       // std::string responses and accept key
#include <string_view>  // std::string_view inputs and reason phrases
#include <system_error> // std::error_code
#include <vector>       // std::vector repeated field values

#include "starling/protocol/base64.hpp"
#include "starling/protocol/sha1.hpp"
#include "starling/protocol/error.hpp"
#include "starling/http/headers.hpp"
#include "starling/http/request.hpp"

namespace starling {

/// Appended to the client's key before hashing (RFC 6455 section 1.3).
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)). Surrounding whitespace
/// of the key is ignored, as section 4.2.2 says, so a value read from any header source works.
inline std::string compute_accept_key(std::string_view client_key) {
    std::string input{http::detail::trim_ows(client_key)};
    input += websocket_guid;
    const detail::sha1_digest digest = detail::sha1(input);
    return detail::base64_encode(digest);
}

/// True if the request asks for a WebSocket upgrade at all, whether or not it is a valid one: this
/// tells an upgrade to refuse with 400/426 from a plain GET to serve as HTTP.
inline bool is_websocket_upgrade(const http::request& req) {
    return req.fields.has_token("Upgrade", "websocket");
}

namespace detail {

/// True if the request announces a body: a Transfer-Encoding field of any value, or a Content-Length
/// that is not exactly a run of zeros. A malformed or repeated-and-different Content-Length counts as
/// a body too: whatever it means, the request is not one with nothing after its head.
inline bool announces_body(const http::request& req) {
    if (req.fields.contains("Transfer-Encoding")) return true;
    for (const std::string_view value : req.fields.get_all("Content-Length")) {
        const std::string_view digits = http::detail::trim_ows(value);
        if (digits.empty() || digits.find_first_not_of('0') != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace detail

/// Checks a request against RFC 6455 section 4.2.1, in this order: GET (bad_method), HTTP/1.1
/// (bad_http_version), exactly one Host (missing_host), Upgrade lists "websocket" (missing_upgrade),
/// Connection lists "upgrade" (missing_connection_upgrade), exactly one Sec-WebSocket-Key
/// (missing_key when absent) that is the base64 of exactly 16 bytes (bad_key), exactly one
/// Sec-WebSocket-Version of "13" (unsupported_version, also when absent), no body
/// (request_has_body: a Content-Length other than 0, or any Transfer-Encoding). Empty when acceptable.
inline std::error_code validate_upgrade_request(const http::request& req) {
    if (req.method != "GET") return error::bad_method;
    if (req.version != "HTTP/1.1") return error::bad_http_version;
    // RFC 9112 section 3.2 answers two Host fields with 400, like a missing one.
    if (req.fields.get_all("Host").size() != 1) return error::missing_host;
    if (!req.fields.has_token("Upgrade", "websocket")) return error::missing_upgrade;
    if (!req.fields.has_token("Connection", "upgrade")) return error::missing_connection_upgrade;

    const std::vector<std::string_view> keys = req.fields.get_all("Sec-WebSocket-Key");
    if (keys.empty()) return error::missing_key;
    if (keys.size() != 1) return error::bad_key;  // section 11.3.1: at most once in a request
    std::array<std::uint8_t, 16> nonce{};
    std::size_t written = 0;
    // A 16-byte value encodes to exactly 24 characters, so a longer key cannot fit `nonce` and fails.
    if (!detail::base64_decode(http::detail::trim_ows(keys.front()), nonce, written) || written != nonce.size()) {
        return error::bad_key;
    }

    const std::vector<std::string_view> versions = req.fields.get_all("Sec-WebSocket-Version");
    if (versions.size() != 1 || http::detail::trim_ows(versions.front()) != "13") {
        return error::unsupported_version;
    }
    // The bytes after the head are read as WebSocket frames: a body there would be taken for frames
    // (and a client that meant to send one is confused about the protocol), so refuse it outright.
    if (detail::announces_body(req)) return error::request_has_body;
    return {};
}

/// The standard reason phrase of `status`, or "" for one this library never sends (an empty reason
/// phrase is valid HTTP).
constexpr std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

/// The 101 response accepting a handshake whose key is `client_key`, with `extra_headers` (whole
/// header lines: the agreed Sec-WebSocket-Extensions, "Sec-WebSocket-Protocol: chat\r\n") after the standard ones.
inline std::string make_accept_response(std::string_view client_key, std::string_view extra_headers = {}) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    out += compute_accept_key(client_key);
    out += "\r\n";
    out += extra_headers;
    out += "\r\n";
    return out;
}

/// A complete HTTP/1.1 response: status line, Content-Type (left out when `content_type` is empty),
/// Content-Length, Connection: close, then `extra_headers`, then the body. `extra_headers` is zero or
/// more whole header lines ("Name: value\r\n"); a missing final CRLF is added. Connection: close
/// because after a refused or plain-HTTP exchange the server closes rather than reading a second
/// request.
inline std::string make_response(int status, std::string_view content_type, std::string_view body,
                                 std::string_view extra_headers = {}) {
    std::string out = "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\n";
    if (!content_type.empty()) {
        out += "Content-Type: ";
        out += content_type;
        out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(body.size());
    out += "\r\nConnection: close\r\n";
    out += extra_headers;
    if (!extra_headers.empty() && !extra_headers.ends_with("\r\n")) out += "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

/// The status refusing a handshake with `ec`: its http_status_for status, 500 for an error_code from
/// another category.
inline int error_response_status(std::error_code ec) noexcept {
    return ec.category() == error_category() ? http_status_for(static_cast<error>(ec.value())) : 500;
}

/// The response refusing a handshake with `ec`: error_response_status, a text/plain body of
/// ec.message(), and on 426 the Sec-WebSocket-Version that section 4.4 requires, naming the version
/// this server speaks.
inline std::string make_error_response(std::error_code ec) {
    const int status = error_response_status(ec);
    const std::string_view extra = status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "";
    return make_response(status, "text/plain; charset=utf-8", ec.message(), extra);
}

}  // namespace starling
