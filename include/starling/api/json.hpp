// JSON for send_json / receive_json: a small writer for C++ values, and an owning document type for
// what simdjson parses, so a received value outlives the connection's next receive.
#pragma once

#include <charconv>      // std::to_chars for numbers
#include <cmath>         // std::isfinite
#include <concepts>      // std::integral, std::floating_point
#include <cstddef>       // std::nullptr_t
#include <cstdint>       // std::int64_t, std::uint64_t: how simdjson hands out integers
#include <cstdio>        // std::snprintf for control-character escapes
#include <initializer_list>  // json_object's field list
#include <limits>        // std::numeric_limits<float> for get<float>
#include <map>           // std::map detection
#include <optional>      // std::optional values
#include <ranges>        // std::ranges::range for arrays
#include <simdjson.h>    // simdjson::dom parser, document and element
#include <stdexcept>     // std::runtime_error for invalid_json
#include <string>        // std::string output
#include <string_view>   // std::string_view keys and strings
#include <type_traits>   // std::remove_cvref_t, std::conditional_t
#include <utility>       // std::move, std::exchange, std::in_range, std::index_sequence

namespace starling {

/// Already-serialised JSON, written as it is.
struct raw_json {
    using serialized_json = void;  // written verbatim by write_json
    std::string text;
};

/// Thrown by receive_json() for a message that is not JSON. Left uncaught in a handler, it closes the
/// connection with 1007 (invalid payload) rather than 1011.
class invalid_json : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

inline void write_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (const char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                out += buf;
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

template <class T>
concept string_like = std::convertible_to<const T&, std::string_view>;

/// What may name a field: text. nullptr converts to std::string_view in C++20, and would crash.
template <class T>
concept json_key = string_like<T> && !std::same_as<std::remove_cvref_t<T>, std::nullptr_t>;

template <class T>
concept map_like = requires(const T& m) {
    typename T::key_type;
    typename T::mapped_type;
    requires string_like<typename T::key_type>;
    m.begin()->second;
};

}  // namespace detail

class json_document;

/// Appends `value` as JSON to `out`: strings, numbers, bools, null (nullptr, empty optional), ranges
/// (arrays), maps with string keys (objects), raw_json, and received json_documents or their parts.
template <class T>
void write_json(std::string& out, const T& value);

inline void write_json(std::string& out, const simdjson::dom::element& value) { out += simdjson::to_string(value); }

template <class T>
void write_json(std::string& out, const T& value) {
    if constexpr (std::same_as<T, std::nullptr_t>) {
        out += "null";
    } else if constexpr (std::same_as<T, bool>) {
        out += value ? "true" : "false";
    } else if constexpr (requires { typename T::serialized_json; }) {
        out += value.text;  // raw_json, json_object
    } else if constexpr (std::same_as<T, simdjson::simdjson_result<simdjson::dom::element>>) {
        // doc["key"]: written as the element it holds (whatever its JSON type), or null if absent.
        if (value.error()) out += "null"; else write_json(out, value.value_unsafe());
    } else if constexpr (detail::string_like<T>) {
        detail::write_json_string(out, std::string_view(value));
    } else if constexpr (std::integral<T>) {
        char buf[32];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
        (void)ec;  // 32 bytes hold any integer
        out.append(buf, end);
    } else if constexpr (std::floating_point<T>) {
        if (!std::isfinite(value)) {
            out += "null";  // JSON has no NaN or infinity
            return;
        }
        char buf[64];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
        (void)ec;  // 64 bytes hold any shortest-round-trip double
        const std::string_view text(buf, static_cast<std::size_t>(end - buf));
        out += text;
        // Keep a double a double for the reader: 3.0 is written "3.0", not "3".
        if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
    } else if constexpr (requires { value.has_value(); *value; }) {
        if (value.has_value()) write_json(out, *value); else out += "null";
    } else if constexpr (requires { value.root(); }) {
        write_json(out, value.root());
    } else if constexpr (detail::map_like<T>) {
        out.push_back('{');
        bool first = true;
        for (const auto& [key, item] : value) {
            if (!first) out.push_back(',');
            first = false;
            detail::write_json_string(out, std::string_view(key));
            out.push_back(':');
            write_json(out, item);
        }
        out.push_back('}');
    } else if constexpr (std::ranges::range<T>) {
        out.push_back('[');
        bool first = true;
        for (const auto& item : value) {
            if (!first) out.push_back(',');
            first = false;
            write_json(out, item);
        }
        out.push_back(']');
    } else {
        static_assert(sizeof(T) == 0,
                      "starling::write_json: unsupported type; use strings, numbers, bools, nullptr, "
                      "optionals, ranges, maps with string keys, or starling::raw_json");
    }
}

template <class T>
std::string to_json(const T& value) {
    std::string out;
    write_json(out, value);
    return out;
}

/// One "key": value pair of a json_object, serialised when made, so the values may differ in type.
struct json_field {
    template <class T>
    json_field(std::string_view key, const T& value) {
        detail::write_json_string(text, key);
        text.push_back(':');
        write_json(text, value);
    }
    std::string text;
};

/// A heterogeneous JSON object: `json_object{{"id", ws.id()}, {"echo", data}, {"timestamp", 1.5}}`.
struct json_object {
    using serialized_json = void;
    json_object(std::initializer_list<json_field> fields) {
        text.push_back('{');
        bool first = true;
        for (const json_field& f : fields) {
            if (!first) text.push_back(',');
            first = false;
            text += f.text;
        }
        text.push_back('}');
    }
    std::string text;
};

// ---- Objects without a braced list ------------------------------------------------------------
// g++ 12 rejects a braced list inside a co_await expression ("array used as initializer"), so
// `co_await ws.send_json(json_object{{"k", v}})` does not compile. These forms take plain arguments
// instead: keys and values alternating, or one add() per field on a builder.

namespace detail {

template <class... Args>
consteval bool keys_are_text() {
    constexpr std::size_t count = sizeof...(Args);
    constexpr bool is_key[count + 1] = {json_key<Args>..., true};  // +1: no zero-length array
    for (std::size_t i = 0; i < count; i += 2)
        if (!is_key[i]) return false;
    return true;
}

template <class Key, class Value>
void write_json_field(std::string& out, const Key& key, const Value& value) {
    if (out.size() > 1) out.push_back(',');  // past the '{'
    write_json_string(out, std::string_view(key));
    out.push_back(':');
    write_json(out, value);
}

template <class Key, class Value, class... More>
void write_json_fields(std::string& out, const Key& key, const Value& value, const More&... more) {
    write_json_field(out, key, value);
    if constexpr (sizeof...(More) > 0) write_json_fields(out, more...);
}

}  // namespace detail

/// `to_json_object("type", "move", "x", 3, "ok", true)` is `{"type":"move","x":3,"ok":true}`: keys
/// (text) and values (anything to_json takes) alternating. What `ws.send_json(key, value, ...)` sends.
template <class... Args>
std::string to_json_object(const Args&... args) {
    static_assert(sizeof...(Args) % 2 == 0,
                  "starling::send_json(key, value, ...) / starling::to_json_object: keys and values come in "
                  "pairs (\"key\", value, \"key\", value, ...), and this call has an odd number of arguments");
    static_assert(detail::keys_are_text<Args...>(),
                  "starling::send_json(key, value, ...) / starling::to_json_object: every key (the 1st, 3rd, "
                  "5th... argument) must be text: a string literal, std::string or std::string_view");
    std::string out = "{";
    // Only a well-formed call goes on, so a mistake gives the one message above, not more errors.
    if constexpr (sizeof...(Args) % 2 == 0 && detail::keys_are_text<Args...>()) {
        if constexpr (sizeof...(Args) > 0) detail::write_json_fields(out, args...);
    }
    out.push_back('}');
    return out;
}

/// An object built one field at a time, for fields that depend on conditions or loops:
///
///     starling::json_object_builder reply;
///     reply.add("type", "move");
///     if (hit) reply.add("target", *hit);
///     co_await ws.send_json(reply);
///
/// `text` is a complete object after every add(), so the builder can be sent or nested at any point.
/// Each value is serialised when added.
struct json_object_builder {
    using serialized_json = void;  // written verbatim by write_json

