// starling::app: register endpoints and routers, inject dependencies, then start the server.
#pragma once

#include <algorithm>    // std::find of a transport already reloaded
#include <cstdint>      // std::uint16_t port
#include <exception>    // std::exception of a failed reload
#include <functional>   // std::function signal actions
#include <memory>       // std::shared_ptr, std::unique_ptr
#include <stdexcept>    // std::invalid_argument, std::logic_error for set-up mistakes
#include <string>       // std::string paths
#include <string_view>  // std::string_view prefixes
#include <utility>      // std::move
#include <vector>       // std::vector of ports and topic sizes

#include "starling/api/dependencies.hpp"
#include "starling/api/callbacks.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/endpoint.hpp"
#include "starling/http/path_template.hpp"
#include "starling/http/response.hpp"
#include "starling/logging.hpp"
#include "starling/options.hpp"
#include "starling/router.hpp"
#include "starling/runtime/backplane.hpp"
#include "starling/runtime/pubsub.hpp"
#include "starling/runtime/server.hpp"

namespace starling {

class app;
namespace detail {
std::unique_ptr<server> make_unlistened_server(app& a, const server_options& options);
/// The containers an app's endpoints resolve dependencies from, by route (for the test client's overrides).
route_table& routes_of(app& a) noexcept;
}  // namespace detail

/// What app.get(path, starling::metrics_page()) serves: app.metrics() in the Prometheus text format.
struct metrics_page_t {};
inline metrics_page_t metrics_page() noexcept { return {}; }

class app {
public:
    app() = default;
    app(const app&) = delete;
    app& operator=(const app&) = delete;
    ~app() { stop(); }

    /// Registers a coroutine endpoint. `handler` is a coroutine returning starling::task<> that takes
    /// starling::websocket& and, in any order, typed query parameters and dependencies. Returns the
    /// endpoint, for on_connect / on_close / options. Throws std::invalid_argument if the path is not
    /// absolute or already taken.
    template <class Handler>
    endpoint websocket(std::string path, Handler handler) {
        check_not_started("add endpoint " + path);
        auto state = root_->add_endpoint(std::move(path));
        detail::adapt_handler(std::move(handler), *state);
        add_route(state);
        return endpoint(state);
    }

    /// Answers plain HTTP GET (and HEAD) requests for `path` with `page`: a browser client, a health
    /// check. An upgrade request for the same path still goes to its WebSocket endpoint, if any.
    app& get(std::string path, http::response page) {
        return get(std::move(path), [page = std::move(page)](const http::request&) { return page; });
    }
    /// The same with a handler that builds the answer per request (on a worker thread; keep it quick).
    app& get(std::string path, http::page_handler handler) {
        check_not_started("add page " + path);
        if (path.empty() || path.front() != '/') throw std::invalid_argument("starling: a page path must start with '/': " + path);
        if (pages_.contains(path)) throw std::invalid_argument("starling: a page is already registered at " + path);
        pages_.emplace(std::move(path), std::move(handler));
        return *this;
    }

    /// Serves app.metrics() at `path`, in the Prometheus text exposition format (version 0.0.4).
    app& get(std::string path, metrics_page_t) {
        return get(std::move(path), [this](const http::request&) {
            return http::response{200, "text/plain; version=0.0.4; charset=utf-8", metrics().to_prometheus()};
        });
    }

    /// What the endpoints and the handshakes have counted so far, summed over the workers. Cheap
    /// enough to call often, from any thread.
    metrics_snapshot metrics() const {
        metrics_snapshot s;
        for (const auto& [path, state] : routes_) s.endpoints.push_back(state->metrics.snapshot(path));
        if (server_) server_->count_refusals(s);
        if (hub_->has_backplane()) s.backplane = hub_->stats();
        return s;
    }

    /// Serves `r`'s endpoints (and those of routers nested in it) under its prefix.
    app& include_router(const router& r) {
        check_not_started("include router " + r.prefix());
        include(*r.state(), "");
        return *this;
    }

