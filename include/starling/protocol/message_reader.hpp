// RFC 6455 section 5.4: turns a stream of frames into messages and control frames. Reassembles
// fragments (with control frames interleaved), validates text as UTF-8 as it arrives, enforces the
// message size limit from each frame header before buffering, and parses close frames. Pure: the
// caller feeds bytes it read from wherever it likes.
#pragma once

#include <algorithm>     // std::min
#include <array>         // std::array control-frame payload
#include <cstddef>       // std::size_t
#include <cstdint>       // std::uint64_t
#include <span>          // std::span input
#include <string>        // std::string reassembly buffer
#include <string_view>   // std::string_view payload views
#include <system_error>  // std::error_code

#include "starling/protocol/close.hpp"
#include "starling/protocol/error.hpp"
#include "starling/protocol/framer.hpp"
#include "starling/protocol/utf8.hpp"

namespace starling {

/// Default maximum message size: 1 MiB, inclusive.
inline constexpr std::uint64_t default_max_message_size = 1024 * 1024;

struct reader_options {
    role local_role = role::server;
    /// Largest message (the sum of its fragments) accepted, inclusive; larger ones fail with 1009.
    std::uint64_t max_message_size = default_max_message_size;
    /// Largest single frame accepted, inclusive; 0 means "the message limit".
    std::uint64_t max_frame_size = 0;
    /// permessage-deflate was negotiated: a message whose first frame has RSV1 is compressed. It is
    /// handed out as it arrived (message_compressed()), for the caller to inflate and then validate:
    /// compressed bytes are not UTF-8-checked here.
    bool compression = false;
};

enum class read_status {
    need_more,  // every byte given was consumed; feed more
    message,    // a complete text or binary message: message_type() and payload()
    ping,       // payload() holds the ping's payload, to be echoed in a pong
    pong,       // payload() holds the pong's payload
    close,      // close_frame() holds the peer's parsed code and reason
    failed,     // error() says why; close_code_for(error) is the code to close with
};

struct read_result {
    read_status status;
    std::size_t consumed;  // bytes of the input used up to and including this event
};

class message_reader {
public:
    explicit message_reader(reader_options options = {}) noexcept
        : options_(options),
          headers_({options.local_role,
                    options.max_frame_size != 0 ? options.max_frame_size : wire_limit(options),
                    options.compression}) {}

    /// Parses from `data` up to the next event. Payload bytes are unmasked in place, which is why the
    /// input is mutable. An unfragmented message lying wholly inside `data` is returned as a view into
    /// `data` (no copy); anything else is reassembled in an internal buffer. Call again with the bytes
    /// after `consumed` until `need_more`. After `failed`, every call fails again and consumes nothing.
    read_result read(std::span<char> data) {
        view_ = {};  // a view from the last call may point into bytes the caller has since moved
        if (failed_) return {read_status::failed, 0};
        if (message_delivered_) {
            message_delivered_ = false;
            assembled_.clear();
        }
        std::size_t used = 0;
        for (;;) {
            if (!in_payload_) {
                const auto bytes = std::span<const std::uint8_t>(
                    reinterpret_cast<const std::uint8_t*>(data.data()) + used, data.size() - used);
                const header_status hs = headers_.put(bytes, used);
                if (hs == header_status::need_more) return {read_status::need_more, used};
                if (hs == header_status::failed) return fail(header_error(), used);
                if (const auto ec = begin_frame(); ec) return fail(ec, used);
            }
            // Zero-copy: a whole unfragmented data frame already in the buffer is handed out in place.
            const frame_header& h = headers_.header();
            const std::uint64_t available = data.size() - used;
            if (!is_control(h.op) && h.fin && h.op != opcode::continuation && payload_seen_ == 0 &&
                available >= h.payload_length) {
                const auto payload = data.subspan(used, static_cast<std::size_t>(h.payload_length));
                if (const auto ec = take_data(payload); ec) return fail(ec, used);
                used += payload.size();
                in_payload_ = false;
                view_ = std::string_view(payload.data(), payload.size());
                return finish_message(used);
            }
            const std::size_t chunk =
                static_cast<std::size_t>(std::min<std::uint64_t>(available, h.payload_length - payload_seen_));
            const auto payload = data.subspan(used, chunk);
            if (const auto ec = is_control(h.op) ? take_control(payload) : take_data(payload); ec)
                return fail(ec, used);
            used += chunk;
            if (payload_seen_ < h.payload_length) return {read_status::need_more, used};
            in_payload_ = false;
            if (is_control(h.op)) return finish_control(used);
            if (h.fin) {
                view_ = assembled_;
                return finish_message(used);
            }
        }
    }

