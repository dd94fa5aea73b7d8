// Every connection the server holds, from accept to its end, whether still in its handshake or
// upgraded, so that graceful shutdown reaches all of them: the endpoints' registries only know
// connections whose on_connect has finished (the greeting-first rule), which would let a connection
// upgraded just before a SIGTERM miss its 1001.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>     // asio::co_spawn the 1001 closes
#include <asio/detached.hpp>     // asio::detached
#include <asio/io_context.hpp>   // asio::io_context each connection lives on
#include <asio/post.hpp>         // asio::post: the 1001 closes start later, not under the lock
#include <asio/use_awaitable.hpp>  // asio::use_awaitable
#include <cstdint>               // std::uint64_t ids
#include <memory>                // std::shared_ptr
#include <mutex>                 // std::mutex: connections of every worker come and go
#include <unordered_map>         // id -> connection

#include "starling/protocol/close_code.hpp"
#include "starling/session/connection_base.hpp"
#include "starling/task.hpp"

namespace starling::detail {

class live_connections {
public:
    using id_type = std::uint64_t;

    /// A connection in its handshake.
    id_type add(asio::io_context& context, std::shared_ptr<connection_base> connection) {
        std::lock_guard lock(mutex_);
        const id_type id = next_id_++;
        connections_.emplace(id, entry{&context, std::move(connection), false});
        return id;
    }

    /// The connection is upgraded. False once shutdown has begun: the caller closes it with 1001
    /// itself, since close_all() has already passed it by.
    bool upgraded(id_type id) {
        std::lock_guard lock(mutex_);
        if (closing_) return false;
        if (const auto it = connections_.find(id); it != connections_.end()) it->second.upgraded = true;
        return true;
    }

    void remove(id_type id) {
        std::lock_guard lock(mutex_);
        connections_.erase(id);
    }

    /// Shutdown's first step: upgraded connections start their close handshake with 1001. Those still
    /// in their handshake finish it (answered 503, or upgraded and closed with 1001 at once) or run
    /// into their handshake timeout or abort_all().
    void close_all() {
        std::lock_guard lock(mutex_);
        closing_ = true;
        for (const auto& [id, e] : connections_)
            if (e.upgraded) asio::co_spawn(*e.context, close_going_away(e.connection), asio::detached);
    }

    /// Shutdown's last step, at its deadline: drop whatever is left, so that every connection's
    /// coroutines finish while the event loops still run.
    void abort_all() {
        std::lock_guard lock(mutex_);
        for (const auto& [id, e] : connections_) e.connection->abort();
    }

private:
    struct entry {
        asio::io_context* context;
        std::shared_ptr<connection_base> connection;
        bool upgraded;
    };

    static task<> close_going_away(std::shared_ptr<connection_base> connection) {
        // Later, not under close_all()'s lock: co_spawn would start it at once on this thread, and
        // on_close is user code.
        co_await asio::post(connection->context(), asio::use_awaitable);
        co_await connection->close(static_cast<std::uint16_t>(close_code::going_away), "server shutting down");
    }

    std::mutex mutex_;
    std::unordered_map<id_type, entry> connections_;
    id_type next_id_ = 0;
    bool closing_ = false;
};

}  // namespace starling::detail