    /// The app-wide container (declared by handlers as starling::global_dependencies&).
    template <class T>
    app& inject_global(T&& value) {
        globals_->add(std::forward<T>(value));
        return *this;
    }
    template <class T>
    app& inject_global(std::string name, T&& value) {
        globals_->add(std::move(name), std::forward<T>(value));
        return *this;
    }

    /// The app's own router container (starling::router_dependencies& in the app's endpoints).
    template <class T>
    app& inject(T&& value) {
        root_->dependencies->add(std::forward<T>(value));
        return *this;
    }
    template <class T>
    app& inject(std::string name, T&& value) {
        root_->dependencies->add(std::move(name), std::forward<T>(value));
        return *this;
    }

    global_dependencies& globals() noexcept { return *globals_; }
    router_dependencies& dependencies() noexcept { return *root_->dependencies; }

    /// Routes every log record to `sink` (stderr by default). Call before start().
    void set_log_sink(log_sink sink) { sink_ = std::move(sink); }
    /// Records below `least` are not passed on (default: info, so the sink sees info and above; the
    /// default stderr sink itself prints warnings and errors only).
    void set_log_level(log_level least) { least_level_ = least; }
    /// The plain form of set_log_sink: `log` gets each record's level and message line.
    void set_logger(logger log) {
        if (!log) return set_log_sink(nullptr);  // no logger: nothing is logged
        sink_ = [log = std::move(log)](const log_record& r) { log(r.level, r.message); };
    }

    /// Limits for every endpoint that does not set its own with endpoint.options().
    void set_websocket_options(const websocket_options& options) { default_options_ = options; }

    /// One more port to listen on besides server_options::port, with the same endpoints, pages,
    /// registry (a broadcast reaches the clients of every port), limits and shutdown. `how` is what it
    /// speaks: empty for plain ws://, starling::tls(tls_options) from <starling/tls.hpp> for wss://.
    /// Port 0 picks a free one (app.ports() reads it back). Call before listen().
    app& add_listener(std::uint16_t port, std::shared_ptr<starling::transport> how = {}) {
        check_not_started("add a listener");
        more_ports_.push_back(detail::port_spec{port, std::move(how)});
        return *this;
    }

    /// Runs `action` on a worker thread each time the process receives `signal` (SIGHUP, say) while
    /// the app serves; an exception it throws is logged. Call before listen() or start().
    app& on_signal(int signal, std::function<void()> action) {
        check_not_started("add a signal action");
        signal_actions_.emplace_back(signal, std::move(action));
        return *this;
    }

    /// Loads the certificate and key files of every TLS listener again, from any thread: connections
    /// accepted from now on use them, open ones keep theirs. When a listener's files cannot be loaded
    /// (missing, unreadable, or a key that does not match its certificate), it keeps serving with what
    /// it had, and this logs the reason and throws it (naming the file). Throws std::logic_error
    /// before listen() or when no listener uses TLS.
    void reload_tls() {
        if (!server_) throw std::logic_error("starling: app.reload_tls() needs app.listen() first");
        std::size_t reloaded = 0;
        std::vector<std::shared_ptr<starling::transport>> done;
        for (const auto& how : server_->transports()) {
            if (std::find(done.begin(), done.end(), how) != done.end()) continue;  // one transport, two ports
            done.push_back(how);
            try {
                if (how->reload()) ++reloaded;
            } catch (const std::exception& e) {
                log_->write(log_level::error, "tls_reload_failed", {}, {},
                            std::string("TLS reload failed, still serving the previous certificate: ") + e.what());
                throw;
            }
        }
        if (reloaded == 0) throw std::logic_error("starling: app.reload_tls() found no TLS listener");
        log_->write(log_level::info, "tls_reloaded", {}, {}, "TLS certificates reloaded");
    }

    /// Serves on `port` until SIGINT, SIGTERM or stop(): blocks.
    void start(std::uint16_t port) {
        server_options options;
        options.port = port;
        start(options);
    }
    void start(const server_options& options) {
        listen(options);
        run();
    }

