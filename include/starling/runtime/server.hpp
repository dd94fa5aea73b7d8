// The network side of an app: worker threads (one event loop each), the listening sockets (each with
// its transport: plain TCP here, TLS from <starling/tls.hpp>; see runtime/transport.hpp), the
// connections from accept to their end (runtime/upgrade.hpp runs their handshake), and graceful
// shutdown.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>      // asio::co_spawn per connection
#include <asio/detached.hpp>      // asio::detached
#include <asio/executor_work_guard.hpp>  // keeps idle worker loops running
#include <asio/io_context.hpp>    // asio::io_context per worker
#include <asio/ip/tcp.hpp>        // asio::ip::tcp acceptor and sockets
#include <asio/post.hpp>          // asio::post cross-thread hand-offs
#include <asio/signal_set.hpp>    // asio::signal_set for SIGINT / SIGTERM
#include <asio/steady_timer.hpp>  // asio::steady_timer accept pause
#include <asio/use_awaitable.hpp> // asio::use_awaitable
#include <asio/write.hpp>         // asio::async_write responses
#include <algorithm>              // std::max, std::min
#include <atomic>                 // std::atomic counters and flags
#include <cerrno>                 // ENFILE
#include <chrono>                 // std::chrono deadlines
#include <csignal>                // SIGINT, SIGTERM
#include <cstddef>                // std::size_t
#include <cstdint>                // std::uint16_t port
#include <functional>             // std::less<> for heterogeneous route lookup, std::function signal actions
#include <exception>              // std::exception of a signal action
#include <map>                    // std::map routes
#include <memory>                 // std::shared_ptr, std::unique_ptr
#include <optional>               // std::optional handshake results
#include <string>                 // std::string responses
#include <thread>                 // std::thread workers
#include <vector>                 // std::vector workers

#include "starling/runtime/accept_backoff.hpp"
#include "starling/runtime/address_counts.hpp"
#include "starling/session/async_event.hpp"
#include "starling/session/engine_clock.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/runtime/live_connections.hpp"
#include "starling/runtime/metrics.hpp"
#include "starling/runtime/reserve_descriptor.hpp"
#include "starling/options.hpp"
#include "starling/protocol/handshake.hpp"
#include "starling/runtime/endpoint_connection.hpp"
#include "starling/runtime/transport.hpp"
#include "starling/runtime/upgrade.hpp"
#include "starling/session/tcp_stream.hpp"

namespace starling::detail {

/// A port to listen on and what it speaks (a null transport is plain TCP).
struct port_spec {
    std::uint16_t port = 0;
    std::shared_ptr<starling::transport> transport;
};

/// Plain TCP: ws://, and HTTP for the pages.
std::shared_ptr<starling::transport> plain_transport();

class server {
public:
    /// A server listening on `ports` (the first is server_options::port with its transport, as app
    /// passes them).
    server(route_table routes, page_table pages, server_options options, std::shared_ptr<const log_channel> log,
           std::vector<port_spec> ports)
        : routes_(std::move(routes)), pages_(std::move(pages)), options_(options), log_(std::move(log)) {
        const unsigned count = options_.workers != 0 ? options_.workers : std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < count; ++i) workers_.push_back(std::make_unique<worker>());
        for (port_spec& p : ports) {
            if (!p.transport) p.transport = plain_transport();
            listeners_.push_back(std::make_unique<listener>(workers_[0]->context, p));
        }
        drained_ = std::make_unique<async_event>(workers_[0]->context.get_executor());
    }

    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() {
        stop();
        // Destroying the loops destroys the coroutines still suspended on them (connections that
        // outlived the shutdown timeout); their bookkeeping must not reach into loops already gone.
        torn_down_ = true;
        signals_.reset();
        user_signals_.clear();
        // The loops go first, before the members declared after them: a coroutine destroyed with its
        // loop leaves the live list and its address's count on the way out, and those must still
        // exist then. What uses a loop goes before it: the acceptors, the drain event's timer.
        listeners_.clear();
        drained_.reset();
        workers_.clear();
    }

    /// Prepares every transport (a TLS listener loads its certificate: a bad file throws here, before
    /// anything is bound), then binds and listens on every port; throws std::system_error when an
    /// address is taken. Returns the first port as bound.
    std::uint16_t listen() {
        for (auto& l : listeners_) l->how->prepare();
        for (auto& l : listeners_) {
            const asio::ip::tcp::endpoint where(asio::ip::make_address(options_.host), l->requested);
            l->acceptor.open(where.protocol());
            l->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
            l->acceptor.bind(where);
            l->acceptor.listen(asio::socket_base::max_listen_connections);
            // Synchronous accepts (refuse_waiting_connections) must find the backlog empty rather than
            // wait on it; asynchronous ones work the same either way.
            l->acceptor.non_blocking(true);
            l->port = l->acceptor.local_endpoint().port();
        }
        reserve_.acquire();
        for (auto& l : listeners_) asio::co_spawn(workers_[0]->context, accept_loop(*l), asio::detached);
        return port();
    }

