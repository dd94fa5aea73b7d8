// Typed request parameters declared in handler signatures: query parameters, headers, cookies and
// path segments, all under the same rules. Query parameters:
//
//     [](starling::websocket& ws, starling::query<"room", std::string, "default"> room,
//        starling::query<"page", int, "1"> page) -> starling::task<> { ... }
//
// The name is part of the type and checked at compile time. A parameter is required unless it has a
// default (given as the text it would have in a URL) or is a std::optional / std::vector. Values are
// resolved once per connection, before the upgrade: a missing or invalid value rejects the connection
// with HTTP 400 and a message such as "Missing required parameter: 'room'". starling::header<"X-API-Key",
// T>, starling::cookie<"session", T> and starling::path<"room", T> read the same way from the request's
// headers, its Cookie header and the segments of the endpoint's path template (a value that does not
// coerce is a 400 there too; a path that does not match the template is a 404 before any of this).
#pragma once

#include <cstddef>      // std::size_t
#include <optional>     // std::optional parameters and results
#include <string>       // std::string messages
#include <string_view>  // std::string_view names
#include <type_traits>  // std::false_type / std::true_type traits
#include <utility>      // std::move
#include <vector>       // std::vector parameters

#include "starling/http/cookies.hpp"
#include "starling/http/headers.hpp"
#include "starling/http/path_template.hpp"
#include "starling/protocol/utf8_sequence.hpp"
#include "starling/protocol/query.hpp"
#include "starling/api/query_coercion.hpp"

namespace starling {

namespace detail {
struct absent_t {};
}  // namespace detail

/// A string usable as a template argument: `query<"room", ...>`. Built at compile time only.
template <std::size_t N>
struct fixed_string {
    char chars[N]{};
    bool present = true;  // false only for the "no default" marker

    consteval fixed_string(const char (&text)[N]) {
        for (std::size_t i = 0; i < N; ++i) chars[i] = text[i];
    }
    consteval explicit fixed_string(detail::absent_t) : present(false) {}

    constexpr std::string_view view() const noexcept { return {chars, N - 1}; }
};

namespace detail {

inline constexpr fixed_string<1> no_default{absent_t{}};

/// Query parameter names: non-empty, made of URL-unreserved characters (RFC 3986), so the name in the
/// signature is exactly the one a client writes.
constexpr bool is_valid_parameter_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok) return false;
    }
    return true;
}

template <class T>
struct optional_traits : std::false_type {};
template <class T>
struct optional_traits<std::optional<T>> : std::true_type {
    using element = T;
};

template <class T>
struct vector_traits : std::false_type {};
template <class T>
struct vector_traits<std::vector<T>> : std::true_type {
    using element = T;
};

/// The type whose coercion applies: T itself, or the element of an optional / vector.
template <class T>
struct coerced {
    using type = T;
};
template <class T>
struct coerced<std::optional<T>> {
    using type = T;
};
template <class T>
struct coerced<std::vector<T>> {
    using type = T;
};
template <class T>
using coerced_type = typename coerced<T>::type;

}  // namespace detail

/// What went wrong resolving a parameter; its text is the HTTP 400 body (or the 1008 close reason).
struct parameter_error {
    std::string message;
};

namespace detail {

/// Where typed parameters are read from: one upgrade request.
struct request_values {
    const query_params* query = nullptr;
    const http::headers* headers = nullptr;
    std::string_view path;           // the request's path, still percent-encoded
    std::string_view path_template;  // the endpoint's path, with its {name} segments
};

/// What every typed parameter is made of: its value, and how to read it.
struct request_parameter_tag {};

template <class T>
class parameter_value : public request_parameter_tag {
public:
    using value_type = T;

    explicit parameter_value(T value) : value_(std::move(value)) {}

    const T& value() const& noexcept { return value_; }
    T&& value() && noexcept { return std::move(value_); }
    const T& operator*() const noexcept { return value_; }
    const T* operator->() const noexcept { return &value_; }
    operator const T&() const noexcept { return value_; }

private:
    T value_;
};

enum class parameter_kind { query, header, cookie, path };

template <class Self, class T, fixed_string Default, class One, class All>
std::optional<Self> resolve_parameter(std::string_view name, One&& one, All&& all, parameter_error& error);

}  // namespace detail

/// A typed query parameter: `starling::query<"room", std::string, "lobby">`.
template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class query : public detail::parameter_value<T> {
    static_assert(detail::is_valid_parameter_name(Name.view()),
                  "starling::query: the parameter name must be non-empty and use only letters, digits, "
                  "'-', '.', '_' or '~'");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::query;
    using detail::parameter_value<T>::parameter_value;

    /// Reads this parameter from a connection's query string; the last value wins when a key repeats.
    static std::optional<query> resolve(const query_params& params, parameter_error& error) {
        return detail::resolve_parameter<query, T, Default>(
            name, [&] { return params.get(name); }, [&] { return params.get_all(name); }, error);
    }
    static std::optional<query> resolve(const detail::request_values& from, parameter_error& error) {
        return resolve(*from.query, error);
    }
};

/// A typed request header: `starling::header<"X-API-Key", std::string>`. The name is matched
/// case-insensitively; a repeated header gives its first value (a std::vector gets them all).
template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class header : public detail::parameter_value<T> {
    static_assert(http::detail::is_token(Name.view()),
                  "starling::header: the header name must be a non-empty HTTP token (letters, digits and "
                  "!#$%&'*+-.^_`|~)");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::header;
    using detail::parameter_value<T>::parameter_value;

    static std::optional<header> resolve(const detail::request_values& from, parameter_error& error) {
        return detail::resolve_parameter<header, T, Default>(
            name, [&] { return from.headers->get(name); }, [&] { return from.headers->get_all(name); }, error);
    }
};

