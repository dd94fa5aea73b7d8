// Starling, opt-in part starling/redis.hpp: use it beside starling.hpp.
//
// GENERATED FILE, DO NOT EDIT. Made by tools/amalgamate.py from include/; edit those headers and run
// the script again. A test fails when this file is stale.
//
// Needs: standalone Asio (headers), simdjson (link -lsimdjson), threads (-pthread), C++20.
#pragma once
#include "starling.hpp"

// ---- begin starling/redis.hpp ----
// A backplane over Redis pub/sub (runtime/backplane.hpp): the processes of one deployment publish to
// one Redis server, and each delivers to its own connections what the others published.
//
//     #include <starling/redis.hpp>   // opt-in: not part of <starling.hpp>
//     app.use_backplane(std::make_shared<starling::redis_backplane>(starling::redis_options{...}));
//
// Header-only like the rest, with no new dependency: a small client of Redis's protocol (RESP) over
// Asio, on a thread of its own with two connections, one that publishes and one that subscribes (a
// subscribed connection may not publish).
//
// When Redis goes away, nothing waits for it: publishes are counted as dropped and discarded until
// the publishing connection is back (so are those written but not yet confirmed when it failed);
// both connections are made again with a back-off from reconnect_min doubling to reconnect_max; the
// subscribing one subscribes again to every channel it had. Delivery within each process goes on
// meanwhile. One line is logged when a link is lost and one when it is back, with the count dropped.

#include <asio/co_spawn.hpp>          // asio::co_spawn the two links
#include <asio/detached.hpp>          // asio::detached
#include <asio/executor_work_guard.hpp>  // keeps the loop running between links
#include <asio/io_context.hpp>        // asio::io_context of the backplane's thread
#include <asio/ip/tcp.hpp>            // asio::ip::tcp sockets and resolver
#include <asio/post.hpp>              // asio::post writes onto the backplane's thread
#include <asio/steady_timer.hpp>      // asio::steady_timer back-off
#include <asio/write.hpp>             // asio::async_write commands
#include <algorithm>                  // std::min
#include <charconv>                   // std::from_chars, std::to_chars lengths
#include <chrono>                     // std::chrono back-off
#include <cstddef>                    // std::size_t
#include <cstdint>                    // std::uint16_t port, std::uint64_t counters
#include <initializer_list>           // command arguments
#include <memory>                     // std::unique_ptr socket
#include <mutex>                      // std::mutex: callers on any thread
#include <optional>                   // std::optional parsed values
#include <set>                        // std::set channels
#include <stdexcept>                  // std::runtime_error protocol errors
#include <string>                     // std::string commands and replies
#include <string_view>                // std::string_view arguments
#include <thread>                     // std::thread of the backplane
#include <utility>                    // std::move
#include <vector>                     // std::vector arrays


namespace starling {

struct redis_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    /// The first wait before making a lost link again; each failed attempt doubles it, up to reconnect_max.
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    /// Bytes of publishes waiting to be written; beyond that a publish is dropped (and counted), so a
    /// Redis that reads slower than the app publishes cannot grow the app's memory without bound.
    std::size_t max_pending_bytes = 64 * 1024 * 1024;
    /// Where the lost / back lines go (warnings).
    logger log = [](log_level level, std::string_view line) { log_to_stderr(level, line); };
};

namespace detail::resp {

/// One value of Redis's protocol, RESP2.
struct value {
    enum class kind { simple, error, integer, bulk, nil, array };
    kind type = kind::nil;
    std::string text;  // simple, error, bulk
    long long integer = 0;
    std::vector<value> items;  // array
};

struct protocol_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Appends a command (an array of bulk strings) to `out`.
inline void append_command(std::string& out, std::initializer_list<std::string_view> args) {
    auto number = [&out](char type, std::size_t n) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
        out.push_back(type);
        out.append(digits, end);
        out.append("\r\n");
    };
    number('*', args.size());
    for (const std::string_view arg : args) {
        number('$', arg.size());
        out.append(arg);
        out.append("\r\n");
    }
}

inline constexpr std::size_t max_bulk = 512 * 1024 * 1024;  // Redis's own limit
inline constexpr std::size_t max_depth = 8;