    /// The first port, as bound.
    std::uint16_t port() const noexcept { return listeners_.empty() ? 0 : listeners_[0]->port; }
    /// Every port as bound, in the order given.
    std::vector<std::uint16_t> ports() const {
        std::vector<std::uint16_t> bound;
        for (const auto& l : listeners_) bound.push_back(l->port);
        return bound;
    }
    /// Every port's transport, in the order given.
    std::vector<std::shared_ptr<starling::transport>> transports() const {
        std::vector<std::shared_ptr<starling::transport>> all;
        for (const auto& l : listeners_) all.push_back(l->how);
        return all;
    }

    /// Refused handshakes so far, into `s`.
    void count_refusals(metrics_snapshot& s) const noexcept { refusals_.snapshot(s); }

    std::size_t worker_count() const noexcept { return workers_.size(); }
    /// The event loop of worker `index`: what an in-process caller runs itself when it starts no
    /// threads (the test client, <starling/testing.hpp>).
    asio::io_context& worker_loop(std::size_t index) noexcept { return workers_[index]->context; }

    /// Runs `action` on worker 0's thread each time `number` arrives, from now until the server stops.
    /// An exception it throws is logged.
    void on_signal(int number, std::function<void()> action) {
        auto& set = *user_signals_.emplace_back(std::make_unique<asio::signal_set>(workers_[0]->context, number));
        wait_for_signal(set, std::move(action));
    }

    /// Serves one connection on `stream` from its opening to its end: what a transport's serve() does
    /// once it has made the stream. A stream with an opening of its own (TLS: async_handshake) runs it
    /// first, under the same handshake deadline as the HTTP upgrade, armed before either begins.
    template <class Stream>
    task<> serve_stream(Stream stream, asio::io_context& context) {
        auto connection = std::make_shared<endpoint_connection<Stream>>(std::move(stream), context);
        const live_guard listed(live_, live_.add(context, connection));
        const address_guard from_address(addresses_, connection->client().ip, options_.max_connections_per_ip);
        connection->begin_handshake(engine_clock::now() + options_.handshake_timeout);
        if constexpr (requires(Stream& s) { s.async_handshake(as_tuple_awaitable); }) {
            // A client that fails it (plain HTTP or garbage on a TLS port) or runs out of time (the
            // deadline closes the stream under it) is dropped here, leaving nothing behind.
            auto [ec] = co_await connection->stream().async_handshake(as_tuple_awaitable);
            if (ec) {
                connection->discard();
                co_return;
            }
        }
        upgrade_outcome outcome = co_await upgrader_.upgrade(*connection, from_address.over_cap());
        if (!outcome.upgraded) {
            connection->discard();
            co_return;
        }
        if (!live_.upgraded(listed.id_) && !outcome.close_at_once)
            outcome.close_at_once = close_reason{static_cast<std::uint16_t>(close_code::going_away), "server shutting down"};
        co_await connection->run(std::move(outcome.close_at_once));
    }

    /// Runs the event loops. With `block`, worker 0 runs on the calling thread until the server stops,
    /// and SIGINT / SIGTERM stop it gracefully; otherwise every worker gets a thread of its own.
    void run(bool block) {
        for (std::size_t i = block ? 1 : 0; i < workers_.size(); ++i) {
            worker& w = *workers_[i];
            w.thread = std::thread([&w] { w.context.run(); });
        }
        if (!block) return;
        stop_on_signals();
        workers_[0]->context.run();
        join();
    }

    /// From now on SIGINT and SIGTERM stop the server gracefully. Called as soon as it listens, so a
    /// signal sent right after a program announced its port is not lost to the default action.
    void stop_on_signals() {
        if (signals_) return;
        signals_ = std::make_unique<asio::signal_set>(workers_[0]->context, SIGINT, SIGTERM);
        signals_->async_wait([this](std::error_code ec, int) {
            if (!ec) request_stop();
        });
    }

    /// Starts a graceful shutdown from any thread, and returns at once: stop accepting, close every
    /// connection with 1001, wait up to shutdown_timeout for them to finish, drop what is left, then
    /// stop the loops.
    void request_stop() {
        if (stopping_.exchange(true)) return;
        asio::co_spawn(workers_[0]->context, shutdown(), asio::detached);
    }

