// Every snippet of the event API in Robyn's WebSockets guide, one endpoint each. In C++ the
// "typed" and "untyped" variants of a snippet are the same program.
//   build/examples/event_snippets --port N
#include <string>

#include "cli.hpp"

int main(int argc, char** argv) {
    starling::app app;

    // The first snippet: a reply per event.
    starling::WebSocket basic(app, "/web_socket");
    basic.on("connect", [] { return "Connected to ws"; });
    basic.on("message", [] { return "Hello world, from ws"; });
    basic.on("close", [] { return "Goodbye world, from ws"; });  // sent when the server closes

    // sync_send_to: a message to this very connection, by its id; the empty reply sends nothing.
    starling::WebSocket sync_send(app, "/sync_send_to");
    sync_send.on("message", [](starling::connector& ws, std::string_view, starling::global_dependencies&) -> std::string {
        ws.sync_send_to(ws.id(), "This is a message to self");
        return "";
    });

    // async_send_to: the same from a coroutine handler.
    starling::WebSocket async_send(app, "/async_send_to");
    async_send.on("message", [](starling::connector& ws, std::string_view,
                                starling::global_dependencies&) -> starling::task<std::string> {
        co_await ws.async_send_to(ws.id(), "This is a message to self");
        co_return "";
    });

    // sync_broadcast / async_broadcast: to every client of the endpoint.
    starling::WebSocket sync_broadcast(app, "/sync_broadcast");
    sync_broadcast.on("message", [](starling::connector& ws, std::string_view) -> std::string {
        ws.sync_broadcast("This is a message to self");
        return "";
    });
    starling::WebSocket async_broadcast(app, "/async_broadcast");
    async_broadcast.on("message", [](starling::connector& ws, std::string_view) -> starling::task<std::string> {
        co_await ws.async_broadcast("This is a message to self");
        co_return "";
    });

    // Query parameters: /query?name=gordon&desg=commissioner is announced to everyone.
    starling::WebSocket query(app, "/query");
    query.on("message", [](starling::connector& ws, std::string_view) -> starling::task<std::string> {
        if (ws.query_params().get("name") == "gordon" && ws.query_params().get("desg") == "commissioner")
            ws.sync_broadcast("Gordon authorized to login!");
        co_return "";
    });

    // close(): "disconnect" gets its reply, then a close frame.
    starling::WebSocket closing(app, "/close");
    closing.on("message", [](starling::connector& ws, std::string_view msg) -> std::string {
        if (msg == "disconnect") {
            ws.close();
            return "Closing connection";
        }
        return "Message received";
    });

    return example::serve(app, argc, argv);
}
