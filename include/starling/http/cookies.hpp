// Cookies of a request: the pairs of its Cookie header (RFC 6265 section 4.2.1), "a=1; b=2", looked
// up by name. Values are returned as the client sent them (only a pair of surrounding double quotes
// is removed): cookies carry no percent-decoding of their own, whatever an application put in them.
#pragma once

#include <cstddef>      // std::size_t
#include <optional>     // std::optional lookup result
#include <string_view>  // std::string_view names and values
#include <vector>       // std::vector repeated cookies

#include "starling/http/headers.hpp"

namespace starling::http {

namespace detail {

/// Calls `found(value)` for each pair named `name` in one Cookie header value, in order. Pieces are
/// split on ';' with optional whitespace around them; a piece without '=' is skipped.
template <class Found>
void for_each_cookie(std::string_view header_value, std::string_view name, Found&& found) {
    while (!header_value.empty()) {
        const std::size_t semicolon = header_value.find(';');
        const std::string_view piece = trim_ows(header_value.substr(0, semicolon));
        header_value = semicolon == std::string_view::npos ? std::string_view{} : header_value.substr(semicolon + 1);
        const std::size_t equals = piece.find('=');
        if (equals == std::string_view::npos) continue;
        if (trim_ows(piece.substr(0, equals)) != name) continue;  // cookie names are case-sensitive
        std::string_view value = trim_ows(piece.substr(equals + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        found(value);
    }
}

}  // namespace detail

/// Every value of the cookie `name`, across all Cookie fields, in arrival order.
inline std::vector<std::string_view> find_cookies(const headers& fields, std::string_view name) {
    std::vector<std::string_view> values;
    for (const std::string_view line : fields.get_all("Cookie"))
        detail::for_each_cookie(line, name, [&](std::string_view value) { values.push_back(value); });
    return values;
}

/// The first value of the cookie `name`. A browser sends the cookie with the most specific path
/// first (RFC 6265 section 5.4), so the first is the one meant for this request.
inline std::optional<std::string_view> find_cookie(const headers& fields, std::string_view name) {
    for (const std::string_view line : fields.get_all("Cookie")) {
        std::optional<std::string_view> first;
        detail::for_each_cookie(line, name, [&](std::string_view value) {
            if (!first) first = value;
        });
        if (first) return first;
    }
    return std::nullopt;
}

}  // namespace starling::http
