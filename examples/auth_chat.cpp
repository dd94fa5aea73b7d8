// A chat that knows who is talking. The token is checked once, before the upgrade, by the endpoint's
// authentication hook; the user it finds is the connection's state, which the handler declares as a
// parameter. Every text message goes to everyone as "alice: text".
//   build/examples/auth_chat --port N
//   then ws://127.0.0.1:N/chat?token=secret-alice, or the header "Authorization: Bearer secret-bob"
// Any other token (or none) gets 401 before the upgrade. The endpoint speaks the subprotocol chat.v1:
// a client that offers it gets it, one that offers only others gets 400, one that offers none is
// served without. GET /metrics serves the counters (refusals included) for Prometheus.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <starling.hpp>

#include "cli.hpp"

namespace {

// [user]
struct user {
    std::string name;
};

/// The accounts, shared by every connection on every worker: read-only once the server runs.
class user_directory {
public:
    std::optional<user> find(std::string_view token) const {
        const auto it = tokens_.find(std::string(token));
        if (it == tokens_.end()) return std::nullopt;
        return user{it->second};
    }

private:
    std::map<std::string, std::string> tokens_{{"secret-alice", "alice"}, {"secret-bob", "bob"}};
};
// [user]

}  // namespace

int main(int argc, char** argv) {
    starling::app app;
    app.inject_global(user_directory{});

    // [auth_chat]
    auto chat = app.websocket("/chat", [](starling::websocket& ws, starling::state<user> me) -> starling::task<> {
        for (;;) {
            const std::string text = co_await ws.receive_text();
            co_await ws.broadcast(me->name + ": " + text);
        }
    });
    // The token comes in ?token= (what a browser can send) or in "Authorization: Bearer ..." (what
    // other clients send). One check, before the upgrade: a refusal is an HTTP answer, and neither
    // on_connect nor the handler runs for it.
    chat.authenticate([](const starling::handshake_request& request, starling::query<"token", std::optional<std::string>> token,
                         const user_directory& users) -> starling::admission<user> {
        const std::optional<std::string_view> presented = token->has_value() ? std::optional<std::string_view>(**token)
                                                                              : request.bearer_token();
        if (presented)
            if (std::optional<user> found = users.find(*presented)) return *found;
        return starling::refuse(401, "Unknown or missing token");
    });
    chat.subprotocols({"chat.v1"});
    // [auth_chat]

    app.get("/metrics", starling::metrics_page());
    return example::serve(app, argc, argv);
}