/// Parses one value of `data` from `pos`, advancing it. Nothing (and `pos` unchanged) when the value
/// is not all there yet; throws protocol_error when it is not RESP.
inline std::optional<value> parse(std::string_view data, std::size_t& pos, std::size_t depth = 0) {
    if (depth > max_depth) throw protocol_error("RESP nested too deeply");
    std::size_t at = pos;
    if (at >= data.size()) return std::nullopt;
    const char type = data[at++];
    const std::size_t eol = data.find("\r\n", at);
    if (eol == std::string_view::npos) return std::nullopt;
    const std::string_view line = data.substr(at, eol - at);
    at = eol + 2;
    auto integer = [&]() {
        long long n = 0;
        const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
        if (ec != std::errc() || end != line.data() + line.size()) throw protocol_error("RESP: bad number");
        return n;
    };
    value v;
    switch (type) {
    case '+': v.type = value::kind::simple; v.text = line; break;
    case '-': v.type = value::kind::error; v.text = line; break;
    case ':': v.type = value::kind::integer; v.integer = integer(); break;
    case '$': {
        const long long n = integer();
        if (n < 0) break;  // nil
        if (static_cast<unsigned long long>(n) > max_bulk) throw protocol_error("RESP: bulk string too long");
        const auto size = static_cast<std::size_t>(n);
        if (data.size() - at < size + 2) return std::nullopt;
        if (data.substr(at + size, 2) != "\r\n") throw protocol_error("RESP: bulk string not terminated");
        v.type = value::kind::bulk;
        v.text = data.substr(at, size);
        at += size + 2;
        break;
    }
    case '*': {
        const long long n = integer();
        if (n < 0) break;  // nil
        v.type = value::kind::array;
        for (long long i = 0; i < n; ++i) {
            auto item = parse(data, at, depth + 1);
            if (!item) return std::nullopt;
            v.items.push_back(std::move(*item));
        }
        break;
    }
    default: throw protocol_error("RESP: unknown type byte");
    }
    pos = at;
    return v;
}

}  // namespace detail::resp

class redis_backplane final : public backplane {
public:
    explicit redis_backplane(redis_options options = {}) : options_(std::move(options)) {}
    ~redis_backplane() override { stop(); }