/// A typed cookie of the request's Cookie header: `starling::cookie<"session", std::string>`. Names
/// are case-sensitive; the value is taken as sent (no percent-decoding).
template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class cookie : public detail::parameter_value<T> {
    static_assert(http::detail::is_token(Name.view()),
                  "starling::cookie: the cookie name must be a non-empty HTTP token (letters, digits and "
                  "!#$%&'*+-.^_`|~)");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::cookie;
    using detail::parameter_value<T>::parameter_value;

    static std::optional<cookie> resolve(const detail::request_values& from, parameter_error& error) {
        return detail::resolve_parameter<cookie, T, Default>(
            name, [&] { return http::find_cookie(*from.headers, name); },
            [&] { return http::find_cookies(*from.headers, name); }, error);
    }
};

/// A typed segment of the endpoint's path template: `starling::path<"room", std::string>` for
/// app.websocket("/rooms/{room}/ws", ...). The segment is percent-decoded ('+' stays '+').
template <fixed_string Name, class T>
class path : public detail::parameter_value<T> {
    static_assert(detail::is_valid_parameter_name(Name.view()),
                  "starling::path: the parameter name must be non-empty and use only letters, digits, "
                  "'-', '.', '_' or '~'");
    static_assert(!detail::vector_traits<T>::value && !detail::optional_traits<T>::value,
                  "starling::path: a path parameter is one segment, always present: declare its type itself");
    static_assert(!std::is_same_v<T, std::string_view>,
                  "starling::path: the segment is decoded into a value of its own: use std::string");
public:
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = false;
    static constexpr detail::parameter_kind kind = detail::parameter_kind::path;
    using detail::parameter_value<T>::parameter_value;

    static std::optional<path> resolve(const detail::request_values& from, parameter_error& error) {
        std::string decoded;
        const auto one = [&]() -> std::optional<std::string_view> {
            const auto segment = http::path_segment(from.path_template, from.path, name);
            if (!segment) return std::nullopt;
            decoded = percent_decode(*segment, /*plus_is_space=*/false);
            return std::string_view(decoded);
        };
        return detail::resolve_parameter<path, T, detail::no_default>(
            name, one, [] { return std::vector<std::string_view>{}; }, error);
    }
};

namespace detail {

/// True for query, header, cookie and path parameters.
template <class T>
inline constexpr bool is_request_parameter = std::is_base_of_v<request_parameter_tag, T>;

/// A decoded value as an error message quotes it. The message is an HTTP body or a close reason, both
/// text, so the quote must be UTF-8 even when the value is not: valid text is quoted as it is, and
/// each byte of an ill-formed piece is written percent-encoded again ("%FF"), as the client sent it,
/// so the client sees exactly which bytes were refused. (A literal "%FF" that the client itself
/// encoded as "%25FF" looks the same; the message is for reading, not for parsing back.)
inline std::string quote_value(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const utf8_step step = next_utf8_step(text);
        if (step.valid) {
            out.append(text.substr(0, step.size));
        } else {
            for (const char c : text.substr(0, step.size)) {
                const auto byte = static_cast<unsigned char>(c);
                out += '%';
                out += hex[byte >> 4];
                out += hex[byte & 0xF];
            }
        }
        text.remove_prefix(step.size);
    }
    return out;
}

template <class Element>
std::optional<Element> coerce_one(std::string_view name, std::string_view text, parameter_error& error) {
    auto value = query_coercion<Element>::parse(text);
    if (!value) {
        error.message = "Invalid value '" + quote_value(text) + "' for parameter '" + std::string(name) +
                        "': expected " + std::string(query_coercion<Element>::expected);
    }
    return value;
}

}  // namespace detail

namespace detail {

/// The rules every typed parameter follows, wherever its text comes from: `one()` is its value if
/// present, `all()` every value (for a std::vector).
template <class Self, class T, fixed_string Default, class One, class All>
std::optional<Self> resolve_parameter(std::string_view name, One&& one, All&& all, parameter_error& error) {
    using element = coerced_type<T>;
    static_assert(query_coercible<element>,
                  "starling: no coercion for this parameter type; use a string, integer, floating "
                  "point, bool, an enum with starling::enum_names, std::optional / std::vector of those, "
                  "or specialise starling::query_coercion for your type");
    if constexpr (vector_traits<T>::value) {
        T values;
        for (std::string_view text : all()) {
            auto value = coerce_one<element>(name, text, error);
            if (!value) return std::nullopt;
            values.push_back(std::move(*value));
        }
        if (values.empty() && Default.present) {
            auto value = coerce_one<element>(name, Default.view(), error);
            if (!value) return std::nullopt;
            values.push_back(std::move(*value));
        }
        return Self(std::move(values));
    } else {
        const std::optional<std::string_view> text = one();
        if (!text) {
            if constexpr (Default.present) {
                auto value = coerce_one<element>(name, Default.view(), error);
                if (!value) return std::nullopt;
                return Self(T(std::move(*value)));
            } else if constexpr (optional_traits<T>::value) {
                return Self(T{});
            } else {
                error.message = "Missing required parameter: '" + std::string(name) + "'";
                return std::nullopt;
            }
        }
        auto value = coerce_one<element>(name, *text, error);
        if (!value) return std::nullopt;
        return Self(T(std::move(*value)));
    }
}

}  // namespace detail

}  // namespace starling
