// Typed query parameters and dependency injection over the wire, for tests/integration/test_params_and_di.py.
#include <array>
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../../examples/cli.hpp"

namespace {

enum class level { low, high };

// What callbacks observed, reported by /stats.
struct observations {
    std::atomic<int> on_connect_calls{0};
    std::atomic<int> handler_calls{0};
    std::atomic<int> on_close_calls{0};
    std::atomic<int> on_close_saw_user{0};
};

struct greeting {
    std::string text;
};

}  // namespace

template <>
inline constexpr auto starling::enum_names<level> =
    std::array{std::pair{std::string_view("low"), level::low}, std::pair{std::string_view("high"), level::high}};

int main(int argc, char** argv) {
    starling::app app;
    auto seen = std::make_shared<observations>();
    app.inject_global(seen);
    app.inject(greeting{"hello"});

    // A required parameter; on_connect and the handler count their runs, so a test can see that a
    // rejected connection ran neither.
    auto required = app.websocket("/required",
        [](starling::websocket& ws, observations& seen, starling::query<"room", std::string> room) -> starling::task<> {
            ++seen.handler_calls;
            co_await ws.send_text("in " + *room);
            co_await ws.receive_text();
        });
    required.on_connect([](starling::websocket&, observations& seen) { ++seen.on_connect_calls; });

    // Every coercion, reported back as JSON.
    app.websocket("/typed",
        [](starling::websocket& ws, starling::query<"flag", bool, "false"> flag, starling::query<"level", level, "low"> lvl,
           starling::query<"limit", std::optional<int>> limit, starling::query<"tag", std::vector<std::string>> tags,
           starling::query<"ratio", double, "0.5"> ratio, starling::query<"small", std::int8_t, "0"> small) -> starling::task<> {
            starling::json_object report{{"flag", *flag}, {"level", *lvl == level::high ? "high" : "low"},
                                         {"limit", *limit}, {"tags", *tags}, {"ratio", *ratio}, {"small", static_cast<int>(*small)}};
            co_await ws.send_json(std::move(report));
            co_await ws.receive_text();
        });

    // Accept-then-close policy: the same message arrives as a 1008 close reason.
    starling::websocket_options close_policy;
    close_policy.invalid_query = starling::invalid_query_policy::close;
    app.websocket("/close_policy",
        [](starling::websocket& ws, starling::query<"page", int> page) -> starling::task<> {
            co_await ws.send_text("page " + std::to_string(*page));
            co_await ws.receive_text();
        }).options(close_policy);

    // Parameters in any order after the websocket, dependencies by type and by container, in the
    // handler, on_connect and on_close.
    auto callbacks = app.websocket("/callbacks",
        [](starling::websocket& ws, starling::router_dependencies& router, starling::query<"user", std::string> user,
           starling::global_dependencies& global) -> starling::task<> {
            ++global.get<observations>().handler_calls;
            co_await ws.send_text(router.get<greeting>().text + ", " + *user);
            co_await ws.receive_text();
        });
    callbacks.on_connect([](starling::query<"user", std::string> user, starling::websocket&, greeting& g) {
        return g.text + " from on_connect, " + *user;
    });
    callbacks.on_close([](starling::websocket&, std::shared_ptr<observations> seen, starling::query<"user", std::string> user) {
        ++seen->on_close_calls;
        if (*user == "gordon") ++seen->on_close_saw_user;
    });

    app.websocket("/stats", [](starling::websocket& ws, observations& seen) -> starling::task<> {
        for (;;) {
            co_await ws.receive_text();
            starling::json_object stats{{"on_connect", seen.on_connect_calls.load()},
                                        {"handler", seen.handler_calls.load()},
                                        {"on_close", seen.on_close_calls.load()},
                                        {"on_close_saw_user", seen.on_close_saw_user.load()}};
            co_await ws.send_json(std::move(stats));
        }
    });
    return example::serve(app, argc, argv);
}
