// Topics (rooms): named groups of connections that a publish reaches, across every worker of an app.
//
// It works as the endpoint's registry (runtime/connection_registry.hpp) does, one level down: each
// topic keeps its members per worker, and each worker's list is read and written only on that
// worker's own thread. A publish delivers to the members of the publisher's own worker at once and
// posts ONE task to each other worker where the topic has members, which delivers there to all of
// them, sharing the frame encoded once. Nothing is posted while the lock is held; the lock guards the
// map of names to topics and each topic's list of workers, never the members themselves.
//
// A topic exists while it has members: the last one to leave removes its name, and a later subscribe
// makes a fresh topic. A task already posted keeps the topic it was posted for alive, so it never
// reaches into freed memory; its members then are exactly those still in that topic.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/io_context.hpp>  // asio::io_context: a member's worker
#include <asio/post.hpp>        // asio::post: one delivery task per other worker
#include <atomic>               // std::atomic sizes read from any thread
#include <cstddef>              // std::size_t
#include <functional>           // std::function observer, std::hash, std::equal_to<>
#include <memory>               // std::shared_ptr topics and members
#include <mutex>                // std::mutex guarding the names and the workers of each topic
#include <string>               // std::string names
#include <string_view>          // std::string_view lookups
#include <unordered_map>        // name -> topic
#include <utility>              // std::move, std::pair
#include <vector>               // members, workers, sizes

#include "starling/session/write_queue.hpp"

namespace starling::detail {

/// `Member` is the connection type; it provides `receive_broadcast(const shared_frame&)`, called on
/// its own worker's thread.
template <class Member>
class topic_registry {
    struct topic;
    struct worker_group;

public:
    /// One member's place in one topic. The member keeps it (at a stable address: the registry
    /// points back at it to move members in constant time) from join() until leave().
    struct membership {
        std::shared_ptr<topic> joined;
        worker_group* group = nullptr;
        std::size_t slot = 0;
    };

    /// Told, under the lock, when a name gets its first member (true) or loses its last (false): the
    /// app subscribes its backplane to the topic's channel then. Under the lock so that the calls
    /// come in the order the changes happened; it must only queue, never call back in here.
    using observer = std::function<void(const std::string& name, bool has_members)>;

    topic_registry() = default;
    topic_registry(const topic_registry&) = delete;
    topic_registry& operator=(const topic_registry&) = delete;

    void set_observer(observer watch) { observer_ = std::move(watch); }

    /// Adds `member`, which lives on `context`, to the topic `name`, filling `place`. Call on that
    /// context's thread, with a `place` not in any topic.
    void join(asio::io_context& context, const std::string& name, std::shared_ptr<Member> member, membership& place) {
        {
            std::lock_guard lock(mutex_);
            auto& entry = topics_[name];
            if (!entry) {
                entry = std::make_shared<topic>(name);
                if (observer_) observer_(name, true);
            }
            place.joined = entry;
            place.group = entry->group_for(context);
            entry->size.fetch_add(1, std::memory_order_relaxed);
            place.group->size.fetch_add(1, std::memory_order_relaxed);
        }
        place.slot = place.group->members.size();
        place.group->members.push_back({std::move(member), &place});
    }

    /// Takes the member out of the topic `place` is in. Call on the member's thread, once per join().
    void leave(membership& place) {
        if (!place.joined) return;
        {
            std::lock_guard lock(mutex_);
            place.group->size.fetch_sub(1, std::memory_order_relaxed);
            if (place.joined->size.fetch_sub(1, std::memory_order_relaxed) == 1) {
                // The last member anywhere: the name goes, unless a newer topic already holds it.
                if (const auto it = topics_.find(place.joined->name); it != topics_.end() && it->second == place.joined) {
                    topics_.erase(it);
                    if (observer_) observer_(place.joined->name, false);
                }
            }
        }
        // Swap with the last one: constant time, whatever the number of members.
        auto& members = place.group->members;
        const std::size_t slot = place.slot;
        if (slot < members.size() && members[slot].place == &place) {
            if (slot + 1 != members.size()) {
                members[slot] = std::move(members.back());
                members[slot].place->slot = slot;
            }
            members.pop_back();
        }
        place = membership{};
    }

