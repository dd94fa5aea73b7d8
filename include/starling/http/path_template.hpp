// Path templates: an endpoint path with named segments, "/rooms/{room}/ws". A template matches a
// request path with as many segments, the literal ones equal and each named one non-empty; the
// named segments are read back, still percent-encoded, by name.
#pragma once

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <optional>     // std::optional segment
#include <string>       // std::string problems
#include <string_view>  // std::string_view paths
#include <vector>       // std::vector names seen

namespace starling::http {

namespace detail {

constexpr bool is_named_segment(std::string_view segment) noexcept {
    return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

/// Calls `each(segment)` for every '/'-separated segment of `path` after its leading '/' ("/a//b/"
/// has "a", "", "b", ""); stops early when it returns false.
template <class Each>
void for_each_segment(std::string_view path, Each&& each) {
    std::size_t from = path.empty() ? 0 : 1;
    for (;;) {
        const std::size_t end = std::min(path.find('/', from), path.size());
        if (!each(path.substr(from, end - from))) return;
        if (end == path.size()) return;
        from = end + 1;
    }
}

/// Walks template and path segment by segment, calling `named(name, segment)` for each named one.
/// False when they do not match.
template <class Named>
bool walk_path_template(std::string_view pattern, std::string_view path, Named&& named) {
    if (pattern.empty() || path.empty() || pattern.front() != '/' || path.front() != '/') return false;
    std::size_t p = 1, q = 1;
    for (;;) {
        const std::size_t p_end = std::min(pattern.find('/', p), pattern.size());
        const std::size_t q_end = std::min(path.find('/', q), path.size());
        const std::string_view want = pattern.substr(p, p_end - p);
        const std::string_view got = path.substr(q, q_end - q);
        if (is_named_segment(want)) {
            if (got.empty()) return false;
            named(want.substr(1, want.size() - 2), got);
        } else if (want != got) {
            return false;
        }
        const bool pattern_over = p_end == pattern.size(), path_over = q_end == path.size();
        if (pattern_over || path_over) return pattern_over && path_over;
        p = p_end + 1;
        q = q_end + 1;
    }
}

constexpr bool is_name_character(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

}  // namespace detail

/// True when `path` has a named segment: it is a template, not a literal path.
constexpr bool is_path_template(std::string_view path) noexcept { return path.find('{') != std::string_view::npos; }

/// Why `pattern` is not a usable template ("" when it is): every '{' and '}' must enclose a whole
/// segment, and each name must be non-empty, made of letters, digits, '-', '.', '_' or '~', and unique.
inline std::string path_template_problem(std::string_view pattern) {
    std::vector<std::string_view> names;
    std::string problem;
    detail::for_each_segment(pattern, [&](std::string_view segment) {
        if (segment.find_first_of("{}") == std::string_view::npos) return true;
        const std::string_view name = segment.substr(1, segment.size() >= 2 ? segment.size() - 2 : 0);
        if (!detail::is_named_segment(segment) || name.empty() || name.find_first_of("{}") != std::string_view::npos) {
            problem = "a path parameter must be a whole, named segment, as in /rooms/{room}";
        } else {
            for (const char c : name)
                if (!detail::is_name_character(c)) problem = "path parameter names use letters, digits, '-', '.', '_' or '~'";
            for (const std::string_view seen : names)
                if (seen == name) problem = "the path parameter {" + std::string(name) + "} appears twice";
        }
        names.push_back(name);
        return problem.empty();
    });
    if (!problem.empty()) problem += ": \"" + std::string(pattern) + "\"";
    return problem;
}

/// True when `path` (a request path, still percent-encoded) matches `pattern`.
inline bool matches_path_template(std::string_view pattern, std::string_view path) {
    return detail::walk_path_template(pattern, path, [](std::string_view, std::string_view) {});
}

/// The segment of `path` in the place of `{name}` in `pattern`, still percent-encoded; nothing when
/// the path does not match or the template has no such name.
inline std::optional<std::string_view> path_segment(std::string_view pattern, std::string_view path, std::string_view name) {
    std::optional<std::string_view> found;
    const bool matched = detail::walk_path_template(pattern, path, [&](std::string_view n, std::string_view segment) {
        if (n == name) found = segment;
    });
    if (!matched) return std::nullopt;
    return found;
}

/// Whether `pattern` has the segment `{name}`.
inline bool path_template_has(std::string_view pattern, std::string_view name) {
    bool found = false;
    detail::for_each_segment(pattern, [&](std::string_view segment) {
        found = detail::is_named_segment(segment) && segment.substr(1, segment.size() - 2) == name;
        return !found;
    });
    return found;
}

}  // namespace starling::http
