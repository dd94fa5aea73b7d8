// The `websocket` a handler receives: one upgraded connection. Its receive/send/broadcast/close are
// coroutines. Internally a connection runs on its worker's event loop as a reader coroutine (the only
// one that reads the socket; it answers pings and feeds an inbox), the user's handler coroutine, and
// a writer (the only one that writes: not a coroutine; at the end of each turn of the event loop it
// writes the outbound queue in gathered writes until the kernel refuses, and only then waits for the
// socket). One timer keeps every time limit of the connection (see "the deadline" below). How a
// connection begins and ends (greeting first, on_close exactly once, the close handshake within its
// timeout) lives in run().
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>        // asio::co_spawn for the handler and server-initiated closes
#include <asio/detached.hpp>        // asio::detached
#include <asio/post.hpp>            // asio::post: deliveries and abort() onto the connection's thread
#include <asio/io_context.hpp>      // asio::io_context, the worker's event loop
#include <asio/ip/tcp.hpp>          // asio::ip::tcp::socket
#include <asio/steady_timer.hpp>    // asio::steady_timer close and idle deadlines
#include <asio/use_awaitable.hpp>   // asio::use_awaitable
#include <algorithm>                // std::min of the deadlines, std::copy_n of the probe
#include <array>                    // std::array close payload
#include <chrono>                   // std::chrono deadlines
#include <cstdint>                  // std::uint16_t close codes
#include <exception>                // std::exception_ptr
#include <memory>                   // std::shared_ptr, std::enable_shared_from_this
#include <optional>                 // std::optional receive-with-deadline results
#include <span>                     // std::span: the gathered buffers, passed without copying
#include <string>                   // std::string payloads
#include <string_view>              // std::string_view views
#include <utility>                  // std::move
#include <vector>                   // std::vector gathered buffers, read buffer

#include "starling/api/recipients.hpp"
#include "starling/protocol/close.hpp"
#include "starling/protocol/close_code.hpp"
#include "starling/session/async_event.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/session/payload_pool.hpp"
#include "starling/session/ring.hpp"
#include "starling/session/uuid.hpp"
#include "starling/session/worker_buffers.hpp"
#include "starling/session/write_queue.hpp"
#include "starling/http/headers.hpp"
#include "starling/http/request.hpp"
#include "starling/api/json.hpp"
#include "starling/protocol/message.hpp"
#include "starling/protocol/message_reader.hpp"
#include "starling/protocol/query.hpp"
#include "starling/task.hpp"
#include "starling/protocol/websocket_disconnect.hpp"

namespace starling {

/// The peer's address.
struct client_address {
    std::string ip;
    std::uint16_t port = 0;
};

class websocket : public std::enable_shared_from_this<websocket> {
public:
    /// Made by the server after a successful handshake. `already_read` holds bytes the client sent
    /// right behind its request (its first frames), which the reader parses before reading more.
    websocket(asio::ip::tcp::socket socket, asio::io_context& context,
              std::shared_ptr<detail::endpoint_state> endpoint, http::request request,
              starling::query_params query, std::string_view already_read)
        : socket_(std::move(socket)),
          context_(context),
          endpoint_(std::move(endpoint)),
          id_(detail::make_uuid_v4()),
          path_(request.path()),
          query_(std::move(query)),
          headers_(std::move(request.fields)),
          worker_(asio::use_service<detail::worker_buffers>(static_cast<asio::execution_context&>(context))),
          reader_({role::server, endpoint_->options.max_message_size, endpoint_->options.max_frame_size}),
          inbox_ready_(context.get_executor()),
          inbox_space_(context.get_executor()),
          writer_finished_(context.get_executor()),
          on_close_finished_(context.get_executor()),
          handler_caught_up_(context.get_executor()),
          queue_drained_(context.get_executor()),
          deadline_(context.get_executor()) {
        std::error_code ec;
        const auto remote = socket_.remote_endpoint(ec);
        if (!ec) client_ = {remote.address().to_string(), remote.port()};
        // The writer writes synchronously until the kernel refuses, and waits only then.
        socket_.non_blocking(true, ec);
        carried_.assign(already_read.begin(), already_read.end());
    }

    websocket(const websocket&) = delete;
    websocket& operator=(const websocket&) = delete;

    // ---- Identity -------------------------------------------------------------------------------

    /// A random UUID v4, unique to this connection.
    const std::string& id() const noexcept { return id_; }
    /// The query string's parameters, percent-decoded.
    const starling::query_params& query_params() const noexcept { return query_; }
    /// The upgrade request's headers; names are case-insensitive.
    const http::headers& headers() const noexcept { return headers_; }
    /// The peer's IP address and port.
    const client_address& client() const noexcept { return client_; }
    /// The request path, without the query string.
    std::string_view path() const noexcept { return path_; }
    /// True until the connection starts closing (either side).
    bool is_open() const noexcept { return phase_ == phase::open; }

    // ---- Receiving --------------------------------------------------------------------------------
    // One receive at a time per connection. Messages the client sent before it closed are still
    // delivered; after them, and at once when the server closed, receives throw websocket_disconnect.

