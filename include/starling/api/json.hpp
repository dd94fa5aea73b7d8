// JSON for send_json / receive_json: a small writer for C++ values, and an owning document type for
// what simdjson parses, so a received value outlives the connection's next receive.
#pragma once

#include <charconv>      // std::to_chars for numbers
#include <cmath>         // std::isfinite
#include <concepts>      // std::integral, std::floating_point
#include <cstddef>       // std::nullptr_t
#include <cstdio>        // std::snprintf for control-character escapes
#include <initializer_list>  // json_object's field list
#include <map>           // std::map detection
#include <optional>      // std::optional values
#include <ranges>        // std::ranges::range for arrays
#include <simdjson.h>    // simdjson::dom parser, document and element
#include <stdexcept>     // std::runtime_error for invalid_json
#include <string>        // std::string output
#include <string_view>   // std::string_view keys and strings
#include <utility>       // std::move

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
        return d;
    }

    // Elements point at the document object itself, so they are made on demand, never stored: that
    // keeps a moved json_document valid.
    simdjson::dom::element root() const noexcept { return document_.root(); }
    simdjson::simdjson_result<simdjson::dom::element> operator[](std::string_view key) const noexcept { return root()[key]; }
    std::string dump() const { return simdjson::to_string(root()); }

private:
    simdjson::dom::document document_;
};

}  // namespace starling
