// Adapts what users register for the coroutine API (lambdas, functions, coroutines with any of the
// parameters signature.hpp understands) to the endpoint's calling convention: a handler becomes
// task<>(websocket&); on_connect / on_close become "the text to send, if any". Misuse is caught at
// compile time with one readable message.
#pragma once

#include <concepts>     // std::convertible_to
#include <optional>     // std::optional results
#include <string>       // std::string text
#include <string_view>  // std::string_view results
#include <type_traits>  // std::is_same_v, std::remove_cvref_t
#include <utility>      // std::move

#include "starling/runtime/endpoint_state.hpp"
#include "starling/api/signature.hpp"
#include "starling/task.hpp"
#include "starling/api/websocket.hpp"

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
    } else {
        if (!result.has_value()) return std::nullopt;
        return to_optional_text(*std::forward<R>(result));
    }
}

template <class R>
concept text_result = std::convertible_to<std::remove_cvref_t<R>, std::string_view> ||
                      requires(R r) { { r.has_value() } -> std::convertible_to<bool>; { std::string_view(*r) }; };

/// What a callable produces: T for a task<T>, R itself otherwise.
template <class R>
struct task_value {
    using type = R;
};
template <class T, class Executor>
struct task_value<asio::awaitable<T, Executor>> {
    using type = T;
};

template <class R>
inline constexpr bool returns_text_or_nothing = std::is_void_v<typename task_value<R>::type> ||
                                                text_result<typename task_value<R>::type>;

/// Calls `f` with its arguments resolved from `ctx` and turns whatever it returns (text, an optional,
/// nothing, or a task of those) into the text to send, if any.
template <class F>
task<std::optional<std::string>> invoke_for_text(F& f, call_context ctx) {
    using R = result_of<F>;
    if constexpr (is_task_v<R>) {
        if constexpr (std::is_void_v<typename R::value_type>) {
            co_await signature_of<F>::invoke(f, ctx);
            co_return std::nullopt;
        } else {
            co_return to_optional_text(co_await signature_of<F>::invoke(f, ctx));
        }
    } else if constexpr (std::is_void_v<R>) {
        signature_of<F>::invoke(f, ctx);
        co_return std::nullopt;
    } else {
        co_return to_optional_text(signature_of<F>::invoke(f, ctx));
    }
}

/// What coroutine-API handlers and callbacks may declare.
constexpr bool coroutine_api_parameter(source s) {
    return s == source::websocket || s == source::request_parameter || s == source::state || s == source::globals ||
           s == source::router || s == source::dependency || s == source::shared_dependency;
}

/// What an authentication hook may declare: the request and what is read from it, and dependencies.
constexpr bool hook_parameter(source s) {
    return s == source::request || s == source::request_parameter || s == source::globals || s == source::router ||
           s == source::dependency || s == source::shared_dependency;
}

/// What a callable of `ws`'s endpoint may draw its arguments from (the event API adds its own).
inline call_context context_for(websocket& ws, connector* conn = nullptr, const message* received = nullptr) {
    const endpoint_state& endpoint = ws.endpoint();
    call_context ctx;
    ctx.ws = &ws;
    ctx.conn = conn;
    ctx.received = received;
    ctx.request = request_values{&ws.query_params(), &ws.headers(), ws.path(), endpoint.path};
    ctx.state = &ws.state_storage();
    ctx.globals = endpoint.globals.get();
    ctx.router = endpoint.router_deps.get();
    return ctx;
}

/// Instantiated for a handler or callback parameter no source supplies: the compiler's notes read
/// `unsupported_handler_parameter<position, type>`, the position counted from 1.
template <int position, class type>
struct unsupported_handler_parameter {
    static_assert(dependent_false<type>,
                  "starling: unsupported parameter type in a websocket handler or callback (the note "
                  "'unsupported_handler_parameter<position, type>' names it, counting from 1); it may "
                  "declare starling::websocket&, starling::query<\"name\", T>, starling::header<...>, "
                  "starling::cookie<...>, starling::path<...>, starling::state<T>, "
                  "starling::global_dependencies&, starling::router_dependencies&, or an injected "
                  "dependency as T& or std::shared_ptr<T>");
};

template <class F>
constexpr bool readable_coroutine_api_signature() {
    if constexpr (!has_readable_signature<F>) return false;
    else return signature_of<F>::template all_allowed<coroutine_api_parameter>;
}

