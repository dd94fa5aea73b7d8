// The `websocket` a handler receives: a thin handle on one upgraded connection. Its
// receive/send/broadcast/close are coroutines. The connection itself (session/connection.hpp) reads,
// writes, closes and keeps the time limits; this handle adds what belongs to the endpoint: broadcast
// and send_to reach the endpoint's other connections, JSON is parsed with a parser of this
// connection's own. It lives as long as the connection, so a handler, on_connect and on_close all see
// the same object.
#pragma once

#include <chrono>       // std::chrono::steady_clock::duration timeouts
#include <cstdint>      // std::uint16_t close codes
#include <optional>     // std::optional receive-with-deadline results
#include <string>       // std::string payloads
#include <string_view>  // std::string_view views
#include <unordered_map>  // topic name -> this connection's membership
#include <vector>         // std::vector topic names

#include "starling/api/connection_state.hpp"
#include "starling/api/message_calls.hpp"
#include "starling/api/recipients.hpp"
#include "starling/protocol/close_code.hpp"
#include "starling/protocol/message.hpp"
#include "starling/protocol/websocket_disconnect.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/session/connection_base.hpp"
#include "starling/task.hpp"

namespace starling {

/// receive/send/close (api/message_calls.hpp), and what belongs to the server's side: identity,
/// broadcast, send_to and topics.
class websocket : public detail::message_calls {
public:
    /// Made by the runtime once per connection, when it is upgraded.
    websocket(detail::connection_base& connection, detail::endpoint_state& endpoint) noexcept
        : message_calls(connection), endpoint_(endpoint) {}

    websocket(const websocket&) = delete;
    websocket& operator=(const websocket&) = delete;

    // ---- Identity -------------------------------------------------------------------------------

    /// A random UUID v4, unique to this connection.
    const std::string& id() const noexcept { return engine().id(); }
    /// The query string's parameters, percent-decoded.
    const starling::query_params& query_params() const noexcept { return engine().query_params(); }
    /// The upgrade request's headers; names are case-insensitive.
    const http::headers& headers() const noexcept { return engine().headers(); }
    /// The peer's IP address and port.
    const client_address& client() const noexcept { return engine().client(); }
    /// The request path, without the query string.
    std::string_view path() const noexcept { return engine().path(); }
    /// The subprotocol chosen in the handshake (the endpoint's subprotocols()), or "" for none.
    std::string_view subprotocol() const noexcept;

    // ---- State ------------------------------------------------------------------------------------
    // One typed value per connection (api/connection_state.hpp): the authentication hook's, or one
    // put here in on_connect. Every later callback sees it; it goes with the connection.

    /// The state, which must be a T: throws std::logic_error otherwise (in a handler: a 1011 close).
    template <class T>
    T& state() const { return state_.get<T>(); }
    /// The state if it is a T, else nullptr.
    template <class T>
    T* find_state() const noexcept { return state_.find<T>(); }
    /// Replaces the state with a T made of `args`.
    template <class T, class... Args>
    T& emplace_state(Args&&... args) { return state_.emplace<T>(std::forward<Args>(args)...); }


    /// Sends a text message to every open connection of this endpoint (this one included, unless
    /// `who` is recipients::others). The frame is encoded once and shared by all receivers.
    task<> broadcast(std::string_view text, recipients who = recipients::everyone) {
        queue_broadcast(text, who);
        co_return;
    }
    task<> broadcast_bytes(std::string_view bytes, recipients who = recipients::everyone) {
        fan_out(detail::make_shared_frame(opcode::binary, bytes), who);
        endpoint_.hub->broadcast_elsewhere(endpoint_.path, opcode::binary, bytes);  // other processes, if any
        co_return;
    }

    /// Sends a text message to the connection of this endpoint with that id. False if there is none.
    task<bool> send_to(std::string_view connection_id, std::string_view text) { co_return queue_to(connection_id, text); }

    /// The queueing under broadcast() and send_to(), without suspending (the event API's sync_* calls).
    void queue_broadcast(std::string_view text, recipients who = recipients::everyone) {
        fan_out(detail::make_shared_frame(opcode::text, text), who);
        endpoint_.hub->broadcast_elsewhere(endpoint_.path, opcode::text, text);  // other processes, if any
    }
    bool queue_to(std::string_view connection_id, std::string_view text) {
        // This connection itself, also before it joins the registry (in on_connect).
        if (connection_id == engine().id()) return engine().queue_text(std::string(text));
        auto target = endpoint_.registry.find(connection_id);
        if (!target) return endpoint_.hub->send_elsewhere(endpoint_.path, connection_id, text);  // another process?
        target->deliver_text(std::string(text));
        return true;
    }

    // ---- Topics (runtime/topic_registry.hpp; other processes through the app's backplane) --------
    // Topics are the app's, shared by all its endpoints. A connection is in a topic from subscribe()
    // to unsubscribe() or its end, however it ends. One subscribed in on_connect receives the topic's
    // publishes once its greeting is queued (nothing reaches a client before its greeting), as for
    // broadcasts; topic sizes count it from then on.