    /// start() in two steps: listen() checks the set-up, binds (throwing if the address is taken) and
    /// returns the port, so a program can announce it; run() then serves until SIGINT, SIGTERM or stop().
    std::uint16_t listen(const server_options& options) {
        const std::uint16_t bound = make_server(options).listen();
        server_->stop_on_signals();
        return bound;
    }
    void run() {
        if (!server_) throw std::logic_error("starling: app.run() needs app.listen() first");
        server_->run(/*block=*/true);
    }

    /// Serves in background threads and returns the bound port at once (port 0 picks a free one).
    std::uint16_t start_in_background(const server_options& options) {
        const std::uint16_t bound = make_server(options).listen();
        server_->run(/*block=*/false);
        return bound;
    }
    std::uint16_t start_in_background(std::uint16_t port = 0) {
        server_options options;
        options.port = port;
        return start_in_background(options);
    }

    /// Graceful shutdown: closes every connection with 1001, waits for the close handshakes (up to
    /// server_options::shutdown_timeout), runs every on_close, and makes start() return.
    void stop() {
        if (server_) server_->stop();
        hub_->stop();  // after the connections' on_close, which may still publish
    }

    /// The port the server listens on (useful after starting on port 0): server_options::port.
    std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }
    /// Every port, as bound: server_options::port first, then those of add_listener() in order.
    std::vector<std::uint16_t> ports() const { return server_ ? server_->ports() : std::vector<std::uint16_t>{}; }

    // ---- Topics and the backplane (runtime/pubsub.hpp) ---------------------------------------------

    /// Sends a text message to every connection in `topic`, on every worker and, with a backplane, in
    /// every process. From any thread, also one that is not the server's: each worker with members
    /// gets one task. Returns the members reached in this process (counted as the publish was made).
    std::size_t publish(std::string_view topic, std::string_view text) {
        return hub_->publish(nullptr, topic, detail::make_shared_frame(opcode::text, text), opcode::text, text, nullptr);
    }
    std::size_t publish_bytes(std::string_view topic, std::string_view bytes) {
        return hub_->publish(nullptr, topic, detail::make_shared_frame(opcode::binary, bytes), opcode::binary, bytes,
                             nullptr);
    }

    /// Connections in `topic` in this process right now, from any thread: one lock and one lookup.
    std::size_t topic_size(std::string_view topic) const { return hub_->topics.size(topic); }
    /// Every topic with members in this process and how many, in no particular order.
    std::vector<topic_info> topics() const {
        std::vector<topic_info> out;
        for (auto& [name, size] : hub_->topics.sizes()) out.push_back({std::move(name), size});
        return out;
    }

    /// Before start(): publishes, broadcasts and send_to cross processes through `bus` (one app per
    /// backplane object). Its channels are named under `prefix`: apps sharing one Redis keep apart
    /// by using different prefixes.
    app& use_backplane(std::shared_ptr<backplane> bus, std::string prefix = "starling:") {
        check_not_started("set a backplane");
        hub_->use(std::move(bus), std::move(prefix));
        return *this;
    }
    /// The backplane's counters (all zero without one).
    backplane_stats backplane_status() const { return hub_->stats(); }

private:
    friend class WebSocket;

    /// An endpoint whose handlers the caller installs (the event API).
    std::shared_ptr<detail::endpoint_state> add_endpoint_state(std::string path) {
        check_not_started("add endpoint " + path);
        auto state = root_->add_endpoint(std::move(path));
        add_route(state);
        return state;
    }

    void check_not_started(const std::string& what) const {
        if (server_) throw std::logic_error("starling: cannot " + what + " after the app started");
    }

    void add_route(const std::shared_ptr<detail::endpoint_state>& state) {
        if (routes_.contains(state->path))
            throw std::invalid_argument("starling: an endpoint is already registered at " + state->path);
        routes_.emplace(state->path, state);
    }

    void include(const detail::router_state& r, std::string_view outer_prefix) {
        const std::string prefix = detail::join_paths(outer_prefix, r.prefix);
        for (const auto& [relative, state] : r.endpoints) {
            state->path = detail::join_paths(prefix, relative);
            add_route(state);
        }
        for (const auto& child : r.children) include(*child, prefix);
    }

