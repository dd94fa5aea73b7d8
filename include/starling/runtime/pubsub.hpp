// The app's topics, and what connects them and its endpoints' broadcasts to other processes through
// a backplane (runtime/backplane.hpp). One per app, shared by every endpoint.
//
// With a backplane, a publish (or a broadcast, or a send_to whose id is not here) is delivered here
// at once, as without one, and published once to the backplane; every other node delivers it to its
// own connections, encoding the frame once. What this node published comes back from the backplane
// too and is skipped: each message carries the id of the node that published it.
//
// Channels, each under the prefix given with the backplane ("starling:" by default):
//   PREFIX topic:NAME        a topic's publishes; a node subscribes while the topic has members here
//   PREFIX broadcast:PATH    an endpoint's broadcasts
//   PREFIX to:PATH           an endpoint's send_to; every node gets it, the one holding the id delivers
// A message is one byte of type ('t' text, 'b' binary), the publishing node's id (36 characters),
// then the payload; a send_to's payload is the connection id, a newline, then the text.
#pragma once

#include <cstddef>      // std::size_t
#include <map>          // path -> endpoint registry
#include <memory>       // std::shared_ptr backplane
#include <mutex>        // std::mutex: deliveries from the backplane against stop()
#include <string>       // std::string channels
#include <string_view>  // std::string_view payloads
#include <utility>      // std::move
#include <vector>       // std::vector topic sizes

#include "starling/protocol/framer.hpp"
#include "starling/runtime/backplane.hpp"
#include "starling/runtime/connection_registry.hpp"
#include "starling/runtime/topic_registry.hpp"
#include "starling/session/connection_base.hpp"
#include "starling/session/uuid.hpp"
#include "starling/session/write_queue.hpp"

namespace starling {

/// A topic and its members, as app.topics() lists them.
struct topic_info {
    std::string name;
    std::size_t size = 0;
};

namespace detail {

class pubsub {
public:
    using endpoint_registry = connection_registry<connection_base>;

    pubsub() = default;
    pubsub(const pubsub&) = delete;
    pubsub& operator=(const pubsub&) = delete;
    ~pubsub() { stop(); }

    topic_registry<connection_base> topics;

    /// Before start(): every publish, broadcast and send_to crosses processes through `bus`.
    void use(std::shared_ptr<backplane> bus, std::string prefix) {
        bus_ = std::move(bus);
        prefix_ = std::move(prefix);
    }
    bool has_backplane() const noexcept { return bus_ != nullptr; }
    backplane_stats stats() const { return bus_ ? bus_->stats() : backplane_stats{}; }

    /// Before start(): the endpoint at `path` shares its broadcasts and send_to through the backplane.
    void add_endpoint(const std::string& path, endpoint_registry& registry) { endpoints_[path] = &registry; }

    /// Links to the backplane, if any: subscribes the endpoints' channels, and from now on each topic's
    /// channel while the topic has members on this node.
    void start() {
        if (!bus_ || started_) return;
        started_ = true;
        accepting_ = true;
        topics.set_observer([this](const std::string& name, bool has_members) {
            if (has_members)
                bus_->subscribe(topic_channel(name));
            else
                bus_->unsubscribe(topic_channel(name));
        });
        for (const auto& [path, registry] : endpoints_) {
            bus_->subscribe(prefix_ + "broadcast:" + path);
            bus_->subscribe(prefix_ + "to:" + path);
        }
        for (const auto& [name, size] : topics.sizes()) bus_->subscribe(topic_channel(name));
        bus_->start([this](std::string_view channel, std::string_view payload) { arrived(channel, payload); });
    }

    /// Unlinks: nothing from the backplane is delivered once this returns.
    void stop() {
        if (!bus_ || !started_) return;
        {
            std::lock_guard lock(delivery_mutex_);
            accepting_ = false;
        }
        bus_->stop();
        started_ = false;
    }

    /// Delivers `frame` (of `op` and `payload`) to topic `name` here, and to the other nodes. `here` is
    /// the caller's worker, null from any other thread.
    std::size_t publish(asio::io_context* here, std::string_view name, const shared_frame& frame, opcode op,
                        std::string_view payload, const connection_base* except) {
        const std::size_t reached = topics.publish(here, name, frame, except);
        if (bus_) bus_->publish(topic_channel(name), message(op, payload));
        return reached;
    }

    /// An endpoint's broadcast, already delivered here, for the other nodes.
    void broadcast_elsewhere(const std::string& path, opcode op, std::string_view payload) {
        if (bus_ && endpoints_.contains(path)) bus_->publish(prefix_ + "broadcast:" + path, message(op, payload));
    }

    /// A send_to whose id is not on this node, for the other nodes. False without a backplane, or
    /// when it is down: the message is not going anywhere.
    bool send_elsewhere(const std::string& path, std::string_view id, std::string_view text) {
        if (!bus_ || !endpoints_.contains(path) || !bus_->stats().connected) return false;
        std::string body;
        body.reserve(id.size() + 1 + text.size());
        body.append(id).append(1, '\n').append(text);
        bus_->publish(prefix_ + "to:" + path, message(opcode::text, body));
        return true;
    }

private:
    static constexpr std::size_t node_id_size = 36;  // a UUID's text

    std::string topic_channel(std::string_view name) const {
        std::string channel = prefix_;
        channel.append("topic:").append(name);
        return channel;
    }

    std::string message(opcode op, std::string_view payload) const {
        std::string m;
        m.reserve(1 + node_id_size + payload.size());
        m.append(1, op == opcode::binary ? 'b' : 't').append(node_).append(payload);
        return m;
    }

    /// A message from the backplane, on its thread.
    void arrived(std::string_view channel, std::string_view m) {
        if (m.size() < 1 + node_id_size || (m[0] != 't' && m[0] != 'b')) return;  // not ours to read
        if (m.substr(1, node_id_size) == node_) return;                             // our own, delivered already
        const opcode op = m[0] == 'b' ? opcode::binary : opcode::text;
        const std::string_view payload = m.substr(1 + node_id_size);
        if (!channel.starts_with(prefix_)) return;
        channel.remove_prefix(prefix_.size());

        std::lock_guard lock(delivery_mutex_);
        if (!accepting_) return;
        if (channel.starts_with("topic:")) {
            const std::string_view name = channel.substr(6);
            if (topics.size(name) != 0) topics.publish(nullptr, name, make_shared_frame(op, payload), nullptr);
        } else if (channel.starts_with("broadcast:")) {
            if (const auto it = endpoints_.find(channel.substr(10)); it != endpoints_.end() && it->second->size() != 0)
                it->second->broadcast(nullptr, make_shared_frame(op, payload), nullptr);
        } else if (channel.starts_with("to:")) {
            const auto it = endpoints_.find(channel.substr(3));
            const std::size_t newline = payload.find('\n');
            if (it == endpoints_.end() || newline == std::string_view::npos) return;
            if (auto target = it->second->find(payload.substr(0, newline)))
                target->deliver_text(std::string(payload.substr(newline + 1)));
        }
    }

    std::shared_ptr<backplane> bus_;
    std::string prefix_ = "starling:";
    const std::string node_ = make_uuid_v4();
    std::map<std::string, endpoint_registry*, std::less<>> endpoints_;  // read-only once started
    bool started_ = false;
    std::mutex delivery_mutex_;
    bool accepting_ = false;  // under delivery_mutex_
};

}  // namespace detail
}  // namespace starling