    /// request_stop(), then wait for the worker threads (unless called from one of them).
    void stop() {
        request_stop();
        join();
    }

private:
    /// One listening port: its acceptor, what it speaks, and its accept loop's pause and back-off.
    struct listener {
        listener(asio::io_context& context, const port_spec& spec)
            : requested(spec.port), how(spec.transport), acceptor(context), pause(context) {}
        std::uint16_t requested;
        std::shared_ptr<starling::transport> how;
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer pause;  // accept_loop's pause after a failed accept
        accept_backoff backoff;    // used by its accept_loop only, on worker 0
        std::uint16_t port = 0;
    };

    struct worker {
        asio::io_context context{1};  // one thread runs each loop
        // An idle loop would return from run() at once; this keeps it waiting for connections.
        asio::executor_work_guard<asio::io_context::executor_type> keep_running = asio::make_work_guard(context);
        std::thread thread;
    };

    void join() {
        for (auto& w : workers_)
            if (w->thread.joinable() && w->thread.get_id() != std::this_thread::get_id()) w->thread.join();
    }

    void log_line(log_level level, std::string_view event, std::string_view line) const {
        if (log_) log_->write(level, event, {}, {}, line);
    }

    void wait_for_signal(asio::signal_set& set, std::function<void()> action) {
        set.async_wait([this, &set, action = std::move(action)](std::error_code ec, int) mutable {
            if (ec) return;
            try {
                action();
            } catch (const std::exception& e) {
                log_line(log_level::error, "signal_action_threw", std::string("signal action threw: ") + e.what());
            }
            wait_for_signal(set, std::move(action));
        });
    }

    task<> accept_loop(listener& l) {
        std::size_t next = 0;
        while (!stopping_) {
            // Round-robin: the new socket belongs to the next worker's loop, and so does its session.
            worker& w = *workers_[next];
            next = (next + 1) % workers_.size();
            auto [ec, socket] = co_await l.acceptor.async_accept(w.context, detail::as_tuple_awaitable);
            if (ec) {
                if (stopping_ || ec == asio::error::operation_aborted) co_return;
                co_await pause_accepting(l, ec);  // keep serving the connections we have, then retry
                continue;
            }
            l.backoff.succeeded();
            if (!reserve_.held()) reserve_.acquire();  // given back earlier and not re-taken then
            // Counted here, at accept, not when serve() first runs on its worker: with several workers
            // a burst of connections would otherwise pass the limit before any of them was counted.
            const bool over_limit = active_.fetch_add(1) >= options_.max_connections;
            asio::co_spawn(w.context, serve(l, std::move(socket), w.context, over_limit), asio::detached);
        }
    }

    /// EMFILE (this process) or ENFILE (the whole system). Asio reports them in a category of its own,
    /// which std::errc conditions do not match.
    static bool out_of_descriptors(std::error_code ec) noexcept {
        return ec == asio::error::no_descriptors || ec == std::error_code(ENFILE, asio::error::get_system_category());
    }

    /// After a failed accept: refuse the connections that wait in the backlog if descriptors ran out,
    /// log (at most once per report interval), and pause before the next accept, longer each time
    /// in a row. Without the pause, a connection that cannot be accepted stays in the backlog and every
    /// retry fails at once: a core spent on retries and log lines.
    task<> pause_accepting(listener& l, std::error_code ec) {
        const std::size_t refused = out_of_descriptors(ec) ? refuse_waiting_connections(l) : 0;
        const std::chrono::milliseconds pause = l.backoff.failed();
        if (const std::optional<std::size_t> unreported = l.backoff.report(std::chrono::steady_clock::now())) {
            std::string line = "accept failed: " + ec.message() + "; pausing accepts for " +
                               std::to_string(pause.count()) + " ms";
            if (refused != 0)
                line += "; " + std::string(l.how->speaks_plain_http() ? "answered " : "closed ") + std::to_string(refused) +
                        " waiting connection(s)" + (l.how->speaks_plain_http() ? " with 503" : "");
            if (*unreported != 0)
                line += " (" + std::to_string(*unreported) + " more accept failure(s) since the last report)";
            log_line(log_level::warning, "accept_failed", line);
        }
        l.pause.expires_after(pause);
        co_await l.pause.async_wait(detail::as_tuple_awaitable);  // cancelled by shutdown()
    }

