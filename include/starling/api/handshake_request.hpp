// The upgrade request as an authentication hook sees it: headers, cookies, query parameters, path and
// the client's address. A view: valid during the hook only.
#pragma once

#include <optional>     // std::optional lookups
#include <string_view>  // std::string_view names and values

#include "starling/http/cookies.hpp"
#include "starling/http/headers.hpp"
#include "starling/http/request.hpp"
#include "starling/protocol/query.hpp"
#include "starling/session/tcp_stream.hpp"  // client_address

namespace starling {

class handshake_request {
public:
    handshake_request(const http::request& request, const starling::query_params& query, const client_address& client) noexcept
        : request_(request), query_(query), client_(client) {}

    const http::headers& headers() const noexcept { return request_.fields; }
    /// The first header called `name` (case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const { return request_.fields.get(name); }
    /// The cookie called `name`, as sent.
    std::optional<std::string_view> cookie(std::string_view name) const { return http::find_cookie(request_.fields, name); }
    /// The query string's parameters, percent-decoded.
    const starling::query_params& query_params() const noexcept { return query_; }
    /// The request path, still percent-encoded, without the query string.
    std::string_view path() const noexcept { return request_.path(); }
    /// The peer's IP address and port.
    const client_address& client() const noexcept { return client_; }

    /// The token of an "Authorization: Bearer <token>" header, if there is one.
    std::optional<std::string_view> bearer_token() const {
        const auto value = request_.fields.get("Authorization");
        if (!value) return std::nullopt;
        const std::string_view text = http::detail::trim_ows(*value);
        constexpr std::string_view scheme = "Bearer ";
        if (text.size() <= scheme.size() || !http::detail::iequals(text.substr(0, scheme.size()), scheme)) return std::nullopt;
        return http::detail::trim_ows(text.substr(scheme.size()));
    }

private:
    const http::request& request_;
    const starling::query_params& query_;
    const client_address& client_;
};

}  // namespace starling
