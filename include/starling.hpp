// Starling: a header-only C++20 coroutine WebSocket framework. Include this one header.
#pragma once

#if __cplusplus < 202002L
#error "Starling needs C++20: compile with -std=c++20 (meson: default_options: ['cpp_std=c++20'])"
#endif

// The protocol core (sans-I/O).
#include "starling/close.hpp"
#include "starling/close_code.hpp"
#include "starling/error.hpp"
#include "starling/framer.hpp"
#include "starling/handshake.hpp"
#include "starling/http/request_parser.hpp"
#include "starling/message_reader.hpp"
#include "starling/query.hpp"
#include "starling/utf8.hpp"

// The server and the coroutine API.
#include "starling/app.hpp"
#include "starling/endpoint.hpp"
#include "starling/json.hpp"
#include "starling/websocket.hpp"

// Typed query parameters, dependency injection, routers.
#include "starling/dependencies.hpp"
#include "starling/params.hpp"
#include "starling/query_coercion.hpp"
#include "starling/router.hpp"

// The event API.
#include "starling/connector.hpp"
#include "starling/event_websocket.hpp"