    /// Out of descriptors, the connections in the backlog would wait for an answer that never comes.
    /// The reserve descriptor is given back, so each of them can be accepted in turn (reusing the one
    /// number freed), answered 503 and closed; then the reserve is taken again. Returns how many were
    /// answered. Bounded, so that a flood of connections cannot keep the loop here. A port whose
    /// clients expect TLS first gets no plain-text answer, only the close.
    std::size_t refuse_waiting_connections(listener& l) {
        if (!reserve_.release()) return 0;
        static constexpr std::size_t most_at_once = 256;
        const std::string answer = make_response(503, "text/plain", "Too many open files");
        std::size_t refused = 0;
        while (refused < most_at_once) {
            std::error_code ec;
            asio::ip::tcp::socket socket(workers_[0]->context);
            l.acceptor.accept(socket, ec);
            if (ec) break;  // none left (would block), or another thread took the freed descriptor
            socket.non_blocking(true, ec);
            // Read what the client sent already, so that closing does not reset the connection (which
            // could discard our answer), then answer without waiting: a few bytes into an empty send
            // buffer.
            char request[4096];
            socket.read_some(asio::buffer(request), ec);
            if (l.how->speaks_plain_http()) socket.write_some(asio::buffer(answer), ec);
            socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
            socket.close(ec);
            ++refused;
        }
        reserve_.acquire();
        return refused;
    }

    /// Ends the count of a connection that accept_loop() counted; the last one out during shutdown
    /// wakes shutdown().
    struct connection_count_guard {
        explicit connection_count_guard(server& s) : s_(s) {}
        ~connection_count_guard() {
            if (s_.active_.fetch_sub(1) == 1 && s_.stopping_ && !s_.torn_down_)
                asio::post(s_.workers_[0]->context, [&s = s_] { s.drained_->notify(); });
        }
        server& s_;
    };

    /// Takes a connection off the live list when its serve() ends, however it ends.
    struct live_guard {
        live_guard(live_connections& live, live_connections::id_type id) : live_(live), id_(id) {}
        ~live_guard() { live_.remove(id_); }
        live_connections& live_;
        live_connections::id_type id_;
    };

    /// One accepted connection, counted from accept to its end, served by its port's transport.
    task<> serve(listener& l, asio::ip::tcp::socket accepted, asio::io_context& context, bool over_limit) {
        connection_count_guard counted(*this);
        // The transport lives as long as the server; the connection may outlive the listener's loop.
        const std::shared_ptr<starling::transport> how = l.how;
        co_await how->serve(*this, std::move(accepted), context, over_limit);
    }

    /// Stop accepting; close every connection with 1001 and give them shutdown_timeout to finish
    /// their close handshakes; then drop what is left and give those a moment to wind down, so their
    /// coroutines end (and free the connection) while the loops still run.
    task<> shutdown() {
        std::error_code ignored;
        for (auto& l : listeners_) {
            l->acceptor.close(ignored);
            l->pause.cancel();
        }
        for (auto& set : user_signals_) set->cancel(ignored);
        live_.close_all();
        const auto polite_until = engine_clock::now() + options_.shutdown_timeout;
        while (active_.load() > 0)
            if (!co_await drained_->wait_until(polite_until)) break;
        if (active_.load() > 0) {
            live_.abort_all();
            const auto grace_until = engine_clock::now() + abort_grace;
            while (active_.load() > 0)
                if (!co_await drained_->wait_until(grace_until)) break;
            if (active_.load() > 0) log_line(log_level::warning, "shutdown_incomplete", "shutdown: a handler did not return after its connection was dropped");
        }
        for (auto& w : workers_) w->context.stop();
    }

    /// How long dropped connections get to finish their coroutines (run on_close, return from the
    /// handler) at the end of a shutdown.
    static constexpr std::chrono::seconds abort_grace{1};

    route_table routes_;
    page_table pages_;
    server_options options_;
    std::shared_ptr<const log_channel> log_;
    handshake_refusals refusals_;
    upgrader upgrader_{upgrade_settings{routes_, pages_, options_, stopping_, log_.get(), refusals_}};
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::unique_ptr<listener>> listeners_;
    reserve_descriptor reserve_;  // given back when descriptors run out
    std::unique_ptr<async_event> drained_;
    live_connections live_;
    address_counts addresses_;  // open connections per client address, with max_connections_per_ip
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> torn_down_{false};
    std::unique_ptr<asio::signal_set> signals_;
    std::vector<std::unique_ptr<asio::signal_set>> user_signals_;  // on_signal()
};

/// Plain TCP: the socket as it was accepted; a connection over the limit is answered 503.
class tcp_transport final : public starling::transport {
public:
    const char* scheme() const noexcept override { return "ws"; }
    bool speaks_plain_http() const noexcept override { return true; }
    task<> serve(server& s, asio::ip::tcp::socket socket, asio::io_context& context, bool over_limit) override {
        if (over_limit) {
            tcp_stream refused(std::move(socket));
            co_await respond_and_close(refused, make_response(503, "text/plain", "Too many connections"));
            co_return;
        }
        co_await s.serve_stream(tcp_stream(std::move(socket)), context);
    }
};

inline std::shared_ptr<starling::transport> plain_transport() { return std::make_shared<tcp_transport>(); }

}  // namespace starling::detail
