// A connection's outbound frames, waiting for its one writer. Broadcast frames are shared, encoded
// once for every receiver; unicast frames keep their header inline and own their payload, so a send
// copies nothing it does not have to, and the writer hands header and payload to one gathered write.
// The queue counts what it costs in memory, not only what it will put on the wire: a million 1-byte
// frames are small on the wire and large in memory, and the limit that protects the server must see
// the latter. It holds a few pongs at most: a peer that pings faster than it reads gets answers to
// its first pings and to its latest one, not to each (RFC 6455 allows answering only the latest).
#pragma once

#include <array>          // std::array inline frame header
#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/buffer.hpp>  // asio::const_buffer for gathered writes
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint8_t
#include <cstring>        // std::memcpy of a shared frame's header
#include <span>           // std::span of a payload to mask
#include <memory>         // std::shared_ptr shared broadcast frames
#include <mutex>          // std::mutex guarding a broadcast's compressed forms
#include <string>         // std::string payloads
#include <string_view>    // std::string_view pong payloads
#include <utility>        // std::move
#include <vector>         // std::vector buffer list

#include "starling/session/masking_keys.hpp"
#include "starling/session/payload_pool.hpp"
#include "starling/session/ring.hpp"
#include "starling/protocol/deflate_codec.hpp"
#include "starling/protocol/framer.hpp"

namespace starling::detail {

/// Whole encoded frame bytes, shared by every connection that sends them.
using shared_bytes = std::shared_ptr<const std::string>;

/// A server frame with RSV1 set when `compressed`: header then payload.
inline std::string encode_server_frame(opcode op, std::string_view payload, bool compressed) {
    frame_header h;
    h.op = op;
    h.rsv1 = compressed;
    h.payload_length = payload.size();
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size = write_frame_header(h, header);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header_size).append(payload);
    return frame;
}

/// One message sent to many (a broadcast, a publish): encoded once as a plain frame, and compressed
/// at most once per compression setting, the first time a receiver that takes that setting gets it
/// (on whichever worker that is). Every receiver of the same form shares the same bytes.
class broadcast_frame {
public:
    broadcast_frame(opcode op, std::string_view payload)
        : op_(op), plain_(std::make_shared<const std::string>(encode_server_frame(op, payload, false))),
          header_size_(plain_->size() - payload.size()) {}

    opcode op() const noexcept { return op_; }
    const shared_bytes& plain() const noexcept { return plain_; }
    std::string_view payload() const noexcept { return std::string_view(*plain_).substr(header_size_); }

#ifndef STARLING_NO_DEFLATE
    /// The frame compressed with `setting` and no context takeover, made on the first call for that
    /// setting, from any thread; later calls share it.
    shared_bytes compressed(const deflate_setting& setting) const {
        std::lock_guard lock(mutex_);
        for (const auto& [made_with, frame] : compressed_)
            if (made_with == setting) return frame;
        std::string body;
        shared_deflater(setting).compress(payload(), body, /*keep_context=*/false);
        compressed_.emplace_back(setting, std::make_shared<const std::string>(encode_server_frame(op_, body, true)));
        return compressed_.back().second;
    }
#endif

private:
    opcode op_;
    shared_bytes plain_;
    std::size_t header_size_;
#ifndef STARLING_NO_DEFLATE
    mutable std::mutex mutex_;
    mutable std::vector<std::pair<deflate_setting, shared_bytes>> compressed_;
#endif
};

using shared_frame = std::shared_ptr<const broadcast_frame>;

inline shared_frame make_shared_frame(opcode op, std::string_view payload) {
    return std::make_shared<const broadcast_frame>(op, payload);
}

struct outbound_frame {
    std::array<std::uint8_t, max_frame_header_size> header{};
    std::uint8_t header_size = 0;
    std::string payload;   // owned payload of a unicast frame
    shared_bytes shared;   // or: a whole frame shared with other connections
    bool is_close = false;

    /// A frame of this connection's own; `compressed` sets RSV1 (the payload is deflate data).
    static outbound_frame unicast(opcode op, std::string payload, bool compressed = false) {
        outbound_frame f;
        frame_header h;
        h.op = op;
        h.rsv1 = compressed;
        h.payload_length = payload.size();
        f.header_size = static_cast<std::uint8_t>(write_frame_header(h, f.header));
        f.payload = std::move(payload);
        f.is_close = op == opcode::close;
        return f;
    }

