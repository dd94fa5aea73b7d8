// The client's side of the opening handshake (RFC 6455 section 4.1), sans I/O: the upgrade request
// it sends, and the checks on the server's response before a single frame is trusted. Strict, as
// the server's side is: a response that is not exactly an accepted upgrade of what was asked for
// fails the connection, with a message that says what was wrong.
#pragma once

#include <charconv>     // std::from_chars status
#include <cstddef>      // std::size_t
#include <optional>     // std::optional compression agreed
#include <string>       // std::string request and messages
#include <string_view>  // std::string_view head
#include <vector>       // std::vector subprotocols

#include "starling/http/headers.hpp"
#include "starling/protocol/handshake.hpp"  // compute_accept_key
#include "starling/protocol/permessage_deflate.hpp"
#include "starling/protocol/websocket_url.hpp"

namespace starling {

/// The status line and fields of the server's answer to an upgrade request.
struct upgrade_response {
    int status = 0;
    std::string reason;
    http::headers fields;
};

namespace detail {

/// The subprotocols as one Sec-WebSocket-Protocol value, or empty when a name is not a token.
inline bool valid_subprotocols(const std::vector<std::string>& names) {
    for (const std::string& name : names)
        if (!http::detail::is_token(name)) return false;
    return true;
}

}  // namespace detail

/// The GET request that asks `url`'s server to upgrade, with `key` (16 random bytes, base64), the
/// caller's extra fields and subprotocols, and `extensions` (a whole Sec-WebSocket-Extensions line
/// from deflate_offer_field, or nothing). Fields the handshake itself sets are the caller's mistake,
/// refused by the caller before this (see connect()).
inline std::string make_upgrade_request(const websocket_url& url, std::string_view key, const http::headers& extra,
                                        const std::vector<std::string>& subprotocols, std::string_view extensions = {}) {
    std::string out = "GET ";
    out += url.target;
    out += " HTTP/1.1\r\nHost: ";
    out += url.host_field();
    out += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    out += key;
    out += "\r\nSec-WebSocket-Version: 13\r\n";
    if (!subprotocols.empty()) {
        out += "Sec-WebSocket-Protocol: ";
        for (std::size_t i = 0; i < subprotocols.size(); ++i) {
            if (i) out += ", ";
            out += subprotocols[i];
        }
        out += "\r\n";
    }
    out += extensions;
    for (const auto& [name, value] : extra) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

/// Fields of the upgrade request that the handshake sets itself: an extra field by one of these
/// names would contradict it.
inline bool is_handshake_field(std::string_view name) {
    for (std::string_view own : {"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                                 "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Content-Length",
                                 "Transfer-Encoding"})
        if (http::detail::iequals(name, own)) return true;
    return false;
}

/// Where the response head ends: the offset just past its blank line, or npos while incomplete.
inline std::size_t response_head_end(std::string_view received) {
    const std::size_t blank = received.find("\r\n\r\n");
    return blank == std::string_view::npos ? std::string_view::npos : blank + 4;
}

/// Parses a response head (everything up to and including its blank line). False, with `why`, for
/// anything that is not a well-formed HTTP/1.1 status line and fields.
inline bool parse_upgrade_response(std::string_view head, upgrade_response& out, std::string& why) {
    if (head.ends_with("\r\n\r\n")) head.remove_suffix(2);  // each line keeps its own CRLF below
    std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 101 Switching Protocols": version, one space, three digits, one space, any reason.
    if (!status_line.starts_with("HTTP/1.1 ") || status_line.size() < 12 ||
        (status_line.size() > 12 && status_line[12] != ' ')) {
        why = "handshake failed: not an HTTP/1.1 response";
        return false;
    }
    const std::string_view digits = status_line.substr(9, 3);
    int status = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + 3, status);
    if (ec != std::errc() || end != digits.data() + 3 || status < 100) {
        why = "handshake failed: bad status line";
        return false;
    }
    out.status = status;
    out.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : std::string();
    while (line_end != std::string_view::npos && line_end + 2 < head.size()) {
        const std::size_t next = head.find("\r\n", line_end + 2);
        const std::string_view line = head.substr(line_end + 2, next - line_end - 2);
        if (line.find_first_of("\r\n") != std::string_view::npos || !http::parse_field_line(line, out.fields)) {
            why = "handshake failed: malformed header line in the response";
            return false;
        }
        line_end = next;
    }
    return true;
}

/// The outcome of checking a response: an error message, or the subprotocol the server chose (empty
/// for none) and the compression it agreed to (none when it declined the offer).
struct upgrade_check {
    std::string error;
    std::string subprotocol;
    std::optional<deflate_agreement> compression;
    bool ok() const noexcept { return error.empty(); }
};

/// Checks that `response` accepts the upgrade asked with `key`, `offered` subprotocols and the
/// `compression` offered (null: none) (RFC 6455 section 4.1, the client's checks): 101, Upgrade:
/// websocket, Connection: Upgrade, the accept key, no extension or subprotocol that was not offered,
/// and an answer to the compression offer that RFC 7692 allows.
inline upgrade_check check_upgrade_response(const upgrade_response& response, std::string_view key,
                                            const std::vector<std::string>& offered,
                                            const client_compression_options* compression = nullptr) {
    upgrade_check result;
    if (response.status != 101) {
        result.error = "handshake failed: status " + std::to_string(response.status);
        if (response.status >= 300 && response.status < 400) {
            const auto location = response.fields.get("Location");
            result.error += " (a redirect";
            if (location) result.error += " to " + std::string(*location);
            result.error += "; redirects are not followed)";
        }
        return result;
    }
    if (!response.fields.has_token("Upgrade", "websocket")) {
        result.error = "handshake failed: the response has no Upgrade: websocket";
        return result;
    }
    if (!response.fields.has_token("Connection", "upgrade")) {
        result.error = "handshake failed: the response has no Connection: Upgrade";
        return result;
    }
    const auto accept = response.fields.get_all("Sec-WebSocket-Accept");
    if (accept.size() != 1 || http::detail::trim_ows(accept.front()) != compute_accept_key(key)) {
        result.error = "bad Sec-WebSocket-Accept";
        return result;
    }
    deflate_answer deflate = judge_deflate_response(response.fields.get_all("Sec-WebSocket-Extensions"), compression);
    if (!deflate.error.empty()) {
        result.error = std::move(deflate.error);
        return result;
    }
    result.compression = deflate.agreed;
    const auto protocols = response.fields.get_all("Sec-WebSocket-Protocol");
    if (protocols.size() > 1) {
        result.error = "handshake failed: the server chose more than one subprotocol";
        return result;
    }
    if (protocols.size() == 1) {
        const std::string_view chosen = http::detail::trim_ows(protocols.front());
        bool was_offered = false;
        for (const std::string& name : offered) was_offered = was_offered || name == chosen;
        if (!was_offered) {
            result.error = "handshake failed: the server chose a subprotocol that was not offered: " + std::string(chosen);
            return result;
        }
        result.subprotocol = std::string(chosen);
    }
    return result;
}

}  // namespace starling
