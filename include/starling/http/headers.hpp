// HTTP header fields as received: an ordered list of (name, value) pairs, looked up by name
// case-insensitively (RFC 9110 section 5.1), plus the ASCII helpers that field names and token lists
// need.
#pragma once

#include <cstddef>      // std::size_t
#include <optional>     // std::optional lookup result
#include <string>       // std::string owned names and values
#include <string_view>  // std::string_view lookups
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector field list

namespace starling::http {

namespace detail {

// Hand-rolled rather than <cctype>: those depend on the C locale and take int, and HTTP's case rules
// are plain ASCII.
constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

/// tchar of RFC 9110 section 5.6.2: what methods, field names and list tokens are made of.
constexpr bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

constexpr bool is_token(std::string_view text) noexcept {
    if (text.empty()) return false;
    for (char c : text) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

/// Optional whitespace (OWS): space and horizontal tab only.
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
    return text;
}

}  // namespace detail

/// Header fields in arrival order. Repeated names are kept as separate entries, because combining
/// them is only correct for list-valued fields and the caller knows which fields those are.
class headers {
public:
    using field = std::pair<std::string, std::string>;
    using const_iterator = std::vector<field>::const_iterator;

    void add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }

    /// The value of the first field called `name`, case-insensitively.
    std::optional<std::string_view> get(std::string_view name) const {
        for (const field& f : fields_) {
            if (detail::iequals(f.first, name)) return std::string_view{f.second};
        }
        return std::nullopt;
    }

    /// The values of every field called `name`, in arrival order.
    std::vector<std::string_view> get_all(std::string_view name) const {
        std::vector<std::string_view> values;
        for (const field& f : fields_) {
            if (detail::iequals(f.first, name)) values.emplace_back(f.second);
        }
        return values;
    }

    bool contains(std::string_view name) const { return get(name).has_value(); }

    /// True if any field called `name`, read as a comma-separated token list (RFC 9110 section 5.6.1:
    /// optional whitespace around elements, empty elements allowed), has an element equal to `token`
    /// ignoring ASCII case. This is how Connection and Upgrade must be read: browsers send
    /// `Connection: keep-alive, Upgrade`.
    bool has_token(std::string_view name, std::string_view token) const {
        if (token.empty()) return false;  // empty list elements are not tokens
        for (const field& f : fields_) {
            if (!detail::iequals(f.first, name)) continue;
            std::string_view rest = f.second;
            while (true) {
                const std::size_t comma = rest.find(',');
                if (detail::iequals(detail::trim_ows(rest.substr(0, comma)), token)) return true;
                if (comma == std::string_view::npos) break;
                rest.remove_prefix(comma + 1);
            }
        }
        return false;
    }

    std::size_t size() const noexcept { return fields_.size(); }
    bool empty() const noexcept { return fields_.empty(); }
    const_iterator begin() const noexcept { return fields_.begin(); }
    const_iterator end() const noexcept { return fields_.end(); }
    void clear() noexcept { fields_.clear(); }

private:
    std::vector<field> fields_;
};

/// Reads one field line of a head ("Name: value", without its CRLF) into `into`, strictly: no leading
/// whitespace (obsolete line folding, RFC 9112 section 5.2, is rejected, never unfolded), a token
/// name directly followed by the colon ("Host : x" fails, as section 5.1 requires), the value
/// trimmed of optional whitespace. False for a malformed line, which is then not added.
inline bool parse_field_line(std::string_view line, headers& into) {
    if (line.empty() || detail::is_ows(line.front())) return false;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    if (!detail::is_token(name)) return false;
    into.add(std::string{name}, std::string{detail::trim_ows(line.substr(colon + 1))});
    return true;
}

}  // namespace starling::http
