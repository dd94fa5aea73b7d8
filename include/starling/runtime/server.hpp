// The network side of an app: worker threads (one event loop each), the listening socket, the opening
// handshake of every connection (read the request under size and time limits, route it, validate it,
// answer 101, a page, or an error), and graceful shutdown.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>      // asio::co_spawn per connection
#include <asio/detached.hpp>      // asio::detached
#include <asio/executor_work_guard.hpp>  // keeps idle worker loops running
#include <asio/io_context.hpp>    // asio::io_context per worker
#include <asio/ip/tcp.hpp>        // asio::ip::tcp acceptor and sockets
#include <asio/post.hpp>          // asio::post cross-thread hand-offs
#include <asio/signal_set.hpp>    // asio::signal_set for SIGINT / SIGTERM
#include <asio/steady_timer.hpp>  // asio::steady_timer handshake deadline, accept pause
#include <asio/use_awaitable.hpp> // asio::use_awaitable
#include <asio/write.hpp>         // asio::async_write responses
#include <algorithm>              // std::max, std::min
#include <atomic>                 // std::atomic counters and flags
#include <cerrno>                 // ENFILE
#include <chrono>                 // std::chrono deadlines
#include <csignal>                // SIGINT, SIGTERM
#include <cstddef>                // std::size_t
#include <cstdint>                // std::uint16_t port
#include <functional>             // std::less<> for heterogeneous route lookup
#include <map>                    // std::map routes
#include <memory>                 // std::shared_ptr, std::unique_ptr
#include <optional>               // std::optional handshake results
#include <string>                 // std::string responses
#include <thread>                 // std::thread workers
#include <vector>                 // std::vector workers

#include "starling/runtime/accept_backoff.hpp"
#include "starling/session/async_event.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/runtime/live_connections.hpp"
#include "starling/runtime/reserve_descriptor.hpp"
#include "starling/protocol/handshake.hpp"
#include "starling/http/request_parser.hpp"
#include "starling/http/response.hpp"
#include "starling/options.hpp"
#include "starling/api/websocket.hpp"

namespace starling::detail {

using route_table = std::map<std::string, std::shared_ptr<endpoint_state>, std::less<>>;
using page_table = std::map<std::string, http::page_handler, std::less<>>;

class server {
public:
    server(route_table routes, page_table pages, server_options options, std::shared_ptr<const logger> log)
        : routes_(std::move(routes)), pages_(std::move(pages)), options_(options), log_(std::move(log)) {
        const unsigned count = options_.workers != 0 ? options_.workers : std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < count; ++i) workers_.push_back(std::make_unique<worker>());
        acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(workers_[0]->context);
        accept_pause_ = std::make_unique<asio::steady_timer>(workers_[0]->context);
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
    }

    /// Binds and listens; throws std::system_error when the address is taken. Returns the bound port.
    std::uint16_t listen() {
        const asio::ip::tcp::endpoint where(asio::ip::make_address(options_.host), options_.port);
        acceptor_->open(where.protocol());
        acceptor_->set_option(asio::ip::tcp::acceptor::reuse_address(true));
        acceptor_->bind(where);
        acceptor_->listen(asio::socket_base::max_listen_connections);
        // Synchronous accepts (refuse_waiting_connections) must find the backlog empty rather than
        // wait on it; asynchronous ones work the same either way.
        acceptor_->non_blocking(true);
        reserve_.acquire();
        port_ = acceptor_->local_endpoint().port();
        asio::co_spawn(workers_[0]->context, accept_loop(), asio::detached);
        return port_;
    }

    std::uint16_t port() const noexcept { return port_; }
    std::size_t worker_count() const noexcept { return workers_.size(); }

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

    void log_line(log_level level, std::string_view line) const {
        if (log_ && *log_) (*log_)(level, line);
    }

