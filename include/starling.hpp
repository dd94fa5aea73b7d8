// Starling: a header-only C++20 coroutine WebSocket framework. Include this one header.
#pragma once

#if __cplusplus < 202002L
#error "Starling needs C++20: compile with -std=c++20 (meson: default_options: ['cpp_std=c++20'])"
#endif

// The protocol core (sans-I/O).
#include "starling/protocol/close.hpp"
#include "starling/protocol/close_code.hpp"
#include "starling/protocol/error.hpp"
#include "starling/protocol/framer.hpp"
#include "starling/protocol/handshake.hpp"
#include "starling/http/request_parser.hpp"
#include "starling/protocol/message_reader.hpp"
#include "starling/protocol/query.hpp"
#include "starling/protocol/utf8.hpp"

// The server and the coroutine API.
#include "starling/app.hpp"
#include "starling/endpoint.hpp"
#include "starling/api/json.hpp"
#include "starling/api/run_concurrently.hpp"
#include "starling/api/websocket.hpp"
#include "starling/session/memory_stream.hpp"  // an in-memory stream, for driving a connection without a socket

// Typed query parameters, dependency injection, routers.
#include "starling/api/dependencies.hpp"
#include "starling/api/params.hpp"
#include "starling/api/query_coercion.hpp"
#include "starling/router.hpp"

// The event API.
#include "starling/api/connector.hpp"
#include "starling/event_websocket.hpp"

// The client.
#include "starling/client.hpp"
