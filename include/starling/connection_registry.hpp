// The open connections of one endpoint, by id: what broadcast and send_to reach. Thread-safe, since
// connections of every worker thread join and leave it.
#pragma once

#include <cstddef>        // std::size_t
#include <memory>         // std::shared_ptr entries
#include <mutex>          // std::mutex guarding the map
#include <string>         // std::string keys
#include <string_view>    // std::string_view lookups
#include <unordered_map>  // id -> connection
#include <vector>         // snapshots

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
        const auto it = connections_.find(std::string(id));
        return it == connections_.end() ? nullptr : it->second;
    }

    /// A copy of the current members: sending happens outside the lock, so a slow receiver or a
    /// connection leaving meanwhile never blocks or invalidates the others.
    std::vector<std::shared_ptr<websocket>> snapshot() const {
        std::lock_guard lock(mutex_);
        std::vector<std::shared_ptr<websocket>> out;
        out.reserve(connections_.size());
        for (const auto& [id, connection] : connections_) out.push_back(connection);
        return out;
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return connections_.size();
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<websocket>> connections_;
};

}  // namespace detail
}  // namespace starling
