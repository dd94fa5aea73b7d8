// Typed query parameters declared in handler signatures:
//
//     [](starling::websocket& ws, starling::query<"room", std::string, "default"> room,
//        starling::query<"page", int, "1"> page) -> starling::task<> { ... }
//
// The name is part of the type and checked at compile time. A parameter is required unless it has a
// default (given as the text it would have in a URL) or is a std::optional / std::vector. Values are
// resolved once per connection, before the upgrade: a missing or invalid value rejects the connection
// with HTTP 400 and a message such as "Missing required parameter: 'room'".
#pragma once

#include <cstddef>      // std::size_t
#include <optional>     // std::optional parameters and results
#include <string>       // std::string messages
#include <string_view>  // std::string_view names
#include <type_traits>  // std::false_type / std::true_type traits
#include <utility>      // std::move
#include <vector>       // std::vector parameters

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

template <fixed_string Name, class T, fixed_string Default = detail::no_default>
class query {
    static_assert(detail::is_valid_parameter_name(Name.view()),
                  "starling::query: the parameter name must be non-empty and use only letters, digits, "
                  "'-', '.', '_' or '~'");
public:
    using value_type = T;
    static constexpr std::string_view name = Name.view();
    static constexpr bool has_default = Default.present;

    explicit query(T value) : value_(std::move(value)) {}

    const T& value() const& noexcept { return value_; }
    T&& value() && noexcept { return std::move(value_); }
    const T& operator*() const noexcept { return value_; }
    const T* operator->() const noexcept { return &value_; }
    operator const T&() const noexcept { return value_; }

    /// Reads this parameter from a connection's query string.
    static std::optional<query> resolve(const query_params& params, parameter_error& error);

private:
    T value_;
};

namespace detail {

template <class T>
struct is_query_parameter : std::false_type {};
template <fixed_string Name, class T, fixed_string Default>
struct is_query_parameter<query<Name, T, Default>> : std::true_type {};

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

template <fixed_string Name, class T, fixed_string Default>
std::optional<query<Name, T, Default>> query<Name, T, Default>::resolve(const query_params& params,
                                                                        parameter_error& error) {
    using element = detail::coerced_type<T>;
    static_assert(query_coercible<element>,
                  "starling::query: no coercion for this parameter type; use a string, integer, floating "
                  "point, bool, an enum with starling::enum_names, std::optional / std::vector of those, "
                  "or specialise starling::query_coercion for your type");
    if constexpr (detail::vector_traits<T>::value) {
        T values;
        for (std::string_view text : params.get_all(name)) {
            auto value = detail::coerce_one<element>(name, text, error);
            if (!value) return std::nullopt;
            values.push_back(std::move(*value));
        }
        if (values.empty() && Default.present) {
            auto value = detail::coerce_one<element>(name, Default.view(), error);
            if (!value) return std::nullopt;
            values.push_back(std::move(*value));
        }
        return query(std::move(values));
    } else {
        // The last value wins when a key repeats, as in query_params::get.
        const std::optional<std::string_view> text = params.get(name);
        if (!text) {
            if constexpr (Default.present) {
                auto value = detail::coerce_one<element>(name, Default.view(), error);
                if (!value) return std::nullopt;
                return query(T(std::move(*value)));
            } else if constexpr (detail::optional_traits<T>::value) {
                return query(T{});
            } else {
                error.message = "Missing required parameter: '" + std::string(name) + "'";
                return std::nullopt;
            }
        }
        auto value = detail::coerce_one<element>(name, *text, error);
        if (!value) return std::nullopt;
        return query(T(std::move(*value)));
    }
}

}  // namespace starling