    /// Fails with a message naming the route and the type when a handler or callback declares a
    /// dependency that no container holds.
    static void check_dependencies(const detail::endpoint_state& e) {
        const std::pair<const char*, const detail::signature_checks*> callables[] = {
            {"handler", &e.handler_checks}, {"on_connect", &e.on_connect_checks}, {"on_close", &e.on_close_checks},
            {"authentication hook", &e.hook_checks}};
        for (const auto& [role, checks] : callables) {
            for (const std::string_view name : checks->path_names)
                if (!http::path_template_has(e.path, name))
                    throw std::logic_error("starling: the " + std::string(role) + " of " + e.path + " declares starling::path<\"" +
                                           std::string(name) + "\">, which its path has no {" + std::string(name) + "} segment for");
            for (const auto& need : checks->dependencies) {
                if (e.router_deps->contains(need.type) || e.globals->contains(need.type)) continue;
                throw std::logic_error("starling: the " + std::string(role) + " of " + e.path +
                                       " needs a dependency of type '" + std::string(need.name) +
                                       "', which was not injected (app.inject_global, app.inject or router.inject)");
            }
        }
    }

    detail::server& make_server(const server_options& options) {
        check_not_started("start it again");
        prepare_routes();
        globals_->freeze();
        for (auto& [path, state] : routes_) state->router_deps->freeze();
        std::vector<detail::port_spec> ports{detail::port_spec{options.port, options.transport}};
        ports.insert(ports.end(), more_ports_.begin(), more_ports_.end());
        server_ = std::make_unique<detail::server>(routes_, pages_, options, log_, std::move(ports));
        for (const auto& [signal, action] : signal_actions_) server_->on_signal(signal, action);
        hub_->start();  // the backplane, if any, before the first connection
        return *server_;
    }

    /// Gives every endpoint what the app holds for it (the log, the containers, the default limits,
    /// the topics) and checks that its dependencies were injected. `in_process`: for a test client,
    /// which keeps the containers of one still alive (its dependency overrides) where it finds them.
    void prepare_routes(bool in_process = false) {
        log_ = std::make_shared<const detail::log_channel>(sink_, least_level_);
        for (auto& [path, state] : routes_) {
            state->log = log_;
            if (!in_process || !state->globals) state->globals = globals_;
            if (!state->options_set) state->options = default_options_;
            check_dependencies(*state);
            state->hub = hub_;
            if (state->across_processes) hub_->add_endpoint(state->path, state->registry);
        }
    }

    /// A server of this app's endpoints and pages that listens on no port and starts no thread: its
    /// one worker's loop is run by the caller (the test client of <starling/testing.hpp>). The app
    /// itself is not started by it: more endpoints, dependencies and servers may follow. No
    /// backplane is started and no signal handled.
    friend std::unique_ptr<detail::server> detail::make_unlistened_server(app& a, const server_options& options);
    friend detail::route_table& detail::routes_of(app& a) noexcept;

    std::shared_ptr<detail::router_state> root_ = std::make_shared<detail::router_state>();
    std::shared_ptr<global_dependencies> globals_ = std::make_shared<global_dependencies>();
    detail::route_table routes_;
    detail::page_table pages_;
    websocket_options default_options_;
    log_sink sink_ = [](const log_record& r) { log_to_stderr(r); };
    log_level least_level_ = log_level::info;
    std::shared_ptr<const detail::log_channel> log_;
    std::vector<detail::port_spec> more_ports_;
    std::vector<std::pair<int, std::function<void()>>> signal_actions_;
    std::unique_ptr<detail::server> server_;
    // Declared last: destroyed first, after ~app's stop() has unlinked it.
    std::shared_ptr<detail::pubsub> hub_ = std::make_shared<detail::pubsub>();
};

namespace detail {

inline std::unique_ptr<server> make_unlistened_server(app& a, const server_options& options) {
    a.check_not_started("serve it in process");
    a.prepare_routes(/*in_process=*/true);
    server_options one_worker = options;
    one_worker.workers = 1;
    return std::make_unique<server>(a.routes_, a.pages_, one_worker, a.log_, std::vector<port_spec>{});
}

inline route_table& routes_of(app& a) noexcept { return a.routes_; }

}  // namespace detail
}  // namespace starling
