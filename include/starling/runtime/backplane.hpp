// A backplane carries publishes, broadcasts and send_to between the processes (nodes) of one
// deployment: each node publishes once to it and delivers what the others published to its own
// connections. This header holds the interface and the in-process default, which links apps of one
// process (tests, a process that runs several apps); <starling/redis.hpp> holds the Redis one, opt-in
// so that plain users need neither its code nor a server.
//
// The contract an implementation keeps:
//   - publish(), subscribe() and unsubscribe() may be called from any thread, never block on the
//     network, and take effect in the order they were called (a publisher's messages stay in order);
//   - what arrives on a subscribed channel is handed to the handler given to start(), one message at a
//     time, in the order the channel delivered it; the publishing node gets its own messages back too
//     (the app recognises and skips them);
//   - when the link is down, publish() counts the message as dropped and returns: never a crash,
//     never an unbounded queue; subscriptions are restored when the link is back.
#pragma once

#include <algorithm>    // std::find
#include <condition_variable>  // std::condition_variable: stop() waits for handlers in progress
#include <cstdint>      // std::uint64_t counters
#include <functional>   // std::function handler
#include <map>          // channel -> subscribed
#include <memory>       // std::shared_ptr bus and handler
#include <mutex>        // std::mutex guarding the bus
#include <string>       // std::string channels and payloads
#include <string_view>  // std::string_view handler arguments
#include <utility>      // std::move
#include <vector>       // std::vector nodes

namespace starling {

/// What a backplane has done so far. `dropped` counts messages published while the link was down
/// (and, for Redis, those written but not yet confirmed when the link failed).
struct backplane_stats {
    bool connected = false;
    std::uint64_t published = 0;   // handed to the link
    std::uint64_t received = 0;    // arrived on a subscribed channel (the node's own included)
    std::uint64_t dropped = 0;
    std::uint64_t reconnects = 0;  // links made again after losing one
};

class backplane {
public:
    /// Called with each message arriving on a subscribed channel.
    using message_handler = std::function<void(std::string_view channel, std::string_view payload)>;

    backplane() = default;
    backplane(const backplane&) = delete;
    backplane& operator=(const backplane&) = delete;
    virtual ~backplane() = default;

    /// Starts the link; `handler` gets every message from now on. Called once, by the app, when it starts.
    virtual void start(message_handler handler) = 0;
    /// Ends the link: once it returns, the handler is not called again. Called by the app when it stops.
    virtual void stop() = 0;

    virtual void publish(std::string channel, std::string payload) = 0;
    virtual void subscribe(std::string channel) = 0;
    virtual void unsubscribe(std::string channel) = 0;

    virtual backplane_stats stats() const = 0;
};

/// The medium in-process backplanes share: make one, and give each app its own
/// `std::make_shared<starling::in_process_backplane>(bus)`. Messages are handed over on the
/// publisher's thread, as the publish is made.
class in_process_bus {
public:
    in_process_bus() = default;
    in_process_bus(const in_process_bus&) = delete;
    in_process_bus& operator=(const in_process_bus&) = delete;

private:
    friend class in_process_backplane;

    /// One attached backplane; everything in it is under the bus's lock.
    struct node {
        std::shared_ptr<const backplane::message_handler> handler;
        std::map<std::string, bool, std::less<>> channels;
        std::uint64_t published = 0;
        std::uint64_t received = 0;
        int calls_in_progress = 0;  // publishers inside this node's handler right now
    };

    std::mutex mutex_;
    std::condition_variable calls_ended_;
    std::vector<node*> nodes_;
};

class in_process_backplane final : public backplane {
public:
    explicit in_process_backplane(std::shared_ptr<in_process_bus> bus) : bus_(std::move(bus)) {}
    ~in_process_backplane() override { stop(); }

    void start(message_handler handler) override {
        std::lock_guard lock(bus_->mutex_);
        self_.handler = std::make_shared<const message_handler>(std::move(handler));
        if (std::find(bus_->nodes_.begin(), bus_->nodes_.end(), &self_) == bus_->nodes_.end())
            bus_->nodes_.push_back(&self_);
    }

    void stop() override {
        std::unique_lock lock(bus_->mutex_);
        std::erase(bus_->nodes_, &self_);
        // A publisher on another thread may be inside this node's handler: wait until it is out, so
        // that nothing reaches the app after stop() returns.
        bus_->calls_ended_.wait(lock, [this] { return self_.calls_in_progress == 0; });
    }

    void publish(std::string channel, std::string payload) override {
        std::vector<std::pair<in_process_bus::node*, std::shared_ptr<const message_handler>>> receivers;
        {
            std::lock_guard lock(bus_->mutex_);
            ++self_.published;
            for (in_process_bus::node* n : bus_->nodes_)
                if (n->channels.contains(channel)) {
                    ++n->calls_in_progress;
                    ++n->received;
                    receivers.emplace_back(n, n->handler);
                }
        }
        // Outside the lock: the handler takes the app's own locks, and those may call subscribe().
        for (auto& [n, handler] : receivers) {
            (*handler)(channel, payload);
            std::lock_guard lock(bus_->mutex_);
            if (--n->calls_in_progress == 0) bus_->calls_ended_.notify_all();
        }
    }

    void subscribe(std::string channel) override {
        std::lock_guard lock(bus_->mutex_);
        self_.channels.insert_or_assign(std::move(channel), true);
    }

    void unsubscribe(std::string channel) override {
        std::lock_guard lock(bus_->mutex_);
        if (const auto it = self_.channels.find(channel); it != self_.channels.end()) self_.channels.erase(it);
    }

    backplane_stats stats() const override {
        std::lock_guard lock(bus_->mutex_);
        backplane_stats s;
        s.connected = std::find(bus_->nodes_.begin(), bus_->nodes_.end(), &self_) != bus_->nodes_.end();
        s.published = self_.published;
        s.received = self_.received;
        return s;
    }

private:
    std::shared_ptr<in_process_bus> bus_;
    in_process_bus::node self_;
};

}  // namespace starling