    task<> accept_loop() {
        std::size_t next = 0;
        while (!stopping_) {
            // Round-robin: the new socket belongs to the next worker's loop, and so does its session.
            worker& w = *workers_[next];
            next = (next + 1) % workers_.size();
            auto [ec, socket] = co_await acceptor_->async_accept(w.context, detail::as_tuple_awaitable);
            if (ec) {
                if (stopping_ || ec == asio::error::operation_aborted) co_return;
                co_await pause_accepting(ec);  // keep serving the connections we have, then retry
                continue;
            }
            backoff_.succeeded();
            if (!reserve_.held()) reserve_.acquire();  // given back earlier and not re-taken then
            // Counted here, at accept, not when serve() first runs on its worker: with several workers
            // a burst of connections would otherwise pass the limit before any of them was counted.
            const bool over_limit = active_.fetch_add(1) >= options_.max_connections;
            asio::co_spawn(w.context, serve(std::move(socket), w.context, over_limit), asio::detached);
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
    task<> pause_accepting(std::error_code ec) {
        const std::size_t refused = out_of_descriptors(ec) ? refuse_waiting_connections() : 0;
        const std::chrono::milliseconds pause = backoff_.failed();
        if (const std::optional<std::size_t> unreported = backoff_.report(std::chrono::steady_clock::now())) {
            std::string line = "accept failed: " + ec.message() + "; pausing accepts for " +
                               std::to_string(pause.count()) + " ms";
            if (refused != 0) line += "; answered " + std::to_string(refused) + " waiting connection(s) with 503";
            if (*unreported != 0)
                line += " (" + std::to_string(*unreported) + " more accept failure(s) since the last report)";
            log_line(log_level::warning, line);
        }
        accept_pause_->expires_after(pause);
        co_await accept_pause_->async_wait(detail::as_tuple_awaitable);  // cancelled by shutdown()
    }

    /// Out of descriptors, the connections in the backlog would wait for an answer that never comes.
    /// The reserve descriptor is given back, so each of them can be accepted in turn (reusing the one
    /// number freed), answered 503 and closed; then the reserve is taken again. Returns how many were
    /// answered. Bounded, so that a flood of connections cannot keep the loop here.
    std::size_t refuse_waiting_connections() {
        if (!reserve_.release()) return 0;
        static constexpr std::size_t most_at_once = 256;
        const std::string answer = make_response(503, "text/plain", "Too many open files");
        std::size_t refused = 0;
        while (refused < most_at_once) {
            std::error_code ec;
            asio::ip::tcp::socket socket(workers_[0]->context);
            acceptor_->accept(socket, ec);
            if (ec) break;  // none left (would block), or another thread took the freed descriptor
            socket.non_blocking(true, ec);
            // Read what the client sent already, so that closing does not reset the connection (which
            // could discard our answer), then answer without waiting: a few bytes into an empty send
            // buffer.
            char request[4096];
            socket.read_some(asio::buffer(request), ec);
            socket.write_some(asio::buffer(answer), ec);
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

    static task<> respond_and_close(asio::ip::tcp::socket& socket, std::string response) {
        co_await asio::async_write(socket, asio::buffer(response), detail::as_tuple_awaitable);
        std::error_code ec;
        socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
        socket.close(ec);
    }

    /// An upgraded connection, ready to run; `close_at_once` when its typed query parameters did not
    /// resolve and the endpoint accepts-then-closes (1008), or the server began shutting down (1001).
    struct upgraded {
        std::shared_ptr<websocket> connection;
        std::optional<close_reason> close_at_once;
    };

    /// Takes a connection off the live list when its serve() ends, however it ends.
    struct live_guard {
        live_guard(live_connections& live, live_connections::id_type id) : live_(live), id_(id) {}
        ~live_guard() { live_.remove(id_); }
        live_connections& live_;
        live_connections::id_type id_;
    };

    task<> serve(asio::ip::tcp::socket accepted, asio::io_context& context, bool over_limit) {
        connection_count_guard counted(*this);
        if (over_limit) {
            co_await respond_and_close(accepted, make_response(503, "text/plain", "Too many connections"));
            co_return;
        }
        // Shared with the handshake deadline's handler and the live list, which may still touch it
        // after the handshake returned (a moved-from socket is safe to cancel or close).
        auto socket = std::make_shared<asio::ip::tcp::socket>(std::move(accepted));
        const live_guard listed(live_, live_.add(context, socket));
        // The handshake's buffers are gone by the time the connection runs: an idle connection costs
        // only what it keeps.
        std::optional<upgraded> session = co_await handshake(socket, context);
        socket.reset();  // moved into the websocket, or done with; not kept for the connection's life
        if (!session) co_return;
        if (!live_.upgrade(listed.id_, session->connection) && !session->close_at_once)
            session->close_at_once = close_reason{static_cast<std::uint16_t>(close_code::going_away), "server shutting down"};
        co_await session->connection->run(std::move(session->close_at_once));
    }

    /// Reads the request under the size and time limits, routes and validates it, and answers 101, a
    /// page or an error. Returns the connection when upgraded.
    task<std::optional<upgraded>> handshake(std::shared_ptr<asio::ip::tcp::socket> socket_ptr, asio::io_context& context) {
        asio::ip::tcp::socket& socket = *socket_ptr;
        std::error_code ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);

        // A client gets handshake_timeout for its whole handshake, its request and our answer; then
        // its socket is closed. Closed, not cancelled: a cancel reaches only the operation pending at
        // that moment, so a read that had just completed (its bytes on their way to this coroutine)
        // would miss it, and the next read would wait on the client with no deadline left. On a closed
        // socket every later operation fails at once, whatever the client does. The timer lives until
        // this coroutine returns, and its destruction cancels it; had it fired just before, it closes
        // the moved-from socket of an upgraded connection, which does nothing.
        asio::steady_timer deadline(context);
        deadline.expires_after(options_.handshake_timeout);
        deadline.async_wait([socket_ptr](std::error_code ec) {
            if (!ec) {
                std::error_code ignore;
                socket_ptr->close(ignore);
            }
        });

        http::request_parser parser(options_.max_header_bytes);
        std::string buffer(std::min<std::size_t>(options_.max_header_bytes, 4096), '\0');
        std::string_view after_head;
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), detail::as_tuple_awaitable);
            if (ec) co_return std::nullopt;  // dropped or too slow: nothing to answer
            const std::string_view chunk(buffer.data(), n);
            const auto result = parser.put(chunk);
            if (result.status == http::parse_status::failed) {
                co_await respond_and_close(socket, make_error_response(parser.error()));
                co_return std::nullopt;
            }
            if (result.status == http::parse_status::complete) {
                after_head = chunk.substr(result.consumed);
                break;
            }
        }

        const http::request& request = parser.get();
        if (stopping_) {
            co_await respond_and_close(socket, make_response(503, "text/plain", "Server shutting down"));
            co_return std::nullopt;
        }
        if (!request.fields.has_token("Upgrade", "websocket")) {
            if (const auto page = pages_.find(request.path()); page != pages_.end()) {
                co_await respond_and_close(socket, answer_page(page->second, request));
                co_return std::nullopt;
            }
        }
        const auto route = routes_.find(request.path());
        if (route == routes_.end()) {
            co_await respond_and_close(socket, make_error_response(make_error_code(error::not_found)));
            co_return std::nullopt;
        }
        if (const auto ec = validate_upgrade_request(request); ec) {
            co_await respond_and_close(socket, make_error_response(ec));
            co_return std::nullopt;
        }
        const endpoint_state& endpoint = *route->second;
        auto query = query_params::parse(request.query_string());
        std::optional<std::string> rejection = endpoint.check_query(query);
        if (rejection && endpoint.options.invalid_query == invalid_query_policy::reject) {
            co_await respond_and_close(socket, make_response(400, "text/plain", *rejection));
            co_return std::nullopt;
        }
        const std::string accept = make_accept_response(*request.fields.get("Sec-WebSocket-Key"));
        auto [write_ec, written] = co_await asio::async_write(socket, asio::buffer(accept), detail::as_tuple_awaitable);
        if (write_ec) co_return std::nullopt;

        auto ws = std::make_shared<websocket>(std::move(socket), context, route->second, parser.release(),
                                              std::move(query), after_head);
        std::optional<close_reason> close_at_once;
        if (rejection) close_at_once = close_reason{static_cast<std::uint16_t>(close_code::policy_violation), std::move(*rejection)};
        co_return upgraded{std::move(ws), std::move(close_at_once)};
    }

