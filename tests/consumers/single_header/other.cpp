// Second translation unit of the single-header consumer: it includes <starling.hpp> as well and
// instantiates much of what server.cpp does (handlers, tasks, sends, JSON, typed query parameters).
// /info?name=N greets with "hello N" (on_connect), then answers every text message with
// {"id": <connection id>, "name": N, "said": <the message>}.
#include <string>

#include <starling.hpp>

namespace consumer {

using name_param = starling::query<"name", std::string, "anonymous">;

void add_info_route(starling::app& app) {
    auto info = app.websocket("/info", [](starling::websocket& ws, name_param name) -> starling::task<> {
        for (;;) {
            const std::string said = co_await ws.receive_text();
            starling::json_object reply{{"id", ws.id()}, {"name", *name}, {"said", said}};
            co_await ws.send_json(std::move(reply));
        }
    });
    info.on_connect([](starling::websocket&, name_param name) { return "hello " + *name; });
}

}  // namespace consumer
