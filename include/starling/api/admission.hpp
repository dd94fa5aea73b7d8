// What an endpoint's authentication hook decides: admit the client, with a value its connection
// carries (the authenticated user, say), or refuse it with an HTTP status and body before the upgrade.
//
//     app.websocket("/chat", handler).authenticate(
//         [](starling::query<"token", std::optional<std::string>> token) -> starling::admission<user> {
//             if (auto u = find_user(*token)) return *u;
//             return starling::refuse(401, "Unknown token");
//         });
#pragma once

#include <optional>  // std::optional value and refusal
#include <string>    // std::string body and headers
#include <utility>   // std::move

namespace starling {

/// An HTTP answer refusing an upgrade: status (401, 403, 429...), a text/plain body, and any header
/// lines of its own ("Retry-After: 30\r\n"). A 401 without a WWW-Authenticate line gets
/// "WWW-Authenticate: Bearer", which HTTP requires of a 401.
struct refusal {
    int status = 401;
    std::string body;
    std::string headers;
};

inline refusal refuse(int status, std::string body = {}, std::string headers = {}) {
    return refusal{status, std::move(body), std::move(headers)};
}

/// Admitted with a T, or refused. Converts from either, so a hook returns one or the other.
template <class T = void>
class admission {
public:
    admission(T value) : value_(std::move(value)) {}
    admission(refusal refused) : refused_(std::move(refused)) {}

    bool admitted() const noexcept { return !refused_.has_value(); }
    std::optional<T>& value() noexcept { return value_; }
    std::optional<refusal>& refused() noexcept { return refused_; }

private:
    std::optional<T> value_;
    std::optional<refusal> refused_;
};

/// Admitted with nothing to carry, or refused.
template <>
class admission<void> {
public:
    admission() = default;
    admission(refusal refused) : refused_(std::move(refused)) {}

    bool admitted() const noexcept { return !refused_.has_value(); }
    std::optional<refusal>& refused() noexcept { return refused_; }

private:
    std::optional<refusal> refused_;
};

}  // namespace starling