    /// A page's answer: GET only (HEAD gets the head without the body); a handler that throws is a 500.
    std::string answer_page(const http::page_handler& page, const http::request& request) const {
        if (request.method != "GET" && request.method != "HEAD")
            return make_response(405, "text/plain; charset=utf-8", "Method Not Allowed", "Allow: GET, HEAD\r\n");
        http::response answer;
        try {
            answer = page(request);
        } catch (const std::exception& e) {
            log_line(log_level::error, "page " + std::string(request.path()) + " threw: " + e.what());
            return make_response(500, "text/plain; charset=utf-8", "Internal Server Error");
        }
        std::string out = make_response(answer.status, answer.content_type, answer.body);
        if (request.method == "HEAD") out.resize(out.size() - answer.body.size());
        return out;
    }

    /// Stop accepting; close every connection with 1001 and give them shutdown_timeout to finish
    /// their close handshakes; then drop what is left and give those a moment to wind down, so their
    /// coroutines end (and free the connection) while the loops still run.
    task<> shutdown() {
        std::error_code ignored;
        acceptor_->close(ignored);
        accept_pause_->cancel();
        live_.close_all();
        const auto polite_until = std::chrono::steady_clock::now() + options_.shutdown_timeout;
        while (active_.load() > 0)
            if (!co_await drained_->wait(polite_until)) break;
        if (active_.load() > 0) {
            live_.abort_all();
            const auto grace_until = std::chrono::steady_clock::now() + abort_grace;
            while (active_.load() > 0)
                if (!co_await drained_->wait(grace_until)) break;
            if (active_.load() > 0) log_line(log_level::warning, "shutdown: a handler did not return after its connection was dropped");
        }
        for (auto& w : workers_) w->context.stop();
    }

    /// How long dropped connections get to finish their coroutines (run on_close, return from the
    /// handler) at the end of a shutdown.
    static constexpr std::chrono::seconds abort_grace{1};

    route_table routes_;
    page_table pages_;
    server_options options_;
    std::shared_ptr<const logger> log_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
    std::unique_ptr<asio::steady_timer> accept_pause_;  // accept_loop's pause after a failed accept
    accept_backoff backoff_;                            // used by accept_loop only, on worker 0
    reserve_descriptor reserve_;                        // given back when descriptors run out
    std::unique_ptr<async_event> drained_;
    live_connections live_;
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> torn_down_{false};
    std::unique_ptr<asio::signal_set> signals_;
    std::uint16_t port_ = 0;
};

}  // namespace starling::detail
