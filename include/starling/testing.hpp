// starling::testing: drive an app's endpoints from a test, in process, with no port and no thread.
//
//     starling::testing::test_client client(app);
//     client.run([&]() -> starling::task<> {
//         auto ws = co_await client.connect("/echo?room=a");
//         co_await ws.send_text("hello");
//         CHECK(co_await ws.receive_text() == "hello");
//     });
//
// The client makes the app's server without listening: one worker, whose event loop the test client
// runs on the test's own thread. Each connect() joins a fresh pair of in-memory streams
// (session/memory_stream.hpp) and runs the real handshake, typed parameters, the authentication
// hook, dependencies, on_connect / on_close, the framer and the limits, exactly as over TCP. What it
// hands back is the client's own client_websocket, so refusals and closes look as they do to a real
// client: connect_error with status() and body(), websocket_disconnect with the close code.
//
// Time: advance() moves the engine's clock (session/engine_clock.hpp) forward, so idle pings, the
// idle close, close timeouts and receive_for deadlines come due at once. The clock is the process's:
// advance() moves it for every loop of the process, and never back.
//
// Dependencies: override_dependency<T>(fake) makes the app's endpoints see `fake` wherever they would
// see their T, for as long as this client lives; the app's own containers are left as they were, and
// are the endpoints' again once the client is gone.
//
// Everything a test makes with the client (its client_websockets, coroutines it spawns on context())
// must be gone before the client is.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>                // asio::co_spawn the test body and each server side
#include <asio/detached.hpp>                // asio::detached
#include <asio/io_context.hpp>              // asio::io_context the client runs
#include <chrono>                           // std::chrono::steady_clock handshake deadline
#include <cstdint>                          // std::uint64_t stream ids
#include <exception>                        // std::exception_ptr of the test body
#include <functional>                       // std::function test body
#include <map>                              // std::map of open streams and copied containers
#include <memory>                           // std::shared_ptr, std::unique_ptr
#include <optional>                         // std::optional timer, made on the server's loop
#include <stdexcept>                        // std::logic_error, std::runtime_error
#include <string>                           // std::string targets and names
#include <string_view>                      // std::string_view targets
#include <typeindex>                        // std::type_index of an overridden dependency
#include <type_traits>                      // std::decay_t
#include <utility>                          // std::move
#include <vector>                           // std::vector of replaced containers

#include "starling/api/client_websocket.hpp"
#include "starling/api/dependencies.hpp"
#include "starling/app.hpp"
#include "starling/options.hpp"
#include "starling/protocol/websocket_url.hpp"
#include "starling/runtime/client_connection.hpp"
#include "starling/runtime/dial.hpp"
#include "starling/runtime/server.hpp"
#include "starling/session/engine_clock.hpp"
#include "starling/session/memory_stream.hpp"
#include "starling/task.hpp"

namespace starling::testing {

class test_client {
public:
    /// A server of `a`'s endpoints and pages with the default server_options, or with `options` (its
    /// handshake timeout, per-address cap...; the port, host and worker count do not apply). Checks
    /// the app's set-up as listen() would, throwing std::logic_error for a missing dependency.
    explicit test_client(app& a) : test_client(a, server_options{}) {}
    test_client(app& a, const server_options& options)
        : app_(a), server_(detail::make_unlistened_server(a, options)), nudge_(std::in_place, server_->worker_loop(0)) {}

    test_client(const test_client&) = delete;
    test_client& operator=(const test_client&) = delete;

    /// Shuts the server down as app.stop() would (every connection still open is closed with 1001,
    /// on_close runs), drops what does not finish, and gives the app its containers back.
    ~test_client() {
        server_->request_stop();  // closes every connection with 1001, then stops the loop
        run_ready();
        abort_open();
        run_ready();
        open_.clear();
        nudge_.reset();
        server_.reset();
        restore_containers();
    }

    /// The loop every connection of this client runs on. Coroutines of the test run here (run()).
    asio::io_context& context() noexcept { return server_->worker_loop(0); }

    // ---- Connecting ----------------------------------------------------------------------------------

    /// Opens a connection to `target` (a path with its query: "/rooms/ws?room=a") and returns once the
    /// handshake is done, as starling::connect does. A refused handshake throws connect_error with
    /// the status and body the server answered. Call it from a coroutine on context() (run()).
    task<client_websocket> connect(std::string_view target) { return open(std::string(target), client_options{}); }
    /// The same with headers, subprotocols and the connection's limits (`options.websocket`).
    task<client_websocket> connect(std::string_view target, const client_options& options) {
        return open(std::string(target), options);
    }

