// The dependency-injection chat of Robyn's WebSockets guide, with small in-memory stand-ins for its
// services: a logger, a database and metrics as global dependencies; a cache and a token-checking auth
// service as the app's router dependencies. Clients connect with ?token=...; an unknown token is
// closed (1008).
//   build/examples/di_chat --port N      then ws://127.0.0.1:N/chat?token=batman
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

// Services are shared by every connection on every worker thread, so each guards its own state.
class chat_logger {
public:
    void info(const std::string& line) {
        std::lock_guard lock(mutex_);
        std::fprintf(stderr, "info: %s\n", line.c_str());
    }

private:
    std::mutex mutex_;
};

class message_database {
public:
    std::size_t save_message(const std::string& text, const std::string& sender) {
        std::lock_guard lock(mutex_);
        rows_.push_back(sender + ": " + text);
        return rows_.size();
    }

private:
    std::mutex mutex_;
    std::vector<std::string> rows_;
};

class metrics_collector {
public:
    void count(const char*) { ++events_; }

private:
    std::atomic<long> events_{0};
};

class chat_cache {
public:
    void invalidate(const std::string& key) {
        std::lock_guard lock(mutex_);
        invalidated_.insert(key);
    }

private:
    std::mutex mutex_;
    std::set<std::string> invalidated_;
};

class auth_service {
public:
    bool verify_websocket_token(std::optional<std::string_view> token) const {
        return token && (*token == "batman" || *token == "robin");
    }
};

}  // namespace

int main(int argc, char** argv) {
    starling::app app;
    // Services holding a mutex cannot be moved in; a shared_ptr is stored as the object it owns.
    app.inject_global("logger", std::make_shared<chat_logger>())
        .inject_global("database", std::make_shared<message_database>())
        .inject_global("metrics", std::make_shared<metrics_collector>());
    app.inject("cache", std::make_shared<chat_cache>()).inject("auth_service", auth_service{});

    auto chat = app.websocket("/chat", [](starling::websocket& ws, starling::global_dependencies& global,
                                          starling::router_dependencies& router) -> starling::task<> {
        auto& logger = global.get<chat_logger>("logger");
        auto& database = global.get<message_database>("database");
        auto& cache = router.get<chat_cache>("cache");
        logger.info("New chat connection: " + ws.id());
        for (;;) {
            const std::string message = co_await ws.receive_text();
            database.save_message(message, ws.id());
            cache.invalidate("chat_history_" + ws.id());
            co_await ws.broadcast("User " + ws.id() + ": " + message);
        }
    });

    // Dependencies can also be declared by type: here the metrics collector and the auth service.
    chat.on_connect([](starling::websocket& ws, metrics_collector& metrics, auth_service& auth,
                       starling::global_dependencies& global) -> starling::task<std::string> {
        if (!auth.verify_websocket_token(ws.query_params().get("token"))) {
            co_await ws.close(starling::close_code::policy_violation, "Unauthorized");
            co_return "Unauthorized";  // not sent: the connection is already closing
        }
        metrics.count("connect");
        global.get<chat_logger>("logger").info("Authenticated connection: " + ws.id());
        co_await ws.send_text("Welcome to the chat!");
        co_return "Connected";
    });
    return example::serve(app, argc, argv);
}
