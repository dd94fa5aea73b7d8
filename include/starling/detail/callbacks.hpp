// Adapts what users register (lambdas, functions, coroutines) to the endpoint's calling convention:
// a handler is task<>(websocket&); on_connect / on_close produce the text to send, if any.
#pragma once

#include <concepts>     // std::convertible_to
#include <optional>     // std::optional results
#include <string>       // std::string text
#include <string_view>  // std::string_view results
#include <type_traits>  // std::invoke_result_t, std::is_invocable_v
#include <utility>      // std::move

#include "starling/detail/endpoint_state.hpp"
#include "starling/task.hpp"

namespace starling::detail {

template <class T>
inline constexpr bool dependent_false = false;

/// A callback's result as optional text: nothing for void, an empty optional or empty text (as in
/// Robyn, where returning "" from on_connect sends nothing).
template <class R>
std::optional<std::string> to_optional_text(R&& result) {
    using T = std::remove_cvref_t<R>;
    if constexpr (std::convertible_to<T, std::string_view>) {
        const std::string_view text(result);
        if (text.empty()) return std::nullopt;
        return std::string(text);
    } else if constexpr (requires { result.has_value(); *result; }) {
        if (!result.has_value()) return std::nullopt;
        return to_optional_text(*std::forward<R>(result));
    } else {
        static_assert(dependent_false<T>,
                      "starling: on_connect / on_close must return text (std::string, const char*, "
                      "std::string_view), std::optional of text, or nothing");
        return std::nullopt;
    }
}

template <class F>
handler_function adapt_handler(F handler) {
    static_assert(std::is_invocable_v<F&, websocket&>,
                  "starling: a websocket handler takes (starling::websocket&)");
    static_assert(std::is_same_v<std::invoke_result_t<F&, websocket&>, task<>>,
                  "starling: a websocket handler must be a coroutine returning starling::task<>");
    return [handler = std::move(handler)](websocket& ws) mutable { return handler(ws); };
}

template <class F>
text_callback adapt_text_callback(F callback) {
    static_assert(std::is_invocable_v<F&, websocket&>,
                  "starling: on_connect / on_close take (starling::websocket&)");
    using R = std::invoke_result_t<F&, websocket&>;
    return [callback = std::move(callback)](websocket& ws) mutable -> task<std::optional<std::string>> {
        if constexpr (is_task_v<R>) {
            using T = typename R::value_type;
            if constexpr (std::is_void_v<T>) {
                co_await callback(ws);
                co_return std::nullopt;
            } else {
                co_return to_optional_text(co_await callback(ws));
            }
        } else if constexpr (std::is_void_v<R>) {
            callback(ws);
            co_return std::nullopt;
        } else {
            co_return to_optional_text(callback(ws));
        }
    };
}

}  // namespace starling::detail
