// The open connections of one endpoint: what broadcast and send_to reach.
//
// Members are kept per worker (event loop), and each worker's list is read and written only on that
// worker's own thread. A broadcast delivers to the members of its own worker at once, and posts ONE
// task to each other worker that has members, which delivers there to all of them: the cost of
// crossing threads grows with the number of workers, not of receivers. Nothing is posted while the
// lock is held; the lock guards only the id index (send_to, from any thread) and the list of workers.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/io_context.hpp>  // asio::io_context: a member's worker
#include <asio/post.hpp>        // asio::post: one delivery task per other worker
#include <array>                // std::array: the workers to post to, without allocating
#include <atomic>               // std::atomic counts read from any thread
#include <cstddef>              // std::size_t
#include <functional>           // std::hash, std::equal_to<> for heterogeneous lookup
#include <memory>               // std::shared_ptr members, std::unique_ptr groups
#include <mutex>                // std::mutex guarding the index and the list of workers
#include <string>               // std::string keys
#include <string_view>          // std::string_view lookups
#include <unordered_map>        // id -> connection
#include <utility>              // std::move
#include <vector>               // each worker's members

#include "starling/session/write_queue.hpp"

namespace starling::detail {

/// `Member` is the connection type. It provides `receive_broadcast(const shared_frame&)`, called on its
/// own worker's thread, and `registry_slot()`, a `std::size_t&` the registry uses to find it in its
/// worker's list in constant time.
template <class Member>
class connection_registry {
public:
    connection_registry() = default;
    connection_registry(const connection_registry&) = delete;
    connection_registry& operator=(const connection_registry&) = delete;

    /// Joins `member`, which lives on `context`. Call on that context's thread.
    void add(asio::io_context& context, const std::string& id, std::shared_ptr<Member> member) {
        worker_group* group = nullptr;
        {
            std::lock_guard lock(mutex_);
            ids_.insert_or_assign(id, member);
            group = group_for(context);
        }
        member->registry_slot() = group->members.size();
        group->members.push_back(std::move(member));
        group->size.fetch_add(1, std::memory_order_relaxed);
        size_.fetch_add(1, std::memory_order_relaxed);
    }

    /// Leaves. Call on the member's thread, once for each add().
    void remove(asio::io_context& context, const std::string& id, Member& member) {
        worker_group* group = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (const auto it = ids_.find(id); it != ids_.end() && it->second.get() == &member) ids_.erase(it);
            group = group_for(context);
        }
        // Swap with the last one: constant time, whatever the number of members.
        auto& members = group->members;
        const std::size_t slot = member.registry_slot();
        if (slot >= members.size() || members[slot].get() != &member) return;
        if (slot + 1 != members.size()) {
            members[slot] = std::move(members.back());
            members[slot]->registry_slot() = slot;
        }
        members.pop_back();
        group->size.fetch_sub(1, std::memory_order_relaxed);
        size_.fetch_sub(1, std::memory_order_relaxed);
    }

    /// The member with that id, from any thread.
    std::shared_ptr<Member> find(std::string_view id) const {
        std::lock_guard lock(mutex_);
        const auto it = ids_.find(id);  // heterogeneous: no string built per send_to
        return it == ids_.end() ? nullptr : it->second;
    }

    /// Delivers `frame` to every member but `except` (which may be null): at once to those of
    /// `here` (the caller's worker), through one posted task per other worker with members. Call on
    /// `here`'s thread. Each receiver gets one sender's frames in the order it sent them: posts from
    /// one thread to one worker run in order.
    void broadcast(asio::io_context& here, const shared_frame& frame, const Member* except) {
        broadcast(&here, frame, except);
    }

    /// The same from any thread: `here` is the caller's worker, or null from a thread that is not a
    /// worker's (a broadcast another process made, arriving through the backplane), for which every
    /// worker with members gets its task.
    void broadcast(asio::io_context* here, const shared_frame& frame, const Member* except) {
        worker_group* local = nullptr;
        std::array<worker_group*, groups_per_pass> remote{};
        for (std::size_t start = 0;; start += groups_per_pass) {
            std::size_t count = 0;
            bool more = false;
            {
                std::lock_guard lock(mutex_);
                for (std::size_t i = start; i < groups_.size(); ++i) {
                    worker_group* g = groups_[i].get();
                    if (g->context == here) {
                        local = g;
                    } else if (g->size.load(std::memory_order_relaxed) != 0) {
                        if (count == remote.size()) {
                            more = true;
                            break;
                        }
                        remote[count++] = g;
                    }
                }
            }
            // Groups are never removed, so the pointers stay good without the lock.
            for (std::size_t i = 0; i < count; ++i)
                asio::post(*remote[i]->context, [g = remote[i], frame, except] { g->deliver(frame, except); });
            if (!more) break;
        }
        if (local != nullptr) local->deliver(frame, except);
    }

    /// Members, from any thread.
    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

private:
    /// The members of one worker. `members` is touched only on that worker's thread; `size` is read
    /// from others to skip workers with nobody to deliver to.
    struct worker_group {
        explicit worker_group(asio::io_context& c) : context(&c) {}

        void deliver(const shared_frame& frame, const Member* except) {
            // receive_broadcast only queues (or posts a close that runs later): nobody joins or
            // leaves this list while it is walked.
            for (const auto& member : members)
                if (member.get() != except) member->receive_broadcast(frame);
        }

        asio::io_context* context;
        std::vector<std::shared_ptr<Member>> members;
        std::atomic<std::size_t> size{0};
    };

    /// Under the lock.
    worker_group* group_for(asio::io_context& context) {
        for (const auto& g : groups_)
            if (g->context == &context) return g.get();
        groups_.push_back(std::make_unique<worker_group>(context));
        return groups_.back().get();
    }

    /// Lets find() look up by string_view.
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };

    static constexpr std::size_t groups_per_pass = 16;

    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Member>, id_hash, std::equal_to<>> ids_;
    std::vector<std::unique_ptr<worker_group>> groups_;
    std::atomic<std::size_t> size_{0};
};

}  // namespace starling::detail