    template <class Value>
    json_object_builder& add(std::string_view key, const Value& value) & {
        text.pop_back();  // the closing '}'
        detail::write_json_field(text, key, value);
        text.push_back('}');
        return *this;
    }
    /// On a temporary: `starling::json_object_builder().add("a", 1).add("b", 2)`.
    template <class Value>
    json_object_builder&& add(std::string_view key, const Value& value) && {
        return std::move(add(key, value));
    }

    std::string text = "{}";
};

// ---- Typed fields of a received document --------------------------------------------------------

namespace detail {

// Character types are not numbers here (get<std::string> reads text); signed and unsigned char are,
// being std::int8_t and std::uint8_t.
template <class T>
concept character = std::same_as<T, char> || std::same_as<T, wchar_t> || std::same_as<T, char8_t> ||
                    std::same_as<T, char16_t> || std::same_as<T, char32_t>;

template <class T>
concept json_readable =
    std::same_as<T, bool> || (std::integral<T> && !character<T>) || std::floating_point<T> ||
    std::same_as<T, std::string> || std::same_as<T, std::string_view> || std::same_as<T, simdjson::dom::element> ||
    std::same_as<T, simdjson::dom::object> || std::same_as<T, simdjson::dom::array>;

/// One step of a path: a key into an object, or an index into an array.
template <class Step>
simdjson::simdjson_result<simdjson::dom::element> json_step(const simdjson::dom::element& at, const Step& step) noexcept {
    if constexpr (json_key<Step>) {
        simdjson::dom::object object;
        if (at.get(object) != simdjson::SUCCESS) return simdjson::INCORRECT_TYPE;
        return object[std::string_view(step)];
    } else {
        simdjson::dom::array array;
        if (at.get(array) != simdjson::SUCCESS) return simdjson::INCORRECT_TYPE;
        if (!std::in_range<std::size_t>(step)) return simdjson::INDEX_OUT_OF_BOUNDS;
        return array.at(static_cast<std::size_t>(step));
    }
}

/// The value as T, or nothing when it is of another JSON type or out of T's range.
template <class T>
std::optional<T> json_as(const simdjson::dom::element& value) {
    if constexpr (std::same_as<T, bool> || std::same_as<T, std::string_view> || std::same_as<T, simdjson::dom::element> ||
                  std::same_as<T, simdjson::dom::object> || std::same_as<T, simdjson::dom::array>) {
        T out{};
        if (value.get(out) != simdjson::SUCCESS) return std::nullopt;
        return out;
    } else if constexpr (std::same_as<T, std::string>) {
        std::string_view out;
        if (value.get(out) != simdjson::SUCCESS) return std::nullopt;
        return std::string(out);
    } else if constexpr (std::integral<T>) {
        // simdjson keeps integers as int64 or uint64 (and refuses a double such as 3.0 for either);
        // each is then checked against T's range, so 300 is no std::uint8_t and -1 no unsigned.
        using wide = std::conditional_t<std::is_signed_v<T>, std::int64_t, std::uint64_t>;
        wide out = 0;
        if (value.get(out) != simdjson::SUCCESS || !std::in_range<T>(out)) return std::nullopt;
        return static_cast<T>(out);
    } else {
        double out = 0;  // any JSON number: simdjson converts integers too
        if (value.get(out) != simdjson::SUCCESS) return std::nullopt;
        if constexpr (std::same_as<T, float>) {
            if (out > std::numeric_limits<float>::max() || out < -std::numeric_limits<float>::max()) return std::nullopt;
        }
        return static_cast<T>(out);
    }
}

template <class Step>
concept json_path_step = json_key<Step> || (std::integral<Step> && !std::same_as<Step, bool>);

template <class T, class... Path>
consteval void check_json_get() {
    static_assert(json_readable<T>,
                  "starling::json_get<T> / json_document::get<T>: T must be bool, an integer type, float, double, "
                  "std::string, std::string_view (valid while the document is), or simdjson::dom::element, "
                  "object or array");
    static_assert((json_path_step<Path> && ...),
                  "starling::json_get / json_document::get: each step of the path is a key (text) or an array "
                  "index (an integer)");
}

}  // namespace detail

/// The value at `path` under `at` as T: `json_get<int>(element, "player", "score")`,
/// `json_get<std::string>(element, "players", 0, "name")`. Nothing if a step is missing (no such key,
/// an index past the end, not an object or array where the path goes on) or the value is of another
/// type or out of T's range. Never throws for what the JSON holds.
template <class T, class... Path>
std::optional<T> json_get(const simdjson::dom::element& at, const Path&... path) {
    detail::check_json_get<T, Path...>();
    if constexpr (detail::json_readable<T> && (detail::json_path_step<Path> && ...)) {
        simdjson::dom::element here = at;
        const bool found = ((detail::json_step(here, path).get(here) == simdjson::SUCCESS) && ...);
        if (!found) return std::nullopt;
        return detail::json_as<T>(here);
    } else {
        return std::nullopt;
    }
}

/// A parsed JSON message that owns its storage: valid for as long as you keep it, across any number of
/// later receives. `doc["type"]`, `doc.root()` give simdjson elements.
class json_document {
public:
    json_document() = default;