    // ---- Running -------------------------------------------------------------------------------------

    /// Runs the coroutine `body()` returns (a starling::task<>) to its end on context(), from a plain
    /// function such as a doctest TEST_CASE, and rethrows what it threw. Throws std::runtime_error
    /// when it would wait forever: it is suspended and nothing is left to run (a receive the server
    /// never answers, or a timeout the test did not advance() to). The client's connections are then
    /// dropped, so that the coroutine ends before this returns.
    template <class Body>
    void run(Body&& body) {
        if (running_) throw std::logic_error("starling::testing: run() inside run()");
        auto state = std::make_shared<run_state>();
        state->body = std::function<task<>()>(std::forward<Body>(body));
        struct running_guard {
            bool& running;
            ~running_guard() { running = false; }
        };
        running_ = true;
        const running_guard guard{running_};  // false again however the run ends
        asio::co_spawn(context(), run_body(state), [state](std::exception_ptr error) {
            state->done = true;
            state->error = error;
        });
        run_ready();
        const bool stuck = !state->done;
        if (stuck) {
            abort_open();
            run_ready();
        }
        if (stuck)
            throw std::runtime_error(
                "starling::testing: the test coroutine would wait forever: it is suspended and nothing is left "
                "to run (a receive nobody answers? advance() the clock for a timeout); its connections were dropped");
        if (state->error) std::rethrow_exception(state->error);
    }

    /// Runs everything that is ready on context() and returns when nothing is (no waiting, no threads).
    void run_ready() {
        asio::io_context& loop = context();
        for (;;) {
            if (loop.stopped()) loop.restart();
            if (loop.poll() == 0) break;
        }
    }

    // ---- Time ----------------------------------------------------------------------------------------

    /// Lets `by` pass on the engine's clock at once, then runs what came due: idle pings, the idle
    /// close, close timeouts, receive_for deadlines. Callable from the test's coroutine (inside run())
    /// as from plain code; it returns once nothing more is ready.
    void advance(detail::engine_clock::duration by) {
        detail::engine_clock::advance(by);
        // Asio reads the clock when its reactor looks at its timers, which on Linux it does when its
        // timerfd fires, armed for the earliest deadline in real time. A wait already due, earlier than
        // every other, makes it re-arm at once and so notice the deadlines the jump made due.
        nudge_->expires_at(detail::engine_clock::time_point{});
        nudge_->async_wait([](std::error_code) {});
        run_ready();
    }

    // ---- Dependencies --------------------------------------------------------------------------------

    /// From now on, while this client lives, every container of the app's endpoints that holds a T (the
    /// app's globals, a router's) holds `fake` instead; when none does, the app's globals get it.
    /// T is the type handlers declare (`database&`), and `fake` a T or a class derived from it, moved
    /// or copied in; or a std::shared_ptr to one, which the test may keep to look at the fake
    /// afterwards. Without T, the type of `fake` itself (or of what its shared_ptr points to). The
    /// app's own containers are not changed: its endpoints resolve from copies until the client goes.
    template <class T = void, class Fake>
    test_client& override_dependency(Fake&& fake) {
        using type = dependency_type<T, Fake>;
        const std::shared_ptr<type> shared = share<type>(std::forward<Fake>(fake));
        const std::type_index key(typeid(type));
        bool held = false;
        for_each_container([&](dependency_container& c) {
            if (!c.contains(key)) return;
            c.add(shared);
            held = true;
        });
        if (!held) own_globals().add(shared);
        return *this;
    }

    /// The same for the dependency named `name` (inject(name, value)), in every container that names it.
    template <class T = void, class Fake>
    test_client& override_dependency(const std::string& name, Fake&& fake) {
        using type = dependency_type<T, Fake>;
        const std::shared_ptr<type> shared = share<type>(std::forward<Fake>(fake));
        bool held = false;
        for_each_container([&](dependency_container& c) {
            if (!c.contains(std::string_view(name))) return;
            c.add(name, shared);
            held = true;
        });
        if (!held) own_globals().add(name, shared);
        return *this;
    }

private:
    struct run_state {
        std::function<task<>()> body;  // kept here: a lambda coroutine's captures live in the lambda
        bool done = false;
        std::exception_ptr error;
    };

    static task<> run_body(std::shared_ptr<run_state> state) { co_await state->body(); }