    /// Frame bytes shared with other connections.
    static outbound_frame broadcast(shared_bytes frame) {
        outbound_frame f;
        f.shared = std::move(frame);
        return f;
    }
    /// A broadcast's plain form.
    static outbound_frame broadcast(const shared_frame& frame) { return broadcast(frame->plain()); }

    /// Bytes on the wire.
    std::size_t size() const noexcept { return shared ? shared->size() : header_size + payload.size(); }
    /// A text or binary frame, not a control frame.
    bool is_data() const noexcept {
        const std::uint8_t first = shared ? static_cast<std::uint8_t>((*shared)[0]) : header[0];
        return (first & 0x08) == 0;
    }
    /// Bytes of payload: the wire bytes less the header (a shared frame is one whole server frame,
    /// unmasked, so its header is 2, 4 or 10 bytes by its length code).
    std::size_t payload_size() const noexcept {
        if (!shared) return payload.size();
        const std::uint8_t length_code = static_cast<std::uint8_t>((*shared)[1]) & 0x7F;
        return shared->size() - (length_code < 126 ? 2 : length_code == 126 ? 4 : 10);
    }
    /// Bytes of memory held for it: its slot in the queue, plus its payload's storage (a shared frame
    /// counts whole for every receiver: it lives as long as the slowest of them).
    std::size_t memory() const noexcept {
        return sizeof(outbound_frame) + (shared ? shared->size() : payload.capacity());
    }
};

class write_queue {
public:
    /// A client's queue: every frame is masked with a fresh key as it is queued (clients mask, servers
    /// must not).
    void mask_frames() noexcept { masking_ = true; }

    void push(outbound_frame frame) {
        if (masking_) mask(frame);
        bytes_ += frame.size();
        memory_ += frame.memory();
        if (is_pong(frame)) {
            ++waiting_pongs_;
            latest_pong_ = popped_ + frames_.size();
        }
        frames_.push_back(std::move(frame));
    }

    /// Queues a pong with `payload`. When max_waiting_pongs already wait, the latest of them gets the
    /// new payload instead (unless it is already on the wire in part): however fast a peer pings, the
    /// pongs waiting for it stay few. Up to that many, every ping is answered, in order.
    void push_pong(std::string_view payload) {
        if (waiting_pongs_ >= max_waiting_pongs && !(latest_pong_ == popped_ && front_written_ != 0)) {
            outbound_frame& pong = frames_[static_cast<std::size_t>(latest_pong_ - popped_)];
            bytes_ -= pong.size();
            memory_ -= pong.memory();
            pong.payload.assign(payload);
            frame_header h;
            h.op = opcode::pong;
            h.payload_length = payload.size();
            pong.header_size = static_cast<std::uint8_t>(write_frame_header(h, pong.header));
            if (masking_) mask(pong);
            bytes_ += pong.size();
            memory_ += pong.memory();
            return;
        }
        push(outbound_frame::unicast(opcode::pong, std::string(payload)));
    }

    /// Slots of the queue's storage (what it holds in memory beyond the frames themselves).
    std::size_t storage_slots() const noexcept { return frames_.capacity(); }

    /// Pongs queued and not yet written whole.
    std::size_t waiting_pongs() const noexcept { return waiting_pongs_; }

    /// Pongs that may wait at once before later pings only update the latest one's payload.
    static constexpr std::size_t max_waiting_pongs = 16;

    bool empty() const noexcept { return frames_.empty(); }
    /// Bytes queued and not yet written.
    std::size_t bytes() const noexcept { return bytes_; }
    /// Bytes of memory the queued frames hold: what backpressure and the slow-consumer policy limit.
    std::size_t memory() const noexcept { return memory_; }

    /// Appends to `out` the buffers of the bytes not yet written, front first: at most `max_buffers`
    /// buffers (what one system call takes) and, past the first frame, no more than `max_bytes`. A
    /// close frame ends the list, since nothing may be written after it. Returns the bytes listed.
    /// The buffers point into the queue: they are valid until the next push, consume or drop.
    std::size_t gather(std::vector<asio::const_buffer>& out, std::size_t max_buffers, std::size_t max_bytes) const {
        std::size_t bytes = 0;
        std::size_t skip = front_written_;  // only the front frame can be partly written
        for (std::size_t i = 0; i < frames_.size(); ++i) {
            const outbound_frame& f = frames_[i];
            const std::size_t buffers = f.shared || f.payload.empty() ? 1 : 2;
            if (out.size() + buffers > max_buffers || (i > 0 && bytes + f.size() > max_bytes)) break;
            if (f.shared) {
                add(out, bytes, skip, f.shared->data(), f.shared->size());
            } else {
                add(out, bytes, skip, f.header.data(), f.header_size);
                add(out, bytes, skip, f.payload.data(), f.payload.size());
            }
            if (f.is_close) break;
        }
        return bytes;
    }

