// Reads a handler's or callback's signature at compile time and says where each argument comes from:
// the connection, a typed request parameter (query, header, cookie, path), the connection's state, the
// upgrade request (authentication hooks), a dependency container, or a dependency by type. This is
// what lets handlers declare what they need, in any order.
#pragma once

#include <memory>       // std::shared_ptr dependency parameters
#include <cstddef>      // std::byte message bytes
#include <optional>     // std::optional check results
#include <span>         // std::span<const std::byte> message bytes
#include <string>       // std::string error messages
#include <string_view>  // std::string_view type names
#include <tuple>        // std::tuple argument lists
#include <type_traits>  // std::remove_cvref_t and friends
#include <typeindex>    // std::type_index requirements
#include <utility>      // std::index_sequence parameter positions
#include <vector>       // std::vector requirements

#include "starling/api/connection_state.hpp"
#include "starling/api/dependencies.hpp"
#include "starling/protocol/message.hpp"
#include "starling/api/type_name.hpp"
#include "starling/api/params.hpp"
#include "starling/protocol/query.hpp"

namespace starling {

class websocket;
class connector;
class handshake_request;

namespace detail {

// ---- what a callable takes and returns ----

template <class F>
struct function_traits {};  // not a function: no `arguments`, so has_readable_signature is false
template <class R, class... A>
struct function_traits<R (*)(A...)> {
    using result = R;
    using arguments = std::tuple<A...>;
};
template <class R, class... A>
struct function_traits<R (*)(A...) noexcept> : function_traits<R (*)(A...)> {};
template <class R, class... A>
struct function_traits<R(A...)> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...)> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...) const> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...) noexcept> : function_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct function_traits<R (C::*)(A...) const noexcept> : function_traits<R (*)(A...)> {};

/// A lambda or function object is read through its one operator(); a generic lambda has none to read.
template <class F>
struct callable_traits : function_traits<F> {};
template <class F>
    requires requires { &F::operator(); }
struct callable_traits<F> : function_traits<decltype(&F::operator())> {};

/// True for lambdas, function objects with one non-template operator(), functions and pointers to them.
template <class F>
concept has_readable_signature = requires { typename callable_traits<std::decay_t<F>>::arguments; };

// ---- where each parameter comes from ----

enum class source {
    websocket,          // starling::websocket&
    connector,          // starling::connector& (event API)
    message,            // the message text (event API): std::string_view, std::string, const std::string&
    bytes,              // the message bytes (event API): std::span<const std::byte>
    whole_message,      // the message with its type (event API): const starling::message&
    request_parameter,  // starling::query / header / cookie / path<"name", T, ...>
    state,              // starling::state<T>: the connection's state
    request,            // const starling::handshake_request& (authentication hooks)
    globals,            // starling::global_dependencies&
    router,             // starling::router_dependencies&
    dependency,         // T& or const T&: an injected object found by type
    shared_dependency,  // std::shared_ptr<T>: the same, shared
    unsupported,
};

template <class P>
constexpr source source_of() {
    using bare = std::remove_cvref_t<P>;
    if constexpr (std::is_same_v<bare, websocket> && std::is_lvalue_reference_v<P>) return source::websocket;
    else if constexpr (std::is_same_v<bare, connector> && std::is_lvalue_reference_v<P>) return source::connector;
    else if constexpr (std::is_same_v<bare, std::string_view> || std::is_same_v<bare, std::string>) return source::message;
    else if constexpr (std::is_same_v<bare, std::span<const std::byte>>) return source::bytes;
    else if constexpr (std::is_same_v<bare, message> && std::is_const_v<std::remove_reference_t<P>>) return source::whole_message;
    else if constexpr (is_request_parameter<bare>) return source::request_parameter;
    else if constexpr (std::is_base_of_v<connection_state_tag, bare>) return source::state;
    else if constexpr (std::is_same_v<bare, handshake_request> && std::is_lvalue_reference_v<P> &&
                       std::is_const_v<std::remove_reference_t<P>>) return source::request;
    else if constexpr (std::is_same_v<bare, global_dependencies> && std::is_lvalue_reference_v<P>) return source::globals;
    else if constexpr (std::is_same_v<bare, router_dependencies> && std::is_lvalue_reference_v<P>) return source::router;
    else if constexpr (is_shared_ptr<bare>::value) return source::shared_dependency;
    else if constexpr (std::is_lvalue_reference_v<P> && std::is_class_v<bare>) return source::dependency;
    else return source::unsupported;
}

/// Everything a parameter may be drawn from, for one call.
struct call_context {
    websocket* ws = nullptr;
    connector* conn = nullptr;
    const starling::message* received = nullptr;
    request_values request;  // what typed parameters are read from
    state_slot* state = nullptr;
    const handshake_request* handshake = nullptr;
    global_dependencies* globals = nullptr;
    router_dependencies* router = nullptr;
};

/// Looks a typed dependency up: the router's container first, then the app's.
template <class T>
T* find_dependency(const call_context& ctx) {
    if (ctx.router)
        if (T* found = ctx.router->find<T>()) return found;
    return ctx.globals ? ctx.globals->find<T>() : nullptr;
}