    /// Delivers `frame` to every member of topic `name` but `except` (which may be null): at once to
    /// those of `here` (the caller's worker; null from any other thread), through one posted task per
    /// other worker with members. Each receiver gets one publisher's frames in the order it published
    /// them: posts from one thread to one worker run in order. Returns the members reached (counted
    /// when the publish was made).
    std::size_t publish(asio::io_context* here, std::string_view name, const shared_frame& frame, const Member* except) {
        std::shared_ptr<topic> target;
        std::vector<worker_group*> remote;
        worker_group* local = nullptr;
        std::size_t reached = 0;
        {
            std::lock_guard lock(mutex_);
            const auto it = topics_.find(name);
            if (it == topics_.end()) return 0;
            target = it->second;
            reached = target->size.load(std::memory_order_relaxed);
            remote.reserve(target->groups.size());
            for (const auto& g : target->groups) {
                if (g->context == here) {
                    local = g.get();
                } else if (g->size.load(std::memory_order_relaxed) != 0) {
                    remote.push_back(g.get());
                }
            }
        }
        // Groups are removed only with their topic, which each task holds: the pointers stay good.
        for (worker_group* g : remote)
            asio::post(*g->context, [target, g, frame, except] { g->deliver(frame, except); });
        if (local != nullptr) local->deliver(frame, except);
        return reached;
    }

    /// Members of topic `name` right now, from any thread (0 when nobody subscribes).
    std::size_t size(std::string_view name) const {
        std::lock_guard lock(mutex_);
        const auto it = topics_.find(name);
        return it == topics_.end() ? 0 : it->second->size.load(std::memory_order_relaxed);
    }

    /// Every topic with members and how many, from any thread, in no particular order.
    std::vector<std::pair<std::string, std::size_t>> sizes() const {
        std::vector<std::pair<std::string, std::size_t>> out;
        std::lock_guard lock(mutex_);
        out.reserve(topics_.size());
        for (const auto& [name, t] : topics_) out.emplace_back(name, t->size.load(std::memory_order_relaxed));
        return out;
    }

    /// Topics with members right now.
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return topics_.size();
    }

private:
    struct entry {
        std::shared_ptr<Member> member;
        membership* place;  // where the member keeps its slot in this list
    };

    /// The members of one topic on one worker. `members` is touched only on that worker's thread;
    /// `size` is read from others to skip workers with nobody to deliver to.
    struct worker_group {
        explicit worker_group(asio::io_context& c) : context(&c) {}

        void deliver(const shared_frame& frame, const Member* except) {
            // receive_broadcast only queues (or starts a close that runs later): nobody joins or
            // leaves this list while it is walked.
            for (const auto& e : members)
                if (e.member.get() != except) e.member->receive_broadcast(frame);
        }

        asio::io_context* context;
        std::vector<entry> members;
        std::atomic<std::size_t> size{0};
    };

    struct topic {
        explicit topic(std::string n) : name(std::move(n)) {}

        /// Under the registry's lock.
        worker_group* group_for(asio::io_context& context) {
            for (const auto& g : groups)
                if (g->context == &context) return g.get();
            groups.push_back(std::make_unique<worker_group>(context));
            return groups.back().get();
        }

        const std::string name;
        std::vector<std::unique_ptr<worker_group>> groups;  // grows under the lock, never shrinks
        std::atomic<std::size_t> size{0};
    };

    /// Lets lookups take a string_view.
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const noexcept { return std::hash<std::string_view>{}(name); }
    };

    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<topic>, name_hash, std::equal_to<>> topics_;
    observer observer_;
};

}  // namespace starling::detail
