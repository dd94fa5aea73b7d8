// The event API's view of a connection: what an event handler's `ws` is.
#pragma once

#include <cstddef>      // std::size_t members reached
#include <string>       // std::string ids
#include <string_view>  // std::string_view messages
#include <utility>      // std::forward
#include <vector>       // std::vector topic names

#include "starling/task.hpp"
#include "starling/api/recipients.hpp"
#include "starling/api/websocket.hpp"

namespace starling {

/// Handed to event handlers ("connect", "message", "close"). Sends are queued for the connection's
/// writer, so the sync_* calls never block the event loop; the async_* calls are the same operations
/// as coroutines, for handlers written as coroutines.
class connector {
public:
    explicit connector(websocket& ws) noexcept : ws_(ws) {}

    const std::string& id() const noexcept { return ws_.id(); }
    const starling::query_params& query_params() const noexcept { return ws_.query_params(); }
    const http::headers& headers() const noexcept { return ws_.headers(); }
    /// The subprotocol chosen in the handshake, or "".
    std::string_view subprotocol() const noexcept { return ws_.subprotocol(); }
    /// The connection's state (see websocket::state).
    template <class T>
    T& state() const { return ws_.state<T>(); }
    /// Replaces the connection's state with a T made of `args` (in a "connect" handler, say).
    template <class T, class... Args>
    T& emplace_state(Args&&... args) { return ws_.emplace_state<T>(std::forward<Args>(args)...); }

    /// Queues `message` for the connection `id` of this endpoint (this one included). False if no
    /// such connection is open: reported, never a crash.
    bool sync_send_to(std::string_view connection_id, std::string_view message) {
        return ws_.queue_to(connection_id, message);
    }
    task<bool> async_send_to(std::string_view connection_id, std::string_view message) {
        co_return ws_.queue_to(connection_id, message);
    }

    /// Queues `message` for every open connection of this endpoint, this one included.
    void sync_broadcast(std::string_view message) { ws_.queue_broadcast(message); }
    task<> async_broadcast(std::string_view message) {
        ws_.queue_broadcast(message);
        co_return;
    }

    // ---- Topics: the coroutine API's calls (websocket.hpp, "Topics"), for event handlers ----------

    bool subscribe(std::string_view topic) { return ws_.subscribe(topic); }
    bool unsubscribe(std::string_view topic) { return ws_.unsubscribe(topic); }
    std::vector<std::string> topics() const { return ws_.topics(); }

    /// Queues `message` for every connection in `topic`, this one included if it is in it (unless
    /// `who` is recipients::others); the members reached in this process.
    std::size_t sync_publish(std::string_view topic, std::string_view message, recipients who = recipients::everyone) {
        return ws_.queue_publish(topic, message, who);
    }
    task<> async_publish(std::string_view topic, std::string_view message, recipients who = recipients::everyone) {
        ws_.queue_publish(topic, message, who);
        co_return;
    }

    /// Closes the connection with 1000 once the current handler has returned and its reply is sent.
    void close() noexcept { ws_.request_close_after_reply(); }

    /// The coroutine-API connection underneath, for anything the event API does not offer.
    websocket& underlying() noexcept { return ws_; }

private:
    websocket& ws_;
};

}  // namespace starling
