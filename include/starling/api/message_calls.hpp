// What both ends of a WebSocket connection can do with it: receive, send and close, as coroutines,
// with the JSON forms. The server's `websocket` and the client's `client_websocket` both offer
// exactly these, from this one place; each adds what belongs to its side (broadcast and topics for
// the server, the chosen subprotocol and the URL for the client).
#pragma once

#include <chrono>       // std::chrono::steady_clock::duration timeouts
#include <cstdint>      // std::uint16_t close codes
#include <optional>     // std::optional receive-with-deadline results
#include <string>       // std::string payloads
#include <string_view>  // std::string_view close reasons

#include "starling/api/json.hpp"
#include "starling/protocol/close_code.hpp"
#include "starling/protocol/message.hpp"
#include "starling/session/connection_base.hpp"
#include "starling/task.hpp"

namespace starling::detail {

class message_calls {
public:
    /// True until the connection starts closing (either side).
    bool is_open() const noexcept { return connection_->is_open(); }

    // ---- Receiving --------------------------------------------------------------------------------
    // One receive at a time per connection. Messages the peer sent before it closed are still
    // delivered; after them, and at once when this side closed, receives throw websocket_disconnect.
    // (Plain functions handing back the connection's coroutine: no coroutine frame of their own.)

    /// The next message, text or binary.
    task<message> receive() { return connection_->receive(); }

    /// The next message, or nothing if `timeout` passes first (a receive with a timeout, as Robyn's
    /// guide writes with wait_for).
    task<std::optional<message>> receive_for(std::chrono::steady_clock::duration timeout) {
        return connection_->receive_for(timeout);
    }

    /// The next text message. A binary message here is a protocol mismatch: the connection closes with
    /// 1003 (unsupported data) and this throws websocket_disconnect.
    task<std::string> receive_text() { return connection_->receive_text(); }

    /// receive_text() with a deadline: nothing if `timeout` passes first.
    task<std::optional<std::string>> receive_text_for(std::chrono::steady_clock::duration timeout) {
        auto m = co_await connection_->receive_for(timeout);
        if (!m) co_return std::nullopt;
        co_return co_await connection_->expect_text(std::move(*m));
    }

    /// The next message's bytes, binary or text.
    task<std::string> receive_bytes() { co_return (co_await connection_->receive()).data; }

    /// The next text message parsed as JSON (simdjson). The document owns its data: it stays valid
    /// across later receives. Throws invalid_json for a message that is not JSON.
    task<json_document> receive_json() {
        const std::string text = co_await receive_text();
        co_return json_document::parse(json_parser_, text);
    }

    // ---- Sending ----------------------------------------------------------------------------------
    // Every send goes through this connection's one writer, so frames never interleave. A send
    // completes once the frame is queued; while the queue is above the high-water mark it waits for it
    // to drain. After the connection is gone for sending (our close frame queued, the peer gone),
    // sends throw websocket_disconnect.

    task<> send_text(std::string text) { return connection_->send_frame(opcode::text, std::move(text)); }
    task<> send_bytes(std::string bytes) { return connection_->send_frame(opcode::binary, std::move(bytes)); }

    /// Sends `value` as a JSON text message: strings, numbers, bools, nullptr, optionals, vectors,
    /// maps, raw_json, json_object, received json_documents. `value` is serialised at the call.
    template <class T>
    task<> send_json(const T& value) {
        return connection_->send_frame(opcode::text, to_json(value));
    }
    task<> send_json(json_object object) { return connection_->send_frame(opcode::text, std::move(object.text)); }

    // ---- JSON without braced lists (the logic is in api/json.hpp; this block only forwards) -------
    /// Sends the object of these keys and values: `co_await ws.send_json("type", "move", "x", 3)`.
    /// No braced list, so it compiles inside co_await with g++ 12 (see to_json_object).
    template <class Key, class Value, class... More>
    task<> send_json(const Key& key, const Value& value, const More&... more) {
        return connection_->send_frame(opcode::text, to_json_object(key, value, more...));
    }
    /// receive_json() with a deadline: nothing if `timeout` passes first.
    task<std::optional<json_document>> receive_json_for(std::chrono::steady_clock::duration timeout) {
        const std::optional<std::string> text = co_await receive_text_for(timeout);
        co_return json_document::parse_optional(json_parser_, text);
    }
    // ---- end of JSON without braced lists ----------------------------------------------------------

    /// Starts the close handshake: (on the server, on_close runs and its text is sent, then) a close
    /// frame with `code` and `reason`. Pending and later receives throw websocket_disconnect. Does
    /// nothing if already closing.
    task<> close(std::uint16_t code = 1000, std::string_view reason = {}) { return connection_->close(code, reason); }
    task<> close(close_code code, std::string_view reason = {}) {
        return connection_->close(static_cast<std::uint16_t>(code), reason);
    }

    // ---- The rest ---------------------------------------------------------------------------------

    /// The event loop this connection lives on; its coroutines must run there (a timer of the
    /// handler's is made on it).
    asio::io_context& context() const noexcept { return connection_->context(); }

    /// Bytes of memory the outbound queue holds (what max_queued_bytes limits): payloads plus a fixed
    /// overhead per frame.
    std::size_t queued_bytes() const noexcept { return connection_->queued_bytes(); }

    /// This connection's numbers: what it buffers, messages in and out, the last ping's round trip,
    /// its age.
    connection_stats stats() const { return connection_->stats(); }

protected:
    explicit message_calls(connection_base& connection) noexcept : connection_(&connection) {}
    message_calls(message_calls&&) noexcept = default;
    message_calls& operator=(message_calls&&) noexcept = default;
    ~message_calls() = default;

    /// The connection these calls reach, for what each side adds.
    connection_base& engine() const noexcept { return *connection_; }

private:
    connection_base* connection_;
    simdjson::dom::parser json_parser_;
};

}  // namespace starling::detail