    /// The next message, text or binary.
    task<message> receive() {
        caught_up();
        for (;;) {
            if (auto m = pop_inbox()) co_return std::move(*m);
            co_await inbox_ready_.wait();
        }
    }

    /// The next message, or nothing if `timeout` passes first (a receive with a timeout, as Robyn's guide writes with wait_for).
    task<std::optional<message>> receive_for(std::chrono::steady_clock::duration timeout) {
        caught_up();
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto m = pop_inbox()) co_return std::move(*m);
            if (!co_await inbox_ready_.wait(deadline)) {
                if (auto m = pop_inbox()) co_return std::move(*m);
                co_return std::nullopt;
            }
        }
    }

    /// The next text message. A binary message here is a protocol mismatch: the connection closes with
    /// 1003 (unsupported data) and this throws websocket_disconnect.
    task<std::string> receive_text() { co_return co_await expect_text(co_await receive()); }

    /// receive_text() with a deadline: nothing if `timeout` passes first.
    task<std::optional<std::string>> receive_text_for(std::chrono::steady_clock::duration timeout) {
        auto m = co_await receive_for(timeout);
        if (!m) co_return std::nullopt;
        co_return co_await expect_text(std::move(*m));
    }

    /// The next message's bytes, binary or text.
    task<std::string> receive_bytes() { co_return (co_await receive()).data; }

    /// The next text message parsed as JSON (simdjson). The document owns its data: it stays valid
    /// across later receives. Throws invalid_json for a message that is not JSON.
    task<json_document> receive_json() {
        const std::string text = co_await receive_text();
        co_return json_document::parse(json_parser_, text);
    }

    // ---- Sending ----------------------------------------------------------------------------------
    // Every send goes through this connection's one writer, so frames never interleave. A send
    // completes once the frame is queued; while the queue is above the high-water mark it waits for it
    // to drain. After the close frame has gone out, sends throw websocket_disconnect.

    // Plain functions handing back send_frame's coroutine, not coroutines of their own: one coroutine
    // frame per send instead of two.
    task<> send_text(std::string text) { return send_frame(opcode::text, std::move(text)); }
    task<> send_bytes(std::string bytes) { return send_frame(opcode::binary, std::move(bytes)); }

    /// Sends `value` as a JSON text message: strings, numbers, bools, nullptr, optionals, vectors,
    /// maps, raw_json, json_object, received json_documents. `value` is serialised at the call.
    template <class T>
    task<> send_json(const T& value) {
        return send_frame(opcode::text, to_json(value));
    }
    task<> send_json(json_object object) { return send_frame(opcode::text, std::move(object.text)); }

    // ---- JSON without braced lists (the logic is in api/json.hpp; this block only forwards) -------
    /// Sends the object of these keys and values: `co_await ws.send_json("type", "move", "x", 3)`.
    /// No braced list, so it compiles inside co_await with g++ 12 (see to_json_object).
    template <class Key, class Value, class... More>
    task<> send_json(const Key& key, const Value& value, const More&... more) {
        return send_frame(opcode::text, to_json_object(key, value, more...));
    }
    /// receive_json() with a deadline: nothing if `timeout` passes first.
    task<std::optional<json_document>> receive_json_for(std::chrono::steady_clock::duration timeout) {
        const std::optional<std::string> text = co_await receive_text_for(timeout);
        co_return json_document::parse_optional(json_parser_, text);
    }
    // ---- end of JSON without braced lists ----------------------------------------------------------

    /// Sends a text message to every open connection of this endpoint (this one included, unless
    /// `who` is recipients::others). The frame is encoded once and shared by all receivers.
    task<> broadcast(std::string_view text, recipients who = recipients::everyone) {
        queue_broadcast(text, who);
        co_return;
    }
    task<> broadcast_bytes(std::string_view bytes, recipients who = recipients::everyone) {
        fan_out(detail::make_shared_frame(opcode::binary, bytes), who);
        co_return;
    }

    /// Sends a text message to the connection of this endpoint with that id. False if there is none.
    task<bool> send_to(std::string_view connection_id, std::string_view text) { co_return queue_to(connection_id, text); }

    /// The queueing under broadcast() and send_to(), without suspending (the event API's sync_* calls).
    void queue_broadcast(std::string_view text, recipients who = recipients::everyone) {
        fan_out(detail::make_shared_frame(opcode::text, text), who);
    }
    bool queue_to(std::string_view connection_id, std::string_view text) {
        if (connection_id == id_) {  // also before this connection joins the registry (in on_connect)
            if (!can_send()) return false;
            enqueue(detail::outbound_frame::unicast(opcode::text, std::string(text)));
            return true;
        }
        auto target = endpoint_->registry.find(connection_id);
        if (!target) return false;
        target->deliver_text(std::string(text));
        return true;
    }

    /// Starts the close handshake: on_close runs (its text is sent), then a close frame with `code` and
    /// `reason`. Pending and later receives throw websocket_disconnect. Does nothing if already closing.
    task<> close(std::uint16_t code = 1000, std::string_view reason = {}) {
        if (phase_ != phase::open) co_return;
        begin_closing(code, reason);
        co_await run_on_close(/*server_closing=*/true);
        queue_close_frame(code, reason);
        arm_deadline();
    }
    task<> close(close_code code, std::string_view reason = {}) {
        co_await close(static_cast<std::uint16_t>(code), reason);
    }

    // ---- Used by the server -----------------------------------------------------------------------

    /// Runs the connection from just after the handshake to its end, and returns when it is over:
    /// the socket closed, on_close run, the connection out of the registry.
    /// With `close_at_once`, the connection is closed at once with that code and reason; no callback
    /// runs and it never joins the registry (typed query parameters that did not resolve: 1008; the
    /// server began shutting down during the handshake: 1001).
    task<> run(std::optional<close_reason> close_at_once = std::nullopt) {
        auto self = shared_from_this();
        if (close_at_once) {
            on_close_state_ = callback_state::done;
            co_await close(close_at_once->code, close_at_once->reason);
        } else {
            asio::co_spawn(context_, handler_loop(self), asio::detached);
            update_deadline();  // the idle check
        }
        co_await read_loop();
        if (phase_ == phase::open) begin_closing(static_cast<std::uint16_t>(close_code::abnormal), {}, false);
        inbox_ready_.notify();
        co_await run_on_close(/*server_closing=*/false);
        // Let the writer send what is queued (our close frame among it), within the close timeout.
        stop_writer_ = true;
        flush();
        arm_deadline();
        while (!writer_done_)
            if (!co_await writer_finished_.wait(close_deadline_)) break;
        co_await linger_and_close();
        finished_ = true;
        deadline_.cancel();  // the connection is over: nothing it checks for may keep it alive
        if (registered_) endpoint_->registry.remove(context_, id_, *this);
    }

    /// Drops the connection at once, from any thread: TCP closed without a close handshake, pending
    /// receives and sends woken, on_close run with 1006. What graceful shutdown does to connections
    /// still open at its deadline, so that every coroutine of theirs ends before the loops stop.
    void abort() {
        asio::post(context_, [self = shared_from_this()] {
            if (self->phase_ == phase::open) self->begin_closing(static_cast<std::uint16_t>(close_code::abnormal), {}, false);
            self->write_failed_ = true;  // nothing more is queued; the writer's aborted write clears the queue
            std::error_code ignored;
            self->socket_.close(ignored);
            self->finished_ = true;
            self->deadline_.cancel();
            self->flush();  // an idle writer finishes at once; a waiting one sees its wait aborted
            self->queue_drained_.notify_all();
            self->handler_caught_up_.notify();
        });
    }

    /// Queues a text message another connection sent to this one (send_to), from any thread: hops to
    /// this connection's thread first. A unicast frame, encoded here, but under the same
    /// slow_consumer policy as a broadcast, since the sender cannot wait for this client.
    void deliver_text(std::string text) {
        if (context_.get_executor().running_in_this_thread()) {
            receive_from_another(detail::outbound_frame::unicast(opcode::text, std::move(text)));
            return;
        }
        asio::post(context_, [self = shared_from_this(), text = std::move(text)]() mutable {
            self->receive_from_another(detail::outbound_frame::unicast(opcode::text, std::move(text)));
        });
    }

    /// Asks for a close (1000) once the current reply is sent: the event API's connector::close(),
    /// where a handler closes and still returns its reply ("Closing connection").
    void request_close_after_reply() noexcept { close_requested_ = true; }
    bool close_requested() const noexcept { return close_requested_; }

    /// The endpoint this connection belongs to.
    const detail::endpoint_state& endpoint() const noexcept { return *endpoint_; }

    /// The event loop this connection lives on; its coroutines must run there.
    asio::io_context& context() const noexcept { return context_; }

    /// Bytes of memory the outbound queue holds (what max_queued_bytes limits): payloads plus a fixed
    /// overhead per frame.
    std::size_t queued_bytes() const noexcept { return queue_.memory(); }

