// How a query-parameter string becomes a typed value: the built-in coercions (UTF-8 strings, integers with
// range checks, floating point, bool, enums by name) and the customisation point for user types.
//
// To make your own type usable in starling::query<"name", YourType>, specialise query_coercion:
//
//     template <> struct starling::query_coercion<point> {
//         static constexpr std::string_view expected = "point as x,y";      // used in error messages
//         static std::optional<point> parse(std::string_view text);         // nullopt: invalid value
//     };
//
// Enums are coerced by name once you list their names:
//
//     template <> inline constexpr auto starling::enum_names<color> =
//         std::array{std::pair{std::string_view("red"), color::red}, ...};
#pragma once

#include <array>         // std::array enum name tables
#include <charconv>      // std::from_chars
#include <concepts>      // std::integral, std::floating_point
#include <cstddef>       // std::size_t
#include <optional>      // std::optional results
#include <string>        // std::string values
#include <string_view>   // std::string_view inputs
#include <system_error>  // std::errc
#include <type_traits>   // std::is_enum_v
#include <utility>       // std::pair

#include "starling/protocol/utf8.hpp"  // is_valid_utf8 for string values

namespace starling {

/// Customisation point: specialise for your type (see the top of this file).
template <class T>
struct query_coercion;

/// Names of an enum's values, for coercion by name: specialise as an array of (name, value) pairs.
template <class E>
inline constexpr int enum_names = 0;

namespace detail {

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

template <class E>
concept named_enum = std::is_enum_v<E> && !std::is_same_v<std::remove_cvref_t<decltype(enum_names<E>)>, int>;

}  // namespace detail

// Strings are text: a percent-decoded value that is not UTF-8 ("%FF") is refused here, so a handler
// never has to check, and never echoes bytes a browser could not display or a peer would fail a text
// message over. A handler that wants raw bytes can declare a type of its own.
template <>
struct query_coercion<std::string> {
    static constexpr std::string_view expected = "UTF-8 text";
    static std::optional<std::string> parse(std::string_view text) {
        if (!is_valid_utf8(text)) return std::nullopt;
        return std::string(text);
    }
};

template <>
struct query_coercion<std::string_view> {
    static constexpr std::string_view expected = "UTF-8 text";
    // The view points into the connection's own query parameters, which live as long as it does.
    static std::optional<std::string_view> parse(std::string_view text) {
        if (!is_valid_utf8(text)) return std::nullopt;
        return text;
    }
};

template <>
struct query_coercion<bool> {
    static constexpr std::string_view expected = "boolean";
    static std::optional<bool> parse(std::string_view text) {
        for (std::string_view yes : {"true", "1", "yes", "on"})
            if (detail::iequals(text, yes)) return true;
        for (std::string_view no : {"false", "0", "no", "off"})
            if (detail::iequals(text, no)) return false;
        return std::nullopt;
    }
};

template <std::integral T>
    requires(!std::is_same_v<T, bool>)
struct query_coercion<T> {
    static constexpr std::string_view expected = "integer";
    /// The whole text must be a base-10 integer that fits T: "5x", "", " 5" and overflow are invalid.
    static std::optional<T> parse(std::string_view text) {
        T value{};
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return value;
    }
};

template <std::floating_point T>
struct query_coercion<T> {
    static constexpr std::string_view expected = "number";
    static std::optional<T> parse(std::string_view text) {
        T value{};
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return value;
    }
};

template <detail::named_enum E>
struct query_coercion<E> {
    static constexpr std::string_view expected = "enum value name";
    /// Names match exactly first, then case-insensitively.
    static std::optional<E> parse(std::string_view text) {
        for (const auto& [name, value] : enum_names<E>)
            if (name == text) return value;
        for (const auto& [name, value] : enum_names<E>)
            if (detail::iequals(name, text)) return value;
        return std::nullopt;
    }
};

/// True when T has a coercion (built in or specialised by the user).
template <class T>
concept query_coercible = requires(std::string_view text) {
    { query_coercion<T>::parse(text) } -> std::same_as<std::optional<T>>;
    { query_coercion<T>::expected } -> std::convertible_to<std::string_view>;
};

}  // namespace starling