template <class P>
decltype(auto) resolve_argument(const call_context& ctx) {
    using bare = std::remove_cvref_t<P>;
    constexpr source from = source_of<P>();
    if constexpr (from == source::websocket) return (*ctx.ws);
    else if constexpr (from == source::connector) return (*ctx.conn);
    else if constexpr (from == source::message) return bare(ctx.received->view());
    else if constexpr (from == source::bytes) return std::as_bytes(std::span<const char>(ctx.received->data));
    else if constexpr (from == source::whole_message) return (*ctx.received);
    else if constexpr (from == source::globals) return (*ctx.globals);
    else if constexpr (from == source::router) return (*ctx.router);
    else if constexpr (from == source::request_parameter) {
        parameter_error ignored;  // checked before the upgrade: it resolves now
        return bare(*bare::resolve(ctx.request, ignored));  // a value: the optional is a temporary
    } else if constexpr (from == source::state) return bare(ctx.state->get<typename bare::value_type>());
    else if constexpr (from == source::request) return (*ctx.handshake); else if constexpr (from == source::shared_dependency) {
        using T = typename shared_target<bare>::type;
        if (ctx.router)
            if (auto found = ctx.router->find_shared<T>()) return found;
        return ctx.globals->find_shared<T>();
    } else {
        return (*find_dependency<bare>(ctx));
    }
}

/// A dependency some handler needs by type, checked when the app starts.
struct dependency_requirement {
    std::type_index type;
    std::string_view name;
};

/// What the app checks about a registered callable before it serves: its typed request parameters
/// (per connection, before the upgrade), its dependencies and the path segments it names (once, at
/// start).
struct signature_checks {
    /// Resolves every typed request parameter; returns the first error message, or nothing.
    std::optional<std::string> (*check_request)(const request_values&) = nullptr;
    std::vector<dependency_requirement> dependencies;
    std::vector<std::string_view> path_names;  // of its starling::path parameters
};

/// Derives from report<position, P> only when the parameter is not supported. report's static_assert
/// then fails inside a template whose arguments are the parameter's position and type, so the
/// compiler's instantiation notes show both next to the message.
template <bool supported, template <int, class> class report, int position, class P>
struct report_if_unsupported {};
template <template <int, class> class report, int position, class P>
struct report_if_unsupported<false, report, position, P> : report<position, P> {};

template <class Arguments>
struct signature;

template <class... A>
struct signature<std::tuple<A...>> {
    /// True when every parameter's source is one `allowed` accepts (each API has its own set).
    template <bool (*allowed)(source)>
    static constexpr bool all_allowed = (allowed(source_of<A>()) && ...);

    /// Fails compilation once for each parameter `allowed` rejects, through report<position, type>
    /// (position counted from 1 over the whole parameter list), when its size is asked for.
    template <bool (*allowed)(source), template <int, class> class report,
              class = std::index_sequence_for<A...>>
    struct unsupported_report;
    template <bool (*allowed)(source), template <int, class> class report, std::size_t... I>
    struct unsupported_report<allowed, report, std::index_sequence<I...>>
        : report_if_unsupported<allowed(source_of<A>()), report, static_cast<int>(I) + 1, A>... {};

    static std::optional<std::string> check_request(const request_values& values) {
        std::optional<std::string> failure;
        auto check_one = [&]<class P>() {
            if constexpr (source_of<P>() == source::request_parameter) {
                if (failure) return;
                parameter_error error;
                if (!std::remove_cvref_t<P>::resolve(values, error)) failure = std::move(error.message);
            }
        };
        (check_one.template operator()<A>(), ...);
        (void)check_one;  // unused when the callable takes no parameters
        return failure;
    }

    static signature_checks checks() {
        signature_checks result;
        result.check_request = &check_request;
        auto add_one = [&]<class P>() {
            constexpr source from = source_of<P>();
            if constexpr (from == source::dependency) {
                using T = std::remove_cvref_t<P>;
                result.dependencies.push_back({std::type_index(typeid(T)), type_name<T>()});
            } else if constexpr (from == source::shared_dependency) {
                using T = typename shared_target<std::remove_cvref_t<P>>::type;
                result.dependencies.push_back({std::type_index(typeid(T)), type_name<T>()});
            } else if constexpr (from == source::request_parameter) {
                using T = std::remove_cvref_t<P>;
                if constexpr (T::kind == parameter_kind::path) result.path_names.push_back(T::name);
            }
        };
        (add_one.template operator()<A>(), ...);
        (void)add_one;
        return result;
    }

    template <class F>
    static decltype(auto) invoke(F& f, const call_context& ctx) {
        return f(resolve_argument<A>(ctx)...);
    }
};

template <class F>
using signature_of = signature<typename callable_traits<std::decay_t<F>>::arguments>;

template <class F>
using result_of = typename callable_traits<std::decay_t<F>>::result;

}  // namespace detail
}  // namespace starling