/// The one readable error for a signature readable_coroutine_api_signature rejects. Kept apart from
/// that check, which sits in `if constexpr` conditions: a failed instantiation inside it would make
/// clang report the condition as not constant, a second error.
template <class F>
void reject_coroutine_api_signature() {
    if constexpr (!has_readable_signature<F>) {
        static_assert(dependent_false<F>,
                      "starling: a handler or callback must be a function or a lambda with concrete "
                      "parameter types (no 'auto' parameters)");
    } else {
        (void)sizeof(typename signature_of<F>::template unsupported_report<coroutine_api_parameter,
                                                                             unsupported_handler_parameter>);
    }
}

template <class F>
void adapt_handler(F handler, endpoint_state& endpoint) {
    if constexpr (readable_coroutine_api_signature<F>()) {
        if constexpr (!std::is_same_v<result_of<F>, task<>>) {
            static_assert(dependent_false<F>,
                          "starling: a websocket handler must be a coroutine returning starling::task<> "
                          "(write `-> starling::task<>` and use co_await)");
        } else {
            endpoint.handler = [handler = std::move(handler)](websocket& ws) mutable {
                return signature_of<F>::invoke(handler, context_for(ws));
            };
            endpoint.handler_checks = signature_of<F>::checks();
        }
    } else {
        reject_coroutine_api_signature<F>();
    }
}

template <class F>
void adapt_text_callback(F callback, text_callback& slot, signature_checks& checks) {
    if constexpr (readable_coroutine_api_signature<F>()) {
        static_assert(returns_text_or_nothing<result_of<F>>,
                      "starling: on_connect / on_close must return text (std::string, const char*, "
                      "std::string_view), std::optional of text, or nothing (or a task of those)");
        slot = [callback = std::move(callback)](websocket& ws) mutable {
            return invoke_for_text(callback, context_for(ws));
        };
        checks = signature_of<F>::checks();
    } else {
        reject_coroutine_api_signature<F>();
    }
}

}  // namespace starling::detail

namespace starling::detail {

/// Instantiated for a hook parameter no source supplies: the compiler's notes read
/// `unsupported_hook_parameter<position, type>`, the position counted from 1.
template <int position, class type>
struct unsupported_hook_parameter {
    static_assert(dependent_false<type>,
                  "starling: unsupported parameter type in an authentication hook (the note "
                  "'unsupported_hook_parameter<position, type>' names it, counting from 1); it may declare "
                  "const starling::handshake_request&, starling::query / header / cookie / path<\"name\", T>, "
                  "starling::global_dependencies&, starling::router_dependencies&, or an injected "
                  "dependency as T& or std::shared_ptr<T>");
};

template <class R>
struct is_admission : std::false_type {};
template <class T>
struct is_admission<admission<T>> : std::true_type {};

/// An admission as the upgrade uses it: refused, or the state it starts the connection with.
template <class T>
hook_outcome to_hook_outcome(admission<T>&& decided) {
    hook_outcome outcome;
    if (!decided.admitted()) {
        outcome.refused = std::move(*decided.refused());
    } else if constexpr (!std::is_void_v<T>) {
        outcome.state.emplace<T>(std::move(*decided.value()));
    }
    return outcome;
}

template <class F>
task<hook_outcome> run_hook(F& hook, call_context ctx) {
    using R = result_of<F>;
    if constexpr (is_task_v<R>) co_return to_hook_outcome(co_await signature_of<F>::invoke(hook, ctx));
    else co_return to_hook_outcome(signature_of<F>::invoke(hook, ctx));
}

template <class F>
void adapt_hook(F hook, endpoint_state& endpoint) {
    if constexpr (!has_readable_signature<F>) {
        static_assert(dependent_false<F>,
                      "starling: an authentication hook must be a function or a lambda with concrete "
                      "parameter types (no 'auto' parameters)");
    } else if constexpr (!signature_of<F>::template all_allowed<hook_parameter>) {
        (void)sizeof(typename signature_of<F>::template unsupported_report<hook_parameter, unsupported_hook_parameter>);
    } else if constexpr (!is_admission<std::remove_cvref_t<typename task_value<result_of<F>>::type>>::value) {
        static_assert(dependent_false<F>,
                      "starling: an authentication hook returns starling::admission<T> (a T admits, "
                      "starling::refuse(status, body) refuses), or a task of one");
    } else {
        endpoint.hook = [hook = std::move(hook)](const call_context& ctx) mutable { return run_hook(hook, ctx); };
        endpoint.hook_checks = signature_of<F>::checks();
    }
}

}  // namespace starling::detail
