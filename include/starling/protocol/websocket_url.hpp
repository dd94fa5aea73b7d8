// ws:// and wss:// URLs as a client dials them (RFC 6455 section 3): scheme, host (a name, an IPv4
// address or a bracketed IPv6 one), optional port, and the request target (path and query). A
// fragment is refused, as the RFC requires; so is user information, which a WebSocket URL cannot
// carry.
#pragma once

#include <charconv>     // std::from_chars port
#include <cstdint>      // std::uint16_t port
#include <optional>     // std::optional result
#include <string>       // std::string parts
#include <string_view>  // std::string_view input

#include "starling/http/headers.hpp"  // iequals

namespace starling {

struct websocket_url {
    bool secure = false;       // wss://
    std::string host;          // as written, without IPv6 brackets: what DNS (or the address parser) takes
    std::uint16_t port = 0;    // the default for the scheme when none is written
    std::string target = "/";  // path and query, what the request line asks for
    /// The Host field's value: the host as written (brackets kept), with the port unless it is the
    /// scheme's default.
    std::string host_field() const {
        std::string field = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        if (port != (secure ? 443 : 80)) field += ":" + std::to_string(port);
        return field;
    }
};

/// The URL's parts, or nothing with `why` set to what is wrong with it.
inline std::optional<websocket_url> parse_websocket_url(std::string_view text, std::string& why) {
    websocket_url url;
    const std::size_t scheme_end = text.find("://");
    const std::string_view scheme = scheme_end == std::string_view::npos ? std::string_view{} : text.substr(0, scheme_end);
    if (http::detail::iequals(scheme, "ws")) {
        url.secure = false;
    } else if (http::detail::iequals(scheme, "wss")) {
        url.secure = true;
    } else {
        why = "not a WebSocket URL (ws:// or wss://): " + std::string(text);
        return std::nullopt;
    }
    std::string_view rest = text.substr(scheme_end + 3);
    if (rest.find('#') != std::string_view::npos) {
        why = "a WebSocket URL cannot have a fragment: " + std::string(text);
        return std::nullopt;
    }
    const std::size_t authority_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, authority_end);
    if (authority_end != std::string_view::npos) {
        std::string_view target = rest.substr(authority_end);
        url.target = target.front() == '?' ? "/" + std::string(target) : std::string(target);
    }
    for (const char c : url.target) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
            why = "the URL's path or query has a space or a control character (percent-encode it): " + std::string(text);
            return std::nullopt;
        }
    }
    if (authority.find('@') != std::string_view::npos) {
        why = "a WebSocket URL cannot carry user information: " + std::string(text);
        return std::nullopt;
    }
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            why = "unterminated IPv6 address in " + std::string(text);
            return std::nullopt;
        }
        url.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                why = "unexpected text after the IPv6 address in " + std::string(text);
                return std::nullopt;
            }
            port_text = after.substr(1);
        }
    } else {
        const std::size_t colon = authority.rfind(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
        if (url.host.find(':') != std::string::npos) {
            why = "an IPv6 address in a URL goes in brackets ([::1]): " + std::string(text);
            return std::nullopt;
        }
    }
    if (url.host.empty()) {
        why = "no host in " + std::string(text);
        return std::nullopt;
    }
    url.port = url.secure ? 443 : 80;
    if (!port_text.empty() || (authority.size() > 0 && authority.back() == ':')) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
            why = "bad port in " + std::string(text);
            return std::nullopt;
        }
        url.port = static_cast<std::uint16_t>(value);
    }
    return url;
}

}  // namespace starling
