// The event API running Robyn's own WebSocket test flow on /web_socket, per connection:
//   connect    -> "Hello world, from ws"
//   message 1  -> broadcast "This is a broadcast message", to self "This is a message to self",
//                 reply "Whaaat??"
//   message 2  -> "Whooo??"
//   message 3  -> broadcast query parameter `one`, to self query parameter `two`,
//                 reply "*chika* *chika* Slim Shady."
//   message 4  -> "Connection closed", then a close frame (1000)
//   build/examples/events --port N
#include <mutex>
#include <string>
#include <unordered_map>

#include "cli.hpp"

namespace {

// How many messages each connection has sent, by connection id. Handlers of different connections
// run on different worker threads, hence the lock.
class message_counts {
public:
    int next(const std::string& id) {
        std::lock_guard lock(mutex_);
        return ++counts_[id];
    }
    void forget(const std::string& id) {
        std::lock_guard lock(mutex_);
        counts_.erase(id);
    }

private:
    std::mutex mutex_;
    std::unordered_map<std::string, int> counts_;
};

}  // namespace

int main(int argc, char** argv) {
    starling::app app;
    app.inject_global(std::make_shared<message_counts>());

    starling::WebSocket websocket(app, "/web_socket");
    websocket.on("connect", [] { return "Hello world, from ws"; });
    websocket.on("message", [](starling::connector& ws, std::string_view, message_counts& counts) -> std::string {
        switch (counts.next(ws.id())) {
        case 1:
            ws.sync_broadcast("This is a broadcast message");
            ws.sync_send_to(ws.id(), "This is a message to self");
            return "Whaaat??";
        case 2:
            return "Whooo??";
        case 3:
            ws.sync_broadcast(ws.query_params().get("one", ""));
            ws.sync_send_to(ws.id(), ws.query_params().get("two", ""));
            return "*chika* *chika* Slim Shady.";
        default:
            ws.close();
            return "Connection closed";
        }
    });
    websocket.on("close", [](starling::connector& ws, message_counts& counts) { counts.forget(ws.id()); });
    return example::serve(app, argc, argv);
}