    /// The type of the last message: text or binary.
    opcode message_type() const noexcept { return message_type_; }
    /// The last message arrived compressed (RSV1 on its first frame): its payload is deflate data,
    /// not yet checked as UTF-8.
    bool message_compressed() const noexcept { return compressed_; }
    /// The last message's or control frame's payload; valid until the next read() or until the bytes
    /// given to read() change.
    std::string_view payload() const noexcept { return view_; }
    /// Moves the last message's payload into `out`. When it was reassembled, the buffers are swapped,
    /// so `out`'s old capacity is reused for the next message: no allocation in steady state.
    void take_payload(std::string& out) {
        if (view_.data() == assembled_.data() && !assembled_.empty()) {
            out.swap(assembled_);
            assembled_.clear();
        } else {
            out.assign(view_);
        }
        view_ = out;
    }
    /// True when the last message was reassembled (take_payload then hands over the reader's buffer),
    /// false when it is a view into the caller's input.
    bool payload_assembled() const noexcept { return view_.data() == assembled_.data() && !assembled_.empty(); }

    // ---- The reassembly buffer, lent and taken back by the caller ----
    // The caller may keep large buffers for reuse across connections: between messages it can take a
    // large reassembly buffer back, and before a large frame it can lend one that is big enough.

    std::size_t assembly_capacity() const noexcept { return assembled_.capacity(); }
    /// The reassembly buffer, emptied; the reader goes on with none. Only between messages.
    std::string release_assembly() noexcept {
        std::string out;
        out.swap(assembled_);
        out.clear();
        return out;
    }
    /// Continues the current message in `bigger` if it is bigger than the buffer in use (what has
    /// arrived is copied over). Not while a direct_buffer() is out.
    void adopt_assembly(std::string bigger) {
        if (bigger.capacity() <= assembled_.capacity()) return;
        bigger.assign(assembled_);
        assembled_.swap(bigger);
    }

    const close_reason& close_frame() const noexcept { return close_; }
    std::error_code error() const noexcept { return error_; }
    /// True between the first and the last fragment of a message.
    bool in_message() const noexcept { return in_message_; }

    // ---- Direct input: a large frame's payload read straight into the message ----
    // Between two read() calls that returned need_more, a caller may read the rest of the current
    // data frame's payload into direct_buffer() instead of its own buffer, then commit_direct() the
    // bytes it got. That saves copying a large message out of a small read buffer.

    /// Payload bytes of the current data frame still to come; 0 outside a data frame's payload.
    std::uint64_t data_payload_remaining() const noexcept {
        if (failed_ || !in_payload_ || is_control(headers_.header().op)) return 0;
        return headers_.header().payload_length - payload_seen_;
    }

    /// Room for up to `max` more payload bytes of the current data frame, at the end of the message
    /// being assembled. Valid until the next call on this reader.
    ///
    /// What is committed follows what has arrived, never what a header announces. Until the message
    /// holds `proven_sender` bytes, the room is at most the bytes so far (and at least
    /// `min_direct_room`): a peer that sends the 14-byte header of a 1 MiB frame and then trickles
    /// commits a few KiB, not the frame. Past it, the whole frame is reserved at once (address space,
    /// which the kernel backs only as bytes land), so a large message is not copied as it grows.
    std::span<char> direct_buffer(std::size_t max) {
        const std::uint64_t remaining = data_payload_remaining();
        std::size_t room = max;
        if (direct_offered_) assembled_.resize(direct_start_);  // the last room was never committed
        direct_offered_ = true;
        direct_start_ = assembled_.size();
        const std::size_t whole = direct_start_ + static_cast<std::size_t>(remaining);
        if (assembled_.capacity() >= whole) {
            // The storage is there already (lent by the caller): nothing new is committed.
        } else if (direct_start_ < proven_sender) {
            room = std::max(min_direct_room, direct_start_);
        } else {
            assembled_.reserve(whole);
        }
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>({max, remaining, room}));
        assembled_.resize(direct_start_ + want);
        return {assembled_.data() + direct_start_, want};
    }

    /// Bytes of the current message received so far (when it is not handed out in place).
    std::size_t message_bytes_buffered() const noexcept { return assembled_.size(); }

    /// The least room direct_buffer() offers (unless the frame needs less).
    static constexpr std::size_t min_direct_room = 16 * 1024;
    /// Bytes of a message after which its sender has shown it really sends it.
    static constexpr std::size_t proven_sender = 64 * 1024;

    /// Takes the first `n` bytes written into the last direct_buffer(): unmasked, validated, counted,
    /// as read() would have. Returns need_more, message (the frame ended the message) or failed.
    read_result commit_direct(std::size_t n) {
        view_ = {};
        direct_offered_ = false;
        assembled_.resize(direct_start_ + n);
        if (const auto ec = accept_data({assembled_.data() + direct_start_, n}); ec) return fail(ec, 0);
        const frame_header& h = headers_.header();
        if (payload_seen_ < h.payload_length) return {read_status::need_more, 0};
        in_payload_ = false;
        if (!h.fin) return {read_status::need_more, 0};
        view_ = assembled_;
        return finish_message(0);
    }