    /// Joins `topic`. False if this connection is in it already, or is closing.
    bool subscribe(std::string_view topic) {
        if (topics_over_ || !engine().is_open() || memberships_.contains(topic)) return false;
        auto& place = memberships_[std::string(topic)];
        if (topics_live_) endpoint_.hub->topics.join(engine().context(), std::string(topic), engine().shared_from_this(), place);
        return true;
    }

    /// Leaves `topic`. False if this connection was not in it.
    bool unsubscribe(std::string_view topic) {
        const auto it = memberships_.find(topic);
        if (it == memberships_.end()) return false;
        endpoint_.hub->topics.leave(it->second);
        memberships_.erase(it);
        return true;
    }

    /// The topics this connection is in, in no particular order.
    std::vector<std::string> topics() const {
        std::vector<std::string> names;
        names.reserve(memberships_.size());
        for (const auto& [name, place] : memberships_) names.push_back(name);
        return names;
    }
    bool subscribed(std::string_view topic) const { return memberships_.contains(topic); }

    /// Sends a text message to every connection in `topic` (this one included if it is in it, unless
    /// `who` is recipients::others), on every worker and, with a backplane, in every process. The
    /// frame is encoded once per process and shared by all receivers.
    task<> publish(std::string_view topic, std::string_view text, recipients who = recipients::everyone) {
        queue_publish(topic, text, who);
        co_return;
    }
    task<> publish_bytes(std::string_view topic, std::string_view bytes, recipients who = recipients::everyone) {
        publish_frame(topic, opcode::binary, bytes, who);
        co_return;
    }
    /// publish() without suspending (the event API's sync_publish). Returns the members reached in
    /// this process, counted as the publish was made.
    std::size_t queue_publish(std::string_view topic, std::string_view text, recipients who = recipients::everyone) {
        return publish_frame(topic, opcode::text, text, who);
    }

    /// For the runtime: the connection's greeting is queued, its subscriptions take effect now.
    void topics_reachable() {
        if (topics_live_ || topics_over_) return;
        topics_live_ = true;
        for (auto& [name, place] : memberships_)
            endpoint_.hub->topics.join(engine().context(), name, engine().shared_from_this(), place);
    }
    /// For the runtime: the connection ended; it leaves every topic and joins none again.
    void leave_topics() {
        topics_over_ = true;
        for (auto& [name, place] : memberships_) endpoint_.hub->topics.leave(place);
        memberships_.clear();
    }
    // ---- end of topics ----------------------------------------------------------------------------

    // ---- The rest ---------------------------------------------------------------------------------

    /// The endpoint this connection belongs to.
    const detail::endpoint_state& endpoint() const noexcept { return endpoint_; }

    /// For the runtime: the handshake's decisions, kept for the connection's life.
    void adopt_handshake(detail::state_slot state, int subprotocol) noexcept {
        state_ = std::move(state);
        subprotocol_ = static_cast<std::int16_t>(subprotocol);
    }
    detail::state_slot& state_storage() noexcept { return state_; }

    /// Asks for a close (1000) once the current reply is sent: the event API's connector::close(),
    /// where a handler closes and still returns its reply ("Closing connection").
    void request_close_after_reply() noexcept { close_requested_ = true; }
    bool close_requested() const noexcept { return close_requested_; }

private:
    void fan_out(const detail::shared_frame& frame, recipients who) {
        // In on_connect the connection is not in the registry yet (nothing reaches a client before its
        // greeting), but a broadcast it makes itself still includes it.
        if (who == recipients::everyone && !engine().registered) engine().receive_broadcast(frame);
        endpoint_.registry.broadcast(engine().context(), frame, who == recipients::others ? &engine() : nullptr);
    }

    // ---- topics ----
    std::size_t publish_frame(std::string_view topic, opcode op, std::string_view payload, recipients who) {
        const auto frame = detail::make_shared_frame(op, payload);
        // Before the greeting the connection is not in its topics yet, but its own publish still
        // reaches it, as a broadcast does.
        if (who == recipients::everyone && !topics_live_ && !topics_over_ && memberships_.contains(topic))
            engine().receive_broadcast(frame);
        return endpoint_.hub->publish(&engine().context(), topic, frame, op, payload,
                                      who == recipients::others ? &engine() : nullptr);
    }

    struct topic_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
    };
    using membership = detail::topic_registry<detail::connection_base>::membership;
    // Node-based: the registry points at each membership, so they must not move.
    std::unordered_map<std::string, membership, topic_hash, std::equal_to<>> memberships_;
    bool topics_live_ = false;  // the greeting is queued: memberships are in the registry
    bool topics_over_ = false;  // the connection ended
    // ---- end of topics ----

    detail::endpoint_state& endpoint_;
    detail::state_slot state_;      // one pointer while empty
    std::int16_t subprotocol_ = -1;  // an index into the endpoint's subprotocols, or none
    bool close_requested_ = false;
};

inline std::string_view websocket::subprotocol() const noexcept {
    if (subprotocol_ < 0) return {};
    return endpoint_.subprotocols[static_cast<std::size_t>(subprotocol_)];
}

}  // namespace starling
