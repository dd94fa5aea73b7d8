// Plain HTTP answers on the WebSocket port: app.get("/", ...) serves a page (a browser client, a
// health check) next to the endpoints. One request per connection: the server answers, then closes.
#pragma once

#include <functional>  // std::function page handlers
#include <string>      // std::string content type and body

#include "starling/http/request.hpp"

namespace starling::http {

struct response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

/// Answers a GET on its path. Runs on a worker thread, synchronously: keep it quick.
using page_handler = std::function<response(const request&)>;

}  // namespace starling::http