    void start(message_handler handler) override {
        if (thread_.joinable()) return;
        handler_ = std::move(handler);
        asio::co_spawn(io_, run_link(publisher_), asio::detached);
        asio::co_spawn(io_, run_link(subscriber_), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }

    void stop() override {
        if (!thread_.joinable()) return;
        io_.stop();  // nothing of ours runs after this: no handler call once stop() returns
        thread_.join();
    }

    void publish(std::string channel, std::string payload) override {
        std::lock_guard lock(mutex_);
        if (!publisher_.up || publisher_.pending.size() > options_.max_pending_bytes) {
            ++dropped_;
            return;
        }
        detail::resp::append_command(publisher_.pending, {"PUBLISH", channel, payload});
        ++publisher_.pending_commands;
        schedule_write(publisher_);
    }

    void subscribe(std::string channel) override {
        std::lock_guard lock(mutex_);
        if (!channels_.insert(channel).second) return;
        if (subscriber_.up) {
            detail::resp::append_command(subscriber_.pending, {"SUBSCRIBE", channel});
            schedule_write(subscriber_);
        }
    }

    void unsubscribe(std::string channel) override {
        std::lock_guard lock(mutex_);
        if (channels_.erase(channel) == 0) return;
        if (subscriber_.up) {
            detail::resp::append_command(subscriber_.pending, {"UNSUBSCRIBE", channel});
            schedule_write(subscriber_);
        }
    }

    backplane_stats stats() const override {
        std::lock_guard lock(mutex_);
        backplane_stats s;
        s.connected = publisher_.up && subscriber_.up;
        s.published = published_;
        s.received = received_;
        s.dropped = dropped_;
        s.reconnects = reconnects_;
        return s;
    }

    /// Channels confirmed subscribed by Redis on the current link (tests wait for this).
    std::size_t confirmed_channels() const {
        std::lock_guard lock(mutex_);
        return confirmed_;
    }

private:
    /// One connection to Redis and what waits to be written to it. Everything but the socket is under
    /// mutex_; the socket is used on the backplane's thread only.
    struct link {
        const char* name;
        asio::ip::tcp::socket socket;
        bool up = false;
        bool ever_up = false;
        bool write_scheduled = false;  // a write is posted or in progress
        std::string pending;           // commands not yet handed to the socket
        std::size_t pending_commands = 0;
        std::size_t unconfirmed = 0;   // publishes written, their reply not yet read
        std::uint64_t generation = 0;  // which connection a write belongs to

        link(const char* n, asio::io_context& io) : name(n), socket(io) {}
    };

    /// Under mutex_: writes `l.pending` soon, on the backplane's thread. One chain of writes per
    /// connection at a time; a write of a connection since lost does nothing.
    void schedule_write(link& l) {
        if (l.write_scheduled) return;
        l.write_scheduled = true;
        asio::post(io_, [this, &l, generation = l.generation] { write_now(l, generation); });
    }

    /// On the backplane's thread: hands what is pending to the socket, and again when that is written.
    void write_now(link& l, std::uint64_t generation) {
        auto writing = std::make_shared<std::string>();  // owned by the write: a lost link's leaves with it
        {
            std::lock_guard lock(mutex_);
            if (l.generation != generation) return;
            if (!l.up || l.pending.empty()) {
                l.write_scheduled = false;
                return;
            }
            writing->swap(l.pending);
            l.unconfirmed += l.pending_commands;
            l.pending_commands = 0;
        }
        asio::async_write(l.socket, asio::buffer(*writing), [this, &l, writing, generation](std::error_code ec, std::size_t) {
            if (ec) {
                // The reader sees the same failure (the socket is closed) and makes the link again.
                std::lock_guard lock(mutex_);
                if (l.generation == generation) {
                    l.write_scheduled = false;
                    close_socket(l);
                }
                return;
            }
            write_now(l, generation);
        });
    }

    static void close_socket(link& l) {
        std::error_code ignored;
        l.socket.close(ignored);
    }

    /// Connects, runs, and when the link fails makes it again, for ever (until stop()).
    task<> run_link(link& l) {
        auto wait = options_.reconnect_min;
        asio::steady_timer backoff(io_);
        bool reported_down = false;
        for (;;) {
            std::error_code ec = co_await connect(l);
            if (!ec) {
                std::string back;
                {
                    std::lock_guard lock(mutex_);
                    l.up = true;
                    ++l.generation;  // writes of the lost connection, if any are left, do nothing now
                    l.write_scheduled = false;
                    if (l.ever_up) ++reconnects_;
                    l.ever_up = true;
                    if (&l == &subscriber_) {
                        // Every channel again, in one command; those added later follow one each.
                        confirmed_ = 0;
                        if (!channels_.empty()) append_subscribe_all(l.pending);
                        back = "subscribed again to " + std::to_string(channels_.size()) + " channels";
                    } else {
                        back = std::to_string(dropped_ - dropped_at_loss_) + " messages dropped while it was down";
                    }
                    if (!l.pending.empty()) schedule_write(l);
                }
                if (reported_down)
                    log("redis backplane: " + std::string(l.name) + " link to " + where() + " is back; " + back);
                reported_down = false;
                wait = options_.reconnect_min;
                ec = co_await read_replies(l);
                {
                    std::lock_guard lock(mutex_);
                    l.up = false;
                    if (&l == &publisher_) {
                        // Written but not confirmed, or not written at all: either may be lost.
                        dropped_ += l.unconfirmed + l.pending_commands;
                        dropped_at_loss_ = dropped_;
                    } else {
                        confirmed_ = 0;
                    }
                    l.unconfirmed = 0;
                    l.pending_commands = 0;
                    l.pending.clear();
                    close_socket(l);
                }
            }
            if (!reported_down) {
                log("redis backplane: " + std::string(l.name) + " link to " + where() + " lost (" + ec.message() +
                    "); reconnecting");
                reported_down = true;
            }
            backoff.expires_after(wait);
            co_await backoff.async_wait(detail::as_tuple_awaitable);
            wait = std::min(wait * 2, options_.reconnect_max);
        }
    }

    task<std::error_code> connect(link& l) {
        asio::ip::tcp::resolver resolver(io_);
        auto [rec, endpoints] = co_await resolver.async_resolve(options_.host, std::to_string(options_.port),
                                                                detail::as_tuple_awaitable);
        if (rec) co_return rec;
        std::error_code last = asio::error::host_not_found;
        for (const auto& e : endpoints) {
            asio::ip::tcp::socket socket(io_);
            auto [ec] = co_await socket.async_connect(e.endpoint(), detail::as_tuple_awaitable);
            if (!ec) {
                socket.set_option(asio::ip::tcp::no_delay(true), ec);
                l.socket = std::move(socket);
                co_return std::error_code{};
            }
            last = ec;
        }
        co_return last;
    }

    /// Reads until the link fails; returns why.
    task<std::error_code> read_replies(link& l) {
        std::string in;
        std::string chunk(64 * 1024, '\0');
        for (;;) {
            auto [ec, n] = co_await l.socket.async_read_some(asio::buffer(chunk), detail::as_tuple_awaitable);
            if (ec) co_return ec;
            in.append(chunk.data(), n);
            std::size_t pos = 0;
            try {
                while (auto v = detail::resp::parse(in, pos)) {
                    if (&l == &publisher_)
                        replied(*v);
                    else
                        pushed(*v);
                }
            } catch (const detail::resp::protocol_error& e) {
                log(std::string("redis backplane: ") + e.what());
                co_return asio::error::invalid_argument;
            }
            in.erase(0, pos);
        }
    }

    /// A reply on the publishing link: one per PUBLISH, in order.
    void replied(const detail::resp::value& v) {
        std::lock_guard lock(mutex_);
        if (publisher_.unconfirmed > 0) --publisher_.unconfirmed;
        if (v.type == detail::resp::value::kind::integer)
            ++published_;
        else
            ++dropped_;  // an error reply: Redis refused it
    }

    /// What Redis pushes on the subscribing link: messages, and confirmations of (un)subscribes.
    void pushed(const detail::resp::value& v) {
        using kind = detail::resp::value::kind;
        if (v.type != kind::array || v.items.size() < 3 || v.items[0].type != kind::bulk) return;
        const std::string& what = v.items[0].text;
        if (what == "message" && v.items[1].type == kind::bulk && v.items[2].type == kind::bulk) {
            {
                std::lock_guard lock(mutex_);
                ++received_;
            }
            handler_(v.items[1].text, v.items[2].text);  // not under the lock: the app takes its own
        } else if (what == "subscribe") {
            std::lock_guard lock(mutex_);
            ++confirmed_;
        } else if (what == "unsubscribe") {
            std::lock_guard lock(mutex_);
            if (confirmed_ > 0) --confirmed_;
        }
    }

    /// Under mutex_.
    void append_subscribe_all(std::string& out) const {
        // SUBSCRIBE takes any number of channels: one command, however many there are.
        std::string args;
        std::size_t count = 1;
        auto bulk = [&args](std::string_view s) {
            args.push_back('$');
            args.append(std::to_string(s.size()));
            args.append("\r\n");
            args.append(s);
            args.append("\r\n");
        };
        bulk("SUBSCRIBE");
        for (const auto& c : channels_) {
            bulk(c);
            ++count;
        }
        out.append("*" + std::to_string(count) + "\r\n");
        out.append(args);
    }

    std::string where() const { return options_.host + ":" + std::to_string(options_.port); }

    void log(const std::string& line) const {
        try {
            if (options_.log) options_.log(log_level::warning, line);
        } catch (...) {
            // A logger that throws must not take the backplane's thread with it.
        }
    }

    redis_options options_;
    asio::io_context io_{1};
    // Links come and go; the loop must keep running (and its back-off timers firing) between them.
    asio::executor_work_guard<asio::io_context::executor_type> keep_running_ = asio::make_work_guard(io_);
    message_handler handler_;
    std::thread thread_;

    mutable std::mutex mutex_;
    link publisher_{"publishing", io_};
    link subscriber_{"subscribing", io_};
    std::set<std::string, std::less<>> channels_;
    std::size_t confirmed_ = 0;
    std::uint64_t published_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint64_t dropped_at_loss_ = 0;  // dropped_ when the publishing link was last lost
    std::uint64_t reconnects_ = 0;
};

}  // namespace starling
// ---- end starling/redis.hpp ----
