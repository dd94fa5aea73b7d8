// The event API: Robyn's older style, where a WebSocket object on a path gets
// "connect", "message" and "close" handlers whose returned text is sent to the client.
//
//     starling::WebSocket websocket(app, "/web_socket");
//     websocket.on("message", [](starling::connector& ws, std::string_view msg) -> std::string {
//         ws.sync_send_to(ws.id(), "This is a message to self");
//         return "";
//     });
//
// It runs on the coroutine API's machinery: the "connect" handler is the endpoint's on_connect (its
// text is the first message), "close" is on_close (exactly once, however the connection ends), and
// "message" handlers run one at a time per connection, in order; a slow coroutine handler delays only
// its own connection.
#pragma once

#include <functional>   // std::function event callbacks
#include <memory>       // std::shared_ptr handler table
#include <optional>     // std::optional replies
#include <stdexcept>    // std::invalid_argument for unknown events
#include <string>       // std::string paths and replies
#include <string_view>  // std::string_view event names
#include <utility>      // std::move

#include "starling/app.hpp"
#include "starling/api/connector.hpp"
#include "starling/api/callbacks.hpp"
#include "starling/endpoint.hpp"
#include "starling/router.hpp"

namespace starling {

namespace detail {

using event_callback = std::function<task<std::optional<std::string>>(connector&, const message*)>;

struct event_handlers {
    event_callback on_connect;
    event_callback on_message;
    event_callback on_close;
    bool message_needs_text = false;  // the message handler declared text: binary messages get 1003
};

/// What event handlers may declare.
constexpr bool event_api_parameter(source s) {
    return s == source::connector || s == source::message || s == source::bytes || s == source::whole_message ||
           s == source::request_parameter || s == source::state || s == source::globals || s == source::router || s == source::dependency ||
           s == source::shared_dependency;
}

template <class... A>
constexpr bool declares_text(std::tuple<A...>*) {
    return ((source_of<A>() == source::message) || ...);
}

/// Instantiated for an event handler parameter no source supplies: the compiler's notes read
/// `unsupported_event_parameter<position, type>`, the position counted from 1.
template <int position, class type>
struct unsupported_event_parameter {
    static_assert(dependent_false<type>,
                  "starling: unsupported parameter type in an event handler (the note "
                  "'unsupported_event_parameter<position, type>' names it, counting from 1); it may declare "
                  "starling::connector&, the message (std::string_view, std::string, "
                  "std::span<const std::byte>, const starling::message&), starling::query<\"name\", T> "
                  "(or header, cookie, path), starling::state<T>, "
                  "starling::global_dependencies&, starling::router_dependencies&, or an injected "
                  "dependency as T& or std::shared_ptr<T>");
};

template <class F>
event_callback adapt_event(F handler, signature_checks& checks, bool& needs_text) {
    if constexpr (!has_readable_signature<F>) {
        static_assert(dependent_false<F>,
                      "starling: an event handler must be a function or a lambda with concrete parameter "
                      "types (no 'auto' parameters)");
        return {};
    } else if constexpr (!signature_of<F>::template all_allowed<event_api_parameter>) {
        (void)sizeof(typename signature_of<F>::template unsupported_report<event_api_parameter, unsupported_event_parameter>);
        return {};
    } else {
        static_assert(returns_text_or_nothing<result_of<F>>,
                      "starling: an event handler must return text (std::string, const char*, "
                      "std::string_view), std::optional of text, or nothing (or a task of those)");
        checks = signature_of<F>::checks();
        needs_text = declares_text(static_cast<typename callable_traits<std::decay_t<F>>::arguments*>(nullptr));
        return [handler = std::move(handler)](connector& conn, const message* received) mutable {
            return invoke_for_text(handler, context_for(conn.underlying(), &conn, received));
        };
    }
}

}  // namespace detail

/// An event-style endpoint: `starling::WebSocket websocket(app, "/web_socket");` (or on a router),
/// then `websocket.on("connect" | "message" | "close", handler)`.
class WebSocket {
public:
    WebSocket(app& owner, std::string path) : WebSocket(owner.add_endpoint_state(std::move(path))) {}
    WebSocket(router& owner, std::string path) : WebSocket(owner.state()->add_endpoint(std::move(path))) {}

    /// Sets the handler of an event: "connect", "message" or "close". Any other name throws
    /// std::invalid_argument. The handler is a plain function or a coroutine; it declares what it needs
    /// (the connector, the message, dependencies, typed query parameters) in any order, and its
    /// returned text is sent to the client (nothing for void, an empty optional or empty text).
    template <class Handler>
    WebSocket& on(std::string_view event, Handler handler) {
        if (event == "connect") {
            bool unused = false;
            events_->on_connect = detail::adapt_event(std::move(handler), state_->on_connect_checks, unused);
        } else if (event == "message") {
            events_->on_message = detail::adapt_event(std::move(handler), state_->handler_checks, events_->message_needs_text);
        } else if (event == "close") {
            bool unused = false;
            events_->on_close = detail::adapt_event(std::move(handler), state_->on_close_checks, unused);
        } else {
            throw std::invalid_argument("starling: unknown WebSocket event \"" + std::string(event) + "\" on " +
                                        state_->path + "; the events are \"connect\", \"message\" and \"close\"");
        }
        return *this;
    }

    /// The endpoint, for options() and connection_count().
    starling::endpoint endpoint() const { return starling::endpoint(state_); }

private:
    explicit WebSocket(std::shared_ptr<detail::endpoint_state> state)
        : state_(std::move(state)), events_(std::make_shared<detail::event_handlers>()) {
        auto events = events_;
        state_->on_connect = [events](websocket& ws) -> task<std::optional<std::string>> {
            if (!events->on_connect) co_return std::nullopt;
            connector conn(ws);
            co_return co_await events->on_connect(conn, nullptr);
        };
        state_->on_close = [events](websocket& ws) -> task<std::optional<std::string>> {
            if (!events->on_close) co_return std::nullopt;
            connector conn(ws);
            co_return co_await events->on_close(conn, nullptr);
        };
        state_->handler = [events](websocket& ws) -> task<> { co_await run_messages(events, ws); };
    }

    /// One connection's message loop: each message's handler runs to completion, its reply is sent,
    /// then the next message is read.
    static task<> run_messages(std::shared_ptr<detail::event_handlers> events, websocket& ws) {
        connector conn(ws);
        while (!ws.close_requested()) {
            const message received = co_await ws.receive();
            if (!events->on_message) continue;
            if (received.is_binary() && events->message_needs_text) {
                co_await ws.close(close_code::unsupported_data, "expected a text message");
                co_return;
            }
            std::optional<std::string> reply = co_await events->on_message(conn, &received);
            if (reply) co_await ws.send_text(std::move(*reply));
        }
        co_await ws.close(close_code::normal);
    }

    std::shared_ptr<detail::endpoint_state> state_;
    std::shared_ptr<detail::event_handlers> events_;
};

}  // namespace starling