    /// Parses `text`; throws invalid_json if it is not JSON. `parser` is reused scratch space only.
    static json_document parse(simdjson::dom::parser& parser, std::string_view text) {
        json_document d;
        // simdjson reads up to SIMDJSON_PADDING bytes past the end, so parse from a padded copy.
        const simdjson::padded_string padded(text);
        const auto result = parser.parse_into_document(d.document_, padded);
        if (result.error()) throw invalid_json(std::string("invalid JSON: ") + simdjson::error_message(result.error()));
        d.parsed_ = true;
        return d;
    }

    /// parse() for what receive_text_for() gave: nothing stays nothing.
    static std::optional<json_document> parse_optional(simdjson::dom::parser& parser,
                                                       const std::optional<std::string>& text) {
        if (!text) return std::nullopt;
        return parse(parser, *text);
    }

    json_document(json_document&& other) noexcept
        : document_(std::move(other.document_)), parsed_(std::exchange(other.parsed_, false)) {}
    json_document& operator=(json_document&& other) noexcept {
        document_ = std::move(other.document_);
        parsed_ = std::exchange(other.parsed_, false);
        return *this;
    }

    // Elements point at the document object itself, so they are made on demand, never stored: that
    // keeps a moved json_document valid.
    simdjson::dom::element root() const noexcept { return document_.root(); }
    simdjson::simdjson_result<simdjson::dom::element> operator[](std::string_view key) const noexcept { return root()[key]; }
    std::string dump() const { return simdjson::to_string(root()); }

    /// The field as T, or nothing if it is missing or of another type (see json_get): `doc.get<int>("n")`,
    /// `doc.get<std::string>("player", "name")`, `doc.get<double>("points", 0)`. Never throws for what
    /// the message holds; an empty (default-made or moved-from) document has no fields.
    template <class T, class... Path>
    std::optional<T> get(const Path&... path) const {
        if (!parsed_) return std::nullopt;
        return json_get<T>(root(), path...);
    }

    /// The field as the fallback's type, or the fallback: `doc.get_or("n", 0)`, `doc.get_or("ok", false)`.
    /// A text fallback (`doc.get_or("name", "anonymous")`) gives a std::string.
    template <class T>
    auto get_or(std::string_view key, const T& fallback) const {
        using result = std::conditional_t<detail::json_key<T> && !std::same_as<T, std::string_view>, std::string, T>;
        return get<result>(key).value_or(result(fallback));
    }

private:
    simdjson::dom::document document_;
    bool parsed_ = false;  // root() of a document never parsed into reads no tape
};

}  // namespace starling
