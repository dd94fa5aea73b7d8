// The open connections of one endpoint, by id: what broadcast and send_to reach. Thread-safe, since
// connections of every worker thread join and leave it.
#pragma once

#include <cstddef>        // std::size_t
#include <functional>     // std::hash, std::equal_to<> for heterogeneous lookup
#include <memory>         // std::shared_ptr entries
#include <mutex>          // std::mutex guarding the map
#include <string>         // std::string keys
#include <string_view>    // std::string_view lookups
#include <unordered_map>  // id -> connection

namespace starling {

class websocket;

namespace detail {

class connection_registry {
public:
    void add(const std::string& id, std::shared_ptr<websocket> connection) {
        std::lock_guard lock(mutex_);
        connections_.insert_or_assign(id, std::move(connection));
    }

    void remove(const std::string& id) {
        std::lock_guard lock(mutex_);
        connections_.erase(id);
    }

    std::shared_ptr<websocket> find(std::string_view id) const {
        std::lock_guard lock(mutex_);
        const auto it = connections_.find(id);  // heterogeneous: no string built per send_to
        return it == connections_.end() ? nullptr : it->second;
    }

    /// Calls `visit(connection)` for every member, under the registry's lock: `visit` must only queue
    /// work (a broadcast enqueues a shared frame or posts it to the receiver's thread), never block
    /// or call back into the registry. Cheaper than copying the members out for every broadcast.
    template <class Visit>
    void for_each(Visit&& visit) const {
        std::lock_guard lock(mutex_);
        for (const auto& [id, connection] : connections_) visit(connection);
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return connections_.size();
    }

private:
    /// Lets find() look up by string_view.
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };

    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<websocket>, id_hash, std::equal_to<>> connections_;
};

}  // namespace detail
}  // namespace starling