    /// Records that the first `n` gathered bytes were written. Frames written whole leave the queue
    /// (their owned payloads go back to `pool` for reuse); a frame written in part stays at the front
    /// and the next gather starts where it stopped. Returns true when a close frame was completed.
    bool consume(std::size_t n, payload_pool& pool) {
        bytes_ -= n;
        n += front_written_;
        front_written_ = 0;
        bool closed = false;
        while (n != 0) {
            outbound_frame& f = frames_.front();
            const std::size_t size = f.size();
            if (n < size) {
                front_written_ = n;
                break;
            }
            n -= size;
            closed = closed || f.is_close;
            memory_ -= f.memory();
            if (!f.shared) pool.give(std::move(f.payload));
            pop_front();
        }
        // A burst grew the ring; once it has drained, its storage goes back.
        if (frames_.empty()) frames_.shrink(kept_slots);
        return closed;
    }

    /// Drops every frame not yet begun on the wire; a frame written in part stays, since a frame
    /// cut short would corrupt the stream.
    void drop_unsent() {
        const std::size_t keep = front_written_ != 0 ? 1 : 0;
        while (frames_.size() > keep) {
            bytes_ -= frames_.back().size();
            memory_ -= frames_.back().memory();
            if (is_pong(frames_.back())) --waiting_pongs_;
            frames_.pop_back();
        }
        if (frames_.empty()) frames_.shrink(kept_slots);
    }

    void clear() {
        frames_.clear();
        frames_.shrink(0);
        bytes_ = 0;
        memory_ = 0;
        front_written_ = 0;
        waiting_pongs_ = 0;
    }

private:
    /// Masks `f` in place with a fresh key: its header gets the mask bit and the key, its payload is
    /// XORed. A shared frame (one encoded for many receivers) becomes a frame of its own first.
    static void mask(outbound_frame& f) {
        if (f.shared) {
            const std::size_t payload = f.payload_size();
            const std::size_t header = f.shared->size() - payload;
            f.payload.assign(f.shared->data() + header, payload);
            std::memcpy(f.header.data(), f.shared->data(), header);
            f.header_size = static_cast<std::uint8_t>(header);
            f.shared.reset();
        }
        const std::uint8_t first = f.header[0];  // FIN, RSV bits and opcode stay as they are
        frame_header h;
        h.payload_length = f.payload.size();
        h.masked = true;
        h.key = next_masking_key();
        f.header_size = static_cast<std::uint8_t>(write_frame_header(h, f.header));
        f.header[0] = first;
        apply_mask(std::span<char>(f.payload.data(), f.payload.size()), h.key);
    }

    /// Appends [data, data + size) less its first `skip` bytes (those already written).
    static void add(std::vector<asio::const_buffer>& out, std::size_t& bytes, std::size_t& skip, const void* data,
                    std::size_t size) {
        if (skip >= size) {
            skip -= size;
            return;
        }
        out.emplace_back(static_cast<const char*>(data) + skip, size - skip);
        bytes += size - skip;
        skip = 0;
    }

    static bool is_pong(const outbound_frame& f) noexcept {
        return !f.shared && f.header_size != 0 && (f.header[0] & 0x0F) == static_cast<std::uint8_t>(opcode::pong);
    }

    void pop_front() noexcept {
        if (is_pong(frames_.front())) --waiting_pongs_;
        frames_.pop_front();
        ++popped_;
    }

    /// Ring slots kept when the queue empties: what a connection's ordinary traffic needs, so steady
    /// state allocates nothing, while a burst's larger ring is released.
    static constexpr std::size_t kept_slots = 64;

    ring<outbound_frame> frames_;
    std::size_t bytes_ = 0;
    std::size_t memory_ = 0;
    std::size_t front_written_ = 0;  // bytes of the front frame already written
    std::uint64_t popped_ = 0;       // frames ever written whole: turns positions into indices
    std::uint64_t latest_pong_ = 0;  // where the latest pong is, counted from the first frame ever
    std::size_t waiting_pongs_ = 0;
    bool masking_ = false;
};

}  // namespace starling::detail