    /// The most bytes a message may take on the wire. A compressed message's limit is on what it
    /// inflates to (the caller inflates it within max_message_size); on the wire it may be larger
    /// than that, since incompressible data grows when deflated: 5 bytes per block, and a compressor
    /// with little memory makes small blocks (zlib's memLevel 1: 128 symbols, about 4 %). A sixteenth
    /// more covers every zlib setting.
    static std::uint64_t wire_limit(const reader_options& o) noexcept {
        if (!o.compression) return o.max_message_size;
        const std::uint64_t slack = (o.max_message_size >> 4) + 64;
        return o.max_message_size > UINT64_MAX - slack ? UINT64_MAX : o.max_message_size + slack;
    }

private:
    /// The header parser checks lengths against the frame limit, which is the message limit when no
    /// frame limit is set: then the close reason names the limit the user configured.
    std::error_code header_error() const noexcept {
        const std::error_code ec = headers_.error();
        if (ec == make_error_code(error::frame_too_big) && options_.max_frame_size == 0)
            return make_error_code(error::message_too_big);
        return ec;
    }

    std::error_code begin_frame() noexcept {
        const frame_header& h = headers_.header();
        in_payload_ = true;
        payload_seen_ = 0;
        if (is_control(h.op)) {
            control_size_ = 0;
            return {};
        }
        if (h.op == opcode::continuation) {
            if (!in_message_) return make_error_code(error::continuation_without_start);
        } else {
            if (in_message_) return make_error_code(error::data_frame_in_open_message);
            in_message_ = true;
            message_type_ = h.op;
            compressed_ = h.rsv1;
            message_size_ = 0;
            utf8_.reset();
        }
        // The limit is checked against the announced length, before any of the payload is buffered.
        const std::uint64_t limit = compressed_ ? wire_limit(options_) : options_.max_message_size;
        if (h.payload_length > limit - message_size_)
            return make_error_code(error::message_too_big);
        message_size_ += h.payload_length;
        return {};
    }

    void unmask(std::span<char> payload) noexcept {
        const frame_header& h = headers_.header();
        if (h.masked) apply_mask(payload, h.key, payload_seen_);
        payload_seen_ += payload.size();
    }

    std::error_code take_control(std::span<char> payload) noexcept {
        unmask(payload);
        std::copy(payload.begin(), payload.end(), control_.begin() + static_cast<std::ptrdiff_t>(control_size_));
        control_size_ += payload.size();
        return {};
    }

    /// Unmasks data payload bytes in place, counts them, and validates them as they arrive if the
    /// message is text: what every data byte goes through, read() or direct input.
    std::error_code accept_data(std::span<char> payload) {
        unmask(payload);
        if (message_type_ == opcode::text && !compressed_ && !utf8_.write(std::string_view(payload.data(), payload.size())))
            return make_error_code(error::invalid_utf8);
        return {};
    }

    std::error_code take_data(std::span<char> payload) {
        if (const auto ec = accept_data(payload); ec) return ec;
        const std::string_view bytes(payload.data(), payload.size());
        const frame_header& h = headers_.header();
        // Only a message that cannot be handed out in place is copied.
        const bool in_place = h.fin && h.op != opcode::continuation && payload_seen_ == h.payload_length &&
                              bytes.size() == h.payload_length;
        if (!in_place) assembled_.append(bytes);
        return {};
    }

    read_result finish_message(std::size_t used) noexcept {
        in_message_ = false;
        if (message_type_ == opcode::text && !compressed_ && !utf8_.finish()) return fail(make_error_code(error::invalid_utf8), used);
        message_delivered_ = true;
        return {read_status::message, used};
    }

    read_result finish_control(std::size_t used) noexcept {
        view_ = std::string_view(control_.data(), control_size_);
        switch (headers_.header().op) {
        case opcode::ping: return {read_status::ping, used};
        case opcode::pong: return {read_status::pong, used};
        default: break;
        }
        if (const auto ec = parse_close_payload(view_, close_); ec) return fail(ec, used);
        return {read_status::close, used};
    }

    read_result fail(std::error_code ec, std::size_t used) noexcept {
        failed_ = true;
        error_ = ec;
        return {read_status::failed, used};
    }

    reader_options options_;
    frame_header_parser headers_;
    bool in_payload_ = false;      // the current frame's header is parsed, its payload is not complete
    std::uint64_t payload_seen_ = 0;
    bool in_message_ = false;
    bool message_delivered_ = false;
    opcode message_type_ = opcode::text;
    bool compressed_ = false;  // the message being read (or last read) is compressed
    std::uint64_t message_size_ = 0;
    std::string assembled_;
    std::size_t direct_start_ = 0;  // where the last direct_buffer() began in assembled_
    bool direct_offered_ = false;   // a direct_buffer() is out and not committed yet
    std::array<char, max_control_payload> control_{};
    std::size_t control_size_ = 0;
    std::string_view view_;
    utf8_validator utf8_;
    close_reason close_;
    bool failed_ = false;
    std::error_code error_{};
};

}  // namespace starling
