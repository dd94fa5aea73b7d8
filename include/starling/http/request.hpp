// An HTTP/1.1 request head as the request parser produces it: request line and header fields. There
// is no body, because a WebSocket upgrade request has none.
#pragma once

#include <cstddef>      // std::size_t
#include <string>       // std::string request-line parts
#include <string_view>  // std::string_view path and query views

#include "starling/http/headers.hpp"

namespace starling::http {

struct request {
    std::string method;   // e.g. "GET"
    std::string target;   // origin form: "/chat?room=1"
    std::string version;  // "HTTP/1.1"
    headers fields;

    /// The target up to its '?' or '#', still percent-encoded: "/chat" for "/chat?room=1".
    std::string_view path() const noexcept {
        const std::string_view t = target;
        return t.substr(0, t.find_first_of("?#"));
    }

    /// What follows the first '?' of the target, up to any '#', still percent-encoded: "room=1" for
    /// "/chat?room=1". Empty when there is no query.
    std::string_view query_string() const noexcept {
        std::string_view t = target;
        t = t.substr(0, t.find('#'));  // a '?' inside a fragment does not start a query
        const std::size_t question = t.find('?');
        if (question == std::string_view::npos) return {};
        return t.substr(question + 1);
    }
};

}  // namespace starling::http
