// Query strings of request targets ("room=1&user=ann"): percent-decoding and a multimap of
// parameters, in the application/x-www-form-urlencoded style browsers use.
#pragma once

#include <cstddef>      // std::size_t
#include <optional>     // std::optional lookup result
#include <string>       // std::string decoded keys and values
#include <string_view>  // std::string_view inputs and lookups
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector parameter list

namespace starling {

namespace detail {

/// The value of a hex digit, or -1.
constexpr int hex_digit_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace detail

/// Decodes %XX escapes, and '+' to a space when `plus_is_space` (form encoding; pass false for
/// paths, where '+' is literal). A '%' not followed by two hex digits is kept as it is, because
/// refusing a whole request over one stray '%' helps nobody. The result is bytes: it is not checked
/// to be UTF-8.
inline std::string percent_decode(std::string_view text, bool plus_is_space = true) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%' && text.size() - i >= 3) {
            const int high = detail::hex_digit_value(text[i + 1]);
            const int low = detail::hex_digit_value(text[i + 2]);
            if (high >= 0 && low >= 0) {
                out += static_cast<char>(high * 16 + low);
                i += 2;
                continue;
            }
        }
        out += (plus_is_space && c == '+') ? ' ' : c;
    }
    return out;
}

/// Decoded query parameters in order of appearance. A multimap, because "tag=a&tag=b" is common and
/// dropping either value would be a silent loss.
class query_params {
public:
    using value_type = std::pair<std::string, std::string>;
    using const_iterator = std::vector<value_type>::const_iterator;

    /// Parses a query string without its '?'. Pieces are split on '&' and empty ones skipped; each
    /// splits at its first '=' ("a==b" is a -> "=b"), a piece without '=' is a key with value "", and
    /// keys and values are percent-decoded with '+' as space.
    static query_params parse(std::string_view query_string) {
        query_params params;
        while (!query_string.empty()) {
            const std::size_t amp = query_string.find('&');
            const std::string_view piece = query_string.substr(0, amp);
            query_string.remove_prefix(amp == std::string_view::npos ? query_string.size() : amp + 1);
            if (piece.empty()) continue;
            const std::size_t eq = piece.find('=');
            if (eq == std::string_view::npos) {
                params.add(percent_decode(piece), std::string{});
            } else {
                params.add(percent_decode(piece.substr(0, eq)), percent_decode(piece.substr(eq + 1)));
            }
        }
        return params;
    }

    /// The last value of `key`: with repeats, the last one wins, as in most web frameworks.
    std::optional<std::string_view> get(std::string_view key) const {
        for (auto it = params_.rbegin(); it != params_.rend(); ++it) {
            if (it->first == key) return std::string_view{it->second};
        }
        return std::nullopt;
    }

    std::string_view get(std::string_view key, std::string_view fallback) const {
        return get(key).value_or(fallback);
    }

    std::optional<std::string_view> get_first(std::string_view key) const {
        for (const value_type& p : params_) {
            if (p.first == key) return std::string_view{p.second};
        }
        return std::nullopt;
    }

    /// Every value of `key`, in order of appearance.
    std::vector<std::string_view> get_all(std::string_view key) const {
        std::vector<std::string_view> values;
        for (const value_type& p : params_) {
            if (p.first == key) values.emplace_back(p.second);
        }
        return values;
    }

    bool contains(std::string_view key) const { return get_first(key).has_value(); }

    void add(std::string key, std::string value) { params_.emplace_back(std::move(key), std::move(value)); }

    std::size_t size() const noexcept { return params_.size(); }
    bool empty() const noexcept { return params_.empty(); }
    const_iterator begin() const noexcept { return params_.begin(); }
    const_iterator end() const noexcept { return params_.end(); }

private:
    std::vector<value_type> params_;
};

}  // namespace starling
