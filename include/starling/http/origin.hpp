// Origin allow-lists: whether a request's Origin header (RFC 6454: "scheme://host[:port]", or
// "null") is one an endpoint accepts. Patterns are exact origins ("https://example.com"), origins
// whose host is a wildcard for every subdomain ("https://*.example.com": a.example.com and
// a.b.example.com, not example.com itself), either without a scheme to accept any scheme
// ("*.example.com", "example.com:8443"), or "*" for every origin. Case does not matter; a port is part
// of the host, so "https://example.com" does not accept "https://example.com:8443", unless the
// pattern ends in ":*" for any port ("http://localhost:*", what a development server needs).
#pragma once

#include <span>         // std::span of patterns
#include <string>       // std::string patterns
#include <string_view>  // std::string_view origins

#include "starling/http/headers.hpp"  // iequals

namespace starling::http {

namespace detail {

/// `host` without its ":port", if it has one ("[::1]:8080" -> "[::1]").
inline std::string_view without_port(std::string_view host) noexcept {
    const std::size_t colon = host.rfind(':');
    if (colon == std::string_view::npos) return host;
    if (host.find(']', colon) != std::string_view::npos) return host;  // a colon inside an IPv6 literal
    return host.substr(0, colon);
}

inline bool iends_with(std::string_view text, std::string_view suffix) noexcept {
    return text.size() >= suffix.size() && iequals(text.substr(text.size() - suffix.size()), suffix);
}

}  // namespace detail

/// True when `origin` matches `pattern` (see the top of this file).
inline bool origin_matches(std::string_view pattern, std::string_view origin) {
    if (pattern == "*") return true;
    const std::size_t origin_scheme_end = origin.find("://");
    if (origin_scheme_end == std::string_view::npos) return detail::iequals(pattern, origin);  // "null"
    std::string_view host = origin.substr(origin_scheme_end + 3);
    const std::size_t pattern_scheme_end = pattern.find("://");
    if (pattern_scheme_end != std::string_view::npos) {
        if (!detail::iequals(pattern.substr(0, pattern_scheme_end), origin.substr(0, origin_scheme_end))) return false;
        pattern.remove_prefix(pattern_scheme_end + 3);
    }
    if (pattern.ends_with(":*")) {  // any port, or none
        pattern.remove_suffix(2);
        host = detail::without_port(host);
    }
    if (pattern.starts_with("*.")) {
        const std::string_view suffix = pattern.substr(1);  // ".example.com", port included if any
        return host.size() > suffix.size() && detail::iends_with(host, suffix) &&
               host.substr(0, host.size() - suffix.size()).find_first_of("/:") == std::string_view::npos;
    }
    return detail::iequals(pattern, host);
}

/// True when `origin` matches one of `patterns`.
inline bool origin_allowed(std::span<const std::string> patterns, std::string_view origin) {
    for (const std::string& pattern : patterns)
        if (origin_matches(pattern, origin)) return true;
    return false;
}

}  // namespace starling::http