private:
    friend class detail::connection_registry<websocket>;  // receive_broadcast, registry_slot
    std::size_t& registry_slot() noexcept { return registry_slot_; }

    enum class phase { open, closing };
    enum class callback_state { not_run, running, done };

    // ---- inbox ----

    std::optional<message> pop_inbox() {
        if (!inbox_.empty()) {
            message m = std::move(inbox_.front());
            inbox_.pop_front();
            inbox_bytes_ -= inbox_cost(m);
            inbox_space_.notify();
            processing_message_ = true;
            return m;
        }
        if (phase_ != phase::open) throw websocket_disconnect(close_code_, close_reason_);
        return std::nullopt;
    }

    task<std::string> expect_text(message m) {
        if (m.is_text()) co_return std::move(m.data);
        co_await close(close_code::unsupported_data, "expected a text message");
        throw websocket_disconnect(close_code_, close_reason_);
    }

    // ---- keeping replies in order with the close ----

    /// The handler asks for its next message, or has finished: whatever it had to say about the
    /// previous one is queued.
    void caught_up() {
        processing_message_ = false;
        handler_caught_up_.notify();
    }

    /// Before the server answers a peer's close frame or fails the connection, the handler gets to
    /// handle the messages that arrived before it (an echo server echoes them, as the Autobahn
    /// testsuite expects), within the close timeout.
    task<> let_handler_catch_up() {
        const auto give_up = std::chrono::steady_clock::now() + endpoint_->options.close_timeout;
        while (handler_running_ && (!inbox_.empty() || processing_message_))
            if (!co_await handler_caught_up_.wait(give_up)) break;
    }

    // ---- closing ----

    /// Marks the connection closing and wakes a waiting receive. Messages already received stay
    /// deliverable when the peer ended the connection; when the server closes, they are dropped.
    void begin_closing(std::uint16_t code, std::string_view reason, bool server_closing = true) {
        phase_ = phase::closing;
        close_code_ = code;
        close_reason_ = std::string(reason);
        if (server_closing) {
            inbox_.clear();
            inbox_bytes_ = 0;
        }
        inbox_ready_.notify();
        inbox_space_.notify();
        queue_drained_.notify_all();
    }

    void queue_close_frame(std::uint16_t code, std::string_view reason) {
        if (close_sent_) return;
        std::array<char, max_control_payload> payload{};
        const std::size_t n = write_close_payload(code, reason, payload);
        enqueue(detail::outbound_frame::unicast(opcode::close, std::string(payload.data(), n)));
        close_sent_ = true;
    }

    /// on_close runs exactly once, whichever path ends the connection first; a second caller waits for
    /// the first. Its text is sent only when the server is the closing side and has not sent its
    /// close frame yet.
    task<> run_on_close(bool server_closing) {
        if (on_close_state_ == callback_state::done) co_return;
        if (on_close_state_ == callback_state::running) {
            while (on_close_state_ != callback_state::done) co_await on_close_finished_.wait();
            co_return;
        }
        on_close_state_ = callback_state::running;
        if (endpoint_->on_close) {
            try {
                auto text = co_await endpoint_->on_close(*this);
                if (text && server_closing && !close_sent_) enqueue(detail::outbound_frame::unicast(opcode::text, std::move(*text)));
            } catch (const std::exception& e) {
                endpoint_->log_line(log_level::error, "on_close for " + endpoint_->path + " threw: " + e.what());
            }
        }
        on_close_state_ = callback_state::done;
        on_close_finished_.notify();
    }

    /// Starts the close timeout, once: the whole closing (waiting for the peer's close frame, flushing
    /// our queue, waiting for TCP's end) shares one deadline, after which the socket is closed under
    /// whatever still uses it, however much the peer keeps sending.
    void arm_deadline() {
        if (close_deadline_ != no_deadline) return;
        close_deadline_ = std::chrono::steady_clock::now() + endpoint_->options.close_timeout;
        update_deadline();
    }

    /// Closes TCP politely: stop sending, read (and discard) until the peer closes or the close
    /// timeout passes, then close. Closing with unread input would reset the connection and could
    /// destroy our close frame before the peer reads it.
    task<> linger_and_close() {
        std::error_code ec;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
        if (!ec && std::chrono::steady_clock::now() < close_deadline_) {
            char sink[512];
            for (;;) {
                auto [read_ec, n] = co_await socket_.async_read_some(asio::buffer(sink), detail::as_tuple_awaitable);
                if (read_ec) break;
            }
        }
        deadline_.cancel();
        socket_.close(ec);
    }

    // ---- the deadline ----
    // One timer per connection serves every time limit: the close timeout, idle pings and the idle
    // close, the write-stall timeout and the message timeout. It is armed for the earliest of them;
    // when it fires it checks them all against the clock and re-arms for the next. Moving a time
    // forward (more input arrived) costs nothing: the timer fires at the old time and finds nothing
    // due yet.

    /// The earliest time something must be checked, or no_deadline.
    std::chrono::steady_clock::time_point next_check() const noexcept {
        const websocket_options& o = endpoint_->options;
        auto due = close_deadline_;
        if (phase_ == phase::open) {
            if (o.idle_timeout.count() > 0)
                due = std::min(due, (ping_outstanding_ ? ping_sent_at_ : last_input_) + o.idle_timeout);
            if (o.write_timeout.count() > 0 && awaiting_writable_) due = std::min(due, stall_since_ + o.write_timeout);
            if (o.message_timeout.count() > 0 && message_started_ != no_deadline)
                due = std::min(due, message_started_ + o.message_timeout);
        }
        return due;
    }

    /// Arms the timer for next_check() if that is earlier than what it is armed for.
    void update_deadline() {
        if (finished_) return;
        const auto due = next_check();
        if (due >= armed_for_) return;
        armed_for_ = due;
        deadline_.expires_at(due);  // replaces a later wait, whose handler sees operation_aborted
        deadline_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec) return;
            self->armed_for_ = no_deadline;
            self->check_deadlines();
            self->update_deadline();
        });
    }

    void check_deadlines() {
        if (finished_) return;
        const auto now = std::chrono::steady_clock::now();
        if (now >= close_deadline_) {
            // Closing took too long: the socket goes, and with it every read and write still using it.
            std::error_code ignored;
            socket_.close(ignored);
            return;
        }
        if (phase_ != phase::open) return;
        const websocket_options& o = endpoint_->options;
        if (o.write_timeout.count() > 0 && awaiting_writable_ && now - stall_since_ >= o.write_timeout) {
            // The client stopped reading: what it has not begun to receive is dropped, so the close
            // frame is next in line and the memory is released now.
            queue_.drop_unsent();
            return close_soon(close_code::policy_violation, "write timeout: the client stopped reading");
        }
        if (o.message_timeout.count() > 0 && message_started_ != no_deadline && now - message_started_ >= o.message_timeout)
            return close_soon(close_code::policy_violation, "message timeout: a message did not arrive whole in time");
        if (o.idle_timeout.count() > 0) check_idle(now, o.idle_timeout);
    }

    /// A connection silent for idle_timeout is pinged; one still silent idle_timeout after the ping is
    /// closed with 1001. While the reader is paused (the handler is behind and the inbox full),
    /// silence is ours, not the peer's: it does not count.
    void check_idle(std::chrono::steady_clock::time_point now, std::chrono::steady_clock::duration idle) {
        if (reader_paused_) last_input_ = now;
        if (ping_outstanding_) {
            if (last_input_ > ping_sent_at_) {
                ping_outstanding_ = false;
            } else if (now - ping_sent_at_ >= idle) {
                return close_soon(close_code::going_away, "idle timeout");
            } else {
                return;
            }
        }
        if (now - last_input_ >= idle) {
            enqueue(detail::outbound_frame::unicast(opcode::ping, std::string()));
            ping_outstanding_ = true;
            ping_sent_at_ = now;
        }
    }

    /// Starts a close from a timer or a delivery, which cannot wait for it themselves.
    void close_soon(close_code code, std::string_view reason) {
        asio::co_spawn(context_, close_from_server(shared_from_this(), code, std::string(reason)), asio::detached);
    }

    /// close() started by the server itself (idle timeout, slow consumer), keeping the connection
    /// alive until it is done.
    static task<> close_from_server(std::shared_ptr<websocket> self, close_code code, std::string reason) {
        co_await self->close(code, reason);
    }

    // ---- reading ----
    // The reader waits for input with a read into probe_, a few hundred bytes of its own: a small
    // message arrives whole in it, at the cost of one system call, as with any buffer. When the probe
    // fills, the rest is read at once into the worker's shared buffer (detail/worker_buffers.hpp)
    // behind a copy of the probe. (Waiting with async_wait instead would cost an epoll_ctl per wait.)
    // Whatever was read is parsed before the reader next suspends. Only two things make it suspend
    // with bytes unparsed: a full inbox (bytes in the shared buffer move to carried_, this
    // connection's own, until the handler makes room) and the end of the connection (the rest no
    // longer matters). A large frame's payload is read straight into the message instead, in reads
    // that grow with what has arrived.

    task<> read_loop() {
        std::span<char> input(carried_.data(), carried_.size());  // first, the bytes behind the handshake
        bool input_is_shared = false;  // in the worker's buffer, which others reuse while we wait
        bool more_waiting = false;     // the last read filled its buffer: the socket may hold more now
        std::optional<read_result> direct;  // the outcome of a direct read, handled as read()'s are
        unsigned reads_in_a_row = 0;
        for (;;) {
            while (direct || !input.empty()) {
                read_result r{read_status::need_more, 0};
                if (direct) {
                    r = *direct;
                    direct.reset();
                } else {
                    r = reader_.read(input);
                    input = input.subspan(r.consumed);
                }
                switch (r.status) {
                case read_status::need_more: break;
                case read_status::message:
                    message_started_ = no_deadline;
                    if (phase_ != phase::open) break;  // closing: data is no longer delivered
                    {
                        message m;
                        m.type = reader_.message_type() == opcode::binary ? message_type::binary : message_type::text;
                        // A message in place is copied into a pooled string that fits it; a reassembled
                        // one hands over the reader's buffer, and the reader gets a small one back.
                        m.data = worker_.payloads().take(reader_.payload_assembled() ? 0 : reader_.payload().size());
                        reader_.take_payload(m.data);
                        // Between messages the reader keeps no large buffer: it goes back to the
                        // loop's spares, for the next large message of any of its connections.
                        if (reader_.assembly_capacity() > kept_assembly)
                            worker_.payloads().give(reader_.release_assembly());
                        inbox_bytes_ += inbox_cost(m);
                        inbox_.push_back(std::move(m));
                        inbox_ready_.notify();
                    }
                    if (phase_ == phase::open && inbox_full()) {
                        // Other connections of this worker read into the shared buffer while this one
                        // waits: what is left of the input must be this connection's own.
                        if (input_is_shared) {
                            carried_.assign(input.data(), input.size());
                            input = std::span<char>(carried_.data(), carried_.size());
                            input_is_shared = false;
                        }
                        reader_paused_ = true;
                        while (phase_ == phase::open && inbox_full()) co_await inbox_space_.wait();
                        reader_paused_ = false;
                        last_input_ = std::chrono::steady_clock::now();
                    }
                    break;
                case read_status::ping:
                    if (!close_sent_) {
                        queue_.push_pong(reader_.payload());
                        schedule_flush();
                    }
                    break;
                case read_status::pong: break;  // unsolicited pongs are ignored; any input counts as life
                case read_status::close: {
                    if (phase_ == phase::open) co_await let_handler_catch_up();
                    const close_reason& peer = reader_.close_frame();
                    if (phase_ == phase::open) {
                        // The peer closes: echo its code and end.
                        begin_closing(peer.code, peer.reason, false);
                        queue_close_frame(peer.code == static_cast<std::uint16_t>(close_code::no_status)
                                              ? static_cast<std::uint16_t>(close_code::normal)
                                              : peer.code,
                                          {});
                    }
                    co_return;
                }
                case read_status::failed: {
                    // Fail the connection (RFC 6455 7.1.7): close frame with the matching code, no
                    // waiting for the peer's answer.
                    if (phase_ == phase::open) co_await let_handler_catch_up();
                    const auto ec = reader_.error();
                    const auto code = close_code_for(static_cast<error>(ec.value()));
                    co_await close(static_cast<std::uint16_t>(code), ec.message());
                    co_return;
                }
                }
                if (r.status == read_status::need_more) break;
            }
            if (carried_.capacity() > sizeof(std::string)) std::string().swap(carried_);  // parsed: the storage goes
            if (reader_.in_message() && message_started_ == no_deadline) {
                // A message has begun and not ended with this read: from now on it has message_timeout.
                message_started_ = std::chrono::steady_clock::now();
                update_deadline();
            }
            // The rest of a large frame goes straight into the message.
            if (reader_.data_payload_remaining() >= direct_read_threshold) {
                // A spare buffer of this loop big enough for the whole frame, if there is one: memory
                // already resident, so lending it commits nothing new. Without one, the message's
                // storage grows with what arrives (message_reader::direct_buffer).
                const std::size_t whole = reader_.message_bytes_buffered() + static_cast<std::size_t>(reader_.data_payload_remaining());
                if (reader_.assembly_capacity() < whole) reader_.adopt_assembly(worker_.payloads().take(whole));
                const std::span<char> into = reader_.direct_buffer(direct_read_size);
                auto [ec, n] = co_await socket_.async_read_some(asio::buffer(into.data(), into.size()),
                                                                detail::as_tuple_awaitable);
                if (ec) co_return;
                last_input_ = std::chrono::steady_clock::now();
                direct = reader_.commit_direct(n);
                continue;
            }
            if (more_waiting) {
                if (++reads_in_a_row > reads_before_yield) {
                    // A peer that always has more to send must not keep this worker's other
                    // connections and timers waiting.
                    reads_in_a_row = 0;
                    co_await asio::post(context_, asio::use_awaitable);
                }
                const std::span<char> buffer = worker_.read_buffer();
                std::error_code ec;
                const std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
                if (!ec) {
                    last_input_ = std::chrono::steady_clock::now();
                    input = buffer.first(n);
                    input_is_shared = true;
                    more_waiting = n == buffer.size();
                    continue;
                }
                if (ec != asio::error::would_block && ec != asio::error::try_again) co_return;
            }
            reads_in_a_row = 0;
            auto [ec, n] = co_await socket_.async_read_some(asio::buffer(probe_), detail::as_tuple_awaitable);
            if (ec) co_return;  // dropped, reset, or the close deadline closed the socket
            last_input_ = std::chrono::steady_clock::now();
            if (n < probe_.size()) {
                input = std::span<char>(probe_.data(), n);  // all there was
                input_is_shared = false;
                more_waiting = false;
                continue;
            }
            // The probe is full: it and what follows it go to the worker's buffer, read at once, so
            // that a message of up to 64 KiB is still parsed in place, without reassembly.
            const std::span<char> buffer = worker_.read_buffer();
            std::copy_n(probe_.data(), n, buffer.data());
            std::error_code rest_ec;
            std::size_t rest = socket_.read_some(asio::buffer(buffer.data() + n, buffer.size() - n), rest_ec);
            if (rest_ec) rest = 0;  // nothing more yet, or an error the next read reports
            input = buffer.first(n + rest);
            input_is_shared = true;
            more_waiting = n + rest == buffer.size();
        }
    }

    /// What a received message costs while it waits in the inbox.
    static std::size_t inbox_cost(const message& m) noexcept { return sizeof(message) + m.data.capacity(); }

    /// Full by count or by bytes; one message always fits.
    bool inbox_full() const noexcept {
        const websocket_options& o = endpoint_->options;
        return inbox_.size() >= o.inbox_messages || (inbox_bytes_ >= o.max_inbox_bytes && !inbox_.empty());
    }

    // ---- writing ----

    /// Queues the frame, then waits while the queue is over its high-water mark: a handler that sends
    /// faster than its client reads is slowed to the client's pace instead of growing the queue.
    task<> send_frame(opcode op, std::string payload) {
        if (!can_send()) throw websocket_disconnect(close_code_, close_reason_);
        enqueue(detail::outbound_frame::unicast(op, std::move(payload)));
        while (queue_.memory() > endpoint_->options.max_queued_bytes && can_send()) co_await queue_drained_.wait();
        if (!can_send()) throw websocket_disconnect(close_code_, close_reason_);
    }

    /// False once the connection is gone for sending, however it went: our close frame is queued, the
    /// socket failed, or the connection is being torn down (the peer dropped TCP). A send then throws,
    /// so a handler that only sends (a timer loop) ends too.
    bool can_send() const noexcept { return !close_sent_ && !write_failed_ && !stop_writer_; }

    /// A broadcast frame arriving on this connection's thread (the registry delivers it).
    void receive_broadcast(const detail::shared_frame& frame) {
        receive_from_another(detail::outbound_frame::broadcast(frame));
    }

    /// A frame another connection sent (broadcast or send_to), on this connection's thread. One that
    /// would take the queue over the high-water mark while the kernel refuses this client's bytes
    /// meets the endpoint's slow_consumer policy. Only then: a queue that grew while this thread was
    /// busy elsewhere (a burst of broadcasts, a long handler on the same worker) says nothing about
    /// the client, and is written at the end of the turn.
    void receive_from_another(detail::outbound_frame frame) {
        if (phase_ != phase::open || write_failed_) return;
        if (awaiting_writable_ && queue_.memory() + frame.memory() > endpoint_->options.max_queued_bytes) {
            if (endpoint_->options.slow_consumer == slow_consumer_policy::drop) return;
            // The backlog not yet begun on the wire is dropped, so the close frame goes out next and
            // the memory is released now, not when (if ever) the client catches up.
            queue_.drop_unsent();
            return close_soon(close_code::policy_violation, "slow consumer: outbound queue over its limit");
        }
        enqueue(std::move(frame));
    }

    void enqueue(detail::outbound_frame frame) {
        if (write_failed_ || (close_sent_ && !frame.is_close)) return;
        queue_.push(std::move(frame));
        schedule_flush();
    }

    void fan_out(const detail::shared_frame& frame, recipients who) {
        // In on_connect the connection is not in the registry yet (nothing reaches a client before its
        // greeting), but a broadcast it makes itself still includes it.
        if (who == recipients::everyone && !registered_) receive_broadcast(frame);
        endpoint_->registry.broadcast(context_, frame, who == recipients::others ? this : nullptr);
    }

    // The writer: not a coroutine. Everything queued during one turn of the event loop is written at
    // the end of it, synchronously, on the non-blocking socket, for as long as the kernel takes bytes.
    // Only when it refuses (the client reads slower than we send) does the writer wait for the socket
    // to become writable, which is also what marks a consumer as slow. No buffer list is kept across
    // that wait: the next attempt gathers afresh from the queue, whose storage may have moved.

    /// Writes at the end of this turn, unless the writer is waiting for the socket or already due.
    void schedule_flush() {
        if (awaiting_writable_ || flush_scheduled_ || writer_done_) return;
        flush_scheduled_ = true;
        asio::post(context_, [self = shared_from_this()] {
            self->flush_scheduled_ = false;
            self->flush();
        });
    }

    /// Writes what is queued until the queue is empty (then, if run() has stopped the writer, the
    /// writer is done), a close frame has gone out, or the kernel takes no more.
    void flush() {
        if (awaiting_writable_ || writer_done_) return;
        if (write_failed_) return fail_writer();
        while (!queue_.empty()) {
            gathered_.clear();
            queue_.gather(gathered_, max_buffers_per_write, max_bytes_per_write);
            std::error_code ec;
            // A span, not the vector: the operation copies its buffer sequence, and copying a vector
            // would allocate.
            const std::size_t n = socket_.write_some(std::span<const asio::const_buffer>(gathered_), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) return await_writable();
            if (ec) return fail_writer();
            if (n == 0) return await_writable();  // nothing taken, no error: wait rather than spin
            const bool close_written = queue_.consume(n, worker_.payloads());
            if (queue_.memory() <= endpoint_->options.max_queued_bytes) queue_drained_.notify_all();
            if (close_written) return finish_writer();  // nothing may follow a close frame
        }
        if (stop_writer_) finish_writer();
    }

    void await_writable() {
        awaiting_writable_ = true;
        stall_since_ = std::chrono::steady_clock::now();
        update_deadline();  // the write-stall timeout
        socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](std::error_code ec) {
            self->awaiting_writable_ = false;
            if (ec) return self->fail_writer();
            self->flush();
        });
    }

    /// The socket failed (or was closed under the writer): what is queued can never be written.
    void fail_writer() {
        write_failed_ = true;
        queue_.clear();
        queue_drained_.notify_all();
        finish_writer();
    }

    void finish_writer() {
        writer_done_ = true;
        writer_finished_.notify();
    }

    // ---- the user's code ----

    task<> handler_loop(std::shared_ptr<websocket> self) {
        handler_running_ = true;
        std::uint16_t failure_code = 0;
        std::string failure_reason;
        try {
            if (endpoint_->on_connect) {
                auto greeting = co_await endpoint_->on_connect(*this);
                if (greeting && phase_ == phase::open) enqueue(detail::outbound_frame::unicast(opcode::text, std::move(*greeting)));
            }
            // Join the registry only now: no broadcast can reach the client before its greeting.
            if (phase_ == phase::open) {
                endpoint_->registry.add(context_, id_, self);
                registered_ = true;
            }
            if (phase_ == phase::open) co_await endpoint_->handler(*this);
        } catch (const websocket_disconnect&) {
            // The connection is over; run() finishes it.
        } catch (const invalid_json& e) {
            failure_code = static_cast<std::uint16_t>(close_code::invalid_payload);
            failure_reason = e.what();
        } catch (const std::exception& e) {
            endpoint_->log_line(log_level::error, "handler for " + endpoint_->path + " threw: " + e.what());
            failure_code = static_cast<std::uint16_t>(close_code::internal_error);
            failure_reason = "internal error";
        } catch (...) {
            endpoint_->log_line(log_level::error, "handler for " + endpoint_->path + " threw a non-exception");
            failure_code = static_cast<std::uint16_t>(close_code::internal_error);
            failure_reason = "internal error";
        }
        handler_running_ = false;
        caught_up();
        // A handler that returns closes with 1000; one that threw, with the code chosen above.
        co_await close(failure_code != 0 ? failure_code : static_cast<std::uint16_t>(close_code::normal), failure_reason);
    }

    static constexpr unsigned reads_before_yield = 4;  // reads that found data, before letting others run
    static constexpr std::size_t probe_size = 512;     // holds a typical small message whole
    static constexpr std::size_t kept_assembly = 64 * 1024;  // reassembly buffer kept between messages
    static constexpr std::size_t direct_read_threshold = 64 * 1024;  // frame payload left to read
    static constexpr std::size_t direct_read_size = 256 * 1024;      // at most per direct read
    static constexpr std::size_t max_buffers_per_write = 64;  // what Asio hands to one sendmsg
    static constexpr std::size_t max_bytes_per_write = 256 * 1024;
    static constexpr auto no_deadline = std::chrono::steady_clock::time_point::max();

    asio::ip::tcp::socket socket_;
    asio::io_context& context_;
    std::shared_ptr<detail::endpoint_state> endpoint_;

    std::string id_;
    std::string path_;
    starling::query_params query_;
    http::headers headers_;
    client_address client_;

    phase phase_ = phase::open;
    bool close_sent_ = false;
    std::uint16_t close_code_ = static_cast<std::uint16_t>(close_code::abnormal);
    std::string close_reason_;
    callback_state on_close_state_ = callback_state::not_run;

    detail::worker_buffers& worker_;  // the receive buffer and spare payloads of this loop
    std::string carried_;  // input not parsed yet that must outlive a suspension (usually empty)
    std::array<char, probe_size> probe_;  // where the reader waits for input: see read_loop()
    message_reader reader_;
    detail::ring<message> inbox_;
    std::size_t inbox_bytes_ = 0;  // inbox_cost() of the messages in the inbox
    simdjson::dom::parser json_parser_;

    detail::write_queue queue_;
    std::vector<asio::const_buffer> gathered_;  // the buffer list of one write, reused
    bool awaiting_writable_ = false;  // the kernel refused bytes; waiting until it takes more
    bool flush_scheduled_ = false;  // a flush is posted for the end of this turn
    bool stop_writer_ = false;      // run() is ending: the writer finishes once the queue is empty
    bool writer_done_ = false;
    bool write_failed_ = false;

    detail::async_event inbox_ready_;
    detail::async_event inbox_space_;
    detail::async_event writer_finished_;
    detail::async_event on_close_finished_;
    detail::async_event handler_caught_up_;
    bool handler_running_ = false;
    bool close_requested_ = false;
    bool processing_message_ = false;  // the handler holds a message it may still answer
    detail::async_signal queue_drained_;  // the outbound queue fell back to its high-water mark
    bool registered_ = false;  // in the endpoint's registry: broadcasts of others reach it
    std::size_t registry_slot_ = 0;  // where the registry keeps it in its worker's list

    asio::steady_timer deadline_;  // the one timer: see next_check()
    std::chrono::steady_clock::time_point armed_for_ = no_deadline;
    bool finished_ = false;  // run() is over or the connection was aborted: the timer stays off
    std::chrono::steady_clock::time_point close_deadline_ = no_deadline;
    std::chrono::steady_clock::time_point stall_since_;  // when the writer began waiting for the socket
    std::chrono::steady_clock::time_point message_started_ = no_deadline;  // a message is arriving since
    std::chrono::steady_clock::time_point last_input_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point ping_sent_at_;
    bool ping_outstanding_ = false;
    bool reader_paused_ = false;  // waiting for inbox space, not reading the socket
};

}  // namespace starling