    /// connect() itself; its parameters are values of its own frame (see starling::connect).
    task<client_websocket> open(std::string target, client_options options) {
        if (target.empty() || target.front() != '/')
            throw connect_error("starling::testing: connect() takes a path, such as /chat?room=a: " + target);
        std::string url = "ws://testserver" + target;
        std::string why;
        const auto parsed = parse_websocket_url(url, why);
        if (!parsed) throw connect_error(why);
        detail::check_client_options(options);
        asio::io_context& loop = context();
        auto [server_end, client_end] = detail::memory_stream::make_pair(loop.get_executor());
        asio::co_spawn(loop, serve(std::move(server_end)), asio::detached);
        const auto deadline = std::chrono::steady_clock::now() + options.handshake_timeout;
        auto connection =
            std::make_shared<detail::client_connection<detail::memory_stream>>(std::move(client_end), loop, options.websocket);
        connection->begin_handshake(deadline);
        co_return detail::start_client(co_await detail::upgrade_client(std::move(connection), *parsed, options, deadline),
                                       std::move(url));
    }

    /// The server's side of one connection, listed while it runs so that it can be dropped.
    task<> serve(detail::memory_stream end) {
        const std::uint64_t id = next_stream_++;
        open_.emplace(id, end);  // the same stream: closing this copy closes it
        struct unlist {
            std::map<std::uint64_t, detail::memory_stream>& open;
            std::uint64_t id;
            ~unlist() { open.erase(id); }
        } listed{open_, id};
        co_await server_->serve_stream(std::move(end), context());
    }

    /// Closes the server's end of every connection still running: reads and writes on both ends fail,
    /// so the connections end (1006 for the client) and their coroutines finish.
    void abort_open() {
        for (auto& [id, stream] : open_) stream.close();
    }

    /// T, or when T is void what `Fake` is stored as (the object a shared_ptr points to).
    template <class T, class Fake>
    using dependency_type =
        std::conditional_t<std::is_void_v<T>, typename detail::shared_target<std::decay_t<Fake>>::type, T>;

    /// `fake` as a std::shared_ptr<T>: one object, put in every container that overrides it.
    template <class T, class Fake>
    static std::shared_ptr<T> share(Fake&& fake) {
        using D = std::decay_t<Fake>;
        if constexpr (detail::is_shared_ptr<D>::value) {
            return std::shared_ptr<T>(std::forward<Fake>(fake));
        } else {
            static_assert(std::is_same_v<T, D> || std::is_base_of_v<T, D>, "starling::testing: the fake must be a T or derive from it");
            return std::make_shared<D>(std::forward<Fake>(fake));
        }
    }

    /// Calls `f` with this client's copy of every container the app's endpoints resolve from, making
    /// the copies (and pointing the endpoints at them) the first time.
    template <class F>
    void for_each_container(F&& f) {
        f(own_globals());
        for (auto& [path, state] : detail::routes_of(app_)) {
            auto& copy = router_copies_[state->router_deps.get()];
            if (!copy) copy = std::make_shared<router_dependencies>(*state->router_deps);
            if (state->router_deps != copy) {
                replaced_.push_back({state, state->globals, state->router_deps});
                state->router_deps = copy;
            }
        }
        for (auto& [original, copy] : router_copies_) f(*copy);
    }

    global_dependencies& own_globals() {
        for (auto& [path, state] : detail::routes_of(app_)) {
            if (!globals_copy_) globals_copy_ = std::make_shared<global_dependencies>(*state->globals);
            if (state->globals != globals_copy_) {
                replaced_.push_back({state, state->globals, state->router_deps});
                state->globals = globals_copy_;
            }
        }
        if (!globals_copy_) globals_copy_ = std::make_shared<global_dependencies>();
        return *globals_copy_;
    }

    void restore_containers() noexcept {
        // In reverse: an endpoint replaced twice (globals, then its router's) gets its first originals.
        for (auto it = replaced_.rbegin(); it != replaced_.rend(); ++it) {
            it->state->globals = it->globals;
            it->state->router_deps = it->router_deps;
        }
    }

    struct replaced_containers {
        std::shared_ptr<detail::endpoint_state> state;
        std::shared_ptr<global_dependencies> globals;
        std::shared_ptr<router_dependencies> router_deps;
    };

    app& app_;
    std::vector<replaced_containers> replaced_;
    std::shared_ptr<global_dependencies> globals_copy_;
    std::map<const router_dependencies*, std::shared_ptr<router_dependencies>> router_copies_;
    std::map<std::uint64_t, detail::memory_stream> open_;  // declared before the server: outlives its loop
    std::uint64_t next_stream_ = 0;
    bool running_ = false;
    std::unique_ptr<detail::server> server_;
    std::optional<detail::engine_timer> nudge_;  // see advance()
};

}  // namespace starling::testing
